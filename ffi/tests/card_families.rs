//! The same consumer over both card families: a program that knows PKCS#11
//! and nothing about PIV or OpenPGP lists the token, logs in, and uses every
//! private key for what its attributes say it does (sign and verify with a
//! mechanism from `CKA_ALLOWED_MECHANISMS`, decrypt what the public key
//! encrypted, derive with ECDH), and checks each certificate against its
//! key. It runs over the simulated PIV card, over simulated OpenPGP cards
//! with RSA, NIST and Curve25519 keys, and over both in two readers at once.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{KeyRole, PgpKeyType, SimBackend, SimOpenPgpCard, SimPivCard};
use std::ptr;
use x509_cert::der::{Decode, Encode};

/// What the consumer did with a token.
#[derive(Debug, Default, PartialEq, Eq)]
struct Used {
    signed: Vec<(u8, CK_MECHANISM_TYPE)>,
    decrypted: Vec<u8>,
    derived: Vec<u8>,
    certificates: Vec<u8>,
}

fn ulongs(value: &[u8]) -> Vec<CK_ULONG> {
    value
        .chunks(std::mem::size_of::<CK_ULONG>())
        .map(as_ulong)
        .collect()
}

fn has(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, kind: CK_ATTRIBUTE_TYPE) -> bool {
    attribute(session, object, kind).is_ok_and(|value| as_bool(&value))
}

/// The public key object with the private key's `CKA_ID`.
fn public_of(session: CK_SESSION_HANDLE, id: &[u8]) -> CK_OBJECT_HANDLE {
    let found = find(
        session,
        &[(CKA_CLASS, ulong(CKO_PUBLIC_KEY)), (CKA_ID, id.to_vec())],
    );
    assert_eq!(found.len(), 1, "public key for id {id:02x?}");
    found[0]
}

fn sign_as_consumer(
    session: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
    kind: CK_MECHANISM_TYPE,
    data: &[u8],
) -> Vec<u8> {
    let mut mech = Mech::new(kind);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    if has(session, key, CKA_ALWAYS_AUTHENTICATE) {
        assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    }
    sign_more(session, data).unwrap_or_else(|rv| panic!("C_Sign {kind:#x}: {rv:#x}"))
}

/// ECDH from the peer's side with a fixed peer key, for the curve named by
/// `CKA_EC_PARAMS`: the peer's public point and the shared secret.
fn peer_agreement(params: &[u8], card_point: &[u8]) -> (Vec<u8>, Vec<u8>) {
    match params {
        // P-256
        [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07] => {
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            let peer = p256::SecretKey::from_slice(&[0x31; 32]).unwrap();
            let card = p256::PublicKey::from_sec1_bytes(card_point).unwrap();
            let secret = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), card.as_affine());
            (
                peer.public_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
                secret.raw_secret_bytes().to_vec(),
            )
        }
        // P-384
        [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22] => {
            use p384::elliptic_curve::sec1::ToEncodedPoint;
            let peer = p384::SecretKey::from_slice(&[0x31; 48]).unwrap();
            let card = p384::PublicKey::from_sec1_bytes(card_point).unwrap();
            let secret = p384::ecdh::diffie_hellman(peer.to_nonzero_scalar(), card.as_affine());
            (
                peer.public_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
                secret.raw_secret_bytes().to_vec(),
            )
        }
        // X25519 (RFC 8410 OID)
        [0x06, 0x03, 0x2B, 0x65, 0x6E] => {
            let peer = x25519_dalek::StaticSecret::from([0x31; 32]);
            let card = x25519_dalek::PublicKey::from(<[u8; 32]>::try_from(card_point).unwrap());
            (
                x25519_dalek::PublicKey::from(&peer).as_bytes().to_vec(),
                peer.diffie_hellman(&card).as_bytes().to_vec(),
            )
        }
        other => panic!("no peer for curve {other:02x?}"),
    }
}

