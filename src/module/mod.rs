//! The PKCS#11 state machine: slots (one per reader), tokens (one per
//! recognised card application), sessions, login state and operations.
//!
//! Locking: the slot table and the session table are each behind their own
//! lock, held only to look things up. Each slot has one mutex that
//! serialises its card; each session has its own mutex. Order: session, then
//! slot. No lock is held while waiting for PC/SC events.

use crate::cache::{CacheKey, CacheStore, CachedCard, CachedObject};
use crate::card::{Card, SessionLogin, Transaction};
use crate::error::{Error, Result};
use crate::profile::{AppError, CardApp, CardInfo, PinStatus, ProfileSet, Recall};
use crate::session::{FindOp, Session};
use crate::token::{self, AttrValue, Object};
use crate::transport::{CardTransport, ReaderBackend, TransportError};

mod operations;
mod pin;
mod refusals;
mod signing;
mod wipe;

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

/// A card application that was recognised, with its objects.
#[derive(Debug)]
struct Token {
    app: Box<dyn CardApp>,
    info: CardInfo,
    objects: Vec<Object>,
    pin: PinStatus,
    /// `pin` holds what the card (or this process) said, not a default.
    pin_known: bool,
    /// A wrong PIN was entered since the last successful login.
    pin_failed: bool,
    /// The most tries the card reported in this process.
    most_tries: Option<u8>,
    /// The reader has a PIN pad: the PIN is entered there, not by the host.
    pin_pad: bool,
    /// The slot the token is in (object handles carry it).
    slot_id: CK_SLOT_ID,
    /// The disk cache and this card's entry in it, when the card can be
    /// cached.
    cache: Option<(Arc<CacheStore>, CacheKey)>,
}

impl Token {
    /// Stores the card's certificates in the disk cache once every key slot
    /// was read from the card (never what the cache itself gave).
    fn remember(&self) {
        let Some((store, key)) = &self.cache else {
            return;
        };
        if !self.info.keys_complete || self.info.recalled {
            return;
        }
        let objects = self
            .info
            .keys
            .iter()
            .filter_map(|key| {
                key.certificate.as_ref().map(|der| CachedObject {
                    reference: key.reference,
                    data: der.clone(),
                })
            })
            .collect();
        store.store(
            key,
            &CachedCard {
                stored_at: std::time::SystemTime::now(),
                objects,
            },
        );
    }

    /// Drops the card's cache entry (it did not match the card).
    fn forget_cached(&self) {
        if let Some((store, key)) = &self.cache {
            store.forget(key);
        }
    }

    fn record_pin(&mut self, status: PinStatus) {
        if let Some(tries) = status.tries_left {
            self.most_tries = Some(self.most_tries.map_or(tries, |most| most.max(tries)));
        }
        self.pin = status;
        self.pin_known = true;
    }

    fn flags(&self) -> CK_FLAGS {
        let mut flags =
            CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
        if self.pin_pad {
            flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
        }
        let tries = self.pin.tries_left;
        if self.pin.blocked || tries == Some(0) {
            flags |= CKF_USER_PIN_LOCKED;
        } else if tries == Some(1) {
            flags |= CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW;
        } else if self.pin_failed
            || matches!((tries, self.most_tries), (Some(now), Some(most)) if now < most)
            || tries.is_some_and(|now| now < self.app.pin_max_tries().unwrap_or(USUAL_PIN_TRIES))
        {
            flags |= CKF_USER_PIN_COUNT_LOW;
        }
        flags
    }
}

/// The PIN tries cards ship with (PIV cards from Yubico and Nitrokey, and
/// OpenPGP cards, default to 3; SP 800-73-4 leaves it to the issuer). Most
/// cards do not report their maximum (a YubiKey's GET METADATA does), so in
/// a process that has not seen a wrong PIN itself, fewer tries than the
/// maximum (else this) means wrong PINs since the last success
/// (`CKF_USER_PIN_COUNT_LOW`).
const USUAL_PIN_TRIES: u8 = 3;

