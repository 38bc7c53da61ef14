//! On-disk cache of a card's public data, so that enumerating a known card
//! does not read every certificate again.
//!
//! What is cached: public objects only, each under a kind and the card's
//! name for it (what the kinds mean is the card engines' business: e.g. a
//! PIV certificate under key slot `9A`, the card's GET METADATA answer for
//! it, a PKCS#15 directory file under its path). Never PINs, PUKs,
//! management keys or anything else secret: a cache file is safe to leak.
//!
//! Where: one file per card, named after its [`CacheKey`], in one per-user
//! directory ([`CacheStore::default_dir`]). The directory is created owner-only
//! (0700) and each file is written owner-only (0600) through a temporary file
//! and a rename, so a reader never sees a half-written entry. Every file is
//! opened relative to the opened directory and never through a symlink; who
//! may own the directories on the way is in `private_dir`.
//!
//! File format (integers big-endian):
//!
//! ```text
//! magic        15 bytes  "P11CARD-CACHE\0" + format version 0x02
//! key          32 bytes  the CacheKey the entry was stored under
//! stored_at     u64      seconds since the UNIX epoch
//! count         u16      number of objects (at most 128)
//! count × {
//!   kind        u8       what the object is (the engines' numbering)
//!   name_length u8       at most 32
//!   name        name_length bytes; each (kind, name) at most once
//!   length      u32      at most 64 KiB
//!   data        length bytes
//! }
//! checksum     32 bytes  SHA-256 over everything before it
//! ```
//!
//! A file of another version (version 1 held certificates only) is refused
//! and removed like any other unusable entry: the card is read and the
//! entry written anew.
//!
//! A whole file is at most 1 MiB.
//!
//! Why every file is untrusted input: anything with the user's rights (or a
//! full disk, a crash, another version of p11card) can change it. What it
//! holds ends up as PKCS#11 objects that applications trust as the card's, so
//! a file is used only when it belongs to the user and is private to them,
//! is well-formed within the limits above, matches its checksum, was stored
//! under the very key asked for, and is fresh. Anything else is removed and the card is read instead:
//! a cache problem is never an error.

mod private_dir;

use private_dir::PrivateDir;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// File magic: a name and the format version (the last byte).
const MAGIC: &[u8; 15] = b"P11CARD-CACHE\x00\x02";
/// Domain separation for [`CacheKey::new`].
const KEY_DOMAIN: &[u8] = b"p11card public-data cache v1";
/// SHA-256 output length (key and checksum).
const DIGEST_LEN: usize = 32;
/// Largest cache file read or written.
const MAX_FILE_LEN: usize = 1024 * 1024;
/// Most objects in one entry.
const MAX_OBJECTS: usize = 128;
/// Longest name of an object.
const MAX_NAME_LEN: usize = 32;
/// Largest object in one entry.
const MAX_OBJECT_LEN: usize = 64 * 1024;
/// How far in the future an entry's `stored_at` may be (clock adjustments).
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// Extension of a cache entry's file name.
const ENTRY_SUFFIX: &str = ".cache";

/// Makes temporary file names unique within the process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Identifies one card's public data: SHA-256 over domain-separated,
/// length-prefixed parts (the caller passes e.g. profile name, ATR, the
/// card's CHUID bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// Hashes the tag `p11card public-data cache v1`, then each part as a u32
    /// big-endian length and its bytes, so no two part lists collide.
    pub fn new(parts: &[&[u8]]) -> CacheKey {
        let mut hash = Sha256::new();
        hash.update(KEY_DOMAIN);
        for part in parts {
            // A part over 4 GiB cannot come from a card; saturating keeps this total.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            hash.update(len.to_be_bytes());
            hash.update(part);
        }
        CacheKey(hash.finalize().into())
    }

    /// The entry's file name: lowercase hex of the key and `.cache`.
    pub fn file_name(&self) -> String {
        let mut name = self.hex();
        name.push_str(ENTRY_SUFFIX);
        name
    }

    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One cached object: what it is, the card's name for it (e.g. PIV key
/// slot `9A`, a file's path) and its bytes (e.g. a DER certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedObject {
    /// What the object is, in the numbering of the engine that stored it.
    pub kind: u8,
    /// The card's name for the object (at most 32 bytes).
    pub name: Vec<u8>,
    /// The object's bytes (at most 64 KiB).
    pub data: Vec<u8>,
}

