//! The Rust API (`p11card::api`) over a simulated PIV card: readers, typed
//! token information, login errors, keys with certificates, and the card
//! keys as RustCrypto signers checked with their verifying keys.

use p11card::api::{Capabilities, EcCurve, Error, KeyKind, PinTries};
use p11card::profile::ProfileSet;
use p11card::{Card, Context, Key, Module};
use p11card_cardsim::{KeyType, SimBackend, SimPivCard, Slot, DEFAULT_READER};
use signature::hazmat::PrehashSigner;
use signature::{DigestSigner, Keypair, Signer, Verifier};

const PIN: &[u8] = b"123456";

fn context_with(card: SimPivCard) -> Context {
    let (backend, _card) = SimBackend::with_card(card);
    Context::with_backend(Box::new(backend), ProfileSet::embedded())
}

fn first_card(context: &Context) -> Card {
    context
        .first_card()
        .expect("the simulated card is recognised")
}

fn key_with_id(card: &Card, id: &[u8]) -> Key {
    card.keys()
        .unwrap()
        .into_iter()
        .find(|key| key.id() == id)
        .expect("the card has the key")
}

#[test]
fn lists_the_reader_and_the_cards_typed_token_info() {
    let context = context_with(SimPivCard::new());
    let readers = context.readers().unwrap();
    assert_eq!(readers.len(), 1);
    assert_eq!(readers[0].name(), DEFAULT_READER);
    assert!(readers[0].has_card());
    let card = readers[0].card().unwrap();
    assert_eq!(card.reader_name(), DEFAULT_READER);
    let info = card.token_info().unwrap();
    assert_eq!(info.label, "cardsim 9A PIV Authentication");
    assert_eq!(info.serial, "8899aabbccddeeff");
    assert_eq!(info.manufacturer, "Yubico");
    assert_eq!(info.model, "YubiKey PIV");
    assert_eq!(info.pin_tries, PinTries::Plenty);
    assert!(!info.pin_pad);
    assert_eq!((info.min_pin_length, info.max_pin_length), (6, 8));
}

#[test]
fn an_empty_reader_has_no_card() {
    let context = Context::with_backend(
        Box::new(SimBackend::with_readers(["Empty reader"])),
        ProfileSet::embedded(),
    );
    let readers = context.readers().unwrap();
    assert_eq!(readers.len(), 1);
    assert!(!readers[0].has_card());
    assert!(matches!(readers[0].card(), Err(Error::NoCard)));
    assert!(matches!(context.first_card(), Err(Error::NoCard)));
}

#[test]
fn wrong_pins_say_the_tries_left_and_the_right_one_logs_in() {
    let context = context_with(SimPivCard::new().with_pin("123456", 3));
    let card = first_card(&context);
    assert!(!card.is_logged_in().unwrap());
    let wrong = card.login(b"000000");
    assert!(
        matches!(
            wrong,
            Err(Error::WrongPin {
                tries: PinTries::Low
            })
        ),
        "{wrong:?}"
    );
    let wrong = card.login(b"000000");
    assert!(
        matches!(
            wrong,
            Err(Error::WrongPin {
                tries: PinTries::FinalTry
            })
        ),
        "{wrong:?}"
    );
    assert_eq!(card.token_info().unwrap().pin_tries, PinTries::FinalTry);
    assert!(matches!(card.login(b"1234"), Err(Error::PinLength)));
    card.login(PIN).unwrap();
    assert!(card.is_logged_in().unwrap());
    assert_eq!(card.token_info().unwrap().pin_tries, PinTries::Plenty);
    assert!(matches!(card.login(PIN), Err(Error::AlreadyLoggedIn)));
    card.logout().unwrap();
    assert!(!card.is_logged_in().unwrap());
    assert!(matches!(card.logout(), Err(Error::NotLoggedIn)));
}

