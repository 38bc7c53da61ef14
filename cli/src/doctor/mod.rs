//! `p11card doctor`: checks what usually breaks (the PC/SC service, readers,
//! the card and its profile, the token, the PIN, certificate dates, the
//! module's registration with p11-kit and the NSS databases, the
//! configuration file) and prints each problem with its fix, one line per
//! check. `--report FILE` also writes a diagnostic bundle for a help desk,
//! with the APDU trace of one enumeration of the cards ([`crate::trace`]).
//!
//! The doctor never asks for a PIN and never logs in.

mod cards;
mod report;
mod system;

use crate::trace::Trace;
use crate::{exit, Failure, Io};
use cards::check_cards;
use p11card::Context;
use report::{create_report, report_text};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use system::{check_config, check_nss, check_p11_kit, check_pcsc};

/// Where the doctor looks: the base paths (so the tests can point it at a
/// temporary tree), the PC/SC service check, the clock and the trace.
pub struct Environment {
    /// Prefix of the system paths (`/`): where `pcscd`, its systemd units
    /// and the p11-kit module directories are looked for.
    pub root: PathBuf,
    /// The user's home directory (`~/.mozilla/firefox`, `~/.pki/nssdb`).
    pub home: Option<PathBuf>,
    /// The user's configuration directory (`$XDG_CONFIG_HOME`, default
    /// `~/.config`): p11-kit's user module directory is `pkcs11/modules`
    /// in it.
    pub config_home: Option<PathBuf>,
    /// The doctor runs as root: p11-kit then ignores the user's module
    /// files.
    pub as_root: bool,
    /// The configuration file p11card reads (`P11CARD_CONFIG`, or the
    /// usual place), `None` when there is none.
    pub config_file: Option<PathBuf>,
    /// Whether the PC/SC service answers; `None`: the readers do not come
    /// from PC/SC (simulated cards), nothing to check.
    pub pcsc_check: Option<Box<dyn Fn() -> Result<(), String>>>,
    /// The environment variables that set p11card's configuration
    /// (`P11CARD_CONFIG`, `P11CARD_LOG`, `P11CARD_LOG_FILE`, `P11CARD_CACHE`,
    /// `P11CARD_CACHE_DIR`) with their values (for the report).
    pub variables: Vec<(String, String)>,
    /// Now, for certificate dates.
    pub now: SystemTime,
    /// The trace the readers' backend records into, if it does.
    pub trace: Option<Trace>,
}

impl Environment {
    /// This machine, this user, the clock; PC/SC checked with a context of
    /// its own. No trace (the binary adds the one its backend records to).
    pub fn system() -> Environment {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        let home = var("HOME").map(PathBuf::from);
        let config_home = var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".config")));
        let config_file = var("P11CARD_CONFIG")
            .map(PathBuf::from)
            .or_else(p11card::config::default_path);
        let variables = config_variables(std::env::vars_os());
        Environment {
            root: PathBuf::from("/"),
            home,
            config_home,
            config_file,
            as_root: rustix::process::geteuid().is_root(),
            pcsc_check: Some(Box::new(|| {
                p11card::transport::pcsc::PcscBackend::new()
                    .check_service()
                    .map_err(|err| err.to_string())
            })),
            variables,
            now: SystemTime::now(),
            trace: None,
        }
    }

    /// `path` (absolute) under [`Environment::root`].
    fn system_path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

/// The variables the module's configuration reads (`p11card::config`):
/// the only ones whose values go into the report. An allow-list: other
/// `P11CARD_*` variables may hold secrets (the examples read the PIN from
/// `P11CARD_PIN`).
pub const CONFIG_VARIABLES: [&str; 5] = [
    "P11CARD_CONFIG",
    "P11CARD_LOG",
    "P11CARD_LOG_FILE",
    "P11CARD_CACHE",
    "P11CARD_CACHE_DIR",
];

/// Those of `vars` that are in [`CONFIG_VARIABLES`], sorted.
fn config_variables(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(String, String)> {
    let mut variables: Vec<(String, String)> = vars
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            CONFIG_VARIABLES
                .contains(&name.as_str())
                .then(|| (name, value.to_string_lossy().into_owned()))
        })
        .collect();
    variables.sort();
    variables
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Note,
    Problem,
}

