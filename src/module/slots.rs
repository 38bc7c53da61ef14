//! Slots (PKCS#11 §5.5, slot and token management): one per reader,
//! with the state of its card (locked one conversation at a time).

use super::*;

#[derive(Debug, Default)]
pub(super) struct SlotState {
    pub(super) card: Option<Card>,
    pub(super) token: Option<LoadedToken>,
    /// A card is in the reader but no profile recognised it.
    pub(super) unrecognized: bool,
    /// This process's user login, with the PIN kept to restore a login
    /// the card lost.
    pub(super) login: SessionLogin,
    /// The unblocking code given with `C_Login(CKU_SO)`, kept until
    /// `C_InitPIN` or `C_Logout` (the card can only check it together with
    /// the new PIN).
    pub(super) so_unblock_code: Option<Zeroizing<Vec<u8>>>,
    /// The slot's change count when the token was read.
    pub(super) token_changes: u64,
    /// Bumped whenever the token goes away; sessions carry the value they
    /// were opened with.
    pub(super) generation: u64,
}

impl std::fmt::Debug for dyn CardTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardTransport")
    }
}

impl SlotState {
    /// Whether this process is logged in.
    pub(super) fn logged_in(&self) -> bool {
        self.login.is_active()
    }

    /// Ends this process's login (the PIN copy is zeroized).
    pub(super) fn end_login(&mut self) {
        self.login.end();
    }

    /// Ends the token (the card was removed or replaced, or the module no
    /// longer trusts what it read): the audit trail records `card-gone`.
    pub(super) fn drop_token(&mut self) {
        self.card = None;
        if let Some(token) = self.token.take() {
            if let Some((audit, reader)) = &token.audit {
                audit.record(
                    "card-gone",
                    &[
                        ("reader", reader.clone()),
                        ("profile", token.app.profile().name.clone()),
                        ("serial", token.info.serial.clone()),
                    ],
                );
            }
        }
        self.unrecognized = false;
        self.login.end();
        self.so_unblock_code = None;
        self.generation += 1;
    }
}

/// A mutex the application supplied through `CK_C_INITIALIZE_ARGS`
/// (PKCS#11 §5.4: without `CKF_OS_LOCKING_OK` the module must use them).
pub trait ExternalLock: Send + Sync {
    /// Takes the mutex.
    fn lock(&self);
    /// Releases the mutex.
    fn unlock(&self);
}

/// Makes one application mutex per slot, or `None` if the application
/// could not create one.
pub type ExternalLockFactory = Box<dyn Fn() -> Option<Box<dyn ExternalLock>> + Send + Sync>;

/// A slot's state, locked; with the application's mutex too when it gave
/// one.
pub(super) struct SlotGuard<'a> {
    pub(super) guard: MutexGuard<'a, SlotState>,
    pub(super) external: Option<&'a dyn ExternalLock>,
}

impl std::ops::Deref for SlotGuard<'_> {
    type Target = SlotState;
    fn deref(&self) -> &SlotState {
        &self.guard
    }
}

impl std::ops::DerefMut for SlotGuard<'_> {
    fn deref_mut(&mut self) -> &mut SlotState {
        &mut self.guard
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(external) = self.external {
            external.unlock();
        }
    }
}

/// One reader.
pub(super) struct Slot {
    pub(super) id: CK_SLOT_ID,
    pub(super) reader: String,
    /// Card presence as PC/SC last reported it.
    pub(super) present: AtomicBool,
    /// The reader is currently listed by PC/SC.
    pub(super) attached: AtomicBool,
    /// A change not yet reported by `C_WaitForSlotEvent`.
    pub(super) event_pending: AtomicBool,
    /// The reader's card event counter as PC/SC last reported it.
    pub(super) card_events: AtomicU64,
    /// Counts every change seen in the reader (card in or out, a different
    /// card, the reader gone or back): a token read before a change is over.
    pub(super) changes: AtomicU64,
    /// When PC/SC last reported the reader's state.
    pub(super) checked_at: Mutex<Option<Instant>>,
    /// The application's mutex for this slot, if it asked for its own.
    pub(super) external: Option<Box<dyn ExternalLock>>,
    pub(super) state: Mutex<SlotState>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("id", &self.id)
            .field("reader", &self.reader)
            .finish()
    }
}

impl Slot {
    /// Records the reader's state; any change becomes a pending slot event.
    /// PC/SC reported the reader's state within `window`.
    pub(super) fn checked_within(&self, window: Duration) -> bool {
        !window.is_zero() && lock(&self.checked_at).is_some_and(|at| at.elapsed() < window)
    }

    pub(super) fn note(&self, attached: bool, present: bool, card_events: u64) {
        *lock(&self.checked_at) = Some(Instant::now());
        let was_attached = self.attached.swap(attached, Ordering::SeqCst);
        let was_present = self.present.swap(present, Ordering::SeqCst);
        let was_events = self.card_events.swap(card_events, Ordering::SeqCst);
        if was_attached != attached || was_present != present || was_events != card_events {
            self.changes.fetch_add(1, Ordering::SeqCst);
            self.event_pending.store(true, Ordering::SeqCst);
        }
    }

    /// Locks the slot's state (one card conversation at a time).
    pub(super) fn lock(&self) -> SlotGuard<'_> {
        let external = self.external.as_deref();
        if let Some(external) = external {
            external.lock();
        }
        SlotGuard {
            guard: lock(&self.state),
            external,
        }
    }
}

impl Module {
    // ----- slots ---------------------------------------------------------

