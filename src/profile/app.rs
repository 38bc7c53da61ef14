//! What an engine is to the module: the [`CardApp`] trait, what it reads
//! from a card ([`CardInfo`], [`KeyInfo`]), the data it signs, and its
//! errors.

use super::{KeyRole, Profile};
use crate::card::{EngineState, Transaction, Verified};
use crate::cert::PublicKey;
use crate::iso7816::CardError;
use thiserror::Error;
use zeroize::Zeroizing;

/// Errors from a card application.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AppError {
    /// Talking to the card failed.
    #[error(transparent)]
    Card(#[from] CardError),
    /// The PIN was wrong; the card has this many tries left (if it said).
    #[error("wrong PIN ({0:?} tries left)")]
    PinIncorrect(Option<u8>),
    /// The PIN is blocked.
    #[error("the PIN is blocked")]
    PinLocked,
    /// The PIN's length is outside what the card takes.
    #[error("the PIN's length is outside what the card takes")]
    PinLength,
    /// The card wants the PIN before this operation.
    #[error("the card wants the PIN first")]
    NotAuthenticated,
    /// The input does not fit the key.
    #[error("input does not fit the key")]
    DataLength,
    /// The ciphertext (or peer public key) is not valid for the key.
    #[error("the ciphertext is not valid for the key")]
    BadCiphertext,
    /// The card application cannot do this.
    #[error("not supported by this card: {0}")]
    Unsupported(&'static str),
    /// The card's signature does not verify with the key's public key (a
    /// faulty card, another application answering, or a key that changed).
    #[error("the card's signature does not verify with the key")]
    WrongSignature,
    /// The PIN entry on the reader's PIN pad was cancelled, timed out, or
    /// the two new PINs differed: nothing reached the card.
    #[error("the PIN entry on the reader was cancelled")]
    PinPadCancelled,
}

/// What the card says about the user PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinStatus {
    /// Tries left before the PIN blocks, if the card reports it.
    pub tries_left: Option<u8>,
    /// The card's security state shows the PIN as verified.
    pub verified: bool,
    /// The PIN is blocked.
    pub blocked: bool,
}

/// A key slot that holds a key.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// The card's key reference.
    pub reference: u8,
    /// Shared `CKA_ID`.
    pub id: Vec<u8>,
    /// Shared `CKA_LABEL`.
    pub label: String,
    /// What the key is for, as its engine knows it. The module never looks
    /// at it: what it needs are the capabilities below.
    pub role: KeyRole,
    /// The public key.
    pub public_key: PublicKey,
    /// The certificate (DER), if the card holds one.
    pub certificate: Option<Vec<u8>>,
    /// The card wants the PIN right before every use.
    pub always_authenticate: bool,
    /// The card counts the key's signatures (OpenPGP DO `93`): the module's
    /// counter object follows each one.
    pub counts_signatures: bool,
    /// The key works without the PIN.
    pub no_pin: bool,
    /// The key is guarded by a PIN of its own, not the user PIN of
    /// `C_Login` (a PKCS#15 signature PIN): its context-specific login
    /// verifies that PIN, and what the card says about it is not the user
    /// PIN's state.
    pub own_pin: bool,
    /// The PIN reference that guards the key.
    pub pin_reference: u8,
    /// The card can sign with the key.
    pub can_sign: bool,
    /// The card can decrypt (RSA) with the key.
    pub can_decrypt: bool,
    /// The card can do ECDH with the key (`CKM_ECDH1_DERIVE`).
    pub can_derive: bool,
    /// The card applies RSA padding itself (OpenPGP): it signs a DigestInfo
    /// with PKCS#1 v1.5 and returns decrypted messages unpadded, so raw RSA,
    /// PSS and OAEP are not available with this key. Otherwise the card
    /// does raw RSA and the module pads and unpads
    /// (`mechanism::host`).
    pub card_pads: bool,
    /// The public data came from the module's cache, not from the card, and
    /// no signature has proven it matches the card's key yet.
    pub recalled: bool,
    /// What the configured algorithm policy refuses of this key (set by
    /// the module after the card is read; engines leave it empty).
    pub refusals: crate::policy::Refusals,
}

