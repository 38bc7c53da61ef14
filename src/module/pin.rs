//! PIN management: login checks, `C_SetPIN`, and unblocking.
//!
//! Unblocking through standard PKCS#11: `C_Login(CKU_SO, unblock code)` in a
//! read/write session, then `C_InitPIN(new PIN)`. The SO of a PIV token is
//! the holder of the PUK (OpenPGP: the Resetting Code). PIV cards can only
//! check the PUK together with the new PIN (RESET RETRY COUNTER), so the SO
//! login keeps the code in a zeroizing buffer until `C_InitPIN` or
//! `C_Logout`, and a wrong PUK is reported by `C_InitPIN`.

use super::{audit_result, card_operation, Module, SlotState};
use crate::card::Transaction;
use crate::error::{Error, Result};
use crate::profile::{AppError, CardApp, KeyInfo, PinStatus};
use cryptoki_sys::CK_SESSION_HANDLE;
use zeroize::Zeroizing;

/// Runs a card operation that presents the user PIN (or the unblocking
/// code), refusing a blocked PIN without touching the card, and records
/// what the card said about the tries left.
fn pin_operation(
    state: &mut SlotState,
    mut op: impl FnMut(&dyn CardApp, &mut Transaction) -> std::result::Result<(), AppError>,
) -> Result<()> {
    let outcome = card_operation(state, |app, card| match op(app, card) {
        Ok(()) => Ok(Ok(())),
        Err(err @ (AppError::PinIncorrect(_) | AppError::PinLocked)) => Ok(Err(err)),
        Err(other) => Err(other),
    })?;
    let token = state.token.as_mut().ok_or(Error::TokenNotPresent)?;
    match outcome {
        Ok(()) => {
            // A right PIN resets the card's counter to its maximum, which
            // cards do not report: "unknown" shows no low count.
            token.pin_failed = false;
            token.record_pin(PinStatus {
                tries_left: None,
                verified: true,
                blocked: false,
            });
            Ok(())
        }
        Err(AppError::PinIncorrect(tries)) => {
            token.pin_failed = true;
            token.record_pin(PinStatus {
                tries_left: tries,
                verified: false,
                blocked: tries == Some(0),
            });
            Err(Error::PinIncorrect)
        }
        Err(_) => {
            token.record_pin(PinStatus {
                tries_left: Some(0),
                verified: false,
                blocked: true,
            });
            Err(Error::PinLocked)
        }
    }
}

/// The token's profile rules for PINs, checked before any APDU.
fn check_pin(state: &SlotState, pin: &[u8]) -> Result<()> {
    let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
    token
        .app
        .profile()
        .check_pin_length(pin)
        .map_err(Error::from)?;
    if token.pin.blocked {
        return Err(Error::PinLocked);
    }
    Ok(())
}

/// Checks the PIN rules, refuses a blocked PIN without touching the card,
/// then VERIFYs and records what the card said about its tries.
pub(super) fn verify_user_pin(state: &mut SlotState, pin: &[u8]) -> Result<()> {
    check_pin(state, pin)?;
    login_reading_pending_keys(state, |app, card| card.verify_pin(app, pin).map(drop))
}

/// A context-specific login: the PIN exactly as `key` wants it right
/// before its next use (OpenPGP: PW1 for one signature). A key with a PIN
/// of its own (a PKCS#15 signature PIN) has the engine check that PIN's
/// rules, and its tries are not the user PIN's: the token's PIN flags stay.
pub(super) fn verify_context_pin(state: &mut SlotState, key: &KeyInfo, pin: &[u8]) -> Result<()> {
    if key.own_pin {
        return card_operation(state, |app, card| {
            card.verify_pin_for_key(app, key, pin).map(drop)
        });
    }
    check_pin(state, pin)?;
    pin_operation(state, |app, card| {
        card.verify_pin_for_key(app, key, pin).map(drop)
    })
}

/// Has the user enter the PIN on the reader's PIN pad (a blocked PIN is
/// refused without touching the card).
pub(super) fn verify_user_pin_on_pad(state: &mut SlotState) -> Result<()> {
    let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
    if token.pin.blocked {
        return Err(Error::PinLocked);
    }
    login_reading_pending_keys(state, |app, card| card.verify_pin_pad_login(app).map(drop))
}

/// A user login (`verify`) that also reads, in its transaction, the keys a
/// lazy first read of the card left out: a login is almost always followed
/// by a search for keys, and this saves that search a SELECT. A failed read
/// leaves them for the search; the login stands.
fn login_reading_pending_keys(
    state: &mut SlotState,
    verify: impl Fn(&dyn CardApp, &mut Transaction) -> std::result::Result<(), AppError>,
) -> Result<()> {
    let pending = state
        .token
        .as_ref()
        .map(|token| &token.info)
        .filter(|info| !info.keys_complete)
        .map(|info| (info.keys.clone(), info.key_slots_read));
    let mut more = None;
    pin_operation(state, |app, card| {
        verify(app, card)?;
        if let Some((known, from)) = &pending {
            match app.read_remaining_keys(card, known, *from) {
                Ok(keys) => more = Some(keys),
                Err(err) => log::debug!("reading the remaining keys after login failed: {err}"),
            }
        }
        Ok(())
    })?;
    let pending = state
        .token
        .as_ref()
        .is_some_and(|token| !token.info.keys_complete);
    if let (Some(keys), true) = (more, pending) {
        super::add_remaining_keys(state, keys);
    }
    Ok(())
}

