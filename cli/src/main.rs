//! The `p11card` command (see the crate's documentation and `p11card
//! --help`). Always the PC/SC readers of this machine, with the card
//! profiles, disk cache and logging of the module's configuration (as the
//! PKCS#11 module reads it for the same user): simulated cards are for the
//! tests, through the library. `register` and `unregister` need no card:
//! they run before any of that is set up, in `$HOME` and `/`.

use clap::Parser;
use p11card::config::Config;
use p11card::profile::ProfileSet;
use p11card::transport::pcsc::PcscBackend;
use p11card::{Context, Module, ProcessTrust};
use p11card_cli::{run_in, Cli, Environment, FdOrTerminal, Io, RecordingBackend, Trace};
use std::process::ExitCode;

/// The readers of this machine, set up as the module's configuration says;
/// their card I/O goes to `trace` while it records (`doctor --report`).
fn context(trace: Trace) -> Context {
    // The command is not installed set-ID nor given capabilities; differing
    // real and effective IDs still make it trust only the system's files.
    let settings = Config::load(ProcessTrust::detect(false));
    settings.start_logging();
    let mut profiles = ProfileSet::embedded();
    settings.apply_to(&mut profiles);
    let mut module = Module::new(
        Box::new(RecordingBackend::new(Box::new(PcscBackend::new()), trace)),
        profiles,
    )
    .ignoring_user_consent(settings.pin_cache_ignore_user_consent)
    .with_policy(settings.policy())
    .with_audit(p11card::audit::Audit::open(&settings.audit));
    if let Some(store) = settings.cache_store() {
        module = module.with_cache(store);
    }
    Context::from_module(module)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let places = p11card_cli::register::Places::of_this_process();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    if let Some(code) = p11card_cli::run_registration(&cli, &places, &mut out, &mut err) {
        return ExitCode::from(code);
    }
    let trace = Trace::new();
    let context = context(trace.clone());
    let env = Environment {
        trace: Some(trace),
        ..Environment::system()
    };
    let mut secrets = FdOrTerminal::default();
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        secrets: &mut secrets,
    };
    ExitCode::from(run_in(&cli, &context, &env, &mut io))
}
