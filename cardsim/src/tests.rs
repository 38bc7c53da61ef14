//! Applet and transport tests, written as card conversations.

use std::io::Read;

use p11card::transport::{ReaderBackend, TransportError};
use p256::elliptic_curve::point::AffineCoordinates;
use rsa::signature::hazmat::PrehashVerifier;
use rsa::Pkcs1v15Sign;
use sha2::{Digest, Sha256, Sha384};

use crate::apdu::{read_all, read_tlv};
use crate::keys::PrivateKey;
use crate::*;

const SELECT: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
    0x00,
];
const GET_CHUID: &[u8] = &[
    0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x00,
];

fn sw(response: &[u8]) -> u16 {
    match response {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

fn data(response: &[u8]) -> &[u8] {
    &response[..response.len() - 2]
}

fn selected(card: SimPivCard) -> SimPivCard {
    let mut card = card;
    assert_eq!(sw(&card.process(SELECT)), 0x9000);
    card
}

/// Sends `apdu`, then GET RESPONSE while the card says 61xx.
fn exchange(card: &mut SimPivCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut response = card.process(apdu);
    let mut out = data(&response).to_vec();
    while sw(&response) >> 8 == 0x61 {
        response = card.process(&[0x00, 0xC0, 0x00, 0x00, sw(&response) as u8]);
        out.extend_from_slice(data(&response));
    }
    (out, sw(&response))
}

fn get_data(tag: u32) -> Vec<u8> {
    let t = tag.to_be_bytes();
    vec![
        0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, t[1], t[2], t[3], 0x00,
    ]
}

fn verify(pin: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    apdu.extend_from_slice(pin);
    apdu.resize(13, 0xFF);
    apdu
}

/// GENERAL AUTHENTICATE as one extended APDU.
fn ga(alg: u8, key_ref: u8, tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x82, 0x00];
    crate::apdu::put_tlv(&mut inner, &[tag], payload);
    let body = crate::apdu::tlv(&[0x7C], &inner);
    let mut apdu = vec![0x00, 0x87, alg, key_ref, 0x00];
    apdu.extend_from_slice(&(body.len() as u16).to_be_bytes());
    apdu.extend_from_slice(&body);
    apdu.extend_from_slice(&[0x00, 0x00]);
    apdu
}

/// The result inside `7C { 82 … }`.
fn ga_result(response: &[u8]) -> Vec<u8> {
    let (tag, inner, _) = read_tlv(response).unwrap();
    assert_eq!(tag, [0x7C]);
    let (tag, result, _) = read_tlv(inner).unwrap();
    assert_eq!(tag, [0x82]);
    result.to_vec()
}

/// The DER certificate inside a certificate object, decompressed.
fn cert_from_object(object: &[u8]) -> Vec<u8> {
    let (_, content, _) = read_tlv(object).unwrap();
    let items = read_all(content).unwrap();
    assert_eq!(items[0].0, [0x70]);
    assert_eq!(items[1].0, [0x71]);
    match items[1].1 {
        [0x00] => items[0].1.to_vec(),
        [0x01] => {
            let mut der = Vec::new();
            flate2::read::GzDecoder::new(items[0].1)
                .read_to_end(&mut der)
                .unwrap();
            der
        }
        other => panic!("CertInfo {other:02X?}"),
    }
}

#[test]
fn nothing_but_select_before_select() {
    let mut card = SimPivCard::new();
    assert_eq!(card.process(GET_CHUID), [0x6D, 0x00]);
    assert_eq!(card.process(&verify(b"123456")), [0x6D, 0x00]);
    assert_eq!(
        card.process(&[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8]),
        [0x6A, 0x82]
    );
    assert_eq!(card.process(&[0, 0xA4, 4, 1, 0]), [0x6A, 0x86]);
    let response = card.process(&[0, 0xA4, 4, 0, 9, 0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0]);
    assert_eq!(sw(&response), 0x9000);
    let (tag, apt, []) = read_tlv(data(&response)).unwrap() else {
        panic!("trailing bytes")
    };
    assert_eq!(tag, [0x61]);
    let items = read_all(apt).unwrap();
    assert_eq!(items[0], (&[0x4F][..], &[0, 0, 0x10, 0, 1, 0][..]));
    assert_eq!(items[2], (&[0x50][..], &b"Simulated PIV"[..]));
    assert_eq!(card.process(&[0, 0xFD, 0, 0]), [5, 7, 1, 0x90, 0x00]);
    assert_eq!(card.process(&[0, 0x12, 0, 0]), [0x6D, 0x00]);
}

#[test]
fn get_data_objects() {
    let mut card = selected(SimPivCard::new());
    let chuid = card.process(GET_CHUID);
    assert_eq!(sw(&chuid), 0x9000);
    let (_, content, _) = read_tlv(data(&chuid)).unwrap();
    let items = read_all(content).unwrap();
    assert_eq!(items[0].1.len(), 25);
    assert_eq!(items[1], (&[0x34][..], &CHUID_GUID[..]));
    assert_eq!(items[2], (&[0x35][..], &b"20301231"[..]));

    let discovery = card.process(&[0, 0xCB, 0x3F, 0xFF, 3, 0x5C, 1, 0x7E, 0]);
    assert_eq!(&discovery[..4], &[0x7E, 0x12, 0x4F, 0x0B]);
    assert_eq!(sw(&card.process(&get_data(tags::CCC))), 0x9000);
    assert_eq!(card.process(&get_data(0x5FC109)), [0x6A, 0x82]);
    assert_eq!(
        card.process(&[0, 0xCB, 0x3F, 0xFF, 2, 0x5D, 0]),
        [0x6A, 0x80]
    );
    assert_eq!(
        card.process(&[0, 0xCB, 0x3F, 0xFE, 3, 0x5C, 1, 0x7E]),
        [0x6A, 0x86]
    );
}

#[test]
fn short_get_data_uses_61xx_and_get_response() {
    let mut card = selected(SimPivCard::new());
    let first = card.process(&get_data(0x5FC105));
    assert_eq!(first.len(), 258);
    assert_eq!(first[256], 0x61);
    // A command in between drops the pending response.
    let mut card2 = card.clone();
    assert_eq!(sw(&card2.process(GET_CHUID)), 0x9000);
    assert_eq!(card2.process(&[0, 0xC0, 0, 0, 0]), [0x69, 0x85]);

    let (object, status) = exchange(&mut card, &get_data(0x5FC105));
    assert_eq!(status, 0x9000);
    let der = cert_from_object(&object);
    assert_eq!(Some(&der[..]), card.certificate_der(Slot::Authentication));
    assert!(card.transcript().contains("61"));
}

#[test]
fn extended_get_data_answers_at_once() {
    let mut card = selected(SimPivCard::new());
    let apdu = [
        0, 0xCB, 0x3F, 0xFF, 0, 0, 5, 0x5C, 3, 0x5F, 0xC1, 0x0B, 0, 0,
    ];
    let response = card.process(&apdu);
    assert_eq!(sw(&response), 0x9000);
    let der = cert_from_object(data(&response));
    assert_eq!(Some(&der[..]), card.certificate_der(Slot::KeyManagement));

    let mut short = selected(SimPivCard::new().short_apdus_only());
    assert_eq!(short.process(&apdu), [0x67, 0x00]);
    assert_eq!(short.process(&[0, 0xCB, 0x3F, 0xFF, 5, 0x5C]), [0x67, 0x00]);
}

#[test]
fn certificates_have_test_subjects() {
    let card = SimPivCard::new();
    use der::Decode;
    let der = card.certificate_der(Slot::Signature).unwrap();
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let subject = cert.tbs_certificate.subject.to_string();
    assert_eq!(subject, "CN=cardsim 9C Digital Signature,O=p11card test");
    let issuer = cert.tbs_certificate.issuer.to_string();
    assert_eq!(issuer, "CN=cardsim test CA,O=p11card test");
    let spki = cert.tbs_certificate.subject_public_key_info;
    let spki_der = der::Encode::to_der(&spki).unwrap();
    assert_eq!(
        spki_der,
        card.public_key(Slot::Signature).unwrap().to_spki_der()
    );
    let ca = x509_cert::Certificate::from_der(&ca_certificate_der()).unwrap();
    assert_eq!(ca.tbs_certificate.subject.to_string(), issuer);
}

#[test]
fn verify_counter_semantics() {
    let mut card = selected(SimPivCard::new());
    let status = [0x00, 0x20, 0x00, 0x80];
    assert_eq!(card.process(&status), [0x63, 0xC3]);
    assert_eq!(card.process(&verify(b"654321")), [0x63, 0xC2]);
    assert_eq!(
        card.process(&status),
        [0x63, 0xC2],
        "status must not use a try"
    );
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(card.process(&status), [0x90, 0x00]);
    assert_eq!(card.process(&[0x00, 0x20, 0xFF, 0x80]), [0x90, 0x00]);
    assert_eq!(card.process(&status), [0x63, 0xC3]);
    assert_eq!(
        card.process(&[0, 0x20, 0, 0x80, 4, 1, 2, 3, 4]),
        [0x6A, 0x80]
    );
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x81]), [0x6A, 0x86]);

    for left in [2, 1, 0] {
        assert_eq!(card.process(&verify(b"000000")), [0x63, 0xC0 | left]);
    }
    assert_eq!(card.process(&verify(b"123456")), [0x69, 0x83]);
    assert_eq!(card.process(&status), [0x69, 0x83]);

    // RESET RETRY COUNTER: a wrong PUK uses a PUK try; the right one unblocks.
    let mut rrc = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    rrc.extend_from_slice(b"87654321");
    rrc.extend_from_slice(b"999999\xFF\xFF");
    assert_eq!(card.process(&rrc), [0x63, 0xC2]);
    rrc[5..13].copy_from_slice(b"12345678");
    assert_eq!(card.process(&rrc), [0x90, 0x00]);
    assert_eq!((card.pin_tries_left(), card.puk_tries_left()), (3, 3));
    assert_eq!(card.process(&verify(b"999999")), [0x90, 0x00]);

    // CHANGE REFERENCE DATA.
    let mut crd = vec![0x00, 0x24, 0x00, 0x80, 0x10];
    crd.extend_from_slice(b"999999\xFF\xFF13572468");
    assert_eq!(card.process(&crd), [0x90, 0x00]);
    assert_eq!(card.process(&verify(b"13572468")), [0x90, 0x00]);
    crd[5..21].copy_from_slice(b"13572468\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFF");
    assert_eq!(card.process(&crd), [0x6A, 0x80], "new PIN too short");
    let log = card.log();
    assert!(log
        .iter()
        .filter(|e| e.ins() == 0x20)
        .all(|e| e.command.len() <= 5));
    assert!(card
        .transcript()
        .contains("00 24 00 80 10 <redacted> -> 9000"));
    assert!(!card.transcript().contains("31 33 35 37"));
}

