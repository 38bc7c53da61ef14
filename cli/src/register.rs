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

use crate::exit;
use serde_json::{Map, Value};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The module's name in NSS databases and in Firefox's policy.
pub const NSS_NAME: &str = "p11card";
/// p11-kit's module file for p11card.
pub const P11KIT_FILE: &str = "p11card.module";
/// The largest `pkcs11.txt`, `policies.json`, `profiles.ini` or module file
/// p11card reads.
const MAX_FILE: u64 = 1 << 20;

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

/// The Firefox profile roots in a home directory: the label and the
/// directory holding `profiles.ini`, and whether a missing one is worth a
/// line.
fn firefox_roots(home: &Path) -> [(&'static str, PathBuf, bool); 4] {
    [
        ("Firefox", home.join(".mozilla/firefox"), true),
        ("Firefox", home.join(".config/mozilla/firefox"), false),
        (
            "Firefox (snap)",
            home.join("snap/firefox/common/.mozilla/firefox"),
            false,
        ),
        (
            "Firefox (flatpak)",
            home.join(".var/app/org.mozilla.firefox/.mozilla/firefox"),
            false,
        ),
    ]
}

/// A Firefox profile `profiles.ini` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name (`Name=`), or its directory's name.
    pub name: String,
    /// Its directory (`Path=`, relative to `profiles.ini`'s directory
    /// when `IsRelative=1`).
    pub dir: PathBuf,
}

/// The profiles of a `profiles.ini` whose directory is `base`: the
/// `[ProfileN]` sections with a `Path=`.
pub fn parse_profiles_ini(text: &str, base: &Path) -> Vec<Profile> {
    #[derive(Default)]
    struct Section {
        name: Option<String>,
        path: Option<String>,
        relative: bool,
    }
    let mut sections = Vec::new();
    let mut current: Option<Section> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            sections.extend(current.take());
            let title = &line[1..line.len() - 1];
            if title.starts_with("Profile") {
                current = Some(Section {
                    relative: true,
                    ..Section::default()
                });
            }
            continue;
        }
        let (Some(section), Some((key, value))) = (current.as_mut(), line.split_once('=')) else {
            continue;
        };
        match key.trim() {
            "Name" => section.name = Some(value.trim().to_string()),
            "Path" => section.path = Some(value.trim().to_string()),
            "IsRelative" => section.relative = value.trim() != "0",
            _ => {}
        }
    }
    sections.extend(current);
    sections
        .into_iter()
        .filter_map(|section| {
            let path = section.path.filter(|path| !path.is_empty())?;
            let dir = if section.relative {
                base.join(&path)
            } else {
                PathBuf::from(&path)
            };
            let name = section.name.unwrap_or(path);
            Some(Profile { name, dir })
        })
        .collect()
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

/// One Firefox profile's NSS database.
fn firefox_profile(
    request: &Request,
    places: &Places,
    home: &Path,
    dir: &Path,
    module: Option<&str>,
) -> State {
    if !dir.is_dir() {
        return State::Skipped("the profile's directory does not exist".to_string());
    }
    if let Some(refused) = not_the_users(places, home, dir) {
        return refused;
    }
    if firefox_has_open(dir) {
        return State::Failed(format!(
            "refused: Firefox has this profile open; close Firefox and run `p11card {}` again",
            verb(request)
        ));
    }
    nss_db(request, places, dir, module)
}

/// Chrome/Chromium's database, created (mode 0700) if absent.
fn chrome(
    request: &Request,
    places: &Places,
    home: &Path,
    nssdb: &Path,
    module: Option<&str>,
) -> State {
    if !nssdb.is_dir() {
        if request.unregister {
            return State::NotRegistered;
        }
        if !request.dry_run {
            if let Err(err) = make_dirs(home, &[".pki", "nssdb"], 0o700, places) {
                return State::Failed(format!("failed: cannot create it: {err}"));
            }
        }
    }
    if let Some(refused) = not_the_users(places, home, nssdb) {
        return refused;
    }
    nss_db(request, places, nssdb, module)
}

