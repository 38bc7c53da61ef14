//! A small PKCS#11 consumer for the C-ABI tests: it calls the module through
//! its function list exactly as a C application would, against simulated
//! cards installed with `p11card_pkcs11::use_backend`.
//!
//! What lives here:
//! - [`Harness`]: an initialised module over simulated readers (one test at
//!   a time per test binary, since the module is process-global), with or
//!   without a disk cache, restartable as "another process" would see the
//!   card; and [`Uninitialized`] for tests of `C_Initialize` itself;
//! - [`Tripwire`]: arms one of the simulated card's one-shot faults just
//!   before the module sends a chosen command (e.g. the first GENERAL
//!   AUTHENTICATE), since the card's own switches fire on the *next* APDU;
//! - thin wrappers over the C calls (`find`, `attribute`, `sign`, …) that
//!   return `Result<_, CK_RV>` so tests read like the spec;
//! - [`Mech`], a `CK_MECHANISM` that owns its parameter;
//! - [`check`], verification with RustCrypto against the key the simulated
//!   card holds, independent of the module.
#![allow(dead_code, unused_macros)]

use cryptoki_sys::*;
use p11card::cache::CacheStore;
use p11card::transport::{CardTransport, ReaderBackend, ReaderStatus, Transmit, TransportError};
use p11card_cardsim::{
    Misbehaviour, SimBackend, SimCard, SimPivCard, SimPublicKey, Slot, DEFAULT_READER,
};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The default card's PIN.
pub const PIN: &str = "123456";

/// The module is process-global: tests in one binary take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The 2.40 function list.
pub fn f() -> &'static CK_FUNCTION_LIST {
    p11card_pkcs11::function_list()
}

/// The 3.0 function list.
pub fn f3() -> &'static CK_FUNCTION_LIST_3_0 {
    p11card_pkcs11::function_list_3_0()
}

/// Calls a 2.40 function-list entry. The arguments are evaluated inside the
/// `unsafe` block on purpose: like a C caller, tests hand the module raw
/// pointers, sometimes invalid ones. (Test files take the macros with
/// `#[macro_use] mod common;`.)
macro_rules! ck {
    ($name:ident ( $($arg:expr),* $(,)? )) => {
        // SAFETY: test code passes valid pointers unless a test says otherwise.
        unsafe { (common::f().$name.expect(stringify!($name)))($($arg),*) }
    };
}

/// Calls a 3.0 function-list entry (as `ck!`).
macro_rules! ck3 {
    ($name:ident ( $($arg:expr),* $(,)? )) => {
        // SAFETY: test code passes valid pointers unless a test says otherwise.
        unsafe { (common::f3().$name.expect(stringify!($name)))($($arg),*) }
    };
}

// ----- the module under test ---------------------------------------------

/// An initialised module over simulated readers; finalises on drop.
pub struct Harness {
    pub backend: SimBackend,
    _serial: MutexGuard<'static, ()>,
}

impl Harness {
    /// One reader holding `card`.
    pub fn with_card(card: SimPivCard) -> (Harness, SimCard) {
        let (backend, handle) = SimBackend::with_card(card);
        (Harness::with_backend(backend), handle)
    }

    /// The default simulated card in one reader.
    pub fn new() -> (Harness, SimCard) {
        Harness::with_card(SimPivCard::new())
    }

    /// Any backend.
    pub fn with_backend(backend: SimBackend) -> Harness {
        let for_module = backend.clone();
        Harness::start(backend, move || Box::new(for_module.clone()))
    }

    /// One reader holding `card`, behind a backend whose reader states
    /// stand for `window` (as PC/SC's do); the counter counts the module's
    /// questions about the reader's state.
    pub fn with_status_window(
        card: SimPivCard,
        window: std::time::Duration,
    ) -> (Harness, SimCard, Arc<std::sync::atomic::AtomicUsize>) {
        let (backend, handle) = SimBackend::with_card(card);
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let windowed = WindowedBackend {
            inner: backend.clone(),
            window,
            asked: Arc::clone(&asked),
        };
        let factory = move || Box::new(windowed.clone()) as Box<dyn ReaderBackend>;
        (Harness::start(backend, factory), handle, asked)
    }

    /// One reader holding `card`, and a module that keeps the public data
    /// of cards in the disk cache `store` (given inside this binary's turn,
    /// and taken away again when the harness drops).
    pub fn with_cache(card: impl Into<SimCard>, store: CacheStore) -> (Harness, SimCard) {
        let (backend, handle) = SimBackend::with_card(card);
        let for_module = backend.clone();
        let factory = move || Box::new(for_module.clone()) as Box<dyn ReaderBackend>;
        (Harness::start_with(backend, Some(store), factory), handle)
    }

    /// What the next process to load the module would see: `C_Finalize`,
    /// then `C_Initialize` over the same readers and disk cache, so that
    /// nothing but the cards and the cache carries over.
    pub fn restart(&self) {
        assert_eq!(
            unsafe { (f().C_Finalize.unwrap())(ptr::null_mut()) },
            CKR_OK,
            "C_Finalize"
        );
        let rv = unsafe { (f().C_Initialize.unwrap())(ptr::null_mut()) };
        assert_eq!(rv, CKR_OK, "C_Initialize");
    }

    /// Readers named as given, each holding a card or empty; returns the
    /// card handles in the same order.
    pub fn with_readers(readers: &[(&str, Option<SimPivCard>)]) -> (Harness, Vec<Option<SimCard>>) {
        let backend = SimBackend::with_readers(readers.iter().map(|(name, _)| *name));
        let cards = readers
            .iter()
            .map(|(name, card)| card.clone().map(|card| backend.insert(name, card)))
            .collect();
        (Harness::with_backend(backend), cards)
    }