fn derive_as_consumer(
    session: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
    peer_point: &[u8],
) -> Vec<u8> {
    let mut public_data = peer_point.to_vec();
    let mut params = CK_ECDH1_DERIVE_PARAMS {
        kdf: CKD_NULL,
        ulSharedDataLen: 0,
        pSharedData: ptr::null_mut(),
        ulPublicDataLen: public_data.len() as CK_ULONG,
        pPublicData: public_data.as_mut_ptr(),
    };
    let mut mech = CK_MECHANISM {
        mechanism: CKM_ECDH1_DERIVE,
        pParameter: &mut params as *mut CK_ECDH1_DERIVE_PARAMS as *mut _,
        ulParameterLen: std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG,
    };
    let (class, key_type, no) = (CKO_SECRET_KEY, CKK_GENERIC_SECRET, CK_FALSE);
    let mut template = [
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: &class as *const _ as *mut _,
            ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_KEY_TYPE,
            pValue: &key_type as *const _ as *mut _,
            ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_TOKEN,
            pValue: &no as *const _ as *mut _,
            ulValueLen: 1,
        },
    ];
    let mut secret = 0;
    assert_eq!(
        ck!(C_DeriveKey(
            session,
            &mut mech,
            key,
            template.as_mut_ptr(),
            template.len() as CK_ULONG,
            &mut secret
        )),
        CKR_OK
    );
    attribute(session, secret, CKA_VALUE).unwrap()
}

/// The certificate's subjectPublicKey bits against the public key object.
fn check_certificate(
    session: CK_SESSION_HANDLE,
    certificate: CK_OBJECT_HANDLE,
    public: CK_OBJECT_HANDLE,
) {
    let der = attribute(session, certificate, CKA_VALUE).unwrap();
    let parsed = x509_cert::Certificate::from_der(&der).expect("a DER certificate");
    let spki = &parsed.tbs_certificate.subject_public_key_info;
    let bits = spki.subject_public_key.raw_bytes().to_vec();
    match as_ulong(&attribute(session, public, CKA_KEY_TYPE).unwrap()) {
        CKK_RSA => {
            let modulus = attribute(session, public, CKA_MODULUS).unwrap();
            let key = <rsa::RsaPublicKey as rsa::pkcs1::DecodeRsaPublicKey>::from_pkcs1_der(&bits)
                .unwrap();
            assert_eq!(rsa::traits::PublicKeyParts::n(&key).to_bytes_be(), modulus);
        }
        _ => {
            let point = attribute(session, public, CKA_EC_POINT).unwrap();
            assert_eq!(point[2..], bits[..], "certificate and key differ");
        }
    }
    assert_eq!(
        attribute(session, certificate, CKA_SUBJECT).unwrap(),
        parsed.tbs_certificate.subject.to_der().unwrap()
    );
}

