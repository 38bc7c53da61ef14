//! The `p11card` command: what a person or a help desk asks of a smart card
//! (is it seen, which keys and certificates it holds, how many PIN tries are
//! left, change or unblock the PIN, wait for it), built on the `p11card`
//! crate's Rust API ([`p11card::Context`]); and registering the module with
//! Firefox, Chrome/Chromium and p11-kit ([`register`], no card needed:
//! [`run_registration`]).
//!
//! [`run`] carries out a parsed command line against a [`Context`], writing
//! to the given outputs and reading PINs from a [`Secrets`] source, so the
//! commands run against simulated cards in the tests exactly as the binary
//! runs them against PC/SC.
//!
//! Exit status ([`exit`]): 0 success (for `status` and `wait`: a usable card
//! is present), 1 the operation failed (wrong PIN, card error), 2 the command
//! line was wrong, 3 no usable card (no reader, no card, or a card p11card
//! does not know), 4 the PIN is blocked. `doctor`: 0 no problem found, 1
//! problems found (or the report could not be written).

mod doctor;
mod list;
mod messages;
mod pin;
mod policy;
pub mod register;
mod secrets;
mod status;
mod trace;
mod uri;
mod wait;

pub use doctor::Environment;
pub use trace::{RecordingBackend, Trace};

pub use messages::explain;
pub use secrets::{FdOrTerminal, Secrets};
pub use uri::pkcs11_uri;

use clap::{Parser, Subcommand};
use p11card::api::Error;
use p11card::{Card, Context};
use std::io::Write;

/// The exit statuses of the `p11card` command.
pub mod exit {
    /// Success; for `status` and `wait`: a usable card is present.
    pub const OK: u8 = 0;
    /// The operation failed (wrong PIN or PUK, the card refused, PC/SC error).
    pub const FAILED: u8 = 1;
    /// The command line was wrong (clap's usage errors).
    pub const USAGE: u8 = 2;
    /// No usable card: no reader, no card, or a card p11card does not know.
    pub const NO_CARD: u8 = 3;
    /// The PIN is blocked (unblock it with `p11card pin unblock`).
    pub const PIN_BLOCKED: u8 = 4;
}