    /// One reader holding `card`, reached through a [`Tripwire`].
    pub fn with_tripwire(card: impl Into<SimCard>) -> (Harness, SimCard, Tripwire) {
        let (backend, handle) = SimBackend::with_card(card);
        let wire = Tripwire::default();
        let module_backend = TripwireBackend {
            inner: backend.clone(),
            wire: wire.clone(),
        };
        let harness = Harness::start(backend, move || Box::new(module_backend.clone()));
        (harness, handle, wire)
    }

    fn start(
        backend: SimBackend,
        factory: impl Fn() -> Box<dyn ReaderBackend> + Send + 'static,
    ) -> Harness {
        Harness::start_with(backend, None, factory)
    }

    fn start_with(
        backend: SimBackend,
        cache: Option<CacheStore>,
        factory: impl Fn() -> Box<dyn ReaderBackend> + Send + 'static,
    ) -> Harness {
        let serial = serial();
        p11card_pkcs11::use_backend(factory);
        p11card_pkcs11::use_cache(cache);
        let rv = unsafe { (f().C_Initialize.unwrap())(ptr::null_mut()) };
        assert_eq!(rv, CKR_OK, "C_Initialize");
        Harness {
            backend,
            _serial: serial,
        }
    }

    /// The slot IDs with a token.
    pub fn slots(&self) -> Vec<CK_SLOT_ID> {
        slot_list(true)
    }

    /// The first slot with a token.
    pub fn slot(&self) -> CK_SLOT_ID {
        self.slots()[0]
    }

    /// Opens a read-only session on the first slot with a token.
    pub fn session(&self) -> CK_SESSION_HANDLE {
        open_session(self.slot(), CKF_SERIAL_SESSION)
    }

    /// A read-only session, logged in as the user with the default PIN
    /// (or already logged in through another session: login is per token).
    pub fn user_session(&self) -> CK_SESSION_HANDLE {
        let session = self.session();
        let rv = login(session, CKU_USER, PIN);
        assert!(
            rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN,
            "C_Login(CKU_USER): {rv:#x}"
        );
        session
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        unsafe { (f().C_Finalize.unwrap())(ptr::null_mut()) };
        p11card_pkcs11::use_cache(None);
    }
}

/// The module with nothing initialised, for tests of `C_Initialize` and of
/// calls made before it. Installs a backend with the default card in one
/// reader, and finalises on drop whatever the test initialised.
pub struct Uninitialized {
    pub card: SimCard,
    _serial: MutexGuard<'static, ()>,
}

impl Uninitialized {
    pub fn new() -> Uninitialized {
        let serial = serial();
        let (backend, card) = SimBackend::with_card(SimPivCard::new());
        p11card_pkcs11::use_backend(move || Box::new(backend.clone()));
        Uninitialized {
            card,
            _serial: serial,
        }
    }
}

impl Drop for Uninitialized {
    fn drop(&mut self) {
        unsafe { (f().C_Finalize.unwrap())(ptr::null_mut()) };
    }
}

// ----- faults at a chosen command -----------------------------------------

type Matcher = Box<dyn Fn(&[u8]) -> bool + Send>;
type Fault = Box<dyn FnOnce(&mut Misbehaviour) + Send>;

/// Sets one of the card's one-shot misbehaviours (`truncate_next`,
/// `garbage_next`, …) just before the module sends the first command that a
/// matcher picks, so the fault hits *that* command's response.
#[derive(Clone, Default)]
pub struct Tripwire {
    armed: Arc<Mutex<Option<(SimCard, Matcher, Fault)>>>,
}

impl Tripwire {
    /// Arms the wire: the next command for which `when` holds gets `fault`.
    pub fn arm(
        &self,
        card: &SimCard,
        when: impl Fn(&[u8]) -> bool + Send + 'static,
        fault: impl FnOnce(&mut Misbehaviour) + Send + 'static,
    ) {
        *self.lock() = Some((card.clone(), Box::new(when), Box::new(fault)));
    }

    /// Whether the armed fault has been set off.
    pub fn fired(&self) -> bool {
        self.lock().is_none()
    }

    fn lock(&self) -> MutexGuard<'_, Option<(SimCard, Matcher, Fault)>> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn before(&self, command: &[u8]) {
        let mut armed = self.lock();
        if armed.as_ref().is_some_and(|(_, when, _)| when(command)) {
            if let Some((card, _, fault)) = armed.take() {
                card.misbehave(fault);
            }
        }
    }
}

/// Matches commands by INS (e.g. `0x87` for GENERAL AUTHENTICATE).
pub fn ins(ins: u8) -> impl Fn(&[u8]) -> bool + Send + 'static {
    move |command| command.get(1) == Some(&ins)
}

/// Matches GET DATA of one data object (`5C 03 <tag>`, SP 800-73-4 Part 2
/// §3.1.2).
pub fn get_data(tag: u32) -> impl Fn(&[u8]) -> bool + Send + 'static {
    move |command| is_get_data(command, tag)
}

/// Whether `command` is GET DATA of the data object `tag`.
pub fn is_get_data(command: &[u8], tag: u32) -> bool {
    let t = tag.to_be_bytes();
    let wanted = [0x5C, 0x03, t[1], t[2], t[3]];
    command.get(1) == Some(&0xCB) && command.get(5..10) == Some(&wanted[..])
}

#[derive(Clone)]
struct TripwireBackend {
    inner: SimBackend,
    wire: Tripwire,
}

impl ReaderBackend for TripwireBackend {
    fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError> {
        self.inner.readers()
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, TransportError> {
        let inner = self.inner.connect(reader)?;
        Ok(Box::new(TripwireTransport {
            inner,
            wire: self.wire.clone(),
        }))
    }
}

struct TripwireTransport {
    inner: Box<dyn CardTransport>,
    wire: Tripwire,
}

impl CardTransport for TripwireTransport {
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }

