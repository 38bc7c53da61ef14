//! Issue 5, item 8: no card I/O where none is needed. NSS and browsers poll
//! `C_GetInfo`, `C_GetSlotInfo`, `C_GetTokenInfo` and `C_GetSessionInfo`
//! in a loop; each APDU (and each card transaction) would make a real card
//! blink and slow the browser down. Token flags come from what the module
//! already knows, and are refreshed by the card operations that learn more
//! (a wrong PIN, a good one).

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimCard, Slot};

const ROUNDS: usize = 100;

/// The card's APDU and transaction counters.
fn io(card: &SimCard) -> (usize, (usize, usize)) {
    (card.apdu_count(), card.transactions())
}

fn poll_once(slot: CK_SLOT_ID, session: CK_SESSION_HANDLE) {
    let mut info = unsafe { std::mem::zeroed::<CK_INFO>() };
    assert_eq!(ck!(C_GetInfo(&mut info)), CKR_OK);
    assert_eq!(slot_list(true), vec![slot]);
    assert!(slot_info(slot).is_ok());
    assert!(token_info(slot).is_ok());
    assert!(session_info(session).is_ok());
    assert_eq!(poll_slot_event(), Ok(None));
}

#[test]
fn polling_info_functions_sends_no_apdu() {
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    let session = harness.session();
    token_info(slot).expect("the first C_GetTokenInfo reads the card");
    let before = io(&card);
    for _ in 0..ROUNDS {
        poll_once(slot, session);
    }
    assert_eq!(
        io(&card),
        before,
        "{ROUNDS} rounds of polling reached the card:\n{}",
        card.transcript()
    );
}

#[test]
fn polling_while_logged_in_sends_no_apdu() {
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    let session = harness.user_session();
    let before = io(&card);
    for _ in 0..ROUNDS {
        poll_once(slot, session);
    }
    assert_eq!(
        io(&card),
        before,
        "polling reached the card:\n{}",
        card.transcript()
    );
    assert!(card_pin_verified(&card));
}

#[test]
fn listing_objects_and_reading_attributes_again_sends_no_apdu() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let objects = find(session, &[]);
    assert!(!objects.is_empty());
    let before = io(&card);
    for _ in 0..10 {
        for &object in &find(session, &[]) {
            for kind in [
                CKA_CLASS,
                CKA_ID,
                CKA_LABEL,
                CKA_VALUE,
                CKA_MODULUS,
                CKA_EC_POINT,
            ] {
                let _ = attribute(session, object, kind);
            }
        }
        let key = private_key(session, Slot::Authentication);
        assert!(attribute(session, key, CKA_MODULUS).is_ok());
    }
    assert_eq!(
        io(&card),
        before,
        "object reads reached the card:\n{}",
        card.transcript()
    );
}

#[test]
fn a_wrong_pin_shows_in_the_token_flags_without_more_apdus() {
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    let session = harness.session();
    let flags = token_flags(slot);
    assert_eq!(
        flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED),
        0
    );
    assert_eq!(login(session, CKU_USER, "654321"), CKR_PIN_INCORRECT);
    let before = io(&card);
    let flags = token_flags(slot);
    assert_ne!(
        flags & CKF_USER_PIN_COUNT_LOW,
        0,
        "after one wrong PIN: {flags:#x}"
    );
    assert_eq!(
        flags & CKF_USER_PIN_FINAL_TRY,
        0,
        "after one wrong PIN: {flags:#x}"
    );
    assert_eq!(login(session, CKU_USER, "654321"), CKR_PIN_INCORRECT);
    let flags = token_flags(slot);
    assert_ne!(
        flags & CKF_USER_PIN_FINAL_TRY,
        0,
        "one try left: {flags:#x}"
    );
    let after_second = io(&card);
    assert!(after_second.0 > before.0, "the second C_Login sent nothing");
    // Reading the flags cost nothing.
    for _ in 0..ROUNDS {
        token_flags(slot);
    }
    assert_eq!(io(&card), after_second, "C_GetTokenInfo reached the card");
    // A good PIN clears the warnings.
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let flags = token_flags(slot);
    assert_eq!(
        flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED),
        0,
        "after the right PIN: {flags:#x}"
    );
    assert_eq!(pin_tries_left(&card), 3);
}
