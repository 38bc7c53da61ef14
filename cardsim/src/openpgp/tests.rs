//! OpenPGP card conversations: one test per command, written as the APDUs a
//! host sends and what the card answers.

use p256::elliptic_curve::point::AffineCoordinates;
use rsa::signature::hazmat::PrehashVerifier;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign};
use sha2::{Digest, Sha256, Sha384};

use super::keys::PgpPrivateKey;
use super::*;
use crate::apdu::{read_all, read_tlv};

const SELECT: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01,
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

fn selected(card: SimOpenPgpCard) -> SimOpenPgpCard {
    let mut card = card;
    assert_eq!(card.process(SELECT), [0x90, 0x00]);
    card
}

/// Sends `apdu`, then GET RESPONSE while the card says 61xx.
fn exchange(card: &mut SimOpenPgpCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut response = card.process(apdu);
    let mut out = data(&response).to_vec();
    while sw(&response) >> 8 == 0x61 {
        response = card.process(&[0x00, 0xC0, 0x00, 0x00, sw(&response) as u8]);
        out.extend_from_slice(data(&response));
    }
    (out, sw(&response))
}

/// A short case 3 or 4 APDU (Le `00` when `le`).
fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, body: &[u8], le: bool) -> Vec<u8> {
    let mut out = vec![cla, ins, p1, p2];
    if !body.is_empty() {
        out.push(body.len() as u8);
        out.extend_from_slice(body);
    }
    if le {
        out.push(0x00);
    }
    out
}

fn get_data(tag: u16) -> Vec<u8> {
    let [p1, p2] = tag.to_be_bytes();
    vec![0x00, 0xCA, p1, p2, 0x00]
}

fn verify(reference: u8, pin: &[u8]) -> Vec<u8> {
    apdu(0x00, 0x20, 0x00, reference, pin, false)
}

/// GET DATA of `tag`, asserting `9000`.
fn read(card: &mut SimOpenPgpCard, tag: u16) -> Vec<u8> {
    let (value, status) = exchange(card, &get_data(tag));
    assert_eq!(status, 0x9000, "GET DATA {tag:04X}");
    value
}

/// The value of `tag` in a list of TLVs.
fn find<'a>(items: &[(&'a [u8], &'a [u8])], tag: &[u8]) -> &'a [u8] {
    items
        .iter()
        .find(|(t, _)| *t == tag)
        .unwrap_or_else(|| panic!("no tag {tag:02X?}"))
        .1
}

fn digest_info_sha256(message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let hash = Sha256::digest(message).to_vec();
    let mut info = vec![
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    info.extend_from_slice(&hash);
    (info, hash)
}

const PSO_CDS: (u8, u8) = (0x9E, 0x9A);

fn pso_cds(input: &[u8]) -> Vec<u8> {
    apdu(0x00, 0x2A, PSO_CDS.0, PSO_CDS.1, input, true)
}

/// PSO:DECIPHER as one extended APDU.
fn decipher(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00, 0x2A, 0x80, 0x86, 0x00];
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&[0x00, 0x00]);
    out
}

fn ecdh_body(point: &[u8]) -> Vec<u8> {
    tlv(&[0xA6], &tlv(&[0x7F, 0x49], &tlv(&[0x86], point)))
}

#[test]
fn nothing_but_select_before_select() {
    let mut card = SimOpenPgpCard::new();
    assert_eq!(card.process(&get_data(0x6E)), [0x6D, 0x00]);
    assert_eq!(card.process(&verify(0x81, b"123456")), [0x6D, 0x00]);
    assert_eq!(card.process(&[0x00, 0xC0, 0x00, 0x00, 0x00]), [0x6D, 0x00]);
    // Not the OpenPGP application, or too short a prefix.
    assert_eq!(
        card.process(&apdu(
            0,
            0xA4,
            4,
            0,
            &[0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0],
            false
        )),
        [0x6A, 0x82]
    );
    assert_eq!(
        card.process(&apdu(0, 0xA4, 4, 0, &[0xD2, 0x76, 0x00, 0x01, 0x24], false)),
        [0x6A, 0x82]
    );
    assert_eq!(
        card.process(&apdu(0, 0xA4, 4, 4, &OPENPGP_AID_PREFIX, false)),
        [0x6A, 0x86]
    );
    assert_eq!(card.process(SELECT), [0x90, 0x00]);
    // The full AID selects too, with Le and with P2 = 0C.
    let aid = card.aid();
    assert_eq!(card.process(&apdu(0, 0xA4, 4, 0, &aid, true)), [0x90, 0x00]);
    assert_eq!(
        card.process(&apdu(0, 0xA4, 4, 0x0C, &aid, false)),
        [0x90, 0x00]
    );
    assert_eq!(card.process(&[0x00, 0x12, 0x00, 0x00]), [0x6D, 0x00]);
    assert_eq!(card.process(&[0x0C, 0xCA, 0x00, 0x6E, 0x00]), [0x6E, 0x00]);
}

