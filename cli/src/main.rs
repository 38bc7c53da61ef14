//! The `p11card` command (see the crate's documentation and `p11card
//! --help`). Always the PC/SC readers of this machine: simulated cards are
//! for the tests, through the library.

use clap::Parser;
use p11card_cli::{run, Cli, FdOrTerminal, Io};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let context = p11card::Context::new();
    let mut secrets = FdOrTerminal::default();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        secrets: &mut secrets,
    };
    ExitCode::from(run(&cli, &context, &mut io))
}
