//! General-purpose functions (PKCS#11 §5.4): initialise, finalise, info.

use crate::abi::{guard, module, run, write_out, MODULE};
use crate::BACKEND_FACTORY;
use cryptoki_sys::*;
use p11card::module::{ExternalLock, ExternalLockFactory};
use p11card::profile::ProfileSet;
use p11card::transport::pcsc::PcscBackend;
use p11card::transport::ReaderBackend;
use p11card::{config, Error, Module};
use std::ffi::c_void;
use std::sync::Arc;

/// The application's mutex callbacks (`CK_C_INITIALIZE_ARGS`).
#[derive(Clone, Copy)]
struct AppMutexFns {
    create: unsafe extern "C" fn(*mut *mut c_void) -> CK_RV,
    destroy: unsafe extern "C" fn(*mut c_void) -> CK_RV,
    lock: unsafe extern "C" fn(*mut c_void) -> CK_RV,
    unlock: unsafe extern "C" fn(*mut c_void) -> CK_RV,
}

/// One mutex made by the application's `CreateMutex`.
struct AppMutex {
    fns: AppMutexFns,
    handle: *mut c_void,
}

// SAFETY: PKCS#11 §5.4 requires the application's mutex objects to be
// usable from any thread; the module only passes the handle back to the
// application's own callbacks.
unsafe impl Send for AppMutex {}
// SAFETY: as above; the callbacks do the synchronisation.
unsafe impl Sync for AppMutex {}

impl ExternalLock for AppMutex {
    fn lock(&self) {
        // SAFETY: handle came from the application's CreateMutex.
        unsafe { (self.fns.lock)(self.handle) };
    }

    fn unlock(&self) {
        // SAFETY: handle came from the application's CreateMutex.
        unsafe { (self.fns.unlock)(self.handle) };
    }
}

impl Drop for AppMutex {
    fn drop(&mut self) {
        // SAFETY: handle came from the application's CreateMutex and is
        // destroyed once.
        unsafe { (self.fns.destroy)(self.handle) };
    }
}

impl AppMutexFns {
    fn factory(self) -> ExternalLockFactory {
        Box::new(move || {
            let mut handle = std::ptr::null_mut();
            // SAFETY: CreateMutex writes a handle through the pointer.
            let rv = unsafe { (self.create)(&mut handle) };
            (rv == CKR_OK)
                .then(|| Box::new(AppMutex { fns: self, handle }) as Box<dyn ExternalLock>)
        })
    }
}

/// Checks `CK_C_INITIALIZE_ARGS` (§5.4, `C_Initialize`): the four mutex
/// callbacks come all or none, and `pReserved` is NULL. Returns the
/// callbacks when the module must use them (given without
/// `CKF_OS_LOCKING_OK`); with the flag, the module's native locks serve.
///
/// # Safety
/// `args` must be NULL or point to a readable `CK_C_INITIALIZE_ARGS`.
unsafe fn check_init_args(
    args: *const CK_C_INITIALIZE_ARGS,
) -> p11card::Result<Option<AppMutexFns>> {
    if args.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL; the caller guarantees it is readable.
    let args = unsafe { args.read_unaligned() };
    if !args.pReserved.is_null() {
        return Err(Error::ArgumentsBad);
    }
    match (
        args.CreateMutex,
        args.DestroyMutex,
        args.LockMutex,
        args.UnlockMutex,
    ) {
        (None, None, None, None) => Ok(None),
        (Some(create), Some(destroy), Some(lock), Some(unlock)) => Ok((args.flags
            & CKF_OS_LOCKING_OK
            == 0)
            .then_some(AppMutexFns {
                create,
                destroy,
                lock,
                unlock,
            })),
        _ => Err(Error::ArgumentsBad),
    }
}

/// `C_Initialize`.
#[no_mangle]
pub unsafe extern "C" fn C_Initialize(pInitArgs: *mut std::ffi::c_void) -> CK_RV {
    run(|| {
        // SAFETY: PKCS#11 says pInitArgs is NULL or a CK_C_INITIALIZE_ARGS.
        let app_mutexes = unsafe { check_init_args(pInitArgs as *const CK_C_INITIALIZE_ARGS)? };
        let mut slot = MODULE.write().unwrap_or_else(|p| p.into_inner());
        let pid = std::process::id();
        match slot.take() {
            Some((module, owner)) if owner == pid => {
                *slot = Some((module, owner));
                return Err(Error::CryptokiAlreadyInitialized);
            }
            // A child after fork(): the parent's module holds the parent's
            // PC/SC context and card handles; releasing them here would
            // release them for the parent too, so they are left alone. Its
            // secrets were wiped right after the fork; again, in case the
            // fork came when a lock was held.
            Some(inherited) => {
                inherited.0.wipe_secrets();
                std::mem::forget(inherited)
            }
            None => {}
        }
        #[cfg(unix)]
        wipe_secrets_in_forked_children();
        // A set-ID caller (su, sudo, login through PAM) gets nothing from
        // the user's environment or files.
        let trust = crate::process_trust();
        let settings = config::Config::load(trust);
        settings.start_logging();
        log::debug!(
            "p11card {} initialised ({trust:?} process)",
            env!("CARGO_PKG_VERSION")
        );
        let mut profiles = ProfileSet::embedded();
        settings.apply_to(&mut profiles);
        // In-process simulators (tests) get a cache only when they ask for
        // one; the user's cache is for real readers.
        let (backend, cache) = match BACKEND_FACTORY
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(factory) => (factory(), crate::simulator_cache()),
            None => (
                Box::new(PcscBackend::new()) as Box<dyn ReaderBackend>,
                settings.cache_store(),
            ),
        };
        let mut module = Module::new(backend, profiles)
            .ignoring_user_consent(settings.pin_cache_ignore_user_consent)
            .with_policy(settings.policy())
            .with_audit(p11card::audit::Audit::open(&settings.audit));
        if let Some(store) = cache {
            module = module.with_cache(store);
        }
        if let Some(fns) = app_mutexes {
            module = module.with_external_locks(fns.factory());
        }
        *slot = Some((Arc::new(module), pid));
        Ok(())
    })
}

/// Has every child this process forks wipe its copy of the module's
/// secrets (the user's PIN, decrypted data) as soon as it starts: a child
/// that never calls into the module, or execs only much later, keeps no
/// copy the parent has long wiped. Registered once per process.
#[cfg(unix)]
fn wipe_secrets_in_forked_children() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a function that takes no arguments and never
        // unwinds. glibc forgets the handler when this library is unloaded.
        unsafe { libc::pthread_atfork(None, None, Some(wipe_inherited_secrets)) };
    });
}

/// The `fork()` child handler: wipes the parent's module's secrets without
/// waiting for a lock (no other thread runs in the child to release one).
#[cfg(unix)]
extern "C" fn wipe_inherited_secrets() {
    let _ = std::panic::catch_unwind(|| {
        if let Ok(slot) = MODULE.try_read() {
            if let Some((module, owner)) = slot.as_ref() {
                if *owner != std::process::id() {
                    module.wipe_secrets();
                }
            }
        }
    });
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
