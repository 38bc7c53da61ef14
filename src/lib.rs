//! p11card: smart-card middleware.
//!
//! The crate reads card applications (PIV, NIST SP 800-73-4; OpenPGP card)
//! through PC/SC and presents them as PKCS#11 slots, tokens and objects. It
//! has three kinds of users:
//!
//! - C programs (browsers, TLS libraries, login stacks) load the PKCS#11
//!   module built by the `p11card-pkcs11` crate;
//! - Rust programs use the typed API in [`api`]: a [`Context`] lists the
//!   [`Reader`]s, a reader gives its [`Card`], a card logs in and lists its
//!   [`Key`]s with their certificates, and a key signs as a RustCrypto
//!   [`signature::Signer`] (ECDSA P-256/P-384 with the `p256`/`p384`
//!   signature types, RSA PKCS#1 v1.5 and PSS with the `rsa` ones);
//! - the PKCS#11 layer itself is [`Module`], one method per `C_*` function.
//!
//! Signing a message with the card's PIV authentication key:
//!
//! ```no_run
//! use p11card::api::{EcCurve, KeyKind};
//! use signature::{Keypair, Signer, Verifier};
//!
//! let card = p11card::Context::new().first_card()?;
//! println!("card {:?}, serial {}", card.token_info()?.label, card.token_info()?.serial);
//! card.login(b"123456")?;
//! for key in card.keys()? {
//!     let subject = key.certificate().map(|cert| cert.subject().to_owned());
//!     println!("{:?} {:?} {:?}", key.label(), key.kind(), subject);
//! }
//! let key = card
//!     .keys()?
//!     .into_iter()
//!     .find(|key| key.label() == "PIV Authentication")
//!     .ok_or("no PIV authentication key")?;
//! match key.kind() {
//!     KeyKind::Ec(EcCurve::P256) => {
//!         let signer = key.p256_signer()?;
//!         let signature: p256::ecdsa::Signature = signer.try_sign(b"message")?;
//!         signer.verifying_key().verify(b"message", &signature)?;
//!     }
//!     KeyKind::Rsa { .. } => {
//!         let signer = key.rsa_pss_signer::<sha2::Sha256>()?;
//!         let signature: rsa::pss::Signature = signer.try_sign(b"message")?;
//!         signer.verifying_key().verify(b"message", &signature)?;
//!     }
//!     other => println!("not signing with a {other:?} key here"),
//! }
//! card.logout()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod cache;
pub mod card;
pub mod cert;
pub mod config;
pub mod crypto;
pub mod error;
mod guarded_fs;
pub mod iso7816;
pub mod mechanism;
pub mod module;
pub mod pkcs15;
pub mod policy;
pub mod process_trust;
pub mod profile;
pub mod session;
pub mod token;
pub mod transport;

pub use api::{Card, Context, Key, Reader};
pub use error::{Error, Result};
pub use module::Module;
pub use process_trust::ProcessTrust;
