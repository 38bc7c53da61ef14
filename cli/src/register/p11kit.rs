//! p11-kit's module files: the user's (`~/.config/pkcs11/modules`) and the
//! system-wide one (`/etc/pkcs11/modules`).

use super::files::{make_dirs, read_nofollow, remove, write};
use super::{not_the_users, Places, Request, State};
use std::fs;
use std::path::Path;

/// p11-kit's per-user module file.
pub(super) fn p11kit_user(
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

/// p11-kit's system-wide module file, unless the package has one.
pub(super) fn p11kit_system(
    request: &Request,
    places: &Places,
    file: &Path,
    module: Option<&str>,
) -> State {
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