#[test]
fn aid_and_atr() {
    let card = SimOpenPgpCard::new();
    assert_eq!(
        card.aid(),
        [
            0xD2, 0x76, 0x00, 0x01, 0x24, 0x01, 0x03, 0x04, 0xFF, 0xFE, 0x12, 0x34, 0x56, 0x78,
            0x00, 0x00
        ]
    );
    assert_eq!(card.atr(), DEFAULT_OPENPGP_ATR);
    assert_eq!(atr_for(&HISTORICAL_BYTES), DEFAULT_OPENPGP_ATR);
    let mut card = selected(card);
    assert_eq!(read(&mut card, 0x5F52), DEFAULT_OPENPGP_ATR[10..20]);
    assert_eq!(read(&mut card, 0x4F), card.aid());

    // A card without extended length says so, with a valid check byte.
    let short = SimOpenPgpCard::new()
        .short_apdus_only()
        .with_serial(0x0000_0042);
    let atr = short.atr().to_vec();
    assert_eq!(atr[16], 0x80);
    assert_eq!(atr[1..].iter().fold(0, |a, b| a ^ b), 0);
    assert_eq!(&short.aid()[10..14], &[0, 0, 0, 0x42]);
    let mut short = selected(short);
    assert_eq!(short.process(&[0, 0xCA, 0, 0x6E, 0, 0, 0]), [0x67, 0x00]);
    assert_eq!(read(&mut short, 0x5F52), atr[10..20]);
}

#[test]
fn application_related_data() {
    let mut card = selected(SimOpenPgpCard::new());
    let ard = read(&mut card, 0x6E);
    let items = read_all(&ard).unwrap();
    assert_eq!(find(&items, &[0x4F]), card.aid());
    assert_eq!(find(&items, &[0x5F, 0x52]), &HISTORICAL_BYTES);
    assert_eq!(
        find(&items, &[0x7F, 0x66]),
        [0x02, 0x02, 0x10, 0x00, 0x02, 0x02, 0x10, 0x00]
    );
    let dd = read_all(find(&items, &[0x73])).unwrap();
    let tags: Vec<&[u8]> = dd.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        tags,
        [
            &[0xC0][..],
            &[0xC1],
            &[0xC2],
            &[0xC3],
            &[0xC4],
            &[0xC5],
            &[0xC6],
            &[0xCD],
            &[0xDE]
        ]
    );
    assert_eq!(
        find(&dd, &[0xC0]),
        [0x7C, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0xFF, 0x00, 0x00]
    );
    assert_eq!(find(&dd, &[0xC1]), [0x01, 0x08, 0x00, 0x00, 0x20, 0x00]);
    assert_eq!(find(&dd, &[0xC2]), [0x01, 0x08, 0x00, 0x00, 0x20, 0x00]);
    assert_eq!(
        find(&dd, &[0xC3]),
        [0x13, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
    );
    assert_eq!(find(&dd, &[0xC4]), [0x00, 0x7F, 0x7F, 0x7F, 3, 0, 3]);
    let fingerprints = find(&dd, &[0xC5]);
    assert_eq!(fingerprints.len(), 60);
    for role in KeyRole::ALL {
        let fp = card.fingerprint(role);
        assert_ne!(fp, [0; 20]);
        assert_eq!(fingerprints[role.index() * 20..][..20], fp);
        let public = card.public_key(role).unwrap();
        assert_eq!(fp, public.fingerprint(role, KEY_CREATION_TIME));
    }
    assert_eq!(find(&dd, &[0xC6]), [0; 60]);
    assert_eq!(find(&dd, &[0xCD]), [0x65, 0x92, 0x00, 0x80].repeat(3));
    assert_eq!(find(&dd, &[0xDE]), [1, 2, 2, 2, 3, 2]);
}

#[test]
fn other_data_objects() {
    let mut card = selected(SimOpenPgpCard::new().with_private_do(2, b"two"));
    assert_eq!(read(&mut card, 0xC4), [0x00, 0x7F, 0x7F, 0x7F, 3, 0, 3]);
    let cardholder = read(&mut card, 0x65);
    let items = read_all(&cardholder).unwrap();
    assert_eq!(find(&items, &[0x5B]), b"Simulated<<PGP");
    assert_eq!(find(&items, &[0x5F, 0x2D]), b"en");
    assert_eq!(find(&items, &[0x5F, 0x35]), b"9");
    assert_eq!(read(&mut card, 0x5B), b"Simulated<<PGP");
    assert_eq!(
        read(&mut card, 0x5F50),
        b"https://example.invalid/cardsim-openpgp.asc"
    );
    assert_eq!(read(&mut card, 0x7A), [0x93, 0x03, 0x00, 0x00, 0x00]);
    assert_eq!(read(&mut card, 0x5E), b"");
    assert_eq!(read(&mut card, 0x0101), b"");
    assert_eq!(read(&mut card, 0x0102), b"two");
    assert_eq!(read(&mut card, 0xC1), [0x01, 0x08, 0x00, 0x00, 0x20, 0x00]);
    // 0103 needs PW1 (82), 0104 PW3.
    assert_eq!(card.process(&get_data(0x0103)), [0x69, 0x82]);
    assert_eq!(card.process(&get_data(0x0104)), [0x69, 0x82]);
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    assert_eq!(card.process(&get_data(0x0103)), [0x90, 0x00]);
    // Unknown or write-only DOs.
    assert_eq!(card.process(&get_data(0x00D3)), [0x6A, 0x88]);
    assert_eq!(card.process(&get_data(0x00F9)), [0x6A, 0x88]);
    // Algorithm information lists every algorithm per key.
    let info = read(&mut card, 0xFA);
    let items = read_all(&info).unwrap();
    let count = |tag: u8| items.iter().filter(|(t, _)| *t == [tag]).count();
    assert_eq!((count(0xC1), count(0xC2), count(0xC3)), (4, 4, 4));
    assert!(items.contains(&(
        &[0xC2][..],
        &[0x12, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01][..]
    )));
}