/// As root in another user's home directory: refuses to edit in `dir` if
/// that user does not own it (their `profiles.ini` or a link of theirs
/// may point anywhere).
fn not_the_users(places: &Places, home: &Path, dir: &Path) -> Option<State> {
    if places.euid != 0 {
        return None;
    }
    let user = fs::metadata(home).ok()?.uid();
    let owner = fs::metadata(dir).ok()?.uid();
    (user != 0 && owner != user).then(|| {
        State::Failed(format!(
            "refused: {} is not owned by the home directory's owner (uid {user}); \
             p11card edits it only as that user",
            places.show(dir)
        ))
    })
}

/// Whether Firefox has the profile in `dir` open: Firefox holds a POSIX
/// lock on `.parentlock` while it runs (so a `.parentlock` p11card can lock
/// is not in use, whatever else is left from a crash); where the file
/// system has no such locks, its `lock` symbolic link ("ADDRESS:+PID")
/// naming a process that is alive.
pub fn firefox_has_open(dir: &Path) -> bool {
    use rustix::fs::{fcntl_lock, FlockOperation};
    use rustix::io::Errno;
    let parentlock = dir.join(".parentlock");
    if fs::symlink_metadata(&parentlock).is_ok_and(|meta| meta.is_file()) {
        if let Ok(file) = open_nofollow(&parentlock) {
            match fcntl_lock(&file, FlockOperation::NonBlockingLockShared) {
                // Ours now (closing the file releases it): Firefox is not
                // running on this profile.
                Ok(()) => return false,
                Err(Errno::AGAIN | Errno::ACCESS) => return true,
                // No locks on this file system: the link decides.
                Err(_) => {}
            }
        }
    }
    if let Ok(target) = fs::read_link(dir.join("lock")) {
        let target = target.to_string_lossy();
        return match target.rsplit_once(":+").map(|(_, pid)| pid.parse::<u32>()) {
            Some(Ok(pid)) => Path::new("/proc").join(pid.to_string()).exists(),
            // A lock p11card cannot read: better not to touch the profile.
            _ => true,
        };
    }
    false
}

