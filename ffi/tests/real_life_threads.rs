//! Issue 5, item 6: threads. With `CKF_OS_LOCKING_OK` (and with the
//! application's mutex callbacks) the module serves many threads at once:
//! one lock per slot, not one global lock. Every signature is checked with
//! RustCrypto against the key the simulated card holds, over the data that
//! thread asked to sign, so a mix-up between threads cannot pass.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimCard, SimPivCard, SimPublicKey, Slot};
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const THREADS: usize = 8;
const ROUNDS: usize = 4;

/// How long calls on another slot may take while one slot is held.
const LIMIT: Duration = Duration::from_secs(5);

/// `C_Initialize` with `CKF_OS_LOCKING_OK` on a fresh module.
fn initialize_os_locking() {
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: ptr::null_mut(),
    };
    // The harness initialised with NULL: start over with the flag.
    assert_eq!(ck!(C_Finalize(ptr::null_mut())), CKR_OK);
    assert_eq!(
        ck!(C_Initialize(
            &mut args as *mut CK_C_INITIALIZE_ARGS as *mut c_void
        )),
        CKR_OK
    );
}

/// One signing job: thread `index` signs `ROUNDS` messages of its own on
/// `slot`, alternately with 9A (RSA, after the token's login) and 9E
/// (ECDSA), and checks each against the card's keys.
fn signer(
    slot: CK_SLOT_ID,
    index: usize,
    rsa: SimPublicKey,
    ec: SimPublicKey,
) -> Result<usize, String> {
    let session = open_session(slot, CKF_SERIAL_SESSION);
    let rsa_key = private_key(session, Slot::Authentication);
    let ec_key = private_key(session, Slot::CardAuthentication);
    for round in 0..ROUNDS {
        let data = format!("thread {index} slot {slot} round {round}");
        let data = data.as_bytes();
        if (index + round) % 2 == 0 {
            let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), rsa_key, data)
                .map_err(|rv| format!("thread {index} round {round}: RSA C_Sign {rv:#x}"))?;
            if !check::rsa_pkcs1(&rsa, Hash::Sha256, &Hash::Sha256.digest(data), &signature) {
                return Err(format!("thread {index} round {round}: bad RSA signature"));
            }
        } else {
            let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), ec_key, data)
                .map_err(|rv| format!("thread {index} round {round}: ECDSA C_Sign {rv:#x}"))?;
            if !check::ecdsa(&ec, &Hash::Sha256.digest(data), &signature) {
                return Err(format!("thread {index} round {round}: bad ECDSA signature"));
            }
        }
    }
    let rv = ck!(C_CloseSession(session));
    if rv != CKR_OK {
        return Err(format!("thread {index}: C_CloseSession {rv:#x}"));
    }
    Ok(ROUNDS)
}

/// Runs [`signer`] on `THREADS` threads spread over `slots` (each with its
/// card) and returns the failures.
fn sign_everywhere(slots: &[(CK_SLOT_ID, SimCard)]) -> Vec<String> {
    let handles: Vec<_> = (0..THREADS)
        .map(|index| {
            let (slot, card) = slots[index % slots.len()].clone();
            let rsa = card_public_key(&card, Slot::Authentication);
            let ec = card_public_key(&card, Slot::CardAuthentication);
            std::thread::spawn(move || signer(slot, index, rsa, ec))
        })
        .collect();
    let mut failures = Vec::new();
    for handle in handles {
        match handle.join() {
            Ok(Ok(rounds)) => assert_eq!(rounds, ROUNDS),
            Ok(Err(failure)) => failures.push(failure),
            Err(_) => failures.push("a thread panicked".into()),
        }
    }
    failures
}

#[test]
fn eight_threads_signing_on_one_card_all_get_good_signatures() {
    let (harness, card) = Harness::new();
    initialize_os_locking();
    // Login is per token: one session logs in, every session can sign.
    let keeper = harness.user_session();
    let failures = sign_everywhere(&[(harness.slot(), card.clone())]);
    assert!(failures.is_empty(), "{failures:#?}");
    let (begun, ended) = card.transactions();
    assert_eq!(begun, ended, "a transaction left open");
    assert_eq!(
        session_info(keeper).map(|i| i.state),
        Ok(CKS_RO_USER_FUNCTIONS)
    );
}

