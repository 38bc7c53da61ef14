//! Issue 5, item 1: slot events. Readers and cards come and go while the
//! application holds the module: `C_GetSlotList` and `C_WaitForSlotEvent`
//! (blocking and with `CKF_DONT_BLOCK`) see it, slot IDs stay stable for
//! the life of the process, and `C_Finalize` from another thread wakes a
//! blocked `C_WaitForSlotEvent` (PKCS#11 2.40 §5.5 C_WaitForSlotEvent,
//! §5.4 C_Finalize).

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimPivCard, Slot};
use std::time::{Duration, Instant};

const A: &str = "Reader A";
const B: &str = "Reader B";

/// How long a blocked `C_WaitForSlotEvent` may take to see a change or a
/// `C_Finalize` ("within a few seconds").
const WAKE_LIMIT: Duration = Duration::from_secs(5);

/// The slot ID of a reader, by its description.
fn slot_of(reader: &str) -> CK_SLOT_ID {
    slot_list(false)
        .into_iter()
        .find(|&slot| slot_info(slot).map(|i| i.slotDescription) == Ok(padded::<64>(reader)))
        .unwrap_or_else(|| panic!("no slot for {reader:?}"))
}

fn token_present(slot: CK_SLOT_ID) -> bool {
    slot_info(slot).expect("C_GetSlotInfo").flags & CKF_TOKEN_PRESENT != 0
}

#[test]
fn nothing_changed_is_no_event() {
    let (_harness, _cards) = Harness::with_readers(&[(A, Some(SimPivCard::new())), (B, None)]);
    assert_eq!(poll_slot_event(), Ok(None), "before anything else");
    slot_list(false);
    assert_eq!(poll_slot_event(), Ok(None), "after C_GetSlotList");
    assert_eq!(poll_slot_event(), Ok(None), "asked twice");
}

#[test]
fn a_card_inserted_into_an_empty_reader_is_one_event_for_its_slot() {
    let (harness, _cards) = Harness::with_readers(&[(A, Some(SimPivCard::new())), (B, None)]);
    let b = slot_of(B);
    assert_eq!(poll_slot_event(), Ok(None));
    harness.backend.insert(B, SimPivCard::new().with_serial(2));
    assert_eq!(poll_slot_event(), Ok(Some(b)), "the insertion");
    assert_eq!(poll_slot_event(), Ok(None), "reported once");
    assert!(token_present(b));
    assert_eq!(slot_list(true), vec![slot_of(A), b]);
}

#[test]
fn a_card_removed_is_one_event_for_its_slot() {
    let (harness, _cards) = Harness::with_readers(&[(A, Some(SimPivCard::new())), (B, None)]);
    let a = slot_of(A);
    assert_eq!(poll_slot_event(), Ok(None));
    harness.backend.remove(A);
    assert_eq!(poll_slot_event(), Ok(Some(a)), "the removal");
    assert_eq!(poll_slot_event(), Ok(None), "reported once");
    assert!(!token_present(a));
    assert!(slot_list(true).is_empty());
}

#[test]
fn a_reader_plugged_in_is_an_event_and_a_new_slot() {
    let (harness, _cards) = Harness::with_readers(&[(A, Some(SimPivCard::new()))]);
    let before = slot_list(false);
    assert_eq!(poll_slot_event(), Ok(None));
    harness.backend.add_reader(B);
    let event = poll_slot_event();
    let after = slot_list(false);
    assert_eq!(after.len(), before.len() + 1, "C_GetSlotList: {after:?}");
    let b = slot_of(B);
    assert!(!before.contains(&b), "the new reader reused a slot ID");
    assert_eq!(event, Ok(Some(b)), "the new reader's slot");
    assert_eq!(poll_slot_event(), Ok(None), "reported once");
    assert!(!token_present(b));
}

#[test]
fn c_get_slot_list_sees_a_new_reader_without_any_event_call() {
    let (harness, _cards) = Harness::with_readers(&[(A, Some(SimPivCard::new()))]);
    assert_eq!(slot_list(false).len(), 1);
    harness.backend.add_reader(B);
    harness.backend.insert(B, SimPivCard::new().with_serial(2));
    assert_eq!(slot_list(false).len(), 2, "all slots");
    assert_eq!(slot_list(true).len(), 2, "slots with a token");
    let b = slot_of(B);
    assert!(
        token_info(b).is_ok(),
        "C_GetTokenInfo of the new reader's card"
    );
}

#[test]
fn a_reader_unplugged_is_an_event_and_leaves_the_slot_list() {
    let (harness, _cards) = Harness::with_readers(&[(A, Some(SimPivCard::new())), (B, None)]);
    let a = slot_of(A);
    let b = slot_of(B);
    assert_eq!(poll_slot_event(), Ok(None));
    harness.backend.remove_reader(A);
    assert_eq!(poll_slot_event(), Ok(Some(a)), "the reader's departure");
    assert_eq!(poll_slot_event(), Ok(None), "reported once");
    assert_eq!(slot_list(false), vec![b], "C_GetSlotList(all)");
    assert!(slot_list(true).is_empty(), "C_GetSlotList(token present)");
    // The old slot ID names no token now (whatever else it says).
    assert_ne!(token_info(a).err(), None, "C_GetTokenInfo of a gone reader");
    let rv = slot_info(a).map(|i| i.flags & CKF_TOKEN_PRESENT);
    assert!(
        rv == Ok(0) || rv == Err(CKR_SLOT_ID_INVALID),
        "C_GetSlotInfo of a gone reader: {rv:x?}"
    );
}

