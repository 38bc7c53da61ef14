//! A card in a reader: its token information, login, and keys.

use super::error::{Error, PinTries, Result};
use super::key::Key;
use super::text;
use crate::error::Error as ModuleError;
use crate::module::CacheUse;
use crate::module::Module;
use cryptoki_sys::*;
use std::sync::{Arc, Mutex, MutexGuard};

/// The PKCS#11 session a [`Card`] and its [`Key`]s work through; closed when
/// the last of them is dropped (which, for the process's last session with
/// the card, logs the card out).
#[derive(Debug)]
pub(super) struct CardSession {
    pub(super) module: Arc<Module>,
    pub(super) handle: CK_SESSION_HANDLE,
    slot: CK_SLOT_ID,
    /// Serialises multi-call sequences (find, sign) on the session.
    busy: Mutex<()>,
}

impl CardSession {
    /// Holds the session for a sequence of calls.
    pub(super) fn hold(&self) -> MutexGuard<'_, ()> {
        self.busy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The handles of the objects matching `template`; the caller holds the
    /// session.
    pub(super) fn find(
        &self,
        template: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        self.module.find_init(self.handle, template)?;
        let mut found = Vec::new();
        let result = loop {
            match self.module.find_next(self.handle, FIND_BATCH) {
                Ok(batch) if batch.is_empty() => break Ok(found),
                Ok(batch) => found.extend(batch),
                Err(err) => break Err(err.into()),
            }
        };
        self.module.find_final(self.handle)?;
        result
    }

    /// Whether this process is logged in to the card.
    pub(super) fn logged_in(&self) -> Result<bool> {
        let info = self.module.session_info(self.handle)?;
        Ok(matches!(
            info.state,
            CKS_RO_USER_FUNCTIONS | CKS_RW_USER_FUNCTIONS
        ))
    }
}

impl Drop for CardSession {
    fn drop(&mut self) {
        // The card may be gone already: its session ended with it.
        let _ = self.module.close_session(self.handle);
    }
}

/// Object handles asked for per `C_FindObjects` round.
const FIND_BATCH: usize = 64;

/// A template matching the objects of class `class`.
pub(super) fn class_template(class: CK_OBJECT_CLASS) -> (CK_ATTRIBUTE_TYPE, Vec<u8>) {
    (CKA_CLASS, class.to_ne_bytes().to_vec())
}

/// What the card says about itself (PKCS#11 token information, typed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The token's label (e.g. the cardholder's name, or the card
    /// application's name).
    pub label: String,
    /// The card's serial number.
    pub serial: String,
    /// Who made the card (or its application).
    pub manufacturer: String,
    /// The card's model or application.
    pub model: String,
    /// The user PIN's tries left.
    pub pin_tries: PinTries,
    /// The user PIN's tries left as a number, as the card last reported it
    /// (0 when the PIN is blocked). `None` when the card does not say, or
    /// after a right PIN (the count is then back at its maximum, which
    /// cards do not report).
    pub pin_tries_left: Option<u8>,
    /// The PIN is entered on the reader's own keypad
    /// ([`Card::login_on_pin_pad`]).
    pub pin_pad: bool,
    /// The shortest PIN the card takes, in bytes.
    pub min_pin_length: usize,
    /// The longest PIN the card takes, in bytes.
    pub max_pin_length: usize,
    /// Where the card's keys and certificates came from: the disk cache
    /// or the card.
    pub cache: CacheUse,
}

/// The PIN tries left, as the token flags tell them.
fn pin_tries(flags: CK_FLAGS) -> PinTries {
    if flags & CKF_USER_PIN_LOCKED != 0 {
        PinTries::Blocked
    } else if flags & CKF_USER_PIN_FINAL_TRY != 0 {
        PinTries::FinalTry
    } else if flags & CKF_USER_PIN_COUNT_LOW != 0 {
        PinTries::Low
    } else {
        PinTries::Plenty
    }
}

/// The card in a reader, with the application a card profile recognised
/// (PIV, OpenPGP…). Cheap to clone; clones share one session.
#[derive(Debug, Clone)]
pub struct Card {
    session: Arc<CardSession>,
    reader: String,
}

