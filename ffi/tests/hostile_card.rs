//! The whole module against a hostile card (issue 11, "keep them fixed"):
//! each round puts a fresh simulated PIV card behind a
//! [`HostileCard`](p11card_cardsim::HostileCard) with a seeded plan of
//! mischief, makes a seeded random sequence of PKCS#11 calls through the C
//! ABI, then calms the card and checks that an honest round on the same
//! module succeeds. Every call is checked against these invariants:
//!
//! - `no-panic`: no panic inside the module (the ABI guard would hide it as
//!   `CKR_GENERAL_ERROR`; a panic hook sees it);
//! - `time-bound`: no call takes longer than 5 s (a watchdog calms the card
//!   to free a hung call);
//! - `bounded-loop`: no call sends more than `HostileCard::APDU_LIMIT` APDUs;
//! - `slot-usable`: after the mischief stops, token info, login and a
//!   verified signature work on the same module (a second try is allowed;
//!   `stuck-unrecognized` and `stale-public-key` name two ways to fail it:
//!   the card taken for an unknown one, a key's public key read from the
//!   other application and kept);
//! - `wrong-signature`, `wrong-decryption`, `wrong-derivation`: a result
//!   returned with `CKR_OK` is right for the key the caller chose (checked
//!   with the honest card's public key);
//! - `pin-in-command`, `pin-to-other-application`: PINs only in VERIFY /
//!   CHANGE REFERENCE DATA / RESET RETRY COUNTER, and only to the
//!   application the module selected;
//! - `pin-tries`: the card's PIN tries never drop by more than the wrong PINs
//!   the caller gave (plus one per refusal the hostile card hid from the
//!   module, which then may use that PIN once more);
//! - `memory`: the resident set grows by less than 64 MiB over the run.
//!
//! Environment: `HOSTILE_ROUNDS` (default 2000), `HOSTILE_SEED` (the first
//! round's seed, round `i` uses seed + i; default from the clock, printed),
//! `HOSTILE_SKIP` (mischief kinds to leave out, comma-separated, e.g.
//! `storm_61,endless_chaining`), `HOSTILE_VERBOSE` (print every call). A failure prints each violation with the
//! command that replays its round alone. A long run:
//! `HOSTILE_ROUNDS=200000 cargo test --release -p p11card-pkcs11 --test hostile_card -- --nocapture`.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{
    HostileCard, HostilePlan, HostileRng, Mischief, SimBackend, SimCard, SimPivCard, SimPublicKey,
    Slot, DEFAULT_READER,
};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CALL_LIMIT: Duration = Duration::from_secs(5);
/// How long a hung call may take to end once the card is calm.
const UNSTICK_LIMIT: Duration = Duration::from_secs(30);
const DEFAULT_ROUNDS: u64 = 2000;
const RSS_GROWTH_LIMIT: u64 = 64 << 20;
/// Round after which the resident set is taken as the baseline.
const WARM_UP_ROUNDS: u64 = 20;
/// The two PINs `C_SetPIN` switches between, and a wrong one.
const PINS: [&str; 2] = ["123456", "654321"];
const WRONG_PIN: &str = "999999";
const WORKER_NAME: &str = "hostile-round";

// ----- invariant violations ----------------------------------------------------

#[derive(Debug, Clone)]
struct Violation {
    invariant: String,
    seed: u64,
    call: String,
    detail: String,
    journal: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "[{}] seed {} call {}: {}",
            self.invariant, self.seed, self.call, self.detail
        )?;
        writeln!(f, "    last mischief: {}", self.journal.join("; "))?;
        let skip = std::env::var("HOSTILE_SKIP")
            .map(|skip| format!("HOSTILE_SKIP={skip} "))
            .unwrap_or_default();
        write!(
            f,
            "    replay: {skip}HOSTILE_SEED={} HOSTILE_ROUNDS=1 HOSTILE_VERBOSE=1 cargo test \
             -p p11card-pkcs11 --test hostile_card -- --nocapture",
            self.seed
        )
    }
}

/// Panics seen on round worker threads (the module's, caught at the ABI).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(WORKER_NAME) {
            let mut panics = PANICS.lock().unwrap_or_else(|p| p.into_inner());
            panics.push(info.to_string().replace('\n', " "));
        }
        previous(info);
    }));
}

fn panics_seen() -> usize {
    PANICS.lock().unwrap_or_else(|p| p.into_inner()).len()
}

fn panics_since(from: usize) -> Vec<String> {
    PANICS.lock().unwrap_or_else(|p| p.into_inner())[from..].to_vec()
}

/// The process's resident set in bytes (`/proc/self/statm`).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(1) as u64
}

// ----- the round driver ----------------------------------------------------------

/// The call in progress on the worker, for the watchdog.
type Progress = Arc<Mutex<Option<(String, Instant)>>>;

/// A deterministic RNG for the `rsa` crate's padding (OAEP seeds).
struct SeededRng<'a>(&'a mut HostileRng);

impl rsa::rand_core::RngCore for SeededRng<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.iter_mut().for_each(|b| *b = self.0.next_u64() as u8);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for SeededRng<'_> {}

