//! The disk cache of a card's public data, through the C ABI: a second
//! process (`C_Finalize` + `C_Initialize`, see [`Harness::restart`]) that
//! finds the card's entry skips reading its certificates, but only while the
//! card can prove the entry is its own: a signed CHUID, or GET METADATA
//! (Yubico, INS F7) answering each key slot's public key. Whatever goes
//! wrong with the cache, the card is read and the objects are right.
//!
//! Each test has a cache directory of its own ([`CacheDir`]), created by
//! the module; the simulated card's log shows what was read from the card.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card::cache::CacheStore;
use p11card_cardsim::{KeyType, SimCard, SimPivCard, Slot};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The certificate containers of the four key slots (SP 800-73-4 Part 1
/// Table 3).
const CERTIFICATE_READS: [&str; 4] = [
    "GET DATA 5FC105",
    "GET DATA 5FC10A",
    "GET DATA 5FC10B",
    "GET DATA 5FC101",
];

/// The YubiKey 5 ATR (cardprofiles/yubikey-piv.toml), where the simulated
/// card answers with the YubiKey 4 one by default: the same profile.
const YUBIKEY_5_ATR: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

/// An ATR no profile lists: the card gets the generic PIV profile by
/// selecting the PIV application.
const OTHER_ATR: [u8; 11] = [
    0x3B, 0x88, 0x80, 0x01, 0x50, 0x49, 0x56, 0x20, 0x53, 0x49, 0x4D,
];

// ----- the cache directory ----------------------------------------------------

/// `<tmp>/p11card-cache-test-<pid>-<n>/cache`: not there at first (the
/// module creates it), removed with its parent when the test ends.
struct CacheDir {
    base: PathBuf,
}

impl CacheDir {
    fn new() -> CacheDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "p11card-cache-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir(&base).expect("temporary directory");
        // Whatever the umask: a directory above the cache that others can
        // write would be refused.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        CacheDir { base }
    }

    fn path(&self) -> PathBuf {
        self.base.join("cache")
    }

    fn store(&self) -> CacheStore {
        CacheStore::at(self.path(), CacheStore::DEFAULT_MAX_AGE)
    }

    /// The cache entries (files named `<key>.cache`).
    fn entries(&self) -> Vec<PathBuf> {
        let Ok(dir) = fs::read_dir(self.path()) else {
            return Vec::new();
        };
        let mut entries: Vec<PathBuf> = dir
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "cache"))
            .collect();
        entries.sort();
        entries
    }

    /// The one cache entry.
    fn entry(&self) -> PathBuf {
        let entries = self.entries();
        assert_eq!(entries.len(), 1, "cache entries: {entries:?}");
        entries[0].clone()
    }
}

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

// ----- what an application sees, what the card saw ---------------------------

/// One object as an application lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    class: CK_OBJECT_CLASS,
    id: Vec<u8>,
    label: Vec<u8>,
    /// `CKA_VALUE`, or why the module gave none (keys).
    value: Result<Vec<u8>, CK_RV>,
}

/// Every object a new session finds with an empty template, with
/// `CKA_CLASS`, `CKA_ID`, `CKA_LABEL` and `CKA_VALUE`, in a stable order.
fn list_objects(harness: &Harness) -> Vec<Listed> {
    let session = harness.session();
    let mut objects: Vec<Listed> = find(session, &[])
        .into_iter()
        .map(|object| Listed {
            class: as_ulong(&attribute(session, object, CKA_CLASS).expect("CKA_CLASS")),
            id: attribute(session, object, CKA_ID).expect("CKA_ID"),
            label: attribute(session, object, CKA_LABEL).expect("CKA_LABEL"),
            value: attribute(session, object, CKA_VALUE),
        })
        .collect();
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
    objects.sort();
    objects
}

/// The listed certificate of `slot`.
fn certificate(objects: &[Listed], slot: Slot) -> Vec<u8> {
    let found: Vec<&Listed> = objects
        .iter()
        .filter(|o| o.class == CKO_CERTIFICATE && o.id == [key_id(slot)])
        .collect();
    assert_eq!(found.len(), 1, "certificates of {slot:?}");
    found[0].value.clone().expect("a certificate's CKA_VALUE")
}

/// The next process: the module starts afresh (only the cards and the disk
/// cache carry over), with the card's log cleared.
fn fresh_process(harness: &Harness, card: &SimCard) {
    harness.restart();
    card.clear_log();
}