#[test]
fn a_blocked_pin_is_an_error_of_its_own() {
    let context = context_with(SimPivCard::new().with_pin("123456", 1));
    let card = first_card(&context);
    // The wrong PIN that uses up the last try blocks the PIN.
    assert!(matches!(card.login(b"000000"), Err(Error::PinBlocked)));
    assert!(matches!(card.login(PIN), Err(Error::PinBlocked)));
    assert_eq!(card.token_info().unwrap().pin_tries, PinTries::Blocked);
}

#[test]
fn keys_come_with_kind_certificate_and_capabilities() {
    let context = context_with(SimPivCard::new());
    let card = first_card(&context);
    let keys = card.keys().unwrap();
    let summary: Vec<(&str, &[u8], KeyKind, &str)> = keys
        .iter()
        .map(|key| {
            let subject = key.certificate().map_or("", |cert| cert.subject());
            (key.label(), key.id(), key.kind(), subject)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "PIV Authentication",
                &[1][..],
                KeyKind::Rsa { bits: 2048 },
                "CN=cardsim 9A PIV Authentication,O=p11card test"
            ),
            (
                "Digital Signature",
                &[2],
                KeyKind::Ec(EcCurve::P256),
                "CN=cardsim 9C Digital Signature,O=p11card test"
            ),
            (
                "Key Management",
                &[3],
                KeyKind::Ec(EcCurve::P384),
                "CN=cardsim 9D Key Management,O=p11card test"
            ),
            (
                "Card Authentication",
                &[4],
                KeyKind::Ec(EcCurve::P256),
                "CN=cardsim 9E Card Authentication,O=p11card test"
            ),
        ]
    );
    for key in &keys {
        let der = key.certificate().unwrap().der();
        assert_eq!(der.first(), Some(&0x30), "a DER SEQUENCE");
    }
    // Before the login, only the key without PIN (9E) shows what it may do.
    let known: Vec<bool> = keys.iter().map(|k| k.capabilities().is_some()).collect();
    assert_eq!(known, [false, false, false, true]);
    assert!(keys.iter().all(Key::can_sign));

    card.login(PIN).unwrap();
    let keys = card.keys().unwrap();
    let capabilities: Vec<Capabilities> = keys.iter().map(|k| k.capabilities().unwrap()).collect();
    assert!(capabilities.iter().all(|c| c.sign));
    assert!(
        capabilities[1].pin_every_use,
        "9C wants the PIN before each use"
    );
    assert!(!capabilities[0].pin_every_use);
    assert!(capabilities[0].decrypt, "9A decrypts with RSA");
    assert!(capabilities[2].derive, "9D agrees on keys with ECDH");
}

#[test]
fn a_p256_key_signs_as_a_rustcrypto_signer() {
    let context = context_with(SimPivCard::new().with_key(Slot::Authentication, KeyType::EccP256));
    let card = first_card(&context);
    let key = key_with_id(&card, &[1]);
    let signer = key.p256_signer().unwrap();
    let refused: Result<p256::ecdsa::Signature, _> = signer.try_sign(b"before the login");
    let source = std::error::Error::source(&refused.unwrap_err()).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("not logged in"));

    card.login(PIN).unwrap();
    let verifying_key = signer.verifying_key();
    let signature: p256::ecdsa::Signature = signer.sign(b"message");
    verifying_key.verify(b"message", &signature).unwrap();
    let der: p256::ecdsa::DerSignature = signer.sign(b"message");
    verifying_key.verify(b"message", &der).unwrap();
    let digest = <sha2::Sha256 as sha2::Digest>::new_with_prefix(b"message");
    let signature: p256::ecdsa::Signature = signer.sign_digest(digest);
    verifying_key.verify(b"message", &signature).unwrap();
    let prehash = <sha2::Sha256 as sha2::Digest>::digest(b"message");
    let signature: p256::ecdsa::Signature = signer.sign_prehash(&prehash).unwrap();
    verifying_key.verify(b"message", &signature).unwrap();
    assert!(key.p384_signer().is_err() && key.rsa_pss_signer::<sha2::Sha256>().is_err());
}

#[test]
fn a_p384_key_signs_with_sha384() {
    let context = context_with(SimPivCard::new());
    let card = first_card(&context);
    card.login(PIN).unwrap();
    let signer = key_with_id(&card, &[3]).p384_signer().unwrap();
    let signature: p384::ecdsa::Signature = signer.sign(b"message");
    signer
        .verifying_key()
        .verify(b"message", &signature)
        .unwrap();
}

