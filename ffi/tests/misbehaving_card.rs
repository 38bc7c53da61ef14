//! Cards and readers that do not behave: split responses (61xx), demands
//! for an exact Le (6Cxx), truncated and garbage responses, and a card
//! pulled out in the middle of an operation. The module must answer with an
//! error code, never panic (a caught panic shows as CKR_GENERAL_ERROR), and
//! keep working once the card behaves again.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{tags, Misbehaviour, SimPivCard, Slot, Truncation};
use std::ptr;

const CERTIFICATE_SLOTS: [Slot; 4] = [
    Slot::Authentication,
    Slot::Signature,
    Slot::KeyManagement,
    Slot::CardAuthentication,
];

/// The module's certificates equal the card's, for every key.
fn assert_certificates_match(harness: &Harness, card: &p11card_cardsim::SimCard) {
    let session = harness.session();
    for slot in CERTIFICATE_SLOTS {
        let handle = object(session, CKO_CERTIFICATE, key_id(slot));
        assert_eq!(
            attribute(session, handle, CKA_VALUE),
            Ok(card_certificate(card, slot)),
            "{slot:?}"
        );
    }
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
}

#[test]
fn responses_split_into_61xx_pieces_still_give_the_right_certificates() {
    let (harness, card) = Harness::new();
    card.misbehave(|m| m.chunk_responses = Some(16));
    assert_certificates_match(&harness, &card);
    assert!(
        instructions(&card).contains(&0xC0),
        "no GET RESPONSE was needed:\n{}",
        card.transcript()
    );
    // Signing works too: the card's signature also comes in pieces.
    let session = harness.session();
    let key = private_key(session, Slot::CardAuthentication);
    let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"chunks").unwrap();
    let public = card_public_key(&card, Slot::CardAuthentication);
    assert!(check::ecdsa(
        &public,
        &Hash::Sha256.digest(b"chunks"),
        &signature
    ));
}

#[test]
fn a_card_that_demands_the_exact_le_with_6cxx_still_gives_the_right_certificates() {
    let (harness, card) = Harness::new();
    card.misbehave(|m| m.exact_le_get_data = true);
    assert_certificates_match(&harness, &card);
    assert!(
        card.log().iter().any(|entry| entry.sw >> 8 == 0x6C),
        "the card never asked for another Le:\n{}",
        card.transcript()
    );
    assert_eq!(
        token_info(harness.slot()).map(|i| i.serialNumber),
        Ok(padded::<16>("8899aabbccddeeff"))
    );
}

#[test]
fn split_responses_and_exact_le_together() {
    let (harness, card) = Harness::new();
    card.misbehave(|m| {
        m.exact_le_get_data = true;
        m.chunk_responses = Some(100);
    });
    assert_certificates_match(&harness, &card);
}

#[test]
fn a_short_apdu_only_card_signs_with_rsa_through_command_chaining() {
    let (harness, card) = Harness::with_card(SimPivCard::new().short_apdus_only());
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    let signature = sign(
        session,
        &mut mechanism(CKM_SHA256_RSA_PKCS),
        key,
        b"chained",
    )
    .unwrap();
    let public = card_public_key(&card, Slot::Authentication);
    assert!(check::rsa_pkcs1(
        &public,
        Hash::Sha256,
        &Hash::Sha256.digest(b"chained"),
        &signature
    ));
}

/// Picks a command APDU.
type CommandMatcher = fn(&[u8]) -> bool;

/// Where in the enumeration a fault strikes: the commands the module sends
/// when it first reads a card (SP 800-73-4 Part 2 §3.1).
const ENUMERATION_POINTS: [(&str, CommandMatcher); 6] = [
    ("SELECT", |c| c.get(1) == Some(&0xA4)),
    ("GET DATA CHUID", |c| is_get_data(c, tags::CHUID)),
    // Certificate containers, SP 800-73-4 Part 1 Table 3.
    ("GET DATA 9A certificate", |c| is_get_data(c, 0x5FC105)),
    ("GET DATA 9D certificate", |c| is_get_data(c, 0x5FC10B)),
    ("GET RESPONSE", |c| c.get(1) == Some(&0xC0)),
    ("VERIFY (PIN status)", |c| c.get(1) == Some(&0x20)),
];

