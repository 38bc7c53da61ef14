//! The token's objects (PKCS#11 2.40 §4) and object search (§5.7
//! C_FindObjects*): for each PIV key a private key, a public key and a
//! certificate sharing `CKA_ID` and `CKA_LABEL`, with the attributes
//! consumers read, matching what the card holds. Keys behind the PIN are
//! private objects (`CKA_PRIVATE`), visible once the user has logged in
//! (§4.4 "private objects … only … after the user has logged in"), so most
//! tests here log in first.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimPublicKey, Slot};
use rsa::traits::PublicKeyParts;
use std::collections::BTreeSet;
use std::ptr;
use x509_cert::der::{Decode, Encode};

/// The PIV key slots, their `CKA_ID` and the label the PIV profile gives
/// them (cardprofiles/piv.toml).
const KEYS: [(Slot, u8, &str); 4] = [
    (Slot::Authentication, 1, "PIV Authentication"),
    (Slot::Signature, 2, "Digital Signature"),
    (Slot::KeyManagement, 3, "Key Management"),
    (Slot::CardAuthentication, 4, "Card Authentication"),
];

const CLASSES: [CK_OBJECT_CLASS; 3] = [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE];

#[test]
fn every_key_has_a_private_key_public_key_and_certificate_sharing_id_and_label() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for (slot, id, label) in KEYS {
        for class in CLASSES {
            let handle = object(session, class, id);
            assert_eq!(attribute(session, handle, CKA_ID), Ok(vec![id]));
            assert_eq!(
                attribute(session, handle, CKA_LABEL).as_deref(),
                Ok(label.as_bytes()),
                "label of class {class} in {slot:?}"
            );
            assert_eq!(
                attribute(session, handle, CKA_CLASS).map(|v| as_ulong(&v)),
                Ok(class)
            );
            assert_eq!(
                attribute(session, handle, CKA_TOKEN).map(|v| as_bool(&v)),
                Ok(true)
            );
        }
    }
}

#[test]
fn empty_template_finds_all_twelve_objects() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    let all = find(session, &[]);
    assert_eq!(all.len(), 12);
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len(),
        12,
        "handles repeat"
    );
    assert!(!all.contains(&CK_INVALID_HANDLE));
}

#[test]
fn a_public_session_sees_no_private_object() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let visible = find(session, &[]);
    // The 4 certificates and 4 public keys at least; 9E's key needs no PIN.
    assert!(visible.len() >= 8, "{} objects", visible.len());
    for handle in &visible {
        assert_eq!(
            attribute(session, *handle, CKA_PRIVATE).map(|v| as_bool(&v)),
            Ok(false),
            "object {handle:#x} is private"
        );
    }
    assert_eq!(
        find(session, &[(CKA_CLASS, ulong(CKO_CERTIFICATE))]).len(),
        4
    );
    assert_eq!(
        find(session, &[(CKA_CLASS, ulong(CKO_PUBLIC_KEY))]).len(),
        4
    );
    // Logging in shows the rest.
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    assert_eq!(find(session, &[]).len(), 12);
}

/// §4.9: "CKA_ALWAYS_AUTHENTICATE … may only be set to CK_TRUE when
/// CKA_PRIVATE is also CK_TRUE."
#[test]
fn the_always_authenticate_key_is_a_private_object() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Signature);
    assert_eq!(
        attribute(session, key, CKA_ALWAYS_AUTHENTICATE).map(|v| as_bool(&v)),
        Ok(true)
    );
    assert_eq!(
        attribute(session, key, CKA_PRIVATE).map(|v| as_bool(&v)),
        Ok(true)
    );
}

#[test]
fn find_by_class_gives_four_of_each() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for class in CLASSES {
        assert_eq!(
            find(session, &[(CKA_CLASS, ulong(class))]).len(),
            4,
            "class {class}"
        );
    }
}

#[test]
fn find_by_id_gives_the_three_objects_of_one_key() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for (_, id, _) in KEYS {
        let found = find(session, &[(CKA_ID, vec![id])]);
        assert_eq!(found.len(), 3, "id {id:02x}");
        let classes: BTreeSet<CK_OBJECT_CLASS> = found
            .iter()
            .map(|&h| as_ulong(&attribute(session, h, CKA_CLASS).unwrap()))
            .collect();
        assert_eq!(classes, CLASSES.into_iter().collect());
    }
}