    fn has_pin_pad(&self) -> bool {
        self.inner.has_pin_pad()
    }

    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Transmit),
    ) -> Result<(), TransportError> {
        let wire = self.wire.clone();
        self.inner.transaction(&mut |link| {
            body(&mut TripwireLink { link, wire: &wire });
        })
    }
}

struct TripwireLink<'a> {
    link: &'a mut dyn Transmit,
    wire: &'a Tripwire,
}

impl Transmit for TripwireLink<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.wire.before(command);
        self.link.transmit(command)
    }

    fn extended_length(&self) -> Option<bool> {
        self.link.extended_length()
    }

    fn note_extended_length(&mut self, works: bool) {
        self.link.note_extended_length(works);
    }

    fn verify_pin_pad(
        &mut self,
        request: &p11card::transport::PinPadVerify,
    ) -> Result<Vec<u8>, TransportError> {
        self.link.verify_pin_pad(request)
    }
}

// ----- slots, tokens, sessions --------------------------------------------

/// `C_GetSlotList` with the two-call convention.
pub fn slot_list(token_present: bool) -> Vec<CK_SLOT_ID> {
    let present = if token_present { CK_TRUE } else { CK_FALSE };
    let mut count: CK_ULONG = 0;
    assert_eq!(
        unsafe { (f().C_GetSlotList.unwrap())(present, ptr::null_mut(), &mut count) },
        CKR_OK
    );
    let mut slots = vec![0; count as usize];
    assert_eq!(
        unsafe { (f().C_GetSlotList.unwrap())(present, slots.as_mut_ptr(), &mut count) },
        CKR_OK
    );
    slots.truncate(count as usize);
    slots
}

