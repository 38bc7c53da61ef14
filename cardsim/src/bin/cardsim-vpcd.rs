//! cardsim-vpcd: puts p11card's simulated PIV card ([`SimPivCard`]), or with
//! `--app openpgp` its simulated OpenPGP card ([`SimOpenPgpCard`]), into the
//! `vpcd` virtual reader of vsmartcard, so that the real `pcscd` (and every
//! PC/SC consumer: OpenSC, p11card's own module, ...) sees it as a card.
//!
//! The vpcd socket protocol (2-byte big-endian length, then an APDU, or one
//! control byte for power off / power on / reset / ATR) is spoken by the
//! `vpicc` crate. Power on, power off and reset all reset the card like a
//! real one: nothing selected, PIN no longer verified (retry counters and
//! contents stay). The card lives in memory only: every start is the same
//! factory card (see [`SimPivCard::new`], [`SimOpenPgpCard::new`]).
//!
//! It is the counterpart of `../shared/virtpiv` and `../shared/virtpgp`
//! (independent PIV and OpenPGP applets): same APDU trace format, same
//! latency model, and `--out` writes the card's public material (for PIV in
//! the layout of virtpiv's `provision.sh`). The scripts in
//! `tests/realstack/owncard/` start and stop it.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use der::pem::LineEnding;
use p11card_cardsim::{
    ca_certificate_der, KeyRole, KeyType, PgpKeyType, PinPolicy, SimApplet, SimMyEidCard,
    SimOpenPgpCard, SimPivCard, SimPublicKey, Slot, TouchPolicy, RETIRED_1_REFERENCE,
};

/// vpcd's first reader ("Virtual PCD 00 00"), the PIV card's default.
const DEFAULT_ADDR: &str = "127.0.0.1:35963";
/// vpcd's second reader ("Virtual PCD 00 01"), the OpenPGP card's default.
const DEFAULT_OPENPGP_ADDR: &str = "127.0.0.1:35964";
/// The MyEID card's default: a third vpcd reader ("Virtual PCD 00 02"),
/// which a pcscd needs a reader.conf entry for (tests/realstack/pkcs15/).
const DEFAULT_MYEID_ADDR: &str = "127.0.0.1:35965";
const DEFAULT_CONNECT_TIMEOUT_S: u64 = 30;
const RETRY_PAUSE: Duration = Duration::from_millis(200);

const USAGE: &str = "\
usage: cardsim-vpcd [OPTIONS]

Inserts p11card's simulated PIV card (p11card-cardsim's SimPivCard), its
simulated OpenPGP card (SimOpenPgpCard, --app openpgp) or its simulated
Aventra MyEID card (SimMyEidCard, --app myeid) into the vpcd virtual reader
of pcscd (vsmartcard), until stopped (SIGTERM/SIGINT).

The default PIV card: 9A RSA-2048, 9C ECC P-256, 9D ECC P-384 (certificate
stored gzip-compressed), 9E ECC P-256, certificates issued by 'CN=cardsim test
CA, O=p11card test'; PIN 123456, PUK 12345678 (3 tries each); serial 12345678;
the ATR of a YubiKey 5.

The default OpenPGP card (spec 3.4): AID D276000124010304FFFE123456780000;
signature key RSA-2048, decryption key RSA-2048, authentication key ECDSA
P-256 with a cardholder certificate (DO 7F21) issued by the same CA; PW1
123456, PW3 12345678 (3 tries each), no Resetting Code, PW1 good for one
signature per VERIFY; cardholder 'Simulated<<PGP'.

The MyEID card starts as a factory card (MF only, no PINs, creation state)
for OpenSC's pkcs15-init to personalise, or from --image.

State is in memory only (a new process is a new card), except the MyEID
card's with --image.