#[test]
fn find_by_class_and_id_gives_exactly_one_object() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for (_, id, _) in KEYS {
        for class in CLASSES {
            let found = find(session, &[(CKA_CLASS, ulong(class)), (CKA_ID, vec![id])]);
            assert_eq!(found.len(), 1, "class {class} id {id:02x}");
        }
    }
}

#[test]
fn find_by_key_type_separates_rsa_and_ec_keys() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    assert_eq!(find(session, &[(CKA_KEY_TYPE, ulong(CKK_RSA))]).len(), 2);
    assert_eq!(find(session, &[(CKA_KEY_TYPE, ulong(CKK_EC))]).len(), 6);
}

#[test]
fn find_with_no_match_finds_nothing() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    assert!(find(session, &[(CKA_ID, vec![0x05])]).is_empty());
    assert!(find(session, &[(CKA_CLASS, ulong(CKO_SECRET_KEY))]).is_empty());
    assert!(find(session, &[(CKA_LABEL, b"no such label".to_vec())]).is_empty());
    // An attribute a certificate does not have matches no certificate.
    assert!(find(
        session,
        &[
            (CKA_CLASS, ulong(CKO_CERTIFICATE)),
            (CKA_MODULUS_BITS, ulong(2048))
        ]
    )
    .is_empty());
}

#[test]
fn find_objects_hands_out_results_in_batches() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    let all: BTreeSet<_> = find(session, &[]).into_iter().collect();
    assert_eq!(ck!(C_FindObjectsInit(session, ptr::null_mut(), 0)), CKR_OK);
    let mut seen = BTreeSet::new();
    loop {
        let mut handle: CK_OBJECT_HANDLE = 0;
        let mut count: CK_ULONG = 99;
        assert_eq!(
            ck!(C_FindObjects(session, &mut handle, 1, &mut count)),
            CKR_OK
        );
        match count {
            0 => break,
            1 => assert!(seen.insert(handle), "handle {handle} returned twice"),
            n => panic!("{n} objects returned with ulMaxObjectCount 1"),
        }
        assert!(seen.len() <= 12, "the search does not end");
    }
    assert_eq!(ck!(C_FindObjectsFinal(session)), CKR_OK);
    assert_eq!(seen, all);
}

#[test]
fn rsa_key_attributes_match_the_card_key() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let SimPublicKey::Rsa(key) = card_public_key(&card, Slot::Authentication) else {
        panic!("9A holds an RSA key");
    };
    for class in [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY] {
        let handle = object(session, class, 1);
        let get = |kind| attribute(session, handle, kind).expect("attribute");
        assert_eq!(as_ulong(&get(CKA_KEY_TYPE)), CKK_RSA);
        // Big integers are big-endian byte strings (§2.2 "Big integer").
        assert_eq!(get(CKA_MODULUS), key.n().to_bytes_be());
        assert_eq!(get(CKA_PUBLIC_EXPONENT), key.e().to_bytes_be());
        assert_eq!(as_ulong(&get(CKA_MODULUS_BITS)), 2048);
    }
}

/// DER of the named-curve OIDs (RFC 5480 §2.1.1.1).
const P256_OID: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

#[test]
fn ec_key_attributes_match_the_card_keys() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    for (slot, oid) in [
        (Slot::Signature, P256_OID),
        (Slot::KeyManagement, P384_OID),
        (Slot::CardAuthentication, P256_OID),
    ] {
        let point = check::ec_point(&card_public_key(&card, slot));
        // CKA_EC_POINT is the DER OCTET STRING around the uncompressed point
        // (PKCS#11 2.40 §2.3.3, X9.62).
        let mut octet_string = vec![0x04, point.len() as u8];
        octet_string.extend_from_slice(&point);
        for class in [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY] {
            let handle = object(session, class, key_id(slot));
            let get = |kind| attribute(session, handle, kind).expect("attribute");
            assert_eq!(as_ulong(&get(CKA_KEY_TYPE)), CKK_EC, "{slot:?}");
            assert_eq!(get(CKA_EC_PARAMS), oid, "{slot:?}");
            assert_eq!(get(CKA_EC_POINT), octet_string, "{slot:?} class {class}");
        }
    }
}

#[test]
fn certificate_values_are_the_card_certificates_even_the_compressed_one() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    // 9D's certificate is stored gzip-compressed (CertInfo 01).
    for (slot, id, _) in KEYS {
        let handle = object(session, CKO_CERTIFICATE, id);
        assert_eq!(
            attribute(session, handle, CKA_VALUE),
            Ok(card_certificate(&card, slot)),
            "{slot:?}"
        );
        assert_eq!(
            attribute(session, handle, CKA_CERTIFICATE_TYPE).map(|v| as_ulong(&v)),
            Ok(CKC_X_509)
        );
    }
}

