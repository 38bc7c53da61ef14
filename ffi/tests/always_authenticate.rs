//! The PIV Digital Signature key (9C) needs the PIN immediately before
//! every use (SP 800-73-4 Part 1 §3.2, "PIN Always"). PKCS#11 shows it with
//! `CKA_ALWAYS_AUTHENTICATE` (2.40 §4.9) and takes the PIN through
//! `C_Login(CKU_CONTEXT_SPECIFIC)` after the operation's Init (§5.6).

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::Slot;
use std::ptr;

const MESSAGE: &[u8] = b"I agree to the terms";

fn sign_9c_init(session: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    let key = private_key(session, Slot::Signature);
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    key
}

/// PKCS#11 3.0 §5.13: a call to `C_Sign` ends the operation unless it
/// answers a length query or `CKR_BUFFER_TOO_SMALL`, a refusal for want of
/// the context login included (issue 12: `ssh-agent` tries 9C, is refused,
/// and must still be able to sign with the next key).
#[test]
fn sign_without_context_login_is_user_not_logged_in_and_ends_the_operation() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    sign_9c_init(session);
    card.clear_log();
    assert_eq!(sign_more(session, MESSAGE), Err(CKR_USER_NOT_LOGGED_IN));
    assert!(
        !instructions(&card).contains(&0x87),
        "GENERAL AUTHENTICATE without the PIN:\n{}",
        card.transcript()
    );
    // The operation is over: a context login has nothing to attach to.
    assert_eq!(
        login(session, CKU_CONTEXT_SPECIFIC, PIN),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(pin_tries_left(&card), 3);
    // The next key signs in the same session (ssh-agent's second key).
    let next = private_key(session, Slot::Authentication);
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), next, MESSAGE)
        .expect("C_SignInit + C_Sign with the next key");
    let public = card_public_key(&card, Slot::Authentication);
    assert!(check::rsa_pkcs1(
        &public,
        Hash::Sha256,
        &Hash::Sha256.digest(MESSAGE),
        &signature
    ));
    // And 9C itself, done right: Init, context login, Sign.
    sign_9c_init(session);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    let signature = sign_more(session, MESSAGE).expect("C_Sign after the context login");
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::Signature),
        &Hash::Sha256.digest(MESSAGE),
        &signature
    ));
}

/// The same for `C_SignFinal`: a multi-part signature refused for want of
/// the context login ends, and the key can be used again at once.
#[test]
fn sign_final_without_context_login_ends_the_operation() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Signature);
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    assert_eq!(
        sign_parts(session, &mut mech, key, &[b"I agree ", b"to the terms"]),
        Err(CKR_USER_NOT_LOGGED_IN)
    );
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    let parts: [&[u8]; 2] = [b"I agree ", b"to the terms"];
    for part in parts {
        assert_eq!(
            ck!(C_SignUpdate(
                session,
                part.as_ptr() as *mut u8,
                part.len() as CK_ULONG
            )),
            CKR_OK
        );
    }
    let signature = two_call(|out, len| unsafe { (f().C_SignFinal.unwrap())(session, out, len) })
        .expect("C_SignFinal after the context login");
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::Signature),
        &Hash::Sha256.digest(&parts.concat()),
        &signature
    ));
}

#[test]
fn context_login_then_sign_verifies() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    sign_9c_init(session);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    let signature = sign_more(session, MESSAGE).expect("C_Sign");
    assert_eq!(signature.len(), 64);
    let public = card_public_key(&card, Slot::Signature);
    assert!(check::ecdsa(
        &public,
        &Hash::Sha256.digest(MESSAGE),
        &signature
    ));
    let public_handle = public_key(session, Slot::Signature);
    assert_eq!(
        verify(
            session,
            &mut Mech::new(CKM_ECDSA_SHA256),
            public_handle,
            MESSAGE,
            &signature
        ),
        CKR_OK
    );
}

#[test]
fn the_context_pin_is_good_for_one_signature_only() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    sign_9c_init(session);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    assert!(sign_more(session, MESSAGE).is_ok());
    sign_9c_init(session);
    assert_eq!(sign_more(session, MESSAGE), Err(CKR_USER_NOT_LOGGED_IN));
}

#[test]
fn context_login_without_an_active_operation_is_operation_not_initialized() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    card.clear_log();
    assert_eq!(
        login(session, CKU_CONTEXT_SPECIFIC, PIN),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
}

#[test]
fn wrong_context_pin_is_pin_incorrect_and_costs_one_try() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    sign_9c_init(session);
    assert_eq!(
        login(session, CKU_CONTEXT_SPECIFIC, "000000"),
        CKR_PIN_INCORRECT
    );
    assert_eq!(pin_tries_left(&card), 2);
}

#[test]
fn a_length_query_needs_no_context_login() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    sign_9c_init(session);
    let mut len: CK_ULONG = 0;
    assert_eq!(
        ck!(C_Sign(
            session,
            MESSAGE.as_ptr() as *mut u8,
            MESSAGE.len() as CK_ULONG,
            ptr::null_mut(),
            &mut len
        )),
        CKR_OK
    );
    assert_eq!(len, 64);
}

/// `ssh-agent` (OpenSSH 9.2): `C_SignInit` on 9C, then no context login
/// (its helper cannot ask for a PIN) and no `C_Sign` either, straight to
/// `C_SignInit` on the next key. An operation still waiting for its
/// context login, with nothing fed, gives way to the new one; any other
/// active operation is still `CKR_OPERATION_ACTIVE`.
#[test]
fn an_init_abandoned_for_want_of_the_context_login_gives_way_to_the_next_init() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    sign_9c_init(session);
    let next = private_key(session, Slot::CardAuthentication);
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), next)), CKR_OK);
    // 9E's operation is not waiting for anything: it stays.
    assert_eq!(
        ck!(C_SignInit(session, mech.ptr(), next)),
        CKR_OPERATION_ACTIVE
    );
    let signature = sign_more(session, MESSAGE).expect("C_Sign with 9E");
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::CardAuthentication),
        &Hash::Sha256.digest(MESSAGE),
        &signature
    ));
    // Once fed, or once the context login came, 9C's operation stays.
    sign_9c_init(session);
    assert_eq!(
        ck!(C_SignUpdate(
            session,
            MESSAGE.as_ptr() as *mut u8,
            MESSAGE.len() as CK_ULONG
        )),
        CKR_OK
    );
    assert_eq!(
        ck!(C_SignInit(session, mech.ptr(), next)),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(ck3!(C_SessionCancel(session, CKF_SIGN)), CKR_OK);
    sign_9c_init(session);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    assert_eq!(
        ck!(C_SignInit(session, mech.ptr(), next)),
        CKR_OPERATION_ACTIVE
    );
    assert!(sign_more(session, MESSAGE).is_ok());
}
