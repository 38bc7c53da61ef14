//! PIV cards beyond the four standard slots with certificates (issue 12):
//! retired key management keys (Key History object), keys without a
//! certificate and per-key PIN rules (GET METADATA), the PIN's real maximum
//! tries, and a global PIN the Discovery object names primary.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{
    tags, KeyType, PinPolicy, SimCard, SimPivCard, SimPublicKey, Slot, TouchPolicy,
};
use rsa::traits::PublicKeyParts;

const MESSAGE: &[u8] = b"retired but not forgotten";

/// The ATR of a PIV card no profile names (virtpiv's): the generic profile.
const GENERIC_ATR: [u8; 11] = [
    0x3B, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xFF, 0x01, 0x00, 0x0B,
];

/// GET METADATA (Yubico `F7`) of this key reference.
fn is_metadata(command: &[u8], reference: u8) -> bool {
    command.get(1) == Some(&0xF7) && command.get(3) == Some(&reference)
}

fn count(card: &SimCard, matches: impl Fn(&[u8]) -> bool) -> usize {
    commands(card).iter().filter(|c| matches(c)).count()
}

/// Every object of the token (the search makes the module read them all).
fn all_objects(session: CK_SESSION_HANDLE) -> Vec<CK_OBJECT_HANDLE> {
    find(session, &[])
}