/// How a signature is asked for and checked.
#[derive(Debug, Clone, Copy)]
enum SignKind {
    /// `CKM_SHAx_RSA_PKCS` over the data.
    RsaPkcs(Hash),
    /// `CKM_RSA_PKCS` over a DigestInfo.
    RsaPkcsRaw(Hash),
    /// `CKM_SHAx_RSA_PKCS_PSS`, salt the hash's length.
    RsaPss(Hash),
    /// `CKM_ECDSA_SHAx` over the data.
    Ecdsa(Hash),
    /// `CKM_ECDSA` over a hash.
    EcdsaRaw(Hash),
}

impl SignKind {
    fn choices(public: &SimPublicKey) -> Vec<SignKind> {
        match public {
            SimPublicKey::Rsa(_) => vec![
                SignKind::RsaPkcs(Hash::Sha256),
                SignKind::RsaPkcsRaw(Hash::Sha384),
                SignKind::RsaPss(Hash::Sha256),
            ],
            SimPublicKey::P256(_) => vec![
                SignKind::Ecdsa(Hash::Sha256),
                SignKind::Ecdsa(Hash::Sha1),
                SignKind::EcdsaRaw(Hash::Sha256),
            ],
            SimPublicKey::P384(_) => vec![
                SignKind::Ecdsa(Hash::Sha384),
                SignKind::Ecdsa(Hash::Sha256),
                SignKind::EcdsaRaw(Hash::Sha384),
            ],
        }
    }

    fn mech(self) -> Mech {
        match self {
            SignKind::RsaPkcs(h) => Mech::new(h.rsa_pkcs()),
            SignKind::RsaPkcsRaw(_) => Mech::new(CKM_RSA_PKCS),
            SignKind::RsaPss(h) => Mech::pss(h.rsa_pss(), h, h.len()),
            SignKind::Ecdsa(h) => Mech::new(h.ecdsa()),
            SignKind::EcdsaRaw(_) => Mech::new(CKM_ECDSA),
        }
    }

    /// What the caller passes to `C_Sign` for `message`.
    fn input(self, message: &[u8]) -> Vec<u8> {
        match self {
            SignKind::RsaPkcsRaw(h) => h.digest_info(&h.digest(message)),
            SignKind::EcdsaRaw(h) => h.digest(message),
            _ => message.to_vec(),
        }
    }

    /// Whether `signature` is a signature of `message` under `public`.
    fn verifies(self, public: &SimPublicKey, message: &[u8], signature: &[u8]) -> bool {
        match (self, public) {
            (SignKind::RsaPkcs(h), SimPublicKey::Rsa(_)) => {
                check::rsa_pkcs1(public, h, &h.digest(message), signature)
            }
            (SignKind::RsaPkcsRaw(h), SimPublicKey::Rsa(_)) => {
                check::rsa_pkcs1(public, h, &h.digest(message), signature)
            }
            (SignKind::RsaPss(h), SimPublicKey::Rsa(_)) => {
                check::rsa_pss(public, h, h.len(), &h.digest(message), signature)
            }
            (SignKind::Ecdsa(h) | SignKind::EcdsaRaw(h), SimPublicKey::P256(_))
            | (SignKind::Ecdsa(h) | SignKind::EcdsaRaw(h), SimPublicKey::P384(_)) => {
                check::ecdsa(public, &h.digest(message), signature)
            }
            _ => false,
        }
    }
}

/// An ECDH peer: its public point, and the secrets it shares with the
/// card's key and with the other application's.
struct Peer {
    point: Vec<u8>,
    with_card: Vec<u8>,
    with_other: Vec<u8>,
}

/// One round: a fresh card, a seeded plan, a seeded sequence of calls.
struct Round {
    seed: u64,
    rng: HostileRng,
    hostile: HostileCard,
    honest: SimCard,
    allowed: Vec<Mischief>,
    progress: Progress,
    /// Print every call (`HOSTILE_VERBOSE=1`).
    verbose: bool,
    calls: usize,
    violations: Vec<Violation>,
    notes: Vec<Violation>,
    initialized: bool,
    slot: CK_SLOT_ID,
    sessions: Vec<(CK_SESSION_HANDLE, bool)>,
    objects: Vec<CK_OBJECT_HANDLE>,
    /// PIN tries the caller's wrong PINs may cost (and one per `C_SetPIN`
    /// whose outcome the module was told wrong).
    tries_allowed: u64,
    tries_reported: bool,
}

impl Round {
    fn call(&mut self, name: &str, body: impl FnOnce() -> CK_RV) -> CK_RV {
        self.calls += 1;
        let label = format!("#{} {name}", self.calls);
        let started = Instant::now();
        *self.progress.lock().unwrap() = Some((label.clone(), started));
        self.hostile.begin_call();
        let panics_before = panics_seen();
        let rv = body();
        let elapsed = started.elapsed();
        *self.progress.lock().unwrap() = None;
        if self.verbose {
            let apdus = self.hostile.call_apdus();
            println!("  {label} -> {rv:#x} ({apdus} APDUs, {elapsed:?})");
        }
        for panic in panics_since(panics_before) {
            self.violation("no-panic", &label, format!("{panic} (returned {rv:#x})"));
        }
        if elapsed > CALL_LIMIT {
            let apdus = self.hostile.call_apdus();
            let detail = format!("took {elapsed:?} ({apdus} APDUs), returned {rv:#x}");
            self.violation("time-bound", &label, detail);
        }
        for found in self.hostile.take_violations() {
            let (invariant, detail) = found.split_once(": ").unwrap_or(("card", &found));
            self.violation(invariant, &label, detail.to_owned());
        }
        let spent = self.hostile.tries_spent();
        let masked = self.hostile.tries_masked();
        if spent > self.tries_allowed + masked && !self.tries_reported {
            self.tries_reported = true;
            let detail = format!(
                "the card counted {spent} wrong PIN tries; the caller gave {} wrong PINs, \
                 and the card hid {masked} refusals",
                self.tries_allowed
            );
            self.violation("pin-tries", &label, detail);
        }
        rv
    }

