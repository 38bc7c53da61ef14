//! The Rust API's error: what went wrong, in words a program can act on.

use crate::error::Error as ModuleError;

/// How many PIN tries a card has left, as far as the module can tell (cards
/// report tries, not always their maximum; PKCS#11 gives no exact count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinTries {
    /// No wrong PIN is known since the last correct one.
    Plenty,
    /// Wrong PINs were entered since the last correct one: fewer tries than
    /// the card started with.
    Low,
    /// One more wrong PIN blocks the PIN.
    FinalTry,
    /// The PIN is blocked; only the unblocking code (PUK) or an
    /// administrator can reset it.
    Blocked,
}

/// An error of the Rust API ([`crate::api`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reader holds no card.
    #[error("no card in the reader")]
    NoCard,
    /// The card in the reader is not one the module knows (no card profile
    /// matched it).
    #[error("the card is not one p11card knows")]
    UnknownCard,
    /// The card (or its reader) was removed, or the PC/SC service went away.
    #[error("the card was removed")]
    CardRemoved,
    /// The card refused the PIN; `tries` says what is left.
    #[error("wrong PIN ({tries:?} tries left)")]
    WrongPin {
        /// The tries left after this wrong PIN.
        tries: PinTries,
    },
    /// The PIN is blocked.
    #[error("the PIN is blocked")]
    PinBlocked,
    /// The PIN is too short or too long for this card.
    #[error("the PIN's length is out of the card's range")]
    PinLength,
    /// The card refused the unblocking code (PUK, or OpenPGP's resetting
    /// code) given to unblock the PIN.
    #[error("wrong unblocking code (PUK)")]
    WrongPuk,
    /// The unblocking code (PUK) is blocked too: only the card's issuer
    /// can help (or the card must be reset).
    #[error("the unblocking code (PUK) is blocked")]
    PukBlocked,
    /// The unblocking code is too short or too long for this card.
    #[error("the unblocking code's length is out of the card's range")]
    PukLength,
    /// A login of this process to this card is already in place (another
    /// [`Card`](crate::api::Card) of this process logged in).
    #[error("already logged in")]
    AlreadyLoggedIn,
    /// The operation needs a login first ([`Card::login`](crate::api::Card::login)).
    #[error("not logged in")]
    NotLoggedIn,
    /// The key wants the PIN right before each use (e.g. PIV key 9C, the
    /// digital signature key): see
    /// [`Context::from_module`](crate::api::Context::from_module) with
    /// [`Module::ignoring_user_consent`](crate::Module::ignoring_user_consent).
    #[error("the key wants the PIN entered right before each use")]
    PinEveryUse,
    /// The key cannot do this (wrong key type or curve, or the card does not
    /// let the key sign).
    #[error("the key cannot do this: {0}")]
    Unsupported(&'static str),
    /// The card answered with something the module could not use (its
    /// signature did not verify, a malformed answer, an attribute in a form
    /// not expected).
    #[error("the card gave an unusable answer")]
    BadCard,
    /// Any other error of the PKCS#11 layer, as its `CKR_*` code.
    #[error("PKCS#11 error {0}")]
    Module(#[source] ModuleError),
}

impl From<ModuleError> for Error {
    fn from(err: ModuleError) -> Self {
        match err {
            ModuleError::TokenNotPresent
            | ModuleError::DeviceRemoved
            | ModuleError::SessionHandleInvalid => Error::CardRemoved,
            ModuleError::TokenNotRecognized => Error::UnknownCard,
            ModuleError::PinLocked => Error::PinBlocked,
            ModuleError::PinLenRange => Error::PinLength,
            ModuleError::UserAlreadyLoggedIn | ModuleError::UserAnotherAlreadyLoggedIn => {
                Error::AlreadyLoggedIn
            }
            ModuleError::UserNotLoggedIn => Error::NotLoggedIn,
            ModuleError::DeviceError => Error::BadCard,
            other => Error::Module(other),
        }
    }
}

impl From<Error> for signature::Error {
    fn from(err: Error) -> Self {
        signature::Error::from_source(err)
    }
}

/// Result with the Rust API's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