options:
  --app piv|openpgp|myeid which card (default piv)
  --addr HOST:PORT        where vpcd listens (default 127.0.0.1:35963, reader
                          'Virtual PCD 00 00', for piv; 127.0.0.1:35964,
                          'Virtual PCD 00 01', for openpgp; 127.0.0.1:35965,
                          'Virtual PCD 00 02', for myeid)
  --image FILE            MyEID: load the card from FILE if it exists (a card
                          image, see SimMyEidCard::to_image) and write every
                          change of the card's state back to it
  --connect-timeout SECS  how long to retry the first connection (default 30)
  --once                  exit when vpcd closes the connection (default: the
                          card is 'reinserted': reconnect until vpcd is back)
  --trace FILE            append one line per command APDU to FILE ('-' =
                          stderr), in virtpiv's format:
                          <unix time> APDU <n> CLA=.. INS=.. P1=.. P2=.. Lc=..
                          len=.. -> SW=.... resp=.. us=..
                          and '<unix time> EVENT <power-on|power-off|reset|disconnect>'
  --delay-us FIXED[,PER_BYTE]
                          make each APDU take at least FIXED + PER_BYTE x (command
                          + response bytes) microseconds (e.g. 3000,90: a contact
                          card at 115200 baud), like VIRTPIV_DELAY_US
  --out DIR               write the card's public material at start: ca.pem (the
                          cardsim CA) and, per key, pubXX.pem (SubjectPublicKeyInfo)
                          and certXX.pem if it has a certificate; XX = 9a 9c 9d 9e
                          (PIV, the layout of virtpiv's provision.sh) or sig dec aut
                          (OpenPGP); files of absent keys are removed
  --key SLOT=TYPE         change a key of the default card (repeatable). PIV: SLOT
                          9a|9c|9d|9e, TYPE rsa2048|p256|p384|none (--key 9d=rsa2048
                          gives virtpiv's key layout). OpenPGP: SLOT sig|dec|aut,
                          TYPE rsa2048|p256|p384|ed25519 (sig, aut)|x25519 (dec)|none
  --signed-chuid          PIV: give the CHUID an issuer signature (tag 3E), as
                          issued PIV cards have (p11card then caches the card's
                          certificates under it)
  --retired N=TYPE        PIV: retired key management key N (1-20, key reference
                          81+N) of TYPE rsa2048|p256|p384 with a certificate, and
                          a Key History object counting them (repeatable);
                          --out writes pub8X.pem / cert8X.pem for them
  --no-cert SLOT          PIV: keep the key of SLOT (9a|9c|9d|9e), drop its
                          certificate (repeatable)
  --policy REF=PIN[,TOUCH]
                          PIV: the PIN policy (never|once|always) and touch policy
                          (never|always|cached) GET METADATA reports and GENERAL
                          AUTHENTICATE enforces for key REF (9a, 82, ...)
  --global-pin PIN        PIV: a global PIN (6-8 bytes) the Discovery object names
                          the primary PIN
  --atr HEX               PIV: the card's ATR (hex, ':' or ' ' between bytes
                          allowed; default a YubiKey 4's)
  -h, --help              this text
";

/// Which card the bridge serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    Piv,
    OpenPgp,
    MyEid,
}

/// One `--key` change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyChange {
    Piv(Slot, Option<KeyType>),
    OpenPgp(KeyRole, Option<PgpKeyType>),
}

/// Command-line options.
#[derive(Debug)]
struct Options {
    app: App,
    addr: String,
    connect_timeout: Duration,
    once: bool,
    trace: Option<String>,
    delay_us: (u64, u64),
    out: Option<PathBuf>,
    keys: Vec<KeyChange>,
    /// PIV: a CHUID with an issuer signature.
    signed_chuid: bool,
    /// PIV: retired keys, certificate-less slots, policies, a global PIN.
    piv_extras: Vec<PivExtra>,
    /// MyEID: the card image to load and keep up to date.
    image: Option<PathBuf>,
}

/// A PIV card feature beyond `--key`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PivExtra {
    Atr(Vec<u8>),
    Retired(u8, KeyType),
    NoCert(Slot),
    Policy(u8, PinPolicy, TouchPolicy),
    GlobalPin(String),
}

/// Parses `FIXED` or `FIXED,PER_BYTE` (microseconds).
fn parse_delay(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--delay-us wants FIXED[,PER_BYTE] microseconds, not {text:?}");
    let mut parts = text.split(',').map(|p| p.trim().parse::<u64>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(fixed)), None, None) => Ok((fixed, 0)),
        (Some(Ok(fixed)), Some(Ok(per_byte)), None) => Ok((fixed, per_byte)),
        _ => Err(bad()),
    }
}

/// Parses `SLOT=TYPE` for `app`: `9d=rsa2048`, `9e=none` (PIV), `sig=ed25519`
/// (OpenPGP).
fn parse_key(app: App, text: &str) -> Result<KeyChange, String> {
    match app {
        App::Piv => parse_piv_key(text).map(|(slot, t)| KeyChange::Piv(slot, t)),
        App::OpenPgp => parse_openpgp_key(text).map(|(role, t)| KeyChange::OpenPgp(role, t)),
        App::MyEid => Err("--key: the MyEID card's keys come from pkcs15-init or --image".into()),
    }
}

/// Parses `ROLE=TYPE`, e.g. `dec=x25519` or `sig=none`.
fn parse_openpgp_key(text: &str) -> Result<(KeyRole, Option<PgpKeyType>), String> {
    let bad = || {
        format!(
            "--key wants ROLE=TYPE (sig|dec|aut = rsa2048|p256|p384|ed25519|x25519|none) \
             with --app openpgp, not {text:?}"
        )
    };
    let (role, key_type) = text.split_once('=').ok_or_else(bad)?;
    let role = role.trim().to_ascii_lowercase();
    let role = KeyRole::ALL
        .into_iter()
        .find(|r| r.short_name() == role)
        .ok_or_else(bad)?;
    let key_type = match key_type.trim().to_ascii_lowercase().as_str() {
        "rsa2048" | "rsa" => Some(PgpKeyType::Rsa2048),
        "p256" | "nistp256" => Some(PgpKeyType::P256),
        "p384" | "nistp384" => Some(PgpKeyType::P384),
        "ed25519" => Some(PgpKeyType::Ed25519),
        "x25519" | "cv25519" => Some(PgpKeyType::X25519),
        "none" => None,
        _ => return Err(bad()),
    };
    if key_type.is_some_and(|t| !t.supports(role)) {
        return Err(format!(
            "--key {text:?}: Ed25519 only signs (sig, aut), X25519 only decrypts (dec)"
        ));
    }
    Ok((role, key_type))
}

