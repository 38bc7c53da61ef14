//! Login and logout (PKCS#11 2.40 §5.6) over the PIV PIN (SP 800-73-4
//! Part 2 §3.2.1), checked against the simulated card's retry counter and
//! APDU log.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimPivCard, Slot};
use std::ptr;

const WRONG_PIN: &str = "654321";
const PIN_FLAGS: CK_FLAGS = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;

#[test]
fn right_pin_logs_the_user_in() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    assert_eq!(session_info(session).unwrap().state, CKS_RO_PUBLIC_SESSION);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    assert_eq!(session_info(session).unwrap().state, CKS_RO_USER_FUNCTIONS);
    assert!(card.with(|c| c.pin_verified()));
    assert_eq!(pin_tries_left(&card), 3);
}

#[test]
fn login_in_a_read_write_session_gives_rw_user_functions() {
    let (harness, _card) = Harness::new();
    let session = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    assert_eq!(session_info(session).unwrap().state, CKS_RW_PUBLIC_SESSION);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    assert_eq!(session_info(session).unwrap().state, CKS_RW_USER_FUNCTIONS);
}

/// §5.6: login is per application and token, so every session of the
/// application is logged in, including ones opened later.
#[test]
fn login_state_is_shared_by_all_sessions() {
    let (harness, _card) = Harness::new();
    let first = harness.session();
    let second = harness.session();
    assert_eq!(login(first, CKU_USER, PIN), CKR_OK);
    assert_eq!(session_info(second).unwrap().state, CKS_RO_USER_FUNCTIONS);
    let third = harness.session();
    assert_eq!(session_info(third).unwrap().state, CKS_RO_USER_FUNCTIONS);
    assert_eq!(login(third, CKU_USER, PIN), CKR_USER_ALREADY_LOGGED_IN);
}

#[test]
fn second_login_is_user_already_logged_in() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    card.clear_log();
    assert_eq!(login(session, CKU_USER, PIN), CKR_USER_ALREADY_LOGGED_IN);
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
}

#[test]
fn wrong_pin_is_pin_incorrect_and_costs_exactly_one_try() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
    assert_eq!(pin_tries_left(&card), 2);
    assert_eq!(session_info(session).unwrap().state, CKS_RO_PUBLIC_SESSION);
    // §3.2 CK_TOKEN_INFO: COUNT_LOW "if an incorrect user login PIN has been
    // entered at least once since the last successful authentication".
    let flags = token_flags(harness.slot());
    assert_eq!(
        flags & PIN_FLAGS,
        CKF_USER_PIN_COUNT_LOW,
        "flags {flags:#x}"
    );
}

#[test]
fn two_wrong_pins_leave_the_final_try() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
    assert_eq!(login(session, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
    assert_eq!(pin_tries_left(&card), 1);
    let flags = token_flags(harness.slot());
    assert_ne!(flags & CKF_USER_PIN_FINAL_TRY, 0, "flags {flags:#x}");
    assert_eq!(flags & CKF_USER_PIN_LOCKED, 0, "flags {flags:#x}");
}

#[test]
fn right_pin_after_a_wrong_one_clears_the_warning_flags() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    assert_eq!(pin_tries_left(&card), 3);
    let flags = token_flags(harness.slot());
    assert_eq!(flags & PIN_FLAGS, 0, "flags {flags:#x}");
}

#[test]
fn blocked_pin_is_pin_locked_without_sending_verify() {
    let card = p11card_cardsim::SimCard::new(SimPivCard::new());
    block_pin(&card);
    let backend = p11card_cardsim::SimBackend::new();
    let card = backend.insert(READER, card);
    let harness = Harness::with_backend(backend);
    let flags = token_flags(harness.slot());
    assert_ne!(flags & CKF_USER_PIN_LOCKED, 0, "flags {flags:#x}");
    let session = harness.session();
    card.clear_log();
    assert_eq!(login(session, CKU_USER, PIN), CKR_PIN_LOCKED);
    assert!(
        !instructions(&card).contains(&0x20),
        "VERIFY sent for a blocked PIN:\n{}",
        card.transcript()
    );
}

