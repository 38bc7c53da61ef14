//! A PKCS#15 card through the C ABI: the simulated MyEID card personalised
//! by OpenSC's `pkcs15-init` (tests/realstack/pkcs15/), so the files the
//! engine reads were written by an independent implementation. Token info
//! from EF.TokenInfo, the keys of the PrKDF with their certificates from
//! the CDF, the user PIN as the AODF describes it, signatures (RSA PKCS#1
//! v1.5 and PSS with a raw block, ECDSA) and RSA decryption through MSE:SET
//! and PSO, the non-repudiation key behind a signature PIN of its own
//! (always-authenticate, its PIN through the context-specific login), the
//! DODF's data objects, and the APDUs a cold enumeration costs.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimBackend, SimCard, SimMyEidCard, SimPublicKey};

const IMAGE: &str = include_str!("../../tests/realstack/pkcs15/myeid-personalised.image");
/// The user PIN's reference (pkcs15-init's MyEID profile).
const USER_PIN: u8 = 1;
/// The signature PIN's reference (auth ID 02, the next free one).
const SIGNATURE_PIN: u8 = 2;
const RSA_KEY: u8 = 1;
const EC_KEY: u8 = 2;
/// The non-repudiation key (P-256) behind the signature PIN.
const SIGNATURE_KEY: u8 = 3;
/// An RSA-2048 key without a certificate (its public key in the PuKDF).
const BARE_KEY: u8 = 4;
/// The EC key pkcs15-init generated with usage keyAgreement.
const ECDH_KEY: u8 = 5;

fn harness() -> (Harness, SimCard) {
    let card = SimMyEidCard::from_image(IMAGE).expect("the personalised image loads");
    let (backend, card) = SimBackend::with_card(card);
    (Harness::with_backend(backend), card)
}

/// The public key of the key with iD `id` (pkcs15-init put the keys in the
/// key files 4B01..4B05 in the order it generated them: that of their iDs).
fn card_key(card: &SimCard, id: u8) -> SimPublicKey {
    let file = format!("3F0050154B{id:02X}");
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
    pin_tries(card, USER_PIN)
}

fn pin_tries(card: &SimCard, reference: u8) -> u8 {
    card.with_applet(|applet| {
        applet
            .as_myeid_mut()
            .and_then(|c| c.pin_tries_left(reference))
            .expect("the PIN exists")
    })
}

fn pin_verified(card: &SimCard, reference: u8) -> bool {
    card.with_applet(|applet| {
        applet
            .as_myeid_mut()
            .expect("a MyEID card")
            .pin_verified(reference)
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
        (CKO_PRIVATE_KEY, 6),
        (CKO_PUBLIC_KEY, 6),
        // The keys' four (key 04 has none) and the CA's.
        (CKO_CERTIFICATE, 5),
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
        (SIGNATURE_KEY, "MyEID signature"),
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
    // pkcs11-tool -O (what suite-pkcs15-opensc.sh counts for both
    // modules): every object with its attributes (a data object's without
    // its value).
    let session = harness.session();
    for handle in find(session, &[]) {
        let class = as_ulong(&attribute(session, handle, CKA_CLASS).unwrap());
        for kind in [CKA_ID, CKA_LABEL, CKA_APPLICATION, CKA_VALUE] {
            if class != CKO_DATA || kind != CKA_VALUE {
                let _ = attribute(session, handle, kind);
            }
        }
    }
    let enumeration = card.apdu_count();
    println!("cold enumeration: {enumeration} APDUs (OpenSC: 80)");
    assert!(
        enumeration <= 40,
        "{enumeration} APDUs\n{}",
        card.transcript()
    );

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

/// A certificate that cannot be read costs the key its certificate, not
/// the token nor the key: its public key comes from the PuKDF.
#[test]
fn a_certificate_whose_header_lies_costs_its_certificate_not_the_key() {
    // The RSA certificate's header claims 32 KiB; the file holds less.
    let header = IMAGE
        .split("file 3F00/5015/4301 ")
        .nth(1)
        .and_then(|line| line.split("data=").nth(1))
        .map(|data| data[..8].to_owned())
        .expect("the RSA certificate's file");
    assert!(header.starts_with("3082"), "{header}");
    let image = IMAGE.replacen(&format!("data={header}"), "data=30827FF0", 1);
    let card = SimMyEidCard::from_image(&image).expect("the altered image loads");
    let (backend, card) = SimBackend::with_card(card);
    let harness = Harness::with_backend(backend);
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let keys = find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]);
    assert_eq!(keys.len(), 6);
    assert!(find(
        session,
        &[(CKA_CLASS, ulong(CKO_CERTIFICATE)), (CKA_ID, vec![RSA_KEY])]
    )
    .is_empty());
    let key = object(session, CKO_PRIVATE_KEY, RSA_KEY);
    let message = b"still signs";
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, message).unwrap();
    assert!(check::rsa_pkcs1(
        &card_key(&card, RSA_KEY),
        Hash::Sha256,
        &Hash::Sha256.digest(message),
        &signature
    ));
}

