//! `p11card doctor` and `p11card status --json` against simulated cards,
//! in-process through `p11card_cli::run_in` with a temporary tree as the
//! system root, the home directory and the configuration file.

use clap::Parser;
use p11card::cache::CacheStore;
use p11card::profile::ProfileSet;
use p11card::{Context, Module};
use p11card_cardsim::{SimBackend, SimOpenPgpCard, SimPivCard};
use p11card_cli::register::Places;
use p11card_cli::{
    exit, run_in, run_registration, Cli, Environment, Io, RecordingBackend, Secrets, Trace,
};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use zeroize::Zeroizing;

/// What a command did.
struct Outcome {
    code: u8,
    out: String,
    err: String,
}

/// No secrets: the doctor never asks for one.
struct NoSecrets;

impl Secrets for NoSecrets {
    fn read(&mut self, prompt: &str, _fd: Option<i32>) -> Result<Zeroizing<Vec<u8>>, String> {
        panic!("asked for a secret: {prompt}");
    }
}

/// The `profiles.ini` of the trees' Firefox: one profile, `abcd.default`.
const PROFILES_INI: &str = "[Profile0]\nName=default\nIsRelative=1\nPath=abcd.default\n";

/// A temporary directory: `root` (system paths), `home`, removed at the end.
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "p11card-doctor-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("root")).unwrap();
        fs::create_dir_all(base.join("home")).unwrap();
        Tree { base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn home(&self) -> PathBuf {
        self.base.join("home")
    }

    /// Writes `text` to `path` under the tree, creating directories.
    fn write(&self, path: &str, text: &str) -> PathBuf {
        let path = self.base.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    /// A machine where everything is in place: pcscd, the module and its
    /// p11-kit file, a Firefox profile and `~/.pki/nssdb` with p11card, a
    /// valid configuration file.
    fn healthy(&self) -> &Tree {
        self.write("root/usr/sbin/pcscd", "");
        self.write("root/usr/lib/systemd/system/pcscd.socket", "");
        self.write(
            "root/usr/lib/x86_64-linux-gnu/pkcs11/libp11card_pkcs11.so",
            "",
        );
        self.write(
            "root/usr/share/p11-kit/modules/p11card.module",
            "module: /usr/lib/x86_64-linux-gnu/pkcs11/libp11card_pkcs11.so\n",
        );
        self.write("home/.mozilla/firefox/profiles.ini", PROFILES_INI);
        let nss = "library=\nname=NSS Internal PKCS #11 Module\n\n\
                   library=/usr/lib/x86_64-linux-gnu/pkcs11/libp11card_pkcs11.so\nname=p11card\n";
        self.write("home/.mozilla/firefox/abcd.default/pkcs11.txt", nss);
        self.write("home/.pki/nssdb/pkcs11.txt", nss);
        self.write(
            "home/.config/p11card/p11card.toml",
            "[policy]\npreset = \"compatible\"\n",
        );
        self
    }

    /// A machine where nothing is registered yet: pcscd (no socket unit)
    /// and a Firefox profile whose NSS database does not have p11card.
    fn unregistered(&self) -> &Tree {
        self.write("root/usr/sbin/pcscd", "");
        self.write("home/.mozilla/firefox/profiles.ini", PROFILES_INI);
        self.write(
            "home/.mozilla/firefox/abcd.default/pkcs11.txt",
            "library=\nname=NSS Internal PKCS #11 Module\n",
        );
        self
    }

    /// The doctor's view of this tree.
    fn environment(&self, trace: Option<Trace>) -> Environment {
        Environment {
            root: self.root(),
            home: Some(self.home()),
            config_home: Some(self.home().join(".config")),
            config_file: Some(self.home().join(".config/p11card/p11card.toml")),
            as_root: false,
            pcsc_check: Some(Box::new(|| Ok(()))),
            variables: Vec::new(),
            now: SystemTime::now(),
            trace,
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn run(context: &Context, env: &Environment, args: &[&str]) -> Outcome {
    let cli = Cli::try_parse_from(std::iter::once("p11card").chain(args.iter().copied()))
        .expect("the command line parses");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_in(
        &cli,
        context,
        env,
        &mut Io {
            out: &mut out,
            err: &mut err,
            secrets: &mut NoSecrets,
        },
    );
    Outcome {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn context_of(backend: &SimBackend) -> Context {
    Context::with_backend(Box::new(backend.clone()), ProfileSet::embedded())
}

/// A context whose card I/O goes to the returned trace.
fn recording_context(backend: &SimBackend) -> (Context, Trace) {
    let trace = Trace::new();
    let recording = RecordingBackend::new(Box::new(backend.clone()), trace.clone());
    let context = Context::with_backend(Box::new(recording), ProfileSet::embedded());
    (context, trace)
}

/// The doctor's lines at `level` (`ok`, `note`, `problem`).
fn lines<'a>(outcome: &'a Outcome, level: &str) -> Vec<&'a str> {
    outcome
        .out
        .lines()
        .filter(|line| line.split_whitespace().next() == Some(level))
        .collect()
}

#[test]
fn doctor_on_a_good_card_finds_no_problem() {
    let tree = Tree::new();
    tree.healthy();
    let (backend, _card) = SimBackend::with_card(SimPivCard::new());
    let outcome = run(&context_of(&backend), &tree.environment(None), &["doctor"]);
    assert_eq!(outcome.code, exit::OK, "{}{}", outcome.out, outcome.err);
    assert_eq!(lines(&outcome, "problem"), Vec::<&str>::new());
    for expected in [
        "ok      pcscd is installed (/usr/sbin/pcscd, socket unit /usr/lib/systemd/system/pcscd.socket)",
        "ok      the PC/SC service answers",
        "ok      1 reader: Sim Reader 0",
        "ok      the card in Sim Reader 0 is recognised: profile yubikey-piv",
        "ok      PIN: 3 tries left",
        "ok      PUK: 3 tries left",
        "ok      p11-kit sees p11card: ",
        "ok      the Firefox profile ",
        "ok      the shared NSS database (Chrome, Chromium) ",
        "ok      the configuration file ",
    ] {
        assert!(
            outcome.out.lines().any(|line| line.starts_with(expected)),
            "no line {expected:?} in\n{}",
            outcome.out
        );
    }
    assert!(outcome.out.contains(
        "ok      token \"cardsim 9A PIV Authentication\" (serial 8899aabbccddeeff) is readable: "
    ));
    assert!(lines(&outcome, "ok")
        .iter()
        .any(|line| line.contains("the certificate ") && line.contains(" is valid until ")));
    assert!(
        outcome.out.ends_with("No problem found.\n"),
        "{}",
        outcome.out
    );
    assert_eq!(outcome.err, "");
}

#[test]
fn doctor_with_a_blocked_pin_says_how_to_unblock_it() {
    let tree = Tree::new();
    tree.healthy();
    let (backend, _card) = SimBackend::with_card(SimPivCard::new().with_pin("123456", 1));
    let context = context_of(&backend);
    let card = context.first_card().unwrap();
    assert!(card.login(b"000000").is_err());
    let outcome = run(&context, &tree.environment(None), &["doctor"]);
    assert_eq!(outcome.code, exit::FAILED, "{}", outcome.out);
    assert_eq!(
        lines(&outcome, "problem"),
        ["problem the PIN is blocked; unblock it with `p11card pin unblock` (you need the card's PUK)"]
    );
    assert!(
        outcome.out.ends_with("1 problem found.\n"),
        "{}",
        outcome.out
    );
}

#[test]
fn doctor_with_a_blocked_puk_says_the_pin_cannot_be_unblocked() {
    let tree = Tree::new();
    tree.healthy();
    let (backend, _card) = SimBackend::with_card(SimPivCard::new().with_puk("12345678", 1));
    let context = context_of(&backend);
    let card = context.first_card().unwrap();
    assert!(card.unblock_pin(b"87654321", b"123456").is_err());
    assert_eq!(card.puk_tries_left().unwrap(), Some(0));
    let outcome = run(&context, &tree.environment(None), &["doctor"]);
    assert_eq!(outcome.code, exit::FAILED, "{}", outcome.out);
    assert!(
        outcome.out.contains(
            "problem the PUK (unblocking code) is blocked: a blocked PIN can no longer be unblocked"
        ),
        "{}",
        outcome.out
    );
    let status = run(&context, &tree.environment(None), &["status"]);
    assert!(
        status
            .out
            .contains("  PUK:     blocked: the PIN can no longer be unblocked\n"),
        "{}",
        status.out
    );
}

#[test]
fn doctor_without_a_card_or_a_reader() {
    let tree = Tree::new();
    tree.healthy();
    let backend = SimBackend::with_readers(["Reader A"]);
    let outcome = run(&context_of(&backend), &tree.environment(None), &["doctor"]);
    assert_eq!(outcome.code, exit::FAILED);
    assert_eq!(
        lines(&outcome, "problem"),
        ["problem no card in any reader; insert the card"]
    );
    assert!(outcome.out.contains("ok      1 reader: Reader A\n"));

    let none = SimBackend::with_readers(Vec::<String>::new());
    let outcome = run(&context_of(&none), &tree.environment(None), &["doctor"]);
    assert_eq!(outcome.code, exit::FAILED);
    let problems = lines(&outcome, "problem");
    assert_eq!(problems.len(), 1, "{}", outcome.out);
    assert!(problems[0].starts_with("problem no card reader found; plug in the reader"));

    // The PC/SC service does not answer: that is the problem, with its fix.
    let mut env = tree.environment(None);
    env.pcsc_check = Some(Box::new(
        || Err("the PC/SC service is not available".into()),
    ));
    let outcome = run(&context_of(&none), &env, &["doctor"]);
    assert_eq!(
        lines(&outcome, "problem"),
        [
            "problem the PC/SC service does not answer (the PC/SC service is not available); \
          start it: sudo systemctl start pcscd.socket (install it first if it is missing: \
          sudo apt install pcscd)"
        ]
    );
}

#[test]
fn doctor_on_a_card_it_does_not_know_shows_the_atr() {
    let tree = Tree::new();
    tree.healthy();
    let backend = SimBackend::with_readers(["Reader B"]);
    let card = backend.insert(
        "Reader B",
        SimPivCard::new().with_atr([0x3B, 0x02, 0x14, 0x50]),
    );
    card.misbehave(|m| m.fail_next = vec![(0xA4, 0x6A82); 8]);
    let outcome = run(&context_of(&backend), &tree.environment(None), &["doctor"]);
    assert_eq!(outcome.code, exit::FAILED);
    let problems = lines(&outcome, "problem");
    assert_eq!(problems.len(), 1, "{}", outcome.out);
    assert!(
        problems[0]
            .starts_with("problem the card in Reader B (ATR 3B 02 14 50) is not one p11card knows"),
        "{}",
        problems[0]
    );
}

#[test]
fn doctor_flags_expired_not_yet_valid_and_expiring_certificates() {
    let tree = Tree::new();
    tree.healthy();
    let (backend, _card) = SimBackend::with_card(SimPivCard::new());
    let context = context_of(&backend);
    let not_after = context
        .first_card()
        .unwrap()
        .keys()
        .unwrap()
        .iter()
        .filter_map(|key| key.certificate()?.not_after())
        .min()
        .expect("a certificate with an end date");
    let year = Duration::from_secs(365 * 86_400);

    let mut env = tree.environment(None);
    env.now = not_after + year;
    let outcome = run(&context, &env, &["doctor"]);
    assert_eq!(outcome.code, exit::FAILED);
    let problems = lines(&outcome, "problem");
    assert!(!problems.is_empty());
    assert!(
        problems.iter().all(|line| line.contains(" expired on ")
            && line.ends_with("; ask whoever issued the card for a new certificate")),
        "{}",
        outcome.out
    );

    env.now = SystemTime::UNIX_EPOCH + year;
    let outcome = run(&context, &env, &["doctor"]);
    assert_eq!(outcome.code, exit::FAILED);
    assert!(
        lines(&outcome, "problem")
            .iter()
            .all(|line| line.contains(" is not valid before ")),
        "{}",
        outcome.out
    );

    env.now = not_after - Duration::from_secs(10 * 86_400);
    let outcome = run(&context, &env, &["doctor"]);
    assert_eq!(outcome.code, exit::OK, "{}", outcome.out);
    assert!(
        lines(&outcome, "note")
            .iter()
            .any(|line| line.contains(", within 30 days; ask whoever issued the card")),
        "{}",
        outcome.out
    );
}

#[test]
fn doctor_checks_p11_kit_nss_and_the_configuration_file() {
    let tree = Tree::new();
    tree.unregistered();
    tree.write("home/.config/p11card/p11card.toml", "[policy\npreset = 1\n");
    let (backend, _card) = SimBackend::with_card(SimPivCard::new());
    let outcome = run(&context_of(&backend), &tree.environment(None), &["doctor"]);
    assert_eq!(outcome.code, exit::FAILED);
    let problems = lines(&outcome, "problem");
    assert_eq!(problems.len(), 3, "{}", outcome.out);
    assert!(problems[0].starts_with("problem p11-kit does not see p11card: no module file in "));
    assert!(problems[0].ends_with("; run `p11card register` (or install the p11card package)"));
    assert!(problems[1].starts_with("problem the Firefox profile "));
    assert!(problems[1].ends_with(
        "abcd.default does not have p11card; run `p11card register` (with the browser closed)"
    ));
    assert!(problems[2].contains("is not valid ("), "{}", problems[2]);
    assert!(problems[2].contains("p11card applies the strict algorithm policy"));
    assert!(outcome
        .out
        .contains("ok      pcscd is installed (/usr/sbin/pcscd; no systemd socket unit"));

    // A module file in the user's p11-kit directory naming a module that
    // is not there; a [policy] table the policy refuses.
    tree.write(
        "home/.config/pkcs11/modules/p11card.module",
        "module: /opt/p11card/libp11card_pkcs11.so\n",
    );
    tree.write(
        "home/.config/p11card/p11card.toml",
        "[policy]\nmin_rsa_bits = 1\n",
    );
    let mut env = tree.environment(None);
    let outcome = run(&context_of(&backend), &env, &["doctor"]);
    let problems = lines(&outcome, "problem");
    assert!(
        problems[0].ends_with(
            "p11card.module names /opt/p11card/libp11card_pkcs11.so, which does not exist; \
             run `p11card register` again (or reinstall the p11card package)"
        ),
        "{}",
        outcome.out
    );
    // A bare library name is looked for in p11-kit's module directory.
    tree.write(
        "home/.config/pkcs11/modules/p11card.module",
        "module: libp11card_pkcs11.so\n",
    );
    let outcome = run(&context_of(&backend), &env, &["doctor"]);
    assert!(
        lines(&outcome, "problem")[0].ends_with(
            "p11card.module names libp11card_pkcs11.so, which does not exist; \
             run `p11card register` again (or reinstall the p11card package)"
        ),
        "{}",
        outcome.out
    );
    tree.write(
        "root/usr/lib/x86_64-linux-gnu/pkcs11/libp11card_pkcs11.so",
        "",
    );
    let outcome = run(&context_of(&backend), &env, &["doctor"]);
    assert!(
        outcome
            .out
            .contains("p11card.module loads libp11card_pkcs11.so\n"),
        "{}",
        outcome.out
    );
    // As root, p11-kit reads no per-user module file: it does not count.
    env.as_root = true;
    let outcome = run(&context_of(&backend), &env, &["doctor"]);
    assert!(
        lines(&outcome, "problem")[0].starts_with("problem p11-kit does not see p11card"),
        "{}",
        outcome.out
    );
    assert!(
        lines(&outcome, "note")
            .iter()
            .any(|line| line.contains("p11card.module for root")),
        "{}",
        outcome.out
    );
}

/// The PIN of the report tests: its digits appear nowhere else.
const PIN: &str = "917364";

#[test]
fn report_has_the_trace_and_no_pin_and_is_only_for_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let tree = Tree::new();
    tree.healthy();
    let (backend, _card) = SimBackend::with_card(SimPivCard::new().with_pin(PIN, 3));
    // Another program logged in to the card before.
    let other = context_of(&backend);
    other.first_card().unwrap().login(PIN.as_bytes()).unwrap();

    let (context, trace) = recording_context(&backend);
    let report = tree.base.join("report.txt");
    let env = tree.environment(Some(trace));
    let outcome = run(
        &context,
        &env,
        &["doctor", "--report", report.to_str().unwrap()],
    );
    assert_eq!(outcome.code, exit::OK, "{}{}", outcome.out, outcome.err);
    assert!(outcome
        .out
        .ends_with(&format!("Report written to {}.\n", report.display())));
    let metadata = fs::symlink_metadata(&report).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&report).unwrap();
    for section in [
        "== System\np11card: ",
        "== Configuration\n",
        "Policy in effect: ",
        "== Doctor\n",
        "== Readers, cards, tokens, keys\nReader: Sim Reader 0\n",
        "  Profile: yubikey-piv\n",
        "    Certificate: ",
        "== APDU trace of one enumeration\n",
        "connect \"Sim Reader 0\": ATR 3B F8 13",
    ] {
        assert!(text.contains(section), "no {section:?} in\n{text}");
    }
    let trace: Vec<&str> = text
        .split("== APDU trace of one enumeration\n")
        .nth(1)
        .unwrap()
        .lines()
        .collect();
    // SELECT of the PIV application with its AID; GET DATA with its tag.
    assert!(
        trace
            .iter()
            .any(|line| line.contains(" 00 A4 04 00  Lc=") && line.contains("data=A0 00 00 03 08")),
        "{text}"
    );
    assert!(
        trace
            .iter()
            .any(|line| line.contains(" 00 CB 3F FF  Lc=") && line.contains("data=5C ")),
        "{text}"
    );
    assert!(trace.iter().any(|line| line.contains("-> SW 9000, ")));
    assert!(trace.iter().all(|line| line.ends_with(" ms")
        || line.starts_with("connect ")
        || line.starts_with("transaction")
        || line.starts_with('(')));
    assert_no_pin(&text);
    // The same holds for what the doctor printed.
    assert_no_pin(&outcome.out);

    // An existing file is not overwritten; a symbolic link is not
    // followed (nothing is created where it points).
    let again = run(
        &context,
        &env,
        &["doctor", "--report", report.to_str().unwrap()],
    );
    assert_eq!(again.code, exit::FAILED);
    assert!(again
        .err
        .contains("it exists already (p11card does not overwrite it)"));
    assert_eq!(fs::read_to_string(&report).unwrap(), text);
    let target = tree.base.join("elsewhere.txt");
    let link = tree.base.join("link.txt");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let through = run(
        &context,
        &env,
        &["doctor", "--report", link.to_str().unwrap()],
    );
    assert_eq!(through.code, exit::FAILED);
    assert!(through.err.starts_with("p11card: cannot create the report"));
    assert!(!target.exists());
}

/// Neither the PIN's ASCII nor its hex (spaced or not) is in `text`.
fn assert_no_pin(text: &str) {
    let hex: Vec<String> = PIN.bytes().map(|b| format!("{b:02X}")).collect();
    for needle in [
        PIN.to_string(),
        hex.join(" "),
        hex.join(""),
        hex.join("").to_lowercase(),
    ] {
        assert!(!text.contains(&needle), "{needle:?} in\n{text}");
    }
}

#[test]
fn report_of_an_openpgp_card_shows_its_get_data_commands() {
    let tree = Tree::new();
    tree.healthy();
    let (backend, _card) = SimBackend::with_card(SimOpenPgpCard::new());
    let (context, trace) = recording_context(&backend);
    let report = tree.base.join("openpgp-report.txt");
    let outcome = run(
        &context,
        &tree.environment(Some(trace)),
        &["doctor", "--report", report.to_str().unwrap()],
    );
    assert_eq!(outcome.code, exit::OK, "{}", outcome.out);
    // No resetting code on the card: the Admin PIN (PW3) unblocks, 3 tries.
    assert!(
        outcome.out.contains("ok      PUK: 3 tries left\n"),
        "{}",
        outcome.out
    );
    let text = fs::read_to_string(&report).unwrap();
    assert!(
        text.contains(" 00 A4 04 00  Lc=6 data=D2 76 00 01 24 01"),
        "{text}"
    );
    assert!(text.contains(" 00 CA 00 6E  -> SW 9000, "), "{text}");
}

#[test]
fn status_json_has_the_same_facts_as_the_text() {
    let (backend, _card) = SimBackend::with_card(SimPivCard::new());
    let backend_b = backend.clone();
    backend_b.add_reader("Reader Empty");
    let context = context_of(&backend);
    let env = Tree::new().environment(None);
    let outcome = run(&context, &env, &["status", "--json"]);
    assert_eq!(outcome.code, exit::OK, "{}", outcome.err);
    let json: serde_json::Value = serde_json::from_str(&outcome.out).unwrap();
    assert_eq!(json["verdict"], "usable");
    let readers = json["readers"].as_array().unwrap();
    let card = readers
        .iter()
        .find(|reader| reader["reader"] == "Sim Reader 0")
        .unwrap();
    assert_eq!(card["card_present"], true);
    assert_eq!(
        card["atr"],
        "3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4"
    );
    assert_eq!(card["profile"], "yubikey-piv");
    assert_eq!(card["token"]["label"], "cardsim 9A PIV Authentication");
    assert_eq!(card["token"]["serial"], "8899aabbccddeeff");
    assert_eq!(card["token"]["pin"]["tries_left"], 3);
    assert_eq!(card["token"]["pin"]["blocked"], false);
    assert_eq!(card["token"]["pin"]["state"], "plenty");
    assert_eq!(card["token"]["puk"]["tries_left"], 3);
    assert_eq!(card["token"]["puk"]["blocked"], false);
    assert_eq!(card["token"]["cache"], "off");
    let empty = readers
        .iter()
        .find(|reader| reader["reader"] == "Reader Empty")
        .unwrap();
    assert_eq!(empty["card_present"], false);
    assert_eq!(empty["token"], serde_json::Value::Null);
    assert_eq!(empty["verdict"], "no-card");
}

#[test]
fn status_says_whether_the_disk_cache_was_used() {
    let tree = Tree::new();
    let cache_dir = tree.base.join("cache");
    let (backend, _card) = SimBackend::with_card(SimPivCard::new());
    let with_cache = || {
        Context::from_module(
            Module::new(Box::new(backend.clone()), ProfileSet::embedded()).with_cache(
                CacheStore::at(cache_dir.clone(), CacheStore::DEFAULT_MAX_AGE),
            ),
        )
    };
    let env = tree.environment(None);
    let first = run(&with_cache(), &env, &["status"]);
    assert!(!cache_dir.exists() || fs::read_dir(&cache_dir).unwrap().next().is_none());
    assert!(
        first.out.contains("  Cache:   on (read from the card)\n"),
        "{}",
        first.out
    );
    // `status` reads the first certificate only; `list` reads them all,
    // which completes the card's public data and puts it in the cache.
    let first_context = with_cache();
    run(&first_context, &env, &["status"]);
    assert_eq!(run(&first_context, &env, &["list"]).code, exit::OK);
    let second = run(&with_cache(), &env, &["status"]);
    assert!(
        second
            .out
            .contains("  Cache:   used (keys and certificates from the disk cache)\n"),
        "{}",
        second.out
    );
    let json = run(&with_cache(), &env, &["status", "--json"]);
    assert!(json.out.contains("\"cache\": \"used\""), "{}", json.out);
}

#[test]
fn puk_tries_cost_no_apdu_on_a_card_that_cannot_tell_them() {
    // A PIV card without Yubico's GET METADATA (virtpiv's ATR: the generic
    // PIV profile).
    let atr = [
        0x3B, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xFF, 0x01, 0x00, 0x0B,
    ];
    let (backend, card) =
        SimBackend::with_card(SimPivCard::new().without_yubico_extensions().with_atr(atr));
    let context = context_of(&backend);
    let first = context.first_card().unwrap();
    assert_eq!(first.profile().unwrap(), "piv");
    first.token_info().unwrap();
    let before = card.apdu_count();
    assert_eq!(first.puk_tries_left().unwrap(), None);
    assert_eq!(card.apdu_count(), before, "{}", card.transcript());
    let status = run(&context, &Tree::new().environment(None), &["status"]);
    assert!(
        status
            .out
            .contains("  PUK:     unknown (the card does not tell without spending a try)\n"),
        "{}",
        status.out
    );

    // A YubiKey tells them with GET METADATA of the PUK (81), no VERIFY.
    let (backend, card) = SimBackend::with_card(SimPivCard::new().with_puk("12345678", 5));
    let first = context_of(&backend).first_card().unwrap();
    first.token_info().unwrap();
    card.clear_log();
    assert_eq!(first.puk_tries_left().unwrap(), Some(5));
    let headers: Vec<[u8; 4]> = card
        .log()
        .iter()
        .map(|apdu| apdu.command[..4].try_into().unwrap())
        .collect();
    assert!(
        headers.contains(&[0x00, 0xF7, 0x00, 0x81]),
        "{headers:02X?}"
    );
    assert!(headers.iter().all(|h| h[1] != 0x20), "{headers:02X?}");
}

#[test]
fn after_p11card_register_the_doctor_finds_the_registrations() {
    let tree = Tree::new();
    tree.unregistered();
    let module = tree.write("libp11card_pkcs11.so", "not really a module");
    // The doctor looks for the library a module file names under its root.
    tree.write(&format!("root{}", module.display()), "");
    let (backend, _card) = SimBackend::with_card(SimPivCard::new());
    let env = tree.environment(None);
    let before = run(&context_of(&backend), &env, &["doctor"]);
    assert_eq!(lines(&before, "problem").len(), 2, "{}", before.out);

    let cli =
        Cli::try_parse_from(["p11card", "register", "--module", module.to_str().unwrap()]).unwrap();
    let places = Places {
        home: Some(tree.home()),
        root: tree.root(),
        euid: 1000,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_registration(&cli, &places, &mut out, &mut err).unwrap();
    assert_eq!(code, exit::OK, "{}", String::from_utf8_lossy(&err));

    let after = run(&context_of(&backend), &env, &["doctor"]);
    assert_eq!(after.code, exit::OK, "{}", after.out);
    assert!(
        after.out.contains("ok      p11-kit sees p11card: "),
        "{}",
        after.out
    );
    assert!(
        after.out.contains("abcd.default has p11card\n"),
        "{}",
        after.out
    );
}
