//! The OpenPGP card through the C ABI, as a consumer sees it: the token
//! (label from the cardholder name, serial from the AID), its objects (three
//! keys with OpenSC's IDs, the certificate matched to its key, the signature
//! counter), the mechanisms each key allows, signatures (PSO:CDS and
//! INTERNAL AUTHENTICATE, RSA/ECDSA/EdDSA), decryption, ECDH through
//! `C_DeriveKey`, and the PINs (PW1 in modes 81/82, PW3 and the Resetting
//! Code as the SO credential), over the simulated card `SimOpenPgpCard`.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{KeyRole, PgpKeyType, PgpPublicKey, SimBackend, SimCard, SimOpenPgpCard};
use p256::elliptic_curve::sec1::ToEncodedPoint;

const SIGNATURE: u8 = 1;
const DECRYPTION: u8 = 2;
const AUTHENTICATION: u8 = 3;
const ADMIN_PIN: &str = "12345678";

fn harness_with(card: SimOpenPgpCard) -> (Harness, SimCard) {
    let (backend, card) = SimBackend::with_card(card);
    (Harness::with_backend(backend), card)
}

/// A card with the curves: Ed25519 signature and authentication keys, an
/// X25519 decryption key.
fn curve25519_card() -> SimOpenPgpCard {
    SimOpenPgpCard::new()
        .with_key(KeyRole::Signature, PgpKeyType::Ed25519)
        .with_key(KeyRole::Decryption, PgpKeyType::X25519)
        .with_key(KeyRole::Authentication, PgpKeyType::Ed25519)
}

fn card_key(card: &SimCard, role: KeyRole) -> PgpPublicKey {
    card.with_openpgp(|c| c.public_key(role))
        .unwrap_or_else(|| panic!("no {role:?} key"))
}

fn pw1_tries(card: &SimCard) -> u8 {
    card.with_openpgp(|c| c.pw1_tries_left())
}

fn rw_session(harness: &Harness) -> CK_SESSION_HANDLE {
    open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION)
}

fn logged_in(harness: &Harness) -> CK_SESSION_HANDLE {
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    session
}