/// The card's log, one name per command: `SELECT`, `GET DATA 5FC102`,
/// `GET METADATA 9A`, `GET RESPONSE`, …
fn conversation(card: &SimCard) -> Vec<String> {
    commands(card).iter().map(|command| name(command)).collect()
}

fn name(command: &[u8]) -> String {
    match command[1] {
        0xA4 => "SELECT".into(),
        0xCB => {
            // 5C <len> <tag>, after a short or extended Lc.
            let at = command
                .windows(2)
                .position(|w| w[0] == 0x5C && (1..=3).contains(&w[1]))
                .expect("GET DATA names its object");
            let len = usize::from(command[at + 1]);
            format!(
                "GET DATA {}",
                hex(&command[at + 2..at + 2 + len]).replace(' ', "")
            )
        }
        0xF7 => format!("GET METADATA {:02X}", command[3]),
        0xC0 => "GET RESPONSE".into(),
        0x20 => "VERIFY".into(),
        0x87 => format!("GENERAL AUTHENTICATE {:02X}", command[3]),
        other => format!("INS {other:02X}"),
    }
}

/// GET METADATA of every key slot (9A's RSA answer needs a GET RESPONSE):
/// the PIN policies on a card that tells them.
const POLICIES: &[&str] = &[
    "GET METADATA 9A",
    "GET RESPONSE",
    "GET METADATA 9C",
    "GET METADATA 9D",
    "GET METADATA 9E",
];

/// How many certificate containers the card was asked for.
fn certificate_reads(card: &SimCard) -> usize {
    conversation(card)
        .iter()
        .filter(|c| CERTIFICATE_READS.contains(&c.as_str()))
        .count()
}

// ----- cards ----------------------------------------------------------------------

/// A card whose CHUID carries an issuer signature.
fn signed(card: SimPivCard) -> SimPivCard {
    card.with_signed_chuid(&[0x5A; 64])
}

/// The objects process 1 lists, with the cache entry they leave behind.
fn first_process(card: SimPivCard, dir: &CacheDir) -> (Harness, SimCard, Vec<Listed>) {
    let (harness, handle) = Harness::with_cache(card, dir.store());
    let objects = list_objects(&harness);
    (harness, handle, objects)
}

// ----- warm starts ------------------------------------------------------------------

#[test]
fn a_signed_chuid_serves_the_certificates_from_the_cache() {
    let dir = CacheDir::new();
    let (harness, card, first) = first_process(signed(SimPivCard::new()), &dir);
    assert_eq!(certificate_reads(&card), 4, "process 1 reads the card");
    let entry = dir.entry();
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.path()), 0o700, "cache directory");
        assert_eq!(mode(&entry), 0o600, "cache entry");
    }

    fresh_process(&harness, &card);
    let second = list_objects(&harness);
    // The CHUID vouches for the certificates; this card (a YubiKey's
    // profile) still tells each key's PIN policy, which the cache does not
    // hold (a card without GET METADATA needs only the first two).
    assert_eq!(
        conversation(&card),
        [&["SELECT", "GET DATA 5FC102"][..], POLICIES].concat()
    );
    assert_eq!(second, first, "objects and values byte for byte");
    assert_eq!(
        certificate(&second, Slot::Authentication),
        card_certificate(&card, Slot::Authentication)
    );

    // Token info after that (label from the cached 9A certificate, serial
    // from the CHUID) costs a transaction of its own for the PIN state:
    // SELECT and VERIFY without data.
    card.clear_log();
    let info = token_info(harness.slot()).expect("C_GetTokenInfo");
    // GET METADATA 80: the PIN's maximum tries, once per card.
    assert_eq!(conversation(&card), ["SELECT", "GET METADATA 80", "VERIFY"]);
    assert_eq!(info.label, padded::<32>("cardsim 9A PIV Authentication"));
    assert_eq!(info.serialNumber, padded::<16>("8899aabbccddeeff"));

    // Token info first: the PIN state comes in the loading transaction.
    fresh_process(&harness, &card);
    let again = token_info(harness.slot()).expect("C_GetTokenInfo");
    assert_eq!(
        (again.label, again.serialNumber),
        (info.label, info.serialNumber)
    );
    assert_eq!(list_objects(&harness), first);
    assert_eq!(
        conversation(&card),
        [
            &["SELECT", "GET DATA 5FC102"][..],
            POLICIES,
            &["GET METADATA 80", "VERIFY"]
        ]
        .concat()
    );
}