/// What a consumer does with any token: every key for what it is for.
fn use_every_key(slot: CK_SLOT_ID) -> Used {
    let info = token_info(slot).expect("C_GetTokenInfo");
    assert!(info.label.iter().any(|&b| b != b' '), "a token label");
    assert!(info.serialNumber.iter().any(|&b| b != b' '), "a serial");
    let session = open_session(slot, CKF_SERIAL_SESSION);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let mut used = Used::default();
    let message = b"the same consumer for every card";
    for key in find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]) {
        let id = attribute(session, key, CKA_ID).unwrap();
        let public = public_of(session, &id);
        assert_eq!(
            attribute(session, key, CKA_KEY_TYPE),
            attribute(session, public, CKA_KEY_TYPE)
        );
        let allowed = ulongs(&attribute(session, key, CKA_ALLOWED_MECHANISMS).unwrap());
        if has(session, key, CKA_SIGN) {
            let kind = [CKM_SHA256_RSA_PKCS, CKM_ECDSA_SHA256, CKM_EDDSA]
                .into_iter()
                .find(|m| allowed.contains(m))
                .unwrap_or_else(|| panic!("key {id:02x?} signs with none of {allowed:x?}"));
            let signature = sign_as_consumer(session, key, kind, message);
            assert_eq!(
                verify(session, &mut Mech::new(kind), public, message, &signature),
                CKR_OK,
                "key {id:02x?} {kind:#x}"
            );
            let mut tampered = signature.clone();
            tampered[5] ^= 1;
            assert_eq!(
                verify(session, &mut Mech::new(kind), public, message, &tampered),
                CKR_SIGNATURE_INVALID
            );
            used.signed.push((id[0], kind));
        }
        if has(session, key, CKA_DECRYPT) {
            assert!(allowed.contains(&CKM_RSA_PKCS));
            let ciphertext =
                encrypt(session, &mut Mech::new(CKM_RSA_PKCS), public, message).unwrap();
            if has(session, key, CKA_ALWAYS_AUTHENTICATE) {
                let mut mech = Mech::new(CKM_RSA_PKCS);
                assert_eq!(ck!(C_DecryptInit(session, mech.ptr(), key)), CKR_OK);
                assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
            }
            let plain = decrypt(session, &mut Mech::new(CKM_RSA_PKCS), key, &ciphertext).unwrap();
            assert_eq!(plain, message);
            used.decrypted.push(id[0]);
        }
        if has(session, key, CKA_DERIVE) {
            assert!(allowed.contains(&CKM_ECDH1_DERIVE));
            let params = attribute(session, public, CKA_EC_PARAMS).unwrap();
            let point = attribute(session, public, CKA_EC_POINT).unwrap()[2..].to_vec();
            let (peer, expected) = peer_agreement(&params, &point);
            assert_eq!(derive_as_consumer(session, key, &peer), expected);
            used.derived.push(id[0]);
        }
    }
    for certificate in find(session, &[(CKA_CLASS, ulong(CKO_CERTIFICATE))]) {
        let id = attribute(session, certificate, CKA_ID).unwrap();
        check_certificate(session, certificate, public_of(session, &id));
        used.certificates.push(id[0]);
    }
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
    used
}

fn all_openpgp_keys(sig: PgpKeyType, dec: PgpKeyType, aut: PgpKeyType) -> SimOpenPgpCard {
    SimOpenPgpCard::new()
        .with_key(KeyRole::Signature, sig)
        .with_key(KeyRole::Decryption, dec)
        .with_key(KeyRole::Authentication, aut)
        .with_test_cert(KeyRole::Signature)
        .with_test_cert(KeyRole::Authentication)
}

#[test]
fn the_consumer_uses_every_key_of_the_piv_card() {
    let (harness, _card) = Harness::with_card(SimPivCard::new());
    let used = use_every_key(harness.slot());
    assert_eq!(
        used.signed,
        [
            (1, CKM_SHA256_RSA_PKCS),
            (2, CKM_ECDSA_SHA256),
            (3, CKM_ECDSA_SHA256),
            (4, CKM_ECDSA_SHA256)
        ]
    );
    assert_eq!(used.decrypted, [1]);
    // The key management key (9D, P-384) agrees on keys.
    assert_eq!(used.derived, [3]);
    assert_eq!(used.certificates, [1, 2, 3, 4]);
}

#[test]
fn the_consumer_uses_every_key_of_the_openpgp_card() {
    let (backend, _card) = SimBackend::with_card(SimOpenPgpCard::new());
    let harness = Harness::with_backend(backend);
    let used = use_every_key(harness.slot());
    assert_eq!(
        used.signed,
        [(1, CKM_SHA256_RSA_PKCS), (3, CKM_ECDSA_SHA256)]
    );
    assert_eq!(used.decrypted, [2]);
    assert!(used.derived.is_empty());
    assert_eq!(used.certificates, [3]);
}