#[test]
fn a_reader_that_comes_back_keeps_its_slot_id() {
    let (harness, cards) = Harness::with_readers(&[(A, Some(SimPivCard::new())), (B, None)]);
    let card = cards[0].clone().unwrap();
    let a = slot_of(A);
    let b = slot_of(B);
    harness.backend.remove_reader(A);
    assert_eq!(slot_list(false), vec![b]);
    harness.backend.add_reader(C);
    harness.backend.add_reader(A);
    harness.backend.insert(A, card.clone());
    let all = slot_list(false);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(slot_of(A), a, "the reader came back under another ID");
    assert_eq!(slot_of(B), b);
    assert!(
        slot_of(C) != a && slot_of(C) != b,
        "a new reader took an old ID"
    );
    // And the token in it works.
    let session = open_session(a, CKF_SERIAL_SESSION);
    let key = private_key(session, Slot::CardAuthentication);
    let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"back").unwrap();
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::CardAuthentication),
        &Hash::Sha256.digest(b"back"),
        &signature
    ));
}

const C: &str = "Reader C";

#[test]
fn a_reader_gone_and_back_between_two_polls_reports_its_slot() {
    // Gone with its card, back empty: the slot changed (no token any more).
    let (harness, _cards) = Harness::with_readers(&[(A, Some(SimPivCard::new()))]);
    let a = slot_of(A);
    assert_eq!(poll_slot_event(), Ok(None));
    harness.backend.remove_reader(A);
    harness.backend.add_reader(A);
    assert_eq!(poll_slot_event(), Ok(Some(a)));
    assert_eq!(poll_slot_event(), Ok(None));
}

#[test]
fn a_blocked_wait_returns_the_slot_when_another_thread_inserts_a_card() {
    let (harness, _cards) = Harness::with_readers(&[(A, Some(SimPivCard::new())), (B, None)]);
    let b = slot_of(B);
    assert_eq!(poll_slot_event(), Ok(None));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wait_slot_event());
    });
    // Let the waiter block first.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        rx.try_recv().is_err(),
        "C_WaitForSlotEvent returned with nothing changed"
    );
    let inserted = Instant::now();
    harness.backend.insert(B, SimPivCard::new().with_serial(2));
    let result = rx.recv_timeout(WAKE_LIMIT);
    assert_eq!(
        result,
        Ok(Ok(b)),
        "the blocked C_WaitForSlotEvent after the insertion (waited {:?})",
        inserted.elapsed()
    );
    assert_eq!(poll_slot_event(), Ok(None), "the event was consumed");
}

#[test]
fn while_one_thread_waits_for_events_other_calls_go_on() {
    let (harness, cards) = Harness::with_readers(&[(A, Some(SimPivCard::new())), (B, None)]);
    let card = cards[0].clone().unwrap();
    let a = slot_of(A);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wait_slot_event());
    });
    std::thread::sleep(Duration::from_millis(200));
    // No lock is held while waiting: the module keeps serving.
    let worked = within(WAKE_LIMIT, move || {
        let slots = slot_list(true);
        let label = token_info(a).map(|i| i.label);
        let session = open_session(a, CKF_SERIAL_SESSION);
        let key = private_key(session, Slot::CardAuthentication);
        let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"meanwhile");
        (slots, label.is_ok(), signature)
    });
    let (slots, label_ok, signature) =
        worked.expect("calls while another thread waits in C_WaitForSlotEvent hang");
    assert_eq!(slots, vec![a]);
    assert!(label_ok);
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::CardAuthentication),
        &Hash::Sha256.digest(b"meanwhile"),
        &signature.expect("C_Sign while another thread waits")
    ));
    // Release the waiter.
    harness.backend.insert(B, SimPivCard::new().with_serial(2));
    assert_eq!(rx.recv_timeout(WAKE_LIMIT), Ok(Ok(slot_of(B))));
}

#[test]
fn c_finalize_from_another_thread_wakes_a_blocked_wait_with_cryptoki_not_initialized() {
    let (_harness, _cards) = Harness::with_readers(&[(A, Some(SimPivCard::new())), (B, None)]);
    slot_list(false);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wait_slot_event());
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        rx.try_recv().is_err(),
        "C_WaitForSlotEvent returned with nothing changed"
    );
    let finalize = within(WAKE_LIMIT, || ck!(C_Finalize(std::ptr::null_mut())));
    assert_eq!(
        finalize,
        Some(CKR_OK),
        "C_Finalize while another thread waits"
    );
    let finalized = Instant::now();
    let woken = rx.recv_timeout(WAKE_LIMIT);
    assert_eq!(
        woken,
        Ok(Err(CKR_CRYPTOKI_NOT_INITIALIZED)),
        "the waiting thread after C_Finalize (waited {:?})",
        finalized.elapsed()
    );
}

#[test]
fn after_a_finalize_that_woke_a_waiter_the_module_initializes_and_works_again() {
    let (_harness, cards) = Harness::with_readers(&[(A, Some(SimPivCard::new()))]);
    let card = cards[0].clone().unwrap();
    slot_list(false);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wait_slot_event());
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ck!(C_Finalize(std::ptr::null_mut())), CKR_OK);
    // Initialise again at once, before the old waiter has even returned.
    let again = within(WAKE_LIMIT, || ck!(C_Initialize(std::ptr::null_mut())));
    assert_eq!(again, Some(CKR_OK), "C_Initialize after C_Finalize");
    assert_eq!(
        rx.recv_timeout(WAKE_LIMIT),
        Ok(Err(CKR_CRYPTOKI_NOT_INITIALIZED)),
        "the old waiter"
    );
    let slot = slot_list(true)[0];
    let session = open_session(slot, CKF_SERIAL_SESSION);
    let key = private_key(session, Slot::CardAuthentication);
    let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"again").unwrap();
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::CardAuthentication),
        &Hash::Sha256.digest(b"again"),
        &signature
    ));
}