/// One check's line.
#[derive(Debug)]
struct Check {
    level: Level,
    what: String,
    fix: Option<String>,
}

impl Check {
    fn line(&self) -> String {
        let level = match self.level {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Problem => "problem",
        };
        match &self.fix {
            Some(fix) => format!("{level:<8}{}; {fix}", self.what),
            None => format!("{level:<8}{}", self.what),
        }
    }
}

/// The checks, and the facts the report adds.
#[derive(Default)]
struct Findings {
    checks: Vec<Check>,
    /// The readers, cards and tokens, for the report.
    cards: String,
}

impl Findings {
    fn ok(&mut self, what: impl Into<String>) {
        self.push(Level::Ok, what, None::<String>);
    }

    fn note(&mut self, what: impl Into<String>, fix: Option<impl Into<String>>) {
        self.push(Level::Note, what, fix);
    }

    fn problem(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.push(Level::Problem, what, Some(fix));
    }

    fn push(&mut self, level: Level, what: impl Into<String>, fix: Option<impl Into<String>>) {
        self.checks.push(Check {
            level,
            what: what.into(),
            fix: fix.map(Into::into),
        });
    }

    fn problems(&self) -> usize {
        self.checks
            .iter()
            .filter(|check| check.level == Level::Problem)
            .count()
    }
}

/// The fix for a PC/SC service that does not answer.
const START_PCSCD: &str = "start it: sudo systemctl start pcscd.socket \
                           (install it first if it is missing: sudo apt install pcscd)";

/// Runs the checks, prints them, writes the report if asked; exit status
/// 0 when no problem was found, 1 otherwise.
pub(crate) fn doctor(
    context: &Context,
    wanted: Option<&str>,
    report: Option<&Path>,
    env: &Environment,
    io: &mut Io<'_>,
) -> Result<u8, Failure> {
    // Refuse an existing report file before any work.
    let mut report_file = match report {
        Some(path) => Some(create_report(path)?),
        None => None,
    };
    let mut findings = Findings::default();
    let pcsc_answers = check_pcsc(env, &mut findings);
    // The enumeration the report's trace shows: readers, cards, tokens,
    // keys, as `p11card list` reads them.
    if let Some(trace) = &env.trace {
        trace.start();
    }
    if pcsc_answers {
        check_cards(context, wanted, env.now, &mut findings);
    } else {
        findings.note(
            "readers and cards not checked: the PC/SC service does not answer",
            None::<&str>,
        );
    }
    if let Some(trace) = &env.trace {
        trace.stop();
    }
    check_p11_kit(env, &mut findings);
    check_nss(env, &mut findings);
    let config = check_config(env, &mut findings);
    for check in &findings.checks {
        writeln!(io.out, "{}", check.line())?;
    }
    let problems = findings.problems();
    let summary = match problems {
        0 => "No problem found.".to_string(),
        1 => "1 problem found.".to_string(),
        n => format!("{n} problems found."),
    };
    writeln!(io.out, "{summary}")?;
    if let (Some(file), Some(path)) = (report_file.as_mut(), report) {
        let text = report_text(context, env, config.as_ref(), &findings, &summary);
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|err| {
                Failure::new(format!("cannot write the report {}: {err}", path.display()))
            })?;
        writeln!(io.out, "Report written to {}.", path.display())?;
    }
    Ok(if problems == 0 {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// Reads a small text file (configuration files), at most 1 MiB.
fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    const LIMIT: u64 = 1 << 20;
    // Not blocking on a FIFO; a regular file, checked on what was opened.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .ok()?;
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() || metadata.len() > LIMIT {
        return None;
    }
    let mut text = String::new();
    file.take(LIMIT).read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configuration_variables_go_into_the_report() {
        let vars = [
            ("P11CARD_PIN", "917364"),
            ("P11CARD_LOG", "debug"),
            ("P11CARD_CONFIG", "/etc/x.toml"),
            ("HOME", "/root"),
            ("P11CARD_SO_PIN", "12345678"),
        ]
        .map(|(name, value)| (name.into(), value.into()));
        assert_eq!(
            config_variables(vars.into_iter()),
            [
                ("P11CARD_CONFIG".to_string(), "/etc/x.toml".to_string()),
                ("P11CARD_LOG".to_string(), "debug".to_string()),
            ]
        );
    }
}