/// p11-kit's per-user module file.
fn p11kit_user(
    request: &Request,
    places: &Places,
    home: &Path,
    file: &Path,
    module: Option<&str>,
) -> State {
    if !request.unregister {
        for system in [
            "/usr/share/p11-kit/modules/p11card.module",
            "/etc/pkcs11/modules/p11card.module",
        ] {
            if fs::symlink_metadata(places.under_root(system)).is_ok() {
                return State::Skipped(format!(
                    "p11-kit already loads p11card for every user ({system})"
                ));
            }
        }
        if !request.dry_run && !file.parent().is_some_and(Path::is_dir) {
            if let Err(err) = make_dirs(home, &[".config", "pkcs11", "modules"], 0o755, places) {
                return State::Failed(format!("failed: cannot create its directory: {err}"));
            }
        }
    }
    if let Some(refused) = file
        .parent()
        .and_then(|dir| not_the_users(places, home, dir))
    {
        return refused;
    }
    p11kit_file(request, places, file, module)
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

/// p11-kit's system-wide module file, unless the package has one.
fn p11kit_system(request: &Request, places: &Places, file: &Path, module: Option<&str>) -> State {
    let packaged = "/usr/share/p11-kit/modules/p11card.module";
    if !request.unregister {
        if fs::symlink_metadata(places.under_root(packaged)).is_ok() {
            return State::Skipped(format!(
                "the p11card package already registers the module with p11-kit ({packaged})"
            ));
        }
        if !request.dry_run {
            if let Err(err) = make_dirs(&places.root, &["etc", "pkcs11", "modules"], 0o755, places)
            {
                return State::Failed(format!("failed: cannot create its directory: {err}"));
            }
        }
    }
    p11kit_file(request, places, file, module)
}

/// The `policies.json` files to edit. Firefox reads
/// `/etc/firefox/policies/policies.json` (Debian's firefox-esr too: its
/// system configuration directory is `/etc/firefox`) and only when that
/// does not exist its installation's `distribution/policies.json`. So
/// register edits the `/etc` one if it exists, else the distribution ones
/// that exist (creating `/etc/firefox/policies/policies.json` would hide
/// them), else creates the `/etc` one; unregister edits all that exist.
fn policy_files(request: &Request, places: &Places) -> Vec<PathBuf> {
    let etc = places.under_root("/etc/firefox/policies/policies.json");
    let distributions: Vec<PathBuf> = [
        "/usr/lib/firefox-esr/distribution/policies.json",
        "/usr/lib/firefox/distribution/policies.json",
    ]
    .iter()
    .map(|path| places.under_root(path))
    .filter(|path| fs::symlink_metadata(path).is_ok())
    .collect();
    let etc_exists = fs::symlink_metadata(&etc).is_ok();
    if request.unregister {
        let mut files: Vec<PathBuf> = etc_exists.then(|| etc.clone()).into_iter().collect();
        files.extend(distributions);
        if files.is_empty() {
            files.push(etc);
        }
        files
    } else if etc_exists || distributions.is_empty() {
        vec![etc]
    } else {
        distributions
    }
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

/// Whether an NSS `pkcs11.txt` entry (its lines) is p11card's.
fn nss_entry_is_ours(entry: &[&str]) -> bool {
    entry.iter().any(|line| {
        let line = line.trim();
        line == "name=p11card" || line == "name=\"p11card\""
    })
}

/// An NSS `pkcs11.txt` entry's library path.
fn nss_entry_library(entry: &[&str]) -> Option<String> {
    entry.iter().find_map(|line| {
        let value = line.trim().strip_prefix("library=")?;
        Some(value.trim_matches('"').to_string())
    })
}

/// A `pkcs11.txt`'s entries: runs of non-blank lines.
fn nss_entries(text: &str) -> Vec<Vec<&str>> {
    let mut entries = vec![Vec::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            if !entries.last().is_some_and(Vec::is_empty) {
                entries.push(Vec::new());
            }
        } else if let Some(last) = entries.last_mut() {
            last.push(line);
        }
    }
    entries.retain(|entry| !entry.is_empty());
    entries
}

/// A `pkcs11.txt` from its entries, each followed by a blank line (as NSS
/// writes it).
fn nss_text(entries: &[Vec<&str>]) -> String {
    entries
        .iter()
        .map(|entry| format!("{}\n\n", entry.join("\n")))
        .collect()
}

/// `pkcs11.txt` with p11card's entry for `library` (added, or its path
/// updated; duplicates dropped), and what changed.
pub fn nss_register(text: &str, library: &str) -> (String, Change) {
    let library_line = format!("library={library}");
    let name_line = format!("name={NSS_NAME}");
    let mut change = Change::Added;
    let mut seen = false;
    let mut entries = Vec::new();
    for entry in nss_entries(text) {
        if !nss_entry_is_ours(&entry) {
            entries.push(entry);
            continue;
        }
        if seen {
            // A second p11card entry: one is enough.
            if change == Change::None {
                change = Change::Updated(library.to_string());
            }
            continue;
        }
        seen = true;
        match nss_entry_library(&entry) {
            Some(old) if old == library => {
                change = Change::None;
                entries.push(entry);
            }
            old => {
                change = Change::Updated(old.unwrap_or_default());
                let mut entry: Vec<&str> = entry
                    .into_iter()
                    .filter(|line| !line.trim().starts_with("library="))
                    .collect();
                entry.insert(0, &library_line);
                entries.push(entry);
            }
        }
    }
    if !seen {
        entries.push(vec![&library_line, &name_line]);
    }
    (nss_text(&entries), change)
}

/// `pkcs11.txt` without p11card's entries (with `only`: only those naming
/// that library), and what changed.
pub fn nss_unregister(text: &str, only: Option<&str>) -> (String, Change) {
    let mut change = Change::None;
    let mut entries = Vec::new();
    for entry in nss_entries(text) {
        if nss_entry_is_ours(&entry) {
            let library = nss_entry_library(&entry).unwrap_or_default();
            if only.is_none_or(|only| only == library) {
                change = Change::Removed;
                continue;
            }
            if change == Change::None {
                change = Change::OtherPath(library);
            }
        }
        entries.push(entry);
    }
    (nss_text(&entries), change)
}

/// A p11-kit module file's `module:` path.
fn p11kit_module(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("module:"))
        .map(str::trim)
}

