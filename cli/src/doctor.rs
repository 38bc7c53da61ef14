//! `p11card doctor`: checks what usually breaks (the PC/SC service, readers,
//! the card and its profile, the token, the PIN, certificate dates, the
//! module's registration with p11-kit and the NSS databases, the
//! configuration file) and prints each problem with its fix, one line per
//! check. `--report FILE` also writes a diagnostic bundle for a help desk,
//! with the APDU trace of one enumeration of the cards ([`crate::trace`]).
//!
//! The doctor never asks for a PIN and never logs in.

use crate::messages::{explain, tries_left};
use crate::trace::Trace;
use crate::{exit, reader_matches, Failure, Io};
use p11card::api::{CacheUse, Error, Key, PinTries, TokenInfo};
use p11card::config::Config;
use p11card::Context;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
    /// ([`CONFIG_VARIABLES`]) with their values (for the report).
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

/// How long before a certificate's end the doctor warns.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

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

/// Creates the report file: a new file only (no overwriting, not through
/// a symbolic link), readable by its owner alone.
fn create_report(path: &Path) -> Result<std::fs::File, Failure> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|err| {
            let why = if err.kind() == std::io::ErrorKind::AlreadyExists {
                "it exists already (p11card does not overwrite it); choose a new name".to_string()
            } else {
                err.to_string()
            };
            Failure::new(format!(
                "cannot create the report {}: {why}",
                path.display()
            ))
        })
}

/// The `pcscd` binary's usual places.
const PCSCD_PATHS: [&str; 4] = [
    "/usr/sbin/pcscd",
    "/usr/bin/pcscd",
    "/sbin/pcscd",
    "/usr/local/sbin/pcscd",
];

/// The usual places of pcscd's systemd socket unit.
const PCSCD_SOCKET_UNITS: [&str; 3] = [
    "/usr/lib/systemd/system/pcscd.socket",
    "/lib/systemd/system/pcscd.socket",
    "/etc/systemd/system/pcscd.socket",
];

/// Checks pcscd; `false` when the PC/SC service does not answer.
fn check_pcsc(env: &Environment, findings: &mut Findings) -> bool {
    let Some(service) = &env.pcsc_check else {
        findings.note(
            "the readers do not come from PC/SC: pcscd not checked",
            None::<&str>,
        );
        return true;
    };
    let binary = PCSCD_PATHS
        .iter()
        .find(|path| env.system_path(path).is_file());
    let socket = PCSCD_SOCKET_UNITS
        .iter()
        .find(|path| env.system_path(path).is_file());
    match (binary, socket) {
        (Some(binary), Some(socket)) => {
            findings.ok(format!("pcscd is installed ({binary}, socket unit {socket})"))
        }
        (Some(binary), None) => findings.ok(format!(
            "pcscd is installed ({binary}; no systemd socket unit: it must be started some other way)"
        )),
        (None, _) => findings.problem(
            "pcscd (the PC/SC service) is not installed",
            "install it: sudo apt install pcscd",
        ),
    }
    match service() {
        Ok(()) => {
            findings.ok("the PC/SC service answers");
            true
        }
        Err(why) => {
            findings.problem(
                format!("the PC/SC service does not answer ({why})"),
                START_PCSCD,
            );
            false
        }
    }
}

/// A time as `2025-01-31`.
fn day(time: SystemTime) -> String {
    match der::DateTime::from_system_time(time) {
        Ok(at) => format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day()),
        Err(_) => "(out of range)".to_string(),
    }
}

