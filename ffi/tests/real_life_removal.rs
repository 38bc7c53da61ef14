//! Issue 5, item 2: a card pulled while the application holds sessions.
//! PKCS#11 2.40 §5.6: removing a token closes its sessions, so later calls
//! on them return `CKR_DEVICE_REMOVED` or `CKR_SESSION_HANDLE_INVALID`;
//! `C_GetTokenInfo` returns `CKR_TOKEN_NOT_PRESENT`; the login state goes
//! with the token. A card put back (the same or another) works again without
//! `C_Finalize`, and a card pulled during `C_Sign` gives an error, never a
//! signature. No call may panic (a caught panic is `CKR_GENERAL_ERROR`).

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimCard, SimPivCard, Slot};
use std::ptr;

/// The first certificate of the default card names its token.
const LABEL: &str = "cardsim 9A PIV Authentication";
/// A card without a 9A key: its token is named after the 9C certificate.
const OTHER_LABEL: &str = "cardsim 9C Digital Signature";

fn other_card() -> SimPivCard {
    SimPivCard::new().without_slot(Slot::Authentication)
}

fn label(slot: CK_SLOT_ID) -> Result<[u8; 32], CK_RV> {
    token_info(slot).map(|info| info.label)
}

/// A session call after removal must fail the way §5.6 says.
fn assert_session_closed(session: CK_SESSION_HANDLE, when: &str) {
    let rv = session_info(session).err();
    assert!(
        rv == Some(CKR_SESSION_HANDLE_INVALID) || rv == Some(CKR_DEVICE_REMOVED),
        "C_GetSessionInfo {when}: {rv:#x?} (CKR_OK = None)"
    );
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    let rv = ck!(C_SignInit(session, mech.ptr(), 1));
    assert!(
        rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_DEVICE_REMOVED,
        "C_SignInit {when}: {rv:#x}"
    );
    let rv = ck!(C_FindObjectsInit(session, ptr::null_mut(), 0));
    assert!(
        rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_DEVICE_REMOVED,
        "C_FindObjectsInit {when}: {rv:#x}"
    );
}

/// Signs with 9A (logging in if needed) in a new session and checks the
/// signature against the card's key.
fn login_and_sign_9a(slot: CK_SLOT_ID, card: &SimCard) {
    let session = open_session(slot, CKF_SERIAL_SESSION);
    assert_eq!(
        session_info(session).map(|i| i.state),
        Ok(CKS_RO_PUBLIC_SESSION),
        "a new session on the card put back must not be logged in"
    );
    assert_eq!(
        login(session, CKU_USER, PIN),
        CKR_OK,
        "C_Login on the card put back"
    );
    let key = private_key(session, Slot::Authentication);
    let data = b"after the card came back";
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, data)
        .expect("C_Sign on the card put back");
    assert!(check::rsa_pkcs1(
        &card_public_key(card, Slot::Authentication),
        Hash::Sha256,
        &Hash::Sha256.digest(data),
        &signature
    ));
}

#[test]
fn the_sessions_of_a_pulled_card_are_closed_as_soon_as_it_is_gone() {
    // No other call in between: the application's next call is on its
    // session (NSS, Firefox: C_GetSessionInfo).
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    harness.backend.remove(READER);
    assert_session_closed(session, "right after the card was pulled");
}

#[test]
fn token_info_of_a_pulled_card_is_token_not_present_as_soon_as_it_is_gone() {
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    assert!(token_info(slot).is_ok());
    harness.backend.remove(READER);
    assert_eq!(
        token_info(slot).err(),
        Some(CKR_TOKEN_NOT_PRESENT),
        "C_GetTokenInfo right after the card was pulled (CKR_OK = None)"
    );
}

#[test]
fn once_the_removal_is_seen_sessions_are_closed_and_the_token_is_not_present() {
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    let session = harness.user_session();
    let second = harness.session();
    harness.backend.remove(READER);
    // The application learns of it the usual way.
    assert!(slot_list(true).is_empty());
    assert_eq!(slot_info(slot).map(|i| i.flags & CKF_TOKEN_PRESENT), Ok(0));
    assert_session_closed(session, "after C_GetSlotList saw the removal");
    assert_session_closed(second, "after C_GetSlotList saw the removal");
    assert_eq!(token_info(slot).err(), Some(CKR_TOKEN_NOT_PRESENT));
    let mut new_session = 0;
    assert_eq!(
        ck!(C_OpenSession(
            slot,
            CKF_SERIAL_SESSION,
            ptr::null_mut(),
            None,
            &mut new_session
        )),
        CKR_TOKEN_NOT_PRESENT
    );
    // Closing what is left is harmless.
    let rv = ck!(C_CloseSession(session));
    assert!(
        rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID,
        "C_CloseSession: {rv:#x}"
    );
    let rv = ck!(C_CloseAllSessions(slot));
    assert!(
        rv == CKR_OK || rv == CKR_TOKEN_NOT_PRESENT,
        "C_CloseAllSessions: {rv:#x}"
    );
}