    /// Something worth knowing that breaks no invariant.
    fn note(&mut self, what: &str, call: &str, detail: String) {
        let note = Violation {
            invariant: what.to_owned(),
            seed: self.seed,
            call: call.to_owned(),
            detail,
            journal: self.hostile.journal(),
        };
        self.notes.push(note);
    }

    fn violation(&mut self, invariant: &str, call: &str, detail: String) {
        self.violations.push(Violation {
            invariant: invariant.to_owned(),
            seed: self.seed,
            call: call.to_owned(),
            detail,
            journal: self.hostile.journal(),
        });
    }

    /// The round's violations and notes.
    fn run(mut self) -> (Vec<Violation>, Vec<Violation>) {
        if !self.start() {
            return (self.violations, self.notes);
        }
        for secret in PINS.iter().chain([&WRONG_PIN]) {
            self.hostile.watch_secret(secret.as_bytes());
        }
        let plan = HostilePlan::random(&mut self.rng, &self.allowed);
        self.hostile.set_plan(plan);
        for _ in 0..self.rng.between(3, 14) {
            self.step();
        }
        self.hostile.calm();
        if self.verbose {
            println!("  mischief: {}", self.hostile.journal().join("; "));
        }
        self.honest_round();
        (self.violations, self.notes)
    }

    /// `C_Initialize` over this round's card (calm).
    fn start(&mut self) -> bool {
        ck!(C_Finalize(ptr::null_mut()));
        let backend = self.hostile.backend();
        p11card_pkcs11::use_backend(move || Box::new(backend.clone()));
        let rv = self.call("C_Initialize", || ck!(C_Initialize(ptr::null_mut())));
        self.initialized = rv == CKR_OK;
        let slots = self.slot_list(false, true);
        match (rv, slots.first()) {
            (CKR_OK, Some(&slot)) => {
                self.slot = slot;
                true
            }
            _ => {
                let detail = format!("C_Initialize {rv:#x}, slots {slots:?} on a calm card");
                self.violation("slot-usable", "start", detail);
                false
            }
        }
    }

    /// `C_GetSlotList`, with the length query first (which refreshes the
    /// module's view of the readers) or without.
    fn slot_list(&mut self, present: bool, length_query: bool) -> Vec<CK_SLOT_ID> {
        let flag = if present { CK_TRUE } else { CK_FALSE };
        let mut slots = [0 as CK_SLOT_ID; 8];
        let mut count = slots.len() as CK_ULONG;
        if length_query {
            let rv = self.call("C_GetSlotList (length)", || {
                ck!(C_GetSlotList(flag, ptr::null_mut(), &mut count))
            });
            if rv != CKR_OK || count > 8 {
                return Vec::new();
            }
        }
        let rv = self.call("C_GetSlotList", || {
            ck!(C_GetSlotList(flag, slots.as_mut_ptr(), &mut count))
        });
        if rv != CKR_OK {
            return Vec::new();
        }
        slots[..count.min(8) as usize].to_vec()
    }