/// Hex bytes separated by spaces.
fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_cards(context: &Context, wanted: Option<&str>, now: SystemTime, findings: &mut Findings) {
    let readers = match context.readers() {
        Ok(readers) => readers,
        Err(err) => {
            findings.problem(
                format!("the readers cannot be listed: {}", explain(&err, None)),
                START_PCSCD,
            );
            return;
        }
    };
    let readers: Vec<_> = readers
        .into_iter()
        .filter(|reader| reader_matches(reader.name(), wanted))
        .collect();
    if readers.is_empty() {
        match wanted {
            Some(wanted) => findings.problem(
                format!("no reader called {wanted:?}"),
                "check the name with `p11card status` (without --reader)",
            ),
            None => findings.problem(
                "no card reader found",
                "plug in the reader (or the USB token); if it is plugged in, \
                 check that pcscd sees it (sudo systemctl restart pcscd)",
            ),
        }
        return;
    }
    let names: Vec<&str> = readers.iter().map(|reader| reader.name()).collect();
    findings.ok(format!(
        "{} reader{}: {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    ));
    let mut cards = 0;
    for reader in &readers {
        let _ = writeln!(findings.cards, "Reader: {}", reader.name());
        if !reader.has_card() {
            let _ = writeln!(findings.cards, "  Card: none");
            continue;
        }
        cards += 1;
        let name = reader.name();
        let atr = match reader.atr() {
            Ok(atr) => spaced_hex(&atr),
            Err(err) => {
                findings.problem(
                    format!(
                        "the card in {name} does not answer: {}",
                        explain(&err, None)
                    ),
                    "take it out, put it back in, and run `p11card doctor` again",
                );
                continue;
            }
        };
        let _ = writeln!(findings.cards, "  ATR: {atr}");
        let card = match reader.card() {
            Ok(card) => card,
            Err(Error::UnknownCard) => {
                let _ = writeln!(findings.cards, "  Profile: none fits");
                findings.problem(
                    format!(
                        "the card in {name} (ATR {atr}) is not one p11card knows: \
                         no card profile fits it"
                    ),
                    "check it is a PIV, OpenPGP or PKCS#15 (MyEID) card; otherwise \
                     send the report (`p11card doctor --report FILE`) to whoever supports p11card",
                );
                continue;
            }
            Err(err) => {
                findings.problem(
                    format!("the card in {name} cannot be read: {}", explain(&err, None)),
                    "take it out, put it back in, and run `p11card doctor` again",
                );
                continue;
            }
        };
        let profile = card.profile().unwrap_or_else(|_| "?".to_string());
        findings.ok(format!(
            "the card in {name} is recognised: profile {profile}"
        ));
        let _ = writeln!(findings.cards, "  Profile: {profile}");
        let info = match card.token_info() {
            Ok(info) => info,
            Err(err) => {
                findings.problem(
                    format!(
                        "the token in {name} cannot be read: {}",
                        explain(&err, None)
                    ),
                    "take the card out, put it back in, and run `p11card doctor` again",
                );
                continue;
            }
        };
        describe_token(&info, &mut findings.cards);
        let keys = match card.keys() {
            Ok(keys) => keys,
            Err(err) => {
                findings.problem(
                    format!(
                        "the keys of {:?} cannot be read: {}",
                        info.label,
                        explain(&err, None)
                    ),
                    "take the card out, put it back in, and run `p11card doctor` again",
                );
                continue;
            }
        };
        let with_cert = keys
            .iter()
            .filter(|key| key.certificate().is_some())
            .count();
        findings.ok(format!(
            "token {:?} (serial {}) is readable: {} key{}, {with_cert} with a certificate",
            info.label,
            info.serial,
            keys.len(),
            if keys.len() == 1 { "" } else { "s" },
        ));
        check_pin(&info, findings);
        match card.puk_tries_left() {
            Ok(Some(0)) => findings.problem(
                "the PUK (unblocking code) is blocked: a blocked PIN can no longer be unblocked",
                "ask whoever issued the card to reset or replace it",
            ),
            Ok(Some(left)) => {
                let _ = writeln!(findings.cards, "  PUK: {left} tries left");
                findings.ok(format!("PUK: {}", tries_left(PinTries::Plenty, Some(left))));
            }
            Ok(None) => {
                let _ = writeln!(findings.cards, "  PUK: unknown");
            }
            Err(err) => findings.note(
                format!("the PUK's tries could not be read: {}", explain(&err, None)),
                None::<&str>,
            ),
        }
        for key in &keys {
            describe_key(key, &mut findings.cards);
            check_certificate(key, now, findings);
        }
    }
    if cards == 0 {
        findings.problem("no card in any reader", "insert the card");
    }
}

/// The token's facts for the report.
fn describe_token(info: &TokenInfo, out: &mut String) {
    let _ = writeln!(out, "  Token: {}", info.label);
    let _ = writeln!(out, "  Serial: {}", info.serial);
    let _ = writeln!(out, "  Maker: {} {}", info.manufacturer, info.model);
    let _ = writeln!(
        out,
        "  PIN: {} ({} to {} characters{})",
        tries_left(info.pin_tries, info.pin_tries_left),
        info.min_pin_length,
        info.max_pin_length,
        if info.pin_pad { ", PIN pad" } else { "" }
    );
    let cache = match info.cache {
        CacheUse::Off => "off",
        CacheUse::NotCached => "on, this card not cached",
        CacheUse::ReadFromCard => "on, read from the card",
        CacheUse::Used => "used",
    };
    let _ = writeln!(out, "  Cache: {cache}");
}

/// A key's public facts for the report.
fn describe_key(key: &Key, out: &mut String) {
    let id: String = key.id().iter().map(|byte| format!("{byte:02x}")).collect();
    let kind = match crate::list::kind(key.kind()) {
        (name, _, Some(curve)) => format!("{name} {curve}"),
        (name, bits, None) => format!("{name} {bits}"),
    };
    let _ = writeln!(out, "  Key {:?} id {id}: {kind}", key.label());
    if let Some(cert) = key.certificate() {
        let _ = writeln!(out, "    Certificate: {}", cert.subject());
        let _ = writeln!(out, "    Issuer: {}", cert.issuer());
        let _ = writeln!(
            out,
            "    Valid: {} to {}",
            cert.not_before().map_or("?".to_string(), day),
            cert.not_after().map_or("?".to_string(), day)
        );
    }
}

fn check_pin(info: &TokenInfo, findings: &mut Findings) {
    match (info.pin_tries, info.pin_tries_left) {
        (PinTries::Blocked, _) => findings.problem(
            "the PIN is blocked",
            "unblock it with `p11card pin unblock` (you need the card's PUK)",
        ),
        (PinTries::FinalTry, _) | (_, Some(1)) => findings.problem(
            "the PIN has 1 try left: one more wrong PIN blocks it",
            "enter it carefully; if you do not know it, set a new one with \
             `p11card pin unblock`",
        ),
        (tries, left) => findings.ok(format!("PIN: {}", tries_left(tries, left))),
    }
}

fn check_certificate(key: &Key, now: SystemTime, findings: &mut Findings) {
    let Some(cert) = key.certificate() else {
        return;
    };
    let what = format!(
        "the certificate {:?} (key {:?})",
        cert.subject(),
        key.label()
    );
    let renew = "ask whoever issued the card for a new certificate";
    match (cert.not_before(), cert.not_after()) {
        (_, Some(until)) if now > until => {
            findings.problem(format!("{what} expired on {}", day(until)), renew)
        }
        (Some(from), _) if now < from => findings.problem(
            format!("{what} is not valid before {}", day(from)),
            "check the computer's date and time; if they are right, wait or ask \
             whoever issued the card",
        ),
        (_, Some(until)) if until.duration_since(now).unwrap_or_default() < EXPIRY_WARNING => {
            findings.note(
                format!("{what} expires on {}, within 30 days", day(until)),
                Some(renew),
            )
        }
        (_, until) => findings.ok(format!(
            "{what} is valid until {}",
            until.map_or("?".to_string(), day)
        )),
    }
}

/// Whether `text` names p11card.
fn names_p11card(text: &str) -> bool {
    text.to_ascii_lowercase().contains("p11card")
}

/// Reads a small text file (configuration files), at most 1 MiB.
fn read_small(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > 1 << 20 {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// The p11-kit module files that name p11card, with the module they load.
fn p11_kit_modules(dir: &Path) -> Vec<(PathBuf, Option<String>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, Option<String>)> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "module"))
        .filter_map(|path| {
            let text = read_small(&path)?;
            let module = text.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "module").then(|| value.trim().to_string())
            });
            let named = path
                .file_name()
                .is_some_and(|name| names_p11card(&name.to_string_lossy()))
                || module.as_deref().is_some_and(names_p11card);
            named.then_some((path, module))
        })
        .collect();
    found.sort();
    found
}

