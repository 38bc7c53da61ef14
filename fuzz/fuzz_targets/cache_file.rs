//! The disk cache's entry files (src/cache.rs `CacheStore::load`, format
//! version 2), and the PIV engine taking the records of an entry that
//! loads: certificates, GET METADATA answers, the PIN's tries (a planted or
//! corrupted cache must never break enumeration).
//!
//! Input: a flags byte, then the file. Flags make the file pass the checks
//! a random one never would: bit 0 prefixes the magic and the key the entry
//! is looked up under, bit 1 appends the SHA-256 checksum, bit 2 (with bit
//! 0) sets `stored_at` to now.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card::cache::{CacheKey, CacheStore, CachedCard};
use p11card::profile::{Record, RecordKind};
use p11card_fuzz::{enumerate, piv_card, RememberedRecords, ReplayCard};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A private directory for this process's entries, the key looked up, and
/// the start of an entry file for it (magic and key), learned from a file
/// the store wrote itself.
struct Setup {
    store: CacheStore,
    key: CacheKey,
    path: PathBuf,
    prefix: Vec<u8>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        // run.sh points TMPDIR at a directory it removes afterwards.
        let dir = std::env::temp_dir().join(format!("p11card-fuzz-cache-{}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
            .expect("cache directory");
        let store = CacheStore::at(dir.clone(), Duration::from_secs(3600));
        let key = CacheKey::new(&[b"fuzz"]);
        let empty = CachedCard {
            stored_at: SystemTime::now(),
            objects: Vec::new(),
        };
        store.store(&key, &empty);
        let path = dir.join(key.file_name());
        let written = std::fs::read(&path).expect("the store wrote an entry");
        // Magic (15 bytes) and key (32), then stored_at, count, checksum.
        let prefix = written[..15 + 32].to_vec();
        Setup {
            store,
            key,
            path,
            prefix,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let setup = setup();
    let mut file = Vec::with_capacity(body.len() + 100);
    if flags & 1 != 0 {
        file.extend_from_slice(&setup.prefix);
    }
    file.extend_from_slice(body);
    if flags & 5 == 5 && file.len() >= setup.prefix.len() + 8 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let at = setup.prefix.len();
        file[at..at + 8].copy_from_slice(&now.to_be_bytes());
    }
    if flags & 2 != 0 {
        let checksum = Sha256::digest(&file);
        file.extend_from_slice(&checksum);
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&setup.path)
        .expect("entry file");
    out.write_all(&file).expect("entry written");
    drop(out);

    let Some(entry) = setup.store.load(&setup.key) else {
        return;
    };
    assert!(entry.objects.len() <= 128);
    assert!(entry.objects.iter().all(|object| object.name.len() <= 32));
    let card = piv_card();
    // As the module does: an object of an unknown kind makes the entry
    // unusable.
    let Some(records) = entry
        .objects
        .into_iter()
        .map(|object| {
            Some(Record {
                kind: RecordKind::from_code(object.kind)?,
                name: object.name,
                data: object.data,
            })
        })
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let recall = RememberedRecords(records);
    let mut link = ReplayCard::new(card, |_| false, &[]);
    enumerate(&card.atr, &mut link, &recall);
});
