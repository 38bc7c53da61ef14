//! The OpenPGP engine's card conversations as transcripts: what the module
//! sends (hex) and what a card answers, checked command by command, in the
//! order OpenPGP card spec v3.4 §7 describes them.

use super::*;
use crate::card::EngineState;
use crate::iso7816::ChannelOptions;
use crate::profile::NoRecall;
use crate::transport::{Transmit, TransportError};
use rsa::traits::PublicKeyParts;
use std::collections::VecDeque;

/// ATR of an OpenPGP card v3 / Nitrokey Pro (card capabilities announce
/// extended Lc/Le).
const ATR_V3: &str = "3B DA 18 FF 81 B1 FE 75 1F 03 00 31 F5 73 C0 01 60 00 90 00 1C";
/// ATR of Gnuk 1.0 (command chaining only: short APDUs).
const ATR_GNUK: &str = "3B DA 11 FF 81 B1 FE 55 1F 03 00 31 84 73 80 01 80 00 90 00 E4";

fn bytes(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02X}")).collect()
}

/// A scripted card: each command must equal the next expected one; the
/// card answers the scripted response (data followed by SW1 SW2).
struct Script {
    steps: VecDeque<(Vec<u8>, Vec<u8>)>,
    seen: Vec<String>,
}

impl Script {
    fn new(steps: Vec<(String, Vec<u8>)>) -> Self {
        Script {
            steps: steps.into_iter().map(|(c, r)| (bytes(&c), r)).collect(),
            seen: Vec::new(),
        }
    }

    fn done(&self) {
        assert!(
            self.steps.is_empty(),
            "the card still expected {} commands; it saw:\n{}",
            self.steps.len(),
            self.seen.join("\n")
        );
    }
}

impl Transmit for Script {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.seen.push(hex(command));
        let Some((expected, response)) = self.steps.pop_front() else {
            panic!(
                "unexpected command {}; seen:\n{}",
                hex(command),
                self.seen.join("\n")
            );
        };
        assert_eq!(
            hex(command),
            hex(&expected),
            "command differs from the transcript; seen:\n{}",
            self.seen.join("\n")
        );
        Ok(response)
    }
}

/// A response: data, then the status word.
fn answer(data: &[u8], sw: u16) -> Vec<u8> {
    let mut out = data.to_vec();
    out.extend_from_slice(&sw.to_be_bytes());
    out
}

fn ok(data: &[u8]) -> Vec<u8> {
    answer(data, 0x9000)
}

fn sw(sw: u16) -> Vec<u8> {
    answer(&[], sw)
}

fn step(command: &str, response: Vec<u8>) -> (String, Vec<u8>) {
    (command.to_owned(), response)
}

fn profile() -> Arc<Profile> {
    Arc::new(Profile::from_toml(include_str!("../../../cardprofiles/openpgp.toml")).unwrap())
}

/// The engine with what it learned about the one card of a test (the
/// card layer keeps that with the card).
struct Engine {
    app: OpenPgpApp,
    card: std::cell::RefCell<EngineState>,
}

impl From<OpenPgpApp> for Engine {
    fn from(app: OpenPgpApp) -> Engine {
        Engine {
            app,
            card: Default::default(),
        }
    }
}

impl std::ops::Deref for Engine {
    type Target = OpenPgpApp;

    fn deref(&self) -> &OpenPgpApp {
        &self.app
    }
}

impl Engine {
    /// What the engine learned about the card so far.
    fn state(&self) -> CardState {
        *self
            .card
            .borrow_mut()
            .get_or_insert_with(|| self.app.initial_state())
    }

    fn update_state(&self, f: impl FnOnce(&mut CardState)) {
        f(self
            .card
            .borrow_mut()
            .get_or_insert_with(|| self.app.initial_state()));
    }
}

fn engine(atr: &str) -> Engine {
    OpenPgpApp::new(profile(), &bytes(atr)).into()
}

/// Runs `f` over a channel to the scripted card, framed as `app` frames it.
fn with_card<R>(
    app: &Engine,
    steps: Vec<(String, Vec<u8>)>,
    f: impl FnOnce(&mut Transaction) -> R,
) -> R {
    let mut script = Script::new(steps);
    let result = {
        let mut learned = app.card.borrow_mut();
        let mut channel =
            Transaction::with_engine_state(&mut script, ChannelOptions::default(), &mut learned);
        app.frame(&mut channel);
        f(&mut channel)
    };
    script.done();
    result
}