#[test]
fn card_with_custom_pin() {
    let mut card = selected(SimPivCard::new().with_pin("87654321", 5));
    assert_eq!(card.process(&verify(b"123456")), [0x63, 0xC4]);
    assert_eq!(card.process(&verify(b"87654321")), [0x90, 0x00]);
}

fn pkcs1_sha256_block(message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let hash = Sha256::digest(message).to_vec();
    let prefix = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let mut block = vec![0x00, 0x01];
    block.resize(256 - prefix.len() - hash.len() - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(&prefix);
    block.extend_from_slice(&hash);
    (block, hash)
}

#[test]
fn rsa_sign_needs_pin_and_verifies() {
    let mut card = selected(SimPivCard::new());
    let (block, hash) = pkcs1_sha256_block(b"hello");
    assert_eq!(card.process(&ga(0x07, 0x9A, 0x81, &block)), [0x69, 0x82]);
    assert_eq!(card.process(&ga(0x11, 0x9A, 0x81, &block)), [0x6A, 0x80]);
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    assert_eq!(
        card.process(&ga(0x07, 0x9A, 0x81, &block[1..])),
        [0x6A, 0x80]
    );
    let response = card.process(&ga(0x07, 0x9A, 0x81, &block));
    assert_eq!(sw(&response), 0x9000);
    let signature = ga_result(data(&response));
    assert_eq!(signature.len(), 256);
    let Some(SimPublicKey::Rsa(public)) = card.public_key(Slot::Authentication) else {
        panic!("9A is RSA")
    };
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &signature)
        .unwrap();
}

