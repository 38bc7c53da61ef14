//! Sessions (PKCS#11 §5.6): the session table, opening and closing,
//! session info and cancelling operations.

use super::*;

/// A session in the session table, with what can be read without locking it.
#[derive(Debug, Clone)]
pub(super) struct SessionEntry {
    pub(super) slot: CK_SLOT_ID,
    pub(super) read_write: bool,
    pub(super) generation: u64,
    pub(super) session: Arc<Mutex<Session>>,
}

impl Module {
    // ----- sessions ------------------------------------------------------

    pub(super) fn sessions_read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<CK_SESSION_HANDLE, SessionEntry>> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn sessions_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<CK_SESSION_HANDLE, SessionEntry>> {
        self.sessions.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The handles of a slot's sessions (no session lock taken).
    pub(super) fn sessions_of(&self, slot: CK_SLOT_ID) -> Vec<CK_SESSION_HANDLE> {
        self.sessions_read()
            .iter()
            .filter(|(_, entry)| entry.slot == slot)
            .map(|(handle, _)| *handle)
            .collect()
    }

    pub(super) fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Mutex<Session>>> {
        self.sessions_read()
            .get(&handle)
            .map(|entry| Arc::clone(&entry.session))
            .ok_or(Error::SessionHandleInvalid)
    }

    /// Drops the sessions a slot's earlier tokens left behind.
    pub(super) fn forget_sessions_of(&self, slot: CK_SLOT_ID, generation: u64) {
        self.sessions_write()
            .retain(|_, entry| entry.slot != slot || entry.generation == generation);
    }

    /// Runs `f` with a session and its slot's token, both locked. A session
    /// whose card went away is closed and reported invalid.
    pub(super) fn with_session<R>(
        &self,
        handle: CK_SESSION_HANDLE,
        f: impl FnOnce(&mut Session, &mut SlotState, &Slot) -> Result<R>,
    ) -> Result<R> {
        let session = self.session(handle)?;
        let mut session = lock(&session);
        let slot = self.slot(session.slot)?;
        let mut state = match self.token_state(&slot) {
            Ok(state) => state,
            Err(Error::TokenNotPresent | Error::TokenNotRecognized) => {
                let generation = slot.lock().generation;
                drop(session);
                self.sessions_write().remove(&handle);
                self.forget_sessions_of(slot.id, generation);
                return Err(Error::DeviceRemoved);
            }
            Err(other) => return Err(other),
        };
        if state.generation != session.generation {
            drop(session);
            self.sessions_write().remove(&handle);
            return Err(Error::SessionHandleInvalid);
        }
        let result = f(&mut session, &mut state, &slot);
        if matches!(result, Err(Error::DeviceRemoved)) {
            let generation = state.generation;
            drop(state);
            drop(session);
            self.forget_sessions_of(slot.id, generation);
        }
        result
    }

    /// `C_OpenSession`.
    pub fn open_session(&self, id: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        let slot = self.slot(id)?;
        let generation = self.token_state(&slot)?.generation;
        let handle = self.next_session.fetch_add(1, Ordering::SeqCst) as CK_SESSION_HANDLE;
        let session = Session::new(id, flags & CKF_RW_SESSION != 0, generation);
        let entry = SessionEntry {
            slot: id,
            read_write: flags & CKF_RW_SESSION != 0,
            generation,
            session: Arc::new(Mutex::new(session)),
        };
        self.sessions_write().insert(handle, entry);
        Ok(handle)
    }

    /// `C_CloseSession`. Closing a slot's last session logs the token out.
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let removed = self
            .sessions_write()
            .remove(&handle)
            .ok_or(Error::SessionHandleInvalid)?;
        self.logout_if_unused(removed.slot);
        Ok(())
    }

    /// `C_CloseAllSessions`.
    pub fn close_all_sessions(&self, id: CK_SLOT_ID) -> Result<()> {
        self.slot(id)?;
        self.sessions_write().retain(|_, entry| entry.slot != id);
        self.logout_if_unused(id);
        Ok(())
    }

    pub(super) fn logout_if_unused(&self, id: CK_SLOT_ID) {
        if !self.sessions_of(id).is_empty() {
            return;
        }
        if let Ok(slot) = self.slot(id) {
            let mut state = slot.lock();
            if state.logged_in() {
                // Best effort: the card may be gone already.
                let _ = card_operation(&mut state, |app, card| app.logout(card));
                state.end_login();
            }
        }
    }

    /// Closes every session (used by `C_Finalize`), logging tokens out.
    pub fn close_everything(&self) {
        let slots: Vec<CK_SLOT_ID> = self.slot_table().iter().map(|s| s.id).collect();
        for id in slots {
            let _ = self.close_all_sessions(id);
        }
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&self, handle: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
        self.with_session(handle, |session, state, _| {
            let state_code = match (session.read_write, state.logged_in()) {
                _ if state.so_unblock_code.is_some() => CKS_RW_SO_FUNCTIONS,
                (false, false) => CKS_RO_PUBLIC_SESSION,
                (false, true) => CKS_RO_USER_FUNCTIONS,
                (true, false) => CKS_RW_PUBLIC_SESSION,
                (true, true) => CKS_RW_USER_FUNCTIONS,
            };
            let mut flags = CKF_SERIAL_SESSION;
            if session.read_write {
                flags |= CKF_RW_SESSION;
            }
            Ok(CK_SESSION_INFO {
                slotID: session.slot,
                state: state_code,
                flags,
                ulDeviceError: 0,
            })
        })
    }

    /// `C_SessionCancel` (PKCS#11 3.0): ends the operations named in `flags`.
    pub fn session_cancel(&self, handle: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            if flags & CKF_SIGN != 0 {
                session.sign = None;
            }
            if flags & CKF_VERIFY != 0 {
                session.verify = None;
            }
            if flags & CKF_DECRYPT != 0 {
                session.decrypt = None;
            }
            if flags & CKF_ENCRYPT != 0 {
                session.encrypt = None;
            }
            if flags & CKF_DIGEST != 0 {
                session.digest = None;
            }
            if flags & CKF_FIND_OBJECTS != 0 {
                session.find = None;
            }
            Ok(())
        })
    }

    /// Ends the session's operation of this kind, if one is active: for a
    /// call the C ABI refused before it reached the module (a bad pointer),
    /// which ends the operation like any other error.
    pub fn end_operation(&self, handle: CK_SESSION_HANDLE, kind: crate::session::OperationKind) {
        let _ = self.with_session(handle, |session, _, _| {
            session.end(kind);
            Ok(())
        });
    }
}