/// What the cache holds for one card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedCard {
    /// When the card was read; the file keeps whole seconds since 1970.
    pub stored_at: SystemTime,
    /// The card's public objects (at most 128).
    pub objects: Vec<CachedObject>,
}

/// The on-disk store: one file per card in one directory.
#[derive(Debug, Clone)]
pub struct CacheStore {
    dir: PathBuf,
    max_age: Duration,
}

/// Why [`CacheStore::load`] found nothing usable.
enum Miss {
    /// There is no entry: nothing to clean up.
    Absent,
    /// There is an entry that must not be used; it is removed.
    Refused(String),
}

impl CacheStore {
    /// How long an entry is used after it was stored, unless configured.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

    /// A store in `dir` (created on the first store, owner-only), whose
    /// entries are used for `max_age` after they were stored.
    pub fn at(dir: PathBuf, max_age: Duration) -> CacheStore {
        CacheStore { dir, max_age }
    }

    /// The per-user cache directory for p11card: `$XDG_CACHE_HOME/p11card`
    /// else `$HOME/.cache/p11card` (Linux, BSD), `$HOME/Library/Caches/p11card`
    /// (macOS), `%LOCALAPPDATA%\p11card\cache` (Windows). Relative paths in
    /// the variables are ignored; `None` when no variable gives one.
    pub fn default_dir() -> Option<PathBuf> {
        default_dir_from(|name: &str| std::env::var_os(name))
    }

    /// The directory holding the entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry for `key`, or `None` when it is missing, unreadable,
    /// corrupted, of another format version, stored under another key,
    /// holds an object (kind and name) twice, is older
    /// than the maximum age or more than five minutes in the future, or is
    /// not the user's alone (Unix: the directory or the file belongs to
    /// another user or grants group/other permissions, either is a symlink,
    /// the entry is not a regular file, a directory on the way is another
    /// user's). A corrupted or refused file in the user's own directory is
    /// removed.
    pub fn load(&self, key: &CacheKey) -> Option<CachedCard> {
        let dir = match PrivateDir::open(&self.dir) {
            Ok(Some(dir)) => dir,
            Ok(None) => return None,
            Err(why) => {
                log::debug!("cache directory {} not used: {why}", self.dir.display());
                return None;
            }
        };
        let name = key.file_name();
        match self.read_entry(&dir, key, &name) {
            Ok(card) => Some(card),
            Err(Miss::Absent) => None,
            Err(Miss::Refused(why)) => {
                log::debug!("cache entry {name} not used: {why}");
                remove_quietly(&dir, &name);
                None
            }
        }
    }

    /// Writes the entry for `key`, replacing any previous one. Best effort:
    /// a failure, an entry beyond the limits or a directory that is not
    /// the user's alone is logged at debug level and otherwise ignored.
    pub fn store(&self, key: &CacheKey, card: &CachedCard) {
        let bytes = match encode(key, card) {
            Ok(bytes) => bytes,
            Err(why) => {
                log::debug!("cache entry not stored: {why}");
                return;
            }
        };
        let dir = match PrivateDir::create(&self.dir) {
            Ok(dir) => dir,
            Err(why) => {
                log::debug!("cache directory {} not used: {why}", self.dir.display());
                return;
            }
        };
        let temp = format!(
            "{}.{}.{}.tmp",
            key.hex(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(err) = dir.write_atomically(&key.file_name(), &temp, &bytes) {
            log::debug!("cache entry {} not stored: {err}", key.file_name());
        }
    }

    /// Removes the entry for `key` (best effort).
    pub fn forget(&self, key: &CacheKey) {
        if let Ok(Some(dir)) = PrivateDir::open(&self.dir) {
            remove_quietly(&dir, &key.file_name());
        }
    }

    fn read_entry(&self, dir: &PrivateDir, key: &CacheKey, name: &str) -> Result<CachedCard, Miss> {
        let bytes = match dir.read(name, MAX_FILE_LEN) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(Miss::Absent),
            Err(why) => return Err(Miss::Refused(why)),
        };
        let card = decode(key, &bytes).map_err(|why| Miss::Refused(why.into()))?;
        check_fresh(card.stored_at, SystemTime::now(), self.max_age)
            .map_err(|why| Miss::Refused(why.into()))?;
        Ok(card)
    }
}

fn default_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        absolute("XDG_CACHE_HOME")
            .map(|dir| dir.join("p11card"))
            .or_else(|| absolute("HOME").map(|home| home.join(".cache").join("p11card")))
    }
    #[cfg(target_os = "macos")]
    {
        absolute("HOME").map(|home| home.join("Library").join("Caches").join("p11card"))
    }
    #[cfg(windows)]
    {
        absolute("LOCALAPPDATA").map(|dir| dir.join("p11card").join("cache"))
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = absolute;
        None
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn remove_quietly(dir: &PrivateDir, name: &str) {
    if let Err(err) = dir.remove(name) {
        if err.kind() != io::ErrorKind::NotFound {
            log::debug!("cache file {name} not removed: {err}");
        }
    }
}

fn check_fresh(
    stored_at: SystemTime,
    now: SystemTime,
    max_age: Duration,
) -> Result<(), &'static str> {
    if let Ok(ahead) = stored_at.duration_since(now) {
        if ahead > MAX_CLOCK_SKEW {
            return Err("stored in the future");
        }
    }
    if let Ok(age) = now.duration_since(stored_at) {
        if age > max_age {
            return Err("expired");
        }
    }
    Ok(())
}

