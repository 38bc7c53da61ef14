//! General-purpose functions (PKCS#11 §5.4): initialise, finalise, info.

use crate::abi::{guard, module, run, write_out, MODULE};
use crate::BACKEND_FACTORY;
use cryptoki_sys::*;
use p11card::profile::ProfileSet;
use p11card::transport::pcsc::PcscBackend;
use p11card::{config, Error, Module};
use std::sync::Arc;

/// Checks `CK_C_INITIALIZE_ARGS` (§5.4, `C_Initialize`): the four mutex
/// callbacks come all or none, and `pReserved` is NULL.
///
/// # Safety
/// `args` must be NULL or point to a readable `CK_C_INITIALIZE_ARGS`.
unsafe fn check_init_args(args: *const CK_C_INITIALIZE_ARGS) -> p11card::Result<()> {
    if args.is_null() {
        return Ok(());
    }
    // SAFETY: non-NULL; the caller guarantees it is readable.
    let args = unsafe { args.read_unaligned() };
    let callbacks = [
        args.CreateMutex.is_some(),
        args.DestroyMutex.is_some(),
        args.LockMutex.is_some(),
        args.UnlockMutex.is_some(),
    ];
    if callbacks.iter().any(|&set| set != callbacks[0]) || !args.pReserved.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // Whether or not the application offers its own mutexes, the module's
    // native locks are safe for any threading the application does.
    Ok(())
}

/// `C_Initialize`.
#[no_mangle]
pub unsafe extern "C" fn C_Initialize(pInitArgs: *mut std::ffi::c_void) -> CK_RV {
    run(|| {
        // SAFETY: PKCS#11 says pInitArgs is NULL or a CK_C_INITIALIZE_ARGS.
        unsafe { check_init_args(pInitArgs as *const CK_C_INITIALIZE_ARGS)? };
        let mut slot = MODULE.write().unwrap_or_else(|p| p.into_inner());
        let pid = std::process::id();
        match slot.take() {
            Some((module, owner)) if owner == pid => {
                *slot = Some((module, owner));
                return Err(Error::CryptokiAlreadyInitialized);
            }
            // A child after fork(): the parent's module holds the parent's
            // PC/SC context and card handles; releasing them here would
            // release them for the parent too, so they are left alone.
            Some(inherited) => std::mem::forget(inherited),
            None => {}
        }
        let settings = config::Config::load();
        settings.start_logging();
        let mut profiles = ProfileSet::embedded();
        settings.apply_to(&mut profiles);
        let backend = match BACKEND_FACTORY
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(factory) => factory(),
            None => Box::new(PcscBackend::new()),
        };
        *slot = Some((Arc::new(Module::new(backend, profiles)), pid));
        Ok(())
    })
}

/// `C_Finalize`.
#[no_mangle]
pub unsafe extern "C" fn C_Finalize(pReserved: *mut std::ffi::c_void) -> CK_RV {
    run(|| {
        if !pReserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let current = module()?;
        // Wake threads blocked in C_WaitForSlotEvent first; they hold only
        // their own reference to the module.
        current.shutdown();
        current.close_everything();
        *MODULE.write().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    })
}

fn get_info(pInfo: *mut CK_INFO, version: CK_VERSION) -> CK_RV {
    run(|| {
        let info = module()?.info(version);
        // SAFETY: PKCS#11 says pInfo points to a CK_INFO; NULL is checked.
        unsafe { write_out(pInfo, info) }
    })
}

/// `C_GetInfo` (2.40 interface).
#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(pInfo: *mut CK_INFO) -> CK_RV {
    get_info(
        pInfo,
        CK_VERSION {
            major: 2,
            minor: 40,
        },
    )
}

/// `C_GetInfo` as the 3.0 interface reports it.
pub(crate) unsafe extern "C" fn get_info_v3(pInfo: *mut CK_INFO) -> CK_RV {
    get_info(pInfo, CK_VERSION { major: 3, minor: 0 })
}

/// `C_GetFunctionStatus`: legacy, always `CKR_FUNCTION_NOT_PARALLEL`.
pub(crate) unsafe extern "C" fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        module()?;
        let _ = hSession;
        Ok(CKR_FUNCTION_NOT_PARALLEL)
    })
}

/// `C_CancelFunction`: legacy, always `CKR_FUNCTION_NOT_PARALLEL`.
pub(crate) unsafe extern "C" fn C_CancelFunction(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        module()?;
        let _ = hSession;
        Ok(CKR_FUNCTION_NOT_PARALLEL)
    })
}