fn rsa_test_key() -> rsa::RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_der(include_bytes!("../../../tests/data/rsa1024.der")).unwrap()
}

fn aut_certificate() -> Vec<u8> {
    include_bytes!("../../../tests/data/p256-openpgp-aut.der").to_vec()
}

fn aut_point() -> Vec<u8> {
    match parse_certificate(&aut_certificate()).unwrap().public_key {
        PublicKey::Ec { point, .. } => point,
        other => panic!("not an EC key: {other:?}"),
    }
}

const X25519_POINT: [u8; 32] = [0x11; 32];

/// Application Related Data of a v3.4 card: RSA-1024 signature key,
/// X25519 decryption key, P-256 authentication key, PW1 valid for one
/// signature, no Resetting Code.
fn application_related_data(pw_status: &[u8]) -> Vec<u8> {
    let mut discretionary = Vec::new();
    for (tag, value) in [
        (0xC0, bytes("3F 00 10 00 10 00 10 00 00 01")),
        (0xC1, bytes("01 04 00 00 11 00")),
        (0xC2, bytes("12 2B 06 01 04 01 97 55 01 05 01")),
        (0xC3, bytes("13 2A 86 48 CE 3D 03 01 07")),
        (0xC4, pw_status.to_vec()),
        (0xC5, vec![0xAB; 60]),
        (0xCD, vec![0x69; 12]),
    ] {
        discretionary.extend(tlv::encode(tag, &value));
    }
    let mut inner = tlv::encode(
        0x4F,
        &bytes("D2 76 00 01 24 01 03 04 00 00 56 50 47 50 00 00"),
    );
    inner.extend(tlv::encode(0x5F52, &bytes("00 31 F5 73 C0 01 60 05 90 00")));
    inner.extend(tlv::encode(0x7F66, &bytes("02 02 1D B9 02 02 1D B9")));
    inner.extend(tlv::encode(0x73, &discretionary));
    tlv::encode(0x6E, &inner)
}

fn rsa_public_template(key: &rsa::RsaPrivateKey) -> Vec<u8> {
    let mut fields = tlv::encode(0x81, &key.n().to_bytes_be());
    fields.extend(tlv::encode(0x82, &key.e().to_bytes_be()));
    tlv::encode(0x7F49, &fields)
}

fn point_template(point: &[u8]) -> Vec<u8> {
    tlv::encode(0x7F49, &tlv::encode(0x86, point))
}

#[test]
fn finds_historical_bytes_and_extended_length_in_atrs() {
    let v3 = bytes(ATR_V3);
    assert_eq!(
        atr_historical_bytes(&v3),
        Some(&bytes("00 31 F5 73 C0 01 60 00 90 00")[..])
    );
    assert!(announces_extended_length(
        atr_historical_bytes(&v3).unwrap()
    ));
    assert!(!announces_extended_length(
        atr_historical_bytes(&bytes(ATR_GNUK)).unwrap()
    ));
    // YubiKey 5: category 80, card capabilities C0 21 C0.
    let yubikey5 = bytes("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40");
    assert!(announces_extended_length(
        atr_historical_bytes(&yubikey5).unwrap()
    ));
    // Nitrokey 3: issuer data only.
    let nitrokey3 = bytes("3B 8F 01 80 5D 4E 69 74 72 6F 6B 65 79 00 00 00 00 00 6A");
    assert!(!announces_extended_length(
        atr_historical_bytes(&nitrokey3).unwrap()
    ));
    assert_eq!(atr_historical_bytes(&[0x3B]), None);
    assert_eq!(atr_historical_bytes(&[0x3B, 0xFF, 0x00]), None);
    assert!(!announces_extended_length(&[0x80, 0x73, 0xC0]));
}

