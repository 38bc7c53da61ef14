//! Issue 5, item 7: `fork()`. The child of a process that initialised the
//! module starts uninitialised (`CKR_CRYPTOKI_NOT_INITIALIZED`, PKCS#11
//! 2.40 §5.4 / §6.7.7 "the child must call C_Initialize"), works after its
//! own `C_Initialize`, and its `C_Finalize` leaves the parent's module,
//! sessions and login alone.
//!
//! The child reports through its exit status only (it must not print or
//! unwind in a forked copy of a multi-threaded test process) and leaves
//! with `_exit`.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::Slot;
use std::ptr;
use std::time::{Duration, Instant};

/// What a child's exit status means.
const STEPS: [&str; 12] = [
    "ok",
    "C_GetSlotList before C_Initialize was not CKR_CRYPTOKI_NOT_INITIALIZED",
    "C_GetInfo before C_Initialize was not CKR_CRYPTOKI_NOT_INITIALIZED",
    "C_GetSessionInfo on the parent's session was not CKR_CRYPTOKI_NOT_INITIALIZED",
    "C_Finalize before C_Initialize was not CKR_CRYPTOKI_NOT_INITIALIZED",
    "C_Initialize failed",
    "C_GetSlotList found no token",
    "C_GetTokenInfo failed",
    "signing in the child failed",
    "the child's signature does not verify",
    "C_Finalize failed",
    "the child panicked",
];

fn rv_is(rv: CK_RV, expected: CK_RV, step: i32) -> Result<(), i32> {
    if rv == expected {
        Ok(())
    } else {
        Err(step)
    }
}

/// Everything the child does after `fork()`; `Err(step)` on the first
/// failure.
fn child(parent_session: CK_SESSION_HANDLE, card: &p11card_cardsim::SimCard) -> Result<(), i32> {
    let mut count: CK_ULONG = 0;
    let rv = ck!(C_GetSlotList(CK_TRUE, ptr::null_mut(), &mut count));
    rv_is(rv, CKR_CRYPTOKI_NOT_INITIALIZED, 1)?;
    let mut info = unsafe { std::mem::zeroed::<CK_INFO>() };
    rv_is(ck!(C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED, 2)?;
    let mut session_info = unsafe { std::mem::zeroed::<CK_SESSION_INFO>() };
    let rv = ck!(C_GetSessionInfo(parent_session, &mut session_info));
    rv_is(rv, CKR_CRYPTOKI_NOT_INITIALIZED, 3)?;
    rv_is(
        ck!(C_Finalize(ptr::null_mut())),
        CKR_CRYPTOKI_NOT_INITIALIZED,
        4,
    )?;
    rv_is(ck!(C_Initialize(ptr::null_mut())), CKR_OK, 5)?;
    let mut slots = [0 as CK_SLOT_ID; 8];
    let mut count = slots.len() as CK_ULONG;
    let rv = ck!(C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut count));
    if rv != CKR_OK || count == 0 {
        return Err(6);
    }
    let slot = slots[0];
    let mut token = unsafe { std::mem::zeroed::<CK_TOKEN_INFO>() };
    rv_is(ck!(C_GetTokenInfo(slot, &mut token)), CKR_OK, 7)?;
    let mut session = 0;
    let rv = ck!(C_OpenSession(
        slot,
        CKF_SERIAL_SESSION,
        ptr::null_mut(),
        None,
        &mut session
    ));
    rv_is(rv, CKR_OK, 8)?;
    let key = private_key(session, Slot::CardAuthentication);
    let signature =
        sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"child").map_err(|_| 8)?;
    let good = check::ecdsa(
        &card_public_key(card, Slot::CardAuthentication),
        &Hash::Sha256.digest(b"child"),
        &signature,
    );
    if !good {
        return Err(9);
    }
    rv_is(ck!(C_Finalize(ptr::null_mut())), CKR_OK, 10)
}

/// Forks; the child runs `body` and `_exit`s with its status; the parent
/// waits (at most 30 s) and returns the status.
fn fork_and_wait(body: impl FnOnce() -> Result<(), i32>) -> i32 {
    // SAFETY: fork in a test process; the child only calls the module and
    // async-signal-tolerant code paths of this file, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        let code = match outcome {
            Ok(Ok(())) => 0,
            Ok(Err(step)) => step,
            Err(_) => 11,
        };
        // SAFETY: leave the child without running anything of the parent's.
        unsafe { libc::_exit(code) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        assert!(done == 0, "waitpid failed");
        if Instant::now() > deadline {
            // SAFETY: our own child, stuck.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child hung (killed after 30 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        libc::WIFEXITED(status),
        "the child did not exit normally (status {status:#x})"
    );
    libc::WEXITSTATUS(status)
}

fn step_name(code: i32) -> &'static str {
    STEPS
        .get(code as usize)
        .copied()
        .unwrap_or("unknown exit status")
}

#[test]
fn a_forked_child_starts_uninitialized_works_after_c_initialize_and_the_parent_goes_on() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    let child_card = card.clone();
    let code = fork_and_wait(|| child(session, &child_card));
    assert_eq!(code, 0, "child: {}", step_name(code));
    // The parent's session and login survive the child's C_Finalize.
    assert_eq!(
        session_info(session).map(|i| i.state),
        Ok(CKS_RO_USER_FUNCTIONS)
    );
    let data = b"parent after the child";
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, data)
        .expect("the parent's C_Sign after the child finished");
    assert!(check::rsa_pkcs1(
        &card_public_key(&card, Slot::Authentication),
        Hash::Sha256,
        &Hash::Sha256.digest(data),
        &signature
    ));
    let public = public_key(session, Slot::Authentication);
    assert_eq!(
        verify(
            session,
            &mut Mech::new(CKM_SHA256_RSA_PKCS),
            public,
            data,
            &signature
        ),
        CKR_OK
    );
}

#[test]
fn a_child_that_never_initializes_leaves_the_parent_alone() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let code = fork_and_wait(|| {
        let mut count: CK_ULONG = 0;
        rv_is(
            ck!(C_GetSlotList(CK_FALSE, ptr::null_mut(), &mut count)),
            CKR_CRYPTOKI_NOT_INITIALIZED,
            1,
        )?;
        rv_is(ck!(C_CloseAllSessions(0)), CKR_CRYPTOKI_NOT_INITIALIZED, 3)?;
        rv_is(
            ck!(C_Finalize(ptr::null_mut())),
            CKR_CRYPTOKI_NOT_INITIALIZED,
            4,
        )
    });
    assert_eq!(code, 0, "child: {}", step_name(code));
    let key = private_key(session, Slot::Authentication);
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, b"still")
        .expect("the parent's C_Sign");
    assert!(check::rsa_pkcs1(
        &card_public_key(&card, Slot::Authentication),
        Hash::Sha256,
        &Hash::Sha256.digest(b"still"),
        &signature
    ));
}

/// Issue 11, finding 9: the child's copy of the parent's module keeps no
/// copy of the user's PIN, from the moment the child starts (before it
/// calls into the module, if it ever does); the parent keeps its own.
#[test]
fn a_forked_child_starts_with_the_parents_pin_copy_wiped() {
    let (harness, _card) = Harness::new();
    let _session = harness.user_session();
    assert_eq!(p11card_pkcs11::module_holds_secrets(), Some(true));
    let code = fork_and_wait(|| match p11card_pkcs11::module_holds_secrets() {
        Some(false) => Ok(()),
        _ => Err(1),
    });
    assert_eq!(code, 0, "the child still holds the parent's PIN");
    assert_eq!(p11card_pkcs11::module_holds_secrets(), Some(true));
}
