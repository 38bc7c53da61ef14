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

/// `C_SetPIN` with both PINs NULL: the user types both on the reader.
fn change_on_pad(session: CK_SESSION_HANDLE) -> CK_RV {
    ck!(C_SetPIN(session, ptr::null_mut(), 0, ptr::null_mut(), 0))
}

#[test]
fn a_pin_pad_reader_changes_the_pin_when_both_pins_are_null() {
    let (harness, card) = Harness::new();
    card.set_pin_pad(Some("123456"));
    card.set_pin_pad_new_pin(Some("24681357"));
    let session = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    card.clear_log();
    assert_eq!(change_on_pad(session), CKR_OK);
    let transcript = card.transcript();
    assert!(
        transcript.contains("00 24 00 80 10 <redacted>"),
        "{transcript}"
    );
    // The card took the new PIN: a typed login with it works.
    card.set_pin_pad(None);
    let (harness, _card) = (harness, card);
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "24681357"), CKR_OK);
}

#[test]
fn a_wrong_current_pin_typed_for_a_change_costs_one_try_and_changes_nothing() {
    let (harness, card) = Harness::new();
    card.set_pin_pad(Some("999999"));
    card.set_pin_pad_new_pin(Some("24681357"));
    let session = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    assert_eq!(change_on_pad(session), CKR_PIN_INCORRECT);
    assert_eq!(pin_tries_left(&card), 2);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
}

#[test]
fn null_pins_for_a_change_need_a_pin_pad_that_can_change_pins() {
    // No PIN pad: a bad argument, nothing sent.
    let (harness, card) = Harness::new();
    let session = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    let before = card.apdu_count();
    assert_eq!(change_on_pad(session), CKR_ARGUMENTS_BAD);
    assert_eq!(card.apdu_count(), before);
    // One NULL PIN and one typed: an empty PIN, of a length the card
    // cannot take.
    assert_eq!(
        ck!(C_SetPIN(
            session,
            ptr::null_mut(),
            0,
            b"24681357".as_ptr() as *mut _,
            8
        )),
        CKR_PIN_LEN_RANGE
    );
    drop(harness);
    // A PIN pad that verifies but cannot change PINs: not supported.
    let (harness, card) = Harness::new();
    card.set_pin_pad(Some("123456"));
    let session = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    assert_eq!(change_on_pad(session), CKR_FUNCTION_NOT_SUPPORTED);
    assert_eq!(pin_tries_left(&card), 3);
}

#[test]
fn a_pin_the_reader_refuses_is_pin_len_range_and_costs_no_try() {
    let (harness, card) = Harness::new();
    card.set_pin_pad(Some("123456"));
    let session = harness.session();
    // The reader answers 6403 itself for a PIN of a length outside the
    // limits, before the card sees anything.
    card.set_pin_pad(Some("12"));
    assert_eq!(login_on_pad(session), CKR_PIN_LEN_RANGE);
    assert_eq!(pin_tries_left(&card), 3);
}
