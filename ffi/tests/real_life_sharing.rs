//! Issue 5, items 4, 5 and 10: the card is shared with other processes.
//! - Another process reset the card (or made it forget the PIV state): the
//!   module re-selects, notices the lost login and says
//!   `CKR_USER_NOT_LOGGED_IN` (not a device error); `C_Login` then works.
//! - Login state belongs to the process: a PIN another process left
//!   verified on the card gives this process nothing, and no APDU is sent
//!   for the refused attempt; `C_Logout`, `C_CloseAllSessions`, closing the
//!   last session and `C_Finalize` really drop the card's security state
//!   (PIV VERIFY with P1 = FF, SP 800-73-4 Part 2 §3.2.1).
//! - The always-authenticate key 9C: the context-specific PIN and the
//!   GENERAL AUTHENTICATE go to the card in one transaction, so no other
//!   process can come in between.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{LoggedApdu, SimCard, SimPivCard, Slot};

/// VERIFY with P1 = FF for the PIV PIN: "reset the security status".
const PIN_RESET: [u8; 4] = [0x00, 0x20, 0xFF, 0x80];

fn sign_9a(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<Vec<u8>, CK_RV> {
    sign(
        session,
        &mut mechanism(CKM_SHA256_RSA_PKCS),
        key,
        b"shared card",
    )
}

fn assert_9a_signature(card: &SimCard, signature: &[u8]) {
    assert!(check::rsa_pkcs1(
        &card_public_key(card, Slot::Authentication),
        Hash::Sha256,
        &Hash::Sha256.digest(b"shared card"),
        signature
    ));
}

fn sent_pin_reset(card: &SimCard) -> bool {
    commands(card).iter().any(|c| c.starts_with(&PIN_RESET))
}

// ----- a card reset (or state lost) behind the module's back ----------------

#[test]
fn after_a_reset_by_another_process_the_login_is_restored_and_signing_works() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    assert_9a_signature(
        &card,
        &sign_9a(session, key).expect("C_Sign before the reset"),
    );
    card.reset();
    card.clear_log();
    // This process is still logged in (PKCS#11 login state is the
    // process's): the module re-selects PIV and verifies the PIN again.
    let signature = sign_9a(session, key).unwrap_or_else(|rv| {
        panic!(
            "C_Sign after another process reset the card: {rv:#x}\n{}",
            card.transcript()
        )
    });
    assert_9a_signature(&card, &signature);
    let log = instructions(&card);
    assert_eq!(
        log.first(),
        Some(&0xA4),
        "the PIV application re-selected first: {log:02X?}"
    );
    assert!(log.contains(&0x20), "the PIN verified again: {log:02X?}");
    assert_eq!(
        session_info(session).map(|i| i.state),
        Ok(CKS_RO_USER_FUNCTIONS),
        "the session keeps its login"
    );
}

#[test]
fn after_a_reset_a_key_without_pin_signs_at_the_first_try() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    let key = private_key(session, Slot::CardAuthentication);
    let data = b"9e after a reset";
    sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, data).expect("before the reset");
    card.reset();
    let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, data)
        .expect("C_Sign with 9E after another process reset the card");
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::CardAuthentication),
        &Hash::Sha256.digest(data),
        &signature
    ));
}

#[test]
fn piv_state_lost_without_a_reset_is_restored_from_the_login() {
    // Another application on the card was selected (or the card lost power
    // and PC/SC did not say so): PIV deselected, PIN no longer verified.
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    card.with(|c| c.power_on());
    card.clear_log();
    let signature = sign_9a(session, key).unwrap_or_else(|rv| {
        panic!(
            "C_Sign after the card forgot the PIN: {rv:#x}\n{}",
            card.transcript()
        )
    });
    assert_9a_signature(&card, &signature);
    // GENERAL AUTHENTICATE without SELECT (the module's last transaction
    // left PIV selected) is refused; PIV is selected before the PIN goes
    // out again.
    let sent = instructions(&card);
    let select = sent.iter().position(|&ins| ins == 0xA4);
    let verify = sent.iter().position(|&ins| ins == 0x20);
    assert!(
        matches!((select, verify), (Some(s), Some(v)) if s < v),
        "re-selected before the PIN:\n{}",
        card.transcript()
    );
}

