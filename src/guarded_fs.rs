//! Opening files the way a library inside someone else's process must:
//! never through a symlink, never a FIFO or a device, and only files whose
//! owner is the one expected (Unix). On other platforms the plain opens are
//! used; their per-user profile directories are protected by ACLs.

use std::fs::File;
use std::io;
use std::path::Path;

/// The effective user ID: whoever the process acts as.
#[cfg(unix)]
pub(crate) fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Opens a log file for appending: created owner-only (0600), never through
/// a symlink (`O_NOFOLLOW`), not inherited by child programs (`O_CLOEXEC`),
/// without blocking on a FIFO; anything but a regular file owned by the
/// effective user is refused (`PermissionDenied`).
#[cfg(unix)]
pub(crate) fn open_log_file(path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt;
    let flags = OFlags::WRONLY
        | OFlags::APPEND
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NONBLOCK;
    let file = File::from(rustix::fs::open(path, flags, Mode::from_raw_mode(0o600))?);
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != effective_uid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not a regular file of the effective user",
        ));
    }
    Ok(file)
}

/// Opens a log file for appending (created if missing).
#[cfg(not(unix))]
pub(crate) fn open_log_file(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Reads a file that only `owner` can have written: the file and the
/// directory holding it belong to `owner` and are not group- or
/// world-writable, the directory is not a symlink, the file is a regular
/// file opened without following a symlink, and it has at most `limit`
/// bytes.
#[cfg(unix)]
pub(crate) fn read_owned_file(path: &Path, owner: u32, limit: u64) -> Result<String, String> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt;
    let only_owner_writes =
        |meta: &std::fs::Metadata| meta.uid() == owner && meta.mode() & 0o022 == 0;
    let dir = path.parent().ok_or("no directory")?;
    let dir_meta = std::fs::symlink_metadata(dir).map_err(|err| err.to_string())?;
    if !dir_meta.is_dir() || !only_owner_writes(&dir_meta) {
        return Err(format!("directory not {owner}'s alone"));
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = File::from(rustix::fs::open(path, flags, Mode::empty()).map_err(|e| e.to_string())?);
    let meta = file.metadata().map_err(|err| err.to_string())?;
    if !meta.is_file() || !only_owner_writes(&meta) {
        return Err(format!("file not {owner}'s alone"));
    }
    read_limited(file, limit)
}

/// No owner to check: refuses.
#[cfg(not(unix))]
pub(crate) fn read_owned_file(_path: &Path, _owner: u32, _limit: u64) -> Result<String, String> {
    Err("file owners are not checked on this platform".into())
}

#[cfg(unix)]
fn read_limited(file: File, limit: u64) -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    file.take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(|err| err.to_string())?;
    if text.len() as u64 > limit {
        return Err("file too large".into());
    }
    Ok(text)
}

#[cfg(all(test, unix))]
pub(crate) mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    /// A directory of its own for each test, removed when the test ends.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "p11card-{tag}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir(&path).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// `nobody`, as a foreign owner for files the test (run as root) owns.
    pub(crate) const NOBODY: u32 = 65534;

    pub(crate) fn running_as_root() -> bool {
        effective_uid() == 0
    }

    #[test]
    fn log_file_is_created_owner_only_and_appended_to() {
        use std::io::Write;
        let tmp = TempDir::new("log");
        let path = tmp.0.join("p11card.log");
        open_log_file(&path).unwrap().write_all(b"one\n").unwrap();
        open_log_file(&path).unwrap().write_all(b"two\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one\ntwo\n");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.uid(), effective_uid());
    }

    #[test]
    fn log_file_behind_a_symlink_is_refused() {
        let tmp = TempDir::new("log");
        let target = tmp.0.join("target");
        fs::write(&target, b"precious\n").unwrap();
        let link = tmp.0.join("p11card.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open_log_file(&link).is_err());
        let dangling = tmp.0.join("dangling.log");
        std::os::unix::fs::symlink(tmp.0.join("created-through-link"), &dangling).unwrap();
        assert!(open_log_file(&dangling).is_err());
        assert!(!tmp.0.join("created-through-link").exists());
        assert_eq!(fs::read(&target).unwrap(), b"precious\n");
    }

    #[test]
    fn log_file_that_is_no_regular_file_is_refused() {
        let tmp = TempDir::new("log");
        assert!(open_log_file(&tmp.0).is_err(), "a directory");
        let fifo = tmp.0.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|status| status.success()) {
            assert!(open_log_file(&fifo).is_err(), "a FIFO (and no hang)");
        }
    }

    #[test]
    fn log_file_of_another_user_is_refused() {
        if !running_as_root() {
            eprintln!("skipped: chown to another user needs root");
            return;
        }
        let tmp = TempDir::new("log");
        let path = tmp.0.join("p11card.log");
        fs::write(&path, b"theirs\n").unwrap();
        std::os::unix::fs::chown(&path, Some(NOBODY), None).unwrap();
        assert!(open_log_file(&path).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"theirs\n");
    }

    #[test]
    fn owned_file_is_read_only_when_owner_alone_can_write() {
        let owner = effective_uid();
        let tmp = TempDir::new("owned");
        let path = tmp.0.join("p11card.toml");
        fs::write(&path, "log_level = \"warn\"\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            read_owned_file(&path, owner, 1024).unwrap(),
            "log_level = \"warn\"\n"
        );
        assert!(read_owned_file(&path, owner, 4).is_err(), "over the limit");
        assert!(
            read_owned_file(&path, owner + 1, 1024).is_err(),
            "other owner"
        );

        fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
        assert!(
            read_owned_file(&path, owner, 1024).is_err(),
            "group-writable"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

        fs::set_permissions(&tmp.0, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            read_owned_file(&path, owner, 1024).is_err(),
            "open directory"
        );
        fs::set_permissions(&tmp.0, fs::Permissions::from_mode(0o755)).unwrap();

        let link = tmp.0.join("link.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_owned_file(&link, owner, 1024).is_err(), "symlink");

        if running_as_root() {
            std::os::unix::fs::chown(&path, Some(NOBODY), None).unwrap();
            assert!(
                read_owned_file(&path, owner, 1024).is_err(),
                "file of nobody"
            );
            std::os::unix::fs::chown(&path, Some(owner), None).unwrap();
            std::os::unix::fs::chown(&tmp.0, Some(NOBODY), None).unwrap();
            assert!(
                read_owned_file(&path, owner, 1024).is_err(),
                "directory of nobody"
            );
        }
    }
}