#[test]
fn public_keys_through_generate_in_read_mode() {
    let mut card = selected(SimOpenPgpCard::new());
    // RSA over short APDUs: 61xx and GET RESPONSE.
    let first = card.process(&apdu(0, 0x47, 0x81, 0, &[0xB6, 0x00], true));
    assert_eq!(first.len(), 258);
    assert_eq!(first[256], 0x61);
    let (template, status) = exchange(&mut card, &apdu(0, 0x47, 0x81, 0, &[0xB6, 0x00], true));
    assert_eq!(status, 0x9000);
    let (tag, content, []) = read_tlv(&template).unwrap() else {
        panic!("trailing bytes")
    };
    assert_eq!(tag, [0x7F, 0x49]);
    let items = read_all(content).unwrap();
    let PgpPublicKey::Rsa(rsa) = card.public_key(KeyRole::Signature).unwrap() else {
        panic!("not RSA")
    };
    assert_eq!(find(&items, &[0x81]), rsa.n().to_bytes_be());
    assert_eq!(find(&items, &[0x82]), [0x01, 0x00, 0x01]);

    // The same over one extended APDU.
    let ext = [
        0x00, 0x47, 0x81, 0x00, 0x00, 0x00, 0x02, 0xB8, 0x00, 0x00, 0x00,
    ];
    let response = card.process(&ext);
    assert_eq!(sw(&response), 0x9000);
    assert_eq!(response.len(), 272);

    // ECC: 86 with the uncompressed point.
    let (template, _) = exchange(&mut card, &apdu(0, 0x47, 0x81, 0, &[0xA4, 0x00], true));
    let public = card.public_key(KeyRole::Authentication).unwrap();
    assert_eq!(
        template,
        tlv(&[0x7F, 0x49], &tlv(&[0x86], &public.ecc_point().unwrap()))
    );
    assert_eq!(public.ecc_point().unwrap().len(), 65);

    // Wrong CRT, wrong P1, a key that is not there.
    assert_eq!(
        card.process(&apdu(0, 0x47, 0x81, 0, &[0xB7, 0x00], true)),
        [0x6A, 0x80]
    );
    assert_eq!(
        card.process(&apdu(0, 0x47, 0x82, 0, &[0xB6, 0x00], true)),
        [0x6A, 0x86]
    );
    let mut empty = selected(SimOpenPgpCard::new().without_key(KeyRole::Decryption));
    assert_eq!(
        empty.process(&apdu(0, 0x47, 0x81, 0, &[0xB8, 0x00], true)),
        [0x6A, 0x88]
    );
    assert_eq!(read(&mut empty, 0xC5)[20..40], [0; 20]);
    assert_eq!(read(&mut empty, 0xDE), [1, 2, 2, 0, 3, 2]);
}

#[test]
fn verify_status_retry_counter_and_reset() {
    let mut card = selected(SimOpenPgpCard::new());
    // Status query: no try spent.
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x82]), [0x63, 0xC3]);
    assert_eq!(card.process(&verify(0x82, b"654321")), [0x63, 0xC2]);
    assert_eq!(card.pw1_tries_left(), 2);
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    assert_eq!(card.pw1_tries_left(), 3);
    assert!(card.pw1_verified() && !card.pw1_verified_for_signing());
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x82]), [0x90, 0x00]);
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x81]), [0x63, 0xC3]);
    // P1 = FF resets the state.
    assert_eq!(card.process(&[0x00, 0x20, 0xFF, 0x82]), [0x90, 0x00]);
    assert!(!card.pw1_verified());
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x82]), [0x63, 0xC3]);
    // PW3, and bad references.
    assert_eq!(card.process(&verify(0x83, b"123456")), [0x63, 0xC2]);
    assert_eq!(card.process(&verify(0x83, b"12345678")), [0x90, 0x00]);
    assert!(card.pw3_verified());
    assert_eq!(card.process(&verify(0x80, b"123456")), [0x6A, 0x86]);
    assert_eq!(card.process(&verify(0x84, b"123456")), [0x6A, 0x86]);
    // Three wrong tries block PW1; then even the right PIN is refused.
    for left in [0xC2, 0xC1, 0xC0] {
        assert_eq!(card.process(&verify(0x81, b"000000")), [0x63, left]);
    }
    assert_eq!(card.process(&verify(0x81, b"123456")), [0x69, 0x83]);
    assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x82]), [0x69, 0x83]);
    assert_eq!(read(&mut card, 0xC4)[4..], [0, 0, 3]);
    // A power cycle forgets PW3, not the counters.
    card.power_on();
    assert!(!card.pw3_verified());
    assert_eq!(card.pw1_tries_left(), 0);
}