#[derive(Debug, Default)]
struct SlotState {
    card: Option<Card>,
    token: Option<Token>,
    /// A card is in the reader but no profile recognised it.
    unrecognized: bool,
    /// This process's user login, with the PIN kept to restore a login
    /// the card lost.
    login: SessionLogin,
    /// The unblocking code given with `C_Login(CKU_SO)`, kept until
    /// `C_InitPIN` or `C_Logout` (the card can only check it together with
    /// the new PIN).
    so_unblock_code: Option<Zeroizing<Vec<u8>>>,
    /// The slot's change count when the token was read.
    token_changes: u64,
    /// Bumped whenever the token goes away; sessions carry the value they
    /// were opened with.
    generation: u64,
}

impl std::fmt::Debug for dyn CardTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardTransport")
    }
}

impl SlotState {
    /// Whether this process is logged in.
    fn logged_in(&self) -> bool {
        self.login.is_active()
    }

    /// Ends this process's login (the PIN copy is zeroized).
    fn end_login(&mut self) {
        self.login.end();
    }

    fn drop_token(&mut self) {
        self.card = None;
        self.token = None;
        self.unrecognized = false;
        self.login.end();
        self.so_unblock_code = None;
        self.generation += 1;
    }
}

/// A mutex the application supplied through `CK_C_INITIALIZE_ARGS`
/// (PKCS#11 §5.4: without `CKF_OS_LOCKING_OK` the module must use them).
pub trait ExternalLock: Send + Sync {
    /// Takes the mutex.
    fn lock(&self);
    /// Releases the mutex.
    fn unlock(&self);
}

/// Makes one application mutex per slot, or `None` if the application
/// could not create one.
pub type ExternalLockFactory = Box<dyn Fn() -> Option<Box<dyn ExternalLock>> + Send + Sync>;

/// A slot's state, locked; with the application's mutex too when it gave
/// one.
struct SlotGuard<'a> {
    guard: MutexGuard<'a, SlotState>,
    external: Option<&'a dyn ExternalLock>,
}

impl std::ops::Deref for SlotGuard<'_> {
    type Target = SlotState;
    fn deref(&self) -> &SlotState {
        &self.guard
    }
}

impl std::ops::DerefMut for SlotGuard<'_> {
    fn deref_mut(&mut self) -> &mut SlotState {
        &mut self.guard
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(external) = self.external {
            external.unlock();
        }
    }
}

/// One reader.
struct Slot {
    id: CK_SLOT_ID,
    reader: String,
    /// Card presence as PC/SC last reported it.
    present: AtomicBool,
    /// The reader is currently listed by PC/SC.
    attached: AtomicBool,
    /// A change not yet reported by `C_WaitForSlotEvent`.
    event_pending: AtomicBool,
    /// The reader's card event counter as PC/SC last reported it.
    card_events: AtomicU64,
    /// Counts every change seen in the reader (card in or out, a different
    /// card, the reader gone or back): a token read before a change is over.
    changes: AtomicU64,
    /// When PC/SC last reported the reader's state.
    checked_at: Mutex<Option<Instant>>,
    /// The application's mutex for this slot, if it asked for its own.
    external: Option<Box<dyn ExternalLock>>,
    state: Mutex<SlotState>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("id", &self.id)
            .field("reader", &self.reader)
            .finish()
    }
}

impl Slot {
    /// Records the reader's state; any change becomes a pending slot event.
    /// PC/SC reported the reader's state within `window`.
    fn checked_within(&self, window: Duration) -> bool {
        !window.is_zero() && lock(&self.checked_at).is_some_and(|at| at.elapsed() < window)
    }

    fn note(&self, attached: bool, present: bool, card_events: u64) {
        *lock(&self.checked_at) = Some(Instant::now());
        let was_attached = self.attached.swap(attached, Ordering::SeqCst);
        let was_present = self.present.swap(present, Ordering::SeqCst);
        let was_events = self.card_events.swap(card_events, Ordering::SeqCst);
        if was_attached != attached || was_present != present || was_events != card_events {
            self.changes.fetch_add(1, Ordering::SeqCst);
            self.event_pending.store(true, Ordering::SeqCst);
        }
    }

    /// Locks the slot's state (one card conversation at a time).
    fn lock(&self) -> SlotGuard<'_> {
        let external = self.external.as_deref();
        if let Some(external) = external {
            external.lock();
        }
        SlotGuard {
            guard: lock(&self.state),
            external,
        }
    }
}