#[test]
fn rsa_sign_through_chaining_and_short_responses() {
    let mut card = selected(SimPivCard::new());
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    let (block, hash) = pkcs1_sha256_block(b"chained");
    let apdu = ga(0x07, 0x9A, 0x81, &block);
    let body = &apdu[7..apdu.len() - 2];
    let (first, second) = body.split_at(200);
    let mut part = vec![0x10, 0x87, 0x07, 0x9A, first.len() as u8];
    part.extend_from_slice(first);
    assert_eq!(card.process(&part), [0x90, 0x00]);
    let mut last = vec![0x00, 0x87, 0x07, 0x9A, second.len() as u8];
    last.extend_from_slice(second);
    last.push(0x00);
    let (response, status) = exchange(&mut card, &last);
    assert_eq!(status, 0x9000);
    let Some(SimPublicKey::Rsa(public)) = card.public_key(Slot::Authentication) else {
        panic!("9A is RSA")
    };
    let signature = ga_result(&response);
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &signature)
        .unwrap();
    // A chain continued with another INS is refused.
    assert_eq!(card.process(&part), [0x90, 0x00]);
    assert_eq!(card.process(GET_CHUID), [0x68, 0x83]);
}

#[test]
fn ecdsa_signatures_verify() {
    let mut card = selected(SimPivCard::new());
    let hash = Sha256::digest(b"card auth");
    let response = card.process(&ga(0x11, 0x9E, 0x81, &hash));
    assert_eq!(sw(&response), 0x9000, "9E needs no PIN");
    let signature = p256::ecdsa::Signature::from_der(&ga_result(data(&response))).unwrap();
    let Some(SimPublicKey::P256(public)) = card.public_key(Slot::CardAuthentication) else {
        panic!("9E is P-256")
    };
    public.verify_prehash(&hash, &signature).unwrap();
    assert_eq!(
        card.process(&ga(0x11, 0x9E, 0x81, &hash[..31])),
        [0x6A, 0x80]
    );

    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    let hash = Sha384::digest(b"key management");
    let response = card.process(&ga(0x14, 0x9D, 0x81, &hash));
    let signature = p384::ecdsa::Signature::from_der(&ga_result(data(&response))).unwrap();
    let Some(SimPublicKey::P384(public)) = card.public_key(Slot::KeyManagement) else {
        panic!("9D is P-384")
    };
    public.verify_prehash(&hash, &signature).unwrap();
}

