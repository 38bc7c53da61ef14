//! A small PKCS#11 consumer for the C-ABI tests: it calls the module through
//! its function list exactly as a C application would, against simulated
//! cards installed with `p11card_pkcs11::use_backend`.
#![allow(dead_code)]

use cryptoki_sys::*;
use p11card_cardsim::{SimBackend, SimCard, SimPivCard};
use std::ptr;
use std::sync::{Mutex, MutexGuard};

/// The module is process-global: tests in one binary take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// The 2.40 function list.
pub fn f() -> &'static CK_FUNCTION_LIST {
    p11card_pkcs11::function_list()
}

/// Calls a function-list entry.
#[macro_export]
macro_rules! ck {
    ($name:ident ( $($arg:expr),* $(,)? )) => {
        // SAFETY: test code passes valid pointers unless a test says otherwise.
        unsafe { (common::f().$name.expect(stringify!($name)))($($arg),*) }
    };
}

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
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let for_module = backend.clone();
        p11card_pkcs11::use_backend(move || Box::new(for_module.clone()));
        let rv = unsafe { (f().C_Initialize.unwrap())(ptr::null_mut()) };
        assert_eq!(rv, CKR_OK, "C_Initialize");
        Harness {
            backend,
            _serial: serial,
        }
    }

    /// The slot IDs with a token.
    pub fn slots(&self) -> Vec<CK_SLOT_ID> {
        let mut count: CK_ULONG = 0;
        assert_eq!(
            unsafe { (f().C_GetSlotList.unwrap())(CK_TRUE, ptr::null_mut(), &mut count) },
            CKR_OK
        );
        let mut slots = vec![0; count as usize];
        assert_eq!(
            unsafe { (f().C_GetSlotList.unwrap())(CK_TRUE, slots.as_mut_ptr(), &mut count) },
            CKR_OK
        );
        slots.truncate(count as usize);
        slots
    }

    /// Opens a read-only session on the first slot with a token.
    pub fn session(&self) -> CK_SESSION_HANDLE {
        let slot = self.slots()[0];
        open_session(slot, CKF_SERIAL_SESSION)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        unsafe { (f().C_Finalize.unwrap())(ptr::null_mut()) };
    }
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

/// The one object of `class` with `CKA_ID` = `id`.
pub fn object(session: CK_SESSION_HANDLE, class: CK_OBJECT_CLASS, id: u8) -> CK_OBJECT_HANDLE {
    let found = find(session, &[(CKA_CLASS, ulong(class)), (CKA_ID, vec![id])]);
    assert_eq!(found.len(), 1, "objects of class {class} with id {id:02x}");
    found[0]
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

/// A mechanism without parameters.
pub fn mechanism(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// Signs `data` in one call (after a length query).
pub fn sign(
    session: CK_SESSION_HANDLE,
    mechanism: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    unsafe {
        let rv = (f().C_SignInit.unwrap())(session, mechanism, key);
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut len = 0;
        let rv = (f().C_Sign.unwrap())(
            session,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            ptr::null_mut(),
            &mut len,
        );
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut signature = vec![0u8; len as usize];
        let rv = (f().C_Sign.unwrap())(
            session,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            signature.as_mut_ptr(),
            &mut len,
        );
        if rv != CKR_OK {
            return Err(rv);
        }
        signature.truncate(len as usize);
        Ok(signature)
    }
}
