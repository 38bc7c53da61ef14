//! The PKCS#11 state machine: slots (one per reader), tokens (one per
//! recognised card application), sessions, login state and operations.
//!
//! Locking: the slot table and the session table are each behind their own
//! lock, held only to look things up. Each slot has one mutex that
//! serialises its card; each session has its own mutex. Order: session, then
//! slot. No lock is held while waiting for PC/SC events.

use crate::audit::Audit;
use crate::cache::{CacheKey, CacheStore, CachedCard, CachedObject};
use crate::card::{Card, EngineState, SessionLogin, Transaction};
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::profile::{
    AppError, CardApp, CardInfo, PinStatus, ProfileSet, Recall, Record, RecordKind,
};
use crate::session::{FindOp, Session};
use crate::token::{self, AttrValue, Object};
use crate::transport::{CardTransport, ReaderBackend, TransportError};

mod decryption;
mod derive;
mod digest;
mod key_use;
mod login;
mod objects;
mod pin;
mod random;
mod refusals;
mod sessions;
mod signing;
mod slots;
mod tokens;
mod wipe;

use objects::*;
use sessions::*;
use slots::*;
pub use slots::{ExternalLock, ExternalLockFactory};
use tokens::*;
pub use tokens::{CacheUse, CardDetails};

use cryptoki_sys::*;
use pin::{verify_context_pin, verify_user_pin, verify_user_pin_on_pad};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Locks a mutex, recovering the data if a panicking thread poisoned it
/// (the ABI layer catches panics; state stays usable).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Copies `text` into a blank-padded fixed field, cut at a UTF-8 boundary.
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = text.len().min(N);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

/// The PKCS#11 module.
pub struct Module {
    backend: Box<dyn ReaderBackend>,
    profiles: ProfileSet,
    slots: RwLock<Vec<Arc<Slot>>>,
    sessions: RwLock<HashMap<CK_SESSION_HANDLE, SessionEntry>>,
    next_session: AtomicU64,
    /// The readers were listed at least once.
    scanned: AtomicBool,
    /// `C_Finalize` has begun.
    shutting_down: AtomicBool,
    /// The application's mutexes, when it supplied its own.
    external_locks: Option<ExternalLockFactory>,
    /// The disk cache of the cards' public data, when enabled.
    cache: Option<Arc<CacheStore>>,
    /// Present the logged-in user's PIN before each use of a key that wants
    /// it every time, without the context-specific login.
    ignore_user_consent: bool,
    /// The algorithm policy put on every key the module reads.
    policy: Policy,
    /// The audit trail, when the configuration keeps one.
    audit: Option<Arc<Audit>>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("slots", &self.slot_table())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for dyn ReaderBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReaderBackend")
    }
}

/// The library's version, from Cargo.
pub fn library_version() -> CK_VERSION {
    CK_VERSION {
        major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
        minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
    }
}

impl Module {
    /// A module over `backend`, matching cards against `profiles`. Nothing
    /// is read from readers or cards until asked.
    pub fn new(backend: Box<dyn ReaderBackend>, profiles: ProfileSet) -> Module {
        Module {
            backend,
            profiles,
            slots: RwLock::new(Vec::new()),
            sessions: RwLock::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            scanned: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            external_locks: None,
            cache: None,
            ignore_user_consent: false,
            policy: Policy::default(),
            audit: None,
        }
    }

    /// The algorithm policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Records card use in `audit` (see [`crate::audit`]).
    pub fn with_audit(mut self, audit: Option<Audit>) -> Module {
        self.audit = audit.map(Arc::new);
        self
    }

