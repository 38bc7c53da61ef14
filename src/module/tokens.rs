//! Tokens (PKCS#11 §5.5): the card application in a slot, read on first
//! use (from the disk cache where the card proves it current), its PIN
//! state and flags, its mechanisms.

use super::*;

/// The token in a slot: the card application a profile recognised, what
/// it reported, the objects built from that, and its PIN state.
#[derive(Debug)]
pub(super) struct LoadedToken {
    pub(super) app: Box<dyn CardApp>,
    pub(super) info: CardInfo,
    pub(super) objects: Vec<Object>,
    pub(super) pin: PinStatus,
    /// `pin` holds what the card (or this process) said, not a default.
    pub(super) pin_known: bool,
    /// A wrong PIN was entered since the last successful login.
    pub(super) pin_failed: bool,
    /// The most tries the card reported in this process.
    pub(super) most_tries: Option<u8>,
    /// The reader has a PIN pad: the PIN is entered there, not by the host.
    pub(super) pin_pad: bool,
    /// The slot the token is in (object handles carry it).
    pub(super) slot_id: CK_SLOT_ID,
    /// The disk cache and this card's entry in it, when the card can be
    /// cached.
    pub(super) cache: Option<(Arc<CacheStore>, CacheKey)>,
    /// The algorithm policy on this token's keys.
    pub(super) policy: Policy,
    /// The audit trail and the token's reader, to record the token's end.
    pub(super) audit: Option<(Arc<Audit>, String)>,
}

impl LoadedToken {
    /// Stores what the engine remembers of the card (its certificates, and
    /// what else it needs to read the card from the cache, see
    /// [`CardApp::to_remember`]) in the disk cache once every key slot was
    /// read from the card (never what the cache itself gave); `engine` is
    /// what the engine learned about the card.
    pub(super) fn remember(&self, engine: &EngineState) {
        let Some((store, key)) = &self.cache else {
            return;
        };
        if !self.info.keys_complete || self.info.recalled {
            return;
        }
        let objects = self
            .app
            .to_remember(&self.info, engine)
            .into_iter()
            .map(|record| CachedObject {
                kind: record.kind.code(),
                name: record.name,
                data: record.data,
            })
            .collect();
        store.store(
            key,
            &CachedCard {
                stored_at: std::time::SystemTime::now(),
                objects,
            },
        );
    }

    /// Drops the card's cache entry (it did not match the card).
    pub(super) fn forget_cached(&self) {
        if let Some((store, key)) = &self.cache {
            store.forget(key);
        }
    }

    pub(super) fn record_pin(&mut self, status: PinStatus) {
        if let Some(tries) = status.tries_left {
            self.most_tries = Some(self.most_tries.map_or(tries, |most| most.max(tries)));
        }
        self.pin = status;
        self.pin_known = true;
    }

    /// The token's PIN flags; `max_tries` the PIN's maximum tries when the
    /// card reported them.
    pub(super) fn flags(&self, max_tries: Option<u8>) -> CK_FLAGS {
        let mut flags =
            CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
        if self.pin_pad {
            flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
        }
        let tries = self.pin.tries_left;
        if self.pin.blocked || tries == Some(0) {
            flags |= CKF_USER_PIN_LOCKED;
        } else if tries == Some(1) {
            flags |= CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW;
        } else if self.pin_failed
            || matches!((tries, self.most_tries), (Some(now), Some(most)) if now < most)
            || tries.is_some_and(|now| now < max_tries.unwrap_or(USUAL_PIN_TRIES))
        {
            flags |= CKF_USER_PIN_COUNT_LOW;
        }
        flags
    }
}

/// The PIN tries cards ship with (PIV cards from Yubico and Nitrokey, and
/// OpenPGP cards, default to 3; SP 800-73-4 leaves it to the issuer). Most
/// cards do not report their maximum (a YubiKey's GET METADATA does), so in
/// a process that has not seen a wrong PIN itself, fewer tries than the
/// maximum (else this) means wrong PINs since the last success
/// (`CKF_USER_PIN_COUNT_LOW`).
pub(super) const USUAL_PIN_TRIES: u8 = 3;