fn mechanisms_of(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Vec<CK_MECHANISM_TYPE> {
    attribute(session, key, CKA_ALLOWED_MECHANISMS)
        .unwrap()
        .chunks(std::mem::size_of::<CK_ULONG>())
        .map(as_ulong)
        .collect()
}

/// Signs with an always-authenticate key: C_SignInit, the context-specific
/// login, C_Sign.
fn sign_with_context_login(
    session: CK_SESSION_HANDLE,
    kind: CK_MECHANISM_TYPE,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let mut mech = Mech::new(kind);
    let rv = ck!(C_SignInit(session, mech.ptr(), key));
    if rv != CKR_OK {
        return Err(rv);
    }
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    sign_more(session, data)
}

#[test]
fn token_info_describes_the_openpgp_card() {
    let (harness, _card) = harness_with(SimOpenPgpCard::new().with_serial(0x0102_0304));
    let info = token_info(harness.slot()).expect("C_GetTokenInfo");
    // The cardholder name (DO 5B, "Simulated<<PGP") as people write it.
    assert_eq!(&info.label, &padded::<32>("PGP Simulated"));
    // Manufacturer and serial from the AID, in hex: what OpenSC shows.
    assert_eq!(&info.serialNumber, &padded::<16>("fffe01020304"));
    assert_eq!(&info.model, &padded::<16>("OpenPGP card"));
    let wanted = CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED;
    assert_eq!(info.flags & wanted, wanted);
    // PW1: 6 to 127 bytes (spec v3.4 §4.3).
    assert_eq!((info.ulMinPinLen, info.ulMaxPinLen), (6, 127));
}

#[test]
fn a_card_without_a_cardholder_name_is_an_openpgp_card() {
    let (harness, _card) = harness_with(SimOpenPgpCard::new().with_cardholder_name(""));
    let info = token_info(harness.slot()).unwrap();
    assert_eq!(&info.label, &padded::<32>("OpenPGP card"));
}

#[test]
fn objects_are_the_keys_the_certificate_and_the_signature_counter() {
    let (harness, card) = harness_with(SimOpenPgpCard::new());
    let session = harness.session();
    // Before login: public keys, the AUT certificate, the counter.
    let public: Vec<_> = [SIGNATURE, DECRYPTION, AUTHENTICATION]
        .map(|id| object(session, CKO_PUBLIC_KEY, id))
        .to_vec();
    assert!(find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]).is_empty());
    let certificate = object(session, CKO_CERTIFICATE, AUTHENTICATION);
    assert_eq!(
        attribute(session, certificate, CKA_VALUE).unwrap(),
        card.with_openpgp(|c| c.certificate_der(KeyRole::Authentication).unwrap().to_vec())
    );
    assert!(find(
        session,
        &[
            (CKA_CLASS, ulong(CKO_CERTIFICATE)),
            (CKA_ID, vec![SIGNATURE])
        ]
    )
    .is_empty());
    let labels: Vec<Vec<u8>> = public
        .iter()
        .map(|&key| attribute(session, key, CKA_LABEL).unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            b"Signature key".to_vec(),
            b"Encryption key".to_vec(),
            b"Authentication key".to_vec()
        ]
    );
    let counter = find(session, &[(CKA_CLASS, ulong(CKO_DATA))]);
    assert_eq!(counter.len(), 1);
    assert_eq!(
        attribute(session, counter[0], CKA_LABEL).unwrap(),
        b"Signature counter"
    );
    assert_eq!(attribute(session, counter[0], CKA_VALUE).unwrap(), b"0");

    // After login: the private keys, with what the card lets each do.
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let bool_of = |key, kind| as_bool(&attribute(session, key, kind).unwrap());
    let sig = object(session, CKO_PRIVATE_KEY, SIGNATURE);
    let dec = object(session, CKO_PRIVATE_KEY, DECRYPTION);
    let aut = object(session, CKO_PRIVATE_KEY, AUTHENTICATION);
    assert!(bool_of(sig, CKA_SIGN) && !bool_of(sig, CKA_DECRYPT));
    assert!(bool_of(dec, CKA_DECRYPT) && !bool_of(dec, CKA_SIGN));
    assert!(bool_of(aut, CKA_SIGN) && !bool_of(aut, CKA_DECRYPT));
    // PW1 valid for one signature: the signature key wants the PIN each time.
    assert!(bool_of(sig, CKA_ALWAYS_AUTHENTICATE));
    assert!(!bool_of(dec, CKA_ALWAYS_AUTHENTICATE) && !bool_of(aut, CKA_ALWAYS_AUTHENTICATE));
    // The card pads RSA itself: PKCS#1 v1.5 only, on a DigestInfo.
    assert_eq!(
        mechanisms_of(session, sig),
        [
            CKM_RSA_PKCS,
            CKM_SHA1_RSA_PKCS,
            CKM_SHA224_RSA_PKCS,
            CKM_SHA256_RSA_PKCS,
            CKM_SHA384_RSA_PKCS,
            CKM_SHA512_RSA_PKCS
        ]
    );
    assert_eq!(mechanisms_of(session, dec), [CKM_RSA_PKCS]);
    assert!(mechanisms_of(session, aut).contains(&CKM_ECDSA_SHA256));
    assert_eq!(
        attribute(session, aut, CKA_EC_POINT).unwrap()[2..],
        card_key(&card, KeyRole::Authentication)
            .ecc_point()
            .unwrap()[..]
    );
}

#[test]
fn ed25519_and_x25519_keys_carry_the_pkcs11_3_attributes() {
    let (harness, card) = harness_with(curve25519_card());
    let session = logged_in(&harness);
    for (id, role, key_type, params, mechanism) in [
        (
            SIGNATURE,
            KeyRole::Signature,
            CKK_EC_EDWARDS,
            vec![0x06, 0x03, 0x2B, 0x65, 0x70],
            CKM_EDDSA,
        ),
        (
            DECRYPTION,
            KeyRole::Decryption,
            CKK_EC_MONTGOMERY,
            vec![0x06, 0x03, 0x2B, 0x65, 0x6E],
            CKM_ECDH1_DERIVE,
        ),
    ] {
        let point = card_key(&card, role).ecc_point().unwrap();
        let mut octet_string = vec![0x04, 0x20];
        octet_string.extend_from_slice(&point);
        for class in [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY] {
            let key = object(session, class, id);
            assert_eq!(
                as_ulong(&attribute(session, key, CKA_KEY_TYPE).unwrap()),
                key_type
            );
            // PKCS#11 3.0 §2.3.5/§2.3.7: the curve's OID (RFC 8410) and the
            // point as a DER OCTET STRING of the 32 raw bytes.
            assert_eq!(attribute(session, key, CKA_EC_PARAMS).unwrap(), params);
            assert_eq!(attribute(session, key, CKA_EC_POINT).unwrap(), octet_string);
            assert_eq!(mechanisms_of(session, key), [mechanism]);
        }
    }
    let dec = object(session, CKO_PRIVATE_KEY, DECRYPTION);
    assert!(as_bool(&attribute(session, dec, CKA_DERIVE).unwrap()));
    assert!(!as_bool(&attribute(session, dec, CKA_SIGN).unwrap()));
    let list = mechanism_list(harness.slot());
    assert!(list.contains(&CKM_EDDSA) && list.contains(&CKM_ECDH1_DERIVE));
    assert!(
        !list.contains(&CKM_RSA_PKCS),
        "no RSA key, no RSA mechanism"
    );
}

