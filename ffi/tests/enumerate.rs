//! General information, slots, tokens and mechanisms (PKCS#11 2.40 §5.4,
//! §5.5), as a consumer enumerates them.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{tags, SimPivCard, Slot, CHUID_GUID};
use std::collections::BTreeSet;
use std::ptr;

fn get_info(list_get_info: CK_C_GetInfo) -> CK_INFO {
    let mut info = unsafe { std::mem::zeroed::<CK_INFO>() };
    assert_eq!(unsafe { (list_get_info.unwrap())(&mut info) }, CKR_OK);
    info
}

#[test]
fn get_info_through_the_2_40_list_reports_cryptoki_2_40() {
    let (_harness, _card) = Harness::new();
    let info = get_info(f().C_GetInfo);
    assert_eq!(
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
        (2, 40)
    );
    // §3.2 CK_INFO: flags are reserved and must be zero; texts blank-padded.
    assert_eq!(info.flags, 0);
    assert_blank_padded(&info.manufacturerID, "manufacturerID");
    assert_blank_padded(&info.libraryDescription, "libraryDescription");
    assert_eq!(&info.manufacturerID, &padded::<32>("p11card"));
}

#[test]
fn get_info_through_the_3_0_list_reports_cryptoki_3_0() {
    let (_harness, _card) = Harness::new();
    let info = get_info(f3().C_GetInfo);
    assert_eq!(
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
        (3, 0)
    );
    assert_eq!(f3().version.major, 3);
    assert_eq!(f3().version.minor, 0);
}

#[test]
fn slot_list_follows_the_two_call_convention() {
    let (_harness, _cards) = Harness::with_readers(&[
        ("Reader A", Some(SimPivCard::new())),
        ("Reader B", Some(SimPivCard::new())),
    ]);
    // §5.5 C_GetSlotList: NULL list → the number of slots in *pulCount.
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetSlotList(CK_TRUE, ptr::null_mut(), &mut count)),
        CKR_OK
    );
    assert_eq!(count, 2);
    // A buffer too small → CKR_BUFFER_TOO_SMALL, *pulCount = the size needed.
    let mut one = [0 as CK_SLOT_ID; 1];
    count = 1;
    assert_eq!(
        ck!(C_GetSlotList(CK_TRUE, one.as_mut_ptr(), &mut count)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(count, 2);
    // Big enough → CKR_OK and the list.
    let mut slots = [CK_SLOT_ID::MAX; 4];
    count = 4;
    assert_eq!(
        ck!(C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut count)),
        CKR_OK
    );
    assert_eq!(count, 2);
    assert_ne!(slots[0], slots[1]);
}

#[test]
fn slot_with_a_card_is_a_removable_hardware_slot_with_a_token() {
    let (harness, _card) = Harness::new();
    let info = slot_info(harness.slot()).expect("C_GetSlotInfo");
    assert_eq!(
        info.flags,
        CKF_TOKEN_PRESENT | CKF_REMOVABLE_DEVICE | CKF_HW_SLOT
    );
    assert_eq!(&info.slotDescription, &padded::<64>(READER));
    assert_blank_padded(&info.manufacturerID, "manufacturerID");
}

#[test]
fn empty_reader_has_no_token_and_is_left_out_when_tokens_are_asked_for() {
    let (_harness, _cards) = Harness::with_readers(&[
        ("Empty Reader", None),
        ("Full Reader", Some(SimPivCard::new())),
    ]);
    let all = slot_list(false);
    let with_token = slot_list(true);
    assert_eq!(all.len(), 2);
    assert_eq!(with_token.len(), 1);
    let empty = *all
        .iter()
        .find(|slot| !with_token.contains(slot))
        .expect("the empty reader's slot");
    let info = slot_info(empty).expect("C_GetSlotInfo");
    assert_eq!(&info.slotDescription, &padded::<64>("Empty Reader"));
    assert_eq!(info.flags, CKF_REMOVABLE_DEVICE | CKF_HW_SLOT);
}

