//! Session management and login (PKCS#11 §5.6).

use crate::abi::{input, module, run, write_out};
use cryptoki_sys::*;
use p11card::Error;

/// `C_OpenSession`. Notification callbacks are not used.
#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    pApplication: *mut std::ffi::c_void,
    Notify: CK_NOTIFY,
    phSession: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        let _ = (pApplication, Notify);
        if phSession.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = module.open_session(slotID, flags)?;
        // SAFETY: phSession is non-NULL and points to a CK_SESSION_HANDLE.
        unsafe { write_out(phSession, handle) }
    })
}

/// `C_CloseSession`.
#[no_mangle]
pub unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    run(|| module()?.close_session(hSession))
}

/// `C_CloseAllSessions`.
#[no_mangle]
pub unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    run(|| module()?.close_all_sessions(slotID))
}

/// `C_GetSessionInfo`.
#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: *mut CK_SESSION_INFO,
) -> CK_RV {
    run(|| {
        let module = module()?;
        if pInfo.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let info = module.session_info(hSession)?;
        // SAFETY: pInfo is non-NULL and points to a CK_SESSION_INFO.
        unsafe { write_out(pInfo, info) }
    })
}

/// `C_Login`.
#[no_mangle]
pub unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        let pin = if pPin.is_null() && ulPinLen == 0 {
            None
        } else {
            // SAFETY: pPin covers ulPinLen bytes, per PKCS#11.
            Some(unsafe { input(pPin, ulPinLen)? })
        };
        module.login(hSession, userType, pin)
    })
}

/// `C_LoginUser` (3.0): PIV has no user names, so one is refused.
pub(crate) unsafe extern "C" fn C_LoginUser(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    pUsername: *mut CK_UTF8CHAR,
    ulUsernameLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pUsername covers ulUsernameLen bytes, per PKCS#11.
        let name = unsafe { input(pUsername, ulUsernameLen)? };
        if !name.is_empty() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: pPin covers ulPinLen bytes, per PKCS#11.
        let pin = unsafe { input(pPin, ulPinLen)? };
        module.login(hSession, userType, Some(pin))
    })
}

/// `C_Logout`.
#[no_mangle]
pub unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    run(|| module()?.logout(hSession))
}

/// `C_SessionCancel` (3.0).
pub(crate) unsafe extern "C" fn C_SessionCancel(
    hSession: CK_SESSION_HANDLE,
    flags: CK_FLAGS,
) -> CK_RV {
    run(|| module()?.session_cancel(hSession, flags))
}

/// `C_SetPIN`: changes the user PIN (read/write session).
#[no_mangle]
pub unsafe extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: *mut CK_UTF8CHAR,
    ulOldLen: CK_ULONG,
    pNewPin: *mut CK_UTF8CHAR,
    ulNewLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // NULL PINs: both typed on the reader's PIN pad (PKCS#11 §5.6).
        let pin_pad = |pin: *mut CK_UTF8CHAR, len: CK_ULONG| pin.is_null() && len == 0;
        if pin_pad(pOldPin, ulOldLen) && pin_pad(pNewPin, ulNewLen) {
            return module.set_pin(hSession, None, None);
        }
        // SAFETY: both PINs cover their lengths, per PKCS#11.
        let (old, new) = unsafe { (input(pOldPin, ulOldLen)?, input(pNewPin, ulNewLen)?) };
        module.set_pin(hSession, Some(old), Some(new))
    })
}

/// `C_InitPIN`: after `C_Login(CKU_SO, unblock code)`, sets a new user PIN
/// and unblocks it.
#[no_mangle]
pub unsafe extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pPin covers ulPinLen bytes, per PKCS#11.
        let pin = unsafe { input(pPin, ulPinLen)? };
        module.init_pin(hSession, pin)
    })
}