#[test]
fn the_consumer_uses_openpgp_cards_with_every_curve() {
    for (sig, dec, aut) in [
        (PgpKeyType::Ed25519, PgpKeyType::X25519, PgpKeyType::Ed25519),
        (PgpKeyType::P384, PgpKeyType::P256, PgpKeyType::P256),
        (PgpKeyType::P256, PgpKeyType::P384, PgpKeyType::Rsa2048),
    ] {
        let (backend, _card) = SimBackend::with_card(all_openpgp_keys(sig, dec, aut));
        let harness = Harness::with_backend(backend);
        let used = use_every_key(harness.slot());
        let expected_sig = if sig == PgpKeyType::Ed25519 {
            CKM_EDDSA
        } else {
            CKM_ECDSA_SHA256
        };
        let expected_aut = match aut {
            PgpKeyType::Ed25519 => CKM_EDDSA,
            PgpKeyType::Rsa2048 => CKM_SHA256_RSA_PKCS,
            _ => CKM_ECDSA_SHA256,
        };
        assert_eq!(
            used.signed,
            [(1, expected_sig), (3, expected_aut)],
            "{sig:?}/{dec:?}/{aut:?}"
        );
        assert_eq!(used.derived, [2], "{sig:?}/{dec:?}/{aut:?}");
        assert_eq!(used.certificates, [1, 3], "{sig:?}/{dec:?}/{aut:?}");
    }
}

#[test]
fn a_piv_card_and_an_openpgp_card_side_by_side() {
    let backend = SimBackend::with_readers(["Reader PIV", "Reader OpenPGP"]);
    backend.insert("Reader PIV", SimPivCard::new());
    backend.insert("Reader OpenPGP", SimOpenPgpCard::new());
    let harness = Harness::with_backend(backend);
    let slots = harness.slots();
    assert_eq!(slots.len(), 2);
    let models: Vec<String> = slots
        .iter()
        .map(|&slot| {
            String::from_utf8_lossy(&token_info(slot).unwrap().model)
                .trim()
                .to_owned()
        })
        .collect();
    assert!(models.iter().any(|m| m == "OpenPGP card"), "{models:?}");
    assert!(models.iter().any(|m| m.contains("PIV")), "{models:?}");
    // Logged in on both at once, each token with its own keys.
    let used: Vec<Used> = slots.iter().map(|&slot| use_every_key(slot)).collect();
    let signed: usize = used.iter().map(|u| u.signed.len()).sum();
    assert_eq!(signed, 4 + 2);
}

/// A card that answers no profile's SELECT (ISO 7816-4 §5.6: 6A82) shows a
/// slot whose token is not recognised: every token call says so, nothing
/// panics, and the slot keeps working for the next card.
#[test]
fn a_card_no_profile_knows_shows_a_slot_without_a_token() {
    let backend = SimBackend::with_readers(["Reader"]);
    let card = backend.insert("Reader", SimOpenPgpCard::new());
    // PIV, OpenPGP and PKCS#15 (the AIDs the profiles probe) all absent.
    card.misbehave(|m| m.fail_next = vec![(0xA4, 0x6A82); 3]);
    let harness = Harness::with_backend(backend.clone());
    let slots = slot_list(false);
    assert_eq!(slots.len(), 1);
    let slot = slots[0];
    assert_ne!(slot_info(slot).unwrap().flags & CKF_TOKEN_PRESENT, 0);
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
    // So does the mechanism list (PKCS#11 3.0 §5.5: the token's
    // mechanisms; there is no token).
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetMechanismList(slot, ptr::null_mut(), &mut count)),
        CKR_TOKEN_NOT_RECOGNIZED
    );
    // Identification spent one SELECT per application AID and one of
    // EF.DIR (which may list a PKCS#15 application under another name),
    // and nothing else.
    assert_eq!(
        instructions(&card),
        [0xA4, 0xA4, 0xA4, 0xA4],
        "{}",
        card.transcript()
    );
    drop(harness);
}