#[test]
fn token_info_describes_the_piv_card() {
    let (harness, _card) = Harness::new();
    let info = token_info(harness.slot()).expect("C_GetTokenInfo");
    // The label is the CN of the PIV Authentication (9A) certificate.
    assert_eq!(&info.label, &padded::<32>("cardsim 9A PIV Authentication"));
    // The serial comes from the CHUID's GUID (SP 800-73-4 Part 1 §3.1.2):
    // its last 8 bytes in hex, as OpenSC shows PIV cards, so existing
    // pkcs11: URIs keep matching.
    let guid_hex: String = CHUID_GUID[8..].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(&info.serialNumber, &padded::<16>(&guid_hex));
    for (field, name) in [
        (&info.label[..], "label"),
        (&info.manufacturerID[..], "manufacturerID"),
        (&info.model[..], "model"),
        (&info.serialNumber[..], "serialNumber"),
    ] {
        assert_blank_padded(field, name);
    }
    let wanted = CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED;
    assert_eq!(info.flags & wanted, wanted, "flags {:#x}", info.flags);
    let pin_trouble = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;
    assert_eq!(info.flags & pin_trouble, 0, "flags {:#x}", info.flags);
    // SP 800-73-4 Part 2 §3.2.1: the PIV PIN is 6 to 8 bytes.
    assert_eq!((info.ulMinPinLen, info.ulMaxPinLen), (6, 8));
}

#[test]
fn token_info_counts_the_sessions_open_on_it() {
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    assert_eq!(token_info(slot).unwrap().ulSessionCount, 0);
    let session = open_session(slot, CKF_SERIAL_SESSION);
    assert_eq!(token_info(slot).unwrap().ulSessionCount, 1);
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
    assert_eq!(token_info(slot).unwrap().ulSessionCount, 0);
}

/// Not `CKF_WRITE_PROTECTED`: PKCS#11 refuses read/write sessions on a
/// write-protected token, and changing the PIN (`C_SetPIN`) needs one. The
/// token's objects themselves are read-only (`CKA_MODIFIABLE` false).
#[test]
fn token_allows_read_write_sessions() {
    let (harness, _card) = Harness::new();
    let flags = token_flags(harness.slot());
    assert_eq!(flags & CKF_WRITE_PROTECTED, 0, "flags {flags:#x}");
    let session = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    assert_ne!(session, 0);
}

#[test]
fn token_info_of_an_empty_slot_is_token_not_present() {
    let (_harness, _cards) = Harness::with_readers(&[("Empty Reader", None)]);
    let slot = slot_list(false)[0];
    assert_eq!(token_info(slot).err(), Some(CKR_TOKEN_NOT_PRESENT));
    let mut session = 0;
    assert_eq!(
        ck!(C_OpenSession(
            slot,
            CKF_SERIAL_SESSION,
            ptr::null_mut(),
            None,
            &mut session
        )),
        CKR_TOKEN_NOT_PRESENT
    );
}

/// The mechanisms the default PIV card's token offers: RSA (PKCS #1 v1.5,
/// raw, PSS, OAEP), ECDSA, ECDH with its EC key management key (9D), and the
/// SHA digests. (The list follows the token's keys: no EdDSA without an
/// Ed25519 key.)
const MECHANISMS: [CK_MECHANISM_TYPE; 26] = [
    CKM_RSA_PKCS,
    CKM_RSA_X_509,
    CKM_RSA_PKCS_PSS,
    CKM_RSA_PKCS_OAEP,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_ECDSA,
    CKM_ECDSA_SHA1,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_ECDH1_DERIVE,
    CKM_SHA_1,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
];