#[test]
fn rsa_signature_uses_pw1_once_and_counts() {
    let mut card = selected(SimOpenPgpCard::new());
    let (info, hash) = digest_info_sha256(b"hello");
    assert_eq!(card.process(&pso_cds(&info)), [0x69, 0x82]);
    // PW1 (82) is not PW1 (81).
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    assert_eq!(card.process(&pso_cds(&info)), [0x69, 0x82]);
    assert_eq!(card.process(&verify(0x81, b"123456")), [0x90, 0x00]);
    let (signature, status) = exchange(&mut card, &pso_cds(&info));
    assert_eq!(status, 0x9000);
    let PgpPublicKey::Rsa(public) = card.public_key(KeyRole::Signature).unwrap() else {
        panic!("not RSA")
    };
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &signature)
        .unwrap();
    assert_eq!(card.signature_counter(), 1);
    assert_eq!(read(&mut card, 0x93), [0, 0, 1]);
    // PW status byte 1 = 00: used up.
    assert!(!card.pw1_verified_for_signing());
    assert_eq!(card.process(&pso_cds(&info)), [0x69, 0x82]);
    // Too long for RSA-2048 (more than 40 % of the modulus).
    assert_eq!(card.process(&verify(0x81, b"123456")), [0x90, 0x00]);
    assert_eq!(card.process(&pso_cds(&[0x30; 103])), [0x67, 0x00]);
    assert_eq!(card.signature_counter(), 1);

    // PW status byte 1 = 01: several signatures per VERIFY.
    let mut card = selected(SimOpenPgpCard::new().with_pw1_valid_for_several_signatures(true));
    assert_eq!(read(&mut card, 0xC4)[0], 0x01);
    assert_eq!(card.process(&verify(0x81, b"123456")), [0x90, 0x00]);
    for _ in 0..2 {
        assert_eq!(exchange(&mut card, &pso_cds(&info)).1, 0x9000);
    }
    assert_eq!(card.signature_counter(), 2);
    assert!(card.pw1_verified_for_signing());
}

#[test]
fn ecc_signatures_are_raw() {
    let message = b"message to sign";
    // ECDSA P-256 and P-384: the hash in, r || s out.
    let p256_hash = Sha256::digest(message);
    let p384_hash = Sha384::digest(message);
    for (key_type, hash) in [
        (PgpKeyType::P256, &p256_hash[..]),
        (PgpKeyType::P384, &p384_hash[..]),
    ] {
        let mut card = selected(SimOpenPgpCard::new().with_key(KeyRole::Signature, key_type));
        assert_eq!(card.process(&verify(0x81, b"123456")), [0x90, 0x00]);
        let (signature, status) = exchange(&mut card, &pso_cds(hash));
        assert_eq!(status, 0x9000);
        match card.public_key(KeyRole::Signature).unwrap() {
            PgpPublicKey::P256(k) => {
                assert_eq!(signature.len(), 64);
                let sig = p256::ecdsa::Signature::from_slice(&signature).unwrap();
                k.verify_prehash(hash, &sig).unwrap();
            }
            PgpPublicKey::P384(k) => {
                assert_eq!(signature.len(), 96);
                let sig = p384::ecdsa::Signature::from_slice(&signature).unwrap();
                k.verify_prehash(hash, &sig).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            read(&mut card, 0xC1)[0],
            0x13,
            "ECDSA attributes for {key_type:?}"
        );
    }
    // EdDSA: the message in, R || S out.
    let mut card =
        selected(SimOpenPgpCard::new().with_key(KeyRole::Signature, PgpKeyType::Ed25519));
    assert_eq!(
        read(&mut card, 0xC1),
        [0x16, 0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01]
    );
    assert_eq!(card.process(&verify(0x81, b"123456")), [0x90, 0x00]);
    let (signature, status) = exchange(&mut card, &pso_cds(message));
    assert_eq!((signature.len(), status), (64, 0x9000));
    let PgpPublicKey::Ed25519(k) = card.public_key(KeyRole::Signature).unwrap() else {
        panic!("not Ed25519")
    };
    let sig = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    k.verify_strict(message, &sig).unwrap();
    let (template, _) = exchange(&mut card, &apdu(0, 0x47, 0x81, 0, &[0xB6, 0x00], true));
    assert_eq!(template, tlv(&[0x7F, 0x49], &tlv(&[0x86], k.as_bytes())));
}

#[test]
fn internal_authenticate_needs_pw1_82() {
    let (info, hash) = digest_info_sha256(b"challenge");
    let internal_authenticate = |input: &[u8]| apdu(0, 0x88, 0, 0, input, true);
    let mut card = selected(SimOpenPgpCard::new());
    assert_eq!(card.process(&verify(0x81, b"123456")), [0x90, 0x00]);
    assert_eq!(card.process(&internal_authenticate(&hash)), [0x69, 0x82]);
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    let (signature, status) = exchange(&mut card, &internal_authenticate(&hash));
    assert_eq!(status, 0x9000);
    let PgpPublicKey::P256(k) = card.public_key(KeyRole::Authentication).unwrap() else {
        panic!("not P-256")
    };
    let sig = p256::ecdsa::Signature::from_slice(&signature).unwrap();
    k.verify_prehash(&hash, &sig).unwrap();
    // PW1 (82) stays verified; the signature counter does not move.
    assert!(card.pw1_verified());
    assert_eq!(exchange(&mut card, &internal_authenticate(&hash)).1, 0x9000);
    assert_eq!(card.signature_counter(), 0);
    assert_eq!(
        card.process(&apdu(0, 0x88, 1, 0, &hash, true)),
        [0x6A, 0x86]
    );

    // RSA: a DigestInfo, padded by the card.
    let mut card =
        selected(SimOpenPgpCard::new().with_key(KeyRole::Authentication, PgpKeyType::Rsa2048));
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    let (signature, _) = exchange(&mut card, &internal_authenticate(&info));
    let PgpPublicKey::Rsa(k) = card.public_key(KeyRole::Authentication).unwrap() else {
        panic!("not RSA")
    };
    k.verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &signature)
        .unwrap();
    // The test certificate follows the key.
    let cert = card.certificate_der(KeyRole::Authentication).unwrap();
    let spki = PgpPublicKey::Rsa(k).to_spki_der();
    assert!(cert.windows(spki.len()).any(|w| w == spki));

    // EdDSA.
    let mut card =
        selected(SimOpenPgpCard::new().with_key(KeyRole::Authentication, PgpKeyType::Ed25519));
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    let (signature, _) = exchange(&mut card, &internal_authenticate(b"ssh blob"));
    let PgpPublicKey::Ed25519(k) = card.public_key(KeyRole::Authentication).unwrap() else {
        panic!("not Ed25519")
    };
    let sig = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    k.verify_strict(b"ssh blob", &sig).unwrap();
}

