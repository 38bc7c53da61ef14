//! The cache directory as an opened handle: every entry is opened, created,
//! renamed and removed relative to it, never through a symlink, so nothing
//! can swap a path component between a check and a use.
//!
//! Unix: the directory's path is walked from `/` one component at a time.
//! Each directory on the way belongs to root or the effective user (the
//! ones p11card creates, 0700, to the effective user); a symlink on the way
//! is followed only where the directory holding it is neither group- nor
//! world-writable (so only root or the user can have put it there). The
//! cache directory itself is no symlink, belongs to the effective user and
//! grants group/other nothing; so does every entry, which must be a regular
//! file. Elsewhere (Windows) the per-user profile directory's ACL keeps
//! other users out, and plain paths are used.

#[cfg(not(unix))]
use std::{io, path::Path};

/// An opened, checked cache directory.
pub(super) struct PrivateDir {
    #[cfg(unix)]
    handle: std::fs::File,
    #[cfg(not(unix))]
    path: std::path::PathBuf,
}

#[cfg(unix)]
mod unix {
    use super::PrivateDir;
    use rustix::fs::{AtFlags, Mode, OFlags};
    use rustix::io::Errno;
    use std::ffi::OsStr;
    use std::fs::{File, Metadata};
    use std::io::{self, Read, Write};
    use std::os::unix::fs::MetadataExt;
    use std::path::{Component, Path};

    const DIR_FLAGS: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::CLOEXEC);

    fn effective_uid() -> u32 {
        crate::guarded_fs::effective_uid()
    }

    /// The directory's metadata, after giving the user back the access a
    /// umask took from a directory of theirs that no one else may use (an
    /// earlier version created its directories under `p11_child`'s umask
    /// 0177 as 0600, which the user cannot enter).
    fn restore_owner_access(dir: &File) -> Result<Metadata, String> {
        let meta = dir.metadata().map_err(|err| err.to_string())?;
        if is_private(&meta) && meta.mode() & 0o700 != 0o700 {
            rustix::fs::fchmod(dir, Mode::from_raw_mode(0o700)).map_err(io_text)?;
            return dir.metadata().map_err(|err| err.to_string());
        }
        Ok(meta)
    }

    /// Nobody but the effective user has any access.
    fn is_private(meta: &Metadata) -> bool {
        meta.uid() == effective_uid() && meta.mode() & 0o077 == 0
    }

    /// Only root or the effective user can add, rename or remove entries.
    fn only_trusted_write(meta: &Metadata) -> bool {
        (meta.uid() == 0 || meta.uid() == effective_uid()) && meta.mode() & 0o022 == 0
    }

    /// Others may write (e.g. `/tmp`), but the sticky bit keeps them from
    /// renaming or removing what they do not own.
    fn trusted_as_ancestor(meta: &Metadata) -> bool {
        (meta.uid() == 0 || meta.uid() == effective_uid())
            && (meta.mode() & 0o022 == 0 || meta.mode() & 0o1000 != 0)
    }

    impl PrivateDir {
        /// The directory at `path`; `Ok(None)` when it (or a directory
        /// above it) does not exist, `Err` with the reason when refused.
        pub(in crate::cache) fn open(path: &Path) -> Result<Option<PrivateDir>, String> {
            walk(path, false)
        }

        /// The directory at `path`, created with whatever is missing above
        /// it (0700).
        pub(in crate::cache) fn create(path: &Path) -> Result<PrivateDir, String> {
            walk(path, true)?.ok_or_else(|| "vanished while created".into())
        }

        /// The entry `name`: `Ok(None)` when absent, `Err` with the reason
        /// when it must not be used (a symlink, not a regular file, not
        /// private to the user, larger than `limit`, unreadable).
        pub(in crate::cache) fn read(
            &self,
            name: &str,
            limit: usize,
        ) -> Result<Option<Vec<u8>>, String> {
            // O_NONBLOCK: a FIFO planted as an entry cannot block the open.
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let file = match rustix::fs::openat(&self.handle, name, flags, Mode::empty()) {
                Ok(fd) => File::from(fd),
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP | Errno::MLINK) => return Err("is a symlink".into()),
                Err(err) => return Err(err.to_string()),
            };
            let meta = file.metadata().map_err(|err| err.to_string())?;
            if !meta.is_file() {
                return Err("is not a regular file".into());
            }
            if meta.uid() != effective_uid() {
                return Err("belongs to another user".into());
            }
            if !is_private(&meta) {
                return Err("grants group/other permissions".into());
            }
            let mut bytes = Vec::new();
            file.take(limit as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|err| err.to_string())?;
            if bytes.len() > limit {
                return Err("file too large".into());
            }
            Ok(Some(bytes))
        }

        /// Writes `bytes` to a new file `temp` (0600) and renames it to
        /// `name`; the temporary file is removed on failure.
        pub(in crate::cache) fn write_atomically(
            &self,
            name: &str,
            temp: &str,
            bytes: &[u8],
        ) -> io::Result<()> {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(&self.handle, temp, flags, Mode::from_raw_mode(0o600))?;
            let written = File::from(fd).write_all(bytes);
            let result = written.and_then(|()| {
                rustix::fs::renameat(&self.handle, temp, &self.handle, name).map_err(Into::into)
            });
            if result.is_err() {
                let _ = self.remove(temp);
            }
            result
        }

        /// Removes the entry `name` (a symlink itself, never its target).
        pub(in crate::cache) fn remove(&self, name: &str) -> io::Result<()> {
            rustix::fs::unlinkat(&self.handle, name, AtFlags::empty()).map_err(Into::into)
        }
    }

    fn walk(path: &Path, create: bool) -> Result<Option<PrivateDir>, String> {
        if !path.is_absolute() {
            return Err("not an absolute path".into());
        }
        let mut names = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(name) => names.push(name),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err("a path with `..`".into())
                }
            }
        }
        let Some((cache_dir, ancestors)) = names.split_last() else {
            return Err("the root directory".into());
        };
        let mut dir = File::from(rustix::fs::open("/", DIR_FLAGS, Mode::empty()).map_err(io_text)?);
        for name in ancestors {
            dir = match step(&dir, name, create)? {
                Some(next) => next,
                None => return Ok(None),
            };
            let meta = restore_owner_access(&dir)?;
            if !trusted_as_ancestor(&meta) {
                return Err(format!(
                    "{} is writable by or belongs to another user",
                    Path::new(name).display()
                ));
            }
        }
        let Some(handle) = open_final(&dir, cache_dir, create)? else {
            return Ok(None);
        };
        let meta = restore_owner_access(&handle)?;
        if meta.uid() != effective_uid() {
            return Err("belongs to another user".into());
        }
        if !is_private(&meta) {
            return Err("grants group/other permissions".into());
        }
        Ok(Some(PrivateDir { handle }))
    }

    /// One directory on the way: not followed if a symlink, unless `dir`
    /// is writable by root and the user alone; created (0700, the user's)
    /// when missing and `create`.
    fn step(dir: &File, name: &OsStr, create: bool) -> Result<Option<File>, String> {
        match rustix::fs::openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty()) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::NOENT) if create => make_dir(dir, name).map(Some),
            Err(Errno::NOENT) => Ok(None),
            // A symlink (with O_DIRECTORY Linux says ENOTDIR, others ELOOP
            // or EMLINK); anything but a directory fails again when followed.
            Err(Errno::NOTDIR | Errno::LOOP | Errno::MLINK) => {
                let holder = dir.metadata().map_err(|err| err.to_string())?;
                if !only_trusted_write(&holder) {
                    return Err(format!(
                        "symlink {} in a directory others can write",
                        Path::new(name).display()
                    ));
                }
                match rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => Ok(Some(File::from(fd))),
                    Err(Errno::NOENT) if !create => Ok(None),
                    Err(err) => Err(io_text(err)),
                }
            }
            Err(err) => Err(io_text(err)),
        }
    }

    /// The cache directory itself: never through a symlink.
    fn open_final(dir: &File, name: &OsStr, create: bool) -> Result<Option<File>, String> {
        match rustix::fs::openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty()) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::NOENT) if create => make_dir(dir, name).map(Some),
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::NOTDIR | Errno::LOOP | Errno::MLINK) => {
                Err("is a symlink or not a directory".into())
            }
            Err(err) => Err(io_text(err)),
        }
    }

    /// Creates `name` in `dir` (0700) and opens it; it must be the user's
    /// (another process may have created it first). The mode is set
    /// exactly: the process's umask may take the owner's search bit
    /// (SSSD runs `p11_child` under umask 0177), and a directory the user
    /// cannot enter would keep the cache off for good.
    fn make_dir(dir: &File, name: &OsStr) -> Result<File, String> {
        let created = match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(err) => return Err(io_text(err)),
        };
        let fd = rustix::fs::openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
            .map_err(io_text)?;
        let made = File::from(fd);
        let meta = made.metadata().map_err(|err| err.to_string())?;
        if meta.uid() != effective_uid() {
            return Err(format!(
                "{} was created by another user",
                Path::new(name).display()
            ));
        }
        if created {
            rustix::fs::fchmod(&made, Mode::from_raw_mode(0o700)).map_err(io_text)?;
        }
        Ok(made)
    }

    fn io_text(err: Errno) -> String {
        io::Error::from(err).to_string()
    }
}

