//! A PKCS#15 card through the C ABI: the simulated MyEID card personalised
//! by OpenSC's `pkcs15-init` (tests/realstack/pkcs15/), so the files the
//! engine reads were written by an independent implementation. Token info
//! from EF.TokenInfo, the keys of the PrKDF with their certificates from
//! the CDF, the user PIN as the AODF describes it, signatures (RSA PKCS#1
//! v1.5 and PSS with a raw block, ECDSA) and RSA decryption through MSE:SET
//! and PSO, and the APDUs a cold enumeration costs.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimBackend, SimCard, SimMyEidCard, SimPublicKey};

const IMAGE: &str = include_str!("../../tests/realstack/pkcs15/myeid-personalised.image");
/// The user PIN's reference (pkcs15-init's MyEID profile).
const USER_PIN: u8 = 1;
const RSA_KEY: u8 = 1;
const EC_KEY: u8 = 2;
/// The EC key pkcs15-init generated with usage keyAgreement.
const ECDH_KEY: u8 = 5;

fn harness() -> (Harness, SimCard) {
    let card = SimMyEidCard::from_image(IMAGE).expect("the personalised image loads");
    let (backend, card) = SimBackend::with_card(card);
    (Harness::with_backend(backend), card)
}

/// The public key of the key with iD `id` (pkcs15-init put the keys in the
/// key files 4B01, 4B02, 4B03 in the order it generated them).
fn card_key(card: &SimCard, id: u8) -> SimPublicKey {
    let number = match id {
        RSA_KEY => 1,
        EC_KEY => 2,
        ECDH_KEY => 3,
        _ => panic!("no key {id}"),
    };
    let file = format!("3F0050154B0{number}");
    card.with_applet(|applet| {
        applet
            .as_myeid_mut()
            .expect("a MyEID card")
            .public_keys()
            .into_iter()
            .find(|(path, _)| *path == file)
            .map(|(_, key)| key)
            .expect("the key file holds a key")
    })
}

fn user_pin_tries(card: &SimCard) -> u8 {
    card.with_applet(|applet| {
        applet
            .as_myeid_mut()
            .and_then(|c| c.pin_tries_left(USER_PIN))
            .expect("the user PIN exists")
    })
}

fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).trim_end().to_owned()
}

#[test]
fn token_info_comes_from_ef_tokeninfo() {
    let (harness, _card) = harness();
    let info = token_info(harness.slot()).unwrap();
    // pkcs15-init wrote the label it was given and the card's serial.
    assert_eq!(text(&info.label), "p11card MyEID");
    // The TokenInfo serial (10 bytes, in hex), cut to the 16 characters of
    // CK_TOKEN_INFO.serialNumber.
    assert_eq!(text(&info.serialNumber), "0000000000123456");
    assert_eq!(text(&info.model), "MyEID");
    assert_ne!(info.flags & CKF_LOGIN_REQUIRED, 0);
}

