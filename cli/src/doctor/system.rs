//! This machine's setup: the PC/SC service, p11-kit's module files, the
//! NSS databases of Firefox and Chrome/Chromium, p11card's configuration
//! file.

use super::{read_small, Environment, Findings, START_PCSCD};
use p11card::config::Config;
use std::path::{Path, PathBuf};

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
pub(super) fn check_pcsc(env: &Environment, findings: &mut Findings) -> bool {
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

/// Whether `text` names p11card.
fn names_p11card(text: &str) -> bool {
    text.to_ascii_lowercase().contains("p11card")
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

pub(super) fn check_p11_kit(env: &Environment, findings: &mut Findings) {
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

pub(super) fn check_nss(env: &Environment, findings: &mut Findings) {
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
pub(super) fn check_config(env: &Environment, findings: &mut Findings) -> Option<Config> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