#[test]
fn parses_algorithm_attributes() {
    assert_eq!(
        Algorithm::parse(&bytes("01 08 00 00 20 00")),
        Some(Algorithm::Rsa(2048))
    );
    assert_eq!(
        Algorithm::parse(&bytes("13 2B 81 04 00 22")),
        Some(Algorithm::Ecdsa(Curve::P384))
    );
    assert_eq!(
        Algorithm::parse(&bytes("12 2A 86 48 CE 3D 03 01 07 FF")),
        Some(Algorithm::Ecdh(Curve::P256))
    );
    assert_eq!(
        Algorithm::parse(&bytes("16 2B 06 01 04 01 DA 47 0F 01")),
        Some(Algorithm::Ed25519)
    );
    assert_eq!(
        Algorithm::parse(&bytes("12 2B 06 01 04 01 97 55 01 05 01")),
        Some(Algorithm::X25519)
    );
    // P-521 and brainpoolP256r1 are not supported; garbage is not a key.
    assert_eq!(Algorithm::parse(&bytes("13 2B 81 04 00 23")), None);
    assert_eq!(
        Algorithm::parse(&bytes("13 2B 24 03 03 02 08 01 01 07")),
        None
    );
    assert_eq!(Algorithm::parse(&[0x01]), None);
    assert_eq!(Algorithm::parse(&[]), None);
}

#[test]
fn shows_the_cardholder_name_as_people_write_it() {
    assert_eq!(
        display_name(b"Tester<<Virtpgp").as_deref(),
        Some("Virtpgp Tester")
    );
    assert_eq!(
        display_name(b"Doe<<John<Paul").as_deref(),
        Some("John Paul Doe")
    );
    assert_eq!(display_name(b"Plain Name").as_deref(), Some("Plain Name"));
    assert_eq!(display_name(b""), None);
    assert_eq!(display_name(b"<<"), None);
}

#[test]
fn reads_the_card_with_extended_apdus() {
    let app = engine(ATR_V3);
    let rsa = rsa_test_key();
    let counter = tlv::encode(0x7A, &tlv::encode(0x93, &[0, 0, 42]));
    let steps = vec![
        // GET DATA 6E, extended Le = 0000: one response (spec §7.2.6).
        step(
            "00 CA 00 6E 00 00 00",
            ok(&application_related_data(&bytes("00 7F 7F 7F 03 00 03"))),
        ),
        // GENERATE ASYMMETRIC KEY PAIR, read mode, for B6, B8, A4 (§7.2.14).
        step(
            "00 47 81 00 00 00 02 B6 00 00 00",
            ok(&rsa_public_template(&rsa)),
        ),
        step(
            "00 47 81 00 00 00 02 B8 00 00 00",
            ok(&point_template(&X25519_POINT)),
        ),
        step(
            "00 47 81 00 00 00 02 A4 00 00 00",
            ok(&point_template(&aut_point())),
        ),
        // SELECT DATA of the first 7F21 occurrence, then GET DATA and GET
        // NEXT DATA (§7.2.5, §7.2.7). The certificate sits in the second
        // occurrence here: it is matched to its key by public key.
        step("00 A5 00 04 06 60 04 5C 02 7F 21", sw(0x9000)),
        step("00 CA 7F 21 00 00 00", ok(&[])),
        step("00 CC 7F 21 00 00 00", ok(&aut_certificate())),
        step("00 CC 7F 21 00 00 00", ok(&[])),
        step("00 CA 00 5B 00 00 00", ok(b"Tester<<Virtpgp")),
        step("00 CA 00 7A 00 00 00", ok(&counter)),
    ];
    let info = with_card(&app, steps, |channel| app.read_card(channel, &NoRecall)).unwrap();
    assert_eq!(info.label, "Virtpgp Tester");
    assert_eq!(info.serial, "000056504750");
    assert_eq!(info.manufacturer, "test card");
    assert_eq!(info.signature_counter, Some(42));
    assert_eq!(
        info.pin,
        Some(PinStatus {
            tries_left: Some(3),
            verified: false,
            blocked: false
        })
    );
    let roles: Vec<KeyRole> = info.keys.iter().map(|k| k.role).collect();
    assert_eq!(
        roles,
        [
            OpenPgpRole::Signature.into(),
            OpenPgpRole::Decryption.into(),
            OpenPgpRole::Authentication.into()
        ]
    );
    let ids: Vec<&[u8]> = info.keys.iter().map(|k| k.id.as_slice()).collect();
    assert_eq!(ids, [&[1u8][..], &[2], &[3]]);

    let sig = &info.keys[0];
    assert!(sig.can_sign && sig.card_pads && !sig.can_decrypt && !sig.can_derive);
    assert!(sig.always_authenticate, "PW1 is valid for one signature");
    assert_eq!(sig.pin_reference, 0x81);
    assert_eq!(sig.public_key.bits(), 1024);
    assert!(sig.certificate.is_none());

    let dec = &info.keys[1];
    assert_eq!(
        dec.public_key,
        PublicKey::X25519 {
            point: X25519_POINT.to_vec()
        }
    );
    assert!(dec.can_derive && !dec.can_sign && !dec.can_decrypt);
    assert_eq!(dec.pin_reference, 0x82);

    let aut = &info.keys[2];
    assert!(aut.can_sign && !aut.always_authenticate && !aut.card_pads);
    assert_eq!(aut.certificate.as_deref(), Some(&aut_certificate()[..]));
    assert!(app.state().extended);
    assert!(app.state().single_signature && app.state().has_signature_key);
}