impl Module {
    /// Locks a slot's state, making sure its token is loaded (reading the
    /// card if this is the first time) and still in the reader.
    pub(super) fn token_state<'s>(&self, slot: &'s Slot) -> Result<SlotGuard<'s>> {
        self.token_state_with(slot, false)
    }

    /// [`Module::token_state`]; a first read of the card also reads the PIN
    /// state when `with_pin_status`.
    pub(super) fn token_state_with<'s>(
        &self,
        slot: &'s Slot,
        with_pin_status: bool,
    ) -> Result<SlotGuard<'s>> {
        // Ask PC/SC (no APDU) whether the card is still the one the token
        // was read from: a pull, a swap or a service restart since the last
        // call ends the token, its login and its sessions.
        // A burst of calls asks once: within the backend's window the last
        // answer stands (a card pulled meanwhile still fails the next
        // APDU, and PC/SC refuses a handle from before a swap).
        if !slot.checked_within(self.backend.status_reuse()) {
            match self.backend.reader_status(&slot.reader) {
                Ok(Some(status)) => slot.note(true, status.card_present, status.card_events),
                Ok(None) => slot.note(false, false, slot.card_events.load(Ordering::SeqCst)),
                Err(_) => {}
            }
        }
        let mut state = slot.lock();
        let changes = slot.changes.load(Ordering::SeqCst);
        if (state.token.is_some() || state.card.is_some() || state.unrecognized)
            && state.token_changes != changes
        {
            state.drop_token();
        }
        if !slot.present.load(Ordering::SeqCst) {
            if state.token.is_some() || state.card.is_some() {
                state.drop_token();
            }
            return Err(Error::TokenNotPresent);
        }
        if state.token.is_none() {
            if state.unrecognized {
                return Err(Error::TokenNotRecognized);
            }
            state.token_changes = changes;
            self.load_token(slot, &mut state, with_pin_status)?;
        }
        Ok(state)
    }

    /// Reads the card in `slot`: identifies its application and reads its
    /// public data (from the disk cache where the card's identity matches),
    /// and the PIN state when `with_pin_status` (token info shows it).
    pub(super) fn load_token(
        &self,
        slot: &Slot,
        state: &mut SlotState,
        with_pin_status: bool,
    ) -> Result<()> {
        let mut card = match self.backend.connect(&slot.reader) {
            Ok(card) => card,
            Err(TransportError::CardRemoved | TransportError::ReaderGone) => {
                slot.present.store(false, Ordering::SeqCst);
                return Err(Error::TokenNotPresent);
            }
            Err(other) => return Err(other.into()),
        };
        let atr = card.atr().to_vec();
        let mut engine_state = EngineState::default();
        let loaded = card.with_transaction(|link| -> std::result::Result<_, AppError> {
            let Some(app) = self.profiles.identify(&atr, link)? else {
                return Ok(None);
            };
            let mut card =
                Transaction::with_engine_state(link, app.profile().channel, &mut engine_state);
            let recall = CacheRecall {
                store: self.cache.as_deref(),
                profile: &app.profile().name,
                atr: &atr,
            };
            let mut info = app.read_card(&mut card, &recall)?;
            if info.pin.is_none() && with_pin_status {
                info.pin = Some(app.pin_status(&mut card)?);
            }
            Ok(Some((app, info)))
        });
        let loaded = match loaded {
            Ok(inner) => inner.map_err(Error::from),
            Err(err) => Err(Error::from(err)),
        };
        match loaded {
            Ok(Some((app, mut info))) => {
                apply_policy(&self.policy, &mut info.keys);
                let objects = token::objects_for_card(slot.id, &info);
                let cache = match (&self.cache, &info.identity) {
                    (Some(store), Some(identity)) => Some((
                        Arc::clone(store),
                        cache_key(&app.profile().name, &atr, identity),
                    )),
                    _ => None,
                };
                let mut token = LoadedToken {
                    app,
                    pin: PinStatus::default(),
                    pin_known: false,
                    objects,
                    pin_failed: false,
                    most_tries: None,
                    pin_pad: card.has_pin_pad(),
                    slot_id: slot.id,
                    info,
                    cache,
                    policy: self.policy.clone(),
                    audit: self.audit.clone().map(|audit| (audit, slot.reader.clone())),
                };
                if let Some(status) = token.info.pin {
                    token.record_pin(status);
                }
                token.remember(&engine_state);
                state.login.end();
                state.card = Some(Card::new(card, true, engine_state));
                state.token = Some(token);
                self.audit(slot, state, "card", Vec::new);
                Ok(())
            }
            Ok(None) => {
                state.unrecognized = true;
                state.card = Some(Card::new(card, false, engine_state));
                Err(Error::TokenNotRecognized)
            }
            Err(Error::DeviceRemoved) => {
                slot.present.store(false, Ordering::SeqCst);
                Err(Error::TokenNotPresent)
            }
            Err(other) => Err(other),
        }
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&self, id: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
        let slot = self.slot(id)?;
        let mut state = self.token_state_with(&slot, true)?;
        ensure_pin_known(&mut state)?;
        let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
        let (session_count, rw_session_count) = {
            let sessions = self.sessions_read();
            let of_slot = sessions.values().filter(|entry| entry.slot == id);
            let rw = of_slot.clone().filter(|entry| entry.read_write).count();
            (of_slot.count() as CK_ULONG, rw as CK_ULONG)
        };
        let max_tries =
            (state.card.as_ref()).and_then(|card| token.app.pin_max_tries(card.engine_state()));
        let pin = &token.app.profile().pin;
        Ok(CK_TOKEN_INFO {
            label: padded(&token.info.label),
            manufacturerID: padded(&token.info.manufacturer),
            model: padded(&token.info.model),
            serialNumber: padded(&token.info.serial),
            flags: token.flags(max_tries),
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: session_count,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: rw_session_count,
            ulMaxPinLen: pin.max_length as CK_ULONG,
            ulMinPinLen: pin.min_length as CK_ULONG,
            ulTotalPublicMemory: token::UNAVAILABLE,
            ulFreePublicMemory: token::UNAVAILABLE,
            ulTotalPrivateMemory: token::UNAVAILABLE,
            ulFreePrivateMemory: token::UNAVAILABLE,
            hardwareVersion: CK_VERSION { major: 0, minor: 0 },
            firmwareVersion: CK_VERSION { major: 0, minor: 0 },
            utcTime: [b' '; 16],
        })
    }

    /// The profile whose ATR pattern comes nearest to `atr`, with how many
    /// bytes differ (see [`ProfileSet::closest_by_atr`]).
    ///
    /// [`ProfileSet::closest_by_atr`]: crate::profile::ProfileSet::closest_by_atr
    pub fn closest_profile(&self, atr: &[u8]) -> Option<(String, usize)> {
        self.profiles
            .closest_by_atr(atr)
            .map(|(name, distance)| (name.to_string(), distance))
    }

    /// What the module knows about the card in slot `id` beyond
    /// `C_GetTokenInfo` (for tools that show a card's state, such as the
    /// Rust API): its ATR, the card profile that recognised it (`None` for
    /// a card no profile knows) and the PIN tries the card reported.
    /// `CKR_TOKEN_NOT_PRESENT` for an empty reader.
    ///
    /// For a card no profile knows, [`Module::closest_profile`] names the
    /// profile whose ATR pattern comes nearest.
    pub fn card_details(&self, id: CK_SLOT_ID) -> Result<CardDetails> {
        let slot = self.slot(id)?;
        let mut state = match self.token_state_with(&slot, true) {
            Ok(state) => state,
            Err(Error::TokenNotRecognized) => {
                let state = slot.lock();
                let card = state.card.as_ref().ok_or(Error::TokenNotPresent)?;
                return Ok(CardDetails {
                    atr: card.atr().to_vec(),
                    profile: None,
                    pin_tries_left: None,
                    cache: CacheUse::NotCached,
                });
            }
            Err(other) => return Err(other),
        };
        ensure_pin_known(&mut state)?;
        let atr = state.card.as_ref().map(|card| card.atr().to_vec());
        let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
        Ok(CardDetails {
            atr: atr.ok_or(Error::TokenNotPresent)?,
            profile: Some(token.app.profile().name.clone()),
            pin_tries_left: if token.pin.blocked {
                Some(0)
            } else {
                token.pin.tries_left
            },
            cache: match (&self.cache, &token.cache) {
                (None, _) => CacheUse::Off,
                (Some(_), None) => CacheUse::NotCached,
                (Some(_), Some(_)) if token.info.recalled => CacheUse::Used,
                (Some(_), Some(_)) => CacheUse::ReadFromCard,
            },
        })
    }

    /// The tries left of the code that unblocks the user PIN in slot `id`
    /// (PIV: the PUK; OpenPGP: the Resetting Code, or PW3 without one),
    /// asked now without spending a try: `Some(0)` when it is blocked,
    /// `None` when the card cannot tell it that way.
    pub fn puk_tries_left(&self, id: CK_SLOT_ID) -> Result<Option<u8>> {
        let slot = self.slot(id)?;
        let mut state = self.token_state_with(&slot, false)?;
        let tells = match (&state.card, &state.token) {
            (Some(card), Some(token)) => token.app.tells_puk_status(card.engine_state()),
            _ => false,
        };
        if !tells {
            return Ok(None);
        }
        let status = card_operation(&mut state, |app, card| app.puk_status(card))?;
        Ok(status.and_then(|status| {
            if status.blocked {
                Some(0)
            } else {
                status.tries_left
            }
        }))
    }

    /// `C_GetMechanismList`.
    pub fn mechanism_list(&self, id: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        let slot = self.slot(id)?;
        Ok(self
            .token_mechanisms(&slot)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// `C_GetMechanismInfo`.
    pub fn mechanism_info(
        &self,
        id: CK_SLOT_ID,
        kind: CK_MECHANISM_TYPE,
    ) -> Result<CK_MECHANISM_INFO> {
        let slot = self.slot(id)?;
        self.token_mechanisms(&slot)?
            .into_iter()
            .find(|(m, _)| *m == kind)
            .map(|(_, info)| info)
            .ok_or(Error::MechanismInvalid)
    }
}

/// The card in a slot as [`Module::card_details`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardDetails {
    /// The card's answer-to-reset.
    pub atr: Vec<u8>,
    /// The name of the card profile that recognised the card; `None` when
    /// no profile did.
    pub profile: Option<String>,
    /// The user PIN's tries left, when the card reports them (0: blocked).
    pub pin_tries_left: Option<u8>,
    /// Where the token's public data (keys, certificates) came from.
    pub cache: CacheUse,
}