/// The non-repudiation key names the signature PIN (auth ID 02), not the
/// user PIN: it wants its own PIN before every use.
#[test]
fn the_signature_pin_key_is_always_authenticate_and_the_others_are_not() {
    let (harness, _card) = harness();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    for (id, always) in [(RSA_KEY, false), (EC_KEY, false), (SIGNATURE_KEY, true)] {
        let key = object(session, CKO_PRIVATE_KEY, id);
        assert_eq!(
            as_bool(&attribute(session, key, CKA_ALWAYS_AUTHENTICATE).unwrap()),
            always,
            "key {id}"
        );
    }
    let key = object(session, CKO_PRIVATE_KEY, SIGNATURE_KEY);
    assert!(as_bool(&attribute(session, key, CKA_SIGN).unwrap()));
    assert!(!as_bool(&attribute(session, key, CKA_DECRYPT).unwrap()));
}

/// C_Login(USER) with the user PIN, C_SignInit, C_Login(CONTEXT_SPECIFIC)
/// with the signature PIN (VERIFY of reference 2), C_Sign; the card
/// forgets the signature PIN after the signature, the user PIN stays.
#[test]
fn the_signature_key_signs_after_the_context_login_with_its_own_pin() {
    let (harness, card) = harness();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let key = object(session, CKO_PRIVATE_KEY, SIGNATURE_KEY);
    let hash = Hash::Sha256.digest(b"I sign this, non-repudiably");
    let mut mech = mechanism(CKM_ECDSA);
    assert_eq!(ck!(C_SignInit(session, &mut mech, key)), CKR_OK);
    card.clear_log();
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, "654321"), CKR_OK);
    let signature =
        sign_more(session, &hash).unwrap_or_else(|rv| panic!("{rv:#x}\n{}", card.transcript()));
    assert!(check::ecdsa(
        &card_key(&card, SIGNATURE_KEY),
        &hash,
        &signature
    ));
    let transcript = card.transcript();
    assert!(
        card.log()
            .iter()
            .any(|e| e.command.get(1..4) == Some(&[0x20, 0x00, SIGNATURE_PIN][..])),
        "VERIFY of the signature PIN:\n{transcript}"
    );
    assert!(!pin_verified(&card, SIGNATURE_PIN), "{transcript}");
    assert!(pin_verified(&card, USER_PIN), "{transcript}");
    // The everyday keys still sign on the user login.
    let ec = object(session, CKO_PRIVATE_KEY, EC_KEY);
    sign(session, &mut mechanism(CKM_ECDSA), ec, &hash).unwrap();
    // The next signature wants the signature PIN again.
    assert_eq!(
        sign(session, &mut mechanism(CKM_ECDSA), key, &hash),
        Err(CKR_USER_NOT_LOGGED_IN)
    );
}