/// A session in the session table, with what can be read without locking it.
#[derive(Debug, Clone)]
struct SessionEntry {
    slot: CK_SLOT_ID,
    read_write: bool,
    generation: u64,
    session: Arc<Mutex<Session>>,
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
        }
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

    // ----- slots ---------------------------------------------------------

    fn slot_table(&self) -> Vec<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The slot with this ID. An ID the module has not seen yet makes it
    /// ask PC/SC for the readers once (no APDU) before refusing it, so a
    /// valid ID works right after `C_Initialize`, without `C_GetSlotList`
    /// (programs keep slot IDs in their configuration). IDs are given in
    /// the order PC/SC lists the readers, as `C_GetSlotList` gives them.
    fn slot(&self, id: CK_SLOT_ID) -> Result<Arc<Slot>> {
        let known = |module: &Module| module.slot_table().into_iter().find(|slot| slot.id == id);
        if let Some(slot) = known(self) {
            return Ok(slot);
        }
        self.refresh_readers().map_err(|_| Error::SlotIdInvalid)?;
        known(self).ok_or(Error::SlotIdInvalid)
    }

    /// Asks PC/SC for readers and card presence (no APDU). New readers get
    /// new slot IDs; a reader that comes back gets its old ID.
    fn refresh_readers(&self) -> Result<()> {
        let readers = self.backend.readers().map_err(Error::from)?;
        self.apply_readers(readers);
        Ok(())
    }

    /// Records what PC/SC reported; changes after the first scan become
    /// pending slot events for `C_WaitForSlotEvent`.
    fn apply_readers(&self, readers: Vec<crate::transport::ReaderStatus>) {
        let first_scan = !self.scanned.swap(true, Ordering::SeqCst);
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        for slot in slots.iter() {
            if !readers.iter().any(|reader| reader.name == slot.reader) {
                slot.note(false, false, slot.card_events.load(Ordering::SeqCst));
            }
        }
        for reader in readers {
            match slots.iter().find(|slot| slot.reader == reader.name) {
                Some(slot) => slot.note(true, reader.card_present, reader.card_events),
                None => {
                    let id = slots.len() as CK_SLOT_ID;
                    slots.push(Arc::new(Slot {
                        id,
                        reader: reader.name,
                        present: AtomicBool::new(reader.card_present),
                        attached: AtomicBool::new(true),
                        event_pending: AtomicBool::new(!first_scan),
                        card_events: AtomicU64::new(reader.card_events),
                        changes: AtomicU64::new(0),
                        checked_at: Mutex::new(Some(Instant::now())),
                        external: self.external_locks.as_ref().and_then(|factory| factory()),
                        state: Mutex::new(SlotState::default()),
                    }));
                }
            }
        }
    }

    /// `C_WaitForSlotEvent`: the next slot whose reader or card changed
    /// since the last call. `block = false` returns `None` when nothing
    /// changed. No lock is held while waiting; [`Module::shutdown`] wakes a
    /// waiting thread, which then gets `CKR_CRYPTOKI_NOT_INITIALIZED`.
    pub fn wait_for_slot_event(&self, block: bool) -> Result<Option<CK_SLOT_ID>> {
        loop {
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(Error::CryptokiNotInitialized);
            }
            let readers = self.backend.readers().map_err(Error::from)?;
            self.apply_readers(readers.clone());
            let pending = self
                .slot_table()
                .into_iter()
                .find(|slot| slot.event_pending.swap(false, Ordering::SeqCst));
            if let Some(slot) = pending {
                return Ok(Some(slot.id));
            }
            if !block {
                return Ok(None);
            }
            self.backend
                .wait_for_change(&readers, std::time::Duration::from_secs(2))
                .map_err(Error::from)?;
        }
    }

    /// Starts `C_Finalize`: wakes threads waiting for slot events.
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.backend.cancel_wait();
    }

    /// `C_GetSlotList`: with `refresh`, asks PC/SC first (the length query);
    /// without, returns the list the last query saw.
    pub fn slot_list(&self, token_present: bool, refresh: bool) -> Result<Vec<CK_SLOT_ID>> {
        if refresh || self.slot_table().is_empty() {
            self.refresh_readers()?;
        }
        Ok(self
            .slot_table()
            .iter()
            .filter(|slot| slot.attached.load(Ordering::SeqCst))
            .filter(|slot| !token_present || slot.present.load(Ordering::SeqCst))
            .map(|slot| slot.id)
            .collect())
    }

    /// `C_GetSlotInfo`.
    pub fn slot_info(&self, id: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
        let slot = self.slot(id)?;
        self.refresh_readers()?;
        let mut flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
        if slot.present.load(Ordering::SeqCst) {
            flags |= CKF_TOKEN_PRESENT;
        }
        Ok(CK_SLOT_INFO {
            slotDescription: padded(&slot.reader),
            manufacturerID: padded("PC/SC"),
            flags,
            hardwareVersion: CK_VERSION { major: 0, minor: 0 },
            firmwareVersion: CK_VERSION { major: 0, minor: 0 },
        })
    }

    /// Locks a slot's state, making sure its token is loaded (reading the
    /// card if this is the first time) and still in the reader.
    fn token_state<'s>(&self, slot: &'s Slot) -> Result<SlotGuard<'s>> {
        self.token_state_with(slot, false)
    }

    /// [`Module::token_state`]; a first read of the card also reads the PIN
    /// state when `with_pin_status`.
    fn token_state_with<'s>(&self, slot: &'s Slot, with_pin_status: bool) -> Result<SlotGuard<'s>> {
        // Ask PC/SC (no APDU) whether the card is still the one the token
        // was read from: a pull, a swap or a service restart since the last
        // call ends the token, its login and its sessions.
        // A burst of calls asks once: within the backend's window the last
        // answer stands (a card pulled meanwhile still fails the next
        // APDU, and PC/SC refuses a handle from before a swap).
        if !slot.checked_within(self.backend.status_reuse()) {
            match self.backend.reader_status(&slot.reader) {
                Ok(Some(status)) => slot.note(true, status.card_present, status.card_events),
                Ok(None) => slot.note(false, false, slot.card_events.load(Ordering::SeqCst)),
                Err(_) => {}
            }
        }
        let mut state = slot.lock();
        let changes = slot.changes.load(Ordering::SeqCst);
        if (state.token.is_some() || state.card.is_some() || state.unrecognized)
            && state.token_changes != changes
        {
            state.drop_token();
        }
        if !slot.present.load(Ordering::SeqCst) {
            if state.token.is_some() || state.card.is_some() {
                state.drop_token();
            }
            return Err(Error::TokenNotPresent);
        }
        if state.token.is_none() {
            if state.unrecognized {
                return Err(Error::TokenNotRecognized);
            }
            state.token_changes = changes;
            self.load_token(slot, &mut state, with_pin_status)?;
        }
        Ok(state)
    }

    /// Reads the card in `slot`: identifies its application and reads its
    /// public data (from the disk cache where the card's identity matches),
    /// and the PIN state when `with_pin_status` (token info shows it).
    fn load_token(&self, slot: &Slot, state: &mut SlotState, with_pin_status: bool) -> Result<()> {
        let mut card = match self.backend.connect(&slot.reader) {
            Ok(card) => card,
            Err(TransportError::CardRemoved | TransportError::ReaderGone) => {
                slot.present.store(false, Ordering::SeqCst);
                return Err(Error::TokenNotPresent);
            }
            Err(other) => return Err(other.into()),
        };
        let atr = card.atr().to_vec();
        let loaded = card.with_transaction(|link| -> std::result::Result<_, AppError> {
            let Some(app) = self.profiles.identify(&atr, link)? else {
                return Ok(None);
            };
            let mut card = Transaction::new(link, app.profile().channel);
            let recall = CacheRecall {
                store: self.cache.as_deref(),
                profile: &app.profile().name,
                atr: &atr,
            };
            let mut info = app.read_card(&mut card, &recall)?;
            if info.pin.is_none() && with_pin_status {
                info.pin = Some(app.pin_status(&mut card)?);
            }
            Ok(Some((app, info)))
        });
        let loaded = match loaded {
            Ok(inner) => inner.map_err(Error::from),
            Err(err) => Err(Error::from(err)),
        };
        match loaded {
            Ok(Some((app, info))) => {
                let objects = token::objects_for_card(slot.id, &info);
                let cache = match (&self.cache, &info.identity) {
                    (Some(store), Some(identity)) => Some((
                        Arc::clone(store),
                        cache_key(&app.profile().name, &atr, identity),
                    )),
                    _ => None,
                };
                let mut token = Token {
                    app,
                    pin: PinStatus::default(),
                    pin_known: false,
                    objects,
                    pin_failed: false,
                    most_tries: None,
                    pin_pad: card.has_pin_pad(),
                    slot_id: slot.id,
                    info,
                    cache,
                };
                if let Some(status) = token.info.pin {
                    token.record_pin(status);
                }
                token.remember();
                state.login.end();
                state.card = Some(Card::new(card, true));
                state.token = Some(token);
                Ok(())
            }
            Ok(None) => {
                state.unrecognized = true;
                state.card = Some(Card::new(card, false));
                Err(Error::TokenNotRecognized)
            }
            Err(Error::DeviceRemoved) => {
                slot.present.store(false, Ordering::SeqCst);
                Err(Error::TokenNotPresent)
            }
            Err(other) => Err(other),
        }
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&self, id: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
        let slot = self.slot(id)?;
        let mut state = self.token_state_with(&slot, true)?;
        let pin_known = state.token.as_ref().is_some_and(|token| token.pin_known);
        if !pin_known {
            // The card was read for something else first: its PIN state
            // once, for the flags (polling costs no APDU after that).
            let status = card_operation(&mut state, |app, card| app.pin_status(card))?;
            if let Some(token) = state.token.as_mut() {
                token.record_pin(status);
            }
        }
        let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
        let (session_count, rw_session_count) = {
            let sessions = self.sessions_read();
            let of_slot = sessions.values().filter(|entry| entry.slot == id);
            let rw = of_slot.clone().filter(|entry| entry.read_write).count();
            (of_slot.count() as CK_ULONG, rw as CK_ULONG)
        };
        let pin = &token.app.profile().pin;
        Ok(CK_TOKEN_INFO {
            label: padded(&token.info.label),
            manufacturerID: padded(&token.info.manufacturer),
            model: padded(&token.info.model),
            serialNumber: padded(&token.info.serial),
            flags: token.flags(),
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: session_count,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: rw_session_count,
            ulMaxPinLen: pin.max_length as CK_ULONG,
            ulMinPinLen: pin.min_length as CK_ULONG,
            ulTotalPublicMemory: token::UNAVAILABLE,
            ulFreePublicMemory: token::UNAVAILABLE,
            ulTotalPrivateMemory: token::UNAVAILABLE,
            ulFreePrivateMemory: token::UNAVAILABLE,
            hardwareVersion: CK_VERSION { major: 0, minor: 0 },
            firmwareVersion: CK_VERSION { major: 0, minor: 0 },
            utcTime: [b' '; 16],
        })
    }

    /// `C_GetMechanismList`.
    pub fn mechanism_list(&self, id: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        let slot = self.slot(id)?;
        Ok(self
            .token_mechanisms(&slot)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// `C_GetMechanismInfo`.
    pub fn mechanism_info(
        &self,
        id: CK_SLOT_ID,
        kind: CK_MECHANISM_TYPE,
    ) -> Result<CK_MECHANISM_INFO> {
        let slot = self.slot(id)?;
        self.token_mechanisms(&slot)?
            .into_iter()
            .find(|(m, _)| *m == kind)
            .map(|(_, info)| info)
            .ok_or(Error::MechanismInvalid)
    }

    // ----- sessions ------------------------------------------------------

    fn sessions_read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<CK_SESSION_HANDLE, SessionEntry>> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn sessions_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<CK_SESSION_HANDLE, SessionEntry>> {
        self.sessions.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The handles of a slot's sessions (no session lock taken).
    fn sessions_of(&self, slot: CK_SLOT_ID) -> Vec<CK_SESSION_HANDLE> {
        self.sessions_read()
            .iter()
            .filter(|(_, entry)| entry.slot == slot)
            .map(|(handle, _)| *handle)
            .collect()
    }

    fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Mutex<Session>>> {
        self.sessions_read()
            .get(&handle)
            .map(|entry| Arc::clone(&entry.session))
            .ok_or(Error::SessionHandleInvalid)
    }

    /// Drops the sessions a slot's earlier tokens left behind.
    fn forget_sessions_of(&self, slot: CK_SLOT_ID, generation: u64) {
        self.sessions_write()
            .retain(|_, entry| entry.slot != slot || entry.generation == generation);
    }

    /// Runs `f` with a session and its slot's token, both locked. A session
    /// whose card went away is closed and reported invalid.
    fn with_session<R>(
        &self,
        handle: CK_SESSION_HANDLE,
        f: impl FnOnce(&mut Session, &mut SlotState, &Slot) -> Result<R>,
    ) -> Result<R> {
        let session = self.session(handle)?;
        let mut session = lock(&session);
        let slot = self.slot(session.slot)?;
        let mut state = match self.token_state(&slot) {
            Ok(state) => state,
            Err(Error::TokenNotPresent | Error::TokenNotRecognized) => {
                let generation = slot.lock().generation;
                drop(session);
                self.sessions_write().remove(&handle);
                self.forget_sessions_of(slot.id, generation);
                return Err(Error::DeviceRemoved);
            }
            Err(other) => return Err(other),
        };
        if state.generation != session.generation {
            drop(session);
            self.sessions_write().remove(&handle);
            return Err(Error::SessionHandleInvalid);
        }
        let result = f(&mut session, &mut state, &slot);
        if matches!(result, Err(Error::DeviceRemoved)) {
            let generation = state.generation;
            drop(state);
            drop(session);
            self.forget_sessions_of(slot.id, generation);
        }
        result
    }

    /// `C_OpenSession`.
    pub fn open_session(&self, id: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        let slot = self.slot(id)?;
        let generation = self.token_state(&slot)?.generation;
        let handle = self.next_session.fetch_add(1, Ordering::SeqCst) as CK_SESSION_HANDLE;
        let session = Session::new(id, flags & CKF_RW_SESSION != 0, generation);
        let entry = SessionEntry {
            slot: id,
            read_write: flags & CKF_RW_SESSION != 0,
            generation,
            session: Arc::new(Mutex::new(session)),
        };
        self.sessions_write().insert(handle, entry);
        Ok(handle)
    }

    /// `C_CloseSession`. Closing a slot's last session logs the token out.
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let removed = self
            .sessions_write()
            .remove(&handle)
            .ok_or(Error::SessionHandleInvalid)?;
        self.logout_if_unused(removed.slot);
        Ok(())
    }

    /// `C_CloseAllSessions`.
    pub fn close_all_sessions(&self, id: CK_SLOT_ID) -> Result<()> {
        self.slot(id)?;
        self.sessions_write().retain(|_, entry| entry.slot != id);
        self.logout_if_unused(id);
        Ok(())
    }

    fn logout_if_unused(&self, id: CK_SLOT_ID) {
        if !self.sessions_of(id).is_empty() {
            return;
        }
        if let Ok(slot) = self.slot(id) {
            let mut state = slot.lock();
            if state.logged_in() {
                // Best effort: the card may be gone already.
                let _ = card_operation(&mut state, |app, card| app.logout(card));
                state.end_login();
            }
        }
    }

    /// Closes every session (used by `C_Finalize`), logging tokens out.
    pub fn close_everything(&self) {
        let slots: Vec<CK_SLOT_ID> = self.slot_table().iter().map(|s| s.id).collect();
        for id in slots {
            let _ = self.close_all_sessions(id);
        }
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&self, handle: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
        self.with_session(handle, |session, state, _| {
            let state_code = match (session.read_write, state.logged_in()) {
                _ if state.so_unblock_code.is_some() => CKS_RW_SO_FUNCTIONS,
                (false, false) => CKS_RO_PUBLIC_SESSION,
                (false, true) => CKS_RO_USER_FUNCTIONS,
                (true, false) => CKS_RW_PUBLIC_SESSION,
                (true, true) => CKS_RW_USER_FUNCTIONS,
            };
            let mut flags = CKF_SERIAL_SESSION;
            if session.read_write {
                flags |= CKF_RW_SESSION;
            }
            Ok(CK_SESSION_INFO {
                slotID: session.slot,
                state: state_code,
                flags,
                ulDeviceError: 0,
            })
        })
    }

    // ----- login ---------------------------------------------------------

    /// `C_Login`. `pin` is `None` only for a protected authentication path.
    pub fn login(
        &self,
        handle: CK_SESSION_HANDLE,
        user: CK_USER_TYPE,
        pin: Option<&[u8]>,
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| match user {
            CKU_USER => {
                if state.logged_in() {
                    return Err(Error::UserAlreadyLoggedIn);
                }
                if state.so_unblock_code.is_some() {
                    return Err(Error::UserAnotherAlreadyLoggedIn);
                }
                match pin {
                    Some(pin) => verify_user_pin(state, pin)?,
                    // PKCS#11 §5.6: a NULL PIN means the protected
                    // authentication path, here the reader's PIN pad.
                    None => {
                        let pin_pad = state.token.as_ref().is_some_and(|t| t.pin_pad);
                        if !pin_pad {
                            return Err(Error::ArgumentsBad);
                        }
                        verify_user_pin_on_pad(state)?;
                    }
                }
                state.login.begin(pin);
                Ok(())
            }
            CKU_CONTEXT_SPECIFIC => {
                let pin = pin.ok_or(Error::ArgumentsBad)?;
                let key_index = match (&session.sign, &session.decrypt) {
                    (Some(op), _) => op.key_index,
                    (None, Some(op)) => op.key_index,
                    (None, None) => return Err(Error::OperationNotInitialized),
                };
                let key = key_of(state, key_index)?.clone();
                verify_context_pin(state, &key, pin)?;
                let pin = Some(Zeroizing::new(pin.to_vec()));
                let always = key.always_authenticate;
                if let Some(op) = session.sign.as_mut().filter(|op| op.key_index == key_index) {
                    op.context_pin = pin.filter(|_| always);
                } else if let Some(op) = session.decrypt.as_mut() {
                    op.context_pin = pin.filter(|_| always);
                }
                Ok(())
            }
            CKU_SO => {
                let code = pin.ok_or(Error::ArgumentsBad)?;
                let read_only_exists = self
                    .sessions_read()
                    .values()
                    .any(|entry| entry.slot == session.slot && !entry.read_write);
                if read_only_exists {
                    return Err(Error::SessionReadOnlyExists);
                }
                self.login_so(state, code)
            }
            _ => Err(Error::UserTypeInvalid),
        })
    }

    /// `C_Logout`: the token's login state ends and the card forgets the PIN.
    pub fn logout(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.with_session(handle, |_, state, _| {
            if state.so_unblock_code.take().is_some() {
                return Ok(());
            }
            if !state.logged_in() {
                return Err(Error::UserNotLoggedIn);
            }
            state.end_login();
            card_operation(state, |app, card| app.logout(card))
        })
    }

    // ----- objects -------------------------------------------------------

    /// `C_FindObjectsInit`.
    pub fn find_init(
        &self,
        handle: CK_SESSION_HANDLE,
        template: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            if session.find.is_some() {
                return Err(Error::OperationActive);
            }
            ensure_all_keys(state)?;
            let results = visible_objects(state)
                .chain(session.objects.iter())
                .filter(|object| object.matches(&template))
                .map(|object| object.handle)
                .collect();
            session.find = Some(FindOp {
                results,
                position: 0,
            });
            Ok(())
        })
    }

    /// `C_FindObjects`: up to `max` more handles.
    pub fn find_next(
        &self,
        handle: CK_SESSION_HANDLE,
        max: usize,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        self.with_session(handle, |session, _, _| {
            let find = session
                .find
                .as_mut()
                .ok_or(Error::OperationNotInitialized)?;
            let end = find.results.len().min(find.position.saturating_add(max));
            let batch = find.results[find.position..end].to_vec();
            find.position = end;
            Ok(batch)
        })
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            session
                .find
                .take()
                .map(|_| ())
                .ok_or(Error::OperationNotInitialized)
        })
    }

    /// `C_GetAttributeValue`: for each type, its value, or `None` if the
    /// object has no such attribute.
    pub fn attributes(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<Option<AttrValue>>> {
        self.with_object(handle, object, |object| {
            types
                .iter()
                .map(|kind| object.attribute(*kind).cloned())
                .collect()
        })
    }

    /// Lets `read` look at an object this session may see (for
    /// `C_GetAttributeValue` over a template of any length, without a copy
    /// as long as the template).
    pub fn with_object<R>(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        read: impl FnOnce(&Object) -> R,
    ) -> Result<R> {
        self.with_session(handle, |session, state, _| {
            operations::any_object(session, state, object).map(read)
        })
    }

    /// `C_GetObjectSize`: the size of the object's readable attributes.
    pub fn object_size(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<usize> {
        self.with_session(handle, |session, state, _| {
            let object = operations::any_object(session, state, object)?;
            let value_len = match object.attribute(CKA_VALUE) {
                Some(AttrValue::Bytes(bytes)) => bytes.len(),
                _ => 0,
            };
            Ok(value_len)
        })
    }

    // ----- random ----------------------------------------------------------

    /// `C_GenerateRandom`: the operating system's CSPRNG, straight into
    /// `out` (of any length: no copy is made).
    pub fn generate_random(&self, handle: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.with_session(handle, |_, _, _| Ok(()))?;
        for chunk in out.chunks_mut(RANDOM_CHUNK) {
            getrandom::getrandom(chunk).map_err(|_| Error::FunctionFailed)?;
        }
        Ok(())
    }

    /// `C_SessionCancel` (PKCS#11 3.0): ends the operations named in `flags`.
    pub fn session_cancel(&self, handle: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            if flags & CKF_SIGN != 0 {
                session.sign = None;
            }
            if flags & CKF_VERIFY != 0 {
                session.verify = None;
            }
            if flags & CKF_DECRYPT != 0 {
                session.decrypt = None;
            }
            if flags & CKF_ENCRYPT != 0 {
                session.encrypt = None;
            }
            if flags & CKF_DIGEST != 0 {
                session.digest = None;
            }
            if flags & CKF_FIND_OBJECTS != 0 {
                session.find = None;
            }
            Ok(())
        })
    }
}