#[test]
fn rsa_decipher_removes_the_padding() {
    let mut card = selected(SimOpenPgpCard::new());
    let PgpPublicKey::Rsa(public) = card.public_key(KeyRole::Decryption).unwrap() else {
        panic!("not RSA")
    };
    let secret = b"a 32-byte session key, say......";
    let ciphertext = public
        .encrypt(&mut rsa::rand_core::OsRng, Pkcs1v15Encrypt, secret)
        .unwrap();
    let mut body = vec![0x00];
    body.extend_from_slice(&ciphertext);
    assert_eq!(card.process(&decipher(&body)), [0x69, 0x82]);
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    let response = card.process(&decipher(&body));
    assert_eq!(sw(&response), 0x9000);
    assert_eq!(data(&response), secret);
    // Over two chained short APDUs (257 bytes), answered in one.
    let (head, tail) = body.split_at(200);
    assert_eq!(
        card.process(&apdu(0x10, 0x2A, 0x80, 0x86, head, false)),
        [0x90, 0x00]
    );
    let response = card.process(&apdu(0x00, 0x2A, 0x80, 0x86, tail, true));
    assert_eq!(data(&response), secret);
    // Not a PKCS#1 v1.5 block, wrong length, no padding indicator.
    let mut garbage = vec![0x00];
    garbage.extend_from_slice(&[0x55; 256]);
    assert_eq!(card.process(&decipher(&garbage)), [0x6A, 0x80]);
    assert_eq!(card.process(&decipher(&body[..200])), [0x67, 0x00]);
    assert_eq!(card.process(&decipher(&[0x02; 257])), [0x6A, 0x80]);
    // An RSA key does no ECDH.
    assert_eq!(
        card.process(&decipher(&ecdh_body(&[0x04; 65]))),
        [0x69, 0x85]
    );
}

#[test]
fn ecdh_decipher_answers_the_shared_secret() {
    // P-256: the x coordinate.
    let mut card = selected(SimOpenPgpCard::new().with_key(KeyRole::Decryption, PgpKeyType::P256));
    assert_eq!(
        read(&mut card, 0xC2),
        [0x12, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
    );
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    let peer = p256::SecretKey::from_slice(&[7; 32]).unwrap();
    let PgpPublicKey::P256(card_public) = card.public_key(KeyRole::Decryption).unwrap() else {
        panic!("not P-256")
    };
    let expected = (p256::PublicKey::from(card_public).to_projective() * *peer.to_nonzero_scalar())
        .to_affine()
        .x();
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&peer.public_key(), false);
    let response = card.process(&decipher(&ecdh_body(point.as_bytes())));
    assert_eq!(sw(&response), 0x9000);
    assert_eq!(data(&response), &expected[..]);
    assert_eq!(
        card.process(&decipher(&ecdh_body(&[0x04; 65]))),
        [0x6A, 0x80]
    );
    assert_eq!(
        card.process(&decipher(&tlv(&[0xA6], &tlv(&[0x86], point.as_bytes())))),
        [0x6A, 0x80]
    );

    // X25519: the 32-byte result, with or without the 0x40 prefix.
    let mut card =
        selected(SimOpenPgpCard::new().with_key(KeyRole::Decryption, PgpKeyType::X25519));
    assert_eq!(
        read(&mut card, 0xC2),
        [0x12, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01]
    );
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    let peer = x25519_dalek::StaticSecret::from([9; 32]);
    let peer_public = x25519_dalek::PublicKey::from(&peer);
    let PgpPublicKey::X25519(card_public) = card.public_key(KeyRole::Decryption).unwrap() else {
        panic!("not X25519")
    };
    let expected = peer.diffie_hellman(&card_public);
    let response = card.process(&decipher(&ecdh_body(peer_public.as_bytes())));
    assert_eq!(data(&response), expected.as_bytes());
    let prefixed = [&[0x40][..], peer_public.as_bytes()].concat();
    let response = card.process(&decipher(&ecdh_body(&prefixed)));
    assert_eq!(data(&response), expected.as_bytes());
}