#[test]
fn reads_a_short_apdu_card_with_get_response_and_skips_empty_slots() {
    let app = engine(ATR_GNUK);
    let mut data = application_related_data(&bytes("01 7F 7F 7F 03 03 03"));
    // A v2.0 card without cardholder certificates, whose historical bytes
    // announce chaining only: short APDUs, 61xx and GET RESPONSE.
    let rid = bytes("D2 76 00 01 24 01");
    let aid_version = data.windows(6).position(|w| w == rid).unwrap() + 6;
    data[aid_version] = 0x02;
    data[aid_version + 1] = 0x00;
    let historical = bytes("00 31 F5 73 C0 01 60 05 90 00");
    let at = data
        .windows(historical.len())
        .position(|w| w == historical)
        .unwrap();
    data[at..at + historical.len()].copy_from_slice(&bytes("00 31 84 73 80 01 80 05 90 00"));
    // Only the signature key exists: the others' fingerprints and times are
    // zero, so nothing says whether they exist; the card answers 6A88.
    let c5 = data.windows(2).position(|w| w == [0xC5, 0x3C]).unwrap() + 2;
    data[c5 + 20..c5 + 60].fill(0);
    let cd = data.windows(2).position(|w| w == [0xCD, 0x0C]).unwrap() + 2;
    data[cd + 4..cd + 12].fill(0);
    let (first, rest) = data.split_at(data.len() / 2);
    let rsa = rsa_test_key();
    let steps = vec![
        step("00 CA 00 6E 00", answer(first, 0x6100 | rest.len() as u16)),
        step(&format!("00 C0 00 00 {:02X}", rest.len()), ok(rest)),
        step("00 47 81 00 02 B6 00 00", ok(&rsa_public_template(&rsa))),
        step("00 47 81 00 02 B8 00 00", sw(0x6A88)),
        step("00 47 81 00 02 A4 00 00", sw(0x6A88)),
        // A v2 card has one cardholder certificate DO, empty here.
        step("00 CA 7F 21 00", sw(0x6A88)),
        step("00 CA 00 5B 00", sw(0x6A88)),
        step(
            "00 CA 00 7A 00",
            ok(&tlv::encode(0x7A, &tlv::encode(0x93, &[0, 1, 0]))),
        ),
    ];
    let info = with_card(&app, steps, |channel| app.read_card(channel, &NoRecall)).unwrap();
    assert_eq!(info.label, "OpenPGP card");
    assert_eq!(info.keys.len(), 1);
    assert!(
        !info.keys[0].always_authenticate,
        "PW1 lasts for many signatures"
    );
    assert_eq!(info.signature_counter, Some(256));
    assert!(!app.state().extended);
}

fn ready_engine(single_signature: bool) -> Engine {
    let app = engine(ATR_V3);
    app.update_state(|s| {
        s.single_signature = single_signature;
        s.has_signature_key = true;
    });
    app
}

fn key(role: &str, public_key: PublicKey) -> KeyInfo {
    let (reference, pin, typed) = match role {
        "signature" => (0xB6, 0x81, OpenPgpRole::Signature),
        "decryption" => (0xB8, 0x82, OpenPgpRole::Decryption),
        _ => (0xA4, 0x82, OpenPgpRole::Authentication),
    };
    KeyInfo {
        reference,
        id: vec![1],
        label: role.into(),
        role: typed.into(),
        counts_signatures: role == "signature",
        card_pads: public_key.is_rsa(),
        recalled: false,
        refusals: Default::default(),
        public_key,
        certificate: None,
        always_authenticate: false,
        no_pin: false,
        own_pin: false,
        pin_reference: pin,
        can_sign: role != "decryption",
        can_decrypt: role == "decryption",
        can_derive: role == "decryption",
    }
}

