//! Firefox: the profiles `profiles.ini` lists (also those of the snap and
//! flatpak Firefox and of the XDG location), the lock Firefox holds on a
//! profile it has open, and the enterprise policy `SecurityDevices` in
//! `policies.json`.

use super::files::{open_nofollow, read_nofollow, remove, write};
use super::nss::nss_db;
use super::{not_the_users, verb, Change, Places, Request, State, NSS_NAME};
use serde_json::{Map, Value};
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The Firefox profile roots in a home directory: the label and the
/// directory holding `profiles.ini`, and whether a missing one is worth a
/// line.
pub(super) fn firefox_roots(home: &Path) -> [(&'static str, PathBuf, bool); 4] {
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

/// One Firefox profile's NSS database.
pub(super) fn firefox_profile(
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

/// The `policies.json` files to edit. Firefox reads
/// `/etc/firefox/policies/policies.json` (Debian's firefox-esr too: its
/// system configuration directory is `/etc/firefox`) and only when that
/// does not exist its installation's `distribution/policies.json`. So
/// register edits the `/etc` one if it exists, else the distribution ones
/// that exist (creating `/etc/firefox/policies/policies.json` would hide
/// them), else creates the `/etc` one; unregister edits all that exist.
pub(super) fn policy_files(request: &Request, places: &Places) -> Vec<PathBuf> {
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
pub(super) fn policy_file(
    request: &Request,
    places: &Places,
    file: &Path,
    module: Option<&str>,
) -> State {
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

#[cfg(test)]
mod tests {
    use super::*;

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
