//! The disk cache of a card's public data, through the C ABI: a second
//! process (`C_Finalize` + `C_Initialize`, see [`Harness::restart`]) that
//! finds the card's entry skips reading its certificates (and, under a
//! signed CHUID, each key's PIN policy and the PIN's maximum tries), but
//! only while the card can prove the entry is its own: a signed CHUID, or
//! GET METADATA (Yubico, INS F7) answering each key slot's public key.
//! Whatever goes wrong with the cache, the card is read and the objects are
//! right.
//!
//! Each test has a cache directory of its own ([`CacheDir`]), created by
//! the module; the simulated card's log shows what was read from the card.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card::cache::CacheStore;
use p11card_cardsim::{
    KeyType, PinPolicy, SimCard, SimMyEidCard, SimPivCard, Slot, TouchPolicy, PIV_AID,
};
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
            // (a data object has no CKA_ID)
            id: attribute(session, object, CKA_ID).unwrap_or_default(),
            label: attribute(session, object, CKA_LABEL).expect("CKA_LABEL"),
            // (a data object's value is read from the card when asked for,
            // never from the cache: it may be private)
            value: if as_ulong(&attribute(session, object, CKA_CLASS).unwrap()) == CKO_DATA {
                Err(CKR_OK)
            } else {
                attribute(session, object, CKA_VALUE)
            },
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
    // The CHUID vouches for the certificates, and for what the entry keeps
    // of this card's GET METADATA answers (each key's PIN policy): nothing
    // else is asked.
    assert_eq!(conversation(&card), ["SELECT", "GET DATA 5FC102"]);
    assert_eq!(second, first, "objects and values byte for byte");
    assert_eq!(
        certificate(&second, Slot::Authentication),
        card_certificate(&card, Slot::Authentication)
    );

    // Token info after that (label from the cached 9A certificate, serial
    // from the CHUID) costs a transaction of its own for the PIN state:
    // SELECT and VERIFY without data (the PIN's maximum tries are in the
    // entry too).
    card.clear_log();
    let info = token_info(harness.slot()).expect("C_GetTokenInfo");
    assert_eq!(conversation(&card), ["SELECT", "VERIFY"]);
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
    assert_eq!(conversation(&card), ["SELECT", "GET DATA 5FC102", "VERIFY"]);
}

/// Whether the card wants the PIN for each private key, as an application
/// sees it: (`CKA_ID`, `CKA_PRIVATE`, `CKA_ALWAYS_AUTHENTICATE`).
fn pin_rules(session: CK_SESSION_HANDLE) -> Vec<(Vec<u8>, bool, bool)> {
    let mut rules: Vec<_> = find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))])
        .into_iter()
        .map(|key| {
            let flag = |kind| as_bool(&attribute(session, key, kind).expect("flag"));
            (
                attribute(session, key, CKA_ID).expect("CKA_ID"),
                flag(CKA_PRIVATE),
                flag(CKA_ALWAYS_AUTHENTICATE),
            )
        })
        .collect();
    rules.sort();
    rules
}

/// Spends one PIN try straight on the card (another program).
fn spend_a_try(card: &SimCard) {
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, PIV_AID.len() as u8];
    select.extend_from_slice(&PIV_AID);
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(b"999999\xFF\xFF");
    card.with(|c| {
        c.process(&select);
        c.process(&verify);
        c.power_on();
        c.clear_log();
    });
}

/// Under a signed CHUID the entry keeps what GET METADATA said of each key
/// slot: 9A's PIN "always" (CKA_ALWAYS_AUTHENTICATE), 9C's "once", 9E's
/// "never" (no login), the key of 9D that has no certificate, and the PIN's
/// five tries (one spent elsewhere shows as CKF_USER_PIN_COUNT_LOW). The
/// warm process asks for none of it: SELECT and the CHUID, then the PIN
/// state; a login and two signatures add no GET METADATA either.
#[test]
fn a_signed_chuid_keeps_each_keys_pin_policy_and_the_pin_tries_in_the_entry() {
    let dir = CacheDir::new();
    let card = signed(
        SimPivCard::new()
            .with_policy(0x9A, PinPolicy::Always, TouchPolicy::Never)
            .with_policy(0x9C, PinPolicy::Once, TouchPolicy::Cached)
            .without_cert(Slot::KeyManagement)
            .with_pin("123456", 5),
    );
    let (harness, card, first) = first_process(card, &dir);
    let rules = pin_rules(harness.user_session());
    assert_eq!(
        rules,
        [
            (vec![1], true, true),
            (vec![2], true, false),
            (vec![3], true, false),
            (vec![4], false, false),
        ],
        "9A always, 9C once, 9D (no certificate) once, 9E never"
    );
    dir.entry();

    fresh_process(&harness, &card);
    spend_a_try(&card);
    assert_eq!(list_objects(&harness), first);
    assert_eq!(conversation(&card), ["SELECT", "GET DATA 5FC102"]);
    let flags = token_flags(harness.slot());
    assert_ne!(
        flags & CKF_USER_PIN_COUNT_LOW,
        0,
        "4 of the 5 tries the entry remembers"
    );
    assert_eq!(
        conversation(&card),
        ["SELECT", "GET DATA 5FC102", "SELECT", "VERIFY"]
    );

    // 9E signs without a login; 9C after one login, twice (PIN once).
    card.clear_log();
    let public = harness.session();
    let digest = Hash::Sha256.digest(b"warm");
    let mut mech = Mech::new(CKM_ECDSA);
    let key = private_key(public, Slot::CardAuthentication);
    let signature = sign(public, mech.raw(), key, &digest).expect("9E without a login");
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::CardAuthentication),
        &digest,
        &signature
    ));
    let session = harness.user_session();
    assert_eq!(pin_rules(session), rules, "the PIN rules survive the cache");
    let key = private_key(session, Slot::Signature);
    for _ in 0..2 {
        let signature = sign(session, mech.raw(), key, &digest).expect("9C, PIN once");
        assert!(check::ecdsa(
            &card_public_key(&card, Slot::Signature),
            &digest,
            &signature
        ));
    }
    let seen = conversation(&card);
    assert!(
        !seen.iter().any(|c| c.starts_with("GET METADATA")),
        "{seen:?}"
    );
}