pub fn slot_info(slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO, CK_RV> {
    let mut info = unsafe { std::mem::zeroed::<CK_SLOT_INFO>() };
    match unsafe { (f().C_GetSlotInfo.unwrap())(slot, &mut info) } {
        CKR_OK => Ok(info),
        rv => Err(rv),
    }
}

pub fn token_info(slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO, CK_RV> {
    let mut info = unsafe { std::mem::zeroed::<CK_TOKEN_INFO>() };
    match unsafe { (f().C_GetTokenInfo.unwrap())(slot, &mut info) } {
        CKR_OK => Ok(info),
        rv => Err(rv),
    }
}

pub fn session_info(session: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO, CK_RV> {
    let mut info = unsafe { std::mem::zeroed::<CK_SESSION_INFO>() };
    match unsafe { (f().C_GetSessionInfo.unwrap())(session, &mut info) } {
        CKR_OK => Ok(info),
        rv => Err(rv),
    }
}

/// The token flags of `slot`.
pub fn token_flags(slot: CK_SLOT_ID) -> CK_FLAGS {
    token_info(slot).expect("C_GetTokenInfo").flags
}

pub fn open_session(slot: CK_SLOT_ID, flags: CK_FLAGS) -> CK_SESSION_HANDLE {
    let mut session = 0;
    let rv =
        unsafe { (f().C_OpenSession.unwrap())(slot, flags, ptr::null_mut(), None, &mut session) };
    assert_eq!(rv, CKR_OK, "C_OpenSession");
    session
}

pub fn login(session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> CK_RV {
    unsafe {
        (f().C_Login.unwrap())(
            session,
            user,
            pin.as_ptr() as *mut u8,
            pin.len() as CK_ULONG,
        )
    }
}

/// A blank-padded fixed-length text field, as PKCS#11 info structures hold
/// them (§3.2: "padded with the blank character (' ')", not NUL-terminated).
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [b' '; N];
    field[..text.len()].copy_from_slice(text.as_bytes());
    field
}

/// Asserts a text field is UTF-8, blank-padded and holds no NUL.
pub fn assert_blank_padded(field: &[u8], what: &str) {
    assert!(!field.contains(&0), "{what} contains NUL: {field:?}");
    assert!(std::str::from_utf8(field).is_ok(), "{what} is not UTF-8");
}

// ----- objects --------------------------------------------------------------

/// The `CKA_ID` the module gives each PIV key (OpenSC's numbering).
pub fn key_id(slot: Slot) -> u8 {
    match slot {
        Slot::Authentication => 1,
        Slot::Signature => 2,
        Slot::KeyManagement => 3,
        Slot::CardAuthentication => 4,
    }
}

/// Finds objects matching `(type, value)` pairs.
pub fn find(
    session: CK_SESSION_HANDLE,
    template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> Vec<CK_OBJECT_HANDLE> {
    let mut attrs: Vec<CK_ATTRIBUTE> = template
        .iter()
        .map(|(kind, value)| CK_ATTRIBUTE {
            type_: *kind,
            pValue: value.as_ptr() as *mut _,
            ulValueLen: value.len() as CK_ULONG,
        })
        .collect();
    unsafe {
        assert_eq!(
            (f().C_FindObjectsInit.unwrap())(session, attrs.as_mut_ptr(), attrs.len() as CK_ULONG),
            CKR_OK
        );
        let mut found = vec![0; 64];
        let mut count = 0;
        assert_eq!(
            (f().C_FindObjects.unwrap())(session, found.as_mut_ptr(), 64, &mut count),
            CKR_OK
        );
        assert_eq!((f().C_FindObjectsFinal.unwrap())(session), CKR_OK);
        found.truncate(count as usize);
        found
    }
}

pub fn ulong(value: CK_ULONG) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

/// Reads a `CK_ULONG` attribute value.
pub fn as_ulong(value: &[u8]) -> CK_ULONG {
    CK_ULONG::from_ne_bytes(value.try_into().expect("a CK_ULONG"))
}

/// Reads a `CK_BBOOL` attribute value.
pub fn as_bool(value: &[u8]) -> bool {
    match value {
        [CK_FALSE] => false,
        [CK_TRUE] => true,
        other => panic!("not a CK_BBOOL: {other:?}"),
    }
}

/// The one object of `class` with `CKA_ID` = `id`.
pub fn object(session: CK_SESSION_HANDLE, class: CK_OBJECT_CLASS, id: u8) -> CK_OBJECT_HANDLE {
    let found = find(session, &[(CKA_CLASS, ulong(class)), (CKA_ID, vec![id])]);
    assert_eq!(found.len(), 1, "objects of class {class} with id {id:02x}");
    found[0]
}

/// The private key of a PIV slot.
pub fn private_key(session: CK_SESSION_HANDLE, slot: Slot) -> CK_OBJECT_HANDLE {
    object(session, CKO_PRIVATE_KEY, key_id(slot))
}

/// The public key of a PIV slot.
pub fn public_key(session: CK_SESSION_HANDLE, slot: Slot) -> CK_OBJECT_HANDLE {
    object(session, CKO_PUBLIC_KEY, key_id(slot))
}

/// Reads one attribute with the two-call convention.
pub fn attribute(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    kind: CK_ATTRIBUTE_TYPE,
) -> Result<Vec<u8>, CK_RV> {
    let mut attr = CK_ATTRIBUTE {
        type_: kind,
        pValue: ptr::null_mut(),
        ulValueLen: 0,
    };
    let rv = unsafe { (f().C_GetAttributeValue.unwrap())(session, object, &mut attr, 1) };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut value = vec![0u8; attr.ulValueLen as usize];
    attr.pValue = value.as_mut_ptr() as *mut _;
    let rv = unsafe { (f().C_GetAttributeValue.unwrap())(session, object, &mut attr, 1) };
    if rv != CKR_OK {
        return Err(rv);
    }
    value.truncate(attr.ulValueLen as usize);
    Ok(value)
}

// ----- the simulated card's side -------------------------------------------

/// The public key the simulated card holds in `slot`.
pub fn card_public_key(card: &SimCard, slot: Slot) -> SimPublicKey {
    card.with(|c| c.public_key(slot))
        .unwrap_or_else(|| panic!("the card has no key in {slot:?}"))
}

/// The (uncompressed) certificate the simulated card holds in `slot`.
pub fn card_certificate(card: &SimCard, slot: Slot) -> Vec<u8> {
    card.with(|c| c.certificate_der(slot).map(<[u8]>::to_vec))
        .unwrap_or_else(|| panic!("the card has no certificate in {slot:?}"))
}

/// The card's PIN retry counter.
pub fn pin_tries_left(card: &SimCard) -> u8 {
    card.with(|c| c.pin_tries_left())
}

/// The INS bytes of every APDU the card received since its log was cleared.
pub fn instructions(card: &SimCard) -> Vec<u8> {
    card.log().iter().map(|entry| entry.ins()).collect()
}

/// Blocks the PIN of `card` by sending wrong PINs straight to the applet
/// (as another program would have), then powers it off and clears its log.
pub fn block_pin(card: &SimCard) {
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
    ];
    let mut wrong_verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    wrong_verify.extend_from_slice(b"999999\xFF\xFF");
    card.with(|c| {
        c.process(&select);
        while c.pin_tries_left() > 0 {
            c.process(&wrong_verify);
        }
        c.power_on();
        c.clear_log();
    });
}

/// Bytes as spaced upper-case hex, the way the card's transcript prints them.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The default card reader's name.
pub const READER: &str = DEFAULT_READER;

// ----- mechanisms and operations ----------------------------------------------

/// A `CK_MECHANISM` that owns its parameter, so the pointer inside stays
/// valid for as long as the value lives.
pub struct Mech {
    raw: CK_MECHANISM,
    _param: Option<Box<dyn std::any::Any>>,
}

impl Mech {
    /// A mechanism without parameter.
    pub fn new(kind: CK_MECHANISM_TYPE) -> Mech {
        Mech {
            raw: mechanism(kind),
            _param: None,
        }
    }

    /// A mechanism with a NULL parameter pointer but a non-zero length.
    pub fn null_param(kind: CK_MECHANISM_TYPE, len: usize) -> Mech {
        let mut mech = Mech::new(kind);
        mech.raw.ulParameterLen = len as CK_ULONG;
        mech
    }

    /// An RSA-PSS mechanism with `CK_RSA_PKCS_PSS_PARAMS`.
    pub fn pss(kind: CK_MECHANISM_TYPE, hash: Hash, salt_len: usize) -> Mech {
        let mut param = Box::new(CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: hash.ckm(),
            mgf: hash.mgf(),
            sLen: salt_len as CK_ULONG,
        });
        let raw = CK_MECHANISM {
            mechanism: kind,
            pParameter: &mut *param as *mut CK_RSA_PKCS_PSS_PARAMS as *mut _,
            ulParameterLen: std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG,
        };
        Mech {
            raw,
            _param: Some(param),
        }
    }

    /// `CKM_RSA_PKCS_OAEP` with MGF1 over the same hash and a label (empty:
    /// no label).
    pub fn oaep(hash: Hash, label: &[u8]) -> Mech {
        let mut label = label.to_vec();
        let mut param = Box::new(CK_RSA_PKCS_OAEP_PARAMS {
            hashAlg: hash.ckm(),
            mgf: hash.mgf(),
            source: CKZ_DATA_SPECIFIED,
            pSourceData: if label.is_empty() {
                ptr::null_mut()
            } else {
                label.as_mut_ptr() as *mut _
            },
            ulSourceDataLen: label.len() as CK_ULONG,
        });
        let raw = CK_MECHANISM {
            mechanism: CKM_RSA_PKCS_OAEP,
            pParameter: &mut *param as *mut CK_RSA_PKCS_OAEP_PARAMS as *mut _,
            ulParameterLen: std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>() as CK_ULONG,
        };
        Mech {
            raw,
            _param: Some(Box::new((param, label))),
        }
    }

    pub fn raw(&mut self) -> &mut CK_MECHANISM {
        &mut self.raw
    }

    pub fn ptr(&mut self) -> *mut CK_MECHANISM {
        &mut self.raw
    }
}

/// A mechanism without parameters.
pub fn mechanism(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// Runs an output-producing call with the two-call convention (§5.2): a
/// length query with a NULL buffer, then the call with a buffer that size.
pub fn two_call(mut call: impl FnMut(*mut u8, *mut CK_ULONG) -> CK_RV) -> Result<Vec<u8>, CK_RV> {
    let mut len: CK_ULONG = 0;
    let rv = call(ptr::null_mut(), &mut len);
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; len as usize];
    let rv = call(out.as_mut_ptr(), &mut len);
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(len as usize);
    Ok(out)
}

/// Signs `data` in one call (after a length query).
pub fn sign(
    session: CK_SESSION_HANDLE,
    mechanism: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let rv = unsafe { (f().C_SignInit.unwrap())(session, mechanism, key) };
    if rv != CKR_OK {
        return Err(rv);
    }
    sign_more(session, data)
}

/// `C_Sign` on the active signing operation, with the two-call convention.
pub fn sign_more(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
    two_call(|out, len| unsafe {
        (f().C_Sign.unwrap())(
            session,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            out,
            len,
        )
    })
}

/// Signs `parts` with `C_SignUpdate` and `C_SignFinal`.
pub fn sign_parts(
    session: CK_SESSION_HANDLE,
    mech: &mut Mech,
    key: CK_OBJECT_HANDLE,
    parts: &[&[u8]],
) -> Result<Vec<u8>, CK_RV> {
    unsafe {
        let rv = (f().C_SignInit.unwrap())(session, mech.ptr(), key);
        if rv != CKR_OK {
            return Err(rv);
        }
        for part in parts {
            let rv = (f().C_SignUpdate.unwrap())(
                session,
                part.as_ptr() as *mut u8,
                part.len() as CK_ULONG,
            );
            if rv != CKR_OK {
                return Err(rv);
            }
        }
    }
    two_call(|out, len| unsafe { (f().C_SignFinal.unwrap())(session, out, len) })
}

/// `C_VerifyInit` + `C_Verify`.
pub fn verify(
    session: CK_SESSION_HANDLE,
    mech: &mut Mech,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
    signature: &[u8],
) -> CK_RV {
    unsafe {
        let rv = (f().C_VerifyInit.unwrap())(session, mech.ptr(), key);
        if rv != CKR_OK {
            return rv;
        }
        (f().C_Verify.unwrap())(
            session,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            signature.as_ptr() as *mut u8,
            signature.len() as CK_ULONG,
        )
    }
}

/// `C_VerifyInit` + `C_VerifyUpdate`… + `C_VerifyFinal`.
pub fn verify_parts(
    session: CK_SESSION_HANDLE,
    mech: &mut Mech,
    key: CK_OBJECT_HANDLE,
    parts: &[&[u8]],
    signature: &[u8],
) -> CK_RV {
    unsafe {
        let rv = (f().C_VerifyInit.unwrap())(session, mech.ptr(), key);
        if rv != CKR_OK {
            return rv;
        }
        for part in parts {
            let rv = (f().C_VerifyUpdate.unwrap())(
                session,
                part.as_ptr() as *mut u8,
                part.len() as CK_ULONG,
            );
            if rv != CKR_OK {
                return rv;
            }
        }
        (f().C_VerifyFinal.unwrap())(
            session,
            signature.as_ptr() as *mut u8,
            signature.len() as CK_ULONG,
        )
    }
}

/// `C_DeriveKey` with `CKM_ECDH1_DERIVE`, `CKD_NULL` and `public_data`.
pub fn derive(
    session: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
    public_data: &[u8],
    template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut public_data = public_data.to_vec();
    let mut params = CK_ECDH1_DERIVE_PARAMS {
        kdf: CKD_NULL,
        ulSharedDataLen: 0,
        pSharedData: ptr::null_mut(),
        ulPublicDataLen: public_data.len() as CK_ULONG,
        pPublicData: public_data.as_mut_ptr(),
    };
    let mut mech = CK_MECHANISM {
        mechanism: CKM_ECDH1_DERIVE,
        pParameter: &mut params as *mut CK_ECDH1_DERIVE_PARAMS as *mut _,
        ulParameterLen: std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG,
    };
    let mut attrs: Vec<CK_ATTRIBUTE> = template
        .iter()
        .map(|(kind, value)| CK_ATTRIBUTE {
            type_: *kind,
            pValue: value.as_ptr() as *mut _,
            ulValueLen: value.len() as CK_ULONG,
        })
        .collect();
    let mut handle = 0;
    let rv = unsafe {
        (f().C_DeriveKey.unwrap())(
            session,
            &mut mech,
            key,
            attrs.as_mut_ptr(),
            attrs.len() as CK_ULONG,
            &mut handle,
        )
    };
    match rv {
        CKR_OK => Ok(handle),
        rv => Err(rv),
    }
}

/// What pkcs11-tool --derive asks for: a session generic secret, not
/// sensitive, extractable.
pub fn secret_template() -> Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> {
    vec![
        (CKA_TOKEN, vec![CK_FALSE]),
        (CKA_CLASS, ulong(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ulong(CKK_GENERIC_SECRET)),
        (CKA_SENSITIVE, vec![CK_FALSE]),
        (CKA_EXTRACTABLE, vec![CK_TRUE]),
        (CKA_ENCRYPT, vec![CK_TRUE]),
        (CKA_DECRYPT, vec![CK_TRUE]),
    ]
}

/// `C_DecryptInit` + `C_Decrypt` (two-call).
pub fn decrypt(
    session: CK_SESSION_HANDLE,
    mech: &mut Mech,
    key: CK_OBJECT_HANDLE,
    ciphertext: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let rv = unsafe { (f().C_DecryptInit.unwrap())(session, mech.ptr(), key) };
    if rv != CKR_OK {
        return Err(rv);
    }
    two_call(|out, len| unsafe {
        (f().C_Decrypt.unwrap())(
            session,
            ciphertext.as_ptr() as *mut u8,
            ciphertext.len() as CK_ULONG,
            out,
            len,
        )
    })
}

/// `C_EncryptInit` + `C_Encrypt` (two-call).
pub fn encrypt(
    session: CK_SESSION_HANDLE,
    mech: &mut Mech,
    key: CK_OBJECT_HANDLE,
    plaintext: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let rv = unsafe { (f().C_EncryptInit.unwrap())(session, mech.ptr(), key) };
    if rv != CKR_OK {
        return Err(rv);
    }
    two_call(|out, len| unsafe {
        (f().C_Encrypt.unwrap())(
            session,
            plaintext.as_ptr() as *mut u8,
            plaintext.len() as CK_ULONG,
            out,
            len,
        )
    })
}

/// `C_DigestInit` + `C_Digest` (two-call).
pub fn digest(
    session: CK_SESSION_HANDLE,
    kind: CK_MECHANISM_TYPE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let mut mech = Mech::new(kind);
    let rv = unsafe { (f().C_DigestInit.unwrap())(session, mech.ptr()) };
    if rv != CKR_OK {
        return Err(rv);
    }
    two_call(|out, len| unsafe {
        (f().C_Digest.unwrap())(
            session,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            out,
            len,
        )
    })
}

// ----- hashes ---------------------------------------------------------------

/// The SHA family, computed with RustCrypto (independent of the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub const ALL: [Hash; 5] = [
        Hash::Sha1,
        Hash::Sha224,
        Hash::Sha256,
        Hash::Sha384,
        Hash::Sha512,
    ];

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    pub fn len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// The digest mechanism (`CKM_SHA256`, …), also the PSS/OAEP `hashAlg`.
    pub fn ckm(self) -> CK_MECHANISM_TYPE {
        match self {
            Hash::Sha1 => CKM_SHA_1,
            Hash::Sha224 => CKM_SHA224,
            Hash::Sha256 => CKM_SHA256,
            Hash::Sha384 => CKM_SHA384,
            Hash::Sha512 => CKM_SHA512,
        }
    }

    /// MGF1 over this hash.
    pub fn mgf(self) -> CK_RSA_PKCS_MGF_TYPE {
        match self {
            Hash::Sha1 => CKG_MGF1_SHA1,
            Hash::Sha224 => CKG_MGF1_SHA224,
            Hash::Sha256 => CKG_MGF1_SHA256,
            Hash::Sha384 => CKG_MGF1_SHA384,
            Hash::Sha512 => CKG_MGF1_SHA512,
        }
    }

    /// `CKM_SHAx_RSA_PKCS`.
    pub fn rsa_pkcs(self) -> CK_MECHANISM_TYPE {
        match self {
            Hash::Sha1 => CKM_SHA1_RSA_PKCS,
            Hash::Sha224 => CKM_SHA224_RSA_PKCS,
            Hash::Sha256 => CKM_SHA256_RSA_PKCS,
            Hash::Sha384 => CKM_SHA384_RSA_PKCS,
            Hash::Sha512 => CKM_SHA512_RSA_PKCS,
        }
    }

    /// `CKM_SHAx_RSA_PKCS_PSS`.
    pub fn rsa_pss(self) -> CK_MECHANISM_TYPE {
        match self {
            Hash::Sha1 => CKM_SHA1_RSA_PKCS_PSS,
            Hash::Sha224 => CKM_SHA224_RSA_PKCS_PSS,
            Hash::Sha256 => CKM_SHA256_RSA_PKCS_PSS,
            Hash::Sha384 => CKM_SHA384_RSA_PKCS_PSS,
            Hash::Sha512 => CKM_SHA512_RSA_PKCS_PSS,
        }
    }

    /// `CKM_ECDSA_SHAx`.
    pub fn ecdsa(self) -> CK_MECHANISM_TYPE {
        match self {
            Hash::Sha1 => CKM_ECDSA_SHA1,
            Hash::Sha224 => CKM_ECDSA_SHA224,
            Hash::Sha256 => CKM_ECDSA_SHA256,
            Hash::Sha384 => CKM_ECDSA_SHA384,
            Hash::Sha512 => CKM_ECDSA_SHA512,
        }
    }

    /// The DER `DigestInfo` of `hash` (PKCS #1 v2.2 §9.2 note 1), built
    /// from RustCrypto's table of prefixes.
    pub fn digest_info(self, hash: &[u8]) -> Vec<u8> {
        let mut info = check::pkcs1v15(self).prefix.to_vec();
        info.extend_from_slice(hash);
        info
    }
}

/// Verification with RustCrypto against the key the simulated card holds:
/// a signature that passes here is right whatever the module believes.
pub mod check {
    use super::Hash;
    use p11card_cardsim::SimPublicKey;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use rsa::traits::PublicKeyParts;
    use rsa::{BigUint, Oaep, Pkcs1v15Sign, Pss, RsaPublicKey};

    pub fn rsa(public: &SimPublicKey) -> &RsaPublicKey {
        match public {
            SimPublicKey::Rsa(key) => key,
            other => panic!("not an RSA key: {other:?}"),
        }
    }

    pub fn pkcs1v15(hash: Hash) -> Pkcs1v15Sign {
        match hash {
            Hash::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
            Hash::Sha224 => Pkcs1v15Sign::new::<sha2::Sha224>(),
            Hash::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
            Hash::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
            Hash::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }

    /// PSS with MGF1 over the same hash and the given salt length.
    pub fn pss(hash: Hash, salt_len: usize) -> Pss {
        match hash {
            Hash::Sha1 => Pss::new_with_salt::<sha1::Sha1>(salt_len),
            Hash::Sha224 => Pss::new_with_salt::<sha2::Sha224>(salt_len),
            Hash::Sha256 => Pss::new_with_salt::<sha2::Sha256>(salt_len),
            Hash::Sha384 => Pss::new_with_salt::<sha2::Sha384>(salt_len),
            Hash::Sha512 => Pss::new_with_salt::<sha2::Sha512>(salt_len),
        }
    }

    /// OAEP with MGF1 over the same hash; an empty label is no label.
    pub fn oaep(hash: Hash, label: &str) -> Oaep {
        match (hash, label.is_empty()) {
            (Hash::Sha1, true) => Oaep::new::<sha1::Sha1>(),
            (Hash::Sha1, false) => Oaep::new_with_label::<sha1::Sha1, _>(label),
            (Hash::Sha256, true) => Oaep::new::<sha2::Sha256>(),
            (Hash::Sha256, false) => Oaep::new_with_label::<sha2::Sha256, _>(label),
            (Hash::Sha384, true) => Oaep::new::<sha2::Sha384>(),
            (Hash::Sha384, false) => Oaep::new_with_label::<sha2::Sha384, _>(label),
            other => panic!("no OAEP helper for {other:?}"),
        }
    }

    /// RSASSA-PKCS1-v1_5 over `hash` (RFC 8017 §8.2.2).
    pub fn rsa_pkcs1(public: &SimPublicKey, hash_alg: Hash, hash: &[u8], signature: &[u8]) -> bool {
        rsa(public)
            .verify(pkcs1v15(hash_alg), hash, signature)
            .is_ok()
    }

    /// RSASSA-PSS over `hash` with MGF1(same hash) (RFC 8017 §8.1.2).
    pub fn rsa_pss(
        public: &SimPublicKey,
        hash_alg: Hash,
        salt_len: usize,
        hash: &[u8],
        signature: &[u8],
    ) -> bool {
        rsa(public)
            .verify(pss(hash_alg, salt_len), hash, signature)
            .is_ok()
    }

    /// The RSA public operation `s^e mod n`, as `k` bytes.
    pub fn rsa_public_op(public: &SimPublicKey, input: &[u8]) -> Vec<u8> {
        let key = rsa(public);
        let k = key.size();
        let value = BigUint::from_bytes_be(input).modpow(key.e(), key.n());
        let bytes = value.to_bytes_be();
        let mut out = vec![0u8; k - bytes.len()];
        out.extend_from_slice(&bytes);
        out
    }

    /// The ECDSA input from a hash (SEC 1 v2 §4.1.3 step 5, X9.62): the
    /// leftmost field-size bytes, or the hash left-padded with zeros when
    /// it is shorter (the same integer).
    pub fn fit_hash(hash: &[u8], field_len: usize) -> Vec<u8> {
        if hash.len() >= field_len {
            hash[..field_len].to_vec()
        } else {
            let mut out = vec![0u8; field_len - hash.len()];
            out.extend_from_slice(hash);
            out
        }
    }

    /// The curve's field size in bytes.
    pub fn field_len(public: &SimPublicKey) -> usize {
        match public {
            SimPublicKey::P256(_) => 32,
            SimPublicKey::P384(_) => 48,
            other => panic!("not an EC key: {other:?}"),
        }
    }

    /// ECDSA over `hash`, with PKCS#11's `r || s` signature (each half the
    /// signature, big-endian, field-size).
    pub fn ecdsa(public: &SimPublicKey, hash: &[u8], signature: &[u8]) -> bool {
        let input = fit_hash(hash, field_len(public));
        match public {
            SimPublicKey::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_prehash(&input, &sig).is_ok()),
            SimPublicKey::P384(key) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_prehash(&input, &sig).is_ok()),
            SimPublicKey::Rsa(_) => panic!("not an EC key"),
        }
    }

    /// The uncompressed SEC 1 point (`04 || x || y`) of an EC key.
    pub fn ec_point(public: &SimPublicKey) -> Vec<u8> {
        match public {
            SimPublicKey::P256(key) => key.to_encoded_point(false).as_bytes().to_vec(),
            SimPublicKey::P384(key) => key.to_encoded_point(false).as_bytes().to_vec(),
            SimPublicKey::Rsa(_) => panic!("not an EC key"),
        }
    }
}

