//! `p11card register` / `p11card unregister`: adds p11card's PKCS#11 module
//! to (or removes it from) the places browsers and p11-kit look for modules.
//!
//! For the user (`$HOME`): each Firefox profile's NSS database (the profiles
//! `profiles.ini` lists, also those of the snap and flatpak Firefox and of
//! the XDG location), Chrome/Chromium's `~/.pki/nssdb`, and p11-kit's
//! `~/.config/pkcs11/modules/p11card.module`. System-wide (`--system`, as
//! root): p11-kit's `/etc/pkcs11/modules/p11card.module` and Firefox's
//! enterprise policy `SecurityDevices` in the `policies.json` Firefox reads.
//!
//! NSS databases are edited in their `pkcs11.txt` (the sql database's module
//! list, one blank-line separated entry per module): an entry `library=PATH`
//! / `name=p11card`, as `modutil -add` writes it. NSS adds its internal
//! module itself when `pkcs11.txt` does not name it, and creates
//! `cert9.db`/`key4.db` next to an existing `pkcs11.txt` when a program
//! opens the directory read-write, as Firefox and Chrome do. Every file is
//! written whole to a temporary file in its directory and renamed over the
//! old one, with the old file's mode and owner; symbolic links are never
//! followed nor replaced.

mod files;
mod firefox;
mod nss;
mod p11kit;

pub use firefox::{
    firefox_has_open, parse_profiles_ini, policy_register, policy_unregister, Profile,
};
pub use nss::{nss_register, nss_unregister};

use crate::exit;
use files::read_following;
use firefox::{firefox_profile, firefox_roots, policy_file, policy_files};
use nss::chrome;
use p11kit::{p11kit_system, p11kit_user};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The module's name in NSS databases and in Firefox's policy.
pub const NSS_NAME: &str = "p11card";
/// p11-kit's module file for p11card.
pub const P11KIT_FILE: &str = "p11card.module";

/// The Debian multiarch tuple of the target p11card was built for.
const MULTIARCH: Option<&str> = if cfg!(not(all(target_os = "linux", target_env = "gnu"))) {
    None
} else if cfg!(target_arch = "x86_64") {
    Some("x86_64-linux-gnu")
} else if cfg!(target_arch = "aarch64") {
    Some("aarch64-linux-gnu")
} else if cfg!(target_arch = "x86") {
    Some("i386-linux-gnu")
} else if cfg!(target_arch = "riscv64") {
    Some("riscv64-linux-gnu")
} else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
    Some("powerpc64le-linux-gnu")
} else if cfg!(target_arch = "s390x") {
    Some("s390x-linux-gnu")
} else if cfg!(target_arch = "loongarch64") {
    Some("loongarch64-linux-gnu")
} else {
    None
};

/// Where the Debian package installs the module
/// (`/usr/lib/<multiarch>/pkcs11/p11card-pkcs11.so`), if the target has a
/// Debian multiarch tuple p11card knows.
pub fn default_module() -> Option<String> {
    MULTIARCH.map(|tuple| format!("/usr/lib/{tuple}/pkcs11/p11card-pkcs11.so"))
}

/// The directories `register` works in: the tests give temporary ones.
#[derive(Debug, Clone)]
pub struct Places {
    /// The user's home directory (`$HOME`), for the per-user places.
    pub home: Option<PathBuf>,
    /// The file system root the system-wide paths (`/etc/…`, `/usr/…`) and
    /// the installed module are looked up under: `/`, except in tests.
    pub root: PathBuf,
    /// The effective user ID: `--system` needs 0; as root, files created in
    /// a user's directories get that directory's owner.
    pub euid: u32,
}

impl Places {
    /// This process's: `$HOME`, `/` and its effective user ID.
    pub fn of_this_process() -> Places {
        Places {
            home: std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(PathBuf::from),
            root: PathBuf::from("/"),
            euid: rustix::process::geteuid().as_raw(),
        }
    }

    /// `path` (absolute) under the root.
    fn under_root(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// How `path` is shown: `~/…` in the home directory, `/…` under the
    /// root.
    fn show(&self, path: &Path) -> String {
        if let Some(rest) = self
            .home
            .as_deref()
            .and_then(|home| path.strip_prefix(home).ok())
        {
            return format!("~/{}", rest.display());
        }
        match path.strip_prefix(&self.root) {
            Ok(rest) => format!("/{}", rest.display()),
            Err(_) => path.display().to_string(),
        }
    }
}

/// What `register` / `unregister` were asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `unregister` rather than `register`.
    pub unregister: bool,
    /// The system-wide places instead of the user's (root only).
    pub system: bool,
    /// Only say what would change.
    pub dry_run: bool,
    /// Print only the places that failed.
    pub quiet: bool,
    /// The module's path (register: instead of the installed one;
    /// unregister: remove only entries naming this path).
    pub module: Option<PathBuf>,
}