/// Without the context login the signature is refused before any APDU
/// reaches the key, and the operation ends (PKCS#11 3.0 §5.13).
#[test]
fn the_signature_key_refuses_without_the_context_login() {
    let (harness, card) = harness();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let key = object(session, CKO_PRIVATE_KEY, SIGNATURE_KEY);
    let hash = Hash::Sha256.digest(b"no consent given");
    card.clear_log();
    assert_eq!(
        sign(session, &mut mechanism(CKM_ECDSA), key, &hash),
        Err(CKR_USER_NOT_LOGGED_IN)
    );
    assert!(
        !card.log().iter().any(|e| e.command.get(1) == Some(&0x2A)),
        "PSO without the signature PIN:\n{}",
        card.transcript()
    );
    assert_eq!(
        login(session, CKU_CONTEXT_SPECIFIC, "654321"),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // The user PIN is not the signature PIN: as a context login it is
    // refused by the card (and costs a try of the signature PIN only).
    let mut mech = mechanism(CKM_ECDSA);
    assert_eq!(ck!(C_SignInit(session, &mut mech, key)), CKR_OK);
    assert_eq!(
        login(session, CKU_CONTEXT_SPECIFIC, "123456"),
        CKR_PIN_INCORRECT
    );
    assert_eq!(pin_tries(&card, SIGNATURE_PIN), 2);
    assert_eq!(user_pin_tries(&card), 3);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, "654321"), CKR_OK);
    assert_eq!(pin_tries(&card, SIGNATURE_PIN), 3);
    sign_more(session, &hash).unwrap();
}

/// A wrong signature PIN costs one try of the signature PIN and none of
/// the user PIN; the token's user-PIN flags do not change.
#[test]
fn a_wrong_signature_pin_costs_one_try_of_that_pin_only() {
    let (harness, card) = harness();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let (user_before, signature_before) = (user_pin_tries(&card), pin_tries(&card, SIGNATURE_PIN));
    let flags_before = token_flags(harness.slot());
    let key = object(session, CKO_PRIVATE_KEY, SIGNATURE_KEY);
    let mut mech = mechanism(CKM_ECDSA);
    assert_eq!(ck!(C_SignInit(session, &mut mech, key)), CKR_OK);
    card.clear_log();
    assert_eq!(
        login(session, CKU_CONTEXT_SPECIFIC, "111111"),
        CKR_PIN_INCORRECT
    );
    assert_eq!(pin_tries(&card, SIGNATURE_PIN), signature_before - 1);
    assert_eq!(user_pin_tries(&card), user_before);
    let verifies = card
        .log()
        .iter()
        .filter(|e| e.command.get(1) == Some(&0x20))
        .count();
    assert_eq!(verifies, 1, "{}", card.transcript());
    assert_eq!(token_flags(harness.slot()), flags_before);
    // The AODF's lengths (4..8) apply before any APDU.
    assert_eq!(
        login(session, CKU_CONTEXT_SPECIFIC, "123"),
        CKR_PIN_LEN_RANGE
    );
    assert_eq!(pin_tries(&card, SIGNATURE_PIN), signature_before - 1);
    // The right one restores the counter and signs.
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, "654321"), CKR_OK);
    assert_eq!(pin_tries(&card, SIGNATURE_PIN), signature_before);
    let hash = Hash::Sha256.digest(b"after one wrong try");
    let signature = sign_more(session, &hash).unwrap();
    assert!(check::ecdsa(
        &card_key(&card, SIGNATURE_KEY),
        &hash,
        &signature
    ));
}

fn data_objects(session: CK_SESSION_HANDLE) -> Vec<CK_OBJECT_HANDLE> {
    find(session, &[(CKA_CLASS, ulong(CKO_DATA))])
}

fn label_of(session: CK_SESSION_HANDLE, handle: CK_OBJECT_HANDLE) -> String {
    String::from_utf8(attribute(session, handle, CKA_LABEL).unwrap()).unwrap()
}

/// The DODF's data objects: the public one before login, the private one
/// (auth ID 01) only after; application, label, OID and value as
/// pkcs15-init stored them, read-only token objects.
#[test]
fn dodf_data_objects_are_cko_data_and_the_private_one_needs_the_login() {
    let (harness, card) = harness();
    let session = harness.session();
    let public = data_objects(session);
    assert_eq!(public.len(), 1);
    let object = public[0];
    // Its other attributes come from the DODF: no APDU.
    card.clear_log();
    assert_eq!(label_of(session, object), "p11card public data");
    assert_eq!(
        attribute(session, object, CKA_APPLICATION).unwrap(),
        b"p11card test"
    );
    // DER of 1.3.6.1.4.1.99999.1.
    assert_eq!(
        attribute(session, object, CKA_OBJECT_ID).unwrap(),
        [0x06, 0x09, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8D, 0x1F, 0x01]
    );
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
    assert_eq!(
        attribute(session, object, CKA_VALUE).unwrap(),
        b"p11card public data object\n"
    );
    for (kind, value) in [
        (CKA_TOKEN, true),
        (CKA_PRIVATE, false),
        (CKA_MODIFIABLE, false),
    ] {
        assert_eq!(as_bool(&attribute(session, object, kind).unwrap()), value);
    }
    // The value is read once, when it is asked for.
    card.clear_log();
    attribute(session, object, CKA_VALUE).unwrap();
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());

    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let all = data_objects(session);
    assert_eq!(all.len(), 2);
    let private = *all.iter().find(|h| **h != object).unwrap();
    assert_eq!(label_of(session, private), "p11card private data");
    assert!(as_bool(&attribute(session, private, CKA_PRIVATE).unwrap()));
    assert!(attribute(session, private, CKA_OBJECT_ID)
        .unwrap()
        .is_empty());
    assert_eq!(
        attribute(session, private, CKA_VALUE).unwrap(),
        b"p11card private data object\n"
    );
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert_eq!(data_objects(session), [object]);
    assert_eq!(
        attribute(session, private, CKA_LABEL),
        Err(CKR_OBJECT_HANDLE_INVALID)
    );
}