/// The `p11card` command line.
#[derive(Debug, Parser)]
#[command(
    name = "p11card",
    version,
    about = "Smart cards with p11card: status, keys, PIN change and unblock",
    after_help = "Exit status: 0 success (status, wait: a usable card is present), \
                  1 the operation failed, 2 wrong command line, 3 no usable card, \
                  4 the PIN is blocked. doctor: 0 no problem found, 1 problems found."
)]
pub struct Cli {
    /// Only the card in this reader (its full name, or a part of it).
    #[arg(long, global = true, value_name = "NAME")]
    pub reader: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Each reader: card present, ATR, card profile, token, PIN tries.
    /// Exit status 0 only if a usable card is present.
    Status {
        /// Print JSON for scripts (the same facts).
        #[arg(long)]
        json: bool,
    },
    /// Each key: label, ID, type, what it may do, certificate, pkcs11: URI.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Log in first (asks for the PIN), to show what keys behind the PIN
        /// may do.
        #[arg(long)]
        login: bool,
        /// With --login: read the PIN from this file descriptor (one line).
        #[arg(long, value_name = "N", requires = "login")]
        pin_fd: Option<i32>,
    },
    /// Change or unblock the PIN.
    Pin {
        /// change or unblock.
        #[command(subcommand)]
        action: PinAction,
    },
    /// The configured algorithm policy, and what it allows of each key.
    Policy {
        /// check: the policy and its verdict on each key of the cards present.
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Check what usually breaks (pcscd, readers, the card, the PIN,
    /// certificate dates, p11-kit and browser registration, the
    /// configuration) and say how to fix each problem. Never asks for the
    /// PIN. Exit status 0 if no problem was found, 1 otherwise.
    Doctor {
        /// Also write a diagnostic report for a help desk to this new file
        /// (readable by you only): versions, readers, cards, keys, the
        /// configuration, the checks and the APDU trace of one reading of
        /// the cards, without PINs or anything secret.
        #[arg(long, value_name = "FILE")]
        report: Option<std::path::PathBuf>,
    },
    /// Wait until a card p11card knows is in a reader (with --reader: in that
    /// reader).
    Wait {
        /// Give up after this many seconds (exit status 3).
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
    },
    /// Register p11card's module with Firefox, Chrome/Chromium and p11-kit.
    ///
    /// Makes the module known to Firefox (every profile's NSS
    /// database), Chrome/Chromium (~/.pki/nssdb) and p11-kit
    /// (~/.config/pkcs11/modules/p11card.module), for you; with --system (as
    /// root) to p11-kit (/etc/pkcs11/modules) and Firefox's enterprise policy
    /// (/etc/firefox/policies/policies.json) for every user. Registering
    /// twice changes nothing. Close Firefox first: a profile Firefox has
    /// open is refused. One line per place; exit status 0 when the module
    /// is registered everywhere, 1 if a place failed.
    Register(RegisterArgs),
    /// Remove p11card's module from Firefox, Chrome/Chromium and p11-kit.
    ///
    /// Removes it from the places `p11card register` adds it to (with
    /// --system: the system-wide ones); other modules stay as they are.
    Unregister(RegisterArgs),
}

/// The options of `register` and `unregister`.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// The system-wide places, for every user (needs root) instead of your
    /// own.
    #[arg(long)]
    pub system: bool,
    /// Only print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print only the places that failed (for package scripts).
    #[arg(long)]
    pub quiet: bool,
    /// The module (an absolute path) instead of the installed one
    /// (/usr/lib/MULTIARCH/pkcs11/p11card-pkcs11.so, e.g. MULTIARCH =
    /// x86_64-linux-gnu); for unregister: remove only registrations of this
    /// path.
    #[arg(long, value_name = "PATH")]
    pub module: Option<std::path::PathBuf>,
}

impl RegisterArgs {
    /// The request for [`register::run`].
    fn request(&self, unregister: bool) -> register::Request {
        register::Request {
            unregister,
            system: self.system,
            dry_run: self.dry_run,
            quiet: self.quiet,
            module: self.module.clone(),
        }
    }
}

/// What to do with the PIN.
/// `p11card policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Show the policy, and for each key whether it is allowed and what
    /// the policy refuses of it.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum PinAction {
    /// Change the PIN (asks for the current PIN and the new one, twice).
    Change {
        /// Read the current PIN and the new PIN, one per line, from this file
        /// descriptor instead of the terminal (for automation).
        #[arg(long, value_name = "N")]
        pin_fd: Option<i32>,
    },
    /// Set a new PIN with the unblocking code (PIV: PUK; OpenPGP: resetting
    /// code), which also unblocks a blocked PIN.
    Unblock {
        /// Read the unblocking code (one line) from this file descriptor.
        #[arg(long, value_name = "N")]
        puk_fd: Option<i32>,
        /// Read the new PIN (one line) from this file descriptor; the same
        /// descriptor as --puk-fd gives the PUK on its first line and the new
        /// PIN on its second.
        #[arg(long, value_name = "N")]
        pin_fd: Option<i32>,
    },
}

/// Where a command writes and where it reads secrets from.
pub struct Io<'a> {
    /// What the command reports (stdout).
    pub out: &'a mut dyn Write,
    /// Errors and prompts' companions (stderr).
    pub err: &'a mut dyn Write,
    /// PINs and PUKs.
    pub secrets: &'a mut dyn Secrets,
}

/// A command's failure: what to tell the person, and the exit status.
#[derive(Debug)]
pub struct Failure {
    /// The message, in words a person understands.
    pub message: String,
    /// The exit status ([`exit`]).
    pub code: u8,
}

impl Failure {
    /// A failure with exit status [`exit::FAILED`].
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: exit::FAILED,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Self {
        Failure::new(format!("cannot write the output: {err}"))
    }
}