/// A PIN changed by another process while this one is logged in: the one
/// re-verification fails, the login ends, and no further try is spent.
#[test]
fn a_pin_changed_elsewhere_ends_the_login_after_one_try() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    card.with(|c| {
        let select = [
            0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
        ];
        c.process(&select);
        let mut change = vec![0x00, 0x24, 0x00, 0x80, 0x10];
        change.extend_from_slice(b"123456\xFF\xFF654321\xFF\xFF");
        assert_eq!(c.process(&change), vec![0x90, 0x00]);
        c.power_on();
    });
    assert_eq!(sign_9a(session, key), Err(CKR_USER_NOT_LOGGED_IN));
    assert_eq!(pin_tries_left(&card), 2);
    let again = sign_9a(session, key);
    assert!(
        matches!(again, Err(CKR_KEY_HANDLE_INVALID | CKR_USER_NOT_LOGGED_IN)),
        "{again:?}"
    );
    assert_eq!(pin_tries_left(&card), 2, "no second try spent");
}

// ----- login state belongs to the process ----------------------------------

#[test]
fn a_pin_verified_by_another_process_shows_no_private_keys_to_a_session_that_did_not_log_in() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    verify_pin_behind_the_modules_back(&card);
    let visible: Vec<u8> = find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))])
        .into_iter()
        .map(|key| attribute(session, key, CKA_ID).unwrap()[0])
        .collect();
    for slot in [Slot::Authentication, Slot::Signature, Slot::KeyManagement] {
        assert!(
            !visible.contains(&key_id(slot)),
            "{slot:?}'s private key is visible without C_Login: {visible:?}"
        );
    }
    assert_eq!(
        session_info(session).map(|i| i.state),
        Ok(CKS_RO_PUBLIC_SESSION)
    );
    assert!(
        card_pin_verified(&card),
        "the module touched the other process's login"
    );
}

#[test]
fn a_pin_verified_by_another_process_does_not_let_this_one_sign_and_sends_no_apdu() {
    let (harness, card) = Harness::new();
    // Learn the 9A key's handle in a login of our own, then log out.
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    verify_pin_behind_the_modules_back(&card);
    let (apdus, transactions) = (card.apdu_count(), card.transactions());
    let mut mech = Mech::new(CKM_SHA256_RSA_PKCS);
    let init = ck!(C_SignInit(session, mech.ptr(), key));
    let result = if init == CKR_OK {
        sign_more(session, b"not mine").err()
    } else {
        Some(init)
    };
    assert!(
        matches!(
            result,
            Some(CKR_USER_NOT_LOGGED_IN | CKR_KEY_HANDLE_INVALID | CKR_OBJECT_HANDLE_INVALID)
        ),
        "signing with 9A without C_Login (C_SignInit {init:#x}): {result:#x?}"
    );
    assert_eq!(
        card.apdu_count(),
        apdus,
        "APDUs for a refused signature:\n{}",
        card.transcript()
    );
    assert_eq!(
        card.transactions(),
        transactions,
        "card transactions for a refused signature"
    );
    assert!(card_pin_verified(&card));
}

#[test]
fn c_logout_resets_the_cards_pin_state() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    assert!(card_pin_verified(&card));
    card.clear_log();
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert!(
        sent_pin_reset(&card),
        "no VERIFY P1=FF on C_Logout:\n{}",
        card.transcript()
    );
    assert!(
        !card_pin_verified(&card),
        "the card still holds the PIN after C_Logout"
    );
}

#[test]
fn c_close_all_sessions_resets_the_cards_pin_state() {
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    harness.user_session();
    harness.session();
    assert!(card_pin_verified(&card));
    card.clear_log();
    assert_eq!(ck!(C_CloseAllSessions(slot)), CKR_OK);
    assert!(
        sent_pin_reset(&card),
        "no VERIFY P1=FF on C_CloseAllSessions:\n{}",
        card.transcript()
    );
    assert!(!card_pin_verified(&card));
}

#[test]
fn closing_the_last_session_resets_the_cards_pin_state() {
    let (harness, card) = Harness::new();
    let first = harness.user_session();
    let second = harness.session();
    assert_eq!(ck!(C_CloseSession(first)), CKR_OK);
    assert!(
        card_pin_verified(&card),
        "logged out while a session was still open"
    );
    card.clear_log();
    assert_eq!(ck!(C_CloseSession(second)), CKR_OK);
    assert!(
        sent_pin_reset(&card),
        "no VERIFY P1=FF:\n{}",
        card.transcript()
    );
    assert!(!card_pin_verified(&card));
}

#[test]
fn c_finalize_resets_the_cards_pin_state() {
    let (harness, card) = Harness::new();
    harness.user_session();
    assert!(card_pin_verified(&card));
    card.clear_log();
    assert_eq!(ck!(C_Finalize(std::ptr::null_mut())), CKR_OK);
    assert!(
        sent_pin_reset(&card),
        "no VERIFY P1=FF:\n{}",
        card.transcript()
    );
    assert!(!card_pin_verified(&card));
}