// ----- real life: slot events, blocked card I/O, time limits (issue 5) -----

/// `C_WaitForSlotEvent(CKF_DONT_BLOCK)`: `Ok(Some(slot))` for an event,
/// `Ok(None)` for `CKR_NO_EVENT`, `Err(rv)` otherwise.
pub fn poll_slot_event() -> Result<Option<CK_SLOT_ID>, CK_RV> {
    let mut slot: CK_SLOT_ID = CK_SLOT_ID::MAX;
    let rv =
        unsafe { (f().C_WaitForSlotEvent.unwrap())(CKF_DONT_BLOCK, &mut slot, ptr::null_mut()) };
    match rv {
        CKR_OK => Ok(Some(slot)),
        CKR_NO_EVENT => Ok(None),
        rv => Err(rv),
    }
}

/// Blocking `C_WaitForSlotEvent(0)`.
pub fn wait_slot_event() -> Result<CK_SLOT_ID, CK_RV> {
    let mut slot: CK_SLOT_ID = CK_SLOT_ID::MAX;
    let rv = unsafe { (f().C_WaitForSlotEvent.unwrap())(0, &mut slot, ptr::null_mut()) };
    match rv {
        CKR_OK => Ok(slot),
        rv => Err(rv),
    }
}

/// Runs `body` on its own thread and gives its result, or `None` if it did
/// not finish within `limit` (the thread is left behind): a test that would
/// otherwise hang on a deadlock fails instead.
pub fn within<T: Send + 'static>(
    limit: std::time::Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    rx.recv_timeout(limit).ok()
}

