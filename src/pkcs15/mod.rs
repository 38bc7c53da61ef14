//! PKCS#15 / ISO/IEC 7816-15 files, parsed: the card's own description of
//! its applications, PINs, keys, certificates and data objects.
//!
//! Pure parsing, no card I/O: each function takes the bytes of one file (or
//! record) as the card returned them and gives typed values, or a
//! [`Pkcs15Error`]. Directory files give a [`Directory`]: the objects read,
//! and the position and error of each object that is malformed inside
//! (a file whose elements cannot be delimited is an error as a whole). The data is untrusted: every length is checked, every
//! list is bounded ([`MAX_OBJECTS`] objects per file), nothing panics.
//!
//! The encoding is read as BER, leniently where cards in use need it and
//! strictly elsewhere:
//! - directory files (EF.DIR, ODF, AODF, PrKDF, PuKDF, CDF, DODF) end at
//!   the first `00` or `FF` byte where an object would start (the unused
//!   rest of a file larger than its objects);
//! - EF.TokenInfo is its first element; bytes after it are ignored;
//! - elements after the fields a structure defines are skipped (ASN.1
//!   extensions), when they are well formed;
//! - long-form lengths that are not minimal, BOOLEANs other than `FF`,
//!   one-byte negative key and PIN references (old OpenSC) and labels that
//!   are not UTF-8 are accepted;
//! - object kinds this crate does not use (DSA, DH, GOST keys, attribute
//!   certificates, biometric templates, data objects by OID, …) are
//!   skipped; a directory entry that is not a path is skipped.
//!
//! A wrong tag or a missing field where the ASN.1 requires one, an
//! indefinite length, a value out of range or a file holding too many
//! objects is an error.
//!
//! The ASN.1 is ISO/IEC 7816-15 (the PKCS#15 v1.1 module, RSA Laboratories,
//! with its 7816-15 additions); the extensions real cards write
//! (`fieldSize` of EC keys, an EC curve in a SEQUENCE after the path, the
//! AID-extended path `[1]`) are those OpenSC reads.

mod ber;
mod certs;
mod common;
mod dir;
mod keys;
mod pins;
mod tokeninfo;

#[cfg(test)]
mod tests;

pub use certs::{parse_cdf, parse_dodf, Certificate, DataObject};
pub use common::{
    AccessControlRule, AccessMode, CommonKeyAttributes, CommonObjectAttributes, Directory,
    Identifier, KeyAccessFlags, KeyUsage, ObjectFlags, ObjectValue, Path, SecurityCondition,
};
pub use dir::{
    parse_dir, parse_odf, Application, DirectoryKind, DiscretionaryData, OdfEntry, PKCS15_AID,
};
pub use keys::{parse_prkdf, parse_pukdf, KeyAlgorithm, PrivateKey, PublicKey};
pub use pins::{parse_aodf, Pin, PinFlags, PinType};
pub use tokeninfo::{parse_token_info, AlgorithmInfo, AlgorithmOperations, TokenFlags, TokenInfo};

/// The most objects (or entries) one file may hold; more is an error.
pub const MAX_OBJECTS: usize = 256;

/// Why a PKCS#15 structure could not be read. `what` names the structure
/// or field (`"PrKDF"`, `"Path.efidOrPath"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Pkcs15Error {
    /// Bytes that are not BER: truncated, an indefinite or oversized
    /// length, a bad BIT STRING or OBJECT IDENTIFIER.
    #[error("PKCS#15 {0}: malformed encoding")]
    Malformed(&'static str),
    /// A required field is absent.
    #[error("PKCS#15 {0}: missing")]
    Missing(&'static str),
    /// An element with another tag where the ASN.1 requires `expected`.
    #[error("PKCS#15 {what}: expected tag {expected:#04X}, found {found:#04X}")]
    UnexpectedTag {
        /// The field.
        what: &'static str,
        /// The tag the ASN.1 requires there.
        expected: u32,
        /// The tag the card wrote.
        found: u32,
    },
    /// A value outside what the field allows (a negative length, an
    /// unknown PIN type, an identifier longer than 255 bytes…).
    #[error("PKCS#15 {0}: value out of range")]
    OutOfRange(&'static str),
    /// A file or list with more entries than this crate reads.
    #[error("PKCS#15 {what}: more than {limit} entries")]
    TooMany {
        /// The file or list.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
}

/// The error of the one object a directory rejected (the others read).
#[cfg(test)]
fn rejected<T: std::fmt::Debug>(result: Result<Directory<T>, Pkcs15Error>) -> Pkcs15Error {
    let directory = result.expect("the file is well framed");
    match directory.rejected.as_slice() {
        [(_, error)] => *error,
        other => panic!("{other:?}"),
    }
}