fn check_p11_kit(env: &Environment, findings: &mut Findings) {
    let mut dirs = vec![
        env.system_path("/usr/share/p11-kit/modules"),
        env.system_path("/etc/pkcs11/modules"),
    ];
    let user_dir = env
        .config_home
        .as_ref()
        .map(|config_home| config_home.join("pkcs11").join("modules"));
    match &user_dir {
        Some(dir) if env.as_root => {
            for (file, _) in p11_kit_modules(dir) {
                findings.note(
                    format!(
                        "p11-kit ignores {} for root (it reads no per-user module files then)",
                        file.display()
                    ),
                    Some("as root, register system-wide: sudo p11card register"),
                );
            }
        }
        Some(dir) => dirs.push(dir.clone()),
        None => {}
    }
    let found: Vec<(PathBuf, Option<String>)> =
        dirs.iter().flat_map(|dir| p11_kit_modules(dir)).collect();
    if found.is_empty() {
        let searched: Vec<String> = dirs.iter().map(|dir| dir.display().to_string()).collect();
        findings.problem(
            format!(
                "p11-kit does not see p11card: no module file in {} names it",
                searched.join(", ")
            ),
            "run `p11card register` (or install the p11card package)",
        );
        return;
    }
    for (file, module) in found {
        match module {
            None => findings.problem(
                format!(
                    "the p11-kit module file {} has no `module:` line",
                    file.display()
                ),
                "run `p11card register` again",
            ),
            Some(module) if module_library(env, &module).is_none() => findings.problem(
                format!(
                    "the p11-kit module file {} names {module}, which does not exist",
                    file.display()
                ),
                "run `p11card register` again (or reinstall the p11card package)",
            ),
            Some(module) => findings.ok(format!(
                "p11-kit sees p11card: {} loads {module}",
                file.display()
            )),
        }
    }
}