fn label(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> String {
    String::from_utf8(attribute(session, object, CKA_LABEL).unwrap()).unwrap()
}

fn flag(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, kind: CK_ATTRIBUTE_TYPE) -> bool {
    as_bool(&attribute(session, object, kind).unwrap())
}

fn ecdsa_sign(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<Vec<u8>, CK_RV> {
    sign(session, Mech::new(CKM_ECDSA_SHA256).raw(), key, MESSAGE)
}

fn rsa_sign(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<Vec<u8>, CK_RV> {
    sign(session, Mech::new(CKM_SHA256_RSA_PKCS).raw(), key, MESSAGE)
}

// ----- 1. retired key management keys ----------------------------------------

fn card_with_retired_keys() -> SimPivCard {
    SimPivCard::new()
        .with_retired_key(1, KeyType::Rsa2048, Slot::KeyManagement)
        .with_retired_key(2, KeyType::EccP256, Slot::Authentication)
}

#[test]
fn retired_keys_have_opensc_ids_and_labels_and_sign_and_decrypt_after_one_login() {
    let (harness, card) = Harness::with_card(card_with_retired_keys());
    let session = harness.user_session();
    let rsa = object(session, CKO_PRIVATE_KEY, 0x05);
    let ec = object(session, CKO_PRIVATE_KEY, 0x06);
    assert_eq!(label(session, rsa), "Retired KEY MAN 1");
    assert_eq!(label(session, ec), "Retired KEY MAN 2");
    for key in [rsa, ec] {
        assert!(
            !flag(session, key, CKA_ALWAYS_AUTHENTICATE),
            "PIN once, as 9D"
        );
        assert!(flag(session, key, CKA_SIGN));
    }
    assert!(flag(session, rsa, CKA_DECRYPT));
    assert!(
        flag(session, ec, CKA_DERIVE),
        "EC key management keys do ECDH"
    );
    let certificate = object(session, CKO_CERTIFICATE, 0x05);
    assert_eq!(label(session, certificate), "Retired KEY MAN 1");
    let stored = card.with(|c| c.retired_certificate_der(1).unwrap().to_vec());
    assert_eq!(attribute(session, certificate, CKA_VALUE).unwrap(), stored);
    object(session, CKO_PUBLIC_KEY, 0x06);

    // One login, then any number of operations without a context login.
    let rsa_public = card.with(|c| c.retired_public_key(1)).unwrap();
    let ec_public = card.with(|c| c.retired_public_key(2)).unwrap();
    let hash = Hash::Sha256.digest(MESSAGE);
    for _ in 0..2 {
        let signature = rsa_sign(session, rsa).expect("RSA signature with retired key 1");
        assert!(check::rsa_pkcs1(
            &rsa_public,
            Hash::Sha256,
            &hash,
            &signature
        ));
        let signature = ecdsa_sign(session, ec).expect("ECDSA with retired key 2");
        assert!(check::ecdsa(&ec_public, &hash, &signature));
    }
    let ciphertext = encrypt(
        session,
        &mut Mech::new(CKM_RSA_PKCS),
        object(session, CKO_PUBLIC_KEY, 0x05),
        b"old mail",
    )
    .expect("encryption with the retired public key");
    let plain = decrypt(session, &mut Mech::new(CKM_RSA_PKCS), rsa, &ciphertext)
        .expect("decryption with the retired key");
    assert_eq!(plain, b"old mail");
}

#[test]
fn a_card_without_key_history_costs_one_get_data_and_no_container() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    assert_eq!(
        all_objects(session).len(),
        12,
        "four keys, three objects each"
    );
    assert_eq!(count(&card, get_data(tags::KEY_HISTORY)), 1);
    for index in 0..20 {
        assert_eq!(count(&card, get_data(tags::RETIRED_1 + index)), 0);
    }
}

#[test]
fn containers_are_read_until_the_key_history_count_is_found() {
    // Retired key 2's certificate is kept off the card: the Key History
    // counts one on-card certificate (key 1) and one off-card (key 2), and
    // key 3 is... not there: the containers after key 1 are not read.
    let card = SimPivCard::new()
        .with_retired_key(1, KeyType::EccP256, Slot::Signature)
        .with_retired_key(2, KeyType::EccP256, Slot::CardAuthentication)
        .without_retired_cert(2);
    let (harness, card) = Harness::with_card(card);
    let session = harness.user_session();
    object(session, CKO_PRIVATE_KEY, 0x05);
    assert!(
        find(session, &[(CKA_ID, vec![0x06])]).is_empty(),
        "no certificate, no key"
    );
    assert_eq!(count(&card, get_data(tags::RETIRED_1)), 1);
    assert_eq!(
        count(&card, get_data(tags::RETIRED_1 + 1)),
        0,
        "stopped after the count"
    );
}

#[test]
fn certificates_past_a_gap_are_found() {
    // Keys 1 and 3 have certificates, container 2 is empty: the count (2)
    // is reached at container 3 and no further container is read.
    let card = SimPivCard::new()
        .with_retired_key(1, KeyType::EccP256, Slot::Signature)
        .with_retired_key(3, KeyType::EccP384, Slot::Signature);
    let (harness, card) = Harness::with_card(card);
    let session = harness.user_session();
    object(session, CKO_PRIVATE_KEY, 0x05);
    object(session, CKO_PRIVATE_KEY, 0x07);
    assert_eq!(count(&card, get_data(tags::RETIRED_1 + 2)), 1);
    assert_eq!(count(&card, get_data(tags::RETIRED_1 + 3)), 0);
}

#[test]
fn retired_keys_come_back_from_the_disk_cache_while_the_card_proves_them() {
    let dir = std::env::temp_dir().join(format!("p11card-retired-{}", std::process::id()));
    let store = p11card::cache::CacheStore::at(dir.clone(), std::time::Duration::from_secs(3600));
    let (harness, card) = Harness::with_cache(card_with_retired_keys(), store);
    let session = harness.user_session();
    assert_eq!(all_objects(session).len(), 18);
    harness.restart();
    card.clear_log();
    let session = harness.user_session();
    assert_eq!(
        all_objects(session).len(),
        18,
        "the retired keys are remembered"
    );
    // Warm: no certificate read; the Key History and the retired keys'
    // GET METADATA prove them.
    assert_eq!(
        count(&card, get_data(tags::RETIRED_1)),
        0,
        "{}",
        card.transcript()
    );
    assert_eq!(count(&card, get_data(tags::KEY_HISTORY)), 1);
    assert_eq!(count(&card, |c| is_metadata(c, 0x82)), 1);
    drop(harness);
    std::fs::remove_dir_all(dir).ok();
}

// ----- 2. keys without a certificate --------------------------------------

#[test]
fn a_key_without_certificate_shows_its_public_key_from_get_metadata_and_signs() {
    let card = SimPivCard::new().without_cert(Slot::Authentication);
    let (harness, card) = Harness::with_card(card);
    let session = harness.user_session();
    let private = private_key(session, Slot::Authentication);
    let public = public_key(session, Slot::Authentication);
    assert!(find(
        session,
        &[(CKA_CLASS, ulong(CKO_CERTIFICATE)), (CKA_ID, vec![1])]
    )
    .is_empty());
    assert_eq!(label(session, private), "PIV Authentication");
    let SimPublicKey::Rsa(rsa) = card_public_key(&card, Slot::Authentication) else {
        panic!("9A is RSA");
    };
    assert_eq!(
        attribute(session, public, CKA_MODULUS).unwrap(),
        rsa.n().to_bytes_be()
    );
    let signature = rsa_sign(session, private).expect("signature with the key");
    let hash = Hash::Sha256.digest(MESSAGE);
    assert!(check::rsa_pkcs1(
        &card_public_key(&card, Slot::Authentication),
        Hash::Sha256,
        &hash,
        &signature
    ));
    // The token's label still comes from the first certificate (9C's).
    let info = token_info(harness.slot()).unwrap();
    assert_eq!(&info.label[..27], b"cardsim 9C Digital Signatur");
}

#[test]
fn a_card_without_get_metadata_is_asked_once_and_shows_nothing_for_the_slots() {
    let card = SimPivCard::new()
        .without_yubico_extensions()
        .without_cert(Slot::Authentication)
        .without_cert(Slot::KeyManagement);
    let (harness, card) = Harness::with_card(card);
    let session = harness.user_session();
    assert!(find(session, &[(CKA_ID, vec![1])]).is_empty());
    assert!(find(session, &[(CKA_ID, vec![3])]).is_empty());
    assert_eq!(
        count(&card, |c| c.get(1) == Some(&0xF7)),
        1,
        "{}",
        card.transcript()
    );
}

#[test]
fn a_generic_card_with_every_certificate_is_not_asked_for_metadata() {
    let card = SimPivCard::new().with_atr(GENERIC_ATR);
    let (harness, card) = Harness::with_card(card);
    let session = harness.user_session();
    assert_eq!(all_objects(session).len(), 12);
    assert_eq!(
        count(&card, |c| c.get(1) == Some(&0xF7)),
        0,
        "{}",
        card.transcript()
    );
}

#[test]
fn a_generic_card_is_asked_for_metadata_of_its_slots_without_certificate_only() {
    let card = SimPivCard::new()
        .with_atr(GENERIC_ATR)
        .without_cert(Slot::KeyManagement);
    let (harness, card) = Harness::with_card(card);
    let session = harness.user_session();
    object(session, CKO_PUBLIC_KEY, 3);
    assert!(find(
        session,
        &[(CKA_CLASS, ulong(CKO_CERTIFICATE)), (CKA_ID, vec![3])]
    )
    .is_empty());
    let asked: Vec<u8> = commands(&card)
        .iter()
        .filter(|c| c.get(1) == Some(&0xF7))
        .map(|c| c[3])
        .collect();
    assert_eq!(asked, [0x9D]);
}

// ----- 3. PIN and touch policy, PIN tries -----------------------------------

#[test]
fn always_authenticate_follows_the_cards_pin_policy() {
    let card = SimPivCard::new()
        .with_policy(0x9C, PinPolicy::Once, TouchPolicy::Always)
        .with_policy(0x9A, PinPolicy::Always, TouchPolicy::Never);
    let (harness, card) = Harness::with_card(card);
    let session = harness.user_session();
    let key_9c = private_key(session, Slot::Signature);
    let key_9a = private_key(session, Slot::Authentication);
    assert!(
        !flag(session, key_9c, CKA_ALWAYS_AUTHENTICATE),
        "9C with PIN once"
    );
    assert!(
        flag(session, key_9a, CKA_ALWAYS_AUTHENTICATE),
        "9A with PIN always"
    );
    // 9C signs twice after one login, as the card allows.
    let public = card_public_key(&card, Slot::Signature);
    let hash = Hash::Sha256.digest(MESSAGE);
    for _ in 0..2 {
        let signature = ecdsa_sign(session, key_9c).expect("9C with PIN once");
        assert!(check::ecdsa(&public, &hash, &signature));
    }
    // 9A wants the context login (a session of its own for the refusal).
    let mut mech = Mech::new(CKM_SHA256_RSA_PKCS);
    let refused = harness.session();
    assert_eq!(ck!(C_SignInit(refused, mech.ptr(), key_9a)), CKR_OK);
    assert_eq!(sign_more(refused, MESSAGE), Err(CKR_USER_NOT_LOGGED_IN));
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key_9a)), CKR_OK);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    let signature = sign_more(session, MESSAGE).expect("9A after the context login");
    assert!(check::rsa_pkcs1(
        &card_public_key(&card, Slot::Authentication),
        Hash::Sha256,
        &hash,
        &signature
    ));
}