#[test]
fn change_reference_data() {
    let mut card = selected(SimOpenPgpCard::new());
    let change = |reference: u8, data: &[u8]| apdu(0, 0x24, 0, reference, data, false);
    assert_eq!(card.process(&change(0x81, b"000000654321")), [0x63, 0xC2]);
    assert_eq!(card.process(&change(0x81, b"123456654321")), [0x90, 0x00]);
    assert_eq!(card.pw1_tries_left(), 3);
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x63, 0xC2]);
    assert_eq!(card.process(&verify(0x82, b"654321")), [0x90, 0x00]);
    // A longer new PIN; a too-short one is refused (the old one checked).
    assert_eq!(
        card.process(&change(0x81, b"654321new-long-pin")),
        [0x90, 0x00]
    );
    assert_eq!(
        card.process(&change(0x81, b"new-long-pin12345")),
        [0x6A, 0x80]
    );
    assert_eq!(card.process(&verify(0x81, b"new-long-pin")), [0x90, 0x00]);
    // PW3; 82 is not a valid reference here.
    assert_eq!(
        card.process(&change(0x83, b"12345678admin-pin")),
        [0x90, 0x00]
    );
    assert_eq!(card.process(&verify(0x83, b"admin-pin")), [0x90, 0x00]);
    assert_eq!(card.process(&change(0x82, b"123456654321")), [0x6A, 0x86]);
    // Secrets never reach the log.
    let transcript = card.transcript();
    assert!(
        transcript.contains("00 24 00 81 0C <redacted>"),
        "{transcript}"
    );
    assert!(!transcript.contains("31 32 33 34 35 36"), "{transcript}");
}

#[test]
fn reset_retry_counter_with_resetting_code_or_pw3() {
    let mut card = selected(SimOpenPgpCard::new());
    for _ in 0..3 {
        card.process(&verify(0x82, b"000000"));
    }
    assert_eq!(card.pw1_tries_left(), 0);
    let reset = |p1: u8, data: &[u8]| apdu(0, 0x2C, p1, 0x81, data, false);
    // No Resetting Code yet.
    assert_eq!(card.resetting_code_tries_left(), 0);
    assert_eq!(card.process(&reset(0, b"87654321111111")), [0x69, 0x83]);
    // PUT DATA D3 needs PW3.
    let put_rc = apdu(0, 0xDA, 0x00, 0xD3, b"87654321", false);
    assert_eq!(card.process(&put_rc), [0x69, 0x82]);
    assert_eq!(card.process(&verify(0x83, b"12345678")), [0x90, 0x00]);
    assert_eq!(card.process(&put_rc), [0x90, 0x00]);
    assert_eq!(card.resetting_code_tries_left(), 3);
    assert_eq!(read(&mut card, 0xC4)[4..], [0, 3, 3]);
    card.power_on();
    card.process(SELECT);
    // Resetting Code || new PW1.
    assert_eq!(card.process(&reset(0, b"00000000111111")), [0x63, 0xC2]);
    assert_eq!(card.process(&reset(0, b"87654321111111")), [0x90, 0x00]);
    assert_eq!(
        (card.pw1_tries_left(), card.resetting_code_tries_left()),
        (3, 3)
    );
    assert_eq!(card.process(&verify(0x81, b"111111")), [0x90, 0x00]);
    // P1 02: the new PW1 alone, after PW3.
    assert_eq!(card.process(&reset(2, b"222222")), [0x69, 0x82]);
    assert_eq!(card.process(&verify(0x83, b"12345678")), [0x90, 0x00]);
    assert_eq!(card.process(&reset(2, b"22222")), [0x6A, 0x80]);
    assert_eq!(card.process(&reset(2, b"222222")), [0x90, 0x00]);
    assert_eq!(card.process(&verify(0x82, b"222222")), [0x90, 0x00]);
    assert_eq!(card.process(&reset(1, b"222222")), [0x6A, 0x86]);
    // The Resetting Code is secret in the log too.
    let transcript = card.transcript();
    assert!(
        transcript.contains("00 DA 00 D3 08 <redacted>"),
        "{transcript}"
    );
    assert!(!transcript.contains("38 37 36 35"), "{transcript}");

    // A card configured with a Resetting Code.
    let card = SimOpenPgpCard::new().with_resetting_code("resetting", 2);
    assert_eq!(card.resetting_code_tries_left(), 2);
}