/// Where the library a p11-kit module file names is: an absolute path
/// as it is, a bare name in p11-kit's module directory (Debian:
/// `/usr/lib/<multiarch>/pkcs11/`). `None` when it is not there.
fn module_library(env: &Environment, module: &str) -> Option<PathBuf> {
    if module.starts_with('/') {
        let path = env.system_path(module);
        return path.exists().then_some(path);
    }
    let lib = env.system_path("/usr/lib");
    let mut dirs = vec![lib.join("pkcs11")];
    if let Ok(entries) = std::fs::read_dir(&lib) {
        let mut arch: Vec<PathBuf> = entries
            .filter_map(|entry| Some(entry.ok()?.path().join("pkcs11")))
            .collect();
        arch.sort();
        dirs.extend(arch);
    }
    dirs.into_iter()
        .map(|dir| dir.join(module))
        .find(|path| path.exists())
}

/// The profile directories `profiles.ini` in `base` lists.
fn firefox_profiles(base: &Path) -> Vec<PathBuf> {
    let Some(text) = read_small(&base.join("profiles.ini")) else {
        return Vec::new();
    };
    let mut profiles = Vec::new();
    let mut section_is_profile = false;
    let (mut path, mut relative) = (None::<String>, true);
    let mut finish = |path: &mut Option<String>, relative: bool| {
        if let Some(path) = path.take() {
            profiles.push(if relative {
                base.join(path)
            } else {
                PathBuf::from(path)
            });
        }
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            if section_is_profile {
                finish(&mut path, relative);
            }
            section_is_profile = line.starts_with("[Profile");
            (path, relative) = (None, true);
        } else if let Some((key, value)) = line.split_once('=') {
            match key.trim() {
                "Path" if section_is_profile => path = Some(value.trim().to_string()),
                "IsRelative" => relative = value.trim() != "0",
                _ => {}
            }
        }
    }
    if section_is_profile {
        finish(&mut path, relative);
    }
    profiles
}