/// A data object the card holds (`CKO_DATA`, PKCS#15 DODF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataObjectInfo {
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_APPLICATION`.
    pub application: String,
    /// `CKA_OBJECT_ID`: the DER of the object identifier, empty if none.
    pub object_id: Vec<u8>,
    /// Readable only after `C_Login` (`CKA_PRIVATE`).
    pub private: bool,
    /// The value, once read ([`CardApp::read_data_object`]).
    pub value: Option<Vec<u8>>,
}

/// A certificate the card holds that belongs to none of its keys (a CA's
/// certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardCertificate {
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// `CKA_LABEL`.
    pub label: String,
    /// The certificate (DER).
    pub der: Vec<u8>,
    /// A certification authority's certificate
    /// (`CKA_CERTIFICATE_CATEGORY` authority).
    pub authority: bool,
    /// The card lists it as trusted (`CKA_TRUSTED`).
    pub trusted: bool,
}

/// What the engine learned about a card.
#[derive(Debug, Clone)]
pub struct CardInfo {
    /// A label for the token (cardholder or first certificate's CN).
    pub label: String,
    /// The card's serial number, as text.
    pub serial: String,
    /// The card's manufacturer, as the profile names it.
    pub manufacturer: String,
    /// The card model.
    pub model: String,
    /// The keys found on the card.
    pub keys: Vec<KeyInfo>,
    /// PIN state, when the engine learned it without an extra command.
    pub pin: Option<PinStatus>,
    /// The card's digital signature counter (OpenPGP DO `93`), if it has one.
    pub signature_counter: Option<u32>,
    /// The card's data objects (values read when first needed).
    pub data_objects: Vec<DataObjectInfo>,
    /// Certificates that belong to none of the keys (CA certificates).
    pub certificates: Vec<CardCertificate>,
    /// `keys` holds every key; otherwise the engine stopped early (to spare
    /// APDUs) and [`CardApp::read_remaining_keys`] reads the rest.
    pub keys_complete: bool,
    /// How many of the profile's key slots the engine has looked at.
    pub key_slots_read: usize,
    /// What identifies the card's public data for the cache (PIV: the
    /// CHUID object; PKCS#15: the serial number in the profile's change
    /// counter answer), when the card has something that does.
    pub identity: Option<Vec<u8>>,
    /// The keys came from the cache ([`Recall`]), not from the card.
    pub recalled: bool,
}

/// What a piece of remembered public data is (the cache file keeps the
/// number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A key's certificate (DER), named by the key's reference.
    Certificate,
    /// The card's description of a key slot (PIV: the GET METADATA answer,
    /// with the key's PIN and touch policy), named by the key's reference.
    KeyMetadata,
    /// The PIN's maximum tries, named by the PIN's reference.
    PinTries,
    /// A file of the card (PKCS#15: a directory file or a certificate),
    /// named by its path and the part read.
    File,
    /// The card's answer that proves the rest current (PKCS#15: the
    /// change counter the profile names).
    Proof,
}

impl RecordKind {
    const ALL: [RecordKind; 5] = [
        RecordKind::Certificate,
        RecordKind::KeyMetadata,
        RecordKind::PinTries,
        RecordKind::File,
        RecordKind::Proof,
    ];

    /// The number the cache file keeps.
    pub fn code(self) -> u8 {
        match self {
            RecordKind::Certificate => 1,
            RecordKind::KeyMetadata => 2,
            RecordKind::PinTries => 3,
            RecordKind::File => 4,
            RecordKind::Proof => 5,
        }
    }

    /// The kind a cache file's number names, if any.
    pub fn from_code(code: u8) -> Option<RecordKind> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// One piece of a card's public data, as the module's cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What it is.
    pub kind: RecordKind,
    /// The card's name for it (a key reference, a file's path).
    pub name: Vec<u8>,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl Record {
    /// A record of `kind` named `name`.
    pub fn new(kind: RecordKind, name: &[u8], data: Vec<u8>) -> Record {
        Record {
            kind,
            name: name.to_vec(),
            data,
        }
    }
}

/// The certificates of `keys`, named by the keys' references: what most
/// engines remember of a card.
pub fn certificate_records(keys: &[KeyInfo]) -> Vec<Record> {
    keys.iter()
        .filter_map(|key| {
            let der = key.certificate.clone()?;
            Some(Record::new(RecordKind::Certificate, &[key.reference], der))
        })
        .collect()
}

/// Public data the module remembers from earlier reads of a card (its
/// disk cache), offered to the engine while it reads the card.
pub trait Recall {
    /// Whether anything is remembered at all (a module without a disk
    /// cache: no), so that an engine spends no command on a proof no entry
    /// can use.
    fn remembers(&self) -> bool {
        true
    }
    /// What is remembered for the card whose identity (PIV: the CHUID
    /// object) is `identity`; each kind and name at most once.
    fn recall(&self, identity: &[u8]) -> Option<Vec<Record>>;
    /// Drops what is remembered for `identity` (the card cannot prove it
    /// current).
    fn forget(&self, identity: &[u8]);
}

/// Remembers nothing: every read goes to the card.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecall;

impl Recall for NoRecall {
    fn remembers(&self) -> bool {
        false
    }

    fn recall(&self, _identity: &[u8]) -> Option<Vec<Record>> {
        None
    }

    fn forget(&self, _identity: &[u8]) {}
}

/// Data for a private-key signature.
#[derive(Debug, Clone, Copy)]
pub enum SignInput<'a> {
    /// RSA PKCS#1 v1.5 for a card that pads itself ([`KeyInfo::card_pads`]):
    /// the DigestInfo (or other data) to pad as type 1, already checked to
    /// fit the modulus.
    RsaPkcs1(&'a [u8]),
    /// RSA without padding: a block exactly as long as the modulus (PKCS#1
    /// v1.5 and PSS encoded by the module, or the caller's raw block).
    RsaRaw(&'a [u8]),
    /// ECDSA over this input: a hash already fitted to the group order
    /// (`crypto::ecdsa_fit_hash`), exactly the order's length.
    Ecdsa(&'a [u8]),
    /// EdDSA (Ed25519, RFC 8032 PureEdDSA) over this message.
    EdDsa(&'a [u8]),
}

/// A card application engine (PIV, OpenPGP).
pub trait CardApp: Send + Sync + std::fmt::Debug {
    /// The profile the engine runs with.
    fn profile(&self) -> &Profile;
    /// Selects the application (first command of each card transaction).
    fn select(&self, card: &mut Transaction) -> Result<(), AppError>;
    /// Reads what the token layer needs: keys, certificates, serial (and the
    /// PIN state where that costs no extra command). What `recall` has for
    /// the card's identity is taken from there instead of the card, where
    /// the card proves it current in this transaction.
    fn read_card(&self, card: &mut Transaction, recall: &dyn Recall) -> Result<CardInfo, AppError>;
    /// Reads the keys of the profile's key slots from `from_slot` on (after
    /// a [`CardApp::read_card`] that stopped early and found `known`):
    /// every key of the card, `known` ones included (the engine may refine
    /// what it knew, e.g. a key's PIN rule).
    fn read_remaining_keys(
        &self,
        card: &mut Transaction,
        known: &[KeyInfo],
        from_slot: usize,
    ) -> Result<Vec<KeyInfo>, AppError> {
        let _ = (card, from_slot);
        Ok(known.to_vec())
    }
    /// What the module's cache keeps of the card, stored under
    /// `info.identity` once `info` holds every key (and never when it came
    /// from the cache itself); `state` is what the engine learned about the
    /// card. By default each key's certificate.
    fn to_remember(&self, info: &CardInfo, state: &EngineState) -> Vec<Record> {
        let _ = state;
        certificate_records(&info.keys)
    }
    /// The user PIN's maximum tries, when the card reported them (in what
    /// the engine learned about the card, `state`).
    fn pin_max_tries(&self, state: &EngineState) -> Option<u8> {
        let _ = state;
        None
    }
    /// Reads the PIN state without spending a try.
    fn pin_status(&self, card: &mut Transaction) -> Result<PinStatus, AppError>;
    /// Whether [`CardApp::puk_status`] can tell anything, from what the
    /// engine learned about the card (`state`), so that no APDU is spent
    /// on a card that cannot.
    fn tells_puk_status(&self, state: &EngineState) -> bool {
        let _ = state;
        false
    }
    /// Reads the state of the code [`CardApp::unblock_pin`] takes (PIV: the
    /// PUK; OpenPGP: the Resetting Code, or PW3 without one) without
    /// spending a try; `None` when the card cannot tell it that way.
    /// Asked only when [`CardApp::tells_puk_status`].
    fn puk_status(&self, card: &mut Transaction) -> Result<Option<PinStatus>, AppError> {
        let _ = card;
        Ok(None)
    }
    /// Verifies the user PIN (`C_Login`): afterwards every key that does not
    /// want the PIN right before each use is usable.
    fn verify_pin(&self, card: &mut Transaction, pin: &[u8]) -> Result<(), AppError>;
    /// Verifies the user PIN entered on the reader's PIN pad.
    fn verify_pin_pad(&self, card: &mut Transaction) -> Result<(), AppError> {
        let _ = card;
        Err(AppError::Unsupported("PIN pad entry"))
    }
    /// Verifies the PIN right before one use of `key` (a context-specific
    /// login for an always-authenticate key).
    fn verify_pin_for_key(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        pin: &[u8],
    ) -> Result<(), AppError> {
        let _ = key;
        self.verify_pin(card, pin)
    }
    /// Reads the value of data object `index` of [`CardInfo::data_objects`]
    /// (a private one needs the user PIN verified).
    fn read_data_object(&self, card: &mut Transaction, index: usize) -> Result<Vec<u8>, AppError> {
        let _ = (card, index);
        Err(AppError::Unsupported("data objects"))
    }
    /// Drops the card's PIN-verified state.
    fn logout(&self, card: &mut Transaction) -> Result<(), AppError>;
    /// Changes the user PIN from `old` to `new` (both checked against the
    /// profile's rules before any APDU).
    fn change_pin(&self, card: &mut Transaction, old: &[u8], new: &[u8]) -> Result<(), AppError>;
    /// Changes the user PIN with both PINs entered on the reader's PIN pad.
    fn change_pin_pad(&self, card: &mut Transaction) -> Result<(), AppError> {
        let _ = card;
        Err(AppError::Unsupported("PIN change on a PIN pad"))
    }
    /// Sets a new user PIN with the unblocking credential (PIV PUK, OpenPGP
    /// Resetting Code or PW3) and resets its retry counter. A wrong
    /// credential is `PinIncorrect`, a blocked one `PinLocked`.
    fn unblock_pin(
        &self,
        card: &mut Transaction,
        unblock_code: &[u8],
        new: &[u8],
    ) -> Result<(), AppError>;
    /// Signs with a private key, once `proof` shows the card accepts it.
    /// ECDSA results come back as `r || s`; the module checks every result
    /// with the key's public key.
    fn sign(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        input: SignInput<'_>,
        proof: &Verified,
    ) -> Result<Vec<u8>, AppError>;
    /// Raw RSA private-key operation on `ciphertext` (decryption); the caller
    /// removes the padding.
    fn decrypt_raw(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        ciphertext: &[u8],
        proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError>;
    /// RSA PKCS#1 v1.5 decryption by a card that removes the padding
    /// itself ([`KeyInfo::card_pads`], OpenPGP): the message. Other cards
    /// do [`CardApp::decrypt_raw`] and the module unpads.
    fn decrypt_pkcs1(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        ciphertext: &[u8],
        proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let _ = (card, key, ciphertext, proof);
        Err(AppError::Unsupported(
            "the card does not remove RSA padding",
        ))
    }
    /// ECDH with the private key and the peer's public point (uncompressed
    /// for the NIST curves, 32 bytes for X25519): the shared secret (the
    /// x-coordinate; for X25519 the RFC 7748 output).
    fn derive(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        peer_point: &[u8],
        proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let _ = (card, key, peer_point, proof);
        Err(AppError::Unsupported("key agreement"))
    }
}
