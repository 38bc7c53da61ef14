//! The disk cache under a restrictive umask (its own test binary: the umask
//! is process-wide). SSSD runs `p11_child`, and so the module, under umask
//! 0177, which takes the owner's search bit off every directory created
//! with mode 0700: the cache directories p11card creates must still be
//! 0700, enterable, so that the entry stored is found again.

#![cfg(unix)]

use p11card::cache::{CacheKey, CacheStore, CachedCard, CachedObject};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::SystemTime;

/// Removes the test's directory at the end.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

/// A cache entry of one object.
fn one_object_card() -> CachedCard {
    CachedCard {
        stored_at: SystemTime::now(),
        objects: vec![CachedObject {
            kind: 1,
            name: vec![0x9A],
            data: vec![0x30, 0x03, 0x02, 0x01, 0x00],
        }],
    }
}

#[test]
fn directories_created_under_umask_0177_are_0700_and_the_entry_is_found_again() {
    let base = std::env::temp_dir().join(format!("p11card-cache-umask-{}", std::process::id()));
    std::fs::create_dir(&base).expect("the test's directory");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let _cleanup = Cleanup(base.clone());

    let previous = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let cache_home = base.join("xdg-cache");
    let dir = cache_home.join("p11card");
    let store = CacheStore::at(dir.clone(), CacheStore::DEFAULT_MAX_AGE);
    let key = CacheKey::new(&[b"piv", b"umask"]);
    let card = one_object_card();
    store.store(&key, &card);
    rustix::process::umask(previous);

    assert_eq!(mode(&cache_home), 0o700, "the missing parent, created 0700");
    assert_eq!(mode(&dir), 0o700, "the cache directory, created 0700");
    let entry = dir.join(key.file_name());
    assert_eq!(mode(&entry), 0o600, "the entry, 0600");
    let loaded = store.load(&key).expect("the entry is found again");
    assert_eq!(loaded.objects, card.objects);
}

#[test]
fn a_cache_directory_left_0600_by_an_earlier_version_is_made_enterable_again() {
    let base = std::env::temp_dir().join(format!("p11card-cache-0600-{}", std::process::id()));
    std::fs::create_dir(&base).expect("the test's directory");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let _cleanup = Cleanup(base.clone());
    let cache_home = base.join("xdg-cache");
    let dir = cache_home.join("p11card");
    std::fs::create_dir_all(&dir).expect("the old directories");
    for path in [&cache_home, &dir] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let store = CacheStore::at(dir.clone(), CacheStore::DEFAULT_MAX_AGE);
    let key = CacheKey::new(&[b"piv", b"old-0600"]);
    let card = one_object_card();
    store.store(&key, &card);
    assert_eq!(mode(&cache_home), 0o700);
    assert_eq!(mode(&dir), 0o700);
    let loaded = store.load(&key).expect("the entry is found again");
    assert_eq!(loaded.objects, card.objects);
}