/// Where a token's public data came from: the disk cache or the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// The module keeps no disk cache (switched off, or no place for it).
    Off,
    /// Read from the card, not cached: nothing on the card identifies its
    /// public data (or no profile knows the card).
    NotCached,
    /// Read from the card, and kept in the disk cache for the next time.
    ReadFromCard,
    /// From the disk cache, after the card proved the entry current.
    Used,
}

/// Makes sure the token's PIN state is known: the card was read for
/// something else first, so its PIN state is read once (for the token
/// flags; polling costs no APDU after that).
fn ensure_pin_known(state: &mut SlotState) -> Result<()> {
    let pin_known = state.token.as_ref().is_some_and(|token| token.pin_known);
    if !pin_known {
        let status = card_operation(state, |app, card| app.pin_status(card))?;
        if let Some(token) = state.token.as_mut() {
            token.record_pin(status);
        }
    }
    Ok(())
}

/// The disk cache as the engines see it while they read a card.
pub(super) struct CacheRecall<'a> {
    pub(super) store: Option<&'a CacheStore>,
    pub(super) profile: &'a str,
    pub(super) atr: &'a [u8],
}

impl Recall for CacheRecall<'_> {
    fn remembers(&self) -> bool {
        self.store.is_some()
    }

    fn recall(&self, identity: &[u8]) -> Option<Vec<Record>> {
        let entry = self
            .store?
            .load(&cache_key(self.profile, self.atr, identity))?;
        // An object of a kind this version does not know: the entry is not
        // this version's to use.
        entry
            .objects
            .into_iter()
            .map(|object| {
                Some(Record {
                    kind: RecordKind::from_code(object.kind)?,
                    name: object.name,
                    data: object.data,
                })
            })
            .collect()
    }

    fn forget(&self, identity: &[u8]) {
        if let Some(store) = self.store {
            store.forget(&cache_key(self.profile, self.atr, identity));
        }
    }
}