/// Parses `N=TYPE` of `--retired`, e.g. `1=p256`.
fn parse_retired(text: &str) -> Result<PivExtra, String> {
    let bad = || format!("--retired wants N=TYPE (1-20 = rsa2048|p256|p384), not {text:?}");
    let (number, key_type) = text.split_once('=').ok_or_else(bad)?;
    let number = number
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|n| (1..=20).contains(n));
    let key_type = match key_type.trim().to_ascii_lowercase().as_str() {
        "rsa2048" | "rsa" => KeyType::Rsa2048,
        "p256" | "eccp256" => KeyType::EccP256,
        "p384" | "eccp384" => KeyType::EccP384,
        _ => return Err(bad()),
    };
    Ok(PivExtra::Retired(number.ok_or_else(bad)?, key_type))
}

/// Parses `REF=PIN[,TOUCH]` of `--policy`, e.g. `9c=once` or `9a=always,cached`.
fn parse_policy(text: &str) -> Result<PivExtra, String> {
    let bad = || {
        format!(
            "--policy wants REF=PIN[,TOUCH] (never|once|always, never|always|cached), not {text:?}"
        )
    };
    let (reference, policies) = text.split_once('=').ok_or_else(bad)?;
    let reference = u8::from_str_radix(reference.trim(), 16).map_err(|_| bad())?;
    let (pin, touch) = policies.split_once(',').unwrap_or((policies, "never"));
    let pin = match pin.trim() {
        "never" => PinPolicy::Never,
        "once" => PinPolicy::Once,
        "always" => PinPolicy::Always,
        _ => return Err(bad()),
    };
    let touch = match touch.trim() {
        "never" => TouchPolicy::Never,
        "always" => TouchPolicy::Always,
        "cached" => TouchPolicy::Cached,
        _ => return Err(bad()),
    };
    Ok(PivExtra::Policy(reference, pin, touch))
}

/// Parses `SLOT=TYPE`, e.g. `9d=rsa2048` or `9e=none`.
fn parse_piv_key(text: &str) -> Result<(Slot, Option<KeyType>), String> {
    let bad =
        || format!("--key wants SLOT=TYPE (9a|9c|9d|9e = rsa2048|p256|p384|none), not {text:?}");
    let (slot, key_type) = text.split_once('=').ok_or_else(bad)?;
    let key_ref = u8::from_str_radix(slot.trim(), 16).map_err(|_| bad())?;
    let slot = Slot::from_key_ref(key_ref).ok_or_else(bad)?;
    let key_type = match key_type.trim().to_ascii_lowercase().as_str() {
        "rsa2048" | "rsa" => Some(KeyType::Rsa2048),
        "rsa1024" => Some(KeyType::Rsa1024),
        "p256" | "eccp256" => Some(KeyType::EccP256),
        "p384" | "eccp384" => Some(KeyType::EccP384),
        "none" => None,
        _ => return Err(bad()),
    };
    Ok((slot, key_type))
}

