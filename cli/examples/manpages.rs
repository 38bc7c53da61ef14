//! Writes the `p11card` command's manual pages, generated from its clap
//! definition: `p11card.1` and one page per subcommand
//! (`p11card-status.1`, `p11card-pin-change.1`, …).
//!
//! ```sh
//! cargo run --release -p p11card-cli --example manpages -- OUT_DIR
//! ```
//!
//! `scripts/build-deb.sh` runs it for the Debian package.

use clap::CommandFactory;
use p11card_cli::Cli;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(out_dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: manpages OUT_DIR");
        return ExitCode::from(2);
    };
    let written = std::fs::create_dir_all(&out_dir)
        .and_then(|()| clap_mangen::generate_to(Cli::command(), &out_dir));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("manpages: cannot write to {}: {err}", out_dir.display());
            ExitCode::FAILURE
        }
    }
}