/// A card's cache entry: its profile, its ATR and what identifies its
/// public data (PIV: the whole CHUID object).
pub(super) fn cache_key(profile: &str, atr: &[u8], identity: &[u8]) -> CacheKey {
    CacheKey::new(&[profile.as_bytes(), atr, identity])
}

/// Reads the keys a lazy first read of the card left out (once per token):
/// token info needs only the first certificate, objects need them all.
pub(super) fn ensure_all_keys(state: &mut SlotState) -> Result<()> {
    let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
    if token.info.keys_complete {
        return Ok(());
    }
    let from = token.info.key_slots_read;
    let known = token.info.keys.clone();
    let keys = card_operation(state, |app, card| {
        app.read_remaining_keys(card, &known, from)
    })?;
    add_remaining_keys(state, keys);
    Ok(())
}

/// Completes a token's keys with what a later read found (all of them),
/// and stores the now complete public data in the disk cache.
pub(super) fn add_remaining_keys(state: &mut SlotState, keys: Vec<crate::profile::KeyInfo>) {
    let Some(token) = state.token.as_mut() else {
        return;
    };
    token.info.keys = keys;
    apply_policy(&token.policy, &mut token.info.keys);
    token.info.keys_complete = true;
    token.objects = token::objects_for_card(token.slot_id, &token.info);
    if let Some(card) = state.card.as_ref() {
        token.remember(card.engine_state());
    }
}

/// Puts what `policy` refuses on each key, and says in the log which keys
/// it refuses altogether.
fn apply_policy(policy: &Policy, keys: &mut [crate::profile::KeyInfo]) {
    for key in keys {
        key.refusals = policy.refusals(&key.public_key);
        if let Some(why) = key.refusals.key {
            log::info!(
                "key {:?} ({} bits) refused by the algorithm policy: {why:?}",
                key.label,
                key.public_key.bits()
            );
        }
    }
}
