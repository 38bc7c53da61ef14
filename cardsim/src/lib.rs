//! Simulated smart cards for p11card's tests, benches and demos (never
//! shipped).
//!
//! [`SimPivCard`] is an in-process PIV card application (NIST SP 800-73-4
//! Part 2), [`SimOpenPgpCard`] an OpenPGP card application (OpenPGP Smart
//! Card Application spec 3.4), [`SimMyEidCard`] an Aventra MyEID card
//! (PKCS#15 file system, for OpenSC's `pkcs15-init`). Both hold embedded test keys and
//! certificates, are configurable per test, able to misbehave on purpose
//! ([`Misbehaviour`]), and log every APDU ([`LoggedApdu`]). A
//! [`HostileCard`] puts seeded, reproducible mischief between the module
//! and a PIV card, for whole-module fuzzing. [`SimBackend`]
//! puts such cards ([`SimCard`], holding a [`SimApplet`] of either kind) into
//! simulated readers behind p11card's
//! [`ReaderBackend`](p11card::transport::ReaderBackend).
//!
//! ```
//! use p11card::transport::ReaderBackend;
//! use p11card_cardsim::{SimBackend, SimPivCard, Slot, DEFAULT_READER};
//!
//! let (backend, card) = SimBackend::with_card(SimPivCard::new().only_slots(&[Slot::Authentication]));
//! let mut transport = backend.connect(DEFAULT_READER).unwrap();
//! let response = transport
//!     .with_transaction(|link| link.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00]))
//!     .unwrap()
//!     .unwrap();
//! assert_eq!(response[response.len() - 2..], [0x90, 0x00]);
//! assert_eq!(card.apdu_count(), 1);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod apdu;
mod applet;
mod backend;
mod card;
mod frame;
mod hostile;
mod keys;
mod log;
mod misbehave;
mod myeid;
mod objects;
mod openpgp;
mod policy;
mod secret;

pub use applet::SimApplet;
pub use backend::{SimBackend, SimCard, SimTransport, DEFAULT_READER};
pub use card::{tags, SimPivCard, CHUID_GUID, DEFAULT_ATR, PIV_AID, RETIRED_1_REFERENCE};
pub use hostile::{HostileBackend, HostileCard, HostilePlan, HostileRng, Mischief};
pub use keys::{ca_certificate_der, KeyType, SimPublicKey, Slot};
pub use log::LoggedApdu;
pub use misbehave::{Misbehaviour, Truncation, WrongKey};
pub use myeid::{SimMyEidCard, MYEID_AID, MYEID_ATR, MYEID_VERSION};
pub use openpgp::{
    KeyRole, PgpKeyType, PgpPublicKey, SimOpenPgpCard, DEFAULT_MANUFACTURER, DEFAULT_OPENPGP_ATR,
    DEFAULT_OPENPGP_SERIAL, KEY_CREATION_TIME, OPENPGP_AID_PREFIX,
};
pub use policy::{PinPolicy, TouchPolicy};

#[cfg(test)]
mod tests;