#[test]
fn keys_certificates_and_public_keys_share_the_pkcs15_id() {
    let (harness, card) = harness();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    for (class, count) in [
        (CKO_PRIVATE_KEY, 3),
        (CKO_PUBLIC_KEY, 3),
        (CKO_CERTIFICATE, 3),
    ] {
        assert_eq!(
            find(session, &[(CKA_CLASS, ulong(class))]).len(),
            count,
            "objects of class {class}"
        );
    }
    // The labels pkcs15-init wrote in the PrKDF.
    for (id, label) in [
        (RSA_KEY, "MyEID RSA"),
        (EC_KEY, "MyEID EC"),
        (ECDH_KEY, "MyEID ECDH"),
    ] {
        let private = object(session, CKO_PRIVATE_KEY, id);
        let public = object(session, CKO_PUBLIC_KEY, id);
        let certificate = object(session, CKO_CERTIFICATE, id);
        for handle in [private, public, certificate] {
            assert_eq!(
                attribute(session, handle, CKA_LABEL).unwrap(),
                label.as_bytes()
            );
        }
        // The certificate is the one of the card's key, read whole and no
        // more (its DER header gave the length).
        let der = attribute(session, certificate, CKA_VALUE).unwrap();
        let spki = card_key(&card, id).to_spki_der();
        assert!(
            der.windows(spki.len()).any(|w| w == spki),
            "certificate {id} holds the card's key"
        );
    }
    let rsa = object(session, CKO_PRIVATE_KEY, RSA_KEY);
    assert_eq!(
        as_ulong(&attribute(session, rsa, CKA_KEY_TYPE).unwrap()),
        CKK_RSA
    );
    assert!(as_bool(&attribute(session, rsa, CKA_SIGN).unwrap()));
    assert!(as_bool(&attribute(session, rsa, CKA_DECRYPT).unwrap()));
    let ec = object(session, CKO_PRIVATE_KEY, EC_KEY);
    assert_eq!(
        as_ulong(&attribute(session, ec, CKA_KEY_TYPE).unwrap()),
        CKK_EC
    );
    assert!(as_bool(&attribute(session, ec, CKA_SIGN).unwrap()));
    assert!(!as_bool(&attribute(session, ec, CKA_DECRYPT).unwrap()));
}

#[test]
fn login_takes_the_pin_the_aodf_describes_and_a_wrong_one_costs_one_try() {
    let (harness, card) = harness();
    let session = harness.session();
    let before = user_pin_tries(&card);
    assert_eq!(login(session, CKU_USER, "654321"), CKR_PIN_INCORRECT);
    assert_eq!(user_pin_tries(&card), before - 1);
    // A PIN the AODF's lengths exclude spends no try.
    assert_eq!(login(session, CKU_USER, "123456789"), CKR_PIN_LEN_RANGE);
    assert_eq!(user_pin_tries(&card), before - 1);
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    assert_eq!(user_pin_tries(&card), before);
}

#[test]
fn rsa_signatures_with_a_raw_block_verify_with_the_certificate_key() {
    let (harness, card) = harness();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let key = object(session, CKO_PRIVATE_KEY, RSA_KEY);
    let public = card_key(&card, RSA_KEY);
    let message = b"signed by a PKCS#15 card";
    let hash = Hash::Sha256.digest(message);

    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, message).unwrap();
    assert!(check::rsa_pkcs1(&public, Hash::Sha256, &hash, &signature));

    let mut pss = Mech::pss(CKM_SHA256_RSA_PKCS_PSS, Hash::Sha256, 32);
    let signature = sign(session, pss.raw(), key, message).unwrap();
    assert!(check::rsa_pss(&public, Hash::Sha256, 32, &hash, &signature));
}

#[test]
fn ecdsa_signature_verifies_with_the_certificate_key() {
    let (harness, card) = harness();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let key = object(session, CKO_PRIVATE_KEY, EC_KEY);
    let hash = Hash::Sha256.digest(b"an EC key on a PKCS#15 card");
    let signature = sign(session, &mut mechanism(CKM_ECDSA), key, &hash)
        .unwrap_or_else(|rv| panic!("{rv:#x}\n{}", card.transcript()));
    assert_eq!(signature.len(), 64);
    assert!(check::ecdsa(&card_key(&card, EC_KEY), &hash, &signature));
}

#[test]
fn rsa_decryption_through_pso_decipher() {
    let (harness, card) = harness();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let key = object(session, CKO_PRIVATE_KEY, RSA_KEY);
    let public = card_key(&card, RSA_KEY);
    let ciphertext = check::rsa(&public)
        .encrypt(
            &mut rsa::rand_core::OsRng,
            rsa::Pkcs1v15Encrypt,
            b"for the card only",
        )
        .unwrap();
    let plain = decrypt(session, &mut Mech::new(CKM_RSA_PKCS), key, &ciphertext).unwrap();
    assert_eq!(plain, b"for the card only");
}