/// Whether the NSS database in `dir` has a module entry naming p11card
/// (`library=` or `name=` in `pkcs11.txt`).
fn nss_has_p11card(dir: &Path) -> bool {
    read_small(&dir.join("pkcs11.txt")).is_some_and(|text| {
        text.lines().any(|line| {
            line.split_once('=').is_some_and(|(key, value)| {
                matches!(key.trim(), "library" | "name") && names_p11card(value)
            })
        })
    })
}

fn check_nss(env: &Environment, findings: &mut Findings) {
    let Some(home) = &env.home else {
        findings.note(
            "no home directory: the NSS databases were not checked",
            None::<&str>,
        );
        return;
    };
    let mut databases: Vec<(String, PathBuf)> = Vec::new();
    for base in [
        home.join(".mozilla/firefox"),
        home.join("snap/firefox/common/.mozilla/firefox"),
    ] {
        for profile in firefox_profiles(&base) {
            if profile.is_dir() {
                databases.push(("the Firefox profile".to_string(), profile));
            }
        }
    }
    let shared = home.join(".pki/nssdb");
    if shared.is_dir() {
        databases.push((
            "the shared NSS database (Chrome, Chromium)".to_string(),
            shared,
        ));
    }
    if databases.is_empty() {
        findings.note(
            "no NSS database (no Firefox profile, no ~/.pki/nssdb): nothing to register for",
            None::<&str>,
        );
        return;
    }
    for (what, dir) in databases {
        if nss_has_p11card(&dir) {
            findings.ok(format!("{what} {} has p11card", dir.display()));
        } else {
            findings.problem(
                format!("{what} {} does not have p11card", dir.display()),
                "run `p11card register` (with the browser closed)",
            );
        }
    }
}

/// Checks the configuration file; returns it when it parses.
fn check_config(env: &Environment, findings: &mut Findings) -> Option<Config> {
    let Some(path) = &env.config_file else {
        findings.ok("no configuration file: p11card uses its defaults");
        return None;
    };
    if !path.exists() {
        findings.ok(format!(
            "no configuration file ({} does not exist): p11card uses its defaults",
            path.display()
        ));
        return None;
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            findings.problem(
                format!(
                    "the configuration file {} cannot be read ({err}): p11card uses its defaults",
                    path.display()
                ),
                "make it readable, or remove it",
            );
            return None;
        }
    };
    match Config::check(&text) {
        Ok(config) => {
            findings.ok(format!(
                "the configuration file {} is valid",
                path.display()
            ));
            Some(config)
        }
        Err(why) => {
            findings.problem(
                format!(
                    "the configuration file {} is not valid ({}): until it is fixed p11card \
                     applies the strict algorithm policy (it may refuse some keys)",
                    path.display(),
                    one_line(&why)
                ),
                "correct the file (its [policy] table is described in the README)",
            );
            None
        }
    }
}

/// A TOML parser's message on one line: its lines without the quoted
/// source (`|`), joined.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.contains('|'))
        .collect::<Vec<_>>()
        .join(": ")
}