fn rsa_public(key: &rsa::RsaPrivateKey) -> PublicKey {
    PublicKey::Rsa {
        modulus: key.n().to_bytes_be(),
        public_exponent: key.e().to_bytes_be(),
    }
}

#[test]
fn login_verifies_pw1_for_both_modes_when_it_lasts() {
    // VERIFY 82 (decryption, authentication), then 81 (signature), §7.2.2.
    let app = ready_engine(false);
    let steps = vec![
        step("00 20 00 82 06 31 32 33 34 35 36", sw(0x9000)),
        step("00 20 00 81 06 31 32 33 34 35 36", sw(0x9000)),
    ];
    with_card(&app, steps, |channel| app.verify_pin(channel, b"123456")).unwrap();
}

#[test]
fn login_leaves_mode_81_to_each_signature_when_pw1_lasts_one() {
    let app = ready_engine(true);
    let steps = vec![step("00 20 00 82 06 31 32 33 34 35 36", sw(0x9000))];
    with_card(&app, steps, |channel| app.verify_pin(channel, b"123456")).unwrap();
    // The context-specific login before a signature verifies 81.
    let sig = key("signature", rsa_public(&rsa_test_key()));
    let steps = vec![step("00 20 00 81 06 31 32 33 34 35 36", sw(0x9000))];
    with_card(&app, steps, |channel| {
        app.verify_pin_for_key(channel, &sig, b"123456")
    })
    .unwrap();
}

#[test]
fn wrong_and_blocked_pins_are_reported_with_the_tries() {
    let app = ready_engine(false);
    let steps = vec![step("00 20 00 82 06 36 35 34 33 32 31", sw(0x63C2))];
    let result = with_card(&app, steps, |channel| app.verify_pin(channel, b"654321"));
    assert_eq!(result, Err(AppError::PinIncorrect(Some(2))));
    let steps = vec![step("00 20 00 82 06 36 35 34 33 32 31", sw(0x6983))];
    let result = with_card(&app, steps, |channel| app.verify_pin(channel, b"654321"));
    assert_eq!(result, Err(AppError::PinLocked));
    // Too short for PW1: refused before any APDU.
    let result = with_card(&app, vec![], |channel| app.verify_pin(channel, b"12345"));
    assert_eq!(result, Err(AppError::PinLength));
}

#[test]
fn signs_a_digest_info_with_pso_cds() {
    let app = ready_engine(false);
    let rsa = rsa_test_key();
    let sig = key("signature", rsa_public(&rsa));
    let hash = crypto::HashAlg::Sha256.digest(b"hello");
    let digest_info = crypto::HashAlg::Sha256.digest_info(&hash);
    let signature = rsa
        .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &digest_info)
        .unwrap();
    // PSO: COMPUTE DIGITAL SIGNATURE (§7.2.10): the DigestInfo; the card pads.
    let command = format!("00 2A 9E 9A 00 00 33 {} 00 00", hex(&digest_info));
    let steps = vec![step(&command, ok(&signature))];
    let result = with_card(&app, steps, |channel| {
        app.sign(
            channel,
            &sig,
            SignInput::RsaPkcs1(&digest_info),
            &Verified::for_engine_tests(),
        )
    });
    assert_eq!(result.unwrap(), signature);
    // An answer that does not verify is passed on: the module checks every
    // signature with the public key (module::signing), whatever the engine.
    let steps = vec![step(&command, ok(&[0x42; 128]))];
    let result = with_card(&app, steps, |channel| {
        app.sign(
            channel,
            &sig,
            SignInput::RsaPkcs1(&digest_info),
            &Verified::for_engine_tests(),
        )
    });
    assert_eq!(result.unwrap(), [0x42; 128]);
    // Not logged in: 6982.
    let steps = vec![step(&command, sw(0x6982))];
    let result = with_card(&app, steps, |channel| {
        app.sign(
            channel,
            &sig,
            SignInput::RsaPkcs1(&digest_info),
            &Verified::for_engine_tests(),
        )
    });
    assert_eq!(result, Err(AppError::NotAuthenticated));
    // Raw RSA is not something an OpenPGP card does.
    let result = with_card(&app, vec![], |channel| {
        app.sign(
            channel,
            &sig,
            SignInput::RsaRaw(&[0; 128]),
            &Verified::for_engine_tests(),
        )
    });
    assert!(matches!(result, Err(AppError::Unsupported(_))));
}