/// The p11-kit module file p11card writes.
fn p11kit_text(library: &str) -> String {
    format!(
        "# p11card's PKCS#11 module, for programs that load modules through p11-kit.\n\
         # Written by `p11card register`; `p11card unregister` removes it.\n\
         module: {library}\n"
    )
}

/// A p11-kit module file (registered: it names our module).
fn p11kit_file(request: &Request, places: &Places, file: &Path, module: Option<&str>) -> State {
    let existing = match read_nofollow(file) {
        Ok(existing) => existing,
        Err(message) => return State::Failed(format!("refused: {message}")),
    };
    match (request.unregister, existing) {
        (true, None) => State::NotRegistered,
        (true, Some(existing)) => {
            let current = p11kit_module(&existing.text).unwrap_or_default();
            if let Some(only) = module.filter(|only| *only != current) {
                return State::Skipped(format!("it names another module ({current}), not {only}"));
            }
            remove(request, file, State::Removed)
        }
        (false, existing) => {
            let library = module.unwrap_or_default();
            let (text, state) = match &existing {
                None => (p11kit_text(library), State::Added),
                Some(existing) => match p11kit_module(&existing.text) {
                    Some(current) if current == library => return State::Registered,
                    Some(current) => (
                        existing
                            .text
                            .lines()
                            .map(|line| {
                                if line.trim().starts_with("module:") {
                                    format!("module: {library}\n")
                                } else {
                                    format!("{line}\n")
                                }
                            })
                            .collect(),
                        State::Updated(current.to_string()),
                    ),
                    None => (
                        p11kit_text(library),
                        State::Updated("no module line".to_string()),
                    ),
                },
            };
            write(
                request,
                places,
                file,
                existing.as_ref(),
                0o644,
                &text,
                state,
            )
        }
    }
}

/// An NSS database directory's `pkcs11.txt`.
fn nss_db(request: &Request, places: &Places, dir: &Path, module: Option<&str>) -> State {
    let file = dir.join("pkcs11.txt");
    let existing = match read_nofollow(&file) {
        Ok(existing) => existing,
        Err(message) => return State::Failed(format!("refused: {message}")),
    };
    let text = existing
        .as_ref()
        .map_or("", |existing| existing.text.as_str());
    let (new_text, change) = if request.unregister {
        nss_unregister(text, module)
    } else {
        nss_register(text, module.unwrap_or_default())
    };
    let state = match change {
        Change::None if request.unregister => return State::NotRegistered,
        Change::None => return State::Registered,
        Change::OtherPath(path) => {
            return State::Skipped(format!(
                "registered with another module ({path}); left alone"
            ))
        }
        Change::Added => State::Added,
        Change::Updated(old) => State::Updated(old),
        Change::Removed => State::Removed,
    };
    write(
        request,
        places,
        &file,
        existing.as_ref(),
        0o600,
        &new_text,
        state,
    )
}

/// Firefox's `SecurityDevices` policy with p11card's device for `library`,
/// and what changed. The policy's new form (`Add`) unless the file uses
/// the old one (device names directly under `SecurityDevices`).
pub fn policy_register(policies: &mut Value, library: &str) -> Result<Change, String> {
    let devices = policy_devices(policies, true)?.ok_or("no SecurityDevices")?;
    let old_form =
        !devices.is_empty() && !devices.contains_key("Add") && !devices.contains_key("Delete");
    let add = if old_form {
        devices
    } else {
        devices
            .entry("Add")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or("SecurityDevices.Add is not an object")?
    };
    let change = match add.get(NSS_NAME) {
        Some(Value::String(current)) if current == library => return Ok(Change::None),
        Some(current) => Change::Updated(current.as_str().unwrap_or_default().to_string()),
        None => Change::Added,
    };
    add.insert(NSS_NAME.to_string(), Value::String(library.to_string()));
    Ok(change)
}