#[test]
fn ecdh_on_key_management() {
    let mut card = selected(SimPivCard::new());
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    let PrivateKey::P384(peer) = PrivateKey::embedded(KeyType::EccP384, Slot::Authentication)
    else {
        panic!("P-384 key")
    };
    let peer_point = peer.verifying_key().to_encoded_point(false);
    let response = card.process(&ga(0x14, 0x9D, 0x85, peer_point.as_bytes()));
    assert_eq!(sw(&response), 0x9000);
    let Some(SimPublicKey::P384(card_key)) = card.public_key(Slot::KeyManagement) else {
        panic!("9D is P-384")
    };
    let expected = (p384::ProjectivePoint::from(*card_key.as_affine())
        * peer.as_nonzero_scalar().as_ref())
    .to_affine()
    .x();
    assert_eq!(ga_result(data(&response)), expected.to_vec());
}

#[test]
fn signature_key_needs_pin_immediately_before() {
    let mut card = selected(SimPivCard::new());
    let hash = Sha256::digest(b"sign me");
    let sign = ga(0x11, 0x9C, 0x81, &hash);
    assert_eq!(card.process(&sign), [0x69, 0x82]);
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    assert_eq!(sw(&card.process(&sign)), 0x9000);
    assert_eq!(card.process(&sign), [0x69, 0x82], "one use per VERIFY");
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    assert_eq!(sw(&card.process(GET_CHUID)), 0x9000);
    assert_eq!(card.process(&sign), [0x69, 0x82], "a command in between");
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    assert_eq!(sw(&card.process(&sign)), 0x9000);
}

#[test]
fn configured_slots() {
    let mut card = selected(
        SimPivCard::new()
            .only_slots(&[Slot::Authentication, Slot::Signature])
            .with_key(Slot::Authentication, KeyType::EccP384)
            .without_key(Slot::Signature)
            .with_cert_compressed(Slot::Authentication, true),
    );
    assert_eq!(card.key_type(Slot::Authentication), Some(KeyType::EccP384));
    assert_eq!(card.process(&get_data(0x5FC10B)), [0x6A, 0x82]);
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    let hash = [7; 32];
    assert_eq!(card.process(&ga(0x11, 0x9C, 0x81, &hash)), [0x6A, 0x88]);
    assert_eq!(card.process(&ga(0x11, 0x9D, 0x81, &hash)), [0x6A, 0x88]);
    assert_eq!(card.process(&ga(0x11, 0x9B, 0x81, &hash)), [0x6A, 0x86]);
    let (object, _) = exchange(&mut card, &get_data(0x5FC105));
    let der = cert_from_object(&object);
    assert_eq!(Some(&der[..]), card.certificate_der(Slot::Authentication));
    assert_eq!(object[object.len() - 5..], [0x71, 0x01, 0x01, 0xFE, 0x00]);
    assert!(card.certificate_der(Slot::Signature).is_some());
}