#[test]
fn signs_with_pso_cds_and_internal_authenticate() {
    let (harness, card) = harness_with(SimOpenPgpCard::new());
    let session = logged_in(&harness);
    let message = b"signed by an OpenPGP card";
    // The signature key (RSA-2048): PSO:CDS after the context login.
    let sig = object(session, CKO_PRIVATE_KEY, SIGNATURE);
    let sig_public = card_key(&card, KeyRole::Signature)
        .to_sim_public_key()
        .unwrap();
    for hash in Hash::ALL {
        let signature = sign_with_context_login(session, hash.rsa_pkcs(), sig, message).unwrap();
        assert!(
            check::rsa_pkcs1(&sig_public, hash, &hash.digest(message), &signature),
            "{hash:?}"
        );
        let public = object(session, CKO_PUBLIC_KEY, SIGNATURE);
        assert_eq!(
            verify(
                session,
                &mut Mech::new(hash.rsa_pkcs()),
                public,
                message,
                &signature
            ),
            CKR_OK
        );
    }
    // The authentication key (P-256): INTERNAL AUTHENTICATE, no extra PIN.
    let aut = object(session, CKO_PRIVATE_KEY, AUTHENTICATION);
    let aut_public = card_key(&card, KeyRole::Authentication)
        .to_sim_public_key()
        .unwrap();
    for hash in Hash::ALL {
        let signature = sign(session, &mut mechanism(hash.ecdsa()), aut, message).unwrap();
        assert!(
            check::ecdsa(&aut_public, &hash.digest(message), &signature),
            "{hash:?}"
        );
    }
    // The card counted the signatures of its signature key only.
    assert_eq!(
        card.with_openpgp(|c| c.signature_counter()),
        Hash::ALL.len() as u32
    );
}

#[test]
fn signs_with_ed25519() {
    use ed25519_dalek::Verifier;
    let (harness, card) = harness_with(curve25519_card());
    let session = logged_in(&harness);
    let PgpPublicKey::Ed25519(public) = card_key(&card, KeyRole::Authentication) else {
        panic!("not Ed25519");
    };
    let aut = object(session, CKO_PRIVATE_KEY, AUTHENTICATION);
    let message = b"PureEdDSA over the whole message";
    let signature = sign(session, &mut mechanism(CKM_EDDSA), aut, message).unwrap();
    assert_eq!(signature.len(), 64);
    let parsed = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    assert!(public.verify(message, &parsed).is_ok());
    // Multi-part too (the module keeps the message: EdDSA hashes it twice).
    let parts = sign_parts(
        session,
        &mut Mech::new(CKM_EDDSA),
        aut,
        &[b"PureEdDSA over ", b"the whole message"],
    )
    .unwrap();
    assert_eq!(parts, signature, "Ed25519 is deterministic");
    // C_Verify in software with the public key object.
    let public_object = object(session, CKO_PUBLIC_KEY, AUTHENTICATION);
    assert_eq!(
        verify(
            session,
            &mut Mech::new(CKM_EDDSA),
            public_object,
            message,
            &signature
        ),
        CKR_OK
    );
    assert_eq!(
        verify(
            session,
            &mut Mech::new(CKM_EDDSA),
            public_object,
            b"other",
            &signature
        ),
        CKR_SIGNATURE_INVALID
    );
    // The signature key signs with PSO:CDS after the context login.
    let sig = object(session, CKO_PRIVATE_KEY, SIGNATURE);
    let PgpPublicKey::Ed25519(sig_public) = card_key(&card, KeyRole::Signature) else {
        panic!("not Ed25519");
    };
    let signature = sign_with_context_login(session, CKM_EDDSA, sig, message).unwrap();
    let parsed = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    assert!(sig_public.verify(message, &parsed).is_ok());
    // ECDSA does not fit an Edwards key.
    assert_eq!(
        sign(session, &mut mechanism(CKM_ECDSA), aut, &[0; 32]).err(),
        Some(CKR_KEY_TYPE_INCONSISTENT)
    );
}