    fn session(&mut self, read_write: bool) -> Option<CK_SESSION_HANDLE> {
        let fitting: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, rw)| *rw || !read_write)
            .map(|(s, _)| *s)
            .collect();
        if fitting.is_empty() {
            return None;
        }
        Some(*self.rng.pick(&fitting))
    }

    fn pin(&self) -> String {
        String::from_utf8(self.hostile.card_pin()).expect("an ASCII PIN")
    }

    fn tries_left(&self) -> u8 {
        self.honest.with(|c| c.pin_tries_left())
    }

    fn step(&mut self) {
        match self.rng.below(19) {
            0 => {
                let (present, length_query) = (self.rng.one_in(2), self.rng.one_in(2));
                self.slot_list(present, length_query);
            }
            1 => {
                let slot = self.slot;
                let mut info = unsafe { std::mem::zeroed::<CK_TOKEN_INFO>() };
                self.call("C_GetTokenInfo", || ck!(C_GetTokenInfo(slot, &mut info)));
            }
            2 | 3 => self.open_session(),
            4 => {
                if let Some(session) = self.session(false) {
                    self.call("C_CloseSession", || ck!(C_CloseSession(session)));
                    self.sessions.retain(|(s, _)| *s != session);
                }
            }
            5 | 6 => self.login(),
            7 => {
                if let Some(session) = self.session(false) {
                    self.call("C_Logout", || ck!(C_Logout(session)));
                }
            }
            8 => self.find_objects(),
            9 => self.get_attribute(),
            10..=12 => self.sign(),
            13 => self.decrypt(),
            14 => self.derive(),
            15 | 16 => self.set_pin(),
            17 => {
                let slot = self.slot;
                self.call("C_CloseAllSessions", || ck!(C_CloseAllSessions(slot)));
                self.sessions.clear();
            }
            _ => {
                self.call("C_Finalize", || ck!(C_Finalize(ptr::null_mut())));
                let rv = self.call("C_Initialize", || ck!(C_Initialize(ptr::null_mut())));
                self.initialized = rv == CKR_OK;
                self.sessions.clear();
                self.objects.clear();
            }
        }
    }

    fn open_session(&mut self) {
        let read_write = self.rng.one_in(2);
        let flags = CKF_SERIAL_SESSION | if read_write { CKF_RW_SESSION } else { 0 };
        let (slot, mut session) = (self.slot, 0);
        let rv = self.call("C_OpenSession", || {
            ck!(C_OpenSession(
                slot,
                flags,
                ptr::null_mut(),
                None,
                &mut session
            ))
        });
        if rv == CKR_OK {
            self.sessions.push((session, read_write));
        }
    }

    fn login(&mut self) {
        let Some(session) = self.session(false) else {
            return self.open_session();
        };
        let wrong = self.rng.one_in(4) && self.tries_left() >= 2;
        let pin = if wrong {
            WRONG_PIN.to_owned()
        } else {
            self.pin()
        };
        if wrong {
            self.tries_allowed += 1;
        }
        self.call("C_Login", || login(session, CKU_USER, &pin));
    }

    /// `C_FindObjectsInit`/`C_FindObjects`/`C_FindObjectsFinal` for one
    /// class or all; returns what was found.
    fn find(&mut self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Vec<CK_OBJECT_HANDLE> {
        let Some(session) = self.session(false) else {
            return Vec::new();
        };
        let mut attrs: Vec<CK_ATTRIBUTE> = template
            .iter()
            .map(|(kind, value)| CK_ATTRIBUTE {
                type_: *kind,
                pValue: value.as_ptr() as *mut _,
                ulValueLen: value.len() as CK_ULONG,
            })
            .collect();
        let (ptr, len) = (attrs.as_mut_ptr(), attrs.len() as CK_ULONG);
        if self.call("C_FindObjectsInit", || {
            ck!(C_FindObjectsInit(session, ptr, len))
        }) != CKR_OK
        {
            return Vec::new();
        }
        let mut found = [0 as CK_OBJECT_HANDLE; 32];
        let mut count: CK_ULONG = 0;
        let rv = self.call("C_FindObjects", || {
            ck!(C_FindObjects(session, found.as_mut_ptr(), 32, &mut count))
        });
        self.call("C_FindObjectsFinal", || ck!(C_FindObjectsFinal(session)));
        if rv != CKR_OK {
            return Vec::new();
        }
        found[..count.min(32) as usize].to_vec()
    }

    fn find_objects(&mut self) {
        let classes = [CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_DATA];
        let template = if self.rng.one_in(2) {
            vec![(CKA_CLASS, ulong(*self.rng.pick(&classes)))]
        } else {
            Vec::new()
        };
        let found = self.find(&template);
        self.objects.extend(found);
    }

    fn get_attribute(&mut self) {
        let (Some(session), false) = (self.session(false), self.objects.is_empty()) else {
            return self.find_objects();
        };
        let object = *self.rng.pick(&self.objects);
        let kinds = [
            CKA_CLASS,
            CKA_ID,
            CKA_LABEL,
            CKA_VALUE,
            CKA_MODULUS,
            CKA_EC_POINT,
            CKA_KEY_TYPE,
            CKA_SUBJECT,
        ];
        let kind = *self.rng.pick(&kinds);
        let mut attr = CK_ATTRIBUTE {
            type_: kind,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        };
        let rv = self.call("C_GetAttributeValue (length)", || {
            ck!(C_GetAttributeValue(session, object, &mut attr, 1))
        });
        if rv == CKR_OK && attr.ulValueLen < 1 << 20 {
            let mut value = vec![0u8; attr.ulValueLen as usize];
            attr.pValue = value.as_mut_ptr() as *mut _;
            self.call("C_GetAttributeValue", || {
                ck!(C_GetAttributeValue(session, object, &mut attr, 1))
            });
        }
    }

    /// The private key of `slot`, found through the module.
    fn private_key(&mut self, slot: Slot) -> Option<CK_OBJECT_HANDLE> {
        let template = [
            (CKA_CLASS, ulong(CKO_PRIVATE_KEY)),
            (CKA_ID, vec![key_id(slot)]),
        ];
        self.find(&template).first().copied()
    }

    /// A session for a private-key operation: logged in most of the time.
    fn key_session(&mut self) -> Option<CK_SESSION_HANDLE> {
        if self.sessions.is_empty() || self.rng.one_in(6) {
            self.open_session();
        }
        if self.rng.one_in(2) {
            self.login();
        }
        self.session(false)
    }

    fn sign(&mut self) {
        // RSA costs the simulated card far more than EC: one in four.
        let slot = if self.rng.one_in(4) {
            Slot::Authentication
        } else {
            *self.rng.pick(&Slot::ALL[1..])
        };
        let Some(session) = self.key_session() else {
            return;
        };
        let Some(key) = self.private_key(slot) else {
            return;
        };
        let public = card_public_key(&self.honest, slot);
        let kind = *self.rng.pick(&SignKind::choices(&public));
        let message_len = self.rng.between(1, 200) as usize;
        let message = self.rng.bytes(message_len);
        let input = kind.input(&message);
        let mut mech = kind.mech();
        if self.call("C_SignInit", || ck!(C_SignInit(session, mech.ptr(), key))) != CKR_OK {
            return;
        }
        if slot == Slot::Signature {
            let pin = self.pin();
            self.call("C_Login (context)", || {
                login(session, CKU_CONTEXT_SPECIFIC, &pin)
            });
        }
        let mut signature = vec![0u8; 1024];
        let mut len = signature.len() as CK_ULONG;
        let rv = self.call("C_Sign", || {
            ck!(C_Sign(
                session,
                input.as_ptr() as *mut u8,
                input.len() as CK_ULONG,
                signature.as_mut_ptr(),
                &mut len
            ))
        });
        if rv != CKR_OK {
            return;
        }
        signature.truncate(len.min(1024) as usize);
        if !kind.verifies(&public, &message, &signature) {
            let foreign = self.hostile.impostor_public_key(slot);
            let whose = match foreign {
                Some(other) if kind.verifies(&other, &message, &signature) => {
                    "it is a valid signature by the OTHER application's key"
                }
                _ => "it is no valid signature by any key",
            };
            let detail = format!(
                "{kind:?} with key {slot:?} returned CKR_OK and {} bytes; {whose}",
                signature.len()
            );
            self.violation(
                "wrong-signature",
                &format!("#{} C_Sign", self.calls),
                detail,
            );
        }
    }

    fn decrypt(&mut self) {
        let Some(session) = self.key_session() else {
            return;
        };
        let Some(key) = self.private_key(Slot::Authentication) else {
            return;
        };
        let public = card_public_key(&self.honest, Slot::Authentication);
        let plaintext_len = self.rng.between(1, 64) as usize;
        let plaintext = self.rng.bytes(plaintext_len);
        let oaep = self.rng.one_in(2);
        let (mut mech, ciphertext) = if oaep {
            let hash = *self.rng.pick(&[Hash::Sha1, Hash::Sha256]);
            let ciphertext = check::rsa(&public)
                .encrypt(
                    &mut SeededRng(&mut self.rng),
                    check::oaep(hash, ""),
                    &plaintext,
                )
                .expect("OAEP encryption");
            (Mech::oaep(hash, b""), ciphertext)
        } else {
            // EME-PKCS1-v1_5 (RFC 8017 §7.2.1): 00 02 PS 00 M.
            let mut block = vec![0x00, 0x02];
            let padding = 256 - 3 - plaintext.len();
            block.extend((0..padding).map(|_| self.rng.between(1, 255) as u8));
            block.push(0);
            block.extend_from_slice(&plaintext);
            (
                Mech::new(CKM_RSA_PKCS),
                check::rsa_public_op(&public, &block),
            )
        };
        if self.call("C_DecryptInit", || {
            ck!(C_DecryptInit(session, mech.ptr(), key))
        }) != CKR_OK
        {
            return;
        }
        let mut out = vec![0u8; 512];
        let mut len = out.len() as CK_ULONG;
        let rv = self.call("C_Decrypt", || {
            ck!(C_Decrypt(
                session,
                ciphertext.as_ptr() as *mut u8,
                ciphertext.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut len
            ))
        });
        out.truncate(len.min(512) as usize);
        if rv == CKR_OK && out != plaintext {
            let detail = format!(
                "{} returned CKR_OK and {} bytes that are not the plaintext",
                if oaep { "OAEP" } else { "PKCS#1 v1.5" },
                out.len()
            );
            self.violation(
                "wrong-decryption",
                &format!("#{} C_Decrypt", self.calls),
                detail,
            );
        }
    }

    fn derive(&mut self) {
        let Some(session) = self.key_session() else {
            return;
        };
        let Some(key) = self.private_key(Slot::KeyManagement) else {
            return;
        };
        let peers = self.peers();
        let peer = self.rng.pick(peers);
        let mut point = peer.point.clone();
        let mut params = CK_ECDH1_DERIVE_PARAMS {
            kdf: CKD_NULL,
            ulSharedDataLen: 0,
            pSharedData: ptr::null_mut(),
            ulPublicDataLen: point.len() as CK_ULONG,
            pPublicData: point.as_mut_ptr(),
        };
        let mut mech = CK_MECHANISM {
            mechanism: CKM_ECDH1_DERIVE,
            pParameter: &mut params as *mut CK_ECDH1_DERIVE_PARAMS as *mut _,
            ulParameterLen: std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG,
        };
        let (class, key_type, no) = (CKO_SECRET_KEY, CKK_GENERIC_SECRET, CK_FALSE);
        let ulong_len = std::mem::size_of::<CK_ULONG>() as CK_ULONG;
        let mut template = [
            CK_ATTRIBUTE {
                type_: CKA_CLASS,
                pValue: &class as *const _ as *mut _,
                ulValueLen: ulong_len,
            },
            CK_ATTRIBUTE {
                type_: CKA_KEY_TYPE,
                pValue: &key_type as *const _ as *mut _,
                ulValueLen: ulong_len,
            },
            CK_ATTRIBUTE {
                type_: CKA_TOKEN,
                pValue: &no as *const _ as *mut _,
                ulValueLen: 1,
            },
        ];
        let mut secret = 0;
        let rv = self.call("C_DeriveKey", || {
            ck!(C_DeriveKey(
                session,
                &mut mech,
                key,
                template.as_mut_ptr(),
                3,
                &mut secret
            ))
        });
        if rv != CKR_OK {
            return;
        }
        let mut value = vec![0u8; 256];
        let mut attr = CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: value.as_mut_ptr() as *mut _,
            ulValueLen: 256,
        };
        let rv = self.call("C_GetAttributeValue (derived)", || {
            ck!(C_GetAttributeValue(session, secret, &mut attr, 1))
        });
        value.truncate(attr.ulValueLen.min(256) as usize);
        if rv == CKR_OK && value != peer.with_card {
            let whose = if value == peer.with_other {
                "the secret shared with the OTHER application's key"
            } else {
                "no secret shared with any key"
            };
            let detail = format!("C_DeriveKey returned CKR_OK and {whose}");
            self.violation(
                "wrong-derivation",
                &format!("#{} C_DeriveKey", self.calls),
                detail,
            );
        }
    }

    /// ECDH peers (P-384) with their secrets shared with the card's 9D key
    /// and the other application's: worked out once, since P-384 is slow.
    fn peers(&self) -> &'static [Peer] {
        static PEERS: std::sync::OnceLock<Vec<Peer>> = std::sync::OnceLock::new();
        let card = card_public_key(&self.honest, Slot::KeyManagement);
        let other = self.hostile.impostor_public_key(Slot::KeyManagement);
        let shared = |secret: &p384::SecretKey, public: Option<&SimPublicKey>| match public {
            Some(SimPublicKey::P384(key)) => {
                p384::ecdh::diffie_hellman(secret.to_nonzero_scalar(), key.as_affine())
                    .raw_secret_bytes()
                    .to_vec()
            }
            other => panic!("9D holds no P-384 key: {other:?}"),
        };
        PEERS.get_or_init(|| {
            (1..=8u8)
                .map(|n| {
                    let secret = p384::SecretKey::from_slice(&[n; 48]).expect("a P-384 scalar");
                    Peer {
                        point: secret.public_key().to_sec1_bytes().to_vec(),
                        with_card: shared(&secret, Some(&card)),
                        with_other: shared(&secret, other.as_ref()),
                    }
                })
                .collect()
        })
    }

    fn set_pin(&mut self) {
        if self.session(true).is_none() {
            self.open_session();
        }
        let Some(session) = self.session(true) else {
            return;
        };
        if self.rng.one_in(2) {
            // Logged in, the module keeps the PIN for a re-login.
            let pin = self.pin();
            self.call("C_Login", || login(session, CKU_USER, &pin));
        }
        let current = self.pin();
        let wrong = self.rng.one_in(4) && self.tries_left() >= 2;
        let old = if wrong { WRONG_PIN } else { &current };
        let new = if current == PINS[0] { PINS[1] } else { PINS[0] };
        if wrong {
            self.tries_allowed += 1;
        }
        let rv = self.call("C_SetPIN", || {
            ck!(C_SetPIN(
                session,
                old.as_ptr() as *mut u8,
                old.len() as CK_ULONG,
                new.as_ptr() as *mut u8,
                new.len() as CK_ULONG
            ))
        });
        if (rv == CKR_OK) != (self.pin() == new) {
            // The module was told the opposite of what the card did: a
            // re-login with the PIN it keeps may cost a try.
            self.tries_allowed += 1;
        }
    }

    /// After the mischief: the same module must fully work. A first
    /// attempt may fail once (e.g. on a command chain the mischief left
    /// open on the card); that is a note. A second failure is a violation.
    fn honest_round(&mut self) {
        self.unblock_if_blocked();
        let Err((invariant, first)) = self.honest_attempt() else {
            return;
        };
        self.unblock_if_blocked();
        if let Err((invariant, detail)) = self.honest_attempt() {
            let detail = format!("{detail} (the try before: {first})");
            self.violation(invariant, "honest round", detail);
        } else {
            let detail = format!("first honest try: {first}; the second worked");
            self.note(&format!("{invariant} (recovered)"), "honest round", detail);
        }
    }

    /// One honest round: token info, login, a signature that verifies.
    fn honest_attempt(&mut self) -> Result<(), (&'static str, String)> {
        let failed = |step: &str, rv: CK_RV| ("slot-usable", format!("{step} gave {rv:#x}"));
        if !self.initialized {
            let rv = self.call("C_Initialize", || ck!(C_Initialize(ptr::null_mut())));
            self.initialized = rv == CKR_OK;
            if rv != CKR_OK {
                return Err(failed("C_Initialize", rv));
            }
        }
        if !self.slot_list(true, true).contains(&self.slot) {
            return Err(("slot-usable", "the slot shows no token".into()));
        }
        let slot = self.slot;
        let mut info = unsafe { std::mem::zeroed::<CK_TOKEN_INFO>() };
        let rv = self.call("C_GetTokenInfo", || ck!(C_GetTokenInfo(slot, &mut info)));
        if rv == CKR_TOKEN_NOT_RECOGNIZED {
            let detail = "C_GetTokenInfo: CKR_TOKEN_NOT_RECOGNIZED, the PIV card is taken \
                          for one without a known application until it is reinserted";
            return Err(("stuck-unrecognized", detail.into()));
        }
        if rv != CKR_OK {
            return Err(failed("C_GetTokenInfo", rv));
        }
        let mut session = 0;
        let rv = self.call("C_OpenSession", || {
            ck!(C_OpenSession(
                slot,
                CKF_SERIAL_SESSION,
                ptr::null_mut(),
                None,
                &mut session
            ))
        });
        if rv != CKR_OK {
            return Err(failed("C_OpenSession", rv));
        }
        self.sessions = vec![(session, false)];
        let pin = self.pin();
        let rv = self.call("C_Login", || login(session, CKU_USER, &pin));
        if rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN {
            let (invariant, detail) = failed("C_Login", rv);
            let tries = self.tries_left();
            return Err((invariant, format!("{detail} ({tries} PIN tries left)")));
        }
        let all_keys = self.find(&[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]).len();
        if all_keys < Slot::ALL.len() {
            let detail = format!("{all_keys} of 4 private keys listed after the mischief");
            self.note("keys-missing", "honest round", detail);
        }
        // RSA in one round of eight; a key the module dropped is replaced
        // by another (that is a note, above, not a failure).
        let preferred = if self.seed % 8 == 0 {
            [Slot::Authentication, Slot::CardAuthentication]
        } else {
            [Slot::CardAuthentication, Slot::Authentication]
        };
        let found = preferred
            .into_iter()
            .chain([Slot::KeyManagement])
            .find_map(|slot| self.private_key(slot).map(|key| (slot, key)));
        let Some((slot, key)) = found else {
            return Err(("slot-usable", "no private key but 9C's (if that)".into()));
        };
        let public = card_public_key(&self.honest, slot);
        let kind = SignKind::choices(&public)[0];
        let message = b"an honest round";
        let mut mech = kind.mech();
        let signature = self.call_sign(session, &mut mech, key, message);
        let outcome = match signature {
            Ok(signature) if kind.verifies(&public, message, &signature) => Ok(()),
            Ok(_) => Err((
                "wrong-signature",
                format!("{kind:?} with {slot:?}: a signature that does not verify"),
            )),
            Err(rv) => {
                let origin = self.public_key_origin(slot);
                let (invariant, detail) = failed(&format!("C_Sign {kind:?} with {slot:?}"), rv);
                let invariant = if origin == "the card's" {
                    invariant
                } else {
                    "stale-public-key"
                };
                Err((
                    invariant,
                    format!("{detail}; the module's public key: {origin}"),
                ))
            }
        };
        self.call("C_CloseSession", || ck!(C_CloseSession(session)));
        self.sessions.clear();
        outcome
    }

    /// A PIN blocked by wrong PINs (each counted, as the caller's or as a
    /// pin-tries violation) is unblocked with the PUK by another program,
    /// and the card taken out and put back, since the module refuses a PIN
    /// it saw blocked without asking the card again.
    fn unblock_if_blocked(&mut self) {
        if self.tries_left() > 0 {
            return;
        }
        self.unblock_pin();
        self.hostile.reinsert();
        let detail = "the PIN was blocked; unblocked with the PUK, card reinserted".into();
        self.note("pin-blocked", "honest round", detail);
    }

    /// RESET RETRY COUNTER with the default PUK straight on the card,
    /// keeping the PIN it has.
    fn unblock_pin(&self) {
        let mut command = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
        command.extend_from_slice(b"12345678");
        let mut pin = self.hostile.card_pin();
        pin.resize(8, 0xFF);
        command.extend_from_slice(&pin);
        let answer = self.honest.with(|card| {
            card.process(&SELECT_PIV);
            card.process(&command)
        });
        assert_eq!(answer, [0x90, 0x00], "RESET RETRY COUNTER on the card");
    }

    /// Whose key the module shows as the public key of `slot`.
    fn public_key_origin(&mut self, slot: Slot) -> &'static str {
        let template = [
            (CKA_CLASS, ulong(CKO_PUBLIC_KEY)),
            (CKA_ID, vec![key_id(slot)]),
        ];
        let (Some(&object), Some(session)) = (self.find(&template).first(), self.session(false))
        else {
            return "none listed";
        };
        let value_of = |public: &SimPublicKey| match public {
            SimPublicKey::Rsa(key) => rsa::traits::PublicKeyParts::n(key).to_bytes_be(),
            ec => check::ec_point(ec),
        };
        let kind = match card_public_key(&self.honest, slot) {
            SimPublicKey::Rsa(_) => CKA_MODULUS,
            _ => CKA_EC_POINT,
        };
        let Ok(shown) = attribute(session, object, kind) else {
            return "unreadable";
        };
        let honest = value_of(&card_public_key(&self.honest, slot));
        let other = self.hostile.impostor_public_key(slot).map(|k| value_of(&k));
        if shown.ends_with(&honest) {
            "the card's"
        } else if other.is_some_and(|other| shown.ends_with(&other)) {
            "the OTHER application's"
        } else {
            "nobody's"
        }
    }

    fn call_sign(
        &mut self,
        session: CK_SESSION_HANDLE,
        mech: &mut Mech,
        key: CK_OBJECT_HANDLE,
        message: &[u8],
    ) -> Result<Vec<u8>, CK_RV> {
        let rv = self.call("C_SignInit", || ck!(C_SignInit(session, mech.ptr(), key)));
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut signature = vec![0u8; 1024];
        let mut len = signature.len() as CK_ULONG;
        let rv = self.call("C_Sign", || {
            ck!(C_Sign(
                session,
                message.as_ptr() as *mut u8,
                message.len() as CK_ULONG,
                signature.as_mut_ptr(),
                &mut len
            ))
        });
        signature.truncate(len.min(1024) as usize);
        (rv == CKR_OK).then_some(signature).ok_or(rv)
    }
}