    /// Records `event` in the audit trail, if there is one, with the
    /// reader, the token's serial and `fields`.
    fn audit(
        &self,
        slot: &Slot,
        state: &SlotState,
        event: &str,
        fields: impl FnOnce() -> Vec<(&'static str, String)>,
    ) {
        let Some(audit) = &self.audit else {
            return;
        };
        let mut all = vec![("reader", slot.reader.clone())];
        if let Some(token) = &state.token {
            all.push(("profile", token.app.profile().name.clone()));
            all.push(("serial", token.info.serial.clone()));
        }
        all.extend(fields());
        audit.record(event, &all);
    }

    /// Puts the algorithm `policy` on every key: a key it refuses shows no
    /// private key, a mechanism it refuses is neither listed nor accepted
    /// (`CKR_MECHANISM_INVALID` before any APDU).
    pub fn with_policy(mut self, policy: Policy) -> Module {
        self.policy = policy;
        self
    }

    /// Presents the logged-in user's PIN right before each operation with
    /// a key that wants the PIN before every use (`CKA_ALWAYS_AUTHENTICATE`)
    /// when the caller did no context-specific login: for programs that
    /// cannot do one. The card's request for the user's consent to each
    /// signature is then met by the module, not the user.
    pub fn ignoring_user_consent(mut self, ignore: bool) -> Module {
        self.ignore_user_consent = ignore;
        self
    }

    /// Keeps the cards' public data (certificates) in `store` between
    /// processes.
    pub fn with_cache(mut self, store: CacheStore) -> Module {
        self.cache = Some(Arc::new(store));
        self
    }

    /// Uses the application's mutexes (one per slot) in addition to the
    /// module's own locks.
    pub fn with_external_locks(mut self, factory: ExternalLockFactory) -> Module {
        self.external_locks = Some(factory);
        self
    }

    /// `C_GetInfo` (for the given interface version).
    pub fn info(&self, cryptoki_version: CK_VERSION) -> CK_INFO {
        CK_INFO {
            cryptokiVersion: cryptoki_version,
            manufacturerID: padded("p11card"),
            flags: 0,
            libraryDescription: padded("p11card smart-card module"),
            libraryVersion: library_version(),
        }
    }
}

/// Runs one card operation in one PC/SC transaction, with the application
/// selected first (the card layer's [`Card::run`]). A card that was removed
/// takes the token with it.
fn card_operation<R>(
    state: &mut SlotState,
    op: impl FnMut(&dyn CardApp, &mut Transaction) -> std::result::Result<R, AppError>,
) -> Result<R> {
    let SlotState {
        card, token, login, ..
    } = state;
    let (Some(card), Some(token)) = (card.as_mut(), token.as_ref()) else {
        return Err(Error::DeviceRemoved);
    };
    let result = card.run(token.app.as_ref(), login, op);
    removed_takes_token(state, result)
}

/// Runs a private-key operation with `key` through the card layer's
/// [`Card::private_key_operation`]: `op` gets the proof that the card
/// accepts it (the context VERIFY with `context_pin`, this process's login,
/// or a key without PIN).
fn private_key_operation<R>(
    state: &mut SlotState,
    key: &crate::profile::KeyInfo,
    context_pin: Option<&[u8]>,
    entry: crate::card::Entry,
    op: impl FnMut(
        &dyn CardApp,
        &mut Transaction,
        &crate::card::Verified,
    ) -> std::result::Result<R, AppError>,
) -> Result<R> {
    let SlotState {
        card, token, login, ..
    } = state;
    let (Some(card), Some(token)) = (card.as_mut(), token.as_ref()) else {
        return Err(Error::DeviceRemoved);
    };
    let result = card.private_key_operation(token.app.as_ref(), login, key, context_pin, entry, op);
    removed_takes_token(state, result)
}

/// A card operation that ended with the card gone ends the token.
fn removed_takes_token<R>(state: &mut SlotState, result: Result<R>) -> Result<R> {
    if matches!(result, Err(Error::DeviceRemoved)) {
        state.drop_token();
    }
    result
}

/// A card that says the PIN is not verified although the module thought it
/// was (another process reset it): the module's login state follows.
fn note_lost_login(state: &mut SlotState, err: Error) -> Error {
    if err == Error::UserNotLoggedIn {
        state.end_login();
    }
    err
}

/// How an operation ended, for the audit trail: `ok` or the return code's
/// name.
fn audit_result<T>(result: &Result<T>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(error) => format!("{error:?}"),
    }
}

/// What the audit trail says of a key: its `CKA_ID`, and its certificate's
/// subject and SHA-256 fingerprint when it has one.
fn audit_key(key: &crate::profile::KeyInfo) -> Vec<(&'static str, String)> {
    use sha2::Digest;
    let mut fields = vec![("key_id", hex_id(&key.id))];
    if let Some(der) = &key.certificate {
        use der::Decode;
        if let Ok(certificate) = x509_cert::Certificate::from_der(der) {
            fields.push(("subject", certificate.tbs_certificate.subject.to_string()));
        }
        fields.push(("cert_sha256", hex_id(&sha2::Sha256::digest(der))));
    }
    fields
}

fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