/// The key without a certificate comes from the entry too (from the GET
/// METADATA answer it keeps), so it is held to the same rule as a cached
/// certificate: another card with the same signed CHUID but another 9D key
/// lists the remembered key until its first signature, which does not
/// verify: CKR_DEVICE_REMOVED, the entry goes, the next read is the card's.
#[test]
fn a_remembered_key_without_certificate_is_checked_at_its_first_signature() {
    let dir = CacheDir::new();
    let (harness, _card_a, _) = first_process(
        signed(SimPivCard::new().without_cert(Slot::KeyManagement)),
        &dir,
    );
    let card_b = harness.backend.insert(
        READER,
        signed(
            SimPivCard::new()
                .with_key_from(Slot::KeyManagement, KeyType::EccP384, Slot::Signature)
                .without_cert(Slot::KeyManagement),
        ),
    );
    fresh_process(&harness, &card_b);
    let session = harness.user_session();
    assert_eq!(conversation(&card_b)[..2], ["SELECT", "GET DATA 5FC102"]);
    let key = private_key(session, Slot::KeyManagement);
    let digest = Hash::Sha384.digest(b"which 9D?");
    let mut mech = Mech::new(CKM_ECDSA);
    assert_eq!(
        sign(session, mech.raw(), key, &digest).err(),
        Some(CKR_DEVICE_REMOVED)
    );
    assert_eq!(dir.entries(), Vec::<PathBuf>::new(), "the entry is gone");

    fresh_process(&harness, &card_b);
    let session = harness.user_session();
    let key = private_key(session, Slot::KeyManagement);
    let signature = sign(session, mech.raw(), key, &digest).expect("the card's own 9D");
    assert!(check::ecdsa(
        &card_public_key(&card_b, Slot::KeyManagement),
        &digest,
        &signature
    ));
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
    // Then each object: kind (1: certificate), name length, name, length.
    let mut body = genuine[..genuine.len() - 32].to_vec();
    let count = u16::from_be_bytes([body[55], body[56]]) + 1;
    body[55..57].copy_from_slice(&count.to_be_bytes());
    body.extend_from_slice(&[1, 1, 0x9A]);
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
        assert_eq!(conversation(&card), ["SELECT", "GET DATA 5FC102"], "{what}");
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

// ----- a PKCS#15 card with a change counter -----------------------------------

/// The simulated MyEID card as OpenSC's `pkcs15-init` personalised it.
const MYEID_IMAGE: &str = include_str!("../../tests/realstack/pkcs15/myeid-personalised.image");

fn myeid() -> SimMyEidCard {
    SimMyEidCard::from_image(MYEID_IMAGE).expect("the personalised image loads")
}

/// What `pkcs11-tool -L -O` asks: token info, then every object with its
/// attributes (the listing compared between processes).
fn token_and_objects(harness: &Harness) -> (String, Vec<Listed>) {
    let info = token_info(harness.slot()).expect("C_GetTokenInfo");
    let label = String::from_utf8_lossy(&info.label).trim_end().to_owned();
    (label, list_objects(harness))
}

/// The instructions the card was sent (`A4` SELECT, `CA` GET DATA, `B0`
/// READ BINARY, `20` VERIFY, …).
fn instructions_sent(card: &SimCard) -> Vec<u8> {
    commands(card).iter().map(|command| command[1]).collect()
}

/// Sends `apdu` to the MyEID card as another program would (outside the
/// module), insisting on 9000.
fn myeid_command(card: &SimCard, apdu: &[u8]) {
    let answer = card.with_applet(|applet| applet.as_myeid_mut().expect("MyEID").process(apdu));
    assert_eq!(answer[answer.len() - 2..], [0x90, 0x00], "{}", hex(apdu));
}

/// The MyEID card's change counter (GET DATA `01 A0`, bytes 18..20).
fn myeid_counter(card: &SimCard) -> Vec<u8> {
    let answer = card.with_applet(|applet| {
        applet
            .as_myeid_mut()
            .expect("MyEID")
            .process(&[0x00, 0xCA, 0x01, 0xA0, 0x14])
    });
    answer[18..20].to_vec()
}

/// The profile's change counter (myeid.toml: GET DATA `01 A0`) proves the
/// card's files unchanged: a warm `-L -O` is SELECT, GET DATA and the PIN
/// state's VERIFY (no file is read), the objects are the same byte for
/// byte, and a key from the cache signs (its first signature is checked).
#[test]
fn a_pkcs15_card_is_read_from_the_cache_while_its_change_counter_stands() {
    let dir = CacheDir::new();
    let (harness, card) = Harness::with_cache(myeid(), dir.store());
    let first = token_and_objects(&harness);
    let cold = instructions_sent(&card);
    assert!(cold.contains(&0xB0), "the cold read reads files");
    assert_eq!(
        cold.iter().filter(|&&ins| ins == 0xCA).count(),
        1,
        "one GET DATA: the change counter"
    );
    dir.entry();

    fresh_process(&harness, &card);
    assert_eq!(token_and_objects(&harness), first);
    let warm = instructions_sent(&card);
    assert_eq!(warm, [0xA4, 0xCA, 0x20], "{}", card.transcript());
    assert!(warm.len() < cold.len());
    println!(
        "-L -O: cold {} APDUs, warm {} APDUs",
        cold.len(),
        warm.len()
    );

    // The EC key (iD 02) from the cache signs after a login.
    let session = harness.user_session();
    let key = object(session, CKO_PRIVATE_KEY, 2);
    let digest = Hash::Sha256.digest(b"a PKCS#15 key from the cache");
    let signature =
        sign(session, &mut mechanism(CKM_ECDSA), key, &digest).expect("ECDSA from the cache");
    assert_eq!(signature.len(), 64);
}

/// A write to the card's file system (here the PrKDF, as `pkcs15-init`
/// would when it stores a key: a label changed after the user PIN)
/// moves the change counter: the next process reads the card, shows the new
/// label, and rewrites the entry, which then serves the process after.
#[test]
fn a_write_to_the_pkcs15_card_moves_its_counter_and_the_card_is_read_again() {
    let dir = CacheDir::new();
    let (harness, card) = Harness::with_cache(myeid(), dir.store());
    let (_, before) = token_and_objects(&harness);
    let entry = dir.entry();
    let counter = myeid_counter(&card);

    // VERIFY the user PIN, SELECT 3F00/5015/4402 (the PrKDF), UPDATE BINARY
    // of the RSA key's label ("MyEID RSA" at offset 6).
    let mut verify = vec![0x00, 0x20, 0x00, 0x01, 0x08];
    verify.extend_from_slice(b"123456\xFF\xFF");
    myeid_command(&card, &verify);
    myeid_command(
        &card,
        &[0x00, 0xA4, 0x08, 0x0C, 0x04, 0x50, 0x15, 0x44, 0x02],
    );
    let mut update = vec![0x00, 0xD6, 0x00, 0x06, 0x09];
    update.extend_from_slice(b"MyEID XYZ");
    myeid_command(&card, &update);
    card.with_applet(|applet| applet.as_myeid_mut().expect("MyEID").power_on());
    assert_ne!(myeid_counter(&card), counter, "the write moved the counter");

    fresh_process(&harness, &card);
    let (_, after) = token_and_objects(&harness);
    assert!(
        instructions_sent(&card).contains(&0xB0),
        "the card is read: {}",
        card.transcript()
    );
    let labels = |objects: &[Listed]| -> Vec<Vec<u8>> {
        objects
            .iter()
            .filter(|o| o.class == CKO_CERTIFICATE && o.id == [1])
            .map(|o| o.label.clone())
            .collect()
    };
    assert_eq!(labels(&before), [b"MyEID RSA".to_vec()]);
    assert_eq!(labels(&after), [b"MyEID XYZ".to_vec()]);
    assert_eq!(dir.entry(), entry, "the same card, the same entry");

    fresh_process(&harness, &card);
    let (_, again) = token_and_objects(&harness);
    assert_eq!(again, after);
    assert_eq!(instructions_sent(&card), [0xA4, 0xCA, 0x20]);
}

/// A card whose profile names no change counter (the generic `pkcs15`
/// profile, or MyEID behind an ATR no profile lists) gets no entry: there
/// is nothing to prove its files current with.
#[test]
fn a_pkcs15_card_without_a_change_counter_is_never_cached() {
    let dir = CacheDir::new();
    let card = myeid().with_atr(OTHER_ATR);
    let (harness, card) = Harness::with_cache(card, dir.store());
    let first = token_and_objects(&harness);
    assert!(
        !instructions_sent(&card).contains(&0xCA),
        "{}",
        card.transcript()
    );
    fresh_process(&harness, &card);
    assert_eq!(token_and_objects(&harness), first);
    assert!(instructions_sent(&card).contains(&0xB0));
    assert_eq!(dir.entries(), Vec::<PathBuf>::new());
}
