//! Issue 11, finding 3: every signature the card answers is checked with the
//! key's public key before `C_Sign` returns it. A forged EC or EdDSA
//! signature, or one made with another key, is `CKR_DEVICE_ERROR` (PKCS#11
//! §5.1: the device misbehaved), never `CKR_OK`. A signature asked for
//! without a SELECT (this process left its application selected) that comes
//! back under another key means another application was selected in
//! between: the module selects its own and signs again, once.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{
    KeyRole, PgpKeyType, PgpPublicKey, SimBackend, SimCard, SimOpenPgpCard, Slot, WrongKey,
};

const SELECT: u8 = 0xA4;
const GENERAL_AUTHENTICATE: u8 = 0x87;
const GET_RESPONSE: u8 = 0xC0;

fn sign_9e(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
    let key = private_key(session, Slot::CardAuthentication);
    sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, data)
}

fn assert_9e_signature(card: &SimCard, data: &[u8], signature: &[u8]) {
    assert!(
        check::ecdsa(
            &card_public_key(card, Slot::CardAuthentication),
            &Hash::Sha256.digest(data),
            signature
        ),
        "not a 9E signature over the data"
    );
}

fn sign_9a(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
    let key = private_key(session, Slot::Authentication);
    sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, data)
}

fn assert_9a_signature(card: &SimCard, data: &[u8], signature: &[u8]) {
    assert!(
        check::rsa_pkcs1(
            &card_public_key(card, Slot::Authentication),
            Hash::Sha256,
            &Hash::Sha256.digest(data),
            signature
        ),
        "not a 9A signature over the data"
    );
}

#[test]
fn a_forged_ecdsa_signature_is_a_device_error() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    card.misbehave(|m| m.forged_signatures = true);
    // P-256 (9E, no PIN), then P-384 (9D) in a login.
    assert_eq!(sign_9e(session, b"forged"), Err(CKR_DEVICE_ERROR));
    let session = harness.user_session();
    let key = private_key(session, Slot::KeyManagement);
    assert_eq!(
        sign(session, &mut mechanism(CKM_ECDSA_SHA384), key, b"forged"),
        Err(CKR_DEVICE_ERROR)
    );
    // The same card, honest again, signs (the slot stays usable).
    card.misbehave(|m| m.forged_signatures = false);
    let signature = sign_9e(session, b"honest").expect("C_Sign with an honest card");
    assert_9e_signature(&card, b"honest", &signature);
}

#[test]
fn a_forged_eddsa_signature_is_a_device_error() {
    let (backend, card) = SimBackend::with_card(
        SimOpenPgpCard::new().with_key(KeyRole::Authentication, PgpKeyType::Ed25519),
    );
    let harness = Harness::with_backend(backend);
    let session = harness.user_session();
    // OpenSC's ID of the OpenPGP authentication key.
    let key = object(session, CKO_PRIVATE_KEY, 3);
    card.misbehave(|m| m.forged_signatures = true);
    assert_eq!(
        sign(session, &mut mechanism(CKM_EDDSA), key, b"forged"),
        Err(CKR_DEVICE_ERROR)
    );
    card.misbehave(|m| m.forged_signatures = false);
    let signature = sign(session, &mut mechanism(CKM_EDDSA), key, b"honest").unwrap();
    let PgpPublicKey::Ed25519(public) = card
        .with_openpgp(|c| c.public_key(KeyRole::Authentication))
        .unwrap()
    else {
        panic!("not Ed25519");
    };
    let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    assert!(ed25519_dalek::Verifier::verify(&public, b"honest", &signature).is_ok());
}

#[test]
fn a_signature_under_another_key_is_a_device_error_even_after_a_select() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    card.misbehave(|m| m.wrong_key = Some(WrongKey::Always));
    card.clear_log();
    assert_eq!(sign_9e(session, b"wrong key"), Err(CKR_DEVICE_ERROR));
    // RSA (checked in the module too, whichever engine signs).
    assert_eq!(sign_9a(session, b"wrong key"), Err(CKR_DEVICE_ERROR));
    let sent = instructions(&card);
    assert!(
        sent.contains(&SELECT),
        "the full sequence was tried: {sent:02X?}"
    );
    card.misbehave(|m| m.wrong_key = None);
    let signature = sign_9a(session, b"right key").expect("C_Sign with the right key");
    assert_9a_signature(&card, b"right key", &signature);
}

/// Another process selected a second PIV-compatible application, with keys
/// of its own, between two of this process's signatures.
#[test]
fn a_second_application_selected_in_between_gets_a_select_and_a_valid_signature() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    for (what, sign_once, valid) in [
        (
            "9E (ECDSA)",
            sign_9e as fn(CK_SESSION_HANDLE, &[u8]) -> Result<Vec<u8>, CK_RV>,
            assert_9e_signature as fn(&SimCard, &[u8], &[u8]),
        ),
        ("9A (RSA)", sign_9a, assert_9a_signature),
    ] {
        // The module's own signature leaves PIV selected.
        sign_once(session, b"first").unwrap_or_else(|rv| panic!("{what}: first: {rv:#x}"));
        card.misbehave(|m| m.wrong_key = Some(WrongKey::UntilSelect));
        card.clear_log();
        let signature = sign_once(session, b"second").unwrap_or_else(|rv| {
            panic!(
                "{what}: after another application: {rv:#x}\n{}",
                card.transcript()
            )
        });
        valid(&card, b"second", &signature);
        // Chained commands and GET RESPONSE (RSA) count as one command.
        let mut sent = instructions(&card);
        sent.retain(|&ins| ins != GET_RESPONSE);
        sent.dedup();
        assert_eq!(
            sent,
            [GENERAL_AUTHENTICATE, SELECT, GENERAL_AUTHENTICATE],
            "{what}: resumed without SELECT, then selected and signed again:\n{}",
            card.transcript()
        );
    }
}