#[test]
fn pin_blocked_through_the_module_is_then_refused_without_verify() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
    assert_eq!(login(session, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
    // The try that blocks the PIN is still a wrong PIN; either code tells
    // the user the truth.
    let third = login(session, CKU_USER, WRONG_PIN);
    assert!(
        third == CKR_PIN_INCORRECT || third == CKR_PIN_LOCKED,
        "third wrong PIN: {third:#x}"
    );
    assert_eq!(pin_tries_left(&card), 0);
    let flags = token_flags(harness.slot());
    assert_ne!(flags & CKF_USER_PIN_LOCKED, 0, "flags {flags:#x}");
    card.clear_log();
    assert_eq!(login(session, CKU_USER, PIN), CKR_PIN_LOCKED);
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
}

#[test]
fn pin_of_five_or_nine_characters_is_pin_len_range_without_any_apdu() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    card.clear_log();
    for pin in ["12345", "123456789"] {
        assert_eq!(login(session, CKU_USER, pin), CKR_PIN_LEN_RANGE, "{pin}");
    }
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
    assert_eq!(pin_tries_left(&card), 3);
}

#[test]
fn logout_ends_the_login_and_resets_the_card_pin_state() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    assert!(card.with(|c| c.pin_verified()));
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert_eq!(session_info(session).unwrap().state, CKS_RO_PUBLIC_SESSION);
    assert!(!card.with(|c| c.pin_verified()), "{}", card.transcript());
    assert_eq!(ck!(C_Logout(session)), CKR_USER_NOT_LOGGED_IN);
}

#[test]
fn logout_without_login_is_user_not_logged_in() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    assert_eq!(ck!(C_Logout(session)), CKR_USER_NOT_LOGGED_IN);
}

/// §5.6 C_CloseSession: closing the application's last session with the
/// token returns its login state to public.
#[test]
fn closing_the_last_session_logs_out() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
    assert!(!card.with(|c| c.pin_verified()), "{}", card.transcript());
    let session = harness.session();
    assert_eq!(session_info(session).unwrap().state, CKS_RO_PUBLIC_SESSION);
}

/// The 9A key needs the PIN; without a login the module must refuse before
/// the card sees anything. The key is a private object, so after C_Logout
/// its handle is invalid (§5.6 C_Logout); a signing attempt with it gets
/// CKR_KEY_HANDLE_INVALID or CKR_USER_NOT_LOGGED_IN — never an APDU.
#[test]
fn signing_with_9a_without_login_is_refused_before_any_apdu() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    card.clear_log();
    let result = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, b"data");
    assert!(
        matches!(
            result,
            Err(CKR_USER_NOT_LOGGED_IN) | Err(CKR_KEY_HANDLE_INVALID)
        ),
        "{result:x?}"
    );
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
}

/// Another process left the card's PIN verified; this one did not log in,
/// and is refused anyway (the architecture's per-process login rule).
#[test]
fn a_pin_verified_by_someone_else_does_not_log_this_process_in() {
    let (harness, card) = Harness::new();
    // Log in, remember the 9A key, and log out *in the module only* by
    // closing the session; then verify the PIN on the card behind the
    // module's back.
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(b"123456\xFF\xFF");
    card.with(|c| c.process(&verify));
    assert!(card.with(|c| c.pin_verified()));
    let session = harness.session();
    card.clear_log();
    let result = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, b"data");
    assert!(result.is_err(), "signed without logging in");
    assert!(
        !instructions(&card).contains(&0x87),
        "GENERAL AUTHENTICATE sent without a login:\n{}",
        card.transcript()
    );
}

#[test]
fn card_authentication_key_signs_without_login() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    let key = private_key(session, Slot::CardAuthentication);
    card.clear_log();
    let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"door")
        .expect("9E signs without the PIN");
    let public = card_public_key(&card, Slot::CardAuthentication);
    assert!(check::ecdsa(
        &public,
        &Hash::Sha256.digest(b"door"),
        &signature
    ));
    assert!(
        !instructions(&card).contains(&0x20),
        "{}",
        card.transcript()
    );
}

#[test]
fn login_with_a_null_pin_and_a_length_is_arguments_bad() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    assert_eq!(
        ck!(C_Login(session, CKU_USER, ptr::null_mut(), 6)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(pin_tries_left(&card), 3);
}
