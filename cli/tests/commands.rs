//! The `p11card` commands against simulated cards, run in-process through
//! `p11card_cli::run` exactly as the binary runs them (only the readers
//! differ): what they print, and their exit statuses.

use clap::Parser;
use p11card::api::PinTries;
use p11card::profile::ProfileSet;
use p11card::Context;
use p11card_cardsim::{SimBackend, SimCard, SimPivCard, DEFAULT_READER};
use p11card_cli::{exit, run, Cli, FdOrTerminal, Io, Secrets};
use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsRawFd;
use zeroize::Zeroizing;

const TOKEN: &str = "cardsim 9A PIV Authentication";

/// What a command did.
struct Outcome {
    code: u8,
    out: String,
    err: String,
}

/// Secrets typed "on the terminal": the prompts are recorded.
#[derive(Default)]
struct Typed {
    answers: VecDeque<&'static str>,
    prompts: Vec<String>,
}

impl Typed {
    fn new(answers: &[&'static str]) -> Typed {
        Typed {
            answers: answers.iter().copied().collect(),
            prompts: Vec::new(),
        }
    }
}

impl Secrets for Typed {
    fn read(&mut self, prompt: &str, fd: Option<i32>) -> Result<Zeroizing<Vec<u8>>, String> {
        assert_eq!(fd, None, "typed answers are for prompts");
        self.prompts.push(prompt.to_string());
        let answer = self.answers.pop_front().ok_or("no more answers")?;
        Ok(Zeroizing::new(answer.as_bytes().to_vec()))
    }
}

fn run_with(context: &Context, args: &[&str], secrets: &mut dyn Secrets) -> Outcome {
    let cli = Cli::try_parse_from(std::iter::once("p11card").chain(args.iter().copied()))
        .expect("the command line parses");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(
        &cli,
        context,
        &mut Io {
            out: &mut out,
            err: &mut err,
            secrets,
        },
    );
    Outcome {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn p11card(context: &Context, args: &[&str]) -> Outcome {
    run_with(context, args, &mut Typed::default())
}

fn context_with(card: SimPivCard) -> (Context, SimBackend, SimCard) {
    let (backend, card) = SimBackend::with_card(card);
    let context = Context::with_backend(Box::new(backend.clone()), ProfileSet::embedded());
    (context, backend, card)
}

/// A file whose descriptor holds `text` (the lines `--pin-fd` reads).
fn descriptor_with(text: &str) -> File {
    let path = std::env::temp_dir().join(format!(
        "p11card-cli-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::write(&path, text).unwrap();
    let file = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    file
}

/// Runs a command with `--pin-fd`-style descriptors through the binary's
/// own secret source.
fn p11card_fd(context: &Context, args: &[&str]) -> Outcome {
    run_with(context, args, &mut FdOrTerminal::default())
}

fn tries_left(context: &Context) -> (PinTries, Option<u8>) {
    let info = context.first_card().unwrap().token_info().unwrap();
    (info.pin_tries, info.pin_tries_left)
}

#[test]
fn status_shows_reader_atr_profile_token_and_pin_tries() {
    let (context, ..) = context_with(SimPivCard::new());
    let outcome = p11card(&context, &["status"]);
    assert_eq!(outcome.code, exit::OK, "{}{}", outcome.out, outcome.err);
    let expected = format!(
        "Reader: Sim Reader 0\n\
         \x20 Card:    present, ATR 3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4\n\
         \x20 Profile: yubikey-piv\n\
         \x20 Token:   {TOKEN}\n\
         \x20 Serial:  8899aabbccddeeff\n\
         \x20 Maker:   Yubico YubiKey PIV\n\
         \x20 PIN:     3 tries left (6 to 8 characters)\n\
         \x20 PUK:     3 tries left\n\
         \x20 Cache:   off\n\
         A usable card is present.\n"
    );
    assert_eq!(outcome.out, expected);
    assert_eq!(outcome.err, "");
}

#[test]
fn status_without_a_usable_card_exits_3() {
    let backend = SimBackend::with_readers(["Reader A", "Reader B"]);
    let context = Context::with_backend(Box::new(backend.clone()), ProfileSet::embedded());
    let outcome = p11card(&context, &["status"]);
    assert_eq!(outcome.code, exit::NO_CARD);
    assert_eq!(
        outcome.out,
        "Reader: Reader A\n  Card:    none\nReader: Reader B\n  Card:    none\nNo usable card.\n"
    );

    // A card no profile knows: its ATR, and that nothing fits it.
    let card = backend.insert(
        "Reader B",
        SimPivCard::new().with_atr([0x3B, 0x02, 0x14, 0x50]),
    );
    card.misbehave(|m| m.fail_next = vec![(0xA4, 0x6A82); 8]);
    let outcome = p11card(&context, &["status", "--reader", "Reader B"]);
    assert_eq!(outcome.code, exit::NO_CARD);
    assert_eq!(
        outcome.out,
        "Reader: Reader B\n  Card:    present, ATR 3B 02 14 50\n  \
         Profile: no profile fits this card (p11card does not know it)\nNo usable card.\n"
    );

    // A card whose ATR is one byte off a YubiKey's: the nearest profile is
    // named.
    backend.remove("Reader B");
    let card = backend.insert(
        "Reader B",
        SimPivCard::new().with_atr([
            0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x59, 0x75, 0x62, 0x69, 0x6B,
            0x65, 0x79, 0x35, 0xD4,
        ]),
    );
    card.misbehave(|m| m.fail_next = vec![(0xA4, 0x6A82); 8]);
    let outcome = p11card(&context, &["status", "--reader", "Reader B"]);
    assert_eq!(outcome.code, exit::NO_CARD);
    assert!(
        outcome.out.contains(
            "Profile: no profile fits this card (p11card does not know it; \
             nearest: profile yubikey-piv, whose ATR differs in 1 byte)"
        ),
        "{}",
        outcome.out
    );

    let none = Context::with_backend(
        Box::new(SimBackend::with_readers(Vec::<String>::new())),
        ProfileSet::embedded(),
    );
    let outcome = p11card(&none, &["status"]);
    assert_eq!(outcome.code, exit::NO_CARD);
    assert!(
        outcome.err.starts_with("p11card: no card reader found"),
        "{}",
        outcome.err
    );
}

#[test]
fn status_with_a_blocked_pin_exits_4_and_says_how_to_unblock() {
    let (context, ..) = context_with(SimPivCard::new().with_pin("123456", 1));
    let outcome = p11card_fd(
        &context,
        &[
            "list",
            "--login",
            "--pin-fd",
            &descriptor_fd(&descriptor_with("000000\n")),
        ],
    );
    assert_eq!(outcome.code, exit::PIN_BLOCKED, "{}", outcome.err);
    assert!(
        outcome
            .err
            .contains("the PIN is blocked; unblock it with `p11card pin unblock`"),
        "{}",
        outcome.err
    );
    let outcome = p11card(&context, &["status"]);
    assert_eq!(outcome.code, exit::PIN_BLOCKED);
    assert!(
        outcome.out.contains(
            "  PIN:     blocked; unblock it with `p11card pin unblock` (6 to 8 characters)\n"
        ),
        "{}",
        outcome.out
    );
    assert!(outcome
        .out
        .ends_with("No usable card: the PIN is blocked; unblock it with `p11card pin unblock`.\n"));
}

/// The descriptor's number as an argument; the file stays open while the
/// caller holds it.
fn descriptor_fd(file: &File) -> String {
    file.as_raw_fd().to_string()
}

#[test]
fn list_shows_each_key_with_certificate_validity_and_uri() {
    let (context, ..) = context_with(SimPivCard::new());
    let outcome = p11card(&context, &["list"]);
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    let first_key = format!(
        "Token \"{TOKEN}\" (serial 8899aabbccddeeff) in Sim Reader 0: 4 keys\n\
         \n\
         \x20 Key \"PIV Authentication\"\n\
         \x20   ID:          01\n\
         \x20   Type:        RSA 2048 bits\n\
         \x20   May:         sign (decrypt and derive: shown with --login)\n\
         \x20   Certificate: CN=cardsim 9A PIV Authentication,O=p11card test\n\
         \x20   Issuer:      CN=cardsim test CA,O=p11card test\n\
         \x20   Valid:       2024-01-01 00:00:00 UTC to 2049-12-31 23:59:59 UTC\n\
         \x20   URI:         pkcs11:token=cardsim%209A%20PIV%20Authentication;id=%01\n"
    );
    assert!(outcome.out.starts_with(&first_key), "{}", outcome.out);
    assert!(outcome.out.contains("    Type:        EC P-384\n"));
    assert!(outcome
        .out
        .contains("    URI:         pkcs11:token=cardsim%209A%20PIV%20Authentication;id=%04\n"));
}

#[test]
fn list_json_parses_and_login_shows_what_keys_may_do() {
    let (context, ..) = context_with(SimPivCard::new());
    let outcome = p11card(&context, &["list", "--json"]);
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    let json: serde_json::Value = serde_json::from_str(&outcome.out).unwrap();
    let card = &json["cards"][0];
    assert_eq!(card["token"], TOKEN);
    assert_eq!(card["reader"], DEFAULT_READER);
    let keys = card["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 4);
    assert_eq!(keys[0]["id"], "01");
    assert_eq!(keys[0]["key_type"], "RSA");
    assert_eq!(keys[0]["bits"], 2048);
    assert_eq!(keys[1]["curve"], "P-256");
    assert_eq!(keys[0]["usage"]["sign"], true);
    assert!(keys[0]["usage"]["decrypt"].is_null(), "known after a login");
    assert_eq!(keys[3]["usage"]["derive"], false, "9E has no PIN");
    let cert = &keys[0]["certificate"];
    assert_eq!(cert["issuer"], "CN=cardsim test CA,O=p11card test");
    assert_eq!(cert["not_after"], "2049-12-31 23:59:59 UTC");
    assert_eq!(
        (cert["expired"].clone(), cert["not_yet_valid"].clone()),
        (false.into(), false.into())
    );
    assert_eq!(
        keys[0]["uri"],
        "pkcs11:token=cardsim%209A%20PIV%20Authentication;id=%01"
    );

    let mut typed = Typed::new(&["123456"]);
    let outcome = run_with(&context, &["list", "--json", "--login"], &mut typed);
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    assert_eq!(typed.prompts, [format!("PIN for {TOKEN}: ")]);
    let json: serde_json::Value = serde_json::from_str(&outcome.out).unwrap();
    let keys = &json["cards"][0]["keys"];
    assert_eq!(keys[0]["usage"]["decrypt"], true);
    assert_eq!(keys[2]["usage"]["derive"], true);
    assert_eq!(keys[1]["pin_every_use"], true);
    assert!(
        !context.first_card().unwrap().is_logged_in().unwrap(),
        "logged out after"
    );
}

#[test]
fn pin_change_through_a_descriptor_and_back() {
    let (context, ..) = context_with(SimPivCard::new());
    let fd = descriptor_with("123456\n87654321\n");
    let outcome = p11card_fd(
        &context,
        &["pin", "change", "--pin-fd", &descriptor_fd(&fd)],
    );
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    assert_eq!(
        outcome.out,
        format!(
            "Changing the PIN of \"{TOKEN}\" (serial 8899aabbccddeeff) in Sim Reader 0.\n\
             The PIN was changed.\n"
        )
    );
    let card = context.first_card().unwrap();
    card.login(b"87654321").unwrap();
    card.logout().unwrap();
    drop(card);

    let fd = descriptor_with("87654321\n123456\n");
    let outcome = p11card_fd(
        &context,
        &["pin", "change", "--pin-fd", &descriptor_fd(&fd)],
    );
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    // After a right PIN the card's count is back at its maximum, which it
    // does not say.
    assert_eq!(tries_left(&context), (PinTries::Plenty, None));
}

#[test]
fn a_wrong_pin_says_so_and_spends_exactly_one_try() {
    let (context, ..) = context_with(SimPivCard::new());
    let fd = descriptor_with("000000\n654321\n");
    let outcome = p11card_fd(
        &context,
        &["pin", "change", "--pin-fd", &descriptor_fd(&fd)],
    );
    assert_eq!(outcome.code, exit::FAILED);
    assert_eq!(outcome.err, "p11card: wrong PIN; 2 tries left\n");
    assert_eq!(tries_left(&context), (PinTries::Low, Some(2)));

    // A new PIN the card would refuse costs no try.
    let fd = descriptor_with("123456\n12\n");
    let outcome = p11card_fd(
        &context,
        &["pin", "change", "--pin-fd", &descriptor_fd(&fd)],
    );
    assert_eq!(outcome.code, exit::FAILED);
    assert_eq!(
        outcome.err,
        "p11card: this card takes PINs of 6 to 8 characters; nothing was changed\n"
    );
    assert_eq!(tries_left(&context).1, Some(2));

    let mut typed = Typed::new(&["000000", "111111", "111111"]);
    let outcome = run_with(&context, &["pin", "change"], &mut typed);
    assert_eq!(outcome.code, exit::FAILED);
    assert_eq!(
        outcome.err,
        "p11card: wrong PIN; 1 try left: one more wrong PIN blocks it\n"
    );
}

#[test]
fn typed_new_pins_are_asked_twice_and_must_match() {
    let (context, ..) = context_with(SimPivCard::new());
    let mut typed = Typed::new(&["123456", "111111", "222222"]);
    let outcome = run_with(&context, &["pin", "change"], &mut typed);
    assert_eq!(outcome.code, exit::FAILED);
    assert_eq!(
        typed.prompts,
        ["Current PIN: ", "New PIN: ", "New PIN again: "]
    );
    assert_eq!(
        outcome.err,
        "p11card: the two new PINs differ; nothing was changed\n"
    );
    assert_eq!(tries_left(&context), (PinTries::Plenty, Some(3)));
}

#[test]
fn pin_unblock_with_the_puk_from_descriptors() {
    let (context, ..) = context_with(SimPivCard::new().with_pin("123456", 1));
    let card = context.first_card().unwrap();
    assert!(card.login(b"000000").is_err());
    drop(card);
    let fd = descriptor_with("123456\n111111\n");
    let outcome = p11card_fd(
        &context,
        &["pin", "change", "--pin-fd", &descriptor_fd(&fd)],
    );
    assert_eq!(outcome.code, exit::PIN_BLOCKED);
    assert!(
        outcome.err.contains("`p11card pin unblock`"),
        "{}",
        outcome.err
    );

    let fd = descriptor_with("87654321\n111111\n");
    let number = descriptor_fd(&fd);
    let args = ["pin", "unblock", "--puk-fd", &number, "--pin-fd", &number];
    let outcome = p11card_fd(&context, &args);
    assert_eq!(outcome.code, exit::FAILED);
    assert!(
        outcome
            .err
            .starts_with("p11card: wrong PUK (unblocking code); the PIN is unchanged"),
        "{}",
        outcome.err
    );

    let (puk, pin) = (descriptor_with("12345678\n"), descriptor_with("111111\n"));
    let (puk, pin) = (descriptor_fd(&puk), descriptor_fd(&pin));
    let outcome = p11card_fd(
        &context,
        &["pin", "unblock", "--puk-fd", &puk, "--pin-fd", &pin],
    );
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    assert!(outcome
        .out
        .ends_with("The PIN is unblocked and set to the new PIN.\n"));
    assert_eq!(p11card(&context, &["status"]).code, exit::OK);
    context.first_card().unwrap().login(b"111111").unwrap();
}

#[test]
fn pin_commands_want_one_card_and_no_pin_on_the_command_line() {
    let backend = SimBackend::with_readers(["Reader A", "Reader B"]);
    backend.insert("Reader A", SimPivCard::new());
    backend.insert("Reader B", SimPivCard::new().with_serial(7));
    let context = Context::with_backend(Box::new(backend), ProfileSet::embedded());
    let outcome = p11card(&context, &["pin", "change"]);
    assert_eq!(outcome.code, exit::FAILED);
    assert_eq!(
        outcome.err,
        "p11card: there are cards in 2 readers (Reader A, Reader B); choose one with --reader\n"
    );
    let mut typed = Typed::new(&["123456", "111111", "111111"]);
    let outcome = run_with(
        &context,
        &["pin", "change", "--reader", "Reader B"],
        &mut typed,
    );
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    assert!(outcome.out.contains(" in Reader B."), "{}", outcome.out);

    for args in [
        ["p11card", "pin", "change", "--pin", "123456"],
        ["p11card", "pin", "unblock", "--puk", "12345678"],
    ] {
        let refused = Cli::try_parse_from(args).unwrap_err();
        assert_eq!(refused.exit_code(), i32::from(exit::USAGE));
    }
}

#[test]
fn wait_returns_when_a_card_arrives_or_gives_up() {
    let backend = SimBackend::new();
    let context = Context::with_backend(Box::new(backend.clone()), ProfileSet::embedded());
    let outcome = p11card(&context, &["wait", "--timeout", "1"]);
    assert_eq!(outcome.code, exit::NO_CARD);
    assert_eq!(
        outcome.out,
        "Waiting for a card p11card knows in the reader Sim Reader 0, for at most 1 seconds...\n"
    );
    assert_eq!(outcome.err, "p11card: no card arrived within 1 seconds\n");

    let inserter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        backend.insert(DEFAULT_READER, SimPivCard::new());
    });
    let outcome = p11card(&context, &["wait"]);
    inserter.join().unwrap();
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    assert_eq!(
        outcome.out,
        format!(
            "Waiting for a card p11card knows in the reader Sim Reader 0...\n\
             Card \"{TOKEN}\" (serial 8899aabbccddeeff) is in Sim Reader 0.\n"
        )
    );
    // Only the reader asked for counts.
    let outcome = p11card(&context, &["wait", "--timeout", "1", "--reader", "Other"]);
    assert_eq!(outcome.code, exit::NO_CARD);
    assert_eq!(
        outcome.out,
        "Waiting for a card p11card knows in a reader called \"Other\", for at most 1 seconds...\n"
    );
    // A card already there: no wait.
    let outcome = p11card(&context, &["wait", "--timeout", "0"]);
    assert_eq!(outcome.code, exit::OK);
    assert!(outcome.out.starts_with("Card \""), "{}", outcome.out);
}

#[test]
fn the_binary_documents_its_exit_statuses() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_p11card"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for command in ["status", "list", "pin", "wait"] {
        assert!(help.contains(command), "{help}");
    }
    assert!(help.contains("3 no usable card"), "{help}");
}

#[test]
fn the_binary_without_pcsc_says_no_reader_and_exits_3() {
    // pcsc-lite's own variable: a PC/SC service socket that is not there.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_p11card"))
        .arg("status")
        .env("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(i32::from(exit::NO_CARD)));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.starts_with("p11card: no card reader found: plug in the reader"),
        "{err}"
    );
}

#[test]
fn policy_check_says_what_the_strict_preset_refuses_of_each_key() {
    use p11card::policy::{Policy, Preset};
    use p11card::Module;
    use p11card_cardsim::{KeyType, Slot};
    let card = SimPivCard::new().with_key(Slot::KeyManagement, KeyType::Rsa1024);
    let (backend, _card) = SimBackend::with_card(card);
    let module = Module::new(Box::new(backend), ProfileSet::embedded())
        .with_policy(Policy::preset(Preset::Strict));
    let context = Context::from_module(module);
    let outcome = p11card(&context, &["policy", "check"]);
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    assert!(
        outcome.out.starts_with("policy: RSA >= 2048 bits;"),
        "{}",
        outcome.out
    );
    assert!(
        outcome.out.contains(
            "key 03 \"Key Management\" RSA 1024: refused: RSA keys need at least 2048 bits"
        ),
        "{}",
        outcome.out
    );
    assert!(
        outcome.out.contains(
            "key 01 \"PIV Authentication\" RSA 2048: allowed, except signatures over SHA-1"
        ),
        "{}",
        outcome.out
    );
    // The default policy refuses nothing.
    let (context, _backend, _card) = context_with(SimPivCard::new());
    let outcome = p11card(&context, &["policy", "check"]);
    assert!(
        outcome
            .out
            .contains("key 01 \"PIV Authentication\" RSA 2048: allowed\n"),
        "{}",
        outcome.out
    );
}

#[test]
fn pin_change_on_a_pin_pad_reader_asks_nothing_here() {
    // Through the recording backend the shipped command wraps PC/SC in.
    let (backend, card) = SimBackend::with_card(SimPivCard::new());
    let recording =
        p11card_cli::RecordingBackend::new(Box::new(backend), p11card_cli::Trace::new());
    let context = Context::with_backend(Box::new(recording), ProfileSet::embedded());
    card.set_pin_pad(Some("123456"));
    card.set_pin_pad_new_pin(Some("24681357"));
    let mut typed = Typed::new(&[]);
    let outcome = run_with(&context, &["pin", "change"], &mut typed);
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    assert!(typed.prompts.is_empty(), "{:?}", typed.prompts);
    assert_eq!(
        outcome.out,
        format!(
            "Changing the PIN of \"{TOKEN}\" (serial 8899aabbccddeeff) in Sim Reader 0.\n\
             Type the current PIN, then the new PIN twice, on the reader's PIN pad.\n\
             The PIN was changed.\n"
        )
    );
    let session = context.first_card().unwrap();
    session.login(b"24681357").unwrap();
}

#[test]
fn a_pin_pad_that_cannot_change_pins_leaves_the_pins_to_the_terminal() {
    let (context, _backend, card) = context_with(SimPivCard::new());
    card.set_pin_pad(Some("123456"));
    let mut typed = Typed::new(&["123456", "24681357", "24681357"]);
    let outcome = run_with(&context, &["pin", "change"], &mut typed);
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    assert_eq!(typed.prompts.len(), 3, "{:?}", typed.prompts);
    assert!(
        outcome
            .out
            .contains("the reader's PIN pad cannot change a PIN: asking here instead"),
        "{}",
        outcome.out
    );
}