/// `Ok(None)` means `--help` was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut opts = Options {
        app: App::Piv,
        addr: String::new(),
        connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_S),
        once: false,
        trace: None,
        delay_us: (0, 0),
        out: None,
        keys: Vec::new(),
        signed_chuid: false,
        piv_extras: Vec::new(),
        image: None,
    };
    let mut keys = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--once" => opts.once = true,
            "--app" => {
                opts.app = match value()?.to_ascii_lowercase().as_str() {
                    "piv" => App::Piv,
                    "openpgp" | "pgp" => App::OpenPgp,
                    "myeid" => App::MyEid,
                    other => {
                        return Err(format!("--app wants piv, openpgp or myeid, not {other:?}"))
                    }
                }
            }
            "--addr" => opts.addr = value()?,
            "--connect-timeout" => {
                let v = value()?;
                let secs = v
                    .parse::<u64>()
                    .map_err(|_| format!("--connect-timeout wants seconds, not {v:?}"))?;
                opts.connect_timeout = Duration::from_secs(secs);
            }
            "--trace" => opts.trace = Some(value()?),
            "--delay-us" => opts.delay_us = parse_delay(&value()?)?,
            "--out" => opts.out = Some(PathBuf::from(value()?)),
            "--image" => opts.image = Some(PathBuf::from(value()?)),
            "--key" => keys.push(value()?),
            "--signed-chuid" => opts.signed_chuid = true,
            "--retired" => opts.piv_extras.push(parse_retired(&value()?)?),
            "--no-cert" => {
                let v = value()?;
                let slot = u8::from_str_radix(v.trim(), 16)
                    .ok()
                    .and_then(Slot::from_key_ref)
                    .ok_or_else(|| format!("--no-cert wants 9a|9c|9d|9e, not {v:?}"))?;
                opts.piv_extras.push(PivExtra::NoCert(slot));
            }
            "--policy" => opts.piv_extras.push(parse_policy(&value()?)?),
            "--atr" => {
                let v = value()?;
                let digits: String = v.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
                let atr = (0..digits.len())
                    .step_by(2)
                    .map(|i| {
                        digits
                            .get(i..i + 2)
                            .and_then(|b| u8::from_str_radix(b, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()
                    .filter(|atr| (2..=33).contains(&atr.len()))
                    .ok_or_else(|| format!("--atr wants 2 to 33 hex bytes, not {v:?}"))?;
                opts.piv_extras.push(PivExtra::Atr(atr));
            }
            "--global-pin" => {
                let pin = value()?;
                if !(6..=8).contains(&pin.len()) {
                    return Err("--global-pin wants 6 to 8 bytes".into());
                }
                opts.piv_extras.push(PivExtra::GlobalPin(pin));
            }
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    // --key is read for the card --app names, wherever --app stands.
    for key in keys {
        opts.keys.push(parse_key(opts.app, &key)?);
    }
    if opts.addr.is_empty() {
        opts.addr = match opts.app {
            App::Piv => DEFAULT_ADDR,
            App::OpenPgp => DEFAULT_OPENPGP_ADDR,
            App::MyEid => DEFAULT_MYEID_ADDR,
        }
        .to_owned();
    }
    Ok(Some(opts))
}

// ---------------------------------------------------------------------------
// APDU trace (virtpiv's format, so the same line counting works)
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Trace {
    Off,
    Stderr,
    File(File),
}

impl Trace {
    fn open(target: Option<&str>) -> io::Result<Trace> {
        Ok(match target {
            None | Some("") => Trace::Off,
            Some("-") => Trace::Stderr,
            Some(path) => Trace::File(OpenOptions::new().create(true).append(true).open(path)?),
        })
    }

    fn enabled(&self) -> bool {
        !matches!(self, Trace::Off)
    }

    fn line(&mut self, text: &str) {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let line = format!("{stamp:.6} {text}\n");
        // A trace that cannot be written must not take the card down.
        let _ = match self {
            Trace::Off => Ok(()),
            Trace::Stderr => io::stderr().write_all(line.as_bytes()),
            Trace::File(f) => f.write_all(line.as_bytes()),
        };
    }
}

/// The length of the command data (Lc) of a raw APDU, 0 if it has none or
/// is malformed.
fn command_data_len(apdu: &[u8]) -> usize {
    match apdu {
        // Case 1 (header only), case 2S (header + Le).
        [] | [_] | [_, _] | [_, _, _] | [_, _, _, _] | [_, _, _, _, _] => 0,
        // Extended: 00 Lc1 Lc2 (case 3E/4E); exactly 00 Le1 Le2 is case 2E.
        [_, _, _, _, 0, hi, lo, rest @ ..] if !rest.is_empty() => {
            usize::from(u16::from_be_bytes([*hi, *lo]))
        }
        [_, _, _, _, 0, ..] => 0,
        [_, _, _, _, lc, ..] => usize::from(*lc),
    }
}

// ---------------------------------------------------------------------------
// The card as vpcd sees it
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Bridge {
    card: SimApplet,
    trace: Trace,
    count: u64,
    /// Modelled card latency: (fixed, per byte) in microseconds.
    delay_us: (u64, u64),
    /// MyEID: where the card's image is kept up to date.
    image: Option<PathBuf>,
}

impl Bridge {
    /// A power event: the card forgets selection and PIN state.
    fn card_reset(&mut self, why: &str) {
        self.card.power_on();
        if self.trace.enabled() {
            self.trace.line(&format!("EVENT {why}"));
        }
    }
}

impl Bridge {
    /// Writes the MyEID card's image if its state changed (through a
    /// temporary file and a rename). A failed write is reported, not fatal.
    fn save_image(&mut self) {
        let (Some(path), Some(card)) = (&self.image, self.card.as_myeid_mut()) else {
            return;
        };
        if !card.take_changed() {
            return;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        if let Err(e) = fs::write(&tmp, card.to_image()).and_then(|()| fs::rename(&tmp, path)) {
            eprintln!(
                "cardsim-vpcd: cannot save the card image to {}: {e}",
                path.display()
            );
        }
    }
}

impl vpicc::VSmartCard for Bridge {
    fn atr(&self) -> &[u8] {
        self.card.atr()
    }

    fn power_on(&mut self) {
        self.card_reset("power-on");
    }

    fn power_off(&mut self) {
        self.card_reset("power-off");
    }

    fn reset(&mut self) {
        self.card_reset("reset");
    }

    fn execute(&mut self, apdu: &[u8]) -> Vec<u8> {
        let started = Instant::now();
        let response = self.card.process(apdu);
        self.save_image();
        // The card keeps an in-memory log for tests; a long-running bridge
        // must not let it grow without bound.
        self.card.clear_log();
        let (fixed, per_byte) = self.delay_us;
        if fixed + per_byte > 0 {
            let bytes = (apdu.len() + response.len()) as u64;
            let target =
                Duration::from_micros(fixed.saturating_add(per_byte.saturating_mul(bytes)));
            if let Some(rest) = target.checked_sub(started.elapsed()) {
                sleep(rest);
            }
        }
        if self.trace.enabled() {
            self.count += 1;
            let byte = |i: usize| apdu.get(i).copied().unwrap_or(0);
            let (sw1, sw2, resp) = match response.as_slice() {
                [data @ .., sw1, sw2] => (*sw1, *sw2, data.len()),
                _ => (0, 0, 0),
            };
            let line = format!(
                "APDU {} CLA={:02X} INS={:02X} P1={:02X} P2={:02X} Lc={} len={} -> SW={:02X}{:02X} resp={} us={}",
                self.count,
                byte(0),
                byte(1),
                byte(2),
                byte(3),
                command_data_len(apdu),
                apdu.len(),
                sw1,
                sw2,
                resp,
                started.elapsed().as_micros()
            );
            self.trace.line(&line);
        }
        response
    }
}

// ---------------------------------------------------------------------------
// Public material (--out)
// ---------------------------------------------------------------------------

/// Writes `der` as PEM with `label` to `path` (through a temporary file and
/// a rename, so a reader never sees half a file).
fn write_pem(path: &Path, label: &str, der: &[u8]) -> io::Result<()> {
    let text = der::pem::encode_string(label, LineEnding::LF, der)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("PEM encoding: {e}")))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// One key's public material: its name in file names (`9a`, `sig`), its
/// SubjectPublicKeyInfo and certificate, if any.
type KeyMaterial = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// The public material of every key position of `card`.
fn key_material(card: &SimApplet) -> Vec<KeyMaterial> {
    match card {
        SimApplet::Piv(card) => Slot::ALL
            .into_iter()
            .map(|slot| {
                (
                    format!("{:02x}", slot.key_ref()),
                    card.public_key(slot).map(|k| k.to_spki_der()),
                    card.certificate_der(slot).map(<[u8]>::to_vec),
                )
            })
            .chain((1..=20).map(|number| {
                (
                    format!("{:02x}", RETIRED_1_REFERENCE + number - 1),
                    card.retired_public_key(number).map(|k| k.to_spki_der()),
                    card.retired_certificate_der(number).map(<[u8]>::to_vec),
                )
            }))
            .collect(),
        SimApplet::OpenPgp(card) => KeyRole::ALL
            .into_iter()
            .map(|role| {
                (
                    role.short_name().to_owned(),
                    card.public_key(role).map(|k| k.to_spki_der()),
                    card.certificate_der(role).map(<[u8]>::to_vec),
                )
            })
            .collect(),
        SimApplet::MyEid(card) => card
            .public_keys()
            .into_iter()
            .map(|(path, key)| (path.to_ascii_lowercase(), Some(key.to_spki_der()), None))
            .collect(),
    }
}

/// `ca.pem`, and per key `pubXX.pem` and (if it has one) `certXX.pem`;
/// files of absent keys are removed. Returns what was written.
fn write_public_material(card: &SimApplet, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let ca = dir.join("ca.pem");
    write_pem(&ca, "CERTIFICATE", &ca_certificate_der())?;
    written.push(ca);
    for (xx, public, cert) in key_material(card) {
        let cert_path = dir.join(format!("cert{xx}.pem"));
        let pub_path = dir.join(format!("pub{xx}.pem"));
        let Some(public) = public else {
            remove_if_present(&cert_path)?;
            remove_if_present(&pub_path)?;
            continue;
        };
        write_pem(&pub_path, "PUBLIC KEY", &public)?;
        written.push(pub_path);
        match cert {
            Some(cert) => {
                write_pem(&cert_path, "CERTIFICATE", &cert)?;
                written.push(cert_path);
            }
            None => remove_if_present(&cert_path)?,
        }
    }
    Ok(written)
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

/// Connects to vpcd, retrying until `timeout` (`None`: for ever). Returns the
/// vpicc connection and a second handle on the same socket for per-read
/// TCP tuning.
fn connect(addr: &str, timeout: Option<Duration>) -> io::Result<(vpicc::Connection, TcpStream)> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                // vpcd writes the 2-byte length and the APDU in two send()s;
                // without NODELAY + QUICKACK, Nagle and delayed ACKs add
                // ~40 ms to every APDU.
                stream.set_nodelay(true)?;
                let tuning = stream.try_clone()?;
                return Ok((vpicc::Connection::from(stream), tuning));
            }
            Err(e) if deadline.is_some_and(|d| Instant::now() >= d) => return Err(e),
            Err(_) => sleep(RETRY_PAUSE),
        }
    }
}