/// A gate on one reader's card I/O: while closed, every APDU to a card in
/// that reader waits (a slow card, or a card held by a long operation).
#[derive(Clone, Default)]
pub struct Gate {
    inner: Arc<(Mutex<GateState>, std::sync::Condvar)>,
}

#[derive(Default)]
struct GateState {
    closed: bool,
    held: usize,
}

impl Gate {
    fn state(&self) -> MutexGuard<'_, GateState> {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, APDUs wait at the gate.
    pub fn close(&self) {
        self.state().closed = true;
    }

    /// Lets waiting and later APDUs through.
    pub fn open(&self) {
        self.state().closed = false;
        self.inner.1.notify_all();
    }

    /// Waits until an APDU is held at the gate (`false` after `limit`).
    pub fn wait_held(&self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut state = self.state();
        while state.held == 0 {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .inner
                .1
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    fn pass(&self) {
        let mut state = self.state();
        if !state.closed {
            return;
        }
        state.held += 1;
        self.inner.1.notify_all();
        while state.closed {
            state = self.inner.1.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.held -= 1;
    }
}

/// Opens the gate when dropped, so that a failing test does not leave a
/// thread stuck in the module (declare it after the harness).
pub struct OpenOnDrop(pub Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

#[derive(Clone)]
struct GatedBackend {
    inner: SimBackend,
    reader: String,
    gate: Gate,
}

impl ReaderBackend for GatedBackend {
    fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError> {
        self.inner.readers()
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, TransportError> {
        let inner = self.inner.connect(reader)?;
        if reader != self.reader {
            return Ok(inner);
        }
        Ok(Box::new(GatedTransport {
            inner,
            gate: self.gate.clone(),
        }))
    }
}

struct GatedTransport {
    inner: Box<dyn CardTransport>,
    gate: Gate,
}

impl CardTransport for GatedTransport {
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }

    fn has_pin_pad(&self) -> bool {
        self.inner.has_pin_pad()
    }

    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Transmit),
    ) -> Result<(), TransportError> {
        let gate = self.gate.clone();
        self.inner.transaction(&mut |link| {
            body(&mut GatedLink { link, gate: &gate });
        })
    }
}

struct GatedLink<'a> {
    link: &'a mut dyn Transmit,
    gate: &'a Gate,
}

impl Transmit for GatedLink<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.gate.pass();
        self.link.transmit(command)
    }

    fn extended_length(&self) -> Option<bool> {
        self.link.extended_length()
    }

    fn note_extended_length(&mut self, works: bool) {
        self.link.note_extended_length(works);
    }

    fn verify_pin_pad(
        &mut self,
        request: &p11card::transport::PinPadVerify,
    ) -> Result<Vec<u8>, TransportError> {
        self.link.verify_pin_pad(request)
    }
}

