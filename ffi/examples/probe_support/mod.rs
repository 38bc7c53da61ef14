//! What `rss_probe` and `login_sign_probe` share: any PKCS#11 module
//! (p11card, OpenSC, ykcs11) loaded with `dlopen` and called through its
//! function list, as a C application does, plus the card-side APDU count
//! from a virtual card's trace (`../shared/virtpiv`, `apdu.log`), which does
//! not depend on the module.
#![allow(dead_code)]

use cryptoki_sys::*;
use std::ffi::c_void;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::ptr;

pub type Res<T> = Result<T, String>;

/// A loaded module: the library stays open while the function list is used.
pub struct Module {
    list: *const CK_FUNCTION_LIST,
    _lib: libloading::Library,
}

/// Calls a function-list entry of `$m` (a [`Module`]), giving the `CK_RV`.
macro_rules! p11 {
    ($m:expr, $name:ident ( $($arg:expr),* $(,)? )) => {{
        let list = $m.list();
        match list.$name {
            // SAFETY: the caller passes pointers to live memory of the sizes
            // the PKCS#11 specification gives for this call.
            Some(function) => unsafe { function($($arg),*) },
            None => cryptoki_sys::CKR_FUNCTION_NOT_SUPPORTED,
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use p11;

/// `Err` with the call's name unless `rv` is `CKR_OK`.
pub fn check(rv: CK_RV, what: &str) -> Res<()> {
    if rv == CKR_OK {
        Ok(())
    } else {
        Err(format!("{what}: rv {rv:#x}"))
    }
}

impl Module {
    /// `dlopen` + `C_GetFunctionList`.
    pub fn load(path: &Path) -> Res<Module> {
        // SAFETY: loading a PKCS#11 module runs its initialisers, which is
        // what every PKCS#11 application does.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: the symbol has the C_GetFunctionList signature (PKCS#11 §5.2).
        let rv = unsafe {
            let get: libloading::Symbol<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
                lib.get(b"C_GetFunctionList\0")
                    .map_err(|e| format!("no C_GetFunctionList: {e}"))?;
            get(&mut list)
        };
        check(rv, "C_GetFunctionList")?;
        if list.is_null() {
            return Err("C_GetFunctionList gave NULL".into());
        }
        Ok(Module { list, _lib: lib })
    }

    pub fn list(&self) -> &CK_FUNCTION_LIST {
        // SAFETY: the module's static function list, valid while it is loaded.
        unsafe { &*self.list }
    }

    /// `C_Initialize` with `CKF_OS_LOCKING_OK`.
    pub fn initialize(&self) -> Res<()> {
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: CKF_OS_LOCKING_OK,
            pReserved: ptr::null_mut(),
        };
        check(
            p11!(
                self,
                C_Initialize(&mut args as *mut CK_C_INITIALIZE_ARGS as *mut c_void)
            ),
            "C_Initialize",
        )
    }

    pub fn finalize(&self) {
        p11!(self, C_Finalize(ptr::null_mut()));
    }

    /// The slots with a token (`C_GetSlotList(CK_TRUE)`, two calls).
    pub fn token_slots(&self) -> Res<Vec<CK_SLOT_ID>> {
        let mut count: CK_ULONG = 0;
        check(
            p11!(self, C_GetSlotList(CK_TRUE, ptr::null_mut(), &mut count)),
            "C_GetSlotList",
        )?;
        let mut slots = vec![0; count as usize];
        check(
            p11!(self, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut count)),
            "C_GetSlotList",
        )?;
        slots.truncate(count as usize);
        Ok(slots)
    }

    /// The token's label, trimmed (`C_GetTokenInfo`).
    pub fn token_label(&self, slot: CK_SLOT_ID) -> Res<String> {
        // SAFETY: CK_TOKEN_INFO is plain data; all zeroes is a valid value.
        let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
        check(
            p11!(self, C_GetTokenInfo(slot, &mut info)),
            "C_GetTokenInfo",
        )?;
        Ok(String::from_utf8_lossy(&info.label).trim_end().to_owned())
    }

    pub fn open_session(&self, slot: CK_SLOT_ID) -> Res<CK_SESSION_HANDLE> {
        let mut session = 0;
        check(
            p11!(
                self,
                C_OpenSession(
                    slot,
                    CKF_SERIAL_SESSION,
                    ptr::null_mut(),
                    None,
                    &mut session
                )
            ),
            "C_OpenSession",
        )?;
        Ok(session)
    }

    /// `C_Login`; `CKR_USER_ALREADY_LOGGED_IN` counts as success.
    pub fn login(&self, session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> Res<()> {
        let rv = p11!(
            self,
            C_Login(
                session,
                user,
                pin.as_ptr() as *mut u8,
                pin.len() as CK_ULONG
            )
        );
        if rv == CKR_USER_ALREADY_LOGGED_IN {
            return Ok(());
        }
        check(rv, "C_Login")
    }

    /// Objects matching `template` (`(type, value)` pairs; empty: all).
    pub fn find(
        &self,
        session: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Res<Vec<CK_OBJECT_HANDLE>> {
        let mut attrs: Vec<CK_ATTRIBUTE> = template
            .iter()
            .map(|(kind, value)| CK_ATTRIBUTE {
                type_: *kind,
                pValue: value.as_ptr() as *mut c_void,
                ulValueLen: value.len() as CK_ULONG,
            })
            .collect();
        let attrs_ptr = if attrs.is_empty() {
            ptr::null_mut()
        } else {
            attrs.as_mut_ptr()
        };
        check(
            p11!(
                self,
                C_FindObjectsInit(session, attrs_ptr, attrs.len() as CK_ULONG)
            ),
            "C_FindObjectsInit",
        )?;
        let mut found = Vec::new();
        loop {
            let mut batch = [0 as CK_OBJECT_HANDLE; 32];
            let mut count: CK_ULONG = 0;
            let rv = p11!(
                self,
                C_FindObjects(session, batch.as_mut_ptr(), 32, &mut count)
            );
            if rv != CKR_OK {
                p11!(self, C_FindObjectsFinal(session));
                return Err(format!("C_FindObjects: rv {rv:#x}"));
            }
            found.extend_from_slice(&batch[..count as usize]);
            if count == 0 {
                break;
            }
        }
        check(
            p11!(self, C_FindObjectsFinal(session)),
            "C_FindObjectsFinal",
        )?;
        Ok(found)
    }

    /// One attribute's value (two calls), `None` if the object has none.
    pub fn attribute(
        &self,
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        kind: CK_ATTRIBUTE_TYPE,
    ) -> Option<Vec<u8>> {
        let mut attr = CK_ATTRIBUTE {
            type_: kind,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        };
        if p11!(self, C_GetAttributeValue(session, object, &mut attr, 1)) != CKR_OK
            || attr.ulValueLen == CK_UNAVAILABLE_INFORMATION
        {
            return None;
        }
        let mut value = vec![0u8; attr.ulValueLen as usize];
        attr.pValue = value.as_mut_ptr() as *mut c_void;
        if p11!(self, C_GetAttributeValue(session, object, &mut attr, 1)) != CKR_OK {
            return None;
        }
        value.truncate(attr.ulValueLen as usize);
        Some(value)
    }

    /// What `pkcs11-tool -O` reads: every object with its class, ID,
    /// label and value (certificates, data) or key attributes. Returns the
    /// number of objects.
    pub fn list_objects(&self, session: CK_SESSION_HANDLE) -> Res<usize> {
        let objects = self.find(session, &[])?;
        for object in &objects {
            for kind in [
                CKA_CLASS,
                CKA_ID,
                CKA_LABEL,
                CKA_VALUE,
                CKA_KEY_TYPE,
                CKA_MODULUS,
                CKA_EC_POINT,
                CKA_EC_PARAMS,
            ] {
                std::hint::black_box(self.attribute(session, *object, kind));
            }
        }
        Ok(objects.len())
    }
}

/// `CK_ULONG` attribute value bytes.
pub fn ulong(value: CK_ULONG) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

/// `VmRSS` (or another `/proc/self/status` field), in KiB.
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?
                .strip_prefix(':')?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Counts the lines with ` APDU ` that a virtual card's trace gained,
/// reading only what was appended since the last call.
pub struct TraceCounter {
    path: PathBuf,
    offset: u64,
    total: u64,
    partial: Vec<u8>,
}

impl TraceCounter {
    pub fn new(path: &Path) -> Res<TraceCounter> {
        let mut counter = TraceCounter {
            path: path.to_owned(),
            offset: 0,
            total: 0,
            partial: Vec::new(),
        };
        counter.count()?;
        Ok(counter)
    }

    /// The number of APDU lines in the trace so far.
    pub fn count(&mut self) -> Res<u64> {
        let mut file = std::fs::File::open(&self.path)
            .map_err(|e| format!("APDU trace {}: {e}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| e.to_string())?;
        let mut fresh = Vec::new();
        file.read_to_end(&mut fresh).map_err(|e| e.to_string())?;
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        if let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') {
            let complete: Vec<u8> = self.partial.drain(..=end).collect();
            self.total += complete
                .split(|&b| b == b'\n')
                .filter(|line| line.windows(6).any(|w| w == b" APDU "))
                .count() as u64;
        }
        Ok(self.total)
    }
}