fn encode(key: &CacheKey, card: &CachedCard) -> Result<Vec<u8>, String> {
    if card.objects.len() > MAX_OBJECTS {
        return Err(format!(
            "{} objects (at most {MAX_OBJECTS})",
            card.objects.len()
        ));
    }
    let count = u16::try_from(card.objects.len()).map_err(|err| err.to_string())?;
    let stored_at = card
        .stored_at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "stored_at is before 1970".to_string())?
        .as_secs();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key.0);
    out.extend_from_slice(&stored_at.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    let mut seen = std::collections::HashSet::new();
    for object in &card.objects {
        let what = || format!("object {:02X}/{}", object.kind, hex(&object.name));
        if !seen.insert((object.kind, object.name.as_slice())) {
            return Err(format!("{} twice", what()));
        }
        if object.name.len() > MAX_NAME_LEN {
            return Err(format!("{}: name over {MAX_NAME_LEN} bytes", what()));
        }
        if object.data.len() > MAX_OBJECT_LEN {
            return Err(format!(
                "{} has {} bytes (at most {MAX_OBJECT_LEN})",
                what(),
                object.data.len()
            ));
        }
        let len = u32::try_from(object.data.len()).map_err(|err| err.to_string())?;
        out.push(object.kind);
        // At most MAX_NAME_LEN (checked above).
        out.push(object.name.len() as u8);
        out.extend_from_slice(&object.name);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&object.data);
    }
    if out.len() + DIGEST_LEN > MAX_FILE_LEN {
        return Err(format!(
            "{} bytes (at most {MAX_FILE_LEN})",
            out.len() + DIGEST_LEN
        ));
    }
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    Ok(out)
}

fn decode(key: &CacheKey, file: &[u8]) -> Result<CachedCard, &'static str> {
    let body_len = file.len().checked_sub(DIGEST_LEN).ok_or("truncated")?;
    let (body, checksum) = file.split_at_checked(body_len).ok_or("truncated")?;
    let expected: [u8; DIGEST_LEN] = Sha256::digest(body).into();
    if expected.as_slice() != checksum {
        return Err("checksum mismatch");
    }
    let mut reader = Reader(body);
    if reader.bytes(MAGIC.len()).ok_or("truncated")? != MAGIC {
        return Err("not a cache file of this version");
    }
    if reader.array::<DIGEST_LEN>().ok_or("truncated")? != key.0 {
        return Err("stored under another key");
    }
    let secs = u64::from_be_bytes(reader.array().ok_or("truncated")?);
    let stored_at = UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .ok_or("time out of range")?;
    let count = usize::from(u16::from_be_bytes(reader.array().ok_or("truncated")?));
    if count > MAX_OBJECTS {
        return Err("too many objects");
    }
    let mut objects: Vec<CachedObject> = Vec::with_capacity(count);
    for _ in 0..count {
        let [kind, name_len] = reader.array().ok_or("truncated")?;
        if usize::from(name_len) > MAX_NAME_LEN {
            return Err("name too long");
        }
        let name = reader.bytes(usize::from(name_len)).ok_or("truncated")?;
        // One object per kind and name: a second one could stand in for
        // the first where only one is checked against the card.
        if objects.iter().any(|o| o.kind == kind && o.name == name) {
            return Err("an object twice");
        }
        let name = name.to_vec();
        let len = u32::from_be_bytes(reader.array().ok_or("truncated")?);
        let len = usize::try_from(len).map_err(|_| "object too large")?;
        if len > MAX_OBJECT_LEN {
            return Err("object too large");
        }
        let data = reader.bytes(len).ok_or("truncated")?.to_vec();
        objects.push(CachedObject { kind, name, data });
    }
    if !reader.0.is_empty() {
        return Err("trailing bytes");
    }
    Ok(CachedCard { stored_at, objects })
}