impl Harness {
    /// Readers as in [`Harness::with_readers`]; the card I/O of reader
    /// `gated` goes through the returned [`Gate`] (open at first).
    pub fn with_gate(
        readers: &[(&str, Option<SimPivCard>)],
        gated: &str,
    ) -> (Harness, Vec<Option<SimCard>>, Gate) {
        let backend = SimBackend::with_readers(readers.iter().map(|(name, _)| *name));
        let cards = readers
            .iter()
            .map(|(name, card)| card.clone().map(|card| backend.insert(name, card)))
            .collect();
        let gate = Gate::default();
        let module_backend = GatedBackend {
            inner: backend.clone(),
            reader: gated.to_owned(),
            gate: gate.clone(),
        };
        let harness = Harness::start(backend, move || Box::new(module_backend.clone()));
        (harness, cards, gate)
    }
}

/// The SELECT of the PIV application, as another program would send it.
pub const SELECT_PIV: [u8; 14] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
];

/// Verifies the default PIN straight on the card, as another process
/// would (the module is not told), and clears the card's log.
pub fn verify_pin_behind_the_modules_back(card: &SimCard) {
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(b"123456\xFF\xFF");
    card.with(|c| {
        let select = c.process(&SELECT_PIV);
        assert_eq!(select[select.len() - 2..], [0x90, 0x00], "SELECT");
        assert_eq!(c.process(&verify), [0x90, 0x00], "VERIFY");
        assert!(c.pin_verified());
        c.clear_log();
    });
}