#[test]
fn an_unsigned_chuid_is_trusted_only_with_matching_key_metadata() {
    let dir = CacheDir::new();
    let (harness, card, first) = first_process(SimPivCard::new(), &dir);
    dir.entry();

    fresh_process(&harness, &card);
    let second = list_objects(&harness);
    // 9A's RSA metadata (279 bytes) is longer than a short response.
    assert_eq!(
        conversation(&card),
        [
            "SELECT",
            "GET DATA 5FC102",
            "GET METADATA 9A",
            "GET RESPONSE",
            "GET METADATA 9C",
            "GET METADATA 9D",
            "GET METADATA 9E",
            // No retired keys remembered: the Key History must count none.
            "GET DATA 5FC10C",
        ]
    );
    assert_eq!(second, first);
}

/// Whether a card may be cached comes from its profile (`key_metadata` for
/// the YubiKey ATR): the first read writes an entry; a card that then
/// cannot answer GET METADATA (a YubiKey 4 answers 6D00) is read in full,
/// and its entry is removed, not rewritten. A card whose profile has no
/// metadata quirk gets no entry at all.
#[test]
fn without_key_metadata_an_unsigned_chuid_is_never_served_from_the_cache() {
    let dir = CacheDir::new();
    let (harness, card, first) = first_process(SimPivCard::new().without_yubico_extensions(), &dir);
    assert_eq!(
        dir.entries().len(),
        1,
        "written, as the YubiKey profile allows"
    );

    fresh_process(&harness, &card);
    let second = list_objects(&harness);
    let seen = conversation(&card);
    assert_eq!(seen[..3], ["SELECT", "GET DATA 5FC102", "GET METADATA 9A"]);
    assert_eq!(certificate_reads(&card), 4, "{seen:?}");
    assert_eq!(second, first);
    assert!(dir.entries().is_empty(), "the unprovable entry is removed");
    drop(harness);

    // The same card behind an ATR of no profile (generic PIV): no entry.
    let dir = CacheDir::new();
    let plain = SimPivCard::new()
        .without_yubico_extensions()
        .with_atr(OTHER_ATR);
    let (harness, card, first) = first_process(plain, &dir);
    assert_eq!(dir.entries(), Vec::<PathBuf>::new());
    assert!(!dir.path().exists(), "not even the directory");
    fresh_process(&harness, &card);
    assert_eq!(list_objects(&harness), first);
    assert_eq!(certificate_reads(&card), 4);
    assert!(!conversation(&card)
        .iter()
        .any(|c| c.starts_with("GET METADATA")));
}

// ----- another card, or the same card changed ---------------------------------------

#[test]
fn a_repersonalised_card_is_read_again_and_its_entry_rewritten() {
    let dir = CacheDir::new();
    let (harness, _card_a, _) = first_process(SimPivCard::new(), &dir);
    let entry = dir.entry();
    let old = fs::read(&entry).expect("entry");

    // Same reader, same (unsigned) CHUID, a new key and certificate in 9A.
    let card_b = harness.backend.insert(
        READER,
        SimPivCard::new().with_key(Slot::Authentication, KeyType::EccP256),
    );
    fresh_process(&harness, &card_b);
    let objects = list_objects(&harness);
    let new_certificate = card_certificate(&card_b, Slot::Authentication);
    assert_eq!(certificate(&objects, Slot::Authentication), new_certificate);
    let seen = conversation(&card_b);
    assert_eq!(seen[..3], ["SELECT", "GET DATA 5FC102", "GET METADATA 9A"]);
    assert_eq!(certificate_reads(&card_b), 4, "{seen:?}");

    assert_eq!(dir.entry(), entry, "the same card identity, the same entry");
    let rewritten = fs::read(&entry).expect("entry");
    assert!(contains(&rewritten, &new_certificate));
    assert!(!contains(&rewritten, &old_certificate_in(&old)));

    // And the next process is served from the rewritten entry.
    fresh_process(&harness, &card_b);
    assert_eq!(list_objects(&harness), objects);
    assert_eq!(certificate_reads(&card_b), 0);
}