/// Bounds-checked reading from the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::AtomicUsize;

    /// A directory of its own for each test, removed when the test ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "p11card-cache-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir(&path).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            }
            TempDir(path)
        }

        /// A store whose directory does not exist yet.
        fn store(&self) -> CacheStore {
            CacheStore::at(self.0.join("cache"), CacheStore::DEFAULT_MAX_AGE)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn key(name: &str) -> CacheKey {
        CacheKey::new(&[b"piv", name.as_bytes()])
    }

    /// Now, in the whole seconds the file keeps.
    fn now() -> SystemTime {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn object(kind: u8, name: &[u8], data: Vec<u8>) -> CachedObject {
        CachedObject {
            kind,
            name: name.to_vec(),
            data,
        }
    }

    fn card() -> CachedCard {
        CachedCard {
            stored_at: now(),
            objects: vec![
                object(1, &[0x9A], vec![0x30, 0x82, 0x01, 0x00, 0xAA]),
                object(1, &[0x9C], vec![]),
                object(1, &[0x9E], (0..=255).collect()),
                // The same name under another kind; an empty name; the
                // longest name.
                object(2, &[0x9A], vec![0x01]),
                object(3, &[], vec![0x03]),
                object(4, &[0x3F; MAX_NAME_LEN], vec![0x04]),
            ],
        }
    }

    fn entry(store: &CacheStore, key: &CacheKey) -> PathBuf {
        store.dir().join(key.file_name())
    }

    /// A stored entry's file bytes.
    fn stored_bytes(store: &CacheStore, key: &CacheKey) -> Vec<u8> {
        store.store(key, &card());
        fs::read(entry(store, key)).unwrap()
    }

    /// Writes `bytes` as the entry for `key` and checks it is refused and removed.
    fn assert_refused(store: &CacheStore, key: &CacheKey, bytes: &[u8], what: &str) {
        let path = entry(store, key);
        fs::write(&path, bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(store.load(key), None, "{what}");
        assert!(!path.exists(), "{what}: file not removed");
    }

    /// Appends the checksum, so a test reaches the parser behind it.
    fn sealed(mut body: Vec<u8>) -> Vec<u8> {
        let checksum = Sha256::digest(&body);
        body.extend_from_slice(&checksum);
        body
    }

    fn header(key: &CacheKey, count: u16) -> Vec<u8> {
        let mut body = MAGIC.to_vec();
        body.extend_from_slice(&key.0);
        body.extend_from_slice(
            &now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                .to_be_bytes(),
        );
        body.extend_from_slice(&count.to_be_bytes());
        body
    }

    #[test]
    fn key_hashes_domain_and_length_prefixed_parts() {
        let mut expected = Sha256::new();
        expected.update(b"p11card public-data cache v1");
        expected.update([0, 0, 0, 2]);
        expected.update(b"ab");
        expected.update([0, 0, 0, 1]);
        expected.update(b"c");
        let expected: [u8; 32] = expected.finalize().into();
        assert_eq!(CacheKey::new(&[b"ab", b"c"]).0, expected);
        assert_ne!(CacheKey::new(&[b"ab", b"c"]), CacheKey::new(&[b"a", b"bc"]));
        assert_ne!(CacheKey::new(&[b"abc"]), CacheKey::new(&[b"abc", b""]));
    }

    #[test]
    fn file_name_is_lowercase_hex() {
        let name = CacheKey([0xAB; 32]).file_name();
        assert_eq!(name, format!("{}.cache", "ab".repeat(32)));
    }

    #[test]
    fn round_trip() {
        let tmp = TempDir::new();
        let store = tmp.store();
        assert_eq!(store.load(&key("a")), None);
        store.store(&key("a"), &card());
        assert_eq!(store.load(&key("a")), Some(card()));

        let empty = CachedCard {
            stored_at: now(),
            objects: vec![],
        };
        store.store(&key("a"), &empty);
        assert_eq!(store.load(&key("a")), Some(empty));
        let names: Vec<_> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            [key("a").file_name().as_str()],
            "temporary files left behind"
        );
    }

    #[test]
    fn entry_of_another_key_is_refused_under_its_name() {
        let tmp = TempDir::new();
        let store = tmp.store();
        store.store(&key("a"), &card());
        fs::copy(entry(&store, &key("a")), entry(&store, &key("b"))).unwrap();
        assert_eq!(store.load(&key("b")), None);
        assert!(!entry(&store, &key("b")).exists());
        assert_eq!(store.load(&key("a")), Some(card()));
    }

    #[test]
    fn truncated_file_is_refused_and_removed() {
        let tmp = TempDir::new();
        let store = tmp.store();
        let bytes = stored_bytes(&store, &key("a"));
        for len in [
            1,
            MAGIC.len(),
            57,
            60,
            bytes.len() - 33,
            bytes.len() - 32,
            bytes.len() - 1,
        ] {
            assert_refused(
                &store,
                &key("a"),
                &bytes[..len],
                &format!("truncated to {len}"),
            );
        }
    }

    #[test]
    fn flipped_byte_is_refused_and_removed() {
        let tmp = TempDir::new();
        let store = tmp.store();
        let bytes = stored_bytes(&store, &key("a"));
        for pos in [
            0,
            14,
            15,
            46,
            47,
            55,
            56,
            57,
            60,
            62,
            100,
            bytes.len() - 32,
            bytes.len() - 1,
        ] {
            let mut changed = bytes.clone();
            changed[pos] ^= 0x01;
            assert_refused(&store, &key("a"), &changed, &format!("byte {pos} flipped"));
        }
    }

    #[test]
    fn garbage_empty_and_oversized_files_are_refused_and_removed() {
        let tmp = TempDir::new();
        let store = tmp.store();
        stored_bytes(&store, &key("a"));
        assert_refused(&store, &key("a"), b"", "empty");
        assert_refused(&store, &key("a"), &[0x5A; 300], "garbage");
        let mut oversized = stored_bytes(&store, &key("a"));
        oversized.resize(MAX_FILE_LEN + 1, 0);
        assert_refused(&store, &key("a"), &oversized, "oversized");
    }

    #[test]
    fn malformed_file_with_valid_checksum_is_refused() {
        let tmp = TempDir::new();
        let store = tmp.store();
        let k = key("a");
        stored_bytes(&store, &k);

        let mut wrong_magic = header(&k, 0);
        wrong_magic[14] = 0x01;
        assert_refused(&store, &k, &sealed(wrong_magic), "version 1");
        let mut wrong_magic = header(&k, 0);
        wrong_magic[14] = 0x03;
        assert_refused(&store, &k, &sealed(wrong_magic), "version 3");

        let mut trailing = header(&k, 0);
        trailing.push(0);
        assert_refused(&store, &k, &sealed(trailing), "trailing bytes");

        let mut short_object = header(&k, 1);
        short_object.extend_from_slice(&[1, 1, 0x9A, 0, 0, 0, 5, 1, 2, 3]);
        assert_refused(
            &store,
            &k,
            &sealed(short_object),
            "object shorter than its length",
        );

        let mut short_name = header(&k, 1);
        short_name.extend_from_slice(&[1, 4, 0x3F, 0x00]);
        assert_refused(
            &store,
            &k,
            &sealed(short_name),
            "name shorter than its length",
        );

        let mut long_name = header(&k, 1);
        long_name.extend_from_slice(&[1, 33]);
        long_name.extend_from_slice(&[0x3F; 33]);
        long_name.extend_from_slice(&[0, 0, 0, 0]);
        assert_refused(&store, &k, &sealed(long_name), "name over 32 bytes");

        let mut too_many = header(&k, 129);
        for reference in 0..129u8 {
            too_many.extend_from_slice(&[1, 1, reference, 0, 0, 0, 0]);
        }
        assert_refused(&store, &k, &sealed(too_many), "129 objects");

        let mut too_large = header(&k, 1);
        too_large.extend_from_slice(&[1, 1, 0x9A, 0, 1, 0, 1]);
        too_large.resize(too_large.len() + MAX_OBJECT_LEN + 1, 0);
        assert_refused(&store, &k, &sealed(too_large), "object over 64 KiB");

        let mut huge_length = header(&k, 1);
        huge_length.extend_from_slice(&[1, 1, 0x9A, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_refused(&store, &k, &sealed(huge_length), "length u32::MAX");
    }

    #[test]
    fn expired_entry_is_refused_and_removed() {
        let tmp = TempDir::new();
        let store = tmp.store();
        let old = CachedCard {
            stored_at: now() - Duration::from_secs(25 * 3600),
            ..card()
        };
        store.store(&key("a"), &old);
        assert!(entry(&store, &key("a")).exists());
        assert_eq!(store.load(&key("a")), None);
        assert!(!entry(&store, &key("a")).exists());

        let short = CacheStore::at(store.dir().to_path_buf(), Duration::from_secs(60));
        let recent = CachedCard {
            stored_at: now() - Duration::from_secs(120),
            ..card()
        };
        short.store(&key("a"), &recent);
        assert_eq!(short.load(&key("a")), None);
        short.store(&key("a"), &card());
        assert_eq!(short.load(&key("a")), Some(card()));
    }

    #[test]
    fn entry_from_the_future_is_refused() {
        let tmp = TempDir::new();
        let store = tmp.store();
        let ahead = CachedCard {
            stored_at: now() + Duration::from_secs(3600),
            ..card()
        };
        store.store(&key("a"), &ahead);
        assert_eq!(store.load(&key("a")), None);
        assert!(!entry(&store, &key("a")).exists());

        let skewed = CachedCard {
            stored_at: now() + Duration::from_secs(60),
            ..card()
        };
        store.store(&key("a"), &skewed);
        assert_eq!(store.load(&key("a")), Some(skewed));
    }

    #[test]
    fn freshness_bounds() {
        let now = now();
        let day = CacheStore::DEFAULT_MAX_AGE;
        assert!(check_fresh(now, now, day).is_ok());
        assert!(check_fresh(now - day, now, day).is_ok());
        assert!(check_fresh(now - day - Duration::from_secs(1), now, day).is_err());
        assert!(check_fresh(now + MAX_CLOCK_SKEW, now, day).is_ok());
        assert!(check_fresh(now + MAX_CLOCK_SKEW + Duration::from_secs(1), now, day).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_file_is_refused_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new();
        let store = tmp.store();
        store.store(&key("a"), &card());
        let path = entry(&store, &key("a"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(store.load(&key("a")), None);
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn open_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new();
        let store = tmp.store();
        store.store(&key("a"), &card());
        fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(store.load(&key("a")), None);

        store.store(&key("b"), &card());
        assert!(
            !entry(&store, &key("b")).exists(),
            "stored into an open directory"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_entry_is_refused() {
        let tmp = TempDir::new();
        let store = tmp.store();
        store.store(&key("a"), &card());
        let target = tmp.0.join("elsewhere");
        fs::rename(entry(&store, &key("a")), &target).unwrap();
        std::os::unix::fs::symlink(&target, entry(&store, &key("a"))).unwrap();
        assert_eq!(store.load(&key("a")), None);
        assert!(
            fs::symlink_metadata(entry(&store, &key("a"))).is_err(),
            "link not removed"
        );
        assert!(target.exists(), "link target removed");
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_directory_is_refused() {
        let tmp = TempDir::new();
        let store = tmp.store();
        store.store(&key("a"), &card());
        let link = CacheStore::at(tmp.0.join("link"), CacheStore::DEFAULT_MAX_AGE);
        std::os::unix::fs::symlink(store.dir(), link.dir()).unwrap();
        assert_eq!(link.load(&key("a")), None);
    }

    #[test]
    fn directory_entry_is_refused() {
        let tmp = TempDir::new();
        let store = tmp.store();
        store.store(&key("a"), &card());
        let path = entry(&store, &key("a"));
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert_eq!(store.load(&key("a")), None);
    }

    #[test]
    fn store_into_unwritable_location_is_harmless() {
        let tmp = TempDir::new();
        let file = tmp.0.join("file");
        fs::write(&file, b"not a directory").unwrap();
        let store = CacheStore::at(file.join("cache"), CacheStore::DEFAULT_MAX_AGE);
        store.store(&key("a"), &card());
        assert_eq!(store.load(&key("a")), None);
        store.forget(&key("a"));

        let store = CacheStore::at(file, CacheStore::DEFAULT_MAX_AGE);
        store.store(&key("a"), &card());
        assert_eq!(store.load(&key("a")), None);
    }

    #[test]
    fn store_refuses_entries_beyond_limits() {
        let tmp = TempDir::new();
        let store = tmp.store();
        // `count` objects of `len` bytes, each with a name of its own.
        let objects = |count: usize, len| -> Vec<CachedObject> {
            (0..count)
                .map(|i| object(1, &u16::try_from(i).unwrap().to_be_bytes(), vec![0; len]))
                .collect()
        };
        let large_object = CachedCard {
            stored_at: now(),
            objects: objects(1, MAX_OBJECT_LEN + 1),
        };
        let many_objects = CachedCard {
            stored_at: now(),
            objects: objects(MAX_OBJECTS + 1, 0),
        };
        let large_file = CachedCard {
            stored_at: now(),
            objects: objects(16, MAX_OBJECT_LEN),
        };
        let before_1970 = CachedCard {
            stored_at: UNIX_EPOCH - Duration::from_secs(1),
            ..card()
        };
        let long_name = CachedCard {
            stored_at: now(),
            objects: vec![object(1, &[0; MAX_NAME_LEN + 1], vec![])],
        };
        for refused in [
            large_object,
            many_objects,
            large_file,
            before_1970,
            long_name,
        ] {
            store.store(&key("a"), &refused);
            assert!(!entry(&store, &key("a")).exists());
        }

        let largest = CachedCard {
            stored_at: now(),
            objects: objects(15, MAX_OBJECT_LEN),
        };
        store.store(&key("a"), &largest);
        assert_eq!(store.load(&key("a")), Some(largest));
        let most = CachedCard {
            stored_at: now(),
            objects: objects(MAX_OBJECTS, 1),
        };
        store.store(&key("a"), &most);
        assert_eq!(store.load(&key("a")), Some(most));
    }

    #[test]
    fn forget_removes_entry() {
        let tmp = TempDir::new();
        let store = tmp.store();
        store.store(&key("a"), &card());
        store.store(&key("b"), &card());
        store.forget(&key("a"));
        assert!(!entry(&store, &key("a")).exists());
        assert_eq!(store.load(&key("a")), None);
        assert_eq!(store.load(&key("b")), Some(card()));
        store.forget(&key("a"));
    }

    #[cfg(unix)]
    #[test]
    fn directory_and_file_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new();
        let store = CacheStore::at(
            tmp.0.join("a").join("b").join("cache"),
            CacheStore::DEFAULT_MAX_AGE,
        );
        store.store(&key("a"), &card());
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&entry(&store, &key("a"))), 0o600);
        assert_eq!(store.load(&key("a")), Some(card()));
    }

    #[test]
    fn duplicate_references_are_refused() {
        let tmp = TempDir::new();
        let store = tmp.store();
        let k = key("a");
        stored_bytes(&store, &k);

        // A second 9A object after the genuine one, re-sealed.
        let mut twice = header(&k, 2);
        twice.extend_from_slice(&[1, 1, 0x9A, 0, 0, 0, 2, 0x30, 0x00]);
        twice.extend_from_slice(&[1, 1, 0x9A, 0, 0, 0, 3, 0x30, 0x01, 0xFF]);
        assert_refused(&store, &k, &sealed(twice), "9A twice");

        let mut apart = header(&k, 3);
        apart.extend_from_slice(&[1, 1, 0x9A, 0, 0, 0, 0]);
        apart.extend_from_slice(&[1, 1, 0x9C, 0, 0, 0, 0]);
        apart.extend_from_slice(&[1, 1, 0x9A, 0, 0, 0, 0]);
        assert_refused(&store, &k, &sealed(apart), "9A twice, apart");

        // The same name under two kinds is two objects.
        let mut kinds = header(&k, 2);
        kinds.extend_from_slice(&[1, 1, 0x9A, 0, 0, 0, 0]);
        kinds.extend_from_slice(&[2, 1, 0x9A, 0, 0, 0, 0]);
        let path = entry(&store, &k);
        fs::write(&path, sealed(kinds)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(store.load(&k).map(|card| card.objects.len()), Some(2));
        fs::remove_file(&path).unwrap();

        let doubled = CachedCard {
            stored_at: now(),
            objects: vec![card().objects[0].clone(), card().objects[0].clone()],
        };
        store.store(&k, &doubled);
        assert!(!entry(&store, &k).exists(), "stored a reference twice");
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_parent_in_a_shared_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new();
        let real = tmp.0.join("real");
        fs::create_dir(&real).unwrap();
        // Like /tmp: anyone may add entries (sticky), so anyone may have
        // put the symlink there.
        let shared = tmp.0.join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::symlink(&real, shared.join("link")).unwrap();
        let store = CacheStore::at(
            shared.join("link").join("cache"),
            CacheStore::DEFAULT_MAX_AGE,
        );
        store.store(&key("a"), &card());
        assert!(!real.join("cache").exists(), "created through the symlink");
        fs::create_dir(real.join("cache")).unwrap();
        fs::set_permissions(real.join("cache"), fs::Permissions::from_mode(0o700)).unwrap();
        CacheStore::at(real.join("cache"), CacheStore::DEFAULT_MAX_AGE).store(&key("a"), &card());
        assert_eq!(store.load(&key("a")), None, "read through the symlink");

        // A symlink in a directory only the user can write is the user's
        // own choice (e.g. ~/.cache moved to another disk).
        let own = tmp.0.join("own");
        fs::create_dir(&own).unwrap();
        fs::set_permissions(&own, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&real, own.join("link")).unwrap();
        let store = CacheStore::at(own.join("link").join("cache"), CacheStore::DEFAULT_MAX_AGE);
        assert_eq!(store.load(&key("a")), Some(card()));
    }

    #[cfg(unix)]
    #[test]
    fn relative_and_dotdot_paths_are_refused() {
        let tmp = TempDir::new();
        let relative = CacheStore::at(PathBuf::from("cache"), CacheStore::DEFAULT_MAX_AGE);
        relative.store(&key("a"), &card());
        assert!(!Path::new("cache").exists());
        let dotdot = CacheStore::at(
            tmp.0.join("x").join("..").join("cache"),
            CacheStore::DEFAULT_MAX_AGE,
        );
        dotdot.store(&key("a"), &card());
        assert!(!tmp.0.join("cache").exists());
    }

    #[cfg(unix)]
    #[test]
    fn foreign_owner_is_refused() {
        use std::os::unix::fs::chown;
        if crate::guarded_fs::effective_uid() != 0 {
            eprintln!("skipped: chown to another user needs root");
            return;
        }
        let nobody = Some(crate::guarded_fs::tests::NOBODY);
        let me = Some(crate::guarded_fs::effective_uid());

        // The entry file.
        let tmp = TempDir::new();
        let store = tmp.store();
        store.store(&key("a"), &card());
        chown(entry(&store, &key("a")), nobody, None).unwrap();
        assert_eq!(store.load(&key("a")), None, "entry of nobody");

        // The cache directory: nothing read, nothing written, nothing removed.
        store.store(&key("a"), &card());
        chown(store.dir(), nobody, None).unwrap();
        assert_eq!(store.load(&key("a")), None, "directory of nobody");
        assert!(
            entry(&store, &key("a")).exists(),
            "removed from another user's directory"
        );
        store.store(&key("b"), &card());
        assert!(
            !entry(&store, &key("b")).exists(),
            "stored into nobody's directory"
        );
        chown(store.dir(), me, None).unwrap();
        assert_eq!(store.load(&key("a")), Some(card()));

        // A directory on the way.
        let parent = tmp.0.join("theirs");
        fs::create_dir(&parent).unwrap();
        let below = CacheStore::at(parent.join("cache"), CacheStore::DEFAULT_MAX_AGE);
        below.store(&key("a"), &card());
        assert_eq!(below.load(&key("a")), Some(card()));
        chown(&parent, nobody, None).unwrap();
        assert_eq!(below.load(&key("a")), None, "parent of nobody");
        below.store(&key("b"), &card());
        assert!(!entry(&below, &key("b")).exists());
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn default_dir_follows_xdg() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(var, _)| *var == name)
                    .map(|(_, value)| std::ffi::OsString::from(value))
            }
        };
        let both = env(&[("XDG_CACHE_HOME", "/x/cache"), ("HOME", "/home/u")]);
        assert_eq!(
            default_dir_from(both),
            Some(PathBuf::from("/x/cache/p11card"))
        );
        let relative = env(&[("XDG_CACHE_HOME", "cache"), ("HOME", "/home/u")]);
        assert_eq!(
            default_dir_from(relative),
            Some(PathBuf::from("/home/u/.cache/p11card"))
        );
        let empty = env(&[("XDG_CACHE_HOME", ""), ("HOME", "/home/u")]);
        assert_eq!(
            default_dir_from(empty),
            Some(PathBuf::from("/home/u/.cache/p11card"))
        );
        assert_eq!(default_dir_from(env(&[("HOME", "home")])), None);
        assert_eq!(default_dir_from(env(&[])), None);
    }
}
