//! PIN management through standard PKCS#11: `C_SetPIN` (logged in or with
//! the old PIN), and unblocking with `C_Login(CKU_SO, PUK)` + `C_InitPIN`.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::Slot;

fn set_pin(session: CK_SESSION_HANDLE, old: &str, new: &str) -> CK_RV {
    ck!(C_SetPIN(
        session,
        old.as_ptr() as *mut u8,
        old.len() as CK_ULONG,
        new.as_ptr() as *mut u8,
        new.len() as CK_ULONG
    ))
}

fn init_pin(session: CK_SESSION_HANDLE, new: &str) -> CK_RV {
    ck!(C_InitPIN(
        session,
        new.as_ptr() as *mut u8,
        new.len() as CK_ULONG
    ))
}

fn rw_session(harness: &Harness) -> CK_SESSION_HANDLE {
    open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION)
}

#[test]
fn set_pin_changes_the_pin_in_a_logged_in_session() {
    let (harness, card) = Harness::new();
    let session = rw_session(&harness);
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    assert_eq!(set_pin(session, "123456", "24681357"), CKR_OK);
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert_eq!(login(session, CKU_USER, "123456"), CKR_PIN_INCORRECT);
    assert_eq!(login(session, CKU_USER, "24681357"), CKR_OK);
    assert_eq!(pin_tries_left(&card), 3);
}

/// Issue 11, finding 5: the PIN kept to restore a lost login follows
/// `C_SetPIN`. After another process resets the card, the module verifies
/// the new PIN, not the old one (which cost a try).
#[test]
fn after_set_pin_a_reset_elsewhere_is_restored_with_the_new_pin() {
    let (harness, card) = Harness::new();
    let session = rw_session(&harness);
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    assert_eq!(set_pin(session, "123456", "24681357"), CKR_OK);
    card.reset();
    card.clear_log();
    let key = private_key(session, Slot::Authentication);
    let data = b"after the reset";
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, data)
        .unwrap_or_else(|rv| panic!("C_Sign after the reset: {rv:#x}\n{}", card.transcript()));
    assert!(check::rsa_pkcs1(
        &card_public_key(&card, Slot::Authentication),
        Hash::Sha256,
        &Hash::Sha256.digest(data),
        &signature
    ));
    assert!(
        instructions(&card).contains(&0x20),
        "the login was restored with a VERIFY:\n{}",
        card.transcript()
    );
    assert_eq!(pin_tries_left(&card), 3, "no try spent on the old PIN");
    assert_eq!(
        session_info(session).map(|i| i.state),
        Ok(CKS_RW_USER_FUNCTIONS)
    );
}

#[test]
fn set_pin_works_without_login_given_the_old_pin() {
    let (harness, _card) = Harness::new();
    let session = rw_session(&harness);
    assert_eq!(set_pin(session, "123456", "654321"), CKR_OK);
    assert_eq!(login(session, CKU_USER, "654321"), CKR_OK);
}

#[test]
fn set_pin_with_a_wrong_old_pin_costs_one_try() {
    let (harness, card) = Harness::new();
    let session = rw_session(&harness);
    assert_eq!(set_pin(session, "000000", "654321"), CKR_PIN_INCORRECT);
    assert_eq!(pin_tries_left(&card), 2);
    assert_ne!(token_flags(harness.slot()) & CKF_USER_PIN_COUNT_LOW, 0);
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
}

#[test]
fn set_pin_checks_lengths_and_session_kind_before_any_apdu() {
    let (harness, card) = Harness::new();
    let read_only = harness.session();
    let before = card.apdu_count();
    assert_eq!(
        set_pin(read_only, "123456", "654321"),
        CKR_SESSION_READ_ONLY
    );
    let session = rw_session(&harness);
    assert_eq!(set_pin(session, "123456", "12345"), CKR_PIN_LEN_RANGE);
    assert_eq!(set_pin(session, "123456", "123456789"), CKR_PIN_LEN_RANGE);
    assert_eq!(card.apdu_count(), before, "no APDU for refused calls");
    assert_eq!(pin_tries_left(&card), 3);
}

#[test]
fn a_blocked_pin_is_unblocked_with_the_puk_through_so_login_and_init_pin() {
    let (harness, card) = Harness::new();
    block_pin(&card);
    let session = rw_session(&harness);
    assert_eq!(login(session, CKU_USER, "123456"), CKR_PIN_LOCKED);
    assert_ne!(token_flags(harness.slot()) & CKF_USER_PIN_LOCKED, 0);

    assert_eq!(login(session, CKU_SO, "12345678"), CKR_OK);
    assert_eq!(session_info(session).unwrap().state, CKS_RW_SO_FUNCTIONS);
    assert_eq!(init_pin(session, "112233"), CKR_OK);
    assert_eq!(token_flags(harness.slot()) & CKF_USER_PIN_LOCKED, 0);
    assert_eq!(ck!(C_Logout(session)), CKR_OK);

    assert_eq!(login(session, CKU_USER, "112233"), CKR_OK);
    assert_eq!(pin_tries_left(&card), 3);
}

#[test]
fn a_wrong_puk_is_reported_by_init_pin_and_costs_one_puk_try() {
    let (harness, card) = Harness::new();
    let session = rw_session(&harness);
    assert_eq!(login(session, CKU_SO, "87654321"), CKR_OK);
    assert_eq!(init_pin(session, "112233"), CKR_PIN_INCORRECT);
    assert_eq!(card.with(|c| c.puk_tries_left()), 2);
    // A wrong PUK ends the SO login, as a failed C_Login would: a second
    // C_InitPIN cannot spend another PUK try with the same wrong code.
    assert_eq!(session_info(session).unwrap().state, CKS_RW_PUBLIC_SESSION);
    assert_eq!(init_pin(session, "112233"), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(card.with(|c| c.puk_tries_left()), 2);
    // The PIN itself is untouched.
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
}

#[test]
fn so_login_is_refused_while_a_read_only_session_exists() {
    let (harness, _card) = Harness::new();
    let _read_only = harness.session();
    let session = rw_session(&harness);
    assert_eq!(
        login(session, CKU_SO, "12345678"),
        CKR_SESSION_READ_ONLY_EXISTS
    );
}

#[test]
fn user_and_so_logins_exclude_each_other() {
    let (harness, _card) = Harness::new();
    let session = rw_session(&harness);
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    assert_eq!(
        login(session, CKU_SO, "12345678"),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN
    );
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert_eq!(login(session, CKU_SO, "12345678"), CKR_OK);
    assert_eq!(
        login(session, CKU_USER, "123456"),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN
    );
    assert_eq!(init_pin(session, "12345"), CKR_PIN_LEN_RANGE);
}

/// A process that starts after wrong PINs were entered elsewhere (another
/// program, an earlier run) still shows `CKF_USER_PIN_COUNT_LOW`; after a
/// right PIN the card's counter is full again and the flag goes.
#[test]
fn count_low_shows_wrong_pins_entered_before_this_process_started() {
    let (harness, card) = Harness::new();
    card.with(|c| {
        let select = [
            0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
        ];
        c.process(&select);
        let mut wrong = vec![0x00, 0x20, 0x00, 0x80, 0x08];
        wrong.extend_from_slice(b"999999\xFF\xFF");
        c.process(&wrong);
        c.power_on();
    });
    assert_eq!(pin_tries_left(&card), 2);
    assert_ne!(token_flags(harness.slot()) & CKF_USER_PIN_COUNT_LOW, 0);
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    assert_eq!(token_flags(harness.slot()) & CKF_USER_PIN_COUNT_LOW, 0);
}