/// What happened (or, with `--dry-run`, would happen) at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Added,
    /// Registered before with this other module path.
    Updated(String),
    Registered,
    Removed,
    NotRegistered,
    Skipped(String),
    /// A refusal or an error: the whole message ("refused: …", "failed: …").
    Failed(String),
}

impl State {
    /// The words for the output line.
    fn words(&self, dry_run: bool) -> String {
        match (self, dry_run) {
            (State::Added, false) => "added".to_string(),
            (State::Added, true) => "would add".to_string(),
            (State::Updated(old), false) => format!("updated (was {old})"),
            (State::Updated(old), true) => format!("would update (now {old})"),
            (State::Registered, _) => "already registered".to_string(),
            (State::Removed, false) => "removed".to_string(),
            (State::Removed, true) => "would remove".to_string(),
            (State::NotRegistered, _) => "not registered".to_string(),
            (State::Skipped(why), _) => format!("skipped: {why}"),
            (State::Failed(message), _) => message.clone(),
        }
    }
}

/// One line of the output: a place and what happened there.
struct Line {
    place: String,
    state: State,
}

/// Carries out `request`; writes one line per place to `out`, and a
/// problem that stops everything to `err` as `p11card: MESSAGE`. Exit
/// status 0 when everything is as asked (or there was nothing to do), 1
/// on a failure.
pub fn run(
    request: &Request,
    places: &Places,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let lines = match plan_and_do(request, places) {
        Ok(lines) => lines,
        Err(message) => {
            writeln!(err, "p11card: {message}")?;
            return Ok(exit::FAILED);
        }
    };
    let mut code = exit::OK;
    for line in &lines {
        let failed = matches!(line.state, State::Failed(_));
        if failed {
            code = exit::FAILED;
        }
        if failed || !request.quiet {
            writeln!(out, "{}: {}", line.place, line.state.words(request.dry_run))?;
        }
    }
    Ok(code)
}

/// The module path to register, checked; or for `unregister`, the path
/// whose entries to remove (`None`: any path).
fn module_path(request: &Request, places: &Places) -> Result<Option<String>, String> {
    let given = match &request.module {
        Some(path) => {
            let text = path
                .to_str()
                .filter(|text| !text.chars().any(char::is_control))
                .ok_or_else(|| format!("--module {}: not a usable path", path.display()))?;
            if !path.is_absolute() {
                return Err(format!(
                    "--module wants an absolute path (the programs load the module from it \
                     whatever their working directory), not {text}"
                ));
            }
            Some(text.to_string())
        }
        None => None,
    };
    if request.unregister {
        return Ok(given);
    }
    let (path, from_option) = match given {
        Some(path) => (path, true),
        None => (
            default_module().ok_or(
                "p11card does not know where its module is installed on this architecture; \
                 give the module's path with --module PATH",
            )?,
            false,
        ),
    };
    // The installed module is looked for under the root (the tests' one);
    // a path given with --module is taken as it is.
    let look_at = if from_option {
        PathBuf::from(&path)
    } else {
        places.under_root(&path)
    };
    match fs::metadata(look_at) {
        Ok(meta) if meta.is_file() => Ok(Some(path)),
        Ok(_) => Err(format!("{path} is not a regular file (the PKCS#11 module)")),
        Err(_) if from_option => Err(format!("--module {path}: no such file")),
        Err(_) => Err(format!(
            "p11card's module is not installed at {path}: install the p11card package, \
             or give the module's path with --module PATH"
        )),
    }
}

/// Works out and (unless `--dry-run`) makes the changes, place by place.
fn plan_and_do(request: &Request, places: &Places) -> Result<Vec<Line>, String> {
    if request.system && places.euid != 0 {
        return Err(format!(
            "--system changes files for every user and needs root: run `sudo p11card {} \
             --system`, or leave out --system to {} it for yourself",
            verb(request),
            verb(request)
        ));
    }
    let module = module_path(request, places)?;
    let module = module.as_deref();
    if request.system {
        return Ok(system(request, places, module));
    }
    let home = places
        .home
        .as_deref()
        .ok_or("HOME is not set: p11card finds the browsers' databases in your home directory")?;
    if !home.is_absolute() {
        return Err(format!("HOME ({}) is not an absolute path", home.display()));
    }
    if places.euid == 0 {
        // Another user's links or profiles.ini could point root's writes
        // anywhere (and race any check): that user runs it, as the
        // package's removal does.
        let owner = fs::metadata(home)
            .map_err(|err| format!("HOME ({}): {err}", home.display()))?
            .uid();
        if owner != 0 {
            return Err(format!(
                "as root, p11card {verb}s only in root's own home; {} belongs to uid {owner}: \
                 run it as that user (`runuser -u USER -- p11card {verb}`), or \
                 `p11card {verb} --system` for every user",
                home.display(),
                verb = verb(request)
            ));
        }
    }
    Ok(per_user(request, places, home, module))
}