#[test]
fn another_process_logging_out_is_noticed_as_user_not_logged_in() {
    // Another process sent its own VERIFY P1=FF (its C_Logout) while this
    // one was logged in: the next 9A signature meets 6982 on the card.
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    card.with(|c| {
        c.process(&SELECT_PIV);
        c.process(&PIN_RESET);
    });
    match sign_9a(session, key) {
        Ok(signature) => assert_9a_signature(&card, &signature),
        Err(rv) => {
            assert_eq!(
                rv, CKR_USER_NOT_LOGGED_IN,
                "C_Sign after another process logged the card out"
            );
            assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
        }
    }
}

// ----- always-authenticate: one transaction -----------------------------------

/// Signs with 9C after C_SignInit and the context login; `between` runs
/// after the login. Returns what C_Sign sent the card, checking that it
/// used one transaction and that the signature verifies.
fn sign_9c_after_context_login(between: impl FnOnce(&SimCard)) -> Vec<LoggedApdu> {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Signature);
    let slot = harness.slot();
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    assert!(token_info(slot).is_ok());
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    assert_eq!(
        session_info(session).map(|i| i.state),
        Ok(CKS_RO_USER_FUNCTIONS)
    );
    assert!(token_info(slot).is_ok());
    let before = card.log().len();
    between(&card);
    let (begun, _) = card.transactions();
    let data = b"one transaction";
    let signature = sign_more(session, data).expect("C_Sign after the context login");
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::Signature),
        &Hash::Sha256.digest(data),
        &signature
    ));
    let (after, ended) = card.transactions();
    assert_eq!(
        after - begun,
        1,
        "C_Sign used {} transactions",
        after - begun
    );
    assert_eq!(after, ended, "a transaction left open");
    let log = card.log();
    // The card's PIN-always policy: the command right before GENERAL
    // AUTHENTICATE is the VERIFY with the PIN.
    let last = log.len() - 1;
    assert!(
        last > 0
            && log[last].ins() == 0x87
            && log[last - 1].ins() == 0x20
            && log[last - 1].command[2] == 0x00,
        "VERIFY with the PIN is not right before GENERAL AUTHENTICATE:\n{}",
        card.transcript()
    );
    log[before..].to_vec()
}

#[test]
fn right_after_the_context_login_the_9c_signature_is_one_apdu() {
    let sent = sign_9c_after_context_login(|_| {});
    let instructions: Vec<u8> = sent.iter().map(|entry| entry.ins()).collect();
    assert_eq!(
        instructions,
        [0x87],
        "C_Sign sent more than GENERAL AUTHENTICATE"
    );
}

#[test]
fn a_command_between_the_context_login_and_the_signature_brings_the_pin_again() {
    // Another process talks to the card in between: the card no longer
    // allows 9C; the module selects, VERIFYs and signs in one transaction.
    let sent = sign_9c_after_context_login(|card| {
        card.with(|c| {
            c.process(&[0x00, 0x20, 0x00, 0x80]);
        })
    });
    let instructions: Vec<u8> = sent.iter().map(|entry| entry.ins()).collect();
    assert_eq!(
        instructions.iter().rev().take(3).collect::<Vec<_>>(),
        [&0x87, &0x20, &0xA4],
        "SELECT, VERIFY, GENERAL AUTHENTICATE at the end:\n{instructions:02X?}"
    );
}

// ----- reader state within a burst of calls -------------------------------------

#[test]
fn a_burst_of_calls_asks_pc_sc_once_and_a_pulled_card_still_fails_the_next_apdu() {
    use std::sync::atomic::Ordering;
    let window = std::time::Duration::from_secs(60);
    let (harness, card, asked) = Harness::with_status_window(SimPivCard::new(), window);
    let session = harness.user_session();
    let slot = harness.slot();
    let key = private_key(session, Slot::CardAuthentication);
    let before = asked.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert!(token_info(slot).is_ok());
    }
    sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"burst").expect("C_Sign");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        before,
        "calls within the window asked PC/SC again"
    );
    // Pulled within the window: calls without an APDU may still show the
    // token, but the next command to the card fails and ends it.
    card.remove();
    assert_eq!(
        sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"gone").err(),
        Some(CKR_DEVICE_REMOVED)
    );
    assert_eq!(token_info(slot).err(), Some(CKR_TOKEN_NOT_PRESENT));
}

#[test]
fn without_a_window_every_call_asks_pc_sc() {
    use std::sync::atomic::Ordering;
    let (harness, _card, asked) =
        Harness::with_status_window(SimPivCard::new(), std::time::Duration::ZERO);
    let slot = harness.slot();
    assert!(token_info(slot).is_ok());
    let before = asked.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert!(token_info(slot).is_ok());
    }
    assert_eq!(asked.load(Ordering::SeqCst), before + 5);
}