/// Responses too short to hold a status word (ISO 7816-4 §5.1.3: SW1 SW2
/// end every response).
fn broken_responses() -> [(&'static str, Misbehaviour); 3] {
    [
        (
            "one byte",
            Misbehaviour {
                truncate_next: Some(Truncation::KeepBytes(1)),
                ..Misbehaviour::default()
            },
        ),
        (
            "no bytes",
            Misbehaviour {
                truncate_next: Some(Truncation::KeepBytes(0)),
                ..Misbehaviour::default()
            },
        ),
        (
            "a lone 6A",
            Misbehaviour {
                garbage_next: Some(vec![0x6A]),
                ..Misbehaviour::default()
            },
        ),
    ]
}

/// What an application does first: token info, then the object list (the
/// module reads the first certificate for the label, the rest for objects).
fn enumerate(slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO, CK_RV> {
    let info = token_info(slot)?;
    let mut session = 0;
    let rv = ck!(C_OpenSession(
        slot,
        CKF_SERIAL_SESSION,
        std::ptr::null_mut(),
        None,
        &mut session
    ));
    if rv != CKR_OK {
        return Err(rv);
    }
    let rv = ck!(C_FindObjectsInit(session, std::ptr::null_mut(), 0));
    ck!(C_CloseSession(session));
    if rv != CKR_OK {
        return Err(rv);
    }
    Ok(info)
}

#[test]
fn a_response_too_short_to_be_one_during_enumeration_is_an_error_and_the_next_try_works() {
    for (point, when) in ENUMERATION_POINTS {
        for (what, fault) in broken_responses() {
            let (harness, card, wire) = Harness::with_tripwire(SimPivCard::new());
            let slot = harness.slot();
            wire.arm(&card, when, move |m| *m = fault);
            let rv = enumerate(slot).err();
            assert!(wire.fired(), "{point}: never sent");
            assert!(
                rv.is_some() && rv != Some(CKR_GENERAL_ERROR),
                "{point} answered with {what}: enumeration gave {rv:x?}"
            );
            let info =
                enumerate(slot).unwrap_or_else(|rv| panic!("{point}/{what}: no recovery, {rv:#x}"));
            assert_eq!(&info.label, &padded::<32>("cardsim 9A PIV Authentication"));
            assert_certificates_match(&harness, &card);
        }
    }
}

#[test]
fn a_certificate_response_cut_short_is_an_error_and_the_next_try_works() {
    for (what, truncation) in [
        ("last 10 data bytes dropped", Truncation::DropDataBytes(10)),
        ("status word dropped", Truncation::DropStatusWord),
    ] {
        let (harness, card, wire) = Harness::with_tripwire(SimPivCard::new());
        let slot = harness.slot();
        // The 9A certificate does not fit one response; cut its last piece.
        wire.arm(&card, ins(0xC0), move |m| {
            m.truncate_next = Some(truncation)
        });
        let rv = token_info(slot).err();
        assert!(wire.fired());
        assert!(
            rv.is_some() && rv != Some(CKR_GENERAL_ERROR),
            "{what}: C_GetTokenInfo gave {rv:x?}"
        );
        assert!(token_info(slot).is_ok(), "{what}: no recovery");
        assert_certificates_match(&harness, &card);
    }
}

#[test]
fn garbage_data_for_the_chuid_is_an_error_and_the_next_try_works() {
    for garbage in [
        vec![0x01, 0x02, 0x90, 0x00],
        vec![0x53, 0x82, 0x10, 0x00, 0x90, 0x00],
        vec![0x53, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x90, 0x00],
    ] {
        let (harness, card, wire) = Harness::with_tripwire(SimPivCard::new());
        let slot = harness.slot();
        let shown = hex(&garbage);
        wire.arm(&card, get_data(tags::CHUID), move |m| {
            m.garbage_next = Some(garbage)
        });
        let rv = token_info(slot).err();
        assert!(
            rv.is_some() && rv != Some(CKR_GENERAL_ERROR),
            "CHUID answered with {shown}: C_GetTokenInfo gave {rv:x?}"
        );
        assert!(token_info(slot).is_ok(), "{shown}: no recovery");
    }
}

/// A nonsense status word to SELECT (`12 34` is no ISO 7816-4 status) is a
/// broken exchange, not the card saying it has no PIV application: once the
/// card answers properly, its token must be usable.
#[test]
fn a_garbage_status_word_to_select_does_not_leave_the_card_unrecognized() {
    let (harness, card, wire) = Harness::with_tripwire(SimPivCard::new());
    let slot = harness.slot();
    wire.arm(&card, ins(0xA4), |m| {
        m.garbage_next = Some(vec![0x12, 0x34])
    });
    let rv = token_info(slot).err();
    assert!(
        rv.is_some() && rv != Some(CKR_GENERAL_ERROR),
        "C_GetTokenInfo gave {rv:x?}"
    );
    assert_eq!(
        token_info(slot).map(|i| i.label),
        Ok(padded::<32>("cardsim 9A PIV Authentication")),
        "no recovery once the card behaves"
    );
}

// ----- a card pulled out ------------------------------------------------------

fn assert_session_gone(session: CK_SESSION_HANDLE) {
    let rv = session_info(session).err();
    assert!(
        rv == Some(CKR_SESSION_HANDLE_INVALID) || rv == Some(CKR_DEVICE_REMOVED),
        "C_GetSessionInfo after removal: {rv:x?}"
    );
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    let rv = ck!(C_SignInit(session, mech.ptr(), 1));
    assert!(
        rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_DEVICE_REMOVED,
        "C_SignInit after removal: {rv:#x}"
    );
}

/// Pulls the card `after` APDUs into C_Sign; the call must fail without
/// handing out a signature.
fn removed_during_sign(slot: Slot, kind: CK_MECHANISM_TYPE, after: usize) {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, slot);
    let mut mech = Mech::new(kind);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    card.misbehave(|m| m.remove_after = Some(after));
    let mut signature = [0u8; 512];
    let mut len = signature.len() as CK_ULONG;
    let rv = ck!(C_Sign(
        session,
        b"data".as_ptr() as *mut u8,
        4,
        signature.as_mut_ptr(),
        &mut len
    ));
    assert!(
        rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT,
        "{slot:?} removed after {after} APDUs: C_Sign gave {rv:#x}"
    );
    assert!(signature.iter().all(|&b| b == 0), "a signature came out");
    assert!(!card.is_present());
    assert_session_gone(session);
    assert!(slot_list(true).is_empty());
    assert_eq!(
        token_info(slot_list(false)[0]).err(),
        Some(CKR_TOKEN_NOT_PRESENT)
    );
}

#[test]
fn card_removed_before_general_authenticate_ecdsa() {
    // The login left PIV selected, so GENERAL AUTHENTICATE comes first
    // (no SELECT) and finds no card.
    removed_during_sign(Slot::CardAuthentication, CKM_ECDSA_SHA256, 0);
}

#[test]
fn card_removed_during_the_rsa_command_chain() {
    // The first chained part goes through (no SELECT: the login left PIV
    // selected); the last part does not.
    removed_during_sign(Slot::Authentication, CKM_SHA256_RSA_PKCS, 1);
}

#[test]
fn card_removed_before_the_get_response_of_an_rsa_signature() {
    // Both chained parts go through; the GET RESPONSE does not.
    removed_during_sign(Slot::Authentication, CKM_SHA256_RSA_PKCS, 2);
}

#[test]
fn card_pulled_between_calls_invalidates_the_session_and_a_new_card_works() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    let key = private_key(session, Slot::CardAuthentication);
    harness.backend.remove(READER);
    let result = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"data");
    assert!(
        matches!(
            result,
            Err(CKR_DEVICE_REMOVED) | Err(CKR_SESSION_HANDLE_INVALID) | Err(CKR_TOKEN_NOT_PRESENT)
        ),
        "{result:x?}"
    );
    assert_session_gone(session);
    let slot = slot_list(false)[0];
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
    // The same card back in the reader: a new session signs, the old one
    // stays closed.
    harness.backend.insert(READER, card.clone());
    let session_again = harness.session();
    let key = private_key(session_again, Slot::CardAuthentication);
    let signature = sign(
        session_again,
        &mut mechanism(CKM_ECDSA_SHA256),
        key,
        b"data",
    )
    .unwrap();
    let public = card_public_key(&card, Slot::CardAuthentication);
    assert!(check::ecdsa(
        &public,
        &Hash::Sha256.digest(b"data"),
        &signature
    ));
    assert_session_gone(session);
}