// ----- rounds under a watchdog ---------------------------------------------------

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The mischief kinds left after `HOSTILE_SKIP`.
fn allowed_mischief() -> Vec<Mischief> {
    let skip = std::env::var("HOSTILE_SKIP").unwrap_or_default();
    let skipped: Vec<&str> = skip.split(',').map(str::trim).collect();
    for name in skipped.iter().filter(|n| !n.is_empty()) {
        assert!(
            Mischief::from_name(name).is_some(),
            "HOSTILE_SKIP: no kind {name:?}"
        );
    }
    Mischief::ALL
        .into_iter()
        .filter(|kind| !skipped.contains(&kind.name()))
        .collect()
}

/// Runs round `seed` on a worker thread; a call that outlives
/// [`CALL_LIMIT`] gets the card calmed so that it can end.
fn guarded_round(seed: u64, allowed: &[Mischief]) -> (Vec<Violation>, Vec<Violation>) {
    let mut rng = HostileRng::new(seed);
    static CARD: std::sync::OnceLock<SimPivCard> = std::sync::OnceLock::new();
    let card = CARD.get_or_init(SimPivCard::new).clone();
    let (backend, honest) = SimBackend::with_card(card);
    let hostile = HostileCard::new(
        backend,
        DEFAULT_READER,
        honest.clone(),
        PINS[0],
        rng.next_u64(),
    );
    let progress = Progress::default();
    let round = Round {
        seed,
        rng,
        hostile: hostile.clone(),
        honest,
        allowed: allowed.to_vec(),
        progress: Arc::clone(&progress),
        verbose: std::env::var_os("HOSTILE_VERBOSE").is_some(),
        calls: 0,
        violations: Vec::new(),
        notes: Vec::new(),
        initialized: false,
        slot: 0,
        sessions: Vec::new(),
        objects: Vec::new(),
        tries_allowed: 0,
        tries_reported: false,
    };
    let (done, finished) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(WORKER_NAME.into())
        .spawn(move || {
            let _ = done.send(round.run());
        })
        .expect("a worker thread");
    let calmed = AtomicBool::new(false);
    loop {
        match finished.recv_timeout(Duration::from_millis(50)) {
            Ok(outcome) => {
                let _ = worker.join();
                return outcome;
            }
            Err(RecvTimeoutError::Disconnected) => {
                let why = worker.join().err().map(|p| format!("{p:?}"));
                panic!("round {seed}: the driver itself failed: {why:?}");
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let current = progress.lock().unwrap().clone();
        let Some((call, started)) = current else {
            continue;
        };
        if started.elapsed() > CALL_LIMIT && !calmed.swap(true, Ordering::SeqCst) {
            hostile.calm();
        }
        if started.elapsed() > CALL_LIMIT + UNSTICK_LIMIT {
            panic!(
                "[time-bound] seed {seed} call {call}: still running {:?} after the card \
                 calmed down; the module is stuck (last mischief: {})",
                started.elapsed(),
                hostile.journal().join("; ")
            );
        }
    }
}

/// Violations (or notes) grouped by invariant: counts, seeds, and the
/// first `shown` of each in full.
fn summary(found: &[Violation], shown: usize) -> String {
    let mut by_invariant: std::collections::BTreeMap<&str, Vec<&Violation>> = Default::default();
    for violation in found {
        by_invariant
            .entry(&violation.invariant)
            .or_default()
            .push(violation);
    }
    let mut report = String::new();
    for (invariant, found) in &by_invariant {
        let seeds: Vec<String> = found.iter().take(12).map(|v| v.seed.to_string()).collect();
        report += &format!(
            "\n{invariant}: {} times, seeds {}\n",
            found.len(),
            seeds.join(" ")
        );
        for violation in found.iter().take(shown) {
            report += &format!("  {violation}\n");
        }
    }
    report
}

#[test]
fn the_module_survives_a_hostile_card() {
    install_panic_hook();
    let rounds = env_number("HOSTILE_ROUNDS").unwrap_or(DEFAULT_ROUNDS);
    let first_seed = env_number("HOSTILE_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map(|d| d.as_nanos() as u64).unwrap_or(1) % 1_000_000_000
    });
    let allowed = allowed_mischief();
    println!("hostile card: {rounds} rounds from seed {first_seed}, mischief {allowed:?}");
    let started = Instant::now();
    let (mut violations, mut notes) = (Vec::new(), Vec::new());
    let mut baseline = None;
    for round in 0..rounds {
        let seed = first_seed.wrapping_add(round);
        let (broken, noted) = guarded_round(seed, &allowed);
        violations.extend(broken);
        notes.extend(noted);
        if round + 1 == WARM_UP_ROUNDS.min(rounds) {
            baseline = Some(resident_bytes());
        }
    }
    unsafe { (f().C_Finalize.unwrap())(ptr::null_mut()) };
    let (before, after) = (baseline.unwrap_or(0), resident_bytes());
    if after > before + RSS_GROWTH_LIMIT {
        violations.push(Violation {
            invariant: "memory".into(),
            seed: first_seed,
            call: "whole run".into(),
            detail: format!("resident set grew from {before} to {after} bytes"),
            journal: Vec::new(),
        });
    }
    println!(
        "hostile card: {rounds} rounds in {:?}, resident set {} -> {} KiB, {} violations",
        started.elapsed(),
        before >> 10,
        after >> 10,
        violations.len()
    );
    println!("notes (no invariant broken):{}", summary(&notes, 1));
    let report = summary(&violations, 3);
    assert!(violations.is_empty(), "invariants broken:{report}");
}