/// Firefox's policies without p11card's security device (with `only`:
/// only if it names that library); emptied `Add`, `SecurityDevices` are
/// removed too.
pub fn policy_unregister(policies: &mut Value, only: Option<&str>) -> Result<Change, String> {
    let Some(devices) = policy_devices(policies, false)? else {
        return Ok(Change::None);
    };
    let mut change = Change::None;
    for add in [true, false] {
        let map = if add {
            match devices.get_mut("Add").and_then(Value::as_object_mut) {
                Some(map) => map,
                None => continue,
            }
        } else {
            &mut *devices
        };
        if let Some(Value::String(current)) = map.get(NSS_NAME) {
            if only.is_some_and(|only| only != current) {
                change = Change::OtherPath(current.clone());
                continue;
            }
            map.remove(NSS_NAME);
            change = Change::Removed;
        }
    }
    if devices
        .get("Add")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        devices.remove("Add");
    }
    if devices.is_empty() {
        if let Some(map) = policies.get_mut("policies").and_then(Value::as_object_mut) {
            map.remove("SecurityDevices");
        }
    }
    Ok(change)
}

/// `policies.SecurityDevices` (created when `create`).
fn policy_devices(
    policies: &mut Value,
    create: bool,
) -> Result<Option<&mut Map<String, Value>>, String> {
    let top = policies.as_object_mut().ok_or("it is not a JSON object")?;
    if !create && !top.contains_key("policies") {
        return Ok(None);
    }
    let inner = top
        .entry("policies")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or("its \"policies\" is not a JSON object")?;
    if !create && !inner.contains_key("SecurityDevices") {
        return Ok(None);
    }
    inner
        .entry("SecurityDevices")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .map(Some)
        .ok_or_else(|| "its \"SecurityDevices\" is not a JSON object".to_string())
}

/// Whether nothing but an empty `policies` is left.
fn policies_empty(policies: &Value) -> bool {
    policies.as_object().is_some_and(|top| {
        top.len() == 1
            && top
                .get("policies")
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
    })
}