#[test]
fn rsa_pss_oaep_and_raw_rsa_are_not_offered_for_keys_the_card_pads() {
    let (harness, _card) = harness_with(SimOpenPgpCard::new());
    let session = logged_in(&harness);
    let sig = object(session, CKO_PRIVATE_KEY, SIGNATURE);
    let dec = object(session, CKO_PRIVATE_KEY, DECRYPTION);
    for mut mech in [
        Mech::pss(CKM_SHA256_RSA_PKCS_PSS, Hash::Sha256, 32),
        Mech::pss(CKM_RSA_PKCS_PSS, Hash::Sha256, 32),
        Mech::new(CKM_RSA_X_509),
    ] {
        assert_eq!(
            ck!(C_SignInit(session, mech.ptr(), sig)),
            CKR_MECHANISM_INVALID
        );
    }
    for mut mech in [Mech::oaep(Hash::Sha256, b""), Mech::new(CKM_RSA_X_509)] {
        assert_eq!(
            ck!(C_DecryptInit(session, mech.ptr(), dec)),
            CKR_MECHANISM_INVALID
        );
    }
    // Every RSA key on this token pads on the card: the token lists no PSS.
    let list = mechanism_list(harness.slot());
    assert!(list.contains(&CKM_SHA256_RSA_PKCS) && list.contains(&CKM_ECDSA));
    for absent in [
        CKM_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_RSA_X_509,
        CKM_RSA_PKCS_OAEP,
    ] {
        assert!(!list.contains(&absent), "{absent:#x} listed");
    }
    // The decryption key does not sign.
    assert_eq!(
        sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), dec, b"x").err(),
        Some(CKR_KEY_FUNCTION_NOT_PERMITTED)
    );
}

#[test]
fn decrypts_with_pso_decipher() {
    let (harness, card) = harness_with(SimOpenPgpCard::new());
    let session = logged_in(&harness);
    let public = card_key(&card, KeyRole::Decryption)
        .to_sim_public_key()
        .unwrap();
    let ciphertext = check::rsa(&public)
        .encrypt(&mut rand_core(), rsa::Pkcs1v15Encrypt, b"for the card only")
        .unwrap();
    let dec = object(session, CKO_PRIVATE_KEY, DECRYPTION);
    let plain = decrypt(session, &mut Mech::new(CKM_RSA_PKCS), dec, &ciphertext).unwrap();
    assert_eq!(plain, b"for the card only");
    // A cryptogram that is no PKCS#1 v1.5 block for this key.
    let garbage = vec![0x42; ciphertext.len()];
    assert_eq!(
        decrypt(session, &mut Mech::new(CKM_RSA_PKCS), dec, &garbage).err(),
        Some(CKR_ENCRYPTED_DATA_INVALID)
    );
}

/// A source of randomness for the `rsa` crate's padding.
fn rand_core() -> impl rsa::rand_core::CryptoRngCore {
    rsa::rand_core::OsRng
}

#[test]
fn ecdh_with_x25519_makes_a_readable_session_secret() {
    let (harness, card) = harness_with(curve25519_card());
    let session = logged_in(&harness);
    let dec = object(session, CKO_PRIVATE_KEY, DECRYPTION);
    let PgpPublicKey::X25519(card_public) = card_key(&card, KeyRole::Decryption) else {
        panic!("not X25519");
    };
    let peer = x25519_dalek::StaticSecret::from([7u8; 32]);
    let peer_public = x25519_dalek::PublicKey::from(&peer);
    let expected = peer.diffie_hellman(&card_public).to_bytes();

    let secret = derive(session, dec, peer_public.as_bytes(), &secret_template()).unwrap();
    assert_eq!(attribute(session, secret, CKA_VALUE).unwrap(), expected);
    assert_eq!(
        as_ulong(&attribute(session, secret, CKA_CLASS).unwrap()),
        CKO_SECRET_KEY
    );
    assert_eq!(
        as_ulong(&attribute(session, secret, CKA_KEY_TYPE).unwrap()),
        CKK_GENERIC_SECRET
    );
    assert_eq!(
        as_ulong(&attribute(session, secret, CKA_VALUE_LEN).unwrap()),
        32
    );
    assert!(!as_bool(&attribute(session, secret, CKA_TOKEN).unwrap()));
    // A session object: found by its class, destroyed on request.
    assert_eq!(
        find(session, &[(CKA_CLASS, ulong(CKO_SECRET_KEY))]),
        vec![secret]
    );
    assert_eq!(ck!(C_DestroyObject(session, secret)), CKR_OK);
    assert_eq!(
        attribute(session, secret, CKA_VALUE).err(),
        Some(CKR_OBJECT_HANDLE_INVALID)
    );

    // The peer's point wrapped in a DER OCTET STRING works too; CKA_VALUE_LEN
    // keeps the leading bytes.
    let mut wrapped = vec![0x04, 0x20];
    wrapped.extend_from_slice(peer_public.as_bytes());
    let mut template = secret_template();
    template.push((CKA_VALUE_LEN, ulong(16)));
    let short = derive(session, dec, &wrapped, &template).unwrap();
    assert_eq!(
        attribute(session, short, CKA_VALUE).unwrap(),
        expected[..16]
    );

    // A sensitive secret keeps its value to itself.
    let mut template = secret_template();
    template[3] = (CKA_SENSITIVE, vec![CK_TRUE]);
    let hidden = derive(session, dec, peer_public.as_bytes(), &template).unwrap();
    assert_eq!(
        attribute(session, hidden, CKA_VALUE).err(),
        Some(CKR_ATTRIBUTE_SENSITIVE)
    );

    // Closing the session destroys its objects.
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
    let other = harness.session();
    assert!(find(other, &[(CKA_CLASS, ulong(CKO_SECRET_KEY))]).is_empty());
}