/// The CA's certificate (pkcs15-init --authority) belongs to no key: a
/// certificate object of its own, category authority, not trusted (it is
/// in the CDF, not a trusted-certificates CDF), visible without login.
#[test]
fn the_authority_certificate_is_an_authority_certificate_object() {
    let (harness, _card) = harness();
    let session = harness.session();
    let ca = object(session, CKO_CERTIFICATE, 0xCA);
    assert_eq!(
        attribute(session, ca, CKA_LABEL).unwrap(),
        b"p11card MyEID test CA"
    );
    assert_eq!(
        as_ulong(&attribute(session, ca, CKA_CERTIFICATE_CATEGORY).unwrap()),
        CK_CERTIFICATE_CATEGORY_AUTHORITY
    );
    assert!(!as_bool(&attribute(session, ca, CKA_TRUSTED).unwrap()));
    // It issued the keys' certificates (category token user).
    let subject = attribute(session, ca, CKA_SUBJECT).unwrap();
    assert_eq!(attribute(session, ca, CKA_ISSUER).unwrap(), subject);
    for id in [RSA_KEY, EC_KEY, SIGNATURE_KEY] {
        let certificate = object(session, CKO_CERTIFICATE, id);
        assert_eq!(
            attribute(session, certificate, CKA_ISSUER).unwrap(),
            subject
        );
        assert_eq!(
            as_ulong(&attribute(session, certificate, CKA_CERTIFICATE_CATEGORY).unwrap()),
            CK_CERTIFICATE_CATEGORY_TOKEN_USER
        );
    }
    // No key object claims its ID.
    assert!(find(
        session,
        &[(CKA_ID, vec![0xCA]), (CKA_CLASS, ulong(CKO_PUBLIC_KEY))]
    )
    .is_empty());
}

/// A key without a certificate: its public key comes from the PuKDF (an
/// RSAPublicKey in EF 5504, as pkcs15-init wrote it); private and public
/// key objects, no certificate; it signs and the signature verifies.
#[test]
fn a_key_without_certificate_takes_its_public_key_from_the_pukdf() {
    let (harness, card) = harness();
    let session = harness.session();
    let public = object(session, CKO_PUBLIC_KEY, BARE_KEY);
    assert_eq!(
        attribute(session, public, CKA_LABEL).unwrap(),
        b"MyEID no certificate"
    );
    let card_public = card_key(&card, BARE_KEY);
    let SimPublicKey::Rsa(rsa_public) = &card_public else {
        panic!("key 04 is RSA")
    };
    use rsa::traits::PublicKeyParts;
    assert_eq!(
        attribute(session, public, CKA_MODULUS).unwrap(),
        rsa_public.n().to_bytes_be()
    );
    assert!(find(
        session,
        &[
            (CKA_CLASS, ulong(CKO_CERTIFICATE)),
            (CKA_ID, vec![BARE_KEY])
        ]
    )
    .is_empty());
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let key = object(session, CKO_PRIVATE_KEY, BARE_KEY);
    assert!(attribute(session, key, CKA_SUBJECT).unwrap().is_empty());
    let message = b"a key known by its public key only";
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, message).unwrap();
    assert!(check::rsa_pkcs1(
        &card_public,
        Hash::Sha256,
        &Hash::Sha256.digest(message),
        &signature
    ));
}