#[test]
fn the_same_card_put_back_works_again_and_is_not_logged_in() {
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    let session = harness.user_session();
    harness.backend.remove(READER);
    assert!(slot_list(true).is_empty());
    harness.backend.insert(READER, card.clone());
    assert_eq!(slot_list(true), vec![slot], "the same slot ID");
    assert_eq!(label(slot), Ok(padded::<32>(LABEL)));
    assert_session_closed(session, "after the card came back");
    assert!(!card_pin_verified(&card));
    login_and_sign_9a(slot, &card);
}

#[test]
fn another_card_put_in_works_and_shows_its_own_token() {
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    let session = harness.user_session();
    harness.backend.remove(READER);
    assert!(slot_list(true).is_empty());
    let other = harness.backend.insert(READER, other_card());
    assert_eq!(slot_list(true), vec![slot]);
    assert_eq!(label(slot), Ok(padded::<32>(OTHER_LABEL)));
    assert_session_closed(session, "after another card came in");
    let session = open_session(slot, CKF_SERIAL_SESSION);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let found = find(
        session,
        &[
            (CKA_CLASS, ulong(CKO_PRIVATE_KEY)),
            (CKA_ID, vec![key_id(Slot::Authentication)]),
        ],
    );
    assert!(found.is_empty(), "the old card's 9A key is still listed");
    let key = private_key(session, Slot::KeyManagement);
    let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA384), key, b"other").unwrap();
    assert!(check::ecdsa(
        &card_public_key(&other, Slot::KeyManagement),
        &Hash::Sha384.digest(b"other"),
        &signature
    ));
}

#[test]
fn a_card_swapped_between_two_calls_shows_the_new_token() {
    // Pulled and another one pushed in between two polls of the
    // application: the reader has a card before and after, but not the same.
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    assert_eq!(label(slot), Ok(padded::<32>(LABEL)));
    harness.backend.insert(READER, other_card());
    assert_eq!(slot_list(true), vec![slot]);
    assert_eq!(
        label(slot).map(|l| String::from_utf8_lossy(&l).trim_end().to_owned()),
        Ok(OTHER_LABEL.to_owned()),
        "C_GetTokenInfo after the card was swapped"
    );
}

#[test]
fn a_card_pulled_and_put_back_between_two_calls_is_logged_out() {
    // The same card out and in between two calls: the card forgot the PIN,
    // so the module must not go on claiming a login.
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    let session = harness.user_session();
    harness.backend.remove(READER);
    harness.backend.insert(READER, card.clone());
    assert_eq!(slot_list(true), vec![slot]);
    assert_session_closed(session, "after the card was out and back in");
    login_and_sign_9a(slot, &card);
}

#[test]
fn a_card_pulled_during_c_sign_gives_an_error_and_no_signature() {
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    let mut mech = Mech::new(CKM_SHA256_RSA_PKCS);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    // SELECT goes through, the card is gone for GENERAL AUTHENTICATE.
    card.misbehave(|m| m.remove_after = Some(1));
    let mut signature = [0u8; 256];
    let mut len = signature.len() as CK_ULONG;
    let rv = ck!(C_Sign(
        session,
        b"data".as_ptr() as *mut u8,
        4,
        signature.as_mut_ptr(),
        &mut len
    ));
    assert!(
        rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_SESSION_HANDLE_INVALID,
        "C_Sign with the card pulled: {rv:#x}"
    );
    assert!(signature.iter().all(|&b| b == 0), "a signature came out");
    assert_session_closed(session, "after C_Sign lost the card");
    assert!(slot_list(true).is_empty());
    // Put back (and seen, as an application polling the slots sees it): a
    // fresh login and a good signature.
    harness.backend.insert(READER, card.clone());
    assert_eq!(slot_list(true), vec![slot]);
    login_and_sign_9a(slot, &card);
}

#[test]
fn a_card_pulled_during_the_first_read_of_the_token_is_token_not_present() {
    let (harness, card) = Harness::new();
    let slot = slot_list(true)[0];
    // Gone after the SELECT of the first C_GetTokenInfo.
    card.misbehave(|m| m.remove_after = Some(1));
    let rv = token_info(slot).err();
    assert!(
        rv == Some(CKR_TOKEN_NOT_PRESENT) || rv == Some(CKR_DEVICE_REMOVED),
        "C_GetTokenInfo with the card pulled while it is read: {rv:#x?}"
    );
    assert!(slot_list(true).is_empty());
    harness.backend.insert(READER, card.clone());
    assert_eq!(slot_list(true), vec![slot]);
    assert_eq!(label(slot), Ok(padded::<32>(LABEL)));
    login_and_sign_9a(slot, &card);
}

