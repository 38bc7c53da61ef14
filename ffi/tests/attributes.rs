//! `C_GetAttributeValue`, attribute by attribute, as PKCS#11 2.40 §5.7
//! specifies it:
//! 1. a sensitive or unextractable attribute: `ulValueLen` =
//!    `CK_UNAVAILABLE_INFORMATION`, `CKR_ATTRIBUTE_SENSITIVE`;
//! 2. an attribute the object does not have: `CK_UNAVAILABLE_INFORMATION`,
//!    `CKR_ATTRIBUTE_TYPE_INVALID`;
//! 3. `pValue` NULL: `ulValueLen` = the exact length;
//! 4. `pValue` large enough: the value is copied and `ulValueLen` set;
//! 5. otherwise `CK_UNAVAILABLE_INFORMATION`, `CKR_BUFFER_TOO_SMALL`.
//!
//! "Every attribute in the template must be examined", so the others in the
//! same call are still answered.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::Slot;
use std::ptr;

/// One template entry with its own buffer (`None`: a NULL `pValue`).
struct Entry {
    kind: CK_ATTRIBUTE_TYPE,
    buffer: Option<Vec<u8>>,
}

fn entry(kind: CK_ATTRIBUTE_TYPE, capacity: Option<usize>) -> Entry {
    Entry {
        kind,
        buffer: capacity.map(|n| vec![0xA5; n]),
    }
}

/// What one template entry holds after the call: `ulValueLen`, and the
/// value written (when `ulValueLen` fits the buffer).
type Answer = (CK_ULONG, Option<Vec<u8>>);

/// Calls `C_GetAttributeValue` once with all entries; returns the return
/// value and each entry's answer.
fn get(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    entries: &mut [Entry],
) -> (CK_RV, Vec<Answer>) {
    let mut template: Vec<CK_ATTRIBUTE> = entries
        .iter_mut()
        .map(|e| CK_ATTRIBUTE {
            type_: e.kind,
            pValue: e
                .buffer
                .as_mut()
                .map_or(ptr::null_mut(), |b| b.as_mut_ptr() as *mut _),
            ulValueLen: e.buffer.as_ref().map_or(0, |b| b.len() as CK_ULONG),
        })
        .collect();
    let rv = ck!(C_GetAttributeValue(
        session,
        object,
        template.as_mut_ptr(),
        template.len() as CK_ULONG
    ));
    let results = template
        .iter()
        .zip(entries.iter())
        .map(|(attr, e)| {
            let len = attr.ulValueLen;
            let value = e.buffer.as_ref().and_then(|b| {
                (len != CK_UNAVAILABLE_INFORMATION && (len as usize) <= b.len())
                    .then(|| b[..len as usize].to_vec())
            });
            (len, value)
        })
        .collect();
    (rv, results)
}

fn certificate_9a(session: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    object(session, CKO_CERTIFICATE, 1)
}

#[test]
fn null_buffers_get_the_exact_lengths() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    let cert = certificate_9a(session);
    let der = card_certificate(&card, Slot::Authentication);
    let label = attribute(session, cert, CKA_LABEL).unwrap();
    let mut entries = [
        entry(CKA_VALUE, None),
        entry(CKA_ID, None),
        entry(CKA_LABEL, None),
        entry(CKA_CERTIFICATE_TYPE, None),
    ];
    let (rv, results) = get(session, cert, &mut entries);
    assert_eq!(rv, CKR_OK);
    let lengths: Vec<CK_ULONG> = results.iter().map(|(len, _)| *len).collect();
    assert_eq!(
        lengths,
        vec![
            der.len() as CK_ULONG,
            1,
            label.len() as CK_ULONG,
            std::mem::size_of::<CK_ULONG>() as CK_ULONG
        ]
    );
}

#[test]
fn exact_size_buffers_get_the_values() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    let cert = certificate_9a(session);
    let der = card_certificate(&card, Slot::Authentication);
    let mut entries = [entry(CKA_VALUE, Some(der.len())), entry(CKA_ID, Some(1))];
    let (rv, results) = get(session, cert, &mut entries);
    assert_eq!(rv, CKR_OK);
    assert_eq!(results[0], (der.len() as CK_ULONG, Some(der)));
    assert_eq!(results[1], (1, Some(vec![1])));
}