impl Card {
    pub(super) fn open(module: Arc<Module>, slot: CK_SLOT_ID, reader: String) -> Result<Card> {
        // Read/write: changing the PIN (`C_SetPIN`) and the unblocking
        // code's login (`C_Login(CKU_SO)`, refused while a read-only
        // session exists) need it; the API changes no objects.
        let handle = match module.open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION) {
            Ok(handle) => handle,
            Err(ModuleError::TokenNotPresent | ModuleError::SlotIdInvalid) => {
                return Err(Error::NoCard)
            }
            Err(other) => return Err(other.into()),
        };
        Ok(Card {
            session: Arc::new(CardSession {
                module,
                handle,
                slot,
                busy: Mutex::new(()),
            }),
            reader,
        })
    }

    /// The name of the reader the card is in.
    pub fn reader_name(&self) -> &str {
        &self.reader
    }

    /// The card's label, serial number, maker and PIN state, read now.
    pub fn token_info(&self) -> Result<TokenInfo> {
        let info = self.session.module.token_info(self.session.slot)?;
        let details = self.session.module.card_details(self.session.slot)?;
        Ok(TokenInfo {
            label: text(&info.label),
            serial: text(&info.serialNumber),
            manufacturer: text(&info.manufacturerID),
            model: text(&info.model),
            pin_tries: pin_tries(info.flags),
            pin_tries_left: details.pin_tries_left,
            pin_pad: info.flags & CKF_PROTECTED_AUTHENTICATION_PATH != 0,
            min_pin_length: usize::try_from(info.ulMinPinLen).unwrap_or(usize::MAX),
            max_pin_length: usize::try_from(info.ulMaxPinLen).unwrap_or(usize::MAX),
            cache: details.cache,
        })
    }

    /// The tries left of the code that unblocks the PIN
    /// ([`Card::unblock_pin`]: PIV: the PUK; OpenPGP: the resetting code,
    /// or the Admin PIN on a card without one), asked now without spending
    /// a try. `Some(0)`: it is blocked. `None` when the card does not tell
    /// it without a try (PIV cards without Yubico's GET METADATA,
    /// PKCS#15 cards).
    pub fn puk_tries_left(&self) -> Result<Option<u8>> {
        Ok(self.session.module.puk_tries_left(self.session.slot)?)
    }

    /// The name of the card profile that recognised the card (e.g.
    /// `yubikey-piv`): the profiles are listed in the README.
    pub fn profile(&self) -> Result<String> {
        let details = self.session.module.card_details(self.session.slot)?;
        details.profile.ok_or(Error::UnknownCard)
    }

    /// Changes the user PIN from `old` to `new` (with or without a login;
    /// a login stays valid with the new PIN). A wrong `old` PIN gives
    /// [`Error::WrongPin`] with the tries left and spends one try.
    pub fn change_pin(&self, old: &[u8], new: &[u8]) -> Result<()> {
        let result = self
            .session
            .module
            .set_pin(self.session.handle, Some(old), Some(new));
        self.login_result(result)
    }

    /// Changes the user PIN with the current and the new PIN typed on the
    /// reader's keypad (for readers with one: [`TokenInfo::pin_pad`]);
    /// waits while the user types them. A wrong current PIN gives
    /// [`Error::WrongPin`] and spends one try; a login ends (the module
    /// never saw the new PIN to restore it with). [`Error::Unsupported`]
    /// when the reader has no PIN pad or one that cannot change PINs.
    pub fn change_pin_on_pin_pad(&self) -> Result<()> {
        match self.session.module.set_pin(self.session.handle, None, None) {
            Err(ModuleError::FunctionNotSupported) => Err(Error::Unsupported(
                "the reader's PIN pad cannot change a PIN",
            )),
            result => self.login_result(result),
        }
    }

    /// Unblocks the user PIN (or resets a forgotten one) with the
    /// unblocking code `puk` (PIV: the PUK; OpenPGP: the resetting code),
    /// setting the PIN to `new_pin` with its tries reset.
    /// [`Error::WrongPuk`] if the card refuses the code,
    /// [`Error::PukBlocked`] if the code is blocked,
    /// [`Error::Unsupported`] for a card without an unblocking code, and
    /// [`Error::AlreadyLoggedIn`] while this process is logged in.
    pub fn unblock_pin(&self, puk: &[u8], new_pin: &[u8]) -> Result<()> {
        let module = &self.session.module;
        let handle = self.session.handle;
        match module.login(handle, CKU_SO, Some(puk)) {
            Ok(()) => {}
            Err(ModuleError::UserTypeInvalid) => {
                return Err(Error::Unsupported("the card has no unblocking code"))
            }
            Err(ModuleError::PinLenRange) => return Err(Error::PukLength),
            Err(other) => return Err(other.into()),
        }
        let result = module.init_pin(handle, new_pin);
        // Ends the unblocking code's login (its copy is wiped) whatever
        // the card said.
        let _ = module.logout(handle);
        match result {
            Ok(()) => Ok(()),
            Err(ModuleError::PinIncorrect) => Err(Error::WrongPuk),
            Err(ModuleError::PinLocked) => Err(Error::PukBlocked),
            Err(other) => Err(other.into()),
        }
    }

    /// Logs this process in to the card with the user PIN. The module keeps
    /// the PIN (zeroized when the login ends) to restore a login the card
    /// loses to another process; the caller may wipe its copy right away.
    ///
    /// A wrong PIN gives [`Error::WrongPin`] with the tries left.
    pub fn login(&self, pin: &[u8]) -> Result<()> {
        let result = self
            .session
            .module
            .login(self.session.handle, CKU_USER, Some(pin));
        self.login_result(result)
    }

    /// Logs in with the PIN typed on the reader's keypad (for readers with
    /// one: [`TokenInfo::pin_pad`]); waits while the user types it.
    pub fn login_on_pin_pad(&self) -> Result<()> {
        let result = self
            .session
            .module
            .login(self.session.handle, CKU_USER, None);
        self.login_result(result)
    }

    fn login_result(&self, result: crate::Result<()>) -> Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(ModuleError::PinIncorrect) => {
                let tries = self
                    .token_info()
                    .map_or(PinTries::Low, |info| info.pin_tries);
                Err(Error::WrongPin { tries })
            }
            Err(ModuleError::ArgumentsBad) => Err(Error::Unsupported("the reader has no PIN pad")),
            Err(other) => Err(other.into()),
        }
    }

    /// Whether this process is logged in to the card.
    pub fn is_logged_in(&self) -> Result<bool> {
        self.session.logged_in()
    }

    /// Ends this process's login; the card forgets the PIN, the module
    /// wipes its copy.
    pub fn logout(&self) -> Result<()> {
        self.session.module.logout(self.session.handle)?;
        Ok(())
    }

    /// The card's keys, each with its certificate when the card holds one.
    /// Listed before a login too (from their public keys); what the card
    /// lets a PIN-protected key do is known after the login
    /// ([`Key::capabilities`]).
    pub fn keys(&self) -> Result<Vec<Key>> {
        let handles = {
            let _held = self.session.hold();
            self.session.find(vec![class_template(CKO_PUBLIC_KEY)])?
        };
        handles
            .into_iter()
            .map(|handle| Key::read(&self.session, handle))
            .collect()
    }
}