#[test]
fn misbehaviour_exact_le_and_chunks() {
    let mut card = selected(SimPivCard::new());
    card.misbehaviour_mut().exact_le_get_data = true;
    let wrong = card.process(GET_CHUID);
    assert_eq!(wrong[0], 0x6C);
    let mut corrected = GET_CHUID.to_vec();
    corrected[10] = wrong[1];
    let right = card.process(&corrected);
    assert_eq!(
        (sw(&right), right.len() - 2),
        (0x9000, usize::from(wrong[1]))
    );
    // Over 256 bytes: Le 00 is right, then GET RESPONSE.
    assert_eq!(sw(&card.process(&get_data(0x5FC105))) >> 8, 0x61);

    let mut card = selected(SimPivCard::new());
    card.misbehaviour_mut().chunk_responses = Some(16);
    let first = card.process(GET_CHUID);
    assert_eq!((first.len(), first[16]), (18, 0x61));
    let (object, status) = exchange(&mut card, GET_CHUID);
    assert_eq!((status, object.len()), (0x9000, 61));
}

#[test]
fn misbehaviour_one_shots() {
    let mut card = selected(SimPivCard::new());
    card.misbehaviour_mut().truncate_next = Some(Truncation::DropStatusWord);
    assert_eq!(card.process(GET_CHUID).len(), 61);
    card.misbehaviour_mut().truncate_next = Some(Truncation::DropDataBytes(10));
    let cut = card.process(GET_CHUID);
    assert_eq!((cut.len(), sw(&cut)), (53, 0x9000));
    card.misbehaviour_mut().truncate_next = Some(Truncation::KeepBytes(1));
    assert_eq!(card.process(GET_CHUID).len(), 1);
    card.misbehaviour_mut().garbage_next = Some(vec![0xDE, 0xAD]);
    assert_eq!(card.process(GET_CHUID), [0xDE, 0xAD]);
    card.misbehaviour_mut().fail_next.push((0x20, 0x6F00));
    assert_eq!(card.process(&verify(b"123456")), [0x6F, 0x00]);
    assert!(!card.pin_verified(), "the failed command was not processed");
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    assert_eq!(sw(&card.process(GET_CHUID)), 0x9000);
    assert_eq!(card.log()[3].sw, 0);
    assert_eq!(card.apdu_count(), 8);
}

#[test]
fn backend_readers_and_removal() {
    let backend = SimBackend::with_readers(["Sim Reader 0", "Sim Reader 1"]);
    let status = backend.readers().unwrap();
    assert!(status.iter().all(|r| !r.card_present));
    assert_eq!(
        backend.connect("Sim Reader 1").err(),
        Some(TransportError::CardRemoved)
    );
    assert_eq!(
        backend.connect("nope").err(),
        Some(TransportError::ReaderGone)
    );
    let card = backend.insert("Sim Reader 1", SimPivCard::new());
    assert!(backend.readers().unwrap()[1].card_present);
    let mut transport = backend.connect("Sim Reader 1").unwrap();
    assert_eq!(transport.atr(), DEFAULT_ATR);

    let response = transport
        .with_transaction(|link| {
            link.transmit(SELECT)?;
            link.transmit(&verify(b"123456"))
        })
        .unwrap()
        .unwrap();
    assert_eq!(response, [0x90, 0x00]);
    assert_eq!(card.transactions(), (1, 1));
    assert_eq!(card.apdu_count(), 2);
    assert!(card.log()[1].redacted);

    // Removal after N APDUs.
    card.misbehave(|m| m.remove_after = Some(1));
    let result = transport
        .with_transaction(|link| (link.transmit(GET_CHUID), link.transmit(GET_CHUID)))
        .err();
    assert_eq!(result, Some(TransportError::CardRemoved));
    assert_eq!(card.apdu_count(), 3);
    assert!(!backend.readers().unwrap()[1].card_present);
    assert!(backend.card("Sim Reader 1").is_none());

    // Re-inserted: a new power-on; the old transport stays dead.
    let card = backend.insert("Sim Reader 1", card);
    assert_eq!(
        transport.with_transaction(|_| ()).err(),
        Some(TransportError::CardRemoved)
    );
    let mut transport = backend.connect("Sim Reader 1").unwrap();
    let response = transport
        .with_transaction(|link| link.transmit(GET_CHUID))
        .unwrap();
    assert_eq!(response, Ok(vec![0x6D, 0x00]));

    // Reset by someone else: one CardReset, then fine.
    card.reset();
    assert_eq!(
        transport.with_transaction(|_| ()).err(),
        Some(TransportError::CardReset)
    );
    assert!(transport.with_transaction(|_| ()).is_ok());

    assert!(backend.remove("Sim Reader 1").is_some());
    assert_eq!(
        transport.with_transaction(|_| ()).err(),
        Some(TransportError::CardRemoved)
    );
}