/// A local user who can write the cache re-seals the card's entry (the
/// checksum is no secret) with a second 9A object holding a certificate of
/// their choosing after the genuine one: GET METADATA would prove the
/// genuine 9A key, so the planted one must never be listed. The entry is
/// refused and the card read.
#[test]
fn a_resealed_entry_with_a_second_9a_certificate_is_refused() {
    use sha2::{Digest, Sha256};
    let dir = CacheDir::new();
    let (harness, card, first) = first_process(SimPivCard::new(), &dir);
    let entry = dir.entry();
    let genuine = fs::read(&entry).expect("entry");
    let planted = SimPivCard::new()
        .with_key(Slot::Authentication, KeyType::EccP256)
        .certificate_der(Slot::Authentication)
        .expect("9A certificate")
        .to_vec();
    assert_ne!(planted, card_certificate(&card, Slot::Authentication));

    // magic 15, key 32, stored_at 8, count 2 at 55..57; checksum last.
    let mut body = genuine[..genuine.len() - 32].to_vec();
    let count = u16::from_be_bytes([body[55], body[56]]) + 1;
    body[55..57].copy_from_slice(&count.to_be_bytes());
    body.push(0x9A);
    body.extend_from_slice(&u32::try_from(planted.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&planted);
    let checksum = Sha256::digest(&body);
    body.extend_from_slice(&checksum);
    fs::write(&entry, &body).expect("re-sealed entry");

    fresh_process(&harness, &card);
    let objects = list_objects(&harness);
    assert!(
        !objects
            .iter()
            .any(|o| o.value.as_deref().is_ok_and(|v| v == planted.as_slice())),
        "the planted certificate is listed"
    );
    assert_eq!(objects, first);
    assert_eq!(certificate_reads(&card), 4, "the card is read");
    assert!(!contains(
        &fs::read(&entry).expect("rewritten entry"),
        &planted
    ));
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The default card's 9A certificate (card A's), which `entry` must hold.
fn old_certificate_in(entry: &[u8]) -> Vec<u8> {
    let der = SimPivCard::new()
        .certificate_der(Slot::Authentication)
        .expect("9A certificate")
        .to_vec();
    assert!(
        contains(entry, &der),
        "the old entry holds the old certificate"
    );
    der
}

/// Two cards with the same signed CHUID (a cloned CHUID, or an issuer that
/// reuses one) cannot be told apart before a key is used: process 2 lists
/// the certificate cached from the other card. The first signature with
/// that key is checked against it: it fails with CKR_DEVICE_REMOVED, the
/// entry is removed, and the next read shows the card's own certificate.
#[test]
fn a_card_with_the_same_signed_chuid_but_other_keys_is_caught_at_the_first_signature() {
    let dir = CacheDir::new();
    let (harness, card_a, _) = first_process(signed(SimPivCard::new()), &dir);
    let cached_9e = card_certificate(&card_a, Slot::CardAuthentication);

    let card_b = harness.backend.insert(
        READER,
        signed(SimPivCard::new().with_key_from(
            Slot::CardAuthentication,
            KeyType::EccP256,
            Slot::Signature,
        )),
    );
    let real_9e = card_certificate(&card_b, Slot::CardAuthentication);
    assert_ne!(real_9e, cached_9e);
    fresh_process(&harness, &card_b);
    let listed = list_objects(&harness);
    assert_eq!(
        certificate(&listed, Slot::CardAuthentication),
        cached_9e,
        "documented limit: the other card's cached certificate is listed"
    );
    assert_eq!(certificate_reads(&card_b), 0);

    let session = harness.user_session();
    let key = private_key(session, Slot::CardAuthentication);
    let digest = Hash::Sha256.digest(b"which card is this?");
    let mut mech = Mech::new(CKM_ECDSA);
    match sign(session, mech.raw(), key, &digest) {
        Err(rv) => assert_eq!(rv, CKR_DEVICE_REMOVED),
        Ok(signature) => panic!("a signature from the wrong key came out: {signature:02X?}"),
    }
    assert!(
        conversation(&card_b).contains(&"GENERAL AUTHENTICATE 9E".to_string()),
        "the card did sign"
    );
    assert_eq!(dir.entries(), Vec::<PathBuf>::new(), "the entry is gone");
    assert_eq!(
        session_info(session).err(),
        Some(CKR_SESSION_HANDLE_INVALID)
    );

    fresh_process(&harness, &card_b);
    let objects = list_objects(&harness);
    assert_eq!(certificate(&objects, Slot::CardAuthentication), real_9e);
    assert_eq!(certificate_reads(&card_b), 4);
    // Signing with the listed key now works and verifies.
    let session = harness.user_session();
    let key = private_key(session, Slot::CardAuthentication);
    let signature = sign(session, mech.raw(), key, &digest).expect("C_Sign");
    assert!(check::ecdsa(
        &card_public_key(&card_b, Slot::CardAuthentication),
        &digest,
        &signature
    ));
}

#[test]
fn the_same_chuid_behind_another_atr_is_not_served_from_the_entry() {
    for atr in [&YUBIKEY_5_ATR[..], &OTHER_ATR[..]] {
        let dir = CacheDir::new();
        let (harness, _card_a, _) = first_process(signed(SimPivCard::new()), &dir);
        let card_b = harness.backend.insert(
            READER,
            signed(SimPivCard::new().with_key(Slot::Authentication, KeyType::EccP256))
                .with_atr(atr),
        );
        fresh_process(&harness, &card_b);
        let objects = list_objects(&harness);
        assert_eq!(
            certificate(&objects, Slot::Authentication),
            card_certificate(&card_b, Slot::Authentication),
            "ATR {}",
            hex(atr)
        );
        assert_eq!(certificate_reads(&card_b), 4, "ATR {}", hex(atr));
        assert_eq!(dir.entries().len(), 2, "one entry per ATR");
    }
}

// ----- a cache that cannot be used ----------------------------------------------

#[test]
fn a_corrupted_entry_is_replaced_by_a_fresh_read() {
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 2] = [
        ("a flipped byte", |bytes| {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
        }),
        ("truncated", |bytes| bytes.truncate(bytes.len() - 40)),
    ];
    for (what, damage) in damages {
        let dir = CacheDir::new();
        let (harness, card, first) = first_process(signed(SimPivCard::new()), &dir);
        let entry = dir.entry();
        let mut bytes = fs::read(&entry).expect("entry");
        damage(&mut bytes);
        fs::write(&entry, &bytes).expect("damaged entry");

        fresh_process(&harness, &card);
        assert_eq!(list_objects(&harness), first, "{what}");
        assert_eq!(certificate_reads(&card), 4, "{what}");

        // Rewritten, and good for the next process.
        fresh_process(&harness, &card);
        assert_eq!(list_objects(&harness), first, "{what}");
        assert_eq!(
            conversation(&card),
            [&["SELECT", "GET DATA 5FC102"][..], POLICIES].concat(),
            "{what}"
        );
    }
}