#[test]
fn authenticates_with_internal_authenticate() {
    let app = ready_engine(false);
    let aut = key(
        "authentication",
        PublicKey::Ec {
            curve: Curve::P256,
            point: aut_point(),
        },
    );
    let hash = [0x5A; 32];
    // INTERNAL AUTHENTICATE (§7.2.13) with the hash; the card answers r || s.
    let raw = [0x33; 64];
    let steps = vec![step(
        &format!("00 88 00 00 00 00 20 {} 00 00", hex(&hash)),
        ok(&raw),
    )];
    let signature = with_card(&app, steps, |channel| {
        app.sign(
            channel,
            &aut,
            SignInput::Ecdsa(&hash),
            &Verified::for_engine_tests(),
        )
    });
    assert_eq!(signature.unwrap(), raw.to_vec());
    // A DER answer is converted to r || s.
    let der = bytes("30 08 02 02 00 81 02 02 12 34");
    let steps = vec![step(
        &format!("00 88 00 00 00 00 20 {} 00 00", hex(&hash)),
        ok(&der),
    )];
    let signature = with_card(&app, steps, |channel| {
        app.sign(
            channel,
            &aut,
            SignInput::Ecdsa(&hash),
            &Verified::for_engine_tests(),
        )
    })
    .unwrap();
    assert_eq!(&signature[30..32], &[0, 0x81]);
    assert_eq!(&signature[62..], &[0x12, 0x34]);
    // The module fits the hash to the order before the engine sees it; an
    // input of another length is refused without a command.
    let long = [0x77; 64];
    let refused = with_card(&app, vec![], |channel| {
        app.sign(
            channel,
            &aut,
            SignInput::Ecdsa(&long),
            &Verified::for_engine_tests(),
        )
    });
    assert!(matches!(refused, Err(AppError::DataLength)), "{refused:?}");
}

#[test]
fn signs_messages_with_ed25519() {
    let app = ready_engine(false);
    let aut = key(
        "authentication",
        PublicKey::Ed25519 {
            point: vec![0x22; 32],
        },
    );
    let message = b"a TLS 1.3 CertificateVerify";
    let steps = vec![step(
        &format!("00 88 00 00 00 00 1B {} 00 00", hex(message)),
        ok(&[0x44; 64]),
    )];
    let signature = with_card(&app, steps, |channel| {
        app.sign(
            channel,
            &aut,
            SignInput::EdDsa(message),
            &Verified::for_engine_tests(),
        )
    });
    assert_eq!(signature.unwrap(), vec![0x44; 64]);
}

#[test]
fn deciphers_rsa_and_the_card_removes_the_padding() {
    let app = engine(ATR_GNUK);
    let rsa = rsa_test_key();
    let dec = key("decryption", rsa_public(&rsa));
    let ciphertext = [0x0C; 128];
    // PSO: DECIPHER (§7.2.11): padding indicator 00, then the cryptogram.
    let command = format!("00 2A 80 86 81 00 {} 00", hex(&ciphertext));
    let steps = vec![step(&command, ok(b"secret"))];
    let plain = with_card(&app, steps, |channel| {
        app.decrypt_pkcs1(channel, &dec, &ciphertext, &Verified::for_engine_tests())
    });
    assert_eq!(&plain.unwrap()[..], b"secret");
    let steps = vec![step(&command, sw(0x6A80))];
    let result = with_card(&app, steps, |channel| {
        app.decrypt_pkcs1(channel, &dec, &ciphertext, &Verified::for_engine_tests())
    });
    assert_eq!(result, Err(AppError::BadCiphertext));
    let result = with_card(&app, vec![], |channel| {
        app.decrypt_raw(channel, &dec, &ciphertext, &Verified::for_engine_tests())
    });
    assert!(matches!(result, Err(AppError::Unsupported(_))));
}

