//! PKCS#11 §5.4: an application that passes its own mutex callbacks without
//! `CKF_OS_LOCKING_OK` gets them used; with the flag, native locks serve.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static CREATED: AtomicUsize = AtomicUsize::new(0);
static LOCKED: AtomicUsize = AtomicUsize::new(0);
static DESTROYED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn create_mutex(out: *mut *mut c_void) -> CK_RV {
    CREATED.fetch_add(1, Ordering::SeqCst);
    unsafe { *out = Box::into_raw(Box::new(AtomicBool::new(false))) as *mut c_void };
    CKR_OK
}

unsafe extern "C" fn destroy_mutex(mutex: *mut c_void) -> CK_RV {
    DESTROYED.fetch_add(1, Ordering::SeqCst);
    drop(unsafe { Box::from_raw(mutex as *mut AtomicBool) });
    CKR_OK
}

unsafe extern "C" fn lock_mutex(mutex: *mut c_void) -> CK_RV {
    LOCKED.fetch_add(1, Ordering::SeqCst);
    let flag = unsafe { &*(mutex as *const AtomicBool) };
    while flag
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
    CKR_OK
}

unsafe extern "C" fn unlock_mutex(mutex: *mut c_void) -> CK_RV {
    unsafe { &*(mutex as *const AtomicBool) }.store(false, Ordering::Release);
    CKR_OK
}

fn args(flags: CK_FLAGS) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create_mutex),
        DestroyMutex: Some(destroy_mutex),
        LockMutex: Some(lock_mutex),
        UnlockMutex: Some(unlock_mutex),
        flags,
        pReserved: ptr::null_mut(),
    }
}

fn sign_from_threads(threads: usize) {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(|| {
                let slot = slot_list(true)[0];
                let session = open_session(slot, CKF_SERIAL_SESSION);
                let _ = login(session, CKU_USER, "123456");
                let key = object(session, CKO_PRIVATE_KEY, 0x04);
                let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"threads");
                assert_eq!(signature.map(|s| s.len()), Ok(64));
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("signing thread");
    }
}

#[test]
fn application_mutexes_are_used_without_os_locking_ok_and_not_with_it() {
    let _module = Uninitialized::new();
    let mut with_callbacks = args(0);
    assert_eq!(
        ck!(C_Initialize(&mut with_callbacks as *mut _ as *mut c_void)),
        CKR_OK
    );
    sign_from_threads(4);
    assert!(CREATED.load(Ordering::SeqCst) >= 1, "a mutex per slot");
    assert!(
        LOCKED.load(Ordering::SeqCst) > 0,
        "the module locked the application's mutex"
    );
    assert_eq!(ck!(C_Finalize(ptr::null_mut())), CKR_OK);
    assert_eq!(
        DESTROYED.load(Ordering::SeqCst),
        CREATED.load(Ordering::SeqCst)
    );

    let locked_before = LOCKED.load(Ordering::SeqCst);
    let mut os_locking = args(CKF_OS_LOCKING_OK);
    assert_eq!(
        ck!(C_Initialize(&mut os_locking as *mut _ as *mut c_void)),
        CKR_OK
    );
    sign_from_threads(4);
    assert_eq!(
        LOCKED.load(Ordering::SeqCst),
        locked_before,
        "native locks with CKF_OS_LOCKING_OK"
    );
}