    pub(super) fn slot_table(&self) -> Vec<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The slot with this ID. An ID the module has not seen yet makes it
    /// ask PC/SC for the readers once (no APDU) before refusing it, so a
    /// valid ID works right after `C_Initialize`, without `C_GetSlotList`
    /// (programs keep slot IDs in their configuration). IDs are given in
    /// the order PC/SC lists the readers, as `C_GetSlotList` gives them.
    pub(super) fn slot(&self, id: CK_SLOT_ID) -> Result<Arc<Slot>> {
        let known = |module: &Module| module.slot_table().into_iter().find(|slot| slot.id == id);
        if let Some(slot) = known(self) {
            return Ok(slot);
        }
        self.refresh_readers().map_err(|_| Error::SlotIdInvalid)?;
        known(self).ok_or(Error::SlotIdInvalid)
    }

    /// Asks PC/SC for readers and card presence (no APDU). New readers get
    /// new slot IDs; a reader that comes back gets its old ID.
    pub(super) fn refresh_readers(&self) -> Result<()> {
        let readers = self.backend.readers().map_err(Error::from)?;
        self.apply_readers(readers);
        Ok(())
    }

    /// Records what PC/SC reported; changes after the first scan become
    /// pending slot events for `C_WaitForSlotEvent`.
    pub(super) fn apply_readers(&self, readers: Vec<crate::transport::ReaderStatus>) {
        let first_scan = !self.scanned.swap(true, Ordering::SeqCst);
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        for slot in slots.iter() {
            if !readers.iter().any(|reader| reader.name == slot.reader) {
                slot.note(false, false, slot.card_events.load(Ordering::SeqCst));
            }
        }
        for reader in readers {
            match slots.iter().find(|slot| slot.reader == reader.name) {
                Some(slot) => slot.note(true, reader.card_present, reader.card_events),
                None => {
                    let id = slots.len() as CK_SLOT_ID;
                    slots.push(Arc::new(Slot {
                        id,
                        reader: reader.name,
                        present: AtomicBool::new(reader.card_present),
                        attached: AtomicBool::new(true),
                        event_pending: AtomicBool::new(!first_scan),
                        card_events: AtomicU64::new(reader.card_events),
                        changes: AtomicU64::new(0),
                        checked_at: Mutex::new(Some(Instant::now())),
                        external: self.external_locks.as_ref().and_then(|factory| factory()),
                        state: Mutex::new(SlotState::default()),
                    }));
                }
            }
        }
    }

    /// `C_WaitForSlotEvent`: the next slot whose reader or card changed
    /// since the last call. `block = false` returns `None` when nothing
    /// changed. No lock is held while waiting; [`Module::shutdown`] wakes a
    /// waiting thread, which then gets `CKR_CRYPTOKI_NOT_INITIALIZED`.
    pub fn wait_for_slot_event(&self, block: bool) -> Result<Option<CK_SLOT_ID>> {
        loop {
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(Error::CryptokiNotInitialized);
            }
            let readers = self.backend.readers().map_err(Error::from)?;
            self.apply_readers(readers.clone());
            let pending = self
                .slot_table()
                .into_iter()
                .find(|slot| slot.event_pending.swap(false, Ordering::SeqCst));
            if let Some(slot) = pending {
                return Ok(Some(slot.id));
            }
            if !block {
                return Ok(None);
            }
            self.backend
                .wait_for_change(&readers, std::time::Duration::from_secs(2))
                .map_err(Error::from)?;
        }
    }

    /// The readers and whether each holds a card, as the backend reports
    /// them now (no APDU): what [`Module::wait_for_reader_change`] compares
    /// with.
    pub fn reader_states(&self) -> Result<Vec<crate::transport::ReaderStatus>> {
        self.backend.readers().map_err(Error::from)
    }

    /// Blocks until the readers or their cards differ from `known` (from
    /// [`Module::reader_states`]), until `timeout` passes, or until
    /// [`Module::shutdown`]; it may return early. For tools that wait for a
    /// card without the slot-event bookkeeping of `C_WaitForSlotEvent`.
    pub fn wait_for_reader_change(
        &self,
        known: &[crate::transport::ReaderStatus],
        timeout: Duration,
    ) -> Result<()> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(Error::CryptokiNotInitialized);
        }
        self.backend
            .wait_for_change(known, timeout)
            .map_err(Error::from)
    }

    /// Starts `C_Finalize`: wakes threads waiting for slot events.
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.backend.cancel_wait();
    }

    /// `C_GetSlotList`: with `refresh`, asks PC/SC first (the length query);
    /// without, returns the list the last query saw.
    pub fn slot_list(&self, token_present: bool, refresh: bool) -> Result<Vec<CK_SLOT_ID>> {
        if refresh || self.slot_table().is_empty() {
            self.refresh_readers()?;
        }
        Ok(self
            .slot_table()
            .iter()
            .filter(|slot| slot.attached.load(Ordering::SeqCst))
            .filter(|slot| !token_present || slot.present.load(Ordering::SeqCst))
            .map(|slot| slot.id)
            .collect())
    }

    /// `C_GetSlotInfo`.
    pub fn slot_info(&self, id: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
        let slot = self.slot(id)?;
        self.refresh_readers()?;
        let mut flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
        if slot.present.load(Ordering::SeqCst) {
            flags |= CKF_TOKEN_PRESENT;
        }
        Ok(CK_SLOT_INFO {
            slotDescription: padded(&slot.reader),
            manufacturerID: padded("PC/SC"),
            flags,
            hardwareVersion: CK_VERSION { major: 0, minor: 0 },
            firmwareVersion: CK_VERSION { major: 0, minor: 0 },
        })
    }
}