#[test]
fn certificate_subject_issuer_and_serial_are_der_from_the_certificate() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    for (slot, id, _) in KEYS {
        let der = card_certificate(&card, slot);
        let cert = x509_cert::Certificate::from_der(&der).expect("the card's certificate");
        let tbs = &cert.tbs_certificate;
        let handle = object(session, CKO_CERTIFICATE, id);
        let get = |kind| attribute(session, handle, kind).expect("attribute");
        assert_eq!(get(CKA_SUBJECT), tbs.subject.to_der().unwrap(), "{slot:?}");
        assert_eq!(get(CKA_ISSUER), tbs.issuer.to_der().unwrap(), "{slot:?}");
        // CKA_SERIAL_NUMBER: "DER-encoding of the certificate serial number",
        // i.e. the INTEGER with tag and length.
        assert_eq!(
            get(CKA_SERIAL_NUMBER),
            tbs.serial_number.to_der().unwrap(),
            "{slot:?}"
        );
        // The keys carry the same subject (§4.7 CKA_SUBJECT of keys).
        for class in [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY] {
            let key = object(session, class, id);
            assert_eq!(
                attribute(session, key, CKA_SUBJECT),
                Ok(tbs.subject.to_der().unwrap())
            );
        }
    }
}

#[test]
fn private_keys_are_sensitive_and_never_leave_the_card() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for (slot, id, _) in KEYS {
        let handle = object(session, CKO_PRIVATE_KEY, id);
        let flag = |kind| as_bool(&attribute(session, handle, kind).expect("attribute"));
        assert!(flag(CKA_SENSITIVE), "{slot:?}");
        assert!(!flag(CKA_EXTRACTABLE), "{slot:?}");
        assert!(flag(CKA_ALWAYS_SENSITIVE), "{slot:?}");
        assert!(flag(CKA_NEVER_EXTRACTABLE), "{slot:?}");
        assert!(flag(CKA_SIGN), "{slot:?}");
    }
}

#[test]
fn only_the_9c_key_needs_the_pin_for_every_use() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for (slot, id, _) in KEYS {
        let handle = object(session, CKO_PRIVATE_KEY, id);
        let always = as_bool(&attribute(session, handle, CKA_ALWAYS_AUTHENTICATE).unwrap());
        assert_eq!(always, slot == Slot::Signature, "{slot:?}");
    }
}

#[test]
fn only_the_rsa_key_decrypts() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for (slot, id, _) in KEYS {
        let handle = object(session, CKO_PRIVATE_KEY, id);
        let decrypts = as_bool(&attribute(session, handle, CKA_DECRYPT).unwrap());
        assert_eq!(decrypts, slot == Slot::Authentication, "{slot:?}");
    }
}

#[test]
fn public_keys_verify() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    for (slot, id, _) in KEYS {
        let handle = object(session, CKO_PUBLIC_KEY, id);
        assert!(
            as_bool(&attribute(session, handle, CKA_VERIFY).unwrap()),
            "{slot:?}"
        );
    }
}

#[test]
fn a_card_with_one_key_has_three_objects() {
    let (harness, _card) = Harness::with_card(
        p11card_cardsim::SimPivCard::new().only_slots(&[Slot::CardAuthentication]),
    );
    let session = harness.user_session();
    let all = find(session, &[]);
    assert_eq!(all.len(), 3);
    for handle in all {
        assert_eq!(attribute(session, handle, CKA_ID), Ok(vec![4]));
    }
}

#[test]
fn an_unparsable_certificate_leaves_the_other_keys_usable() {
    let card = p11card_cardsim::SimPivCard::new()
        .with_cert_der(Slot::Signature, vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    let (harness, _card) = Harness::with_card(card);
    let session = harness.user_session();
    // No certificate object; the key itself shows, from GET METADATA.
    let classes: Vec<CK_ULONG> = find(session, &[(CKA_ID, vec![2])])
        .into_iter()
        .map(|handle| as_ulong(&attribute(session, handle, CKA_CLASS).unwrap()))
        .collect();
    assert_eq!(classes, [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY]);
    for id in [1, 3, 4] {
        assert_eq!(find(session, &[(CKA_ID, vec![id])]).len(), 3, "id {id}");
    }
}