#[test]
fn put_data_after_pw3() {
    let mut card = selected(SimOpenPgpCard::new());
    let put = |tag: u16, data: &[u8]| {
        let [p1, p2] = tag.to_be_bytes();
        apdu(0, 0xDA, p1, p2, data, false)
    };
    assert_eq!(card.process(&put(0x5B, b"Doe<<Jane")), [0x69, 0x82]);
    assert_eq!(card.process(&verify(0x83, b"12345678")), [0x90, 0x00]);
    assert_eq!(card.process(&put(0x5B, b"Doe<<Jane")), [0x90, 0x00]);
    assert_eq!(card.cardholder_name(), b"Doe<<Jane");
    assert_eq!(card.process(&put(0xC4, &[0x01])), [0x90, 0x00]);
    assert!(card.pw1_valid_for_several_signatures());
    assert_eq!(card.process(&put(0xC4, &[0x02])), [0x6A, 0x80]);
    assert_eq!(card.process(&put(0xC7, &[0xAB; 20])), [0x90, 0x00]);
    assert_eq!(card.fingerprint(KeyRole::Signature), [0xAB; 20]);
    assert_eq!(card.process(&put(0xC7, &[0xAB; 19])), [0x67, 0x00]);
    assert_eq!(card.process(&put(0xCF, &[0, 0, 0, 1])), [0x90, 0x00]);
    assert_eq!(read(&mut card, 0xCD)[4..8], [0, 0, 0, 1]);
    assert_eq!(card.process(&put(0x0104, b"admin only")), [0x90, 0x00]);
    assert_eq!(read(&mut card, 0x0104), b"admin only");
    assert_eq!(card.process(&put(0x1234, b"?")), [0x6A, 0x88]);
    // 0101 needs PW1 (82), not PW3.
    assert_eq!(card.process(&put(0x0101, b"user")), [0x69, 0x82]);
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x90, 0x00]);
    assert_eq!(card.process(&put(0x0101, b"user")), [0x90, 0x00]);
    assert_eq!(read(&mut card, 0x0101), b"user");
}

#[test]
fn cardholder_certificates_by_occurrence() {
    let mut card = selected(SimOpenPgpCard::new());
    let aut_cert = card
        .certificate_der(KeyRole::Authentication)
        .unwrap()
        .to_vec();
    assert_eq!(read(&mut card, 0x7F21), aut_cert);
    {
        use der::Decode;
        let cert = x509_cert::Certificate::from_der(&aut_cert).unwrap();
        assert_eq!(
            cert.tbs_certificate.subject.to_string(),
            "CN=cardsim OpenPGP Authentication key,O=p11card test"
        );
        assert_eq!(
            cert.tbs_certificate.issuer.to_string(),
            "CN=cardsim test CA,O=p11card test"
        );
        let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info).unwrap();
        let public = card.public_key(KeyRole::Authentication).unwrap();
        assert_eq!(spki, public.to_spki_der());
    }
    let select_data = |occurrence: u8| {
        apdu(
            0,
            0xA5,
            occurrence,
            0x04,
            &[0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21],
            false,
        )
    };
    // Third occurrence: SIG, empty.
    assert_eq!(card.process(&select_data(2)), [0x90, 0x00]);
    assert_eq!(card.process(&get_data(0x7F21)), [0x90, 0x00]);
    assert_eq!(card.process(&select_data(3)), [0x6A, 0x86]);
    assert_eq!(
        card.process(&apdu(0, 0xA5, 0, 0x04, &[0x5C, 0x02, 0x7F, 0x22], false)),
        [0x6A, 0x80]
    );
    // GET NEXT DATA walks AUT → DEC → SIG.
    assert_eq!(
        card.process(&apdu(0, 0xA5, 0, 0x04, &[0x5C, 0x02, 0x7F, 0x21], false)),
        [0x90, 0x00]
    );
    let next = [0x00, 0xCC, 0x7F, 0x21, 0x00];
    assert_eq!(card.process(&next), [0x90, 0x00]);
    assert_eq!(card.process(&next), [0x90, 0x00]);
    assert_eq!(card.process(&next), [0x6A, 0x88]);
    // PUT DATA 7F21 writes the selected occurrence (DEC here), after PW3.
    assert_eq!(card.process(&select_data(1)), [0x90, 0x00]);
    assert_eq!(card.process(&verify(0x83, b"12345678")), [0x90, 0x00]);
    let put = [&[0x00, 0xDA, 0x7F, 0x21, 0x03][..], b"DER"].concat();
    assert_eq!(card.process(&put), [0x90, 0x00]);
    assert_eq!(card.certificate_der(KeyRole::Decryption), Some(&b"DER"[..]));
    assert_eq!(read(&mut card, 0x7F21), b"DER");
    // A reset goes back to the first occurrence.
    card.power_on();
    card.process(SELECT);
    assert_eq!(read(&mut card, 0x7F21), aut_cert);
    let card = SimOpenPgpCard::new()
        .without_cert(KeyRole::Authentication)
        .with_test_cert(KeyRole::Signature);
    assert!(card.certificate_der(KeyRole::Authentication).is_none());
    assert!(card.certificate_der(KeyRole::Signature).is_some());
}