impl Module {
    /// `C_Login(CKU_SO)`: keeps the unblocking code for `C_InitPIN`.
    pub(super) fn login_so(&self, state: &mut SlotState, code: &[u8]) -> Result<()> {
        if state.logged_in() {
            return Err(Error::UserAnotherAlreadyLoggedIn);
        }
        if state.so_unblock_code.is_some() {
            return Err(Error::UserAlreadyLoggedIn);
        }
        let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
        let profile = token.app.profile();
        if profile.pin.puk_reference.is_none() {
            return Err(Error::UserTypeInvalid);
        }
        profile.check_puk_length(code).map_err(Error::from)?;
        state.so_unblock_code = Some(Zeroizing::new(code.to_vec()));
        Ok(())
    }

    /// `C_SetPIN`: changes the user PIN, with or without a login. Both PINs
    /// `None` (NULL in C): the user types both on the reader's PIN pad
    /// (PKCS#11's protected authentication path).
    pub fn set_pin(
        &self,
        handle: CK_SESSION_HANDLE,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()> {
        self.with_session(handle, |session, state, slot| {
            if !session.read_write {
                return Err(Error::SessionReadOnly);
            }
            if state.so_unblock_code.is_some() {
                // Changing the PUK itself is not offered.
                return Err(Error::FunctionNotSupported);
            }
            let changed = match (old, new) {
                (Some(old), Some(new)) => {
                    check_pin(state, old)?;
                    check_pin(state, new)?;
                    pin_operation(state, |app, card| app.change_pin(card, old, new))
                }
                (None, None) => {
                    let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
                    if !token.pin_pad {
                        return Err(Error::ArgumentsBad);
                    }
                    if token.pin.blocked {
                        return Err(Error::PinLocked);
                    }
                    pin_operation(state, |app, card| app.change_pin_pad(card))
                }
                _ => return Err(Error::ArgumentsBad),
            };
            self.audit(slot, state, "pin-change", || {
                vec![("result", audit_result(&changed))]
            });
            changed?;
            // The copy kept to restore a lost login follows the card's PIN
            // (the old one would spend a try at the next re-login).
            state.login.pin_changed(new);
            Ok(())
        })
    }

    /// `C_InitPIN`: in an SO session, sets a new user PIN with the
    /// unblocking code and resets the PIN's retry counter.
    pub fn init_pin(&self, handle: CK_SESSION_HANDLE, new: &[u8]) -> Result<()> {
        self.with_session(handle, |session, state, slot| {
            if !session.read_write {
                return Err(Error::SessionReadOnly);
            }
            let code = state
                .so_unblock_code
                .clone()
                .ok_or(Error::UserNotLoggedIn)?;
            let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
            token
                .app
                .profile()
                .check_pin_length(new)
                .map_err(Error::from)?;
            let outcome = card_operation(state, |app, card| app.unblock_pin(card, &code, new));
            self.audit(slot, state, "pin-unblock", || {
                vec![("result", audit_result(&outcome))]
            });
            match outcome {
                Ok(()) => {
                    if let Some(token) = state.token.as_mut() {
                        token.pin_failed = false;
                        token.record_pin(PinStatus::default());
                    }
                    Ok(())
                }
                Err(Error::PinIncorrect | Error::PinLocked) => {
                    // The unblocking code was wrong (or is blocked): it is of
                    // no further use in this SO session.
                    state.so_unblock_code = None;
                    outcome
                }
                Err(other) => Err(other),
            }
        })
    }
}

impl Module {
    /// The PIN to present right before an operation with `key`: the one
    /// the context-specific login gave the operation; for a key that wants
    /// the user PIN before every use and got none, the logged-in user's PIN
    /// when the configuration waives the user's consent
    /// ([`Module::ignoring_user_consent`]), else `CKR_USER_NOT_LOGGED_IN`
    /// (always for a key with a PIN of its own: the user PIN is not its
    /// PIN, and presenting it would cost a try).
    pub(super) fn context_pin(
        &self,
        key: &KeyInfo,
        given: Option<Zeroizing<Vec<u8>>>,
        state: &SlotState,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if !key.always_authenticate || given.is_some() {
            return Ok(given);
        }
        let kept = state.login.pin().cloned();
        match kept {
            Some(pin) if self.ignore_user_consent && !key.own_pin => Ok(Some(pin)),
            _ => Err(Error::UserNotLoggedIn),
        }
    }
}
