//! Wiping the module's secrets in a process that forked: the child's copy of
//! the parent's module is never used again, but it holds copies of the
//! user's PIN and of decrypted data.

use super::{Module, SlotState};
use crate::session::Session;
use std::sync::{Mutex, MutexGuard, TryLockError};
use zeroize::{Zeroize, Zeroizing};

/// The lock, unless another thread holds it: in a child after `fork()`,
/// that thread does not exist and the lock is never released.
fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl SlotState {
    fn wipe_secrets(&mut self) {
        self.login.wipe();
        wipe(&mut self.so_unblock_code);
    }

    fn holds_secrets(&self) -> bool {
        self.login.holds_pin()
            || self
                .so_unblock_code
                .as_ref()
                .is_some_and(|secret| !secret.is_empty())
    }
}

/// Zeroizes a kept secret in place, keeping its (now empty) buffer.
fn wipe(secret: &mut Option<Zeroizing<Vec<u8>>>) {
    if let Some(secret) = secret {
        secret.zeroize();
    }
}

impl Session {
    fn wipe_secrets(&mut self) {
        if let Some(sign) = &mut self.sign {
            wipe(&mut sign.context_pin);
        }
        if let Some(decrypt) = &mut self.decrypt {
            wipe(&mut decrypt.context_pin);
            wipe(&mut decrypt.result);
        }
        for object in &mut self.objects {
            object.wipe_secret();
        }
    }
}

impl Module {
    /// Zeroizes in place the secrets the module holds: the kept user PIN
    /// and unblocking code, context-specific PINs, decrypted data waiting
    /// for the caller and derived keys; the logins end. Meant for a child
    /// process's copy of its parent's module right after `fork()`: it waits
    /// for no lock (what a lock held at the fork guards is skipped), frees
    /// no memory and touches no card or PC/SC handle, which belong to the
    /// parent.
    pub fn wipe_secrets(&self) {
        if let Ok(slots) = self.slots.try_read() {
            for slot in slots.iter() {
                if let Some(mut state) = try_lock(&slot.state) {
                    state.wipe_secrets();
                }
            }
        }
        if let Ok(sessions) = self.sessions.try_read() {
            for entry in sessions.values() {
                if let Some(mut session) = try_lock(&entry.session) {
                    session.wipe_secrets();
                }
            }
        }
    }

    /// Whether the module keeps a user PIN or unblocking code (while a
    /// process is logged in; never after [`Module::wipe_secrets`]).
    pub fn holds_secrets(&self) -> bool {
        self.slot_table()
            .iter()
            .any(|slot| super::lock(&slot.state).holds_secrets())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileSet;
    use crate::transport::{CardTransport, ReaderBackend, ReaderStatus, Transmit, TransportError};
    use cryptoki_sys::{
        CKF_SERIAL_SESSION, CKS_RO_PUBLIC_SESSION, CKS_RO_USER_FUNCTIONS, CKU_USER,
    };
    use p11card_cardsim::SimPivCard;
    use std::sync::Arc;

    /// One reader with the simulated PIV card. (The simulator's own backend
    /// implements the traits of the crate as a dependency, not of this
    /// build of it.)
    #[derive(Clone)]
    struct OneCard(Arc<Mutex<SimPivCard>>);

    impl ReaderBackend for OneCard {
        fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError> {
            Ok(vec![ReaderStatus {
                name: "reader".into(),
                card_present: true,
                card_events: 1,
            }])
        }

        fn connect(&self, _reader: &str) -> Result<Box<dyn CardTransport>, TransportError> {
            Ok(Box::new(self.clone()))
        }
    }

    impl CardTransport for OneCard {
        fn atr(&self) -> &[u8] {
            &[0x3B, 0x80, 0x80, 0x01, 0x01]
        }

        fn transaction(
            &mut self,
            body: &mut dyn FnMut(&mut dyn Transmit),
        ) -> Result<(), TransportError> {
            body(self);
            Ok(())
        }
    }

    impl Transmit for OneCard {
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
            Ok(self.0.lock().unwrap().process(command))
        }
    }

    /// A module logged in to the simulated card, and its session.
    fn logged_in() -> (Module, cryptoki_sys::CK_SESSION_HANDLE) {
        let card = OneCard(Arc::new(Mutex::new(SimPivCard::new())));
        let module = Module::new(Box::new(card), ProfileSet::embedded());
        let slot = module.slot_list(true, true).unwrap()[0];
        let session = module.open_session(slot, CKF_SERIAL_SESSION).unwrap();
        assert!(!module.holds_secrets());
        module.login(session, CKU_USER, Some(b"123456")).unwrap();
        assert!(module.holds_secrets());
        (module, session)
    }

    #[test]
    fn wiping_zeroizes_the_kept_pin_and_ends_the_login() {
        let (module, session) = logged_in();
        assert_eq!(
            module.session_info(session).unwrap().state,
            CKS_RO_USER_FUNCTIONS
        );
        module.wipe_secrets();
        assert!(!module.holds_secrets());
        assert_eq!(
            module.session_info(session).unwrap().state,
            CKS_RO_PUBLIC_SESSION
        );
    }

    #[test]
    fn wiping_skips_what_another_thread_holds_instead_of_waiting() {
        let (module, _session) = logged_in();
        let table = module.slot_table();
        let held = super::super::lock(&table[0].state);
        module.wipe_secrets();
        assert!(held.holds_secrets());
    }
}
