//! Four PKCS#11 rules real programs trip on (issue 12), through the C ABI:
//! - a valid slot ID works right after `C_Initialize`, before (and without)
//!   `C_GetSlotList`, and costs no APDU;
//! - every operation ends per 3.0 §5.9–§5.13: a final call (`C_Sign`,
//!   `C_SignFinal`, `C_Decrypt`, …) ends it unless it answers a length query
//!   or `CKR_BUFFER_TOO_SMALL`; a failed `*Update` ends it too;
//! - `C_GetMechanismList`/`C_GetMechanismInfo` on an empty slot are
//!   `CKR_TOKEN_NOT_PRESENT`;
//! - refused writes answer the code of the first check that fails: session
//!   handle, object handle, read-only session, then the mechanism or the
//!   object's own attributes.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimPivCard, Slot};
use std::ptr;

const MESSAGE: &[u8] = b"issue 12";

// ----- slot IDs before C_GetSlotList ----------------------------------------

/// A PyKCS11 script that starts with `getMechanismList(0)` and
/// `openSession(0)`: slot 0 is the first reader, at once, with no APDU until
/// the token itself is needed.
#[test]
fn slot_zero_works_right_after_c_initialize_without_c_get_slot_list() {
    let (_harness, card) = Harness::new();
    let mut info = unsafe { std::mem::zeroed::<CK_SLOT_INFO>() };
    assert_eq!(ck!(C_GetSlotInfo(0, &mut info)), CKR_OK);
    assert_ne!(info.flags & CKF_TOKEN_PRESENT, 0);
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetMechanismList(0, ptr::null_mut(), &mut count)),
        CKR_OK
    );
    assert!(count > 0);
    let session = open_session(0, CKF_SERIAL_SESSION);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let key = private_key(session, Slot::Authentication);
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, MESSAGE).unwrap();
    assert!(check::rsa_pkcs1(
        &card_public_key(&card, Slot::Authentication),
        Hash::Sha256,
        &Hash::Sha256.digest(MESSAGE),
        &signature
    ));
}

/// The IDs a program uses before `C_GetSlotList` are the ones it returns
/// later (first reader 0, second 1), and stay so; an ID without a reader is
/// `CKR_SLOT_ID_INVALID`.
#[test]
fn slot_ids_before_c_get_slot_list_are_the_ones_it_returns() {
    let (_harness, cards) = Harness::with_readers(&[
        ("Reader A 00", None),
        ("Reader B 01", Some(SimPivCard::new())),
    ]);
    let card = cards[1].clone().unwrap();
    let second = slot_info(1).expect("slot 1 before C_GetSlotList");
    assert!(second.slotDescription.starts_with(b"Reader B 01"));
    assert_ne!(second.flags & CKF_TOKEN_PRESENT, 0);
    let first = slot_info(0).expect("slot 0");
    assert!(first.slotDescription.starts_with(b"Reader A 00"));
    assert_eq!(first.flags & CKF_TOKEN_PRESENT, 0);
    let mut info = unsafe { std::mem::zeroed::<CK_SLOT_INFO>() };
    assert_eq!(ck!(C_GetSlotInfo(7, &mut info)), CKR_SLOT_ID_INVALID);
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
    assert_eq!(slot_list(false), vec![0, 1]);
    assert_eq!(slot_list(true), vec![1]);
    assert!(token_info(1).is_ok());
}

// ----- every operation ends per §5 --------------------------------------------

