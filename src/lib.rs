//! p11card: smart-card middleware.
//!
//! The crate reads card applications (PIV, NIST SP 800-73-4) through PC/SC
//! and presents them as PKCS#11 slots, tokens and objects. The C ABI lives in
//! the `p11card-pkcs11` crate; Rust programs can use [`module::Module`]
//! directly.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod cert;
pub mod config;
pub mod crypto;
pub mod error;
mod guarded_fs;
pub mod iso7816;
pub mod mechanism;
pub mod module;
pub mod pkcs15;
pub mod process_trust;
pub mod profile;
pub mod session;
pub mod token;
pub mod transport;

pub use error::{Error, Result};
pub use module::Module;
pub use process_trust::ProcessTrust;
