//! Sessions and the cryptographic operations active in them.

use crate::crypto::{HashAlg, Hasher};
use crate::mechanism::Mechanism;
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// The data an operation has been fed so far.
#[derive(Debug)]
pub(crate) enum OpInput {
    /// Hashed on the host as it arrives.
    Hash(Box<Hasher>),
    /// Kept until the operation ends (raw mechanisms).
    Buffer(Zeroizing<Vec<u8>>),
}

/// Most data a raw (non-hashing) mechanism accepts.
const MAX_RAW_INPUT: usize = 16 * 1024;

impl OpInput {
    pub(crate) fn for_mechanism(mechanism: &Mechanism) -> Self {
        match mechanism.host_hash() {
            Some(alg) => OpInput::Hash(Box::new(Hasher::new(alg))),
            None => OpInput::Buffer(Zeroizing::new(Vec::new())),
        }
    }

    /// Feeds data; `false` if a raw mechanism got more than it can take.
    pub(crate) fn update(&mut self, data: &[u8]) -> bool {
        match self {
            OpInput::Hash(hasher) => {
                hasher.update(data);
                true
            }
            OpInput::Buffer(buffer) => {
                if buffer.len() + data.len() > MAX_RAW_INPUT {
                    return false;
                }
                buffer.extend_from_slice(data);
                true
            }
        }
    }

    /// The hash (hashing mechanisms) or the buffered data.
    pub(crate) fn finish(self) -> Zeroizing<Vec<u8>> {
        match self {
            OpInput::Hash(hasher) => Zeroizing::new((*hasher).finish()),
            OpInput::Buffer(buffer) => buffer,
        }
    }
}

/// Whether an operation is fed in one call or in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Nothing fed yet.
    Fresh,
    /// `*Update` was called: only `*Final` may end it.
    MultiPart,
}

/// A signature in progress.
#[derive(Debug)]
pub(crate) struct SignOp {
    pub key_index: usize,
    pub mechanism: Mechanism,
    pub input: OpInput,
    pub stage: Stage,
    /// PIN from `C_Login(CKU_CONTEXT_SPECIFIC)` for a key that wants it
    /// right before use; dropped (zeroized) with the operation.
    pub context_pin: Option<Zeroizing<Vec<u8>>>,
}

/// A verification in progress (software).
#[derive(Debug)]
pub(crate) struct VerifyOp {
    pub key_index: usize,
    pub mechanism: Mechanism,
    pub input: OpInput,
    pub stage: Stage,
}

/// A decryption in progress.
#[derive(Debug)]
pub(crate) struct DecryptOp {
    pub key_index: usize,
    pub mechanism: Mechanism,
    pub context_pin: Option<Zeroizing<Vec<u8>>>,
    /// Plaintext already computed by the card, kept while the caller
    /// finds a large enough buffer.
    pub result: Option<Zeroizing<Vec<u8>>>,
}

/// An encryption in progress (software, public key).
#[derive(Debug)]
pub(crate) struct EncryptOp {
    pub key_index: usize,
    pub mechanism: Mechanism,
}

/// A digest in progress.
#[derive(Debug)]
pub(crate) struct DigestOp {
    pub alg: HashAlg,
    pub hasher: Hasher,
    pub stage: Stage,
}

/// An object search in progress.
#[derive(Debug)]
pub(crate) struct FindOp {
    pub results: Vec<CK_OBJECT_HANDLE>,
    pub position: usize,
}

/// One PKCS#11 session.
#[derive(Debug)]
pub(crate) struct Session {
    pub slot: CK_SLOT_ID,
    pub read_write: bool,
    /// The token generation the session belongs to; a new card in the slot
    /// makes the session invalid.
    pub generation: u64,
    pub find: Option<FindOp>,
    pub sign: Option<SignOp>,
    pub verify: Option<VerifyOp>,
    pub decrypt: Option<DecryptOp>,
    pub encrypt: Option<EncryptOp>,
    pub digest: Option<DigestOp>,
    /// Session objects (secret keys from `C_DeriveKey`), destroyed with the
    /// session.
    pub objects: Vec<crate::token::Object>,
}

impl Session {
    pub(crate) fn new(slot: CK_SLOT_ID, read_write: bool, generation: u64) -> Self {
        Session {
            slot,
            read_write,
            generation,
            find: None,
            sign: None,
            verify: None,
            decrypt: None,
            encrypt: None,
            digest: None,
            objects: Vec::new(),
        }
    }
}

/// The cryptographic operations a session can have active, one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// `C_SignInit` … `C_Sign`/`C_SignFinal`.
    Sign,
    /// `C_VerifyInit` … `C_Verify`/`C_VerifyFinal`.
    Verify,
    /// `C_EncryptInit` … `C_Encrypt`/`C_EncryptFinal`.
    Encrypt,
    /// `C_DecryptInit` … `C_Decrypt`/`C_DecryptFinal`.
    Decrypt,
    /// `C_DigestInit` … `C_Digest`/`C_DigestFinal`.
    Digest,
}

impl Session {
    /// Ends the session's operation of this kind (its secrets are zeroized).
    pub(crate) fn end(&mut self, kind: OperationKind) {
        match kind {
            OperationKind::Sign => self.sign = None,
            OperationKind::Verify => self.verify = None,
            OperationKind::Encrypt => self.encrypt = None,
            OperationKind::Decrypt => self.decrypt = None,
            OperationKind::Digest => self.digest = None,
        }
    }

    /// Runs one call of the operation `kind` under PKCS#11's rule for when
    /// an operation ends (3.0 §5.2 and §5.9–§5.13): any error ends it (a
    /// failed `*Update` too), and so does a result; only a length query and
    /// `CKR_BUFFER_TOO_SMALL` leave a final call's operation active, and a
    /// successful `*Update` continues it. The one place this rule lives.
    pub(crate) fn step<T: Outcome>(
        &mut self,
        kind: OperationKind,
        call: impl FnOnce(&mut Session) -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        let result = call(self);
        if !result.as_ref().is_ok_and(Outcome::continues) {
            self.end(kind);
        }
        result
    }
}

/// What a successful call leaves of its operation.
pub(crate) trait Outcome {
    /// The operation is still active after this result.
    fn continues(&self) -> bool;
}

/// A successful `*Update`: the operation goes on.
#[derive(Debug)]
pub(crate) struct Fed;

impl Outcome for Fed {
    fn continues(&self) -> bool {
        true
    }
}

/// A verdict (`C_Verify`, `C_VerifyFinal`): the operation is over.
impl Outcome for () {
    fn continues(&self) -> bool {
        false
    }
}

impl Outcome for Output {
    fn continues(&self) -> bool {
        matches!(self, Output::Length(_) | Output::TooSmall(_))
    }
}

/// What an output-producing call returns, following the PKCS#11 two-call
/// convention (§5.2).
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The caller asked for the length only; the operation continues.
    Length(usize),
    /// The caller's buffer is too small for this many bytes; the operation
    /// continues.
    TooSmall(usize),
    /// The result; the operation has ended.
    Done(Zeroizing<Vec<u8>>),
}

impl Output {
    /// Applies the convention: `capacity` is the caller's buffer size, or
    /// `None` for a length query.
    pub(crate) fn check(needed: usize, capacity: Option<usize>) -> Option<Output> {
        match capacity {
            None => Some(Output::Length(needed)),
            Some(capacity) if capacity < needed => Some(Output::TooSmall(needed)),
            Some(_) => None,
        }
    }
}
