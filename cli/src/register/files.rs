//! Reading and writing the files `register` edits: bounded reads, no
//! symbolic links followed, atomic replacement keeping mode and owner.

use super::{Places, Request, State};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The largest `pkcs11.txt`, `policies.json`, `profiles.ini` or module file
/// p11card reads.
const MAX_FILE: u64 = 1 << 20;

/// A file p11card edits, as read.
pub(super) struct Existing {
    pub(super) text: String,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Opens `path` for reading without following a symbolic link, and
/// without blocking on a FIFO put in a file's place.
pub(super) fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
}

/// Reads at most [`MAX_FILE`] bytes of UTF-8 from `file`, which must be a
/// regular file.
fn read_bounded(file: File, path: &Path) -> Result<String, String> {
    let regular = file.metadata().is_ok_and(|meta| meta.is_file());
    if !regular {
        return Err(format!("{} is not a regular file", path.display()));
    }
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
pub(super) fn read_following(path: &Path) -> Result<Option<String>, String> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path);
    match opened {
        Ok(file) => read_bounded(file, path).map(Some),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("cannot read it: {err}")),
    }
}

/// A file p11card edits: `None` if absent; refused if it is a symbolic
/// link or not a regular file.
pub(super) fn read_nofollow(path: &Path) -> Result<Option<Existing>, String> {
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
/// each with exactly `mode`; as root, owned by `base`'s owner.
pub(super) fn make_dirs(base: &Path, names: &[&str], mode: u32, places: &Places) -> io::Result<()> {
    let owner = fs::metadata(base)?;
    let mut dir = base.to_path_buf();
    for name in names {
        dir.push(name);
        match fs::DirBuilder::new().mode(mode).create(&dir) {
            Ok(()) => {
                // Exactly `mode`, whatever the umask (a 0700 umask would
                // otherwise hide `/etc/pkcs11/modules` from every user).
                fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
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
pub(super) fn write(
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
pub(super) fn remove(request: &Request, path: &Path, state: State) -> State {
    if request.dry_run {
        return state;
    }
    match fs::remove_file(path) {
        Ok(()) => state,
        Err(err) => State::Failed(format!("failed: cannot remove it: {err}")),
    }
}