#[test]
fn ecdh_with_p256_gives_the_x_coordinate() {
    let (harness, card) =
        harness_with(SimOpenPgpCard::new().with_key(KeyRole::Decryption, PgpKeyType::P256));
    let session = logged_in(&harness);
    let dec = object(session, CKO_PRIVATE_KEY, DECRYPTION);
    let PgpPublicKey::P256(card_public) = card_key(&card, KeyRole::Decryption) else {
        panic!("not P-256");
    };
    let peer = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let peer_point = peer.public_key().to_encoded_point(false);
    let card_point =
        p256::PublicKey::from_sec1_bytes(card_public.to_encoded_point(false).as_bytes()).unwrap();
    let expected = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), card_point.as_affine());
    let secret = derive(session, dec, peer_point.as_bytes(), &secret_template()).unwrap();
    assert_eq!(
        attribute(session, secret, CKA_VALUE).unwrap(),
        expected.raw_secret_bytes().to_vec()
    );
    // A point that is not on the card's curve never makes a key.
    assert_eq!(
        derive(session, dec, &[0x04; 33], &secret_template()).err(),
        Some(CKR_MECHANISM_PARAM_INVALID)
    );
}

#[test]
fn derive_refuses_what_it_cannot_do() {
    let (harness, _card) = harness_with(curve25519_card());
    let session = harness.session();
    let point = [9u8; 32];
    // Private keys are hidden before login; log in through another session.
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let dec = object(session, CKO_PRIVATE_KEY, DECRYPTION);
    let aut = object(session, CKO_PRIVATE_KEY, AUTHENTICATION);
    // A token object cannot come out of C_DeriveKey, nor a given value.
    let mut token = secret_template();
    token[0] = (CKA_TOKEN, vec![CK_TRUE]);
    assert_eq!(
        derive(session, dec, &point, &token).err(),
        Some(CKR_TEMPLATE_INCONSISTENT)
    );
    let mut valued = secret_template();
    valued.push((CKA_VALUE, vec![1; 32]));
    assert_eq!(
        derive(session, dec, &point, &valued).err(),
        Some(CKR_TEMPLATE_INCONSISTENT)
    );
    let mut too_long = secret_template();
    too_long.push((CKA_VALUE_LEN, ulong(33)));
    assert_eq!(
        derive(session, dec, &point, &too_long).err(),
        Some(CKR_TEMPLATE_INCONSISTENT)
    );
    // An Edwards key does not agree on keys.
    assert_eq!(
        derive(session, aut, &point, &secret_template()).err(),
        Some(CKR_KEY_TYPE_INCONSISTENT)
    );
    // Logged out: no key agreement (and no APDU).
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    let public = object(session, CKO_PUBLIC_KEY, DECRYPTION);
    assert_eq!(
        derive(session, public, &point, &secret_template()).err(),
        Some(CKR_KEY_TYPE_INCONSISTENT)
    );
    // Token objects cannot be destroyed.
    assert_eq!(ck!(C_DestroyObject(session, public)), CKR_ACTION_PROHIBITED);
}

