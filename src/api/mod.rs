//! The Rust API: readers, cards, keys and their certificates, for programs
//! that link the crate (no PKCS#11 types, no C structs).
//!
//! A [`Context`] lists the [`Reader`]s; a reader gives the [`Card`] in it; a
//! card logs in with the PIN and lists its [`Key`]s with their
//! [`Certificate`]s. A key signs through the RustCrypto traits
//! ([`signature::Signer`], [`signature::Keypair`]) as a [`P256Signer`],
//! [`P384Signer`], [`RsaPkcs1v15Signer`] or [`RsaPssSigner`], so it fits
//! wherever RustCrypto (or a TLS stack built on it) takes a signer. A card
//! also changes its PIN ([`Card::change_pin`]) and sets a new one with the
//! unblocking code ([`Card::unblock_pin`]); a reader shows its card's ATR
//! ([`Reader::atr`]) and a card the profile that recognised it
//! ([`Card::profile`]); [`Context::wait_for_card`] waits for a card (the
//! `p11card` command is built on this).
//!
//! Everything goes through [`Module`] (the same code the
//! PKCS#11 C ABI uses): the PIN is kept only there (zeroized at logout), the
//! card's signatures are checked against the key's public key before they
//! are returned, and a login is this process's, as for any PKCS#11 caller.
//!
//! ```no_run
//! use p11card::api::{EcCurve, KeyKind};
//! use p256::ecdsa::signature::Signer;
//!
//! let context = p11card::Context::new();
//! for reader in context.readers()? {
//!     println!("{}: card present: {}", reader.name(), reader.has_card());
//! }
//! let card = context.first_card()?;
//! let info = card.token_info()?;
//! println!("{} (serial {}), PIN tries: {:?}", info.label, info.serial, info.pin_tries);
//! card.login(b"123456")?;
//! let key = card
//!     .keys()?
//!     .into_iter()
//!     .find(|key| key.kind() == KeyKind::Ec(EcCurve::P256) && key.can_sign())
//!     .ok_or("no P-256 key")?;
//! let signer = key.p256_signer()?;
//! let signature: p256::ecdsa::Signature = signer.try_sign(b"message")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod card;
mod error;
mod key;
mod signers;

pub use crate::module::CacheUse;
pub use card::{Card, TokenInfo};
pub use error::{Error, PinTries, Result};
pub use key::{Capabilities, Certificate, EcCurve, Key, KeyKind};
pub use signers::{P256Signer, P384Signer, RsaHash, RsaPkcs1v15Signer, RsaPssSigner};

use crate::module::Module;
use crate::profile::ProfileSet;
use crate::transport::ReaderBackend;
use cryptoki_sys::{CKF_TOKEN_PRESENT, CK_SLOT_ID};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The trimmed text of a blank-padded PKCS#11 field.
fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).trim_end().to_string()
}