#[cfg(not(unix))]
impl PrivateDir {
    /// The directory at `path`; `Ok(None)` when it does not exist.
    pub(super) fn open(path: &Path) -> Result<Option<PrivateDir>, String> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => Err("is a symlink".into()),
            Ok(meta) if !meta.is_dir() => Err("is not a directory".into()),
            Ok(_) => Ok(Some(PrivateDir {
                path: path.to_path_buf(),
            })),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.to_string()),
        }
    }

    /// The directory at `path`, created with whatever is missing above it.
    pub(super) fn create(path: &Path) -> Result<PrivateDir, String> {
        std::fs::create_dir_all(path).map_err(|err| err.to_string())?;
        PrivateDir::open(path)?.ok_or_else(|| "vanished while created".into())
    }

    /// The entry `name`: `Ok(None)` when absent, `Err` when refused.
    pub(super) fn read(&self, name: &str, limit: usize) -> Result<Option<Vec<u8>>, String> {
        use std::io::Read;
        let path = self.path.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if !meta.is_file() => return Err("is not a regular file".into()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err.to_string()),
        }
        let file = std::fs::File::open(&path).map_err(|err| err.to_string())?;
        let mut bytes = Vec::new();
        file.take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| err.to_string())?;
        if bytes.len() > limit {
            return Err("file too large".into());
        }
        Ok(Some(bytes))
    }

    /// Writes `bytes` to a new file `temp` and renames it to `name`.
    pub(super) fn write_atomically(&self, name: &str, temp: &str, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let temp = self.path.join(temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        let written = file.write_all(bytes);
        // Closed before the rename, which Windows requires.
        drop(file);
        let result = written.and_then(|()| std::fs::rename(&temp, self.path.join(name)));
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    /// Removes the entry `name`.
    pub(super) fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }
}