/// Asks the kernel to ACK the next segments at once (TCP_QUICKACK is not
/// sticky, so this is done before every read).
#[cfg(target_os = "linux")]
fn quick_ack(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_stream: &TcpStream) {}

/// The default card of `app` with the `--key` changes.
/// `card` with retired key `number`: the first embedded test key of the type
/// that no other key of the card already is.
fn with_distinct_retired_key(card: SimPivCard, number: u8, key_type: KeyType) -> SimPivCard {
    let taken = |trial: &SimPivCard, key: &SimPublicKey| {
        Slot::ALL
            .iter()
            .any(|&s| trial.public_key(s).as_ref() == Some(key))
            || (1..=20)
                .filter(|&n| n != number)
                .any(|n| trial.retired_public_key(n).as_ref() == Some(key))
    };
    for source in Slot::ALL {
        let trial = card.clone().with_retired_key(number, key_type, source);
        let distinct = trial
            .retired_public_key(number)
            .is_some_and(|key| !taken(&trial, &key));
        if distinct {
            return trial;
        }
    }
    card.with_retired_key(number, key_type, Slot::KeyManagement)
}

fn build_card(app: App, keys: &[KeyChange], signed_chuid: bool, extras: &[PivExtra]) -> SimApplet {
    let mut piv = SimPivCard::new();
    if signed_chuid {
        piv = piv.with_signed_chuid(&[0x5A; 64]);
    }
    for extra in extras {
        piv = match extra {
            PivExtra::Retired(number, key_type) => {
                with_distinct_retired_key(piv, *number, *key_type)
            }
            PivExtra::NoCert(slot) => piv.without_cert(*slot),
            PivExtra::Policy(reference, pin, touch) => piv.with_policy(*reference, *pin, *touch),
            PivExtra::GlobalPin(pin) => piv.with_global_pin(pin, true),
            PivExtra::Atr(atr) => piv.with_atr(atr.clone()),
        };
    }
    let mut pgp = SimOpenPgpCard::new();
    for &change in keys {
        match change {
            KeyChange::Piv(slot, Some(key_type)) => piv = piv.with_key(slot, key_type),
            KeyChange::Piv(slot, None) => piv = piv.without_slot(slot),
            KeyChange::OpenPgp(role, Some(key_type)) => pgp = pgp.with_key(role, key_type),
            KeyChange::OpenPgp(role, None) => pgp = pgp.without_key(role).without_cert(role),
        }
    }
    match app {
        App::Piv => piv.into(),
        App::OpenPgp => pgp.into(),
        App::MyEid => SimMyEidCard::new().into(),
    }
}

