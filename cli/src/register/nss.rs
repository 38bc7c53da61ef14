//! NSS databases: their `pkcs11.txt` module list (Firefox profiles and
//! Chrome/Chromium's `~/.pki/nssdb`).

use super::files::{make_dirs, read_nofollow, write};
use super::{not_the_users, Change, Places, Request, State, NSS_NAME};
use std::path::Path;

/// Chrome/Chromium's database, created (mode 0700) if absent.
pub(super) fn chrome(
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

/// An NSS database directory's `pkcs11.txt`.
pub(super) fn nss_db(
    request: &Request,
    places: &Places,
    dir: &Path,
    module: Option<&str>,
) -> State {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
