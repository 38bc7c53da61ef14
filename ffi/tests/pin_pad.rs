//! PIN-pad readers (PC/SC part 10 `FEATURE_VERIFY_PIN_DIRECT`): the token
//! says `CKF_PROTECTED_AUTHENTICATION_PATH` and `C_Login` takes a NULL PIN,
//! which the user types on the reader.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use std::ptr;

fn login_on_pad(session: CK_SESSION_HANDLE) -> CK_RV {
    ck!(C_Login(session, CKU_USER, ptr::null_mut(), 0))
}

#[test]
fn a_pin_pad_reader_is_a_protected_authentication_path_and_takes_a_null_pin() {
    let (harness, card) = Harness::new();
    card.set_pin_pad(Some("123456"));
    assert_ne!(
        token_flags(harness.slot()) & CKF_PROTECTED_AUTHENTICATION_PATH,
        0
    );
    let session = harness.session();
    card.clear_log();
    assert_eq!(login_on_pad(session), CKR_OK);
    let transcript = card.transcript();
    assert!(
        transcript.contains("00 20 00 80 08 <redacted>"),
        "{transcript}"
    );
    let key = object(session, CKO_PRIVATE_KEY, 0x01);
    assert!(sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, b"pad").is_ok());
}

#[test]
fn a_wrong_pin_typed_on_the_pad_costs_one_try() {
    let (harness, card) = Harness::new();
    card.set_pin_pad(Some("999999"));
    let session = harness.session();
    assert_eq!(login_on_pad(session), CKR_PIN_INCORRECT);
    assert_eq!(pin_tries_left(&card), 2);
    assert_ne!(token_flags(harness.slot()) & CKF_USER_PIN_COUNT_LOW, 0);
    card.set_pin_pad(None);
}

#[test]
fn without_a_pin_pad_a_null_pin_is_a_bad_argument_and_sends_nothing() {
    let (harness, card) = Harness::new();
    assert_eq!(
        token_flags(harness.slot()) & CKF_PROTECTED_AUTHENTICATION_PATH,
        0
    );
    let session = harness.session();
    let before = card.apdu_count();
    assert_eq!(login_on_pad(session), CKR_ARGUMENTS_BAD);
    assert_eq!(card.apdu_count(), before);
}