#[test]
fn backend_holds_an_openpgp_card() {
    let backend = SimBackend::with_readers(["Sim Reader 0", "Sim Reader 1"]);
    backend.insert("Sim Reader 0", SimPivCard::new());
    let pgp = backend.insert("Sim Reader 1", SimOpenPgpCard::new());
    assert!(pgp.is_openpgp());
    assert!(!backend.card("Sim Reader 0").unwrap().is_openpgp());
    let mut transport = backend.connect("Sim Reader 1").unwrap();
    assert_eq!(transport.atr(), DEFAULT_OPENPGP_ATR);
    let select_pgp = [
        0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01,
    ];
    let verify_82 = [
        0x00, 0x20, 0x00, 0x82, 0x06, b'1', b'2', b'3', b'4', b'5', b'6',
    ];
    let response = transport
        .with_transaction(|link| {
            // A PIV SELECT is not for this card.
            assert_eq!(link.transmit(SELECT)?, [0x6A, 0x82]);
            link.transmit(&select_pgp)?;
            link.transmit(&verify_82)
        })
        .unwrap()
        .unwrap();
    assert_eq!(response, [0x90, 0x00]);
    assert!(pgp.with_openpgp(|c| c.pw1_verified()));
    assert_eq!(pgp.apdu_count(), 3);
    assert!(pgp.log()[2].redacted);
    assert!(pgp.transcript().contains("00 20 00 82 06 <redacted>"));
    pgp.misbehave(|m| m.fail_next.push((0xCA, 0x6F00)));
    assert!(pgp.with_applet(|a| !a.misbehaviour_mut().fail_next.is_empty()));
    // A reset by another process forgets the PIN state.
    pgp.reset();
    assert!(!pgp.with_openpgp(|c| c.pw1_verified()));
    assert_eq!(
        transport.with_transaction(|_| ()).err(),
        Some(TransportError::CardReset)
    );
    let (_backend, handle) = SimBackend::with_card(SimApplet::from(SimOpenPgpCard::new()));
    assert_eq!(handle.with_openpgp(|c| c.serial()), DEFAULT_OPENPGP_SERIAL);
}

#[test]
#[should_panic(expected = "use with_openpgp")]
fn with_on_an_openpgp_card_panics() {
    let card = SimCard::new(SimOpenPgpCard::new());
    card.with(|c| c.pin_verified());
}

/// GET METADATA (Yubico PIV extension, INS F7) of key slot `key_ref`, short
/// with Le = 00.
fn get_metadata(key_ref: u8) -> Vec<u8> {
    vec![0x00, 0xF7, 0x00, key_ref, 0x00]
}

/// The public key TLVs a GET METADATA answer should carry for `public`.
fn metadata_public_key(public: &SimPublicKey) -> Vec<(Vec<u8>, Vec<u8>)> {
    use rsa::traits::PublicKeyParts;
    match public {
        SimPublicKey::Rsa(key) => vec![
            (vec![0x81], key.n().to_bytes_be()),
            (vec![0x82], key.e().to_bytes_be()),
        ],
        SimPublicKey::P256(key) => {
            vec![(vec![0x86], key.to_encoded_point(false).as_bytes().to_vec())]
        }
        SimPublicKey::P384(key) => {
            vec![(vec![0x86], key.to_encoded_point(false).as_bytes().to_vec())]
        }
    }
}