/// Whether the card's PIN is verified now.
pub fn card_pin_verified(card: &SimCard) -> bool {
    card.with(|c| c.pin_verified())
}

/// The card's APDU log as a list of commands (`header…` as sent, PINs
/// redacted).
pub fn commands(card: &SimCard) -> Vec<Vec<u8>> {
    card.log().into_iter().map(|entry| entry.command).collect()
}

/// A simulated backend with a reader-state window, counting state queries.
#[derive(Clone)]
struct WindowedBackend {
    inner: SimBackend,
    window: std::time::Duration,
    asked: Arc<std::sync::atomic::AtomicUsize>,
}

impl ReaderBackend for WindowedBackend {
    fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError> {
        self.inner.readers()
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, TransportError> {
        self.inner.connect(reader)
    }

    fn status_reuse(&self) -> std::time::Duration {
        self.window
    }

    fn reader_status(&self, reader: &str) -> Result<Option<ReaderStatus>, TransportError> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.reader_status(reader)
    }
}

/// `C_GetMechanismList` of `slot` (the two-call convention), asserting
/// both calls succeed.
pub fn mechanism_list(slot: CK_SLOT_ID) -> Vec<CK_MECHANISM_TYPE> {
    let mut count: CK_ULONG = 0;
    assert_eq!(
        // SAFETY: a valid out-pointer for the count.
        unsafe { (f().C_GetMechanismList.unwrap())(slot, ptr::null_mut(), &mut count) },
        CKR_OK
    );
    let mut list = vec![0; count as usize];
    assert_eq!(
        // SAFETY: `list` holds `count` entries.
        unsafe { (f().C_GetMechanismList.unwrap())(slot, list.as_mut_ptr(), &mut count) },
        CKR_OK
    );
    list
}