/// `C_GenerateRandom` fills the caller's buffer in pieces of this size
/// (one `getrandom` call each).
const RANDOM_CHUNK: usize = 4096;

/// The disk cache as the engines see it while they read a card.
struct CacheRecall<'a> {
    store: Option<&'a CacheStore>,
    profile: &'a str,
    atr: &'a [u8],
}

impl Recall for CacheRecall<'_> {
    fn certificates(&self, identity: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
        let entry = self
            .store?
            .load(&cache_key(self.profile, self.atr, identity))?;
        Some(
            entry
                .objects
                .into_iter()
                .map(|object| (object.reference, object.data))
                .collect(),
        )
    }

    fn forget(&self, identity: &[u8]) {
        if let Some(store) = self.store {
            store.forget(&cache_key(self.profile, self.atr, identity));
        }
    }
}

/// A card's cache entry: its profile, its ATR and what identifies its
/// public data (PIV: the whole CHUID object).
fn cache_key(profile: &str, atr: &[u8], identity: &[u8]) -> CacheKey {
    CacheKey::new(&[profile.as_bytes(), atr, identity])
}

/// Reads the keys a lazy first read of the card left out (once per token):
/// token info needs only the first certificate, objects need them all.
fn ensure_all_keys(state: &mut SlotState) -> Result<()> {
    let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
    if token.info.keys_complete {
        return Ok(());
    }
    let from = token.info.key_slots_read;
    let known = token.info.keys.clone();
    let keys = card_operation(state, |app, card| {
        app.read_remaining_keys(card, &known, from)
    })?;
    let token = state.token.as_mut().ok_or(Error::TokenNotPresent)?;
    add_remaining_keys(token, keys);
    Ok(())
}

/// Completes a token's keys with what a later read found (all of them),
/// and stores the now complete public data in the disk cache.
fn add_remaining_keys(token: &mut Token, keys: Vec<crate::profile::KeyInfo>) {
    token.info.keys = keys;
    token.info.keys_complete = true;
    token.objects = token::objects_for_card(token.slot_id, &token.info);
    token.remember();
}

/// The objects this process may see: private ones only after `C_Login`.
fn visible_objects(state: &SlotState) -> impl Iterator<Item = &Object> {
    let logged_in = state.logged_in();
    state
        .token
        .iter()
        .flat_map(|token| token.objects.iter())
        .filter(move |object| logged_in || !object.private)
}

fn find_object(state: &SlotState, handle: CK_OBJECT_HANDLE) -> Result<&Object> {
    visible_objects(state)
        .find(|object| object.handle == handle)
        .ok_or(Error::ObjectHandleInvalid)
}

fn key_of(state: &SlotState, index: usize) -> Result<&crate::profile::KeyInfo> {
    state
        .token
        .as_ref()
        .and_then(|token| token.info.keys.get(index))
        .ok_or(Error::KeyHandleInvalid)
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