#[test]
fn a_card_put_back_opens_at_once_without_polling_the_slots_first() {
    // The module saw the removal; the card came back; the application's
    // next call is C_OpenSession (or C_GetTokenInfo), with no C_GetSlotList
    // in between: the token is present, so neither may say
    // CKR_TOKEN_NOT_PRESENT.
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    harness.user_session();
    harness.backend.remove(READER);
    assert!(slot_list(true).is_empty());
    harness.backend.insert(READER, card.clone());
    assert_eq!(
        label(slot),
        Ok(padded::<32>(LABEL)),
        "C_GetTokenInfo right after the card came back"
    );
    login_and_sign_9a(slot, &card);
}

#[test]
fn a_reader_unplugged_with_open_sessions_closes_them_and_comes_back_usable() {
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    let session = harness.user_session();
    harness.backend.remove_reader(READER);
    assert!(slot_list(false).is_empty(), "the reader is gone");
    assert_session_closed(session, "after the reader was unplugged");
    assert_ne!(token_info(slot).err(), None);
    harness.backend.add_reader(READER);
    harness.backend.insert(READER, card.clone());
    assert_eq!(slot_list(true), vec![slot]);
    login_and_sign_9a(slot, &card);
}

#[test]
fn every_call_on_a_pulled_cards_session_fails_cleanly() {
    // Each function that takes a session, after the removal was seen: an
    // error from §5.6's list, never CKR_OK and never CKR_GENERAL_ERROR (a
    // panic caught at the ABI).
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    let mut mech = Mech::new(CKM_SHA256_RSA_PKCS);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    harness.backend.remove(READER);
    assert!(slot_list(true).is_empty());
    let mut out = [0u8; 512];
    let mut len = out.len() as CK_ULONG;
    let mut attr = CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: ptr::null_mut(),
        ulValueLen: 0,
    };
    let mut found = [0 as CK_OBJECT_HANDLE; 4];
    let mut count = 0;
    let mut pin = *b"123456";
    let calls: Vec<(&str, CK_RV)> = vec![
        (
            "C_Sign",
            ck!(C_Sign(
                session,
                pin.as_mut_ptr(),
                6,
                out.as_mut_ptr(),
                &mut len
            )),
        ),
        (
            "C_SignUpdate",
            ck!(C_SignUpdate(session, pin.as_mut_ptr(), 6)),
        ),
        (
            "C_GetAttributeValue",
            ck!(C_GetAttributeValue(session, key, &mut attr, 1)),
        ),
        (
            "C_FindObjects",
            ck!(C_FindObjects(session, found.as_mut_ptr(), 4, &mut count)),
        ),
        ("C_Logout", ck!(C_Logout(session))),
        (
            "C_Login",
            ck!(C_Login(session, CKU_USER, pin.as_mut_ptr(), 6)),
        ),
        (
            "C_GenerateRandom",
            ck!(C_GenerateRandom(session, out.as_mut_ptr(), 8)),
        ),
        ("C_CloseSession", ck!(C_CloseSession(session))),
    ];
    let wrong: Vec<String> = calls
        .iter()
        .filter(|(name, rv)| {
            let closed = *rv == CKR_SESSION_HANDLE_INVALID || *rv == CKR_DEVICE_REMOVED;
            !(closed || (*name == "C_CloseSession" && *rv == CKR_OK))
        })
        .map(|(name, rv)| format!("{name}: {rv:#x}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "calls on a pulled card's session: {wrong:?}"
    );
}

#[test]
fn a_card_gone_and_back_seen_only_through_slot_events_leaves_no_login_behind() {
    // The application only waits for slot events (as a browser does) while
    // the reader goes away with its card and comes back, as when pcscd
    // restarts: it saw both events, so nothing of the old token may remain.
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    let session = harness.user_session();
    assert_eq!(poll_slot_event(), Ok(None));
    harness.backend.remove_reader(READER);
    assert_eq!(
        poll_slot_event(),
        Ok(Some(slot)),
        "the reader and card gone"
    );
    harness.backend.add_reader(READER);
    harness.backend.insert(READER, card.clone());
    assert_eq!(
        poll_slot_event(),
        Ok(Some(slot)),
        "the reader and card back"
    );
    assert_session_closed(
        session,
        "after the events of the card going and coming back",
    );
    login_and_sign_9a(slot, &card);
}