#[test]
fn the_signature_counter_object_follows_the_signatures() {
    let (harness, card) = harness_with(SimOpenPgpCard::new().with_signature_counter(41));
    let session = logged_in(&harness);
    let counter = find(session, &[(CKA_CLASS, ulong(CKO_DATA))])[0];
    assert_eq!(attribute(session, counter, CKA_VALUE).unwrap(), b"41");
    let sig = object(session, CKO_PRIVATE_KEY, SIGNATURE);
    sign_with_context_login(session, CKM_SHA256_RSA_PKCS, sig, b"one").unwrap();
    assert_eq!(attribute(session, counter, CKA_VALUE).unwrap(), b"42");
    // The authentication key's signatures are not counted.
    let aut = object(session, CKO_PRIVATE_KEY, AUTHENTICATION);
    sign(session, &mut mechanism(CKM_ECDSA_SHA256), aut, b"two").unwrap();
    assert_eq!(attribute(session, counter, CKA_VALUE).unwrap(), b"42");
    assert_eq!(card.with_openpgp(|c| c.signature_counter()), 42);
    // Read-only.
    let mut value = *b"99";
    let mut template = [CK_ATTRIBUTE {
        type_: CKA_VALUE,
        pValue: value.as_mut_ptr() as *mut _,
        ulValueLen: 2,
    }];
    assert_ne!(
        ck!(C_SetAttributeValue(
            session,
            counter,
            template.as_mut_ptr(),
            1
        )),
        CKR_OK
    );
}

#[test]
fn the_signature_key_wants_the_pin_before_every_signature_when_pw1_lasts_one() {
    let (harness, card) = harness_with(SimOpenPgpCard::new());
    let session = logged_in(&harness);
    // C_Login verified PW1 for decryption and authentication (82) only.
    assert!(card.with_openpgp(|c| c.pw1_verified() && !c.pw1_verified_for_signing()));
    let sig = object(session, CKO_PRIVATE_KEY, SIGNATURE);
    let mut mech = Mech::new(CKM_SHA256_RSA_PKCS);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), sig)), CKR_OK);
    // Without the context-specific login, C_Sign refuses, and the refusal
    // ends the operation (PKCS#11 3.0 §5.13).
    assert_eq!(
        sign_more(session, b"data").err(),
        Some(CKR_USER_NOT_LOGGED_IN)
    );
    assert_eq!(
        login(session, CKU_CONTEXT_SPECIFIC, PIN),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), sig)), CKR_OK);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    assert!(sign_more(session, b"data").is_ok());
    // Each signature needs its own.
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), sig)), CKR_OK);
    assert_eq!(
        sign_more(session, b"again").err(),
        Some(CKR_USER_NOT_LOGGED_IN)
    );
}

#[test]
fn login_unlocks_the_signature_key_too_when_pw1_lasts_for_several_signatures() {
    let (harness, card) =
        harness_with(SimOpenPgpCard::new().with_pw1_valid_for_several_signatures(true));
    let session = logged_in(&harness);
    // C_Login verified PW1 in both modes (82, then 81).
    assert!(card.with_openpgp(|c| c.pw1_verified() && c.pw1_verified_for_signing()));
    let sig = object(session, CKO_PRIVATE_KEY, SIGNATURE);
    assert!(!as_bool(
        &attribute(session, sig, CKA_ALWAYS_AUTHENTICATE).unwrap()
    ));
    let public = card_key(&card, KeyRole::Signature)
        .to_sim_public_key()
        .unwrap();
    for data in [&b"first"[..], b"second"] {
        let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), sig, data).unwrap();
        assert!(check::rsa_pkcs1(
            &public,
            Hash::Sha256,
            &Hash::Sha256.digest(data),
            &signature
        ));
    }
    // C_Logout resets both modes on the card.
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert!(card.with_openpgp(|c| !c.pw1_verified() && !c.pw1_verified_for_signing()));
}

#[test]
fn wrong_pins_count_down_and_show_in_the_token_flags() {
    let (harness, card) = harness_with(SimOpenPgpCard::new());
    let slot = harness.slot();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "654321"), CKR_PIN_INCORRECT);
    assert_eq!(pw1_tries(&card), 2);
    assert_ne!(token_flags(slot) & CKF_USER_PIN_COUNT_LOW, 0);
    assert_eq!(login(session, CKU_USER, "654321"), CKR_PIN_INCORRECT);
    assert_ne!(token_flags(slot) & CKF_USER_PIN_FINAL_TRY, 0);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    assert_eq!(pw1_tries(&card), 3);
    // Too short for PW1: refused before any APDU.
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    card.clear_log();
    assert_eq!(login(session, CKU_USER, "12345"), CKR_PIN_LEN_RANGE);
    assert_eq!(card.apdu_count(), 0);
}