#[test]
fn agrees_on_keys_with_ecdh() {
    let app = ready_engine(false);
    let dec = key(
        "decryption",
        PublicKey::X25519 {
            point: X25519_POINT.to_vec(),
        },
    );
    let peer = [0x99; 32];
    // PSO: DECIPHER with the cipher DO A6 { 7F49 { 86 <point> } } (§7.2.11).
    let command = format!(
        "00 2A 80 86 00 00 27 A6 25 7F 49 22 86 20 {} 00 00",
        hex(&peer)
    );
    let steps = vec![step(&command, ok(&[0x5E; 32]))];
    let secret = with_card(&app, steps, |channel| {
        app.derive(channel, &dec, &peer, &Verified::for_engine_tests())
    });
    assert_eq!(&secret.unwrap()[..], &[0x5E; 32]);
    // A point of the wrong size never reaches the card.
    let result = with_card(&app, vec![], |channel| {
        app.derive(channel, &dec, &[1; 31], &Verified::for_engine_tests())
    });
    assert_eq!(result, Err(AppError::BadCiphertext));

    // NIST curve: a card answering 04 || x || y gives x.
    let dec = key(
        "decryption",
        PublicKey::Ec {
            curve: Curve::P256,
            point: aut_point(),
        },
    );
    let peer = aut_point();
    let mut point = vec![0x04];
    point.extend_from_slice(&[0x0A; 32]);
    point.extend_from_slice(&[0x0B; 32]);
    let command = format!(
        "00 2A 80 86 00 00 48 A6 46 7F 49 43 86 41 {} 00 00",
        hex(&peer)
    );
    let steps = vec![step(&command, ok(&point))];
    let secret = with_card(&app, steps, |channel| {
        app.derive(channel, &dec, &peer, &Verified::for_engine_tests())
    });
    assert_eq!(&secret.unwrap()[..], &[0x0A; 32]);
}

#[test]
fn changes_pw1_with_change_reference_data() {
    let app = ready_engine(false);
    // §7.2.3: P2 = 81, old || new.
    let steps = vec![step(
        "00 24 00 81 0C 31 32 33 34 35 36 36 35 34 33 32 31",
        sw(0x9000),
    )];
    with_card(&app, steps, |channel| {
        app.change_pin(channel, b"123456", b"654321")
    })
    .unwrap();
    let steps = vec![step(
        "00 24 00 81 0C 31 31 31 31 31 31 36 35 34 33 32 31",
        sw(0x63C1),
    )];
    let result = with_card(&app, steps, |channel| {
        app.change_pin(channel, b"111111", b"654321")
    });
    assert_eq!(result, Err(AppError::PinIncorrect(Some(1))));
}

#[test]
fn unblocks_with_the_admin_pin_when_there_is_no_resetting_code() {
    let app = ready_engine(false);
    // No Resetting Code (C4 byte 6 = 0): VERIFY PW3, RESET RETRY COUNTER
    // with P1 = 02 and the new PIN only, then PW3's state is dropped.
    let steps = vec![
        step("00 CA 00 C4 00 00 00", ok(&bytes("00 7F 7F 7F 00 00 03"))),
        step("00 20 00 83 08 31 32 33 34 35 36 37 38", sw(0x9000)),
        step("00 2C 02 81 06 31 31 31 31 31 31", sw(0x9000)),
        step("00 20 FF 83", sw(0x9000)),
    ];
    with_card(&app, steps, |channel| {
        app.unblock_pin(channel, b"12345678", b"111111")
    })
    .unwrap();
    // A wrong Admin PIN stops before the reset.
    let steps = vec![
        step("00 CA 00 C4 00 00 00", ok(&bytes("00 7F 7F 7F 00 00 03"))),
        step("00 20 00 83 08 38 37 36 35 34 33 32 31", sw(0x63C2)),
    ];
    let result = with_card(&app, steps, |channel| {
        app.unblock_pin(channel, b"87654321", b"111111")
    });
    assert_eq!(result, Err(AppError::PinIncorrect(Some(2))));
}