#[test]
fn get_metadata_describes_each_key_slot() {
    let mut card = selected(SimPivCard::new());
    // Slot: algorithm, PIN policy (never 01, once 02, always 03), touch never.
    let expected = [
        (Slot::Authentication, 0x07, 0x02),
        (Slot::Signature, 0x11, 0x03),
        (Slot::KeyManagement, 0x14, 0x02),
        (Slot::CardAuthentication, 0x11, 0x01),
    ];
    for (slot, algorithm, pin_policy) in expected {
        let (metadata, status) = exchange(&mut card, &get_metadata(slot.key_ref()));
        assert_eq!(status, 0x9000, "{slot:?}");
        let items = read_all(&metadata).unwrap();
        let tags: Vec<&[u8]> = items.iter().map(|(tag, _)| *tag).collect();
        assert_eq!(tags, [[0x01], [0x02], [0x03], [0x04]], "{slot:?}");
        assert_eq!(items[0].1, [algorithm], "{slot:?}");
        assert_eq!(items[1].1, [pin_policy, 0x01], "{slot:?}");
        assert_eq!(items[2].1, [0x01], "{slot:?}: generated on the card");
        let public: Vec<(Vec<u8>, Vec<u8>)> = read_all(items[3].1)
            .unwrap()
            .into_iter()
            .map(|(tag, value)| (tag.to_vec(), value.to_vec()))
            .collect();
        let key = card.public_key(slot).unwrap();
        assert_eq!(public, metadata_public_key(&key), "{slot:?}");
    }
}

#[test]
fn long_metadata_goes_through_get_response_or_one_extended_answer() {
    // RSA-2048, 279 bytes: 01 01 07, 02 02 .. .., 03 01 01,
    // 04 82 01 09 { 81 82 01 00 <n>, 82 03 <e> }.
    let mut card = selected(SimPivCard::new());
    let first = card.process(&get_metadata(0x9A));
    assert_eq!((first.len(), sw(&first)), (258, 0x6100 | (279 - 256)));
    assert_eq!(
        card.process(&[0x00, 0xC0, 0x00, 0x00, 0x00]).len(),
        279 - 256 + 2
    );
    let extended = card.process(&[0x00, 0xF7, 0x00, 0x9A, 0x00, 0x00, 0x00]);
    assert_eq!((extended.len(), sw(&extended)), (281, 0x9000));
    assert_eq!(
        read_all(data(&extended)).unwrap().len(),
        4,
        "the whole answer at once"
    );
    let mut short = selected(SimPivCard::new().short_apdus_only());
    assert_eq!(
        short.process(&[0x00, 0xF7, 0x00, 0x9A, 0x00, 0x00, 0x00]),
        [0x67, 0x00]
    );
}

#[test]
fn get_metadata_of_empty_or_unknown_slots_and_without_extensions() {
    let mut card = selected(
        SimPivCard::new()
            .without_slot(Slot::Signature)
            .without_key(Slot::KeyManagement),
    );
    assert_eq!(card.process(&get_metadata(0x9C)), [0x6A, 0x82]);
    assert_eq!(
        card.process(&get_metadata(0x9D)),
        [0x6A, 0x82],
        "a certificate alone is no key"
    );
    assert_eq!(card.process(&get_metadata(0x9B)), [0x6A, 0x86]);
    assert_eq!(
        card.process(&get_metadata(0x82)),
        [0x6A, 0x82],
        "no retired key"
    );
    // The PIN: algorithm FF, default value, 3 of 3 tries.
    assert_eq!(
        card.process(&get_metadata(0x80)),
        [0x01, 0x01, 0xFF, 0x05, 0x01, 0x01, 0x06, 0x02, 0x03, 0x03, 0x90, 0x00]
    );
    assert_eq!(card.process(&[0x00, 0xF7, 0x01, 0x9A, 0x00]), [0x6A, 0x86]);

    let mut plain = SimPivCard::new().without_yubico_extensions();
    assert_eq!(
        plain.process(&get_metadata(0x9A)),
        [0x6D, 0x00],
        "not selected"
    );
    let mut plain = selected(plain);
    for key_ref in [0x9A, 0x9C, 0x9D, 0x9E] {
        assert_eq!(plain.process(&get_metadata(key_ref)), [0x6D, 0x00]);
    }
    let mut unselected = SimPivCard::new();
    assert_eq!(unselected.process(&get_metadata(0x9A)), [0x6D, 0x00]);
}

#[test]
fn a_slot_can_hold_another_slots_key() {
    let default = SimPivCard::new();
    let other = SimPivCard::new().with_key_from(
        Slot::CardAuthentication,
        KeyType::EccP256,
        Slot::Signature,
    );
    assert_eq!(
        other.public_key(Slot::CardAuthentication),
        default.public_key(Slot::Signature)
    );
    assert_ne!(
        other.public_key(Slot::CardAuthentication),
        default.public_key(Slot::CardAuthentication)
    );
    use der::Decode;
    let der = other.certificate_der(Slot::CardAuthentication).unwrap();
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info).unwrap();
    assert_eq!(
        spki,
        other
            .public_key(Slot::CardAuthentication)
            .unwrap()
            .to_spki_der()
    );
    let default_der = default.certificate_der(Slot::CardAuthentication).unwrap();
    let default_cert = x509_cert::Certificate::from_der(default_der).unwrap();
    assert_eq!(
        cert.tbs_certificate.subject,
        default_cert.tbs_certificate.subject
    );
    assert_ne!(
        cert.tbs_certificate.serial_number,
        default_cert.tbs_certificate.serial_number
    );
    // The slot's own key still gets the same certificate as before.
    let again = SimPivCard::new().with_key_from(
        Slot::CardAuthentication,
        KeyType::EccP256,
        Slot::CardAuthentication,
    );
    assert_eq!(
        again.certificate_der(Slot::CardAuthentication),
        Some(default_der)
    );
}