#[test]
fn an_rsa_key_signs_pkcs1v15_and_pss() {
    let context = context_with(SimPivCard::new());
    let card = first_card(&context);
    card.login(PIN).unwrap();
    let key = key_with_id(&card, &[1]);
    let pkcs1 = key.rsa_pkcs1v15_signer::<sha2::Sha256>().unwrap();
    let signature: rsa::pkcs1v15::Signature = pkcs1.sign(b"message");
    pkcs1
        .verifying_key()
        .verify(b"message", &signature)
        .unwrap();
    let pkcs1 = key.rsa_pkcs1v15_signer::<sha2::Sha512>().unwrap();
    let signature: rsa::pkcs1v15::Signature = pkcs1.sign(b"message");
    pkcs1
        .verifying_key()
        .verify(b"message", &signature)
        .unwrap();
    let pss = key.rsa_pss_signer::<sha2::Sha384>().unwrap();
    let signature: rsa::pss::Signature = pss.sign(b"message");
    pss.verifying_key().verify(b"message", &signature).unwrap();
    assert!(key.p256_signer().is_err());
}

#[test]
fn a_key_that_wants_the_pin_before_each_use_says_so() {
    let context = context_with(SimPivCard::new());
    let card = first_card(&context);
    card.login(PIN).unwrap();
    let signer = key_with_id(&card, &[2]).p256_signer().unwrap();
    let refused: Result<p256::ecdsa::Signature, _> = signer.try_sign(b"message");
    let source = std::error::Error::source(&refused.unwrap_err()).map(ToString::to_string);
    assert_eq!(source, Some(Error::PinEveryUse.to_string()));

    // A program that answers for its user presents the PIN itself.
    let (backend, _card) = SimBackend::with_card(SimPivCard::new());
    let module = Module::new(Box::new(backend), ProfileSet::embedded()).ignoring_user_consent(true);
    let context = Context::from_module(module);
    let card = first_card(&context);
    card.login(PIN).unwrap();
    let signer = key_with_id(&card, &[2]).p256_signer().unwrap();
    let signature: p256::ecdsa::Signature = signer.sign(b"message");
    signer
        .verifying_key()
        .verify(b"message", &signature)
        .unwrap();
}