/// The MyEID card of `image` if that file exists, else a factory card.
fn load_myeid(image: &Path) -> Result<SimApplet, String> {
    match fs::read_to_string(image) {
        Ok(text) => SimMyEidCard::from_image(&text)
            .map(SimApplet::from)
            .map_err(|e| format!("{}: {e}", image.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(SimMyEidCard::new().into()),
        Err(e) => Err(format!("cannot read {}: {e}", image.display())),
    }
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cardsim-vpcd: {e}");
            return ExitCode::from(2);
        }
    };
    let card = match (&opts.image, opts.app) {
        (Some(image), App::MyEid) => match load_myeid(image) {
            Ok(card) => card,
            Err(e) => {
                eprintln!("cardsim-vpcd: {e}");
                return ExitCode::from(2);
            }
        },
        (Some(_), _) => {
            eprintln!("cardsim-vpcd: --image is for --app myeid");
            return ExitCode::from(2);
        }
        (None, app) => build_card(app, &opts.keys, opts.signed_chuid, &opts.piv_extras),
    };
    if let Some(dir) = &opts.out {
        match write_public_material(&card, dir) {
            Ok(files) => eprintln!(
                "cardsim-vpcd: wrote {} files of public material to {}",
                files.len(),
                dir.display()
            ),
            Err(e) => {
                eprintln!(
                    "cardsim-vpcd: cannot write public material to {}: {e}",
                    dir.display()
                );
                return ExitCode::from(2);
            }
        }
    }
    let trace = match Trace::open(opts.trace.as_deref()) {
        Ok(trace) => trace,
        Err(e) => {
            eprintln!("cardsim-vpcd: cannot open trace file {:?}: {e}", opts.trace);
            return ExitCode::from(2);
        }
    };
    let mut bridge = Bridge {
        card,
        trace,
        count: 0,
        delay_us: opts.delay_us,
        image: opts.image.clone(),
    };

    let mut timeout = Some(opts.connect_timeout);
    loop {
        let (mut conn, tuning) = match connect(&opts.addr, timeout) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cardsim-vpcd: cannot connect to vpcd at {}: {e}", opts.addr);
                return ExitCode::FAILURE;
            }
        };
        eprintln!("cardsim-vpcd: card inserted into vpcd at {}", opts.addr);
        let err = loop {
            quick_ack(&tuning);
            if let Err(e) = conn.poll(&mut bridge) {
                break e;
            }
        };
        // vpcd went away (pcscd stopped or restarted): the card is pulled.
        bridge.card_reset("disconnect");
        if opts.once {
            eprintln!("cardsim-vpcd: vpcd connection closed ({err}); exiting (--once)");
            return ExitCode::SUCCESS;
        }
        eprintln!("cardsim-vpcd: vpcd connection closed ({err}); reconnecting");
        // Wait for pcscd to come back as long as it takes, like a card left
        // in a reader whose service restarts.
        timeout = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piv_extras_parse_and_build_distinct_retired_keys() {
        let args = [
            "--retired",
            "1=p256",
            "--retired=2=p256",
            "--no-cert",
            "9e",
            "--policy",
            "9c=once,cached",
            "--global-pin",
            "87654321",
            "--atr",
            "3b:95:13",
        ];
        let opts = parse_args(args.map(String::from)).unwrap().unwrap();
        assert_eq!(
            opts.piv_extras,
            [
                PivExtra::Retired(1, KeyType::EccP256),
                PivExtra::Retired(2, KeyType::EccP256),
                PivExtra::NoCert(Slot::CardAuthentication),
                PivExtra::Policy(0x9C, PinPolicy::Once, TouchPolicy::Cached),
                PivExtra::GlobalPin("87654321".into()),
                PivExtra::Atr(vec![0x3B, 0x95, 0x13]),
            ]
        );
        for bad in [
            ["--retired", "21=p256"],
            ["--policy", "9c=sometimes"],
            ["--no-cert", "82"],
            ["--atr", "3b:9"],
        ] {
            assert!(parse_args(bad.map(String::from)).is_err(), "{bad:?}");
        }
        let card = build_card(App::Piv, &[], false, &opts.piv_extras);
        let card = card.as_piv().unwrap();
        let mut keys: Vec<_> = Slot::ALL
            .iter()
            .filter_map(|&s| card.public_key(s))
            .collect();
        keys.extend((1..=2).filter_map(|n| card.retired_public_key(n)));
        assert_eq!(keys.len(), 6);
        for (i, key) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(key), "key {i} twice");
        }
        assert!(card.certificate_der(Slot::CardAuthentication).is_none());
    }

    #[test]
    fn data_length_of_each_apdu_case() {
        assert_eq!(command_data_len(&[0x00, 0xA4, 0x04, 0x00]), 0);
        assert_eq!(command_data_len(&[0x00, 0xC0, 0x00, 0x00, 0x10]), 0);
        assert_eq!(command_data_len(&[0x00, 0x20, 0x00, 0x80, 0x02, 1, 2]), 2);
        assert_eq!(
            command_data_len(&[0x00, 0x20, 0x00, 0x80, 0x02, 1, 2, 0]),
            2
        );
        assert_eq!(command_data_len(&[0x00, 0xCB, 0x3F, 0xFF, 0, 0, 0]), 0);
        assert_eq!(
            command_data_len(&[0x00, 0x87, 0x07, 0x9A, 0, 0x01, 0x00, 0xAA]),
            256
        );
    }

    #[test]
    fn options() {
        let args = |list: &[&str]| parse_args(list.iter().map(|s| s.to_string()));
        let opts = args(&["--addr=127.0.0.1:35964", "--delay-us", "3000,90", "--once"])
            .unwrap()
            .unwrap();
        assert_eq!(opts.addr, "127.0.0.1:35964");
        assert_eq!(opts.delay_us, (3000, 90));
        assert!(opts.once);
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--delay-us", "x"]).is_err());
        assert!(args(&["--trace"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        let opts = args(&["--key", "9D=rsa2048", "--key=9e=none"])
            .unwrap()
            .unwrap();
        assert_eq!(
            opts.keys,
            vec![
                KeyChange::Piv(Slot::KeyManagement, Some(KeyType::Rsa2048)),
                KeyChange::Piv(Slot::CardAuthentication, None)
            ]
        );
        assert_eq!((opts.app, opts.addr.as_str()), (App::Piv, DEFAULT_ADDR));
        assert!(args(&["--key", "9b=p256"]).is_err());
        // OpenPGP: its own default port, --key read after --app.
        let opts = args(&["--key", "dec=x25519", "--app", "openpgp", "--key=sig=none"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (opts.app, opts.addr.as_str()),
            (App::OpenPgp, DEFAULT_OPENPGP_ADDR)
        );
        assert_eq!(
            opts.keys,
            vec![
                KeyChange::OpenPgp(KeyRole::Decryption, Some(PgpKeyType::X25519)),
                KeyChange::OpenPgp(KeyRole::Signature, None)
            ]
        );
        assert!(args(&["--app", "openpgp", "--key", "dec=ed25519"]).is_err());
        assert!(args(&["--app", "openpgp", "--key", "9a=p256"]).is_err());
        assert!(args(&["--app", "fido"]).is_err());
    }

    #[test]
    fn public_material_matches_the_card() {
        let dir = std::env::temp_dir().join(format!("cardsim-vpcd-test-{}", std::process::id()));
        let card = build_card(
            App::Piv,
            &[KeyChange::Piv(Slot::CardAuthentication, None)],
            false,
            &[],
        );
        let files = write_public_material(&card, &dir).unwrap();
        let card = card.as_piv().unwrap();
        assert_eq!(files.len(), 1 + 2 * 3);
        let ca = fs::read_to_string(dir.join("ca.pem")).unwrap();
        let (label, der) = der::pem::decode_vec(ca.as_bytes()).unwrap();
        assert_eq!((label, der), ("CERTIFICATE", ca_certificate_der()));
        let public = fs::read_to_string(dir.join("pub9a.pem")).unwrap();
        let (label, der) = der::pem::decode_vec(public.as_bytes()).unwrap();
        assert_eq!(label, "PUBLIC KEY");
        assert_eq!(
            der,
            card.public_key(Slot::Authentication).unwrap().to_spki_der()
        );
        assert!(!dir.join("cert9e.pem").exists());
        assert!(!dir.join("pub9e.pem").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn openpgp_public_material_matches_the_card() {
        let dir = std::env::temp_dir().join(format!("cardsim-vpcd-pgp-{}", std::process::id()));
        let changes = [KeyChange::OpenPgp(
            KeyRole::Decryption,
            Some(PgpKeyType::X25519),
        )];
        let card = build_card(App::OpenPgp, &changes, false, &[]);
        let files = write_public_material(&card, &dir).unwrap();
        // ca.pem, pubsig.pem, pubdec.pem, pubaut.pem, certaut.pem.
        assert_eq!(files.len(), 5);
        let card = card.as_openpgp().unwrap();
        for role in KeyRole::ALL {
            let path = dir.join(format!("pub{}.pem", role.short_name()));
            let text = fs::read_to_string(path).unwrap();
            let (label, der) = der::pem::decode_vec(text.as_bytes()).unwrap();
            assert_eq!(label, "PUBLIC KEY");
            assert_eq!(der, card.public_key(role).unwrap().to_spki_der());
        }
        let cert = fs::read_to_string(dir.join("certaut.pem")).unwrap();
        let (_, der) = der::pem::decode_vec(cert.as_bytes()).unwrap();
        assert_eq!(
            Some(&der[..]),
            card.certificate_der(KeyRole::Authentication)
        );
        assert!(!dir.join("certsig.pem").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn power_events_clear_the_pin_state() {
        use vpicc::VSmartCard;
        let mut bridge = Bridge {
            card: SimPivCard::new().into(),
            trace: Trace::Off,
            count: 0,
            delay_us: (0, 0),
            image: None,
        };
        let select = [
            0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
        ];
        let verify = [
            0x00, 0x20, 0x00, 0x80, 0x08, b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF,
        ];
        assert!(bridge.execute(&select).ends_with(&[0x90, 0x00]));
        assert_eq!(bridge.execute(&verify), [0x90, 0x00]);
        assert!(bridge.card.as_piv().unwrap().pin_verified());
        bridge.reset();
        assert!(!bridge.card.as_piv().unwrap().pin_verified());
        // After a reset nothing is selected.
        assert_eq!(bridge.execute(&[0x00, 0x20, 0x00, 0x80]), [0x6D, 0x00]);
        assert_eq!(bridge.atr(), p11card_cardsim::DEFAULT_ATR);
    }

    #[test]
    fn openpgp_card_through_the_bridge() {
        use vpicc::VSmartCard;
        let mut bridge = Bridge {
            card: build_card(App::OpenPgp, &[], false, &[]),
            trace: Trace::Off,
            count: 0,
            delay_us: (0, 0),
            image: None,
        };
        assert_eq!(bridge.atr(), p11card_cardsim::DEFAULT_OPENPGP_ATR);
        let select = [
            0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01,
        ];
        let verify = [
            0x00, 0x20, 0x00, 0x82, 0x06, b'1', b'2', b'3', b'4', b'5', b'6',
        ];
        assert_eq!(bridge.execute(&select), [0x90, 0x00]);
        assert_eq!(bridge.execute(&verify), [0x90, 0x00]);
        assert!(bridge.card.as_openpgp().unwrap().pw1_verified());
        bridge.power_off();
        assert!(!bridge.card.as_openpgp().unwrap().pw1_verified());
        assert_eq!(bridge.execute(&[0x00, 0x20, 0x00, 0x82]), [0x6D, 0x00]);
    }
}
