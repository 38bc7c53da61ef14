//! The diagnostic report `--report FILE` writes.

use super::{read_small, Environment, Findings};
use crate::Failure;
use p11card::config::Config;
use p11card::Context;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates the report file: a new file only (no overwriting, not through
/// a symbolic link), readable by its owner alone.
pub(super) fn create_report(path: &Path) -> Result<std::fs::File, Failure> {
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
pub(super) fn report_text(
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