#[test]
fn retired_keys_come_with_a_key_history() {
    assert_eq!(
        sw(&selected(SimPivCard::new()).process(&get_data(tags::KEY_HISTORY))),
        0x6A82,
        "no retired keys, no Key History"
    );
    let mut card = selected(
        SimPivCard::new()
            .with_retired_key(1, KeyType::Rsa2048, Slot::KeyManagement)
            .with_retired_key(2, KeyType::EccP256, Slot::Authentication)
            .without_retired_cert(2),
    );
    let (history, status) = exchange(&mut card, &get_data(tags::KEY_HISTORY));
    assert_eq!(status, 0x9000);
    assert_eq!(
        history,
        [0x53, 0x08, 0xC1, 0x01, 0x01, 0xC2, 0x01, 0x01, 0xFE, 0x00]
    );
    let (object, status) = exchange(&mut card, &get_data(tags::RETIRED_1));
    assert_eq!(status, 0x9000);
    assert_eq!(
        Some(&cert_from_object(&object)[..]),
        card.retired_certificate_der(1)
    );
    assert_eq!(sw(&card.process(&get_data(tags::RETIRED_1 + 1))), 0x6A82);
    // Retired key 2 signs once the PIN is verified (policy "once").
    let hash = Sha256::digest(b"retired");
    let sign = ga(0x11, 0x83, 0x81, &hash);
    assert_eq!(card.process(&sign), [0x69, 0x82]);
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    assert_eq!(sw(&card.process(&sign)), 0x9000);
    assert_eq!(sw(&card.process(&sign)), 0x9000);
}

#[test]
fn pin_policies_are_reported_and_enforced() {
    let mut card = selected(
        SimPivCard::new()
            .with_policy(0x9C, PinPolicy::Once, TouchPolicy::Cached)
            .with_policy(0x9A, PinPolicy::Always, TouchPolicy::Never),
    );
    let (metadata, _) = exchange(&mut card, &get_metadata(0x9C));
    assert_eq!(metadata[3..7], [0x02, 0x02, 0x02, 0x03]);
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    let hash = Sha256::digest(b"policy");
    let sign_9c = ga(0x11, 0x9C, 0x81, &hash);
    assert_eq!(sw(&card.process(&sign_9c)), 0x9000);
    assert_eq!(sw(&card.process(&sign_9c)), 0x9000, "PIN once");
    let (block, _) = pkcs1_sha256_block(b"policy");
    let sign_9a = ga(0x07, 0x9A, 0x81, &block);
    assert_eq!(card.process(&sign_9a), [0x69, 0x82], "PIN always");
    assert_eq!(card.process(&verify(b"123456")), [0x90, 0x00]);
    assert_eq!(sw(&card.process(&sign_9a)), 0x9000);
}

#[test]
fn a_global_pin_verifies_under_reference_00() {
    let mut card = selected(SimPivCard::new().with_global_pin("87654321", true));
    let (discovery, _) = exchange(
        &mut card,
        &[0x00, 0xCB, 0x3F, 0xFF, 0x03, 0x5C, 0x01, 0x7E, 0x00],
    );
    assert!(discovery.ends_with(&[0x5F, 0x2F, 0x02, 0x60, 0x20]));
    let mut global = verify(b"87654321");
    global[3] = 0x00;
    assert_eq!(card.process(&global[..4]), [0x63, 0xC3]);
    assert_eq!(card.process(&global), [0x90, 0x00]);
    assert!(card.pin_verified());
    let mut wrong = verify(b"123456");
    wrong[3] = 0x00;
    assert_eq!(card.process(&wrong), [0x63, 0xC2]);
    assert_eq!(card.global_pin_tries_left(), Some(2));
    assert_eq!(card.pin_tries_left(), 3);
}