#[test]
fn threads_on_two_cards_in_two_readers_all_get_good_signatures() {
    let (_harness, cards) = Harness::with_readers(&[
        ("Reader A", Some(SimPivCard::new())),
        ("Reader B", Some(SimPivCard::new())),
    ]);
    initialize_os_locking();
    let slots = slot_list(true);
    assert_eq!(slots.len(), 2);
    let cards: Vec<SimCard> = cards.into_iter().map(Option::unwrap).collect();
    for &slot in &slots {
        let session = open_session(slot, CKF_SERIAL_SESSION);
        assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    }
    let failures = sign_everywhere(&[(slots[0], cards[0].clone()), (slots[1], cards[1].clone())]);
    assert!(failures.is_empty(), "{failures:#?}");
    for card in &cards {
        assert!(card.apdu_count() > 0, "one of the cards was never used");
    }
}

// ----- one slot held does not hold up another ----------------------------------

fn two_readers_one_gated() -> (Harness, SimCard, SimCard, Gate) {
    let (harness, cards, gate) = Harness::with_gate(
        &[
            ("Reader A", Some(SimPivCard::new())),
            ("Reader B", Some(SimPivCard::new())),
        ],
        "Reader A",
    );
    let mut cards = cards.into_iter().map(Option::unwrap);
    let a = cards.next().unwrap();
    let b = cards.next().unwrap();
    (harness, a, b, gate)
}

/// What another thread does on slot B (and around) while slot A is held.
fn work_on_b(slot_a: CK_SLOT_ID, slot_b: CK_SLOT_ID, card_b: SimCard) -> Result<(), String> {
    let mut info = unsafe { std::mem::zeroed::<CK_INFO>() };
    if ck!(C_GetInfo(&mut info)) != CKR_OK {
        return Err("C_GetInfo".into());
    }
    slot_list(false);
    slot_info(slot_a).map_err(|rv| format!("C_GetSlotInfo(A) {rv:#x}"))?;
    slot_info(slot_b).map_err(|rv| format!("C_GetSlotInfo(B) {rv:#x}"))?;
    token_info(slot_b).map_err(|rv| format!("C_GetTokenInfo(B) {rv:#x}"))?;
    let session = open_session(slot_b, CKF_SERIAL_SESSION);
    let key = private_key(session, Slot::CardAuthentication);
    let signature = sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, b"slot b")
        .map_err(|rv| format!("C_Sign(B) {rv:#x}"))?;
    let good = check::ecdsa(
        &card_public_key(&card_b, Slot::CardAuthentication),
        &Hash::Sha256.digest(b"slot b"),
        &signature,
    );
    if !good {
        return Err("bad signature on B".into());
    }
    Ok(())
}

#[test]
fn a_thread_reading_one_card_for_the_first_time_does_not_block_another_slot() {
    let (_harness, _card_a, card_b, gate) = two_readers_one_gated();
    let _release = OpenOnDrop(gate.clone());
    initialize_os_locking();
    let slots = slot_list(false);
    let (slot_a, slot_b) = (slots[0], slots[1]);
    gate.close();
    // Enumerating slot A: its first C_GetTokenInfo reads the card.
    let enumerating = std::thread::spawn(move || token_info(slot_a).map(|i| i.label));
    assert!(gate.wait_held(LIMIT), "slot A never reached its card");
    let other = within(LIMIT, move || work_on_b(slot_a, slot_b, card_b));
    gate.open();
    let other = other.expect("calls on slot B hang while slot A's card is being read");
    assert_eq!(other, Ok(()));
    assert_eq!(
        enumerating.join().expect("the enumerating thread"),
        Ok(padded::<32>("cardsim 9A PIV Authentication"))
    );
}

#[test]
fn a_thread_signing_on_one_card_does_not_block_another_slot() {
    let (_harness, card_a, card_b, gate) = two_readers_one_gated();
    let _release = OpenOnDrop(gate.clone());
    initialize_os_locking();
    let slots = slot_list(true);
    let (slot_a, slot_b) = (slots[0], slots[1]);
    // Both tokens read before the gate closes.
    token_info(slot_a).unwrap();
    token_info(slot_b).unwrap();
    let session_a = open_session(slot_a, CKF_SERIAL_SESSION);
    let key_a = private_key(session_a, Slot::CardAuthentication);
    gate.close();
    let signing = std::thread::spawn(move || {
        sign(
            session_a,
            &mut mechanism(CKM_ECDSA_SHA256),
            key_a,
            b"slow slot a",
        )
    });
    assert!(gate.wait_held(LIMIT), "the signature never reached card A");
    let other = within(LIMIT, move || work_on_b(slot_a, slot_b, card_b));
    gate.open();
    let other = other.expect("calls on slot B hang while slot A's card signs");
    assert_eq!(other, Ok(()));
    let signature = signing
        .join()
        .expect("the signing thread")
        .expect("C_Sign(A)");
    assert!(check::ecdsa(
        &card_public_key(&card_a, Slot::CardAuthentication),
        &Hash::Sha256.digest(b"slow slot a"),
        &signature
    ));
}

