//! The simulated MyEID card's command handling: file system, access
//! conditions, PIN tries, key generation, signing, deciphering, image.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign};
use sha2::{Digest, Sha256};

use super::*;

/// Sends `apdu`; returns (data, SW).
fn send(card: &mut SimMyEidCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut response = card.process(apdu);
    let sw2 = response.pop().unwrap();
    let sw1 = response.pop().unwrap();
    (response, u16::from_be_bytes([sw1, sw2]))
}

fn ok(card: &mut SimMyEidCard, apdu: &[u8]) -> Vec<u8> {
    let (data, status) = send(card, apdu);
    assert_eq!(status, 0x9000, "{apdu:02X?}");
    data
}

fn apdu(header: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = header.to_vec();
    out.push(data.len() as u8);
    out.extend_from_slice(data);
    out
}

fn padded(pin: &[u8]) -> Vec<u8> {
    let mut out = pin.to_vec();
    out.resize(8, 0xFF);
    out
}

/// A card after INITIALISE APPLET (MF: create with PIN 1, delete with PIN 3;
/// 5015 likewise) with PIN 1 = 123456 (PUK 12345678, 3 and 10 tries).
fn initialised() -> SimMyEidCard {
    let mut card = SimMyEidCard::new();
    ok(
        &mut card,
        &apdu(
            [0, 0xDA, 0x01, 0xE0],
            &[0xFF, 0xFF, 0x11, 0x3F, 0xFF, 0x11, 0x3F, 0xFF],
        ),
    );
    let mut record = padded(b"123456");
    record.extend(padded(b"12345678"));
    record.extend([3, 10, 0]);
    ok(&mut card, &apdu([0, 0xDA, 0x01, 0x01], &record));
    card
}

/// CREATE FILE of `fid` with descriptor, size and access conditions.
fn create(card: &mut SimMyEidCard, fid: u16, descriptor: u8, size: u16, acl: [u8; 3]) -> u16 {
    let mut fcp = vec![0x62, 0x17, 0x80, 0x02];
    fcp.extend(size.to_be_bytes());
    fcp.extend([0x82, 0x01, descriptor, 0x83, 0x02]);
    fcp.extend(fid.to_be_bytes());
    fcp.extend([0x86, 0x03]);
    fcp.extend(acl);
    fcp.extend([0x85, 0x02, 0, 0, 0x8A, 0x01, 0x00]);
    send(card, &apdu([0, 0xE0, 0, 0], &fcp)).1
}

fn select_path(card: &mut SimMyEidCard, path: &[u8]) -> (Vec<u8>, u16) {
    send(card, &apdu([0, 0xA4, 0x08, 0x00], path))
}

#[test]
fn factory_card_selects_mf_and_reports_version_and_capabilities() {
    let mut card = SimMyEidCard::new();
    ok(&mut card, &apdu([0, 0xA4, 0x04, 0x00], &MYEID_AID));
    let fcp = ok(&mut card, &apdu([0, 0xA4, 0x00, 0x00], &[0x3F, 0x00]));
    assert_eq!(fcp[0], 0x62);
    assert!(
        fcp.windows(3).any(|w| w == [0x82, 0x01, 0x38]),
        "DF descriptor"
    );
    assert!(fcp.ends_with(&[0x8A, 0x01, 0x01]), "creation state");
    let info = ok(&mut card, &[0, 0xCA, 0x01, 0xA0, 20]);
    assert_eq!((info.len(), &info[5..8]), (20, &MYEID_VERSION[..]));
    let caps = ok(&mut card, &[0, 0xCA, 0x01, 0xAA, 11]);
    assert_eq!(caps[3..5], [0x08, 0x00], "RSA 2048");
    assert_eq!(caps[9..11], [0x01, 0x00], "EC 256");
}