#[test]
fn c_setpin_changes_pw1() {
    let (harness, card) = harness_with(SimOpenPgpCard::new());
    let session = rw_session(&harness);
    let (old, new) = (PIN.as_bytes(), b"24681357");
    assert_eq!(
        ck!(C_SetPIN(
            session,
            old.as_ptr() as *mut u8,
            old.len() as CK_ULONG,
            new.as_ptr() as *mut u8,
            new.len() as CK_ULONG
        )),
        CKR_OK
    );
    assert_eq!(login(session, CKU_USER, PIN), CKR_PIN_INCORRECT);
    assert_eq!(login(session, CKU_USER, "24681357"), CKR_OK);
    assert!(card.with_openpgp(|c| c.pw1_verified()));
}

/// Blocks PW1 by logging in with a wrong PIN until the card says so.
fn block_pw1(session: CK_SESSION_HANDLE, card: &SimCard) {
    while pw1_tries(card) > 0 {
        let rv = login(session, CKU_USER, "000000");
        assert!(rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED, "{rv:#x}");
    }
    assert_eq!(login(session, CKU_USER, PIN), CKR_PIN_LOCKED);
}

fn init_pin(session: CK_SESSION_HANDLE, pin: &str) -> CK_RV {
    ck!(C_InitPIN(
        session,
        pin.as_ptr() as *mut u8,
        pin.len() as CK_ULONG
    ))
}

#[test]
fn the_admin_pin_unblocks_pw1_through_so_login_and_c_initpin() {
    let (harness, card) = harness_with(SimOpenPgpCard::new());
    let session = rw_session(&harness);
    block_pw1(session, &card);
    assert_ne!(token_flags(harness.slot()) & CKF_USER_PIN_LOCKED, 0);
    // No Resetting Code on this card: the SO credential is PW3.
    assert_eq!(login(session, CKU_SO, ADMIN_PIN), CKR_OK);
    assert_eq!(init_pin(session, "135792"), CKR_OK);
    assert_eq!(pw1_tries(&card), 3);
    // PW3's verified state does not outlive the unblocking.
    assert!(card.with_openpgp(|c| !c.pw3_verified()));
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert_eq!(token_flags(harness.slot()) & CKF_USER_PIN_LOCKED, 0);
    assert_eq!(login(session, CKU_USER, "135792"), CKR_OK);

    // A wrong Admin PIN is reported by C_InitPIN and costs a PW3 try.
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert_eq!(login(session, CKU_SO, "87654321"), CKR_OK);
    assert_eq!(init_pin(session, "135792"), CKR_PIN_INCORRECT);
    assert_eq!(card.with_openpgp(|c| c.pw3_tries_left()), 2);
}

#[test]
fn the_resetting_code_unblocks_pw1_when_the_card_has_one() {
    let (harness, card) = harness_with(SimOpenPgpCard::new().with_resetting_code("RC-12345", 3));
    let session = rw_session(&harness);
    block_pw1(session, &card);
    assert_eq!(login(session, CKU_SO, "RC-12345"), CKR_OK);
    assert_eq!(init_pin(session, "112233"), CKR_OK);
    assert_eq!(pw1_tries(&card), 3);
    // The Admin PIN was not involved.
    assert_eq!(card.with_openpgp(|c| c.pw3_tries_left()), 3);
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert_eq!(login(session, CKU_USER, "112233"), CKR_OK);
}

#[test]
fn loading_the_token_costs_a_dozen_apdus() {
    let (harness, card) = harness_with(SimOpenPgpCard::new());
    card.clear_log();
    token_info(harness.slot()).unwrap();
    let ins = instructions(&card);
    // The simulated card's ATR is in no profile: SELECT PIV (6A82), SELECT
    // OpenPGP; then GET DATA 6E, three public keys (47), SELECT DATA and the
    // three 7F21 occurrences (CA, CC, CC), the name (5B), the counter (7A).
    assert_eq!(
        ins,
        [0xA4, 0xA4, 0xCA, 0x47, 0x47, 0x47, 0xA5, 0xCA, 0xCC, 0xCC, 0xCA, 0xCA],
        "{}",
        card.transcript()
    );
    // Listing the objects adds no APDU.
    card.clear_log();
    let session = harness.session();
    find(session, &[]);
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
}

// ----- cards that do not behave ------------------------------------------------