// ----- garbage instead of a signature ------------------------------------------

/// GENERAL AUTHENTICATE answered with something that is no dynamic
/// authentication template holding a response (SP 800-73-4 Part 2 §3.2.4:
/// `7C L { 82 L signature }`): the module must not make a signature of it.
/// (An answer that parses but does not verify, like an empty RSA result,
/// to a signature sent without a SELECT is taken as another application's:
/// the module selects and signs again, and the new signature verifies.)
#[test]
fn garbage_in_answer_to_general_authenticate_is_device_error() {
    let mut wrong = Vec::new();
    for (slot, kind) in [
        (Slot::CardAuthentication, CKM_ECDSA_SHA256),
        (Slot::Authentication, CKM_SHA256_RSA_PKCS),
    ] {
        for garbage in [
            vec![0xDE, 0xAD, 0xBE, 0xEF, 0x90, 0x00],
            vec![0x7C, 0x02, 0x82, 0x00, 0x90, 0x00],
            vec![0x7C, 0x81, 0xFF, 0x82, 0x90, 0x00],
            vec![0x90, 0x00],
        ] {
            let (harness, card, wire) = Harness::with_tripwire(SimPivCard::new());
            let session = harness.user_session();
            let key = private_key(session, slot);
            let shown = hex(&garbage);
            // The last (or only) command of the GENERAL AUTHENTICATE chain.
            let last_part = |c: &[u8]| c.get(1) == Some(&0x87) && c[0] & 0x10 == 0;
            wire.arm(&card, last_part, move |m| m.garbage_next = Some(garbage));
            let result = sign(session, &mut mechanism(kind), key, b"data");
            assert!(wire.fired());
            let verifies = |signature: &[u8]| {
                let public = card_public_key(&card, slot);
                let hash = Hash::Sha256.digest(b"data");
                match slot {
                    Slot::Authentication => {
                        check::rsa_pkcs1(&public, Hash::Sha256, &hash, signature)
                    }
                    _ => check::ecdsa(&public, &hash, signature),
                }
            };
            let redone = result.as_ref().is_ok_and(|signature| verifies(signature));
            if result != Err(CKR_DEVICE_ERROR) && !redone {
                wrong.push(format!(
                    "{slot:?} answered {shown}: {:x?}",
                    result.map(|s| hex(&s[..s.len().min(8)]) + " …")
                ));
            }
            // The session and the card still work.
            let signature = sign(session, &mut mechanism(kind), key, b"data")
                .unwrap_or_else(|rv| panic!("{slot:?} after {shown}: {rv:#x}"));
            assert!(!signature.is_empty());
        }
    }
    assert!(
        wrong.is_empty(),
        "expected CKR_DEVICE_ERROR:\n{}",
        wrong.join("\n")
    );
}