#[test]
fn files_are_created_written_read_and_deleted_under_their_access_conditions() {
    let mut card = initialised();
    assert_eq!(select_path(&mut card, &[0x50, 0x15]).1, 0x9000);
    // READ NONE, UPDATE PIN 1, DELETE PIN 3.
    assert_eq!(
        create(&mut card, 0x4401, 0x01, 16, [0x01, 0x3F, 0xFF]),
        0x9000
    );
    assert_eq!(
        create(&mut card, 0x4401, 0x01, 16, [0x01, 0x3F, 0xFF]),
        0x6A89
    );
    ok(&mut card, &apdu([0, 0xD6, 0, 2], b"abc"));
    assert_eq!(
        send(&mut card, &apdu([0, 0xD6, 0, 15], b"xy")).1,
        0x6700,
        "past the end"
    );
    let (fcp, _) = select_path(&mut card, &[0x50, 0x15, 0x44, 0x01]);
    assert!(
        fcp.windows(4).any(|w| w == [0x80, 0x02, 0x00, 0x10]),
        "size 16"
    );
    assert_eq!(ok(&mut card, &[0, 0xB0, 0, 0, 5]), [0, 0, b'a', b'b', b'c']);
    assert_eq!(send(&mut card, &[0, 0xB0, 0, 16, 1]).1, 0x6B00);

    // Activated: UPDATE needs PIN 1, DELETE PIN 3 (which does not exist).
    ok(&mut card, &apdu([0, 0x44, 0x04, 0x00], &MYEID_AID));
    assert_eq!(send(&mut card, &apdu([0, 0xD6, 0, 0], b"z")).1, 0x6982);
    ok(&mut card, &apdu([0, 0x20, 0, 1], &padded(b"123456")));
    ok(&mut card, &apdu([0, 0xD6, 0, 0], b"z"));
    assert_eq!(send(&mut card, &[0xA0, 0xE4, 0, 0]).1, 0x6982);
    // Read stays free after LOGOUT.
    ok(&mut card, &[0, 0x2E, 0, 0]);
    assert_eq!(ok(&mut card, &[0, 0xB0, 0, 0, 1]), b"z");
    assert_eq!(send(&mut card, &apdu([0, 0xD6, 0, 0], b"q")).1, 0x6982);
}

#[test]
fn a_wrong_pin_costs_exactly_one_try_and_blocks_after_the_last() {
    let mut card = initialised();
    ok(&mut card, &apdu([0, 0x44, 0x04, 0x00], &MYEID_AID));
    let verify = |pin: &[u8]| apdu([0, 0x20, 0, 1], &padded(pin));
    assert_eq!(
        send(&mut card, &[0, 0x20, 0, 1]).1,
        0x63C3,
        "status: 3 tries"
    );
    assert_eq!(send(&mut card, &verify(b"000000")).1, 0x63C2);
    assert_eq!(
        send(&mut card, &[0, 0x20, 0, 1]).1,
        0x63C2,
        "asking costs nothing"
    );
    ok(&mut card, &verify(b"123456"));
    assert_eq!(send(&mut card, &[0, 0x20, 0, 1]).1, 0x9000, "verified");
    assert_eq!(
        card.pin_tries_left(1),
        Some(3),
        "a right PIN restores the tries"
    );
    for left in [2, 1, 0] {
        assert_eq!(send(&mut card, &verify(b"000000")).1, 0x63C0 | left);
    }
    assert!(!card.pin_verified(1));
    assert_eq!(send(&mut card, &verify(b"123456")).1, 0x6983, "blocked");
    // The PUK unblocks it and sets a new PIN.
    let mut reset = padded(b"12345678");
    reset.extend(padded(b"654321"));
    ok(&mut card, &apdu([0, 0x2C, 0, 1], &reset));
    ok(&mut card, &verify(b"654321"));
    // CHANGE REFERENCE DATA with a wrong old PIN costs one try.
    let mut change = padded(b"999999");
    change.extend(padded(b"111111"));
    assert_eq!(send(&mut card, &apdu([0, 0x24, 0, 1], &change)).1, 0x63C2);
    assert_eq!(
        send(&mut card, &apdu([0, 0x20, 0, 2], &padded(b"123456"))).1,
        0x6A88
    );
}

/// Creates key EF `fid` (RSA-2048 or P-256, all uses behind PIN 1) in 5015,
/// generates its key, sets MSE for `template` with `algorithm`.
fn key_with_env(card: &mut SimMyEidCard, fid: u16, rsa: bool, template: u8, algorithm: u8) {
    select_path(card, &[0x50, 0x15]);
    let (descriptor, size) = if rsa { (0x11, 2048) } else { (0x22, 256) };
    assert_eq!(
        create(card, fid, descriptor, size, [0x11, 0x11, 0xFF]),
        0x9000
    );
    let data: &[u8] = if rsa {
        &[0x30, 0x05, 0x81, 0x03, 0x01, 0x00, 0x01]
    } else {
        &[]
    };
    if data.is_empty() {
        ok(card, &[0, 0x46, 0, 0]);
    } else {
        ok(card, &apdu([0, 0x46, 0, 0], data));
    }
    select_path(card, &[0x50, 0x15]);
    let [hi, lo] = fid.to_be_bytes();
    let env = [0x80, 0x01, algorithm, 0x81, 0x02, hi, lo, 0x84, 0x01, 0x00];
    ok(card, &apdu([0, 0x22, 0x41, template], &env));
}