#[test]
fn too_small_buffer_is_buffer_too_small_and_unavailable_while_the_others_are_filled() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let cert = certificate_9a(session);
    let label = attribute(session, cert, CKA_LABEL).unwrap();
    let mut entries = [
        entry(CKA_ID, Some(16)),
        entry(CKA_VALUE, Some(10)),
        entry(CKA_LABEL, Some(64)),
    ];
    let (rv, results) = get(session, cert, &mut entries);
    assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
    assert_eq!(results[0], (1, Some(vec![1])));
    assert_eq!(results[1].0, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(results[2], (label.len() as CK_ULONG, Some(label)));
}

#[test]
fn private_key_value_is_attribute_sensitive_while_the_others_are_filled() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for slot in [Slot::Authentication, Slot::CardAuthentication] {
        let key = private_key(session, slot);
        let mut entries = [entry(CKA_VALUE, Some(4096)), entry(CKA_ID, Some(8))];
        let (rv, results) = get(session, key, &mut entries);
        assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE, "{slot:?}");
        assert_eq!(results[0].0, CK_UNAVAILABLE_INFORMATION, "{slot:?}");
        assert_eq!(results[1], (1, Some(vec![key_id(slot)])), "{slot:?}");
    }
}

#[test]
fn rsa_private_exponent_is_attribute_sensitive_even_for_a_length_query() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    for secret in [
        CKA_PRIVATE_EXPONENT,
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_COEFFICIENT,
    ] {
        let mut entries = [entry(secret, None), entry(CKA_MODULUS_BITS, None)];
        let (rv, results) = get(session, key, &mut entries);
        assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE, "attribute {secret:#x}");
        assert_eq!(results[0].0, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(results[1].0, std::mem::size_of::<CK_ULONG>() as CK_ULONG);
    }
}

#[test]
fn unknown_attribute_is_attribute_type_invalid_while_the_others_are_filled() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let cert = certificate_9a(session);
    let mut entries = [
        entry(CKA_VENDOR_DEFINED | 0x5A5A, Some(16)),
        entry(CKA_ID, Some(16)),
    ];
    let (rv, results) = get(session, cert, &mut entries);
    assert_eq!(rv, CKR_ATTRIBUTE_TYPE_INVALID);
    assert_eq!(results[0].0, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(results[1], (1, Some(vec![1])));
}

#[test]
fn attribute_of_another_object_type_is_attribute_type_invalid() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    // An EC key has no modulus; a certificate has no CKA_KEY_TYPE.
    let ec_key = public_key(session, Slot::CardAuthentication);
    assert_eq!(
        attribute(session, ec_key, CKA_MODULUS),
        Err(CKR_ATTRIBUTE_TYPE_INVALID)
    );
    assert_eq!(
        attribute(session, certificate_9a(session), CKA_KEY_TYPE),
        Err(CKR_ATTRIBUTE_TYPE_INVALID)
    );
}

#[test]
fn invalid_object_handle_is_object_handle_invalid() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    for handle in [CK_INVALID_HANDLE, 0xDEAD_BEEF, CK_OBJECT_HANDLE::MAX] {
        let mut entries = [entry(CKA_ID, Some(8))];
        let (rv, _) = get(session, handle, &mut entries);
        assert_eq!(rv, CKR_OBJECT_HANDLE_INVALID, "handle {handle:#x}");
    }
}

#[test]
fn object_size_is_known_for_every_object() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for handle in find(session, &[]) {
        let mut size: CK_ULONG = 0;
        assert_eq!(ck!(C_GetObjectSize(session, handle, &mut size)), CKR_OK);
    }
    let mut size: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetObjectSize(session, 0xDEAD_BEEF, &mut size)),
        CKR_OBJECT_HANDLE_INVALID
    );
}