#[test]
fn ecdh_with_the_key_agreement_key_gives_the_secret_of_its_public_key() {
    let (harness, card) = harness();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let key = object(session, CKO_PRIVATE_KEY, ECDH_KEY);
    // The PrKDF's usage: derive for key 05, sign only for key 02.
    assert!(as_bool(&attribute(session, key, CKA_DERIVE).unwrap()));
    assert!(!as_bool(&attribute(session, key, CKA_SIGN).unwrap()));
    let sign_only = object(session, CKO_PRIVATE_KEY, EC_KEY);
    assert!(!as_bool(
        &attribute(session, sign_only, CKA_DERIVE).unwrap()
    ));

    let peer = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let peer_point = p256::EncodedPoint::from(peer.public_key());
    let SimPublicKey::P256(card_public) = card_key(&card, ECDH_KEY) else {
        panic!("key 05 is P-256");
    };
    let expected = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), card_public.as_affine());
    let secret = derive(session, key, peer_point.as_bytes(), &secret_template())
        .unwrap_or_else(|rv| panic!("{rv:#x}\n{}", card.transcript()));
    assert_eq!(
        attribute(session, secret, CKA_VALUE).unwrap(),
        expected.raw_secret_bytes().to_vec()
    );
    // The sign-only key refuses before any APDU.
    card.clear_log();
    assert_eq!(
        derive(
            session,
            sign_only,
            peer_point.as_bytes(),
            &secret_template()
        )
        .err(),
        Some(CKR_KEY_FUNCTION_NOT_PERMITTED)
    );
    assert_eq!(card.apdu_count(), 0);
}

#[test]
fn a_cold_enumeration_costs_at_most_half_of_opensc_apdus() {
    let (harness, card) = harness();
    // pkcs11-tool -L -O: token info, then every object with its attributes.
    let session = harness.session();
    token_info(harness.slot()).unwrap();
    for handle in find(session, &[]) {
        for kind in [CKA_CLASS, CKA_ID, CKA_LABEL, CKA_VALUE] {
            let _ = attribute(session, handle, kind);
        }
    }
    let enumeration = card.apdu_count();
    println!("cold enumeration: {enumeration} APDUs (OpenSC: 62)");
    assert!(enumeration <= 31, "{enumeration} APDUs");

    card.clear_log();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let login_apdus = card.apdu_count();
    card.clear_log();
    let key = object(session, CKO_PRIVATE_KEY, EC_KEY);
    let hash = Hash::Sha256.digest(b"count");
    sign(session, &mut mechanism(CKM_ECDSA), key, &hash).unwrap();
    let sign_apdus = card.apdu_count();
    println!("login: {login_apdus} APDUs, ECDSA signature: {sign_apdus} APDUs");
    println!("{}", card.transcript());
}

#[test]
fn a_certificate_whose_header_lies_costs_its_key_not_the_token() {
    // The RSA certificate's header (file 4301) claims 32 KiB; the file
    // holds far less.
    let line = IMAGE
        .lines()
        .find(|line| line.starts_with("file 3F00/5015/4301 "))
        .expect("the image has the RSA certificate");
    let header = &line[line.find("data=").expect("file data") + 5..][..8];
    let image = IMAGE.replacen(&format!("data={header}"), "data=30827FF0", 1);
    assert_ne!(image, IMAGE);
    let card = SimMyEidCard::from_image(&image).expect("the altered image loads");
    let (backend, card) = SimBackend::with_card(card);
    let harness = Harness::with_backend(backend);
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let keys = find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]);
    assert_eq!(
        keys,
        [
            object(session, CKO_PRIVATE_KEY, EC_KEY),
            object(session, CKO_PRIVATE_KEY, ECDH_KEY)
        ]
    );
    // The read stopped at the file's end.
    assert!(card.apdu_count() <= 31, "{}", card.transcript());
}