#[test]
fn mechanism_list_follows_the_two_call_convention_and_lists_every_mechanism() {
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetMechanismList(slot, ptr::null_mut(), &mut count)),
        CKR_OK
    );
    assert_eq!(count as usize, MECHANISMS.len());
    let mut short = vec![0; 3];
    count = 3;
    assert_eq!(
        ck!(C_GetMechanismList(slot, short.as_mut_ptr(), &mut count)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(count as usize, MECHANISMS.len());
    let mut list = vec![0; count as usize];
    assert_eq!(
        ck!(C_GetMechanismList(slot, list.as_mut_ptr(), &mut count)),
        CKR_OK
    );
    let listed: BTreeSet<_> = list.iter().copied().collect();
    let expected: BTreeSet<_> = MECHANISMS.iter().copied().collect();
    assert_eq!(listed, expected);
    assert_eq!(listed.len(), list.len(), "a mechanism is listed twice");
}

fn mechanism_info(slot: CK_SLOT_ID, kind: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO, CK_RV> {
    let mut info = unsafe { std::mem::zeroed::<CK_MECHANISM_INFO>() };
    match ck!(C_GetMechanismInfo(slot, kind, &mut info)) {
        CKR_OK => Ok(info),
        rv => Err(rv),
    }
}

#[test]
fn mechanism_info_says_what_each_mechanism_does() {
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    let sign_verify = CKF_SIGN | CKF_VERIFY;
    let crypt = CKF_ENCRYPT | CKF_DECRYPT;
    for kind in MECHANISMS {
        let info = mechanism_info(slot, kind).unwrap_or_else(|rv| panic!("{kind:#x}: {rv:#x}"));
        let (wanted, unwanted, sizes) = match kind {
            CKM_RSA_PKCS | CKM_RSA_X_509 => (sign_verify | crypt, CKF_DIGEST, Some(2048)),
            CKM_RSA_PKCS_OAEP => (crypt, sign_verify | CKF_DIGEST, Some(2048)),
            CKM_ECDSA..=CKM_ECDSA_SHA512 => (sign_verify, crypt | CKF_DIGEST, Some(384)),
            CKM_ECDH1_DERIVE => (CKF_DERIVE, sign_verify | crypt | CKF_DIGEST, Some(384)),
            CKM_SHA_1 | CKM_SHA224 | CKM_SHA256 | CKM_SHA384 | CKM_SHA512 => {
                (CKF_DIGEST, sign_verify | crypt, None)
            }
            _ => (sign_verify, crypt | CKF_DIGEST, Some(2048)),
        };
        assert_eq!(info.flags & wanted, wanted, "{kind:#x}: {:#x}", info.flags);
        assert_eq!(info.flags & unwanted, 0, "{kind:#x}: {:#x}", info.flags);
        // Key sizes are in bits, for RSA and EC alike (§3.4 CK_MECHANISM_INFO);
        // the card's own keys must fit.
        if let Some(bits) = sizes {
            assert!(
                info.ulMinKeySize <= bits && bits <= info.ulMaxKeySize,
                "{kind:#x}: {}..{}",
                info.ulMinKeySize,
                info.ulMaxKeySize
            );
        }
    }
    assert!(mechanism_info(slot, CKM_ECDSA).unwrap().ulMinKeySize <= 256);
}

#[test]
fn mechanism_info_of_an_unknown_mechanism_is_mechanism_invalid() {
    let (harness, _card) = Harness::new();
    assert_eq!(
        mechanism_info(harness.slot(), CKM_MD5_RSA_PKCS).err(),
        Some(CKR_MECHANISM_INVALID)
    );
    assert_eq!(
        mechanism_info(harness.slot(), CKM_VENDOR_DEFINED | 0x1234).err(),
        Some(CKR_MECHANISM_INVALID)
    );
}

/// A CHUID whose GUID (tag 34) is `guid` (SP 800-73-4 Part 1 §3.1.2).
fn chuid_with_guid(guid: [u8; 16]) -> Vec<u8> {
    let mut body = vec![0x34, 0x10];
    body.extend_from_slice(&guid);
    body.extend_from_slice(&[0xFE, 0x00]);
    let mut chuid = vec![0x53, body.len() as u8];
    chuid.extend_from_slice(&body);
    chuid
}

fn serial_of(slot: CK_SLOT_ID) -> String {
    let info = token_info(slot).expect("C_GetTokenInfo");
    String::from_utf8_lossy(&info.serialNumber)
        .trim_end()
        .to_owned()
}

#[test]
fn two_readers_with_two_cards_get_distinct_stable_slot_ids() {
    let second_card = SimPivCard::new()
        .with_object(tags::CHUID, Some(chuid_with_guid([0xAB; 16])))
        .only_slots(&[Slot::CardAuthentication]);
    let (harness, cards) = Harness::with_readers(&[
        ("Reader A", Some(SimPivCard::new())),
        ("Reader B", Some(second_card)),
    ]);
    let slots = slot_list(true);
    assert_eq!(slots.len(), 2);
    assert_ne!(slots[0], slots[1]);
    let by_serial = |slots: &[CK_SLOT_ID]| {
        let mut pairs: Vec<(String, CK_SLOT_ID)> =
            slots.iter().map(|&slot| (serial_of(slot), slot)).collect();
        pairs.sort();
        pairs
    };
    let before = by_serial(&slots);
    assert_eq!(before[0].0, "8899aabbccddeeff");
    assert_eq!(before[1].0, "abababababababab");
    let info_b = token_info(before[1].1).unwrap();
    assert_eq!(
        &info_b.label,
        &padded::<32>("cardsim 9E Card Authentication")
    );

    // Asking again changes nothing.
    assert_eq!(by_serial(&slot_list(true)), before);

    // Taking card A out and putting it back keeps both IDs.
    let card_a = cards[0].clone().unwrap();
    harness.backend.remove("Reader A");
    assert_eq!(slot_list(true), vec![before[1].1]);
    harness.backend.insert("Reader A", card_a);
    assert_eq!(by_serial(&slot_list(true)), before);

    // A new reader gets a new ID; the old ones stay.
    harness.backend.add_reader("Reader C");
    let all = slot_list(false);
    assert_eq!(all.len(), 3);
    let new_id = *all.iter().find(|s| !slots.contains(s)).unwrap();
    assert!(!slots.contains(&new_id));
    assert_eq!(by_serial(&slot_list(true)), before);

    // A reader unplugged and plugged in again gets its old ID back.
    harness.backend.remove_reader("Reader C");
    assert_eq!(slot_list(false).len(), 2);
    harness.backend.add_reader("Reader C");
    assert!(slot_list(false).contains(&new_id));
}

/// A card that answers SELECT of the PIV AID with `6A82` (file or
/// application not found, ISO 7816-4 §5.6) holds no token this module
/// knows.
#[test]
fn card_without_the_piv_application_is_token_not_recognized() {
    let (harness, card) = Harness::new();
    card.misbehave(|m| m.fail_next = vec![(0xA4, 0x6A82); 8]);
    let slot = harness.slot();
    assert_eq!(token_info(slot).err(), Some(CKR_TOKEN_NOT_RECOGNIZED));
    assert_eq!(token_info(slot).err(), Some(CKR_TOKEN_NOT_RECOGNIZED));
    let mut session = 0;
    assert_eq!(
        ck!(C_OpenSession(
            slot,
            CKF_SERIAL_SESSION,
            ptr::null_mut(),
            None,
            &mut session
        )),
        CKR_TOKEN_NOT_RECOGNIZED
    );
    // The slot itself is still there.
    let info = slot_info(slot).expect("C_GetSlotInfo");
    assert_ne!(info.flags & CKF_REMOVABLE_DEVICE, 0);
}

#[test]
fn card_whose_piv_select_fails_once_is_token_not_recognized() {
    let (harness, card) = Harness::new();
    card.misbehave(|m| m.fail_next = vec![(0xA4, 0x6D00)]);
    assert_eq!(
        token_info(harness.slot()).err(),
        Some(CKR_TOKEN_NOT_RECOGNIZED)
    );
}