#[test]
fn a_key_the_card_uses_without_pin_needs_no_login() {
    let card = SimPivCard::new().with_policy(0x9A, PinPolicy::Never, TouchPolicy::Never);
    let (harness, card) = Harness::with_card(card);
    let session = harness.session();
    let key = private_key(session, Slot::Authentication);
    assert!(!flag(session, key, CKA_PRIVATE));
    let signature = rsa_sign(session, key).expect("9A with PIN never, no login");
    assert!(check::rsa_pkcs1(
        &card_public_key(&card, Slot::Authentication),
        Hash::Sha256,
        &Hash::Sha256.digest(MESSAGE),
        &signature
    ));
}

/// Spends `wrong` PIN tries straight on the card (another program).
fn spend_tries(card: &SimCard, wrong: usize) {
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(b"999999\xFF\xFF");
    card.with(|c| {
        c.process(&SELECT_PIV);
        for _ in 0..wrong {
            c.process(&verify);
        }
        c.power_on();
        c.clear_log();
    });
}

#[test]
fn the_pin_count_is_low_below_the_cards_own_maximum() {
    // 5 tries, one spent elsewhere: 4 left is low for this card (a module
    // assuming 3 tries would not say so).
    let card = SimPivCard::new().with_pin("123456", 5);
    let (backend, card) = p11card_cardsim::SimBackend::with_card(card);
    spend_tries(&card, 1);
    let harness = Harness::with_backend(backend);
    let flags = token_flags(harness.slot());
    assert_ne!(flags & CKF_USER_PIN_COUNT_LOW, 0, "4 of 5 tries left");
    assert_eq!(count(&card, |c| is_metadata(c, 0x80)), 1);
    drop(harness);

    // 2 tries, none spent: not low.
    let (harness, _card) = Harness::with_card(SimPivCard::new().with_pin("123456", 2));
    let flags = token_flags(harness.slot());
    assert_eq!(flags & CKF_USER_PIN_COUNT_LOW, 0, "2 of 2 tries left");
}