/// Carries out `cli` against the readers of `context`; returns the exit
/// status ([`exit`]). Errors go to `io.err` as `p11card: MESSAGE`.
/// `doctor` looks at this machine ([`Environment::system`]).
pub fn run(cli: &Cli, context: &Context, io: &mut Io<'_>) -> u8 {
    run_in(cli, context, &Environment::system(), io)
}

/// [`run`], with `doctor` looking where `env` says (and showing the APDU
/// trace of `env.trace` in its report).
pub fn run_in(cli: &Cli, context: &Context, env: &Environment, io: &mut Io<'_>) -> u8 {
    let reader = cli.reader.as_deref();
    let result = match &cli.command {
        Command::Status { json } => status::status(context, reader, *json, io),
        Command::List {
            json,
            login,
            pin_fd,
        } => list::list(
            context,
            reader,
            list::Options {
                json: *json,
                login: *login,
                pin_fd: *pin_fd,
            },
            io,
        ),
        Command::Pin {
            action: PinAction::Change { pin_fd },
        } => pin::change(context, reader, *pin_fd, io),
        Command::Pin {
            action: PinAction::Unblock { puk_fd, pin_fd },
        } => pin::unblock(context, reader, *puk_fd, *pin_fd, io),
        Command::Policy {
            action: PolicyAction::Check,
        } => policy::check(context, reader, io),
        Command::Doctor { report } => doctor::doctor(context, reader, report.as_deref(), env, io),
        Command::Wait { timeout } => wait::wait(context, reader, *timeout, io),
        Command::Register(_) | Command::Unregister(_) => {
            let places = register::Places::of_this_process();
            return run_registration(cli, &places, io.out, io.err).unwrap_or(exit::USAGE);
        }
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(io.err, "p11card: {}", failure.message);
            failure.code
        }
    }
}

/// Carries out `register` or `unregister` (no card needed, so no
/// [`Context`]) in `places`; `None` for the other commands.
pub fn run_registration(
    cli: &Cli,
    places: &register::Places,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Option<u8> {
    let request = match &cli.command {
        Command::Register(args) => args.request(false),
        Command::Unregister(args) => args.request(true),
        _ => return None,
    };
    Some(register::run(&request, places, out, err).unwrap_or(exit::FAILED))
}

/// Whether the reader called `name` is the one `--reader` asked for.
fn reader_matches(name: &str, wanted: Option<&str>) -> bool {
    wanted.is_none_or(|wanted| name == wanted || name.contains(wanted))
}

/// The cards p11card knows in the readers (`--reader` applied).
fn usable_cards(context: &Context, wanted: Option<&str>) -> Result<Vec<Card>, Failure> {
    let readers = context.readers().map_err(|err| failure(&err))?;
    let mut cards = Vec::new();
    let mut first_error = None;
    for reader in readers
        .iter()
        .filter(|reader| reader.has_card() && reader_matches(reader.name(), wanted))
    {
        match reader.card() {
            Ok(card) => cards.push(card),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    if cards.is_empty() {
        let err = first_error.unwrap_or(Error::NoCard);
        let mut failure = failure(&err);
        if matches!(err, Error::NoCard) {
            failure.message = match (readers.is_empty(), wanted) {
                (true, _) => messages::NO_READER.to_string(),
                (false, Some(wanted)) => format!("no card in a reader called {wanted:?}"),
                (false, None) => "no card in any reader; insert the card".to_string(),
            };
        }
        return Err(failure);
    }
    Ok(cards)
}

/// The one card a PIN command works on: `--reader` chooses among several.
fn the_card(context: &Context, wanted: Option<&str>) -> Result<Card, Failure> {
    let mut cards = usable_cards(context, wanted)?;
    if cards.len() > 1 {
        let names: Vec<&str> = cards.iter().map(Card::reader_name).collect();
        return Err(Failure::new(format!(
            "there are cards in {} readers ({}); choose one with --reader",
            names.len(),
            names.join(", ")
        )));
    }
    Ok(cards.remove(0))
}

/// A failure for an API error, with its words and exit status.
fn failure(err: &Error) -> Failure {
    Failure {
        message: explain(err, None),
        code: messages::exit_code(err),
    }
}