#[test]
fn ecdsa_signature_verifies_under_the_generated_key_and_needs_the_pin() {
    let mut card = initialised();
    key_with_env(&mut card, 0x4B02, false, 0xB6, 0x04);
    ok(&mut card, &apdu([0, 0x44, 0x04, 0x00], &MYEID_AID));
    let hash = Sha256::digest(b"hello MyEID");
    let sign = {
        let mut a = apdu([0, 0x2A, 0x9E, 0x9A], &hash);
        a.push(0);
        a
    };
    // The activation reset nothing, but no PIN is verified.
    assert_eq!(send(&mut card, &sign).1, 0x6982);
    ok(&mut card, &apdu([0, 0x20, 0, 1], &padded(b"123456")));
    let der = ok(&mut card, &sign);
    select_path(&mut card, &[0x50, 0x15, 0x4B, 0x02]);
    let point = ok(&mut card, &[0, 0xCA, 0x01, 0x86, 0]);
    assert_eq!(point[..2], [0x86, 0x41]);
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point[2..]).unwrap();
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
    key.verify_prehash(&hash, &sig).unwrap();
    assert_eq!(card.public_keys().len(), 1);
}

#[test]
fn rsa_signs_with_card_padding_and_deciphers_in_chained_apdus() {
    let mut card = initialised();
    key_with_env(&mut card, 0x4B01, true, 0xB6, 0x02);
    select_path(&mut card, &[0x50, 0x15, 0x4B, 0x01]);
    let modulus = ok(&mut card, &[0, 0xCA, 0x01, 0x01, 0]);
    assert_eq!(modulus.len(), 256);
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&modulus),
        rsa::BigUint::from(65537u32),
    )
    .unwrap();
    // Signature: the card pads the DigestInfo (algorithm reference 02).
    let hash = Sha256::digest(b"hello");
    let digest_info = [
        &[
            0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ][..],
        &hash,
    ]
    .concat();
    select_path(&mut card, &[0x50, 0x15]);
    let mut sign = apdu([0, 0x2A, 0x9E, 0x9A], &digest_info);
    sign.push(0);
    let signature = ok(&mut card, &sign);
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &signature)
        .unwrap();

    // Decipher: 00 || 256-byte cryptogram, sent as a chain (CLA 10).
    let cryptogram = public
        .encrypt(&mut OsRng, Pkcs1v15Encrypt, b"secret")
        .unwrap();
    ok(
        &mut card,
        &apdu(
            [0, 0x22, 0x41, 0xB8],
            &[0x80, 0x01, 0x02, 0x81, 0x02, 0x4B, 0x01],
        ),
    );
    let mut data = vec![0x00];
    data.extend(&cryptogram);
    ok(&mut card, &apdu([0x10, 0x2A, 0x80, 0x86], &data[..200]));
    let mut last = apdu([0, 0x2A, 0x80, 0x86], &data[200..]);
    last.push(0);
    assert_eq!(ok(&mut card, &last), b"secret");
    // The same in two halves with padding indicators 81 and 82.
    let mut first = vec![0x81];
    first.extend(&cryptogram[..128]);
    ok(&mut card, &apdu([0, 0x2A, 0x80, 0x86], &first));
    let mut second = vec![0x82];
    second.extend(&cryptogram[128..]);
    let mut second = apdu([0, 0x2A, 0x80, 0x86], &second);
    second.push(0);
    assert_eq!(ok(&mut card, &second), b"secret");
}

#[test]
fn image_round_trip_keeps_files_keys_pins_and_life_cycle() {
    let mut card = initialised();
    key_with_env(&mut card, 0x4B02, false, 0xB6, 0x04);
    select_path(&mut card, &[0x50, 0x15]);
    create(&mut card, 0x4401, 0x01, 4, [0x00, 0x3F, 0xFF]);
    ok(&mut card, &apdu([0, 0xD6, 0, 0], b"p15!"));
    ok(&mut card, &apdu([0, 0x44, 0x04, 0x00], &MYEID_AID));
    assert_eq!(
        send(&mut card, &apdu([0, 0x20, 0, 1], &padded(b"000000"))).1,
        0x63C2
    );
    assert!(card.take_changed());
    let image = card.to_image();
    let mut loaded = SimMyEidCard::from_image(&image).unwrap();
    assert_eq!(loaded.to_image(), image);
    assert!(loaded.activated());
    assert_eq!(loaded.pin_tries_left(1), Some(2));
    assert_eq!(loaded.public_keys()[0].1, card.public_keys()[0].1);
    select_path(&mut loaded, &[0x50, 0x15, 0x44, 0x01]);
    assert_eq!(ok(&mut loaded, &[0, 0xB0, 0, 0, 4]), b"p15!");
    assert!(SimMyEidCard::from_image("not an image").is_err());
}