/// One `policies.json`.
fn policy_file(request: &Request, places: &Places, file: &Path, module: Option<&str>) -> State {
    let existing = match read_nofollow(file) {
        Ok(existing) => existing,
        Err(message) => return State::Failed(format!("refused: {message}")),
    };
    if request.unregister && existing.is_none() {
        return State::NotRegistered;
    }
    let mut policies = match &existing {
        Some(existing) => match serde_json::from_str::<Value>(&existing.text) {
            Ok(value) => value,
            Err(err) => {
                return State::Failed(format!(
                    "refused: it is not valid JSON ({err}); Firefox ignores it too"
                ))
            }
        },
        None => Value::Object(Map::new()),
    };
    let change = if request.unregister {
        policy_unregister(&mut policies, module)
    } else {
        policy_register(&mut policies, module.unwrap_or_default())
    };
    let state = match change {
        Err(message) => return State::Failed(format!("refused: {message}")),
        Ok(Change::None) if request.unregister => return State::NotRegistered,
        Ok(Change::None) => return State::Registered,
        Ok(Change::OtherPath(path)) => {
            return State::Skipped(format!("it registers another module ({path}); left alone"))
        }
        Ok(Change::Added) => State::Added,
        Ok(Change::Updated(old)) => State::Updated(old),
        Ok(Change::Removed) => State::Removed,
    };
    if request.unregister && policies_empty(&policies) {
        // Nothing else in it: an empty /etc/firefox/policies/policies.json
        // would still hide the installation's own policies.
        return remove(request, file, state);
    }
    if !request.unregister && !request.dry_run && existing.is_none() {
        if let Some(parent) = file.parent() {
            if let Err(err) = fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
            {
                return State::Failed(format!("failed: cannot create its directory: {err}"));
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&policies).unwrap_or_default();
    text.push('\n');
    write(
        request,
        places,
        file,
        existing.as_ref(),
        0o644,
        &text,
        state,
    )
}

/// A file p11card edits, as read.
struct Existing {
    text: String,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Opens `path` for reading without following a symbolic link.
fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Reads at most [`MAX_FILE`] bytes of UTF-8 from `file`.
fn read_bounded(file: File, path: &Path) -> Result<String, String> {
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    if text.len() as u64 > MAX_FILE {
        return Err(format!(
            "{} is larger than {MAX_FILE} bytes; p11card does not edit it",
            path.display()
        ));
    }
    Ok(text)
}

/// A file p11card only reads (`profiles.ini`): `None` if absent.
fn read_following(path: &Path) -> Result<Option<String>, String> {
    match File::open(path) {
        Ok(file) => read_bounded(file, path).map(Some),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("cannot read it: {err}")),
    }
}

/// A file p11card edits: `None` if absent; refused if it is a symbolic
/// link or not a regular file.
fn read_nofollow(path: &Path) -> Result<Option<Existing>, String> {
    match fs::symlink_metadata(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("cannot look at it: {err}")),
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err("it is a symbolic link; p11card does not edit through links".to_string())
        }
        Ok(meta) if !meta.is_file() => return Err("it is not a regular file".to_string()),
        Ok(_) => {}
    }
    let file = open_nofollow(path).map_err(|err| format!("cannot open it: {err}"))?;
    let meta = file
        .metadata()
        .map_err(|err| format!("cannot look at it: {err}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".to_string());
    }
    let text = read_bounded(file, path)?;
    Ok(Some(Existing {
        text,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    }))
}