/// Everything a consumer does, on a card that takes short APDUs only: the
/// RSA-2048 cryptogram (257 bytes with its padding indicator) goes in two
/// chained commands, and long answers come back through GET RESPONSE.
#[test]
fn a_short_apdu_card_works_with_chaining_and_get_response() {
    let (harness, card) = harness_with(SimOpenPgpCard::new().short_apdus_only());
    let session = logged_in(&harness);
    let public = card_key(&card, KeyRole::Decryption)
        .to_sim_public_key()
        .unwrap();
    let ciphertext = check::rsa(&public)
        .encrypt(&mut rand_core(), rsa::Pkcs1v15Encrypt, b"chained")
        .unwrap();
    let dec = object(session, CKO_PRIVATE_KEY, DECRYPTION);
    card.clear_log();
    let plain = decrypt(session, &mut Mech::new(CKM_RSA_PKCS), dec, &ciphertext).unwrap();
    assert_eq!(plain, b"chained");
    let chained = card.log().iter().any(|entry| entry.command[0] == 0x10);
    assert!(chained, "no command chaining:\n{}", card.transcript());
    let sig = object(session, CKO_PRIVATE_KEY, SIGNATURE);
    let signature = sign_with_context_login(session, CKM_SHA512_RSA_PKCS, sig, b"long").unwrap();
    let sig_public = card_key(&card, KeyRole::Signature)
        .to_sim_public_key()
        .unwrap();
    assert!(check::rsa_pkcs1(
        &sig_public,
        Hash::Sha512,
        &Hash::Sha512.digest(b"long"),
        &signature
    ));
}

#[test]
fn responses_in_61xx_pieces_and_exact_le_demands_still_give_the_same_token() {
    for chunks in [Some(16), None] {
        let (harness, card) = harness_with(SimOpenPgpCard::new().short_apdus_only());
        card.misbehave(|m| {
            m.chunk_responses = chunks;
            m.exact_le_get_data = chunks.is_none();
        });
        let session = logged_in(&harness);
        let certificate = object(session, CKO_CERTIFICATE, AUTHENTICATION);
        assert_eq!(
            attribute(session, certificate, CKA_VALUE).unwrap(),
            card.with_openpgp(|c| c.certificate_der(KeyRole::Authentication).unwrap().to_vec())
        );
        let aut = object(session, CKO_PRIVATE_KEY, AUTHENTICATION);
        let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), aut, b"pieces").unwrap();
        let public = card_key(&card, KeyRole::Authentication)
            .to_sim_public_key()
            .unwrap();
        assert!(check::ecdsa(
            &public,
            &Hash::Sha256.digest(b"pieces"),
            &signature
        ));
    }
}

/// One-shot faults of the simulated card, for the command with INS
/// `target`: garbage, no status word, data cut short, a refusal (6F00).
fn fault(index: usize, target: u8) -> impl FnOnce(&mut p11card_cardsim::Misbehaviour) + Send {
    use p11card_cardsim::Truncation;
    move |m| match index {
        0 => m.garbage_next = Some(vec![0x6E, 0x81, 0x90, 0x00]),
        1 => m.truncate_next = Some(Truncation::DropStatusWord),
        2 => m.truncate_next = Some(Truncation::DropDataBytes(7)),
        _ => m.fail_next = vec![(target, 0x6F00)],
    }
}

/// Garbage, truncated or refused answers while the token is read give an
/// error code (never a panic, never a half-read token), and the next call
/// reads the card again.
#[test]
fn a_garbled_answer_while_reading_the_card_is_an_error_and_then_recovers() {
    // GET DATA 6E, the first public key, the certificate, the name.
    for target in [0xCA, 0x47, 0xA5, 0xCC] {
        for index in 0..4 {
            let (harness, card, wire) = Harness::with_tripwire(SimOpenPgpCard::new());
            wire.arm(&card, ins(target), fault(index, target));
            let slot = harness.slot();
            match token_info(slot) {
                Ok(info) => {
                    // Only a fault in an optional part may leave a token,
                    // and then a complete one.
                    assert!(matches!(target, 0xA5 | 0xCC), "{target:02X}/{index}");
                    assert_eq!(&info.label, &padded::<32>("PGP Simulated"));
                }
                Err(rv) => assert!(
                    matches!(rv, CKR_DEVICE_ERROR | CKR_TOKEN_NOT_RECOGNIZED),
                    "{target:02X}/{index}: {rv:#x}"
                ),
            }
            assert!(wire.fired(), "{target:02X}/{index}");
            // The card behaves again: the token is all there.
            let info =
                token_info(slot).unwrap_or_else(|rv| panic!("{target:02X}/{index}: {rv:#x}"));
            assert_eq!(&info.label, &padded::<32>("PGP Simulated"));
            let session = logged_in(&harness);
            assert_eq!(
                find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]).len(),
                3
            );
            assert_eq!(
                find(session, &[(CKA_CLASS, ulong(CKO_CERTIFICATE))]).len(),
                1
            );
        }
    }
}