/// Whether `C_SignInit` works now (no signing operation was left active);
/// ends the new operation again.
fn sign_init_works(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> bool {
    let mut mech = Mech::new(CKM_ECDSA);
    let rv = ck!(C_SignInit(session, mech.ptr(), key));
    if rv == CKR_OK {
        assert_eq!(ck3!(C_SessionCancel(session, CKF_SIGN)), CKR_OK);
    }
    rv == CKR_OK
}

fn call_sign(session: CK_SESSION_HANDLE, data: &[u8], out: *mut u8, len: *mut CK_ULONG) -> CK_RV {
    ck!(C_Sign(
        session,
        data.as_ptr() as *mut u8,
        data.len() as CK_ULONG,
        out,
        len
    ))
}

#[test]
fn c_sign_ends_the_operation_unless_it_answers_a_length_query_or_buffer_too_small() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::CardAuthentication);
    let hash = Hash::Sha256.digest(MESSAGE);
    let mut mech = Mech::new(CKM_ECDSA);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    let mut len: CK_ULONG = 0;
    assert_eq!(call_sign(session, &hash, ptr::null_mut(), &mut len), CKR_OK);
    assert_eq!(len, 64);
    let mut small = [0u8; 10];
    len = 10;
    assert_eq!(
        call_sign(session, &hash, small.as_mut_ptr(), &mut len),
        CKR_BUFFER_TOO_SMALL
    );
    assert!(!sign_init_works(session, key), "still active after both");
    // A bad pointer is an error too: CKR_ARGUMENTS_BAD ends it.
    let mut out = [0u8; 64];
    assert_eq!(
        call_sign(session, &hash, out.as_mut_ptr(), ptr::null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert!(sign_init_works(session, key), "ended by CKR_ARGUMENTS_BAD");
    // C_Sign after C_SignUpdate is refused, and ends the operation.
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    assert_eq!(
        ck!(C_SignUpdate(session, hash.as_ptr() as *mut u8, 32)),
        CKR_OK
    );
    len = 64;
    assert_eq!(
        call_sign(session, &hash, out.as_mut_ptr(), &mut len),
        CKR_OPERATION_ACTIVE
    );
    assert!(
        sign_init_works(session, key),
        "ended by CKR_OPERATION_ACTIVE"
    );
    // A success ends it, of course.
    assert!(sign(session, mech.raw(), key, &hash).is_ok());
    assert!(sign_init_works(session, key));
}

#[test]
fn a_failed_sign_update_or_sign_final_ends_the_operation() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::CardAuthentication);
    let mut mech = Mech::new(CKM_ECDSA);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    // A raw mechanism takes at most 16 KiB.
    let too_much = vec![0x5A; 17 * 1024];
    assert_eq!(
        ck!(C_SignUpdate(
            session,
            too_much.as_ptr() as *mut u8,
            too_much.len() as CK_ULONG
        )),
        CKR_DATA_LEN_RANGE
    );
    assert!(
        sign_init_works(session, key),
        "ended by C_SignUpdate's error"
    );
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    assert_eq!(
        ck!(C_SignUpdate(session, ptr::null_mut(), 4)),
        CKR_ARGUMENTS_BAD
    );
    assert!(sign_init_works(session, key), "ended by CKR_ARGUMENTS_BAD");
    // C_SignFinal with nothing fed: CKR_DATA_LEN_RANGE, and over.
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    let mut out = [0u8; 64];
    let mut len: CK_ULONG = 64;
    assert_eq!(
        ck!(C_SignFinal(session, out.as_mut_ptr(), &mut len)),
        CKR_DATA_LEN_RANGE
    );
    assert!(
        sign_init_works(session, key),
        "ended by C_SignFinal's error"
    );
}