// ----- a card that keeps saying "more" (issue 11, finding 4) -----------------

/// The card answers every command, GET RESPONSE included, with `61 00`
/// ("256 more bytes") and no data: for ever, as far as the module can tell
/// (a million answers, more than it may ever ask for).
fn answer_6100_for_ever(card: &p11card_cardsim::SimCard) {
    card.misbehave(|m| {
        m.fail_next = (0..=u8::MAX)
            .filter(|&ins| ins != 0xC0)
            .flat_map(|ins| std::iter::repeat_n((ins, 0x6100), 64))
            .chain(std::iter::repeat_n((0xC0, 0x6100), 1_000_000))
            .collect();
    });
}

/// Runs `call` against a card answering `61 00` for ever: it must end
/// within a generous bound, with a device error, after a handful of APDUs.
fn bounded_under_6100_storm(
    card: &p11card_cardsim::SimCard,
    what: &str,
    call: impl FnOnce() -> CK_RV + Send + 'static,
) {
    let before = card.apdu_count();
    answer_6100_for_ever(card);
    let started = std::time::Instant::now();
    let rv = within(std::time::Duration::from_secs(30), call)
        .unwrap_or_else(|| panic!("{what} still running after 30 s"));
    let took = started.elapsed();
    let apdus = card.apdu_count() - before;
    card.misbehave(|m| m.fail_next.clear());
    assert_eq!(rv, CKR_DEVICE_ERROR, "{what}");
    assert!(
        apdus <= 8,
        "{what}: {apdus} APDUs for a card saying 61 00 for ever"
    );
    eprintln!("{what} on a card answering 61 00 for ever: {apdus} APDUs, {took:?}");
}

#[test]
fn c_get_token_info_on_a_card_answering_6100_for_ever_is_a_device_error_and_the_slot_recovers() {
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    bounded_under_6100_storm(&card, "C_GetTokenInfo", move || {
        token_info(slot).err().unwrap_or(CKR_OK)
    });
    assert_eq!(
        token_info(slot).map(|i| i.label),
        Ok(padded::<32>("cardsim 9A PIV Authentication")),
        "no recovery once the card behaves"
    );
    assert_certificates_match(&harness, &card);
}

#[test]
fn c_sign_on_a_card_answering_6100_for_ever_is_a_device_error_and_the_next_one_works() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::CardAuthentication);
    bounded_under_6100_storm(&card, "C_Sign", move || {
        sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"storm")
            .err()
            .unwrap_or(CKR_OK)
    });
    let session = harness.user_session();
    let key = private_key(session, Slot::CardAuthentication);
    let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"calm").unwrap();
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::CardAuthentication),
        &Hash::Sha256.digest(b"calm"),
        &signature
    ));
}
