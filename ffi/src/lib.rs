//! `libp11card_pkcs11`: the PKCS#11 C ABI (2.40 through `C_GetFunctionList`,
//! 3.0 through `C_GetInterfaceList`/`C_GetInterface`) over the `p11card`
//! crate.
//!
//! Every entry point checks its pointers and lengths, catches panics
//! (a caught panic returns `CKR_GENERAL_ERROR`) and converts the crate's
//! errors into `CK_RV` in one place. No APDU is built here.

#![warn(missing_docs)]
#![allow(non_snake_case)]
// Each C_* entry point's safety contract is the one PKCS#11 states for it:
// the caller passes pointers valid for what that function reads and writes.
#![allow(clippy::missing_safety_doc)]

mod abi;
mod crypto_fns;
mod functions;
mod general;
mod object_fns;
mod process_trust;
mod session_fns;
mod slot_fns;
mod unsupported;

pub use functions::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};
pub use process_trust::process_trust;

use p11card::cache::CacheStore;
use p11card::transport::ReaderBackend;
use std::sync::Mutex;

type BackendFactory = Box<dyn Fn() -> Box<dyn ReaderBackend> + Send>;

static BACKEND_FACTORY: Mutex<Option<BackendFactory>> = Mutex::new(None);

/// Makes the next `C_Initialize` use readers from `factory` instead of
/// PC/SC. For tests and simulators that drive the C ABI in-process.
pub fn use_backend(factory: impl Fn() -> Box<dyn ReaderBackend> + Send + 'static) {
    *BACKEND_FACTORY.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(factory));
}

static SIMULATOR_CACHE: Mutex<Option<CacheStore>> = Mutex::new(None);

/// Gives modules initialised over a [`use_backend`] factory a disk cache
/// (none by default, so simulated cards never touch the user's cache).
pub fn use_cache(store: Option<CacheStore>) {
    *SIMULATOR_CACHE.lock().unwrap_or_else(|p| p.into_inner()) = store;
}

fn simulator_cache() -> Option<CacheStore> {
    SIMULATOR_CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Whether the module this process's `C_Initialize` set up, or the one a
/// child inherited from its parent across `fork()`, keeps a user PIN
/// (`None`: no module). For tests of the wiping after `fork()`.
pub fn module_holds_secrets() -> Option<bool> {
    let slot = abi::MODULE.read().unwrap_or_else(|p| p.into_inner());
    slot.as_ref().map(|(module, _)| module.holds_secrets())
}

/// The function list of the 2.40 interface, for Rust callers that link the
/// rlib (the same table `C_GetFunctionList` hands out).
pub fn function_list() -> &'static cryptoki_sys::CK_FUNCTION_LIST {
    &functions::FUNCTION_LIST
}

/// The function list of the 3.0 interface.
pub fn function_list_3_0() -> &'static cryptoki_sys::CK_FUNCTION_LIST_3_0 {
    &functions::FUNCTION_LIST_3_0
}