// ----- the application's mutex callbacks -----------------------------------------

static CREATED: AtomicUsize = AtomicUsize::new(0);
static DESTROYED: AtomicUsize = AtomicUsize::new(0);
static LOCKED: AtomicUsize = AtomicUsize::new(0);
static UNLOCKED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn create_mutex(out: *mut *mut c_void) -> CK_RV {
    if out.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    CREATED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the module hands a place for the new mutex.
    unsafe { *out = Box::into_raw(Box::new(AtomicBool::new(false))) as *mut c_void };
    CKR_OK
}

unsafe extern "C" fn destroy_mutex(mutex: *mut c_void) -> CK_RV {
    if mutex.is_null() {
        return CKR_MUTEX_BAD;
    }
    DESTROYED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: made by create_mutex, destroyed once.
    drop(unsafe { Box::from_raw(mutex as *mut AtomicBool) });
    CKR_OK
}

unsafe extern "C" fn lock_mutex(mutex: *mut c_void) -> CK_RV {
    if mutex.is_null() {
        return CKR_MUTEX_BAD;
    }
    LOCKED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: made by create_mutex and not destroyed yet.
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
    if mutex.is_null() {
        return CKR_MUTEX_BAD;
    }
    UNLOCKED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: as in lock_mutex.
    let flag = unsafe { &*(mutex as *const AtomicBool) };
    if !flag.swap(false, Ordering::Release) {
        return CKR_MUTEX_NOT_LOCKED;
    }
    CKR_OK
}

fn callback_counts() -> [usize; 4] {
    [&CREATED, &DESTROYED, &LOCKED, &UNLOCKED].map(|n| n.load(Ordering::SeqCst))
}

/// `C_Initialize` with the four callbacks and `flags`, then threads sign;
/// reports (on stderr) whether the module used the callbacks.
fn sign_with_app_mutexes(flags: CK_FLAGS, what: &str) {
    let module = Uninitialized::new();
    let before = callback_counts();
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create_mutex),
        DestroyMutex: Some(destroy_mutex),
        LockMutex: Some(lock_mutex),
        UnlockMutex: Some(unlock_mutex),
        flags,
        pReserved: ptr::null_mut(),
    };
    assert_eq!(
        ck!(C_Initialize(
            &mut args as *mut CK_C_INITIALIZE_ARGS as *mut c_void
        )),
        CKR_OK,
        "C_Initialize with mutex callbacks, {what}"
    );
    let slot = slot_list(true)[0];
    let keeper = open_session(slot, CKF_SERIAL_SESSION);
    assert_eq!(login(keeper, CKU_USER, PIN), CKR_OK);
    let failures = sign_everywhere(&[(slot, module.card.clone())]);
    assert!(failures.is_empty(), "{what}: {failures:#?}");
    assert_eq!(ck!(C_Finalize(ptr::null_mut())), CKR_OK);
    let after = callback_counts();
    let used: Vec<usize> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    eprintln!(
        "mutex callbacks {what}: CreateMutex {} DestroyMutex {} LockMutex {} UnlockMutex {}",
        used[0], used[1], used[2], used[3]
    );
    assert_eq!(
        used[0], used[1],
        "{what}: mutexes created but not destroyed by C_Finalize"
    );
    assert_eq!(used[2], used[3], "{what}: locks and unlocks do not pair up");
}

#[test]
fn app_mutex_callbacks_without_os_locking_ok_work_from_many_threads() {
    sign_with_app_mutexes(0, "without CKF_OS_LOCKING_OK");
}

#[test]
fn app_mutex_callbacks_with_os_locking_ok_work_from_many_threads() {
    sign_with_app_mutexes(CKF_OS_LOCKING_OK, "with CKF_OS_LOCKING_OK");
}