#[test]
fn a_card_without_metadata_keeps_the_usual_three_tries() {
    let card = SimPivCard::new().without_yubico_extensions();
    let (backend, card) = p11card_cardsim::SimBackend::with_card(card);
    spend_tries(&card, 1);
    let harness = Harness::with_backend(backend);
    assert_ne!(token_flags(harness.slot()) & CKF_USER_PIN_COUNT_LOW, 0);
    assert_eq!(count(&card, |c| c.get(1) == Some(&0xF7)), 1, "asked once");
    token_flags(harness.slot());
    let session = harness.user_session();
    all_objects(session);
    assert_eq!(count(&card, |c| c.get(1) == Some(&0xF7)), 1, "never again");
}

// ----- 4. the global PIN -----------------------------------------------------

const GLOBAL_PIN: &str = "87654321";

fn global_pin_card(primary: bool) -> SimPivCard {
    SimPivCard::new()
        .with_atr(GENERIC_ATR)
        .with_global_pin(GLOBAL_PIN, primary)
}

/// The P2 (key reference) of every VERIFY and CHANGE REFERENCE DATA sent.
fn pin_references(card: &SimCard) -> Vec<u8> {
    commands(card)
        .iter()
        .filter(|c| matches!(c.get(1), Some(0x20 | 0x24)) && c.get(2) == Some(&0x00))
        .map(|c| c[3])
        .collect()
}