#[test]
fn verify_digest_encrypt_and_decrypt_end_on_errors_too() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let ec_public = public_key(session, Slot::CardAuthentication);
    let rsa_public = public_key(session, Slot::Authentication);
    let rsa_private = private_key(session, Slot::Authentication);
    let hash = Hash::Sha256.digest(MESSAGE);
    let mut ecdsa = Mech::new(CKM_ECDSA);
    let mut sha = Mech::new(CKM_SHA256);
    let mut rsa = Mech::new(CKM_RSA_PKCS);
    let mut out = [0u8; 256];
    let mut len: CK_ULONG = 256;

    // C_Verify after C_VerifyUpdate: refused, and over.
    assert_eq!(ck!(C_VerifyInit(session, ecdsa.ptr(), ec_public)), CKR_OK);
    assert_eq!(
        ck!(C_VerifyUpdate(session, hash.as_ptr() as *mut u8, 32)),
        CKR_OK
    );
    assert_eq!(
        ck!(C_Verify(
            session,
            hash.as_ptr() as *mut u8,
            32,
            out.as_mut_ptr(),
            64
        )),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(ck!(C_VerifyInit(session, ecdsa.ptr(), ec_public)), CKR_OK);
    // A failed C_VerifyUpdate ends it.
    let too_much = vec![0u8; 17 * 1024];
    assert_eq!(
        ck!(C_VerifyUpdate(
            session,
            too_much.as_ptr() as *mut u8,
            too_much.len() as CK_ULONG
        )),
        CKR_DATA_LEN_RANGE
    );
    assert_eq!(ck!(C_VerifyInit(session, ecdsa.ptr(), ec_public)), CKR_OK);
    assert_eq!(
        ck!(C_VerifyFinal(session, ptr::null_mut(), 64)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(ck!(C_VerifyInit(session, ecdsa.ptr(), ec_public)), CKR_OK);
    assert_eq!(ck3!(C_SessionCancel(session, CKF_VERIFY)), CKR_OK);

    // C_Digest after C_DigestUpdate; C_DigestFinal with a bad pointer.
    assert_eq!(ck!(C_DigestInit(session, sha.ptr())), CKR_OK);
    assert_eq!(
        ck!(C_DigestUpdate(session, hash.as_ptr() as *mut u8, 32)),
        CKR_OK
    );
    assert_eq!(
        ck!(C_Digest(
            session,
            hash.as_ptr() as *mut u8,
            32,
            out.as_mut_ptr(),
            &mut len
        )),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(ck!(C_DigestInit(session, sha.ptr())), CKR_OK);
    assert_eq!(
        ck!(C_DigestFinal(session, out.as_mut_ptr(), ptr::null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(ck!(C_DigestInit(session, sha.ptr())), CKR_OK);
    // A length query and CKR_BUFFER_TOO_SMALL leave it active.
    len = 0;
    assert_eq!(
        ck!(C_DigestFinal(session, ptr::null_mut(), &mut len)),
        CKR_OK
    );
    len = 4;
    assert_eq!(
        ck!(C_DigestFinal(session, out.as_mut_ptr(), &mut len)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(ck!(C_DigestInit(session, sha.ptr())), CKR_OPERATION_ACTIVE);
    // C_DigestKey with a key it cannot digest: over.
    assert_eq!(ck!(C_DigestKey(session, rsa_private)), CKR_KEY_INDIGESTIBLE);
    assert_eq!(ck!(C_DigestInit(session, sha.ptr())), CKR_OK);
    assert_eq!(ck3!(C_SessionCancel(session, CKF_DIGEST)), CKR_OK);

    // RSA encryption and decryption are single-part: C_*Update and
    // C_*Final refuse, and end the operation.
    for (update, name) in [(true, "C_EncryptUpdate"), (false, "C_EncryptFinal")] {
        assert_eq!(ck!(C_EncryptInit(session, rsa.ptr(), rsa_public)), CKR_OK);
        len = 256;
        let rv = if update {
            ck!(C_EncryptUpdate(
                session,
                hash.as_ptr() as *mut u8,
                32,
                out.as_mut_ptr(),
                &mut len
            ))
        } else {
            ck!(C_EncryptFinal(session, out.as_mut_ptr(), &mut len))
        };
        assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED, "{name}");
        assert_eq!(
            ck!(C_EncryptInit(session, rsa.ptr(), rsa_public)),
            CKR_OK,
            "{name} ended the operation"
        );
        assert_eq!(ck3!(C_SessionCancel(session, CKF_ENCRYPT)), CKR_OK);
    }
    // Data too long for the key: an error, and over.
    assert_eq!(ck!(C_EncryptInit(session, rsa.ptr(), rsa_public)), CKR_OK);
    len = 256;
    assert_eq!(
        ck!(C_Encrypt(
            session,
            too_much.as_ptr() as *mut u8,
            300,
            out.as_mut_ptr(),
            &mut len
        )),
        CKR_DATA_LEN_RANGE
    );
    assert_eq!(ck!(C_EncryptInit(session, rsa.ptr(), rsa_public)), CKR_OK);
    assert_eq!(ck3!(C_SessionCancel(session, CKF_ENCRYPT)), CKR_OK);
    for (update, name) in [(true, "C_DecryptUpdate"), (false, "C_DecryptFinal")] {
        assert_eq!(ck!(C_DecryptInit(session, rsa.ptr(), rsa_private)), CKR_OK);
        len = 256;
        let rv = if update {
            ck!(C_DecryptUpdate(
                session,
                out.as_mut_ptr(),
                256,
                out.as_mut_ptr(),
                &mut len
            ))
        } else {
            ck!(C_DecryptFinal(session, out.as_mut_ptr(), &mut len))
        };
        assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED, "{name}");
        assert_eq!(
            ck!(C_DecryptInit(session, rsa.ptr(), rsa_private)),
            CKR_OK,
            "{name} ended the operation"
        );
        assert_eq!(ck3!(C_SessionCancel(session, CKF_DECRYPT)), CKR_OK);
    }
    // C_Decrypt with a bad pointer: over, without a card operation.
    assert_eq!(ck!(C_DecryptInit(session, rsa.ptr(), rsa_private)), CKR_OK);
    card.clear_log();
    assert_eq!(
        ck!(C_Decrypt(
            session,
            out.as_mut_ptr(),
            256,
            out.as_mut_ptr(),
            ptr::null_mut()
        )),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
    assert_eq!(ck!(C_DecryptInit(session, rsa.ptr(), rsa_private)), CKR_OK);
}

// ----- return codes ------------------------------------------------------------

#[test]
fn mechanism_list_and_info_on_an_empty_slot_are_token_not_present() {
    let (_harness, _cards) = Harness::with_readers(&[("Empty Reader 00", None)]);
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetMechanismList(0, ptr::null_mut(), &mut count)),
        CKR_TOKEN_NOT_PRESENT
    );
    let mut info = unsafe { std::mem::zeroed::<CK_MECHANISM_INFO>() };
    assert_eq!(
        ck!(C_GetMechanismInfo(0, CKM_ECDSA, &mut info)),
        CKR_TOKEN_NOT_PRESENT
    );
}

/// A `CK_ATTRIBUTE` over a borrowed value.
fn attr(kind: CK_ATTRIBUTE_TYPE, value: &[u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: kind,
        pValue: value.as_ptr() as *mut _,
        ulValueLen: value.len() as CK_ULONG,
    }
}

#[test]
fn object_writes_answer_the_first_failing_check() {
    let (harness, _card) = Harness::new();
    let ro = harness.user_session();
    let rw = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    let key = private_key(ro, Slot::Authentication);
    let yes = [CK_TRUE];
    let label = b"new label";
    let class = CKO_DATA.to_ne_bytes();
    let mut token_data = [
        attr(CKA_CLASS, &class),
        attr(CKA_TOKEN, &yes),
        attr(CKA_VALUE, b"1"),
    ];
    let mut session_data = [attr(CKA_CLASS, &class), attr(CKA_VALUE, b"1")];
    let mut new_label = [attr(CKA_LABEL, label)];
    let mut token_copy = [attr(CKA_TOKEN, &yes)];
    let mut made: CK_OBJECT_HANDLE = 0;
    let bad_session: CK_SESSION_HANDLE = 0xBAD;
    let bad_object: CK_OBJECT_HANDLE = 0xBAD;
    let t = |template: &mut [CK_ATTRIBUTE]| (template.as_mut_ptr(), template.len() as CK_ULONG);
    let (token_data_ptr, token_data_len) = t(&mut token_data);
    let (session_data_ptr, session_data_len) = t(&mut session_data);
    let (label_ptr, label_len) = t(&mut new_label);
    let (copy_ptr, copy_len) = t(&mut token_copy);
    check_table(vec![
        (
            "C_CreateObject, bad session",
            ck!(C_CreateObject(
                bad_session,
                token_data_ptr,
                token_data_len,
                &mut made
            )),
            CKR_SESSION_HANDLE_INVALID,
        ),
        (
            "C_CreateObject, token object, read-only session",
            ck!(C_CreateObject(
                ro,
                token_data_ptr,
                token_data_len,
                &mut made
            )),
            CKR_SESSION_READ_ONLY,
        ),
        (
            "C_CreateObject, token object, read/write session",
            ck!(C_CreateObject(
                rw,
                token_data_ptr,
                token_data_len,
                &mut made
            )),
            CKR_FUNCTION_NOT_SUPPORTED,
        ),
        (
            "C_CreateObject, session object, read-only session",
            ck!(C_CreateObject(
                ro,
                session_data_ptr,
                session_data_len,
                &mut made
            )),
            CKR_FUNCTION_NOT_SUPPORTED,
        ),
        (
            "C_SetAttributeValue, bad session",
            ck!(C_SetAttributeValue(bad_session, key, label_ptr, label_len)),
            CKR_SESSION_HANDLE_INVALID,
        ),
        (
            "C_SetAttributeValue, bad object",
            ck!(C_SetAttributeValue(ro, bad_object, label_ptr, label_len)),
            CKR_OBJECT_HANDLE_INVALID,
        ),
        (
            "C_SetAttributeValue, card key, read-only session",
            ck!(C_SetAttributeValue(ro, key, label_ptr, label_len)),
            CKR_SESSION_READ_ONLY,
        ),
        (
            "C_SetAttributeValue, card key (CKA_MODIFIABLE false), read/write",
            ck!(C_SetAttributeValue(rw, key, label_ptr, label_len)),
            CKR_ACTION_PROHIBITED,
        ),
        (
            "C_CopyObject, card key, read-only session",
            ck!(C_CopyObject(ro, key, ptr::null_mut(), 0, &mut made)),
            CKR_SESSION_READ_ONLY,
        ),
        (
            "C_CopyObject, to a token object, read-only session",
            ck!(C_CopyObject(ro, key, copy_ptr, copy_len, &mut made)),
            CKR_SESSION_READ_ONLY,
        ),
        (
            "C_CopyObject, card key (CKA_COPYABLE false), read/write",
            ck!(C_CopyObject(rw, key, ptr::null_mut(), 0, &mut made)),
            CKR_ACTION_PROHIBITED,
        ),
        (
            "C_CopyObject, bad object",
            ck!(C_CopyObject(rw, bad_object, ptr::null_mut(), 0, &mut made)),
            CKR_OBJECT_HANDLE_INVALID,
        ),
    ]);
}

#[test]
fn key_generation_answers_session_then_read_only_then_mechanism() {
    let (harness, _card) = Harness::new();
    let ro = harness.user_session();
    let rw = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    let yes = [CK_TRUE];
    let mut public_template = [attr(CKA_TOKEN, &yes)];
    let mut private_template = [attr(CKA_TOKEN, &yes)];
    let mut ec_gen = Mech::new(CKM_EC_KEY_PAIR_GEN);
    let mut dsa_gen = Mech::new(CKM_DSA_KEY_PAIR_GEN);
    let (mut public, mut private): (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) = (0, 0);
    let mut generate = |session, mech: &mut Mech, template: bool| {
        let (count, pointer) = if template {
            (1, public_template.as_mut_ptr())
        } else {
            (0, ptr::null_mut())
        };
        let private_pointer = if template {
            private_template.as_mut_ptr()
        } else {
            ptr::null_mut()
        };
        ck!(C_GenerateKeyPair(
            session,
            mech.ptr(),
            pointer,
            count,
            private_pointer,
            count,
            &mut public,
            &mut private
        ))
    };
    let table = vec![
        (
            "bad session",
            generate(0xBAD, &mut ec_gen, true),
            CKR_SESSION_HANDLE_INVALID,
        ),
        (
            "token keys in a read-only session",
            generate(ro, &mut ec_gen, true),
            CKR_SESSION_READ_ONLY,
        ),
        (
            "EC key pair, read/write session",
            generate(rw, &mut ec_gen, true),
            CKR_MECHANISM_INVALID,
        ),
        (
            "DSA key pair, read/write session",
            generate(rw, &mut dsa_gen, true),
            CKR_MECHANISM_INVALID,
        ),
        (
            "session keys in a read-only session",
            generate(ro, &mut dsa_gen, false),
            CKR_MECHANISM_INVALID,
        ),
    ];
    check_table(table);
}

fn check_table(rows: Vec<(&str, CK_RV, CK_RV)>) {
    let wrong: Vec<String> = rows
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(name, got, want)| format!("{name}: {got:#x}, want {want:#x}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