/// The card OpenSC's pkcs15-init personalised (tests/realstack/pkcs15/).
const PERSONALISED: &str = include_str!("../../../tests/realstack/pkcs15/myeid-personalised.image");

#[test]
fn the_image_pkcs15_init_wrote_loads_and_signs_with_its_ec_key() {
    let mut card = SimMyEidCard::from_image(PERSONALISED).unwrap();
    assert!(card.activated());
    assert_eq!(
        (
            card.pin_tries_left(1),
            card.pin_tries_left(2),
            card.pin_tries_left(3)
        ),
        (Some(3), Some(3), Some(3))
    );
    // (at least the RSA and the EC key; personalise.sh adds more)
    assert!(card.public_keys().len() >= 2);
    // EF.DIR names the PKCS#15 application; the ODF is in 5015.
    select_path(&mut card, &[0x2F, 0x00]);
    let dir = ok(&mut card, &[0, 0xB0, 0, 0, 0]);
    assert!(dir.windows(MYEID_AID.len()).any(|w| w == MYEID_AID));
    let (_, status) = select_path(&mut card, &[0x50, 0x15, 0x50, 0x31]);
    assert_eq!(status, 0x9000);
    // Public key EF 5502 holds the SubjectPublicKeyInfo of key EF 4B02.
    select_path(&mut card, &[0x50, 0x15, 0x55, 0x02]);
    let spki = ok(&mut card, &[0, 0xB0, 0, 0, 91]);
    let key = p256::PublicKey::from_public_key_der(&spki).unwrap();
    ok(&mut card, &apdu([0, 0x20, 0, 1], &padded(b"123456")));
    select_path(&mut card, &[0x50, 0x15]);
    ok(
        &mut card,
        &apdu(
            [0, 0x22, 0x41, 0xB6],
            &[0x80, 0x01, 0x04, 0x81, 0x02, 0x4B, 0x02],
        ),
    );
    let hash = Sha256::digest(b"personalised");
    let mut sign = apdu([0, 0x2A, 0x9E, 0x9A], &hash);
    sign.push(0);
    let sig = p256::ecdsa::Signature::from_der(&ok(&mut card, &sign)).unwrap();
    p256::ecdsa::VerifyingKey::from(key)
        .verify_prehash(&hash, &sig)
        .unwrap();
}

#[test]
fn the_personalised_card_answers_through_a_simulated_reader() {
    use p11card::transport::ReaderBackend;

    let card = SimMyEidCard::from_image(PERSONALISED).unwrap();
    let (backend, handle) = crate::SimBackend::with_card(card);
    let mut transport = backend.connect(crate::DEFAULT_READER).unwrap();
    let response = transport
        .with_transaction(|link| link.transmit(&[0x00, 0xCA, 0x01, 0xA0, 20]))
        .unwrap()
        .unwrap();
    assert_eq!(response[5..8], MYEID_VERSION);
    assert_eq!(handle.apdu_count(), 1);
}

/// pkcs15-init gave the signature PIN (auth ID 02) PIN object 2 and key EF
/// 4B03 the access conditions of PIN 2: the user PIN does not open it, the
/// signature PIN does, and LOGOUT of reference 2 closes it again, leaving
/// PIN 1 verified.
#[test]
fn the_signature_key_of_the_image_wants_pin_2() {
    let mut card = SimMyEidCard::from_image(PERSONALISED).unwrap();
    let hash = Sha256::digest(b"non-repudiation");
    let mut sign = apdu([0, 0x2A, 0x9E, 0x9A], &hash);
    sign.push(0);
    let mse = apdu(
        [0, 0x22, 0x41, 0xB6],
        &[0x80, 0x01, 0x04, 0x81, 0x02, 0x4B, 0x03],
    );
    ok(&mut card, &apdu([0, 0x20, 0, 1], &padded(b"123456")));
    select_path(&mut card, &[0x50, 0x15]);
    ok(&mut card, &mse);
    assert_eq!(send(&mut card, &sign).1, 0x6982);
    // The user PIN is not PIN 2's value: a wrong try of PIN 2 only.
    assert_eq!(
        send(&mut card, &apdu([0, 0x20, 0, 2], &padded(b"123456"))).1,
        0x63C2
    );
    assert_eq!(card.pin_tries_left(1), Some(3));
    assert!(card.pin_verified(1));
    ok(&mut card, &apdu([0, 0x20, 0, 2], &padded(b"654321")));
    ok(&mut card, &mse);
    ok(&mut card, &sign);
    ok(&mut card, &[0, 0x2E, 0, 2]);
    assert!(!card.pin_verified(2) && card.pin_verified(1));
    ok(&mut card, &mse);
    assert_eq!(send(&mut card, &sign).1, 0x6982);
}