/// The first `PRETTY_NAME` of the os-release file.
fn os_release(env: &Environment) -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|path| {
            let text = read_small(&env.system_path(path))?;
            text.lines().find_map(|line| {
                line.strip_prefix("PRETTY_NAME=")
                    .map(|value| value.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// The installed version of a Debian package, from dpkg's status file.
fn package_version(env: &Environment, package: &str) -> Option<String> {
    let text = std::fs::read_to_string(env.system_path("/var/lib/dpkg/status")).ok()?;
    text.split("\n\n").find_map(|stanza| {
        let mut lines = stanza.lines();
        (lines.next()? == format!("Package: {package}"))
            .then(|| {
                stanza
                    .lines()
                    .find_map(|line| line.strip_prefix("Version: ").map(str::to_string))
            })
            .flatten()
    })
}

/// The report's text.
fn report_text(
    context: &Context,
    env: &Environment,
    config: Option<&Config>,
    findings: &Findings,
    summary: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "p11card diagnostic report (p11card doctor --report)");
    let _ = writeln!(
        out,
        "No PIN and nothing secret is in it: the trace shows the data of"
    );
    let _ = writeln!(
        out,
        "SELECT, READ BINARY and GET DATA commands only, and no response data."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "== System");
    let _ = writeln!(out, "p11card: {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "OS: {}", os_release(env));
    let kernel = read_small(Path::new("/proc/sys/kernel/osrelease"));
    let _ = writeln!(
        out,
        "Kernel: {}",
        kernel.as_deref().unwrap_or("unknown").trim()
    );
    for package in ["pcscd", "libpcsclite1", "p11-kit", "libnss3"] {
        let version = package_version(env, package);
        let _ = writeln!(
            out,
            "{package}: {}",
            version.as_deref().unwrap_or("not installed (per dpkg)")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "== Configuration");
    let _ = writeln!(
        out,
        "File: {}",
        env.config_file
            .as_ref()
            .map_or("none".to_string(), |path| path.display().to_string())
    );
    let _ = writeln!(out, "Policy in effect: {}", context.policy().describe());
    if config.is_none() {
        let _ = writeln!(
            out,
            "Settings: the defaults (and the P11CARD_* variables below, if any)"
        );
    }
    if let Some(config) = config {
        let _ = writeln!(
            out,
            "Log level: {}",
            config.log_level.as_deref().unwrap_or("off")
        );
        if let Some(file) = &config.log_file {
            let _ = writeln!(out, "Log file: {}", file.display());
        }
        let cache = match config.cache {
            Some(false) => "off",
            _ => "on",
        };
        let _ = writeln!(out, "Cache: {cache}");
        if let Some(dir) = &config.cache_dir {
            let _ = writeln!(out, "Cache directory: {}", dir.display());
        }
        for dir in &config.profile_dirs {
            let _ = writeln!(out, "Profile directory: {}", dir.display());
        }
        if !config.disabled_profiles.is_empty() {
            let _ = writeln!(
                out,
                "Disabled profiles: {}",
                config.disabled_profiles.join(", ")
            );
        }
    }
    for (name, value) in &env.variables {
        let _ = writeln!(out, "{name}={value}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "== Doctor");
    for check in &findings.checks {
        let _ = writeln!(out, "{}", check.line());
    }
    let _ = writeln!(out, "{summary}");
    let _ = writeln!(out);
    let _ = writeln!(out, "== Readers, cards, tokens, keys");
    out.push_str(&findings.cards);
    let _ = writeln!(out);
    let _ = writeln!(out, "== APDU trace of one enumeration");
    let _ = writeln!(
        out,
        "(n  CLA INS P1 P2  Lc data  -> SW1SW2, response length  time)"
    );
    match &env.trace {
        Some(trace) => {
            let lines = trace.lines();
            if lines.is_empty() {
                let _ = writeln!(out, "(no card I/O)");
            }
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
        }
        None => {
            let _ = writeln!(out, "(not recorded)");
        }
    }
    out
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

    #[test]
    fn firefox_profiles_ini_relative_and_absolute() {
        let dir = std::env::temp_dir().join(format!("p11card-doctor-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("profiles.ini"),
            "[General]\nStartWithLastProfile=1\n\n[Profile1]\nName=b\nIsRelative=0\n\
             Path=/abs/b\n\n[Profile0]\nName=default\nIsRelative=1\nPath=abc.default\n\n\
             [Install4F96D1932A9F858E]\nDefault=abc.default\n",
        )
        .unwrap();
        assert_eq!(
            firefox_profiles(&dir),
            vec![PathBuf::from("/abs/b"), dir.join("abc.default")]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
