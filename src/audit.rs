//! The audit trail: what the card was used for, one line per event, to
//! syslog (journald reads `/dev/log`, facility authpriv) or to a file
//! (owner-only, opened without following symlinks), when the configuration's
//! `[audit]` table switches it on (off by default; a privileged process
//! takes it from the system configuration only).
//!
//! Events: a card recognised in a reader (profile, token serial), each
//! login (user, SO, context-specific: succeeded, failed with the tries
//! left, blocked), each private-key operation (sign, decrypt, derive: the
//! key's `CKA_ID`, its certificate's subject and SHA-256 fingerprint, the
//! mechanism, the result), PIN changes and unblocks; each with the time,
//! the program and its PID. Never a PIN, never data to be signed or
//! decrypted, never a result of such an operation: callers hand over
//! only the fields below, each escaped so that no value can forge a line.

use crate::guarded_fs;
use serde::Deserialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The configuration's `[audit]` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Keep an audit trail.
    #[serde(default)]
    pub enabled: bool,
    /// Write it to this file (created 0600, appended to; refused unless a
    /// regular file of this user, no symlink) instead of syslog.
    pub file: Option<PathBuf>,
}

/// Where the audit lines go.
enum Sink {
    File(std::fs::File),
    #[cfg(unix)]
    Syslog(std::os::unix::net::UnixDatagram),
}

/// The audit trail of one process.
pub struct Audit {
    sink: Mutex<Sink>,
    program: String,
    pid: u32,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

/// syslog priority: facility authpriv (10), severity notice (5).
#[cfg(unix)]
const SYSLOG_PRIORITY: u32 = 10 * 8 + 5;

impl Audit {
    /// The trail `config` asks for, if it asks for one and its place can
    /// be opened (else `None`, and the reason is logged).
    pub fn open(config: &AuditConfig) -> Option<Audit> {
        if !config.enabled {
            return None;
        }
        let sink = match &config.file {
            Some(path) => guarded_fs::open_log_file(path).map(Sink::File),
            #[cfg(unix)]
            None => syslog_socket(std::path::Path::new("/dev/log")),
            #[cfg(not(unix))]
            None => Err(std::io::Error::other("no syslog here: name an audit file")),
        };
        match sink {
            Ok(sink) => Some(Audit {
                sink: Mutex::new(sink),
                program: program_name(),
                pid: std::process::id(),
            }),
            Err(error) => {
                log::error!("audit trail cannot be opened: {error}");
                None
            }
        }
    }

    /// Records `event` with its `fields` (name, value); values are escaped.
    pub fn record(&self, event: &str, fields: &[(&str, String)]) {
        let mut line = format!(
            "p11card-audit event={event} program={} pid={}",
            quoted(&self.program),
            self.pid
        );
        for (name, value) in fields {
            line.push(' ');
            line.push_str(name);
            line.push('=');
            line.push_str(&quoted(value));
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let written = match &mut *sink {
            Sink::File(file) => writeln!(file, "{} {line}", utc_now()),
            #[cfg(unix)]
            Sink::Syslog(socket) => socket
                .send(format!("<{SYSLOG_PRIORITY}>p11card[{}]: {line}", self.pid).as_bytes())
                .map(|_| ()),
        };
        if let Err(error) = written {
            log::error!("audit record not written: {error}");
        }
    }
}

/// A datagram socket to the syslog socket at `path` (journald listens on
/// `/dev/log`).
#[cfg(unix)]
fn syslog_socket(path: &std::path::Path) -> std::io::Result<Sink> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.connect(path)?;
    Ok(Sink::Syslog(socket))
}

/// The program's name (its executable's file name), for the trail.
fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".into())
}

/// `value` as one token: bare if it is plain, else in double quotes with
/// quotes, backslashes and every control character escaped.
fn quoted(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/+@".contains(c));
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || c.is_whitespace() && c != ' ' => out.extend(c.escape_unicode()),
            c if ('\u{202A}'..='\u{202E}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                out.extend(c.escape_unicode())
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The time now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_790), (2026, 12, 3));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn values_cannot_forge_a_line() {
        assert_eq!(quoted("01"), "01");
        assert_eq!(quoted("CN=Alice, O=X"), "\"CN=Alice, O=X\"");
        let forged = quoted("x\nevent=login result=ok\u{202E}\"");
        assert!(!forged.contains('\n') && !forged.contains('\u{202E}'));
        assert!(forged.ends_with("\\\"\""));
        assert_eq!(quoted(""), "\"\"");
    }

    #[cfg(unix)]
    #[test]
    fn syslog_gets_authpriv_notice_datagrams() {
        let dir = std::env::temp_dir().join(format!("p11card-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let audit = Audit {
            sink: Mutex::new(syslog_socket(&path).unwrap()),
            program: "test".into(),
            pid: 7,
        };
        audit.record("login", &[("result", "ok".into())]);
        let mut buffer = [0u8; 512];
        let len = listener.recv(&mut buffer).unwrap();
        assert_eq!(
            std::str::from_utf8(&buffer[..len]).unwrap(),
            "<85>p11card[7]: p11card-audit event=login program=test pid=7 result=ok"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_trail_gets_one_line_per_event() {
        let dir = std::env::temp_dir().join(format!("p11card-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("audit.log");
        let _ = std::fs::remove_file(&file);
        let audit = Audit::open(&AuditConfig {
            enabled: true,
            file: Some(file.clone()),
        })
        .expect("the file opens");
        audit.record("login", &[("user", "user".into()), ("result", "ok".into())]);
        audit.record("sign", &[("key_id", "01".into())]);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("event=login"));
        assert!(text
            .lines()
            .all(|l| l.contains(&format!("pid={}", std::process::id()))));
        assert!(Audit::open(&AuditConfig::default()).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