#[test]
fn algorithm_attributes_then_generate() {
    let mut card = selected(SimOpenPgpCard::new());
    let put_c1 = [
        &[0x00, 0xDA, 0x00, 0xC1, 0x0A][..],
        &[0x16, 0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01],
    ]
    .concat();
    let generate = apdu(0, 0x47, 0x80, 0, &[0xB6, 0x00], true);
    assert_eq!(card.process(&put_c1), [0x69, 0x82]);
    assert_eq!(card.process(&generate), [0x69, 0x82]);
    assert_eq!(card.process(&verify(0x83, b"12345678")), [0x90, 0x00]);
    // X25519 cannot sign.
    let bad = [
        &[0x00, 0xDA, 0x00, 0xC1, 0x0B][..],
        &[
            0x12, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01,
        ],
    ]
    .concat();
    assert_eq!(card.process(&bad), [0x6A, 0x80]);
    assert_eq!(card.process(&put_c1), [0x90, 0x00]);
    assert_eq!(card.key_type(KeyRole::Signature), None);
    assert_eq!(card.fingerprint(KeyRole::Signature), [0; 20]);
    assert_eq!(
        card.process(&apdu(0, 0x47, 0x81, 0, &[0xB6, 0x00], true)),
        [0x6A, 0x88]
    );
    let response = card.process(&generate);
    assert_eq!(sw(&response), 0x9000);
    let public = card.public_key(KeyRole::Signature).unwrap();
    assert_eq!(public.key_type(), PgpKeyType::Ed25519);
    assert_eq!(
        data(&response),
        tlv(&[0x7F, 0x49], &tlv(&[0x86], &public.ecc_point().unwrap()))
    );
    assert_eq!(read(&mut card, 0xDE)[..2], [1, 1]);
}

#[test]
fn fingerprints_follow_rfc_4880() {
    // The sample v4 Ed25519 key of RFC 9580 / draft-ietf-openpgp-rfc4880bis
    // (created 2014-08-19): fingerprint C959 BDBA ... 5A9A.
    let public = [
        0x3F, 0x09, 0x89, 0x94, 0xBD, 0xD9, 0x16, 0xED, 0x40, 0x53, 0x19, 0x79, 0x34, 0xE4, 0xA8,
        0x7C, 0x80, 0x73, 0x3A, 0x12, 0x80, 0xD6, 0x2F, 0x80, 0x10, 0x99, 0x2E, 0x43, 0xEE, 0x3B,
        0x24, 0x06,
    ];
    let key = PgpPublicKey::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap());
    assert_eq!(
        key.fingerprint(KeyRole::Signature, 0x53F3_5F0B),
        [
            0xC9, 0x59, 0xBD, 0xBA, 0xFA, 0x32, 0xA2, 0xF8, 0x9A, 0x15, 0x3B, 0x67, 0x8C, 0xFD,
            0xE1, 0x21, 0x97, 0x96, 0x5A, 0x9A
        ]
    );
    // Every embedded key has its own fingerprint.
    let mut seen = std::collections::HashSet::new();
    for role in KeyRole::ALL {
        for key_type in PgpKeyType::ALL.into_iter().filter(|t| t.supports(role)) {
            let key = PgpPrivateKey::embedded(key_type, role);
            assert!(seen.insert(key.public().fingerprint(role, KEY_CREATION_TIME)));
        }
    }
    assert_eq!(seen.len(), 12);
}

#[test]
#[should_panic(expected = "cannot be the Decryption key")]
fn ed25519_cannot_decrypt() {
    let _ = SimOpenPgpCard::new().with_key(KeyRole::Decryption, PgpKeyType::Ed25519);
}

#[test]
fn get_challenge_is_deterministic() {
    let mut a = selected(SimOpenPgpCard::new());
    let mut b = selected(SimOpenPgpCard::new());
    let challenge = [0x00, 0x84, 0x00, 0x00, 0x28];
    let first = a.process(&challenge);
    assert_eq!((first.len(), sw(&first)), (42, 0x9000));
    assert_eq!(b.process(&challenge), first);
    assert_ne!(a.process(&challenge), first);
    assert_eq!(a.process(&[0x00, 0x84, 0x00, 0x00]), [0x67, 0x00]);
    assert_eq!(
        a.process(&[0x00, 0x84, 0x00, 0x00, 0x00, 0x02, 0x00]),
        [0x67, 0x00]
    );
}

#[test]
fn misbehaviour_applies_to_the_openpgp_card() {
    let mut card = selected(SimOpenPgpCard::new());
    card.misbehaviour_mut().exact_le_get_data = true;
    let first = card.process(&get_data(0xC4));
    assert_eq!(first, [0x6C, 0x07]);
    let right = card.process(&[0x00, 0xCA, 0x00, 0xC4, 0x07]);
    assert_eq!(right, [0x00, 0x7F, 0x7F, 0x7F, 3, 0, 3, 0x90, 0x00]);
    card.misbehaviour_mut().exact_le_get_data = false;

    card.misbehaviour_mut().chunk_responses = Some(16);
    let (ard, status) = exchange(&mut card, &get_data(0x6E));
    assert_eq!(status, 0x9000);
    card.misbehaviour_mut().chunk_responses = None;
    assert_eq!(ard, read(&mut card, 0x6E));

    card.misbehaviour_mut().fail_next.push((0x20, 0x6581));
    assert_eq!(card.process(&verify(0x82, b"123456")), [0x65, 0x81]);
    assert_eq!(card.pw1_tries_left(), 3);
    card.misbehaviour_mut().truncate_next = Some(crate::Truncation::DropStatusWord);
    assert_eq!(
        card.process(&get_data(0xC4)),
        [0x00, 0x7F, 0x7F, 0x7F, 3, 0, 3]
    );
    assert_eq!(card.apdu_count(), card.log().len());
    card.clear_log();
    assert_eq!(card.apdu_count(), 0);
}