#[test]
fn unblocks_with_the_resetting_code_when_the_card_has_one() {
    let app = ready_engine(false);
    // RESET RETRY COUNTER, P1 = 00: Resetting Code || new PIN (§7.2.4).
    let steps = vec![
        step("00 CA 00 C4 00 00 00", ok(&bytes("00 7F 7F 7F 00 03 03"))),
        step(
            "00 2C 00 81 0E 38 38 38 38 38 38 38 38 31 31 31 31 31 31",
            sw(0x9000),
        ),
    ];
    with_card(&app, steps, |channel| {
        app.unblock_pin(channel, b"88888888", b"111111")
    })
    .unwrap();
}

#[test]
fn logs_out_both_pw1_modes() {
    let app = ready_engine(false);
    let steps = vec![
        step("00 20 FF 81", sw(0x9000)),
        step("00 20 FF 82", sw(0x6A86)),
    ];
    with_card(&app, steps, |channel| app.logout(channel)).unwrap();
}

#[test]
fn selects_the_application_by_its_partial_aid() {
    let app = ready_engine(false);
    let steps = vec![step("00 A4 04 00 06 D2 76 00 01 24 01 00", sw(0x9000))];
    with_card(&app, steps, |channel| app.select(channel)).unwrap();
    let steps = vec![step("00 A4 04 00 06 D2 76 00 01 24 01 00", sw(0x6A82))];
    let result = with_card(&app, steps, |channel| app.select(channel));
    assert_eq!(
        result,
        Err(AppError::Card(CardError::Status(StatusWord::NOT_FOUND)))
    );
}

#[test]
fn a_card_that_loses_its_login_on_select_is_only_selected_when_needed() {
    let text = include_str!("../../../cardprofiles/openpgp.toml")
        .replace("[quirks]", "[quirks]\nloses_login_on_select = true");
    let profile = Arc::new(Profile::from_toml(&text).unwrap());
    let app = Engine::from(OpenPgpApp::new(profile, &bytes(ATR_V3)));
    // Still selected: GET DATA C4 works, no SELECT.
    let steps = vec![step("00 CA 00 C4 00", ok(&bytes("00 7F 7F 7F 03 00 03")))];
    with_card(&app, steps, |channel| app.select(channel)).unwrap();
    // Another application was selected: GET DATA fails, SELECT follows.
    let steps = vec![
        step("00 CA 00 C4 00", sw(0x6D00)),
        step("00 A4 04 00 06 D2 76 00 01 24 01 00", sw(0x9000)),
    ];
    with_card(&app, steps, |channel| app.select(channel)).unwrap();
}

#[test]
fn short_apdus_only_overrides_what_the_card_announces() {
    let text = include_str!("../../../cardprofiles/openpgp.toml")
        .replace("[quirks]", "[quirks]\nshort_apdus_only = true");
    let profile = Arc::new(Profile::from_toml(&text).unwrap());
    let app = Engine::from(OpenPgpApp::new(profile, &bytes(ATR_V3)));
    assert!(!app.state().extended);
    let steps = vec![step("00 CA 00 C4 00", ok(&bytes("00 7F 7F 7F 03 00 03")))];
    let status = with_card(&app, steps, |channel| app.pin_status(channel)).unwrap();
    assert_eq!(status.tries_left, Some(3));
}

#[test]
fn malformed_card_data_is_an_error_not_a_panic() {
    let app = engine(ATR_V3);
    for garbage in [
        vec![],
        vec![0x6E],
        vec![0x6E, 0x05, 0x4F, 0x03, 1, 2, 3],
        vec![0x6E, 0x82, 0xFF],
        tlv::encode(0x6E, &tlv::encode(0x4F, &[0xD2; 16])),
    ] {
        let steps = vec![step("00 CA 00 6E 00 00 00", ok(&garbage))];
        let result = with_card(&app, steps, |channel| app.read_card(channel, &NoRecall));
        assert!(result.is_err(), "{garbage:02X?}");
    }
    // A public key template without the modulus.
    let data = application_related_data(&bytes("00 7F 7F 7F 03 00 03"));
    let steps = vec![
        step("00 CA 00 6E 00 00 00", ok(&data)),
        step(
            "00 47 81 00 00 00 02 B6 00 00 00",
            ok(&tlv::encode(0x7F49, &tlv::encode(0x82, &[1, 0, 1]))),
        ),
    ];
    let result = with_card(&app, steps, |channel| app.read_card(channel, &NoRecall));
    assert!(matches!(
        result,
        Err(AppError::Card(CardError::Malformed(_)))
    ));
}