/// Entry point of the API: the readers of one backend (PC/SC, or a
/// simulated one in tests), with the card profiles that recognise cards.
///
/// Cheap to clone; clones share the readers, cards and login state (a login
/// belongs to the process, as in PKCS#11).
#[derive(Debug, Clone)]
pub struct Context {
    module: Arc<Module>,
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl Context {
    /// The PC/SC readers of this machine, with the card profiles built into
    /// the crate. Nothing is read from a reader until asked.
    pub fn new() -> Context {
        Context::with_backend(
            Box::new(crate::transport::pcsc::PcscBackend::new()),
            ProfileSet::embedded(),
        )
    }

    /// The readers of `backend` (e.g. simulated cards in tests), recognising
    /// cards with `profiles`.
    pub fn with_backend(backend: Box<dyn ReaderBackend>, profiles: ProfileSet) -> Context {
        Context::from_module(Module::new(backend, profiles))
    }

    /// Uses a module set up by the caller (a disk cache, or
    /// [`Module::ignoring_user_consent`] for keys that want the PIN before
    /// each use).
    pub fn from_module(module: Module) -> Context {
        Context {
            module: Arc::new(module),
        }
    }

    /// The algorithm policy the module applies
    /// ([`Module::with_policy`]).
    pub fn policy(&self) -> &crate::policy::Policy {
        self.module.policy()
    }

    /// The readers, as PC/SC lists them now.
    pub fn readers(&self) -> Result<Vec<Reader>> {
        self.module
            .slot_list(false, true)?
            .into_iter()
            .map(|slot| {
                let info = self.module.slot_info(slot)?;
                Ok(Reader {
                    module: Arc::clone(&self.module),
                    slot,
                    name: text(&info.slotDescription),
                    has_card: info.flags & CKF_TOKEN_PRESENT != 0,
                })
            })
            .collect()
    }

    /// The card in the first reader that holds a card the module knows.
    pub fn first_card(&self) -> Result<Card> {
        let mut first_error = Error::NoCard;
        for reader in self.readers()?.iter().filter(|reader| reader.has_card()) {
            match reader.card() {
                Ok(card) => return Ok(card),
                Err(err) if matches!(first_error, Error::NoCard) => first_error = err,
                Err(_) => {}
            }
        }
        Err(first_error)
    }

    /// Waits until a reader holds a card the module knows and returns it
    /// (at once if one is there). Readers plugged in meanwhile count (a USB
    /// token is its own reader). With a `timeout`, [`Error::NoCard`] when
    /// it passes first (or [`Error::UnknownCard`] if only cards no profile
    /// knows arrived).
    pub fn wait_for_card(&self, timeout: Option<Duration>) -> Result<Card> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            // The state before looking: a card that arrives after the look
            // is a change the wait sees.
            let known = self.module.reader_states()?;
            let last_error = match self.first_card() {
                Ok(card) => return Ok(card),
                Err(err @ (Error::NoCard | Error::UnknownCard | Error::CardRemoved)) => err,
                Err(other) => return Err(other),
            };
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => WAIT_ROUND,
            };
            if left.is_zero() {
                return Err(match last_error {
                    Error::UnknownCard => Error::UnknownCard,
                    _ => Error::NoCard,
                });
            }
            self.module
                .wait_for_reader_change(&known, left.min(WAIT_ROUND))?;
        }
    }
}

/// The longest single wait for a reader change in [`Context::wait_for_card`]
/// (it looks again after each).
const WAIT_ROUND: Duration = Duration::from_secs(5);

/// A card reader, as it was when [`Context::readers`] listed it.
#[derive(Debug, Clone)]
pub struct Reader {
    module: Arc<Module>,
    slot: CK_SLOT_ID,
    name: String,
    has_card: bool,
}

impl Reader {
    /// The reader's name (as PKCS#11 shows it: its first 64 bytes).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the reader held a card when it was listed.
    pub fn has_card(&self) -> bool {
        self.has_card
    }

    /// The answer-to-reset of the card in the reader (also of a card no
    /// profile knows): connects to the card the first time.
    /// [`Error::NoCard`] for an empty reader.
    pub fn atr(&self) -> Result<Vec<u8>> {
        match self.module.card_details(self.slot) {
            Ok(details) => Ok(details.atr),
            Err(crate::error::Error::TokenNotPresent) => Err(Error::NoCard),
            Err(other) => Err(other.into()),
        }
    }

    /// For a card no profile recognises: the profile whose ATR pattern
    /// comes nearest to the card's, and in how many bytes they differ.
    pub fn closest_profile(&self) -> Result<Option<(String, usize)>> {
        Ok(self.module.closest_profile(&self.atr()?))
    }

    /// The card in the reader: reads the card (its application, keys and
    /// certificates) the first time. [`Error::NoCard`] for an empty reader,
    /// [`Error::UnknownCard`] for a card no profile recognises.
    pub fn card(&self) -> Result<Card> {
        Card::open(Arc::clone(&self.module), self.slot, self.name.clone())
    }
}