#[test]
fn a_primary_global_pin_is_verified_shown_and_changed_under_reference_00() {
    let (harness, card) = Harness::with_card(global_pin_card(true));
    token_flags(harness.slot());
    let session = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    assert_eq!(
        login(session, CKU_USER, PIN),
        CKR_PIN_INCORRECT,
        "the PIV PIN is not the token's"
    );
    assert_eq!(card.with(|c| c.global_pin_tries_left()), Some(2));
    assert_eq!(card.with(|c| c.pin_tries_left()), 3);
    assert_eq!(login(session, CKU_USER, GLOBAL_PIN), CKR_OK);
    assert!(card_pin_verified(&card));
    let key = private_key(session, Slot::Authentication);
    rsa_sign(session, key).expect("signature after the global PIN");
    let new = b"11223344";
    let rv = ck!(C_SetPIN(
        session,
        GLOBAL_PIN.as_ptr() as *mut u8,
        GLOBAL_PIN.len() as CK_ULONG,
        new.as_ptr() as *mut u8,
        new.len() as CK_ULONG
    ));
    assert_eq!(rv, CKR_OK);
    let references = pin_references(&card);
    assert!(!references.is_empty());
    assert!(
        references.iter().all(|&r| r == 0x00),
        "{}",
        card.transcript()
    );
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert_eq!(login(session, CKU_USER, "11223344"), CKR_OK);
}

#[test]
fn the_puk_does_not_reset_a_global_pin() {
    let (harness, _card) = Harness::with_card(global_pin_card(true));
    let session = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    assert_eq!(login(session, CKU_SO, "12345678"), CKR_OK);
    let new = b"11223344";
    let rv = ck!(C_InitPIN(
        session,
        new.as_ptr() as *mut u8,
        new.len() as CK_ULONG
    ));
    assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED);
}

#[test]
fn a_global_pin_that_is_not_primary_leaves_the_piv_pin() {
    let (harness, card) = Harness::with_card(global_pin_card(false));
    let session = harness.user_session();
    rsa_sign(session, private_key(session, Slot::Authentication)).expect("signature");
    assert!(pin_references(&card).iter().all(|&r| r == 0x80));
    assert_eq!(card.with(|c| c.global_pin_tries_left()), Some(3));
}

/// GET DATA of the Discovery object (`5C 01 7E`), short or extended.
fn is_discovery(command: &[u8]) -> bool {
    command.get(1) == Some(&0xCB) && command.windows(3).any(|w| w == [0x5C, 0x01, 0x7E])
}

#[test]
fn a_yubikey_profile_does_not_read_the_discovery_object() {
    let (harness, card) = Harness::new();
    harness.user_session();
    assert_eq!(count(&card, is_discovery), 0);
    drop(harness);
    let (harness, card) = Harness::with_card(SimPivCard::new().with_atr(GENERIC_ATR));
    harness.user_session();
    assert_eq!(count(&card, is_discovery), 1);
}