#[test]
fn an_unwritable_cache_directory_changes_nothing_but_the_reads() {
    let dir = CacheDir::new();
    let not_a_directory = dir.base.join("a-file");
    fs::write(&not_a_directory, b"in the way").expect("file");
    let store = CacheStore::at(not_a_directory.join("cache"), CacheStore::DEFAULT_MAX_AGE);
    let (harness, card) = Harness::with_cache(signed(SimPivCard::new()), store);
    let first = list_objects(&harness);
    assert_eq!(
        certificate(&first, Slot::Authentication),
        card_certificate(&card, Slot::Authentication)
    );

    fresh_process(&harness, &card);
    assert_eq!(list_objects(&harness), first);
    assert_eq!(certificate_reads(&card), 4);
    assert_eq!(fs::read(&not_a_directory).expect("file"), b"in the way");
}

/// `use_cache(None)`, what `P11CARD_CACHE=off` gives a real module: an
/// entry already there is not read, and none is written.
#[test]
fn a_module_without_a_cache_neither_reads_nor_writes_one() {
    let dir = CacheDir::new();
    let (harness, card, first) = first_process(signed(SimPivCard::new()), &dir);
    let entry = dir.entry();
    let stored = fs::read(&entry).expect("entry");

    p11card_pkcs11::use_cache(None);
    fresh_process(&harness, &card);
    assert_eq!(list_objects(&harness), first);
    assert_eq!(certificate_reads(&card), 4, "the entry is not used");
    assert_eq!(fs::read(&entry).expect("entry"), stored, "nor rewritten");

    fs::remove_file(&entry).expect("remove the entry");
    fresh_process(&harness, &card);
    assert_eq!(list_objects(&harness), first);
    assert_eq!(certificate_reads(&card), 4);
    assert_eq!(dir.entries(), Vec::<PathBuf>::new());
}

#[test]
fn a_removed_entry_means_reading_the_card() {
    let dir = CacheDir::new();
    let (harness, card, first) = first_process(signed(SimPivCard::new()), &dir);
    fs::remove_file(dir.entry()).expect("remove the entry");

    fresh_process(&harness, &card);
    assert_eq!(list_objects(&harness), first);
    assert_eq!(certificate_reads(&card), 4);
    dir.entry();
}