/// "register" or "unregister".
fn verb(request: &Request) -> &'static str {
    if request.unregister {
        "unregister"
    } else {
        "register"
    }
}

/// The per-user places.
fn per_user(request: &Request, places: &Places, home: &Path, module: Option<&str>) -> Vec<Line> {
    let mut lines = Vec::new();
    for (label, root, always) in firefox_roots(home) {
        let ini = root.join("profiles.ini");
        let text = match read_following(&ini) {
            Ok(Some(text)) => text,
            Ok(None) => {
                if always {
                    lines.push(Line {
                        place: format!("{label} ({})", places.show(&root)),
                        state: State::Skipped("no Firefox profiles (no profiles.ini)".to_string()),
                    });
                }
                continue;
            }
            Err(message) => {
                lines.push(Line {
                    place: format!("{label} ({})", places.show(&ini)),
                    state: State::Failed(format!("failed: {message}")),
                });
                continue;
            }
        };
        let profiles = parse_profiles_ini(&text, &root);
        if profiles.is_empty() {
            lines.push(Line {
                place: format!("{label} ({})", places.show(&ini)),
                state: State::Skipped("profiles.ini lists no profile".to_string()),
            });
        }
        for profile in profiles {
            let state = firefox_profile(request, places, home, &profile.dir, module);
            lines.push(Line {
                place: format!(
                    "{label} profile {} ({})",
                    profile.name,
                    places.show(&profile.dir)
                ),
                state,
            });
        }
    }
    let nssdb = home.join(".pki/nssdb");
    lines.push(Line {
        place: format!("Chrome/Chromium ({})", places.show(&nssdb)),
        state: chrome(request, places, home, &nssdb, module),
    });
    let module_file = home.join(".config/pkcs11/modules").join(P11KIT_FILE);
    lines.push(Line {
        place: format!("p11-kit ({})", places.show(&module_file)),
        state: p11kit_user(request, places, home, &module_file, module),
    });
    lines
}

/// As root (in root's own home): refuses to edit in `dir` if root does not
/// own it (a `profiles.ini` entry or a link may point into another user's
/// directory).
fn not_the_users(places: &Places, home: &Path, dir: &Path) -> Option<State> {
    if places.euid != 0 {
        return None;
    }
    let user = fs::metadata(home).ok()?.uid();
    let owner = fs::metadata(dir).ok()?.uid();
    (owner != user).then(|| {
        State::Failed(format!(
            "refused: {} is not owned by the home directory's owner (uid {user}); \
             p11card edits it only as that user",
            places.show(dir)
        ))
    })
}

/// The system-wide places.
fn system(request: &Request, places: &Places, module: Option<&str>) -> Vec<Line> {
    let mut lines = Vec::new();
    let module_file = places.under_root("/etc/pkcs11/modules").join(P11KIT_FILE);
    lines.push(Line {
        place: format!("p11-kit ({})", places.show(&module_file)),
        state: p11kit_system(request, places, &module_file, module),
    });
    for file in policy_files(request, places) {
        lines.push(Line {
            place: format!("Firefox policy ({})", places.show(&file)),
            state: policy_file(request, places, &file, module),
        });
    }
    lines.push(Line {
        place: "Chrome/Chromium".to_string(),
        state: State::Skipped(
            "Chrome has no system-wide NSS database; each user runs `p11card register`".to_string(),
        ),
    });
    lines
}

/// The effect of an edit on a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to do: registered already (register) or not registered
    /// (unregister).
    None,
    /// The module was added.
    Added,
    /// The module's path was changed from this one.
    Updated(String),
    /// The module was removed.
    Removed,
    /// unregister --module: registered with this other path; left alone.
    OtherPath(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_module_is_the_multiarch_path() {
        if cfg!(all(
            target_arch = "x86_64",
            target_os = "linux",
            target_env = "gnu"
        )) {
            assert_eq!(
                default_module().as_deref(),
                Some("/usr/lib/x86_64-linux-gnu/pkcs11/p11card-pkcs11.so")
            );
        }
    }
}