#[test]
fn keys_outlive_their_card_value_and_work_from_threads() {
    let context = context_with(SimPivCard::new());
    let signer = {
        let card = first_card(&context);
        card.login(PIN).unwrap();
        key_with_id(&card, &[4]).p256_signer().unwrap()
    };
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let signer = signer.clone();
            std::thread::spawn(move || {
                let message = format!("message {n}");
                let signature: p256::ecdsa::Signature = signer.sign(message.as_bytes());
                signer
                    .verifying_key()
                    .verify(message.as_bytes(), &signature)
                    .unwrap();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn the_reader_shows_the_atr_and_the_card_its_profile_and_pin_tries() {
    let context = context_with(SimPivCard::new().with_pin("123456", 5));
    let reader = &context.readers().unwrap()[0];
    assert_eq!(reader.atr().unwrap(), p11card_cardsim::DEFAULT_ATR);
    let card = reader.card().unwrap();
    assert_eq!(card.profile().unwrap(), "yubikey-piv");
    assert_eq!(card.token_info().unwrap().pin_tries_left, Some(5));
    assert!(matches!(card.login(b"000000"), Err(Error::WrongPin { .. })));
    let info = card.token_info().unwrap();
    assert_eq!(
        (info.pin_tries, info.pin_tries_left),
        (PinTries::Low, Some(4))
    );

    let empty = Context::with_backend(
        Box::new(SimBackend::with_readers(["Empty reader"])),
        ProfileSet::embedded(),
    );
    assert!(matches!(
        empty.readers().unwrap()[0].atr(),
        Err(Error::NoCard)
    ));
}

#[test]
fn a_card_no_profile_knows_still_shows_its_atr() {
    let (backend, card) =
        SimBackend::with_card(SimPivCard::new().with_atr([0x3B, 0x02, 0x14, 0x50]));
    card.misbehave(|m| m.fail_next = vec![(0xA4, 0x6A82); 8]);
    let context = Context::with_backend(Box::new(backend), ProfileSet::embedded());
    let reader = &context.readers().unwrap()[0];
    assert!(matches!(reader.card(), Err(Error::UnknownCard)));
    assert_eq!(reader.atr().unwrap(), [0x3B, 0x02, 0x14, 0x50]);
}

#[test]
fn certificates_show_issuer_and_validity() {
    let context = context_with(SimPivCard::new());
    let key = key_with_id(&first_card(&context), &[1]);
    let cert = key.certificate().unwrap();
    assert_eq!(cert.issuer(), "CN=cardsim test CA,O=p11card test");
    let seconds = |time: std::time::SystemTime| {
        time.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    assert_eq!(cert.not_before().map(seconds), Some(1_704_067_200));
    assert_eq!(cert.not_after().map(seconds), Some(2_524_607_999));
}

#[test]
fn the_pin_changes_with_the_old_one_and_a_wrong_one_spends_a_try() {
    let context = context_with(SimPivCard::new().with_pin("123456", 3));
    let card = first_card(&context);
    let wrong = card.change_pin(b"000000", b"654321");
    assert!(
        matches!(
            wrong,
            Err(Error::WrongPin {
                tries: PinTries::Low
            })
        ),
        "{wrong:?}"
    );
    assert_eq!(card.token_info().unwrap().pin_tries_left, Some(2));
    assert!(matches!(card.change_pin(PIN, b"12"), Err(Error::PinLength)));
    card.change_pin(PIN, b"654321").unwrap();
    assert!(matches!(card.login(PIN), Err(Error::WrongPin { .. })));
    card.login(b"654321").unwrap();
    // A login stays valid through a change.
    card.change_pin(b"654321", PIN).unwrap();
    assert!(card.is_logged_in().unwrap());
}

#[test]
fn the_puk_unblocks_a_blocked_pin() {
    let context = context_with(
        SimPivCard::new()
            .with_pin("123456", 1)
            .with_puk("12345678", 2),
    );
    let card = first_card(&context);
    assert!(matches!(card.login(b"000000"), Err(Error::PinBlocked)));
    assert!(matches!(
        card.unblock_pin(b"87654321", b"111111"),
        Err(Error::WrongPuk)
    ));
    assert!(matches!(
        card.unblock_pin(b"123", b"111111"),
        Err(Error::PukLength)
    ));
    assert_eq!(card.token_info().unwrap().pin_tries, PinTries::Blocked);
    card.unblock_pin(b"12345678", b"111111").unwrap();
    assert_eq!(card.token_info().unwrap().pin_tries, PinTries::Plenty);
    card.login(b"111111").unwrap();
    card.logout().unwrap();
    // A right PUK reset its tries; spending them all blocks the PUK too.
    assert!(matches!(
        card.unblock_pin(b"87654321", b"222222"),
        Err(Error::WrongPuk)
    ));
    assert!(matches!(
        card.unblock_pin(b"87654321", b"222222"),
        Err(Error::WrongPuk | Error::PukBlocked)
    ));
    assert!(matches!(
        card.unblock_pin(b"12345678", b"222222"),
        Err(Error::PukBlocked)
    ));
}

#[test]
fn waiting_for_a_card_returns_when_one_is_inserted() {
    let backend = SimBackend::new();
    let context = Context::with_backend(Box::new(backend.clone()), ProfileSet::embedded());
    let timeout = Some(std::time::Duration::from_millis(100));
    assert!(matches!(context.wait_for_card(timeout), Err(Error::NoCard)));
    let inserter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        backend.insert(DEFAULT_READER, SimPivCard::new());
    });
    let card = context
        .wait_for_card(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    assert_eq!(card.token_info().unwrap().serial, "8899aabbccddeeff");
    inserter.join().unwrap();
}