/// Creates the directories `names` one inside the other under `base`,
/// each with `mode`; as root, owned by `base`'s owner.
fn make_dirs(base: &Path, names: &[&str], mode: u32, places: &Places) -> io::Result<()> {
    let owner = fs::metadata(base)?;
    let mut dir = base.to_path_buf();
    for name in names {
        dir.push(name);
        match fs::DirBuilder::new().mode(mode).create(&dir) {
            Ok(()) => {
                if places.euid == 0 && owner.uid() != 0 {
                    std::os::unix::fs::chown(&dir, Some(owner.uid()), Some(owner.gid()))?;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Writes `text` to `path` (unless `--dry-run`): to a temporary file in the
/// same directory, renamed over it; with the old file's mode and owner, or
/// for a new file `mode` and (as root) the directory's owner. Returns
/// `state`, or the failure.
fn write(
    request: &Request,
    places: &Places,
    path: &Path,
    existing: Option<&Existing>,
    mode: u32,
    text: &str,
    state: State,
) -> State {
    if request.dry_run {
        return state;
    }
    match write_atomic(places, path, existing, mode, text) {
        Ok(()) => state,
        Err(err) => State::Failed(format!("failed: cannot write {}: {err}", path.display())),
    }
}

/// See [`write`].
fn write_atomic(
    places: &Places,
    path: &Path,
    existing: Option<&Existing>,
    mode: u32,
    text: &str,
) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    let (mode, owner) = match existing {
        Some(existing) => (existing.mode, Some((existing.uid, existing.gid))),
        None => {
            let dir_meta = fs::metadata(dir)?;
            (mode, Some((dir_meta.uid(), dir_meta.gid())))
        }
    };
    let temp = dir.join(format!(
        ".{}.p11card-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        if let Some((uid, gid)) = owner.filter(|_| places.euid == 0) {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes `path` (unless `--dry-run`); returns `state`, or the failure.
fn remove(request: &Request, path: &Path, state: State) -> State {
    if request.dry_run {
        return state;
    }
    match fs::remove_file(path) {
        Ok(()) => state,
        Err(err) => State::Failed(format!("failed: cannot remove it: {err}")),
    }
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

    #[test]
    fn profiles_ini_relative_and_absolute() {
        let ini = "[Install4F96D1932A9F858E]\nDefault=abc.default-esr\nLocked=1\n\n\
                   [Profile1]\nName=work\nIsRelative=0\nPath=/data/ff/work\n\n\
                   [Profile0]\nName=default-esr\nIsRelative=1\nPath=abc.default-esr\nDefault=1\n\n\
                   [General]\nStartWithLastProfile=1\nVersion=2\n";
        let profiles = parse_profiles_ini(ini, Path::new("/home/a/.mozilla/firefox"));
        assert_eq!(
            profiles,
            vec![
                Profile {
                    name: "work".into(),
                    dir: "/data/ff/work".into()
                },
                Profile {
                    name: "default-esr".into(),
                    dir: "/home/a/.mozilla/firefox/abc.default-esr".into()
                },
            ]
        );
    }

    #[test]
    fn nss_entries_keep_other_modules() {
        let text =
            "library=\nname=NSS Internal PKCS #11 Module\nparameters=x\nNSS=Flags=internal\n\n\
                    library=/other.so\nname=other\n\n";
        let (added, change) = nss_register(text, "/m.so");
        assert_eq!(change, Change::Added);
        assert_eq!(added, format!("{text}library=/m.so\nname=p11card\n\n"));
        assert_eq!(nss_register(&added, "/m.so"), (added.clone(), Change::None));
        let (updated, change) = nss_register(&added, "/n.so");
        assert_eq!(change, Change::Updated("/m.so".into()));
        assert_eq!(updated, format!("{text}library=/n.so\nname=p11card\n\n"));
        assert_eq!(
            nss_unregister(&updated, Some("/m.so")).1,
            Change::OtherPath("/n.so".into())
        );
        assert_eq!(
            nss_unregister(&updated, None),
            (text.to_string(), Change::Removed)
        );
        assert_eq!(nss_unregister(text, None), (text.to_string(), Change::None));
    }

    #[test]
    fn policies_merge_and_unmerge() {
        let mut value: Value = serde_json::from_str(
            r#"{"policies":{"DisableTelemetry":true,"SecurityDevices":{"Add":{"opensc":"/o.so"}}}}"#,
        )
        .unwrap();
        let before = value.clone();
        assert_eq!(policy_register(&mut value, "/m.so"), Ok(Change::Added));
        assert_eq!(
            value["policies"]["SecurityDevices"]["Add"]["p11card"],
            "/m.so"
        );
        assert_eq!(policy_register(&mut value, "/m.so"), Ok(Change::None));
        assert_eq!(policy_unregister(&mut value, None), Ok(Change::Removed));
        assert_eq!(value, before);
        // The old form: device names right under SecurityDevices.
        let mut old: Value =
            serde_json::from_str(r#"{"policies":{"SecurityDevices":{"opensc":"/o.so"}}}"#).unwrap();
        assert_eq!(policy_register(&mut old, "/m.so"), Ok(Change::Added));
        assert_eq!(old["policies"]["SecurityDevices"]["p11card"], "/m.so");
        assert_eq!(policy_unregister(&mut old, None), Ok(Change::Removed));
        assert_eq!(old["policies"]["SecurityDevices"]["opensc"], "/o.so");
        // Created from nothing and emptied again.
        let mut fresh = Value::Object(Map::new());
        assert_eq!(policy_register(&mut fresh, "/m.so"), Ok(Change::Added));
        assert_eq!(
            fresh,
            serde_json::json!({"policies":{"SecurityDevices":{"Add":{"p11card":"/m.so"}}}})
        );
        assert_eq!(policy_unregister(&mut fresh, None), Ok(Change::Removed));
        assert!(policies_empty(&fresh));
        assert!(policy_register(&mut serde_json::json!([1]), "/m.so").is_err());
    }
}
