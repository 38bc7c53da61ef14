//! Card applications: which card a reader holds (matched by
//! `cardprofiles/*.toml`), and the engines that speak to it.
//!
//! Nothing here sees a PKCS#11 type: the token layer above turns
//! [`CardInfo`] into objects and PKCS#11 requests into [`SignInput`]s.

pub mod piv;
pub mod schema;

use crate::cert::PublicKey;
use crate::iso7816::{CardError, Channel, ChannelOptions};
use schema::{parse_hex, ProfileFile};
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;
use zeroize::Zeroizing;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/profiles.rs"));
}

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
    /// The card application cannot do this.
    #[error("not supported by this card: {0}")]
    Unsupported(&'static str),
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
    /// The profile's role for the key.
    pub role: String,
    /// The public key.
    pub public_key: PublicKey,
    /// The certificate (DER), if the card holds one.
    pub certificate: Option<Vec<u8>>,
    /// The card wants the PIN right before every use.
    pub always_authenticate: bool,
    /// The key works without the PIN.
    pub no_pin: bool,
    /// The card can sign with the key.
    pub can_sign: bool,
    /// The card can decrypt (RSA) with the key.
    pub can_decrypt: bool,
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
    /// PIN state when the card was read.
    pub pin: PinStatus,
}

/// Data for a private-key signature.
#[derive(Debug, Clone, Copy)]
pub enum SignInput<'a> {
    /// RSA PKCS#1 v1.5: the DigestInfo (or other data) to pad as type 1.
    RsaPkcs1(&'a [u8]),
    /// RSA without padding: a block exactly as long as the modulus.
    RsaRaw(&'a [u8]),
    /// ECDSA over this hash (any length; the engine fits it to the curve).
    Ecdsa(&'a [u8]),
}

/// A card application engine (PIV now; more card families later).
pub trait CardApp: Send + Sync + std::fmt::Debug {
    /// The profile the engine runs with.
    fn profile(&self) -> &Profile;
    /// Selects the application (first command of each card transaction).
    fn select(&self, channel: &mut Channel) -> Result<(), AppError>;
    /// Reads what the token layer needs: keys, certificates, serial, PIN state.
    fn read_card(&self, channel: &mut Channel) -> Result<CardInfo, AppError>;
    /// Reads the PIN state without spending a try.
    fn pin_status(&self, channel: &mut Channel) -> Result<PinStatus, AppError>;
    /// Verifies the user PIN.
    fn verify_pin(&self, channel: &mut Channel, pin: &[u8]) -> Result<(), AppError>;
    /// Drops the card's PIN-verified state.
    fn logout(&self, channel: &mut Channel) -> Result<(), AppError>;
    /// Changes the user PIN from `old` to `new` (both checked against the
    /// profile's rules before any APDU).
    fn change_pin(&self, channel: &mut Channel, old: &[u8], new: &[u8]) -> Result<(), AppError>;
    /// Sets a new user PIN with the unblocking credential (PIV PUK, OpenPGP
    /// Resetting Code) and resets its retry counter. A wrong credential is
    /// `PinIncorrect`, a blocked one `PinLocked`.
    fn unblock_pin(
        &self,
        channel: &mut Channel,
        unblock_code: &[u8],
        new: &[u8],
    ) -> Result<(), AppError>;
    /// Signs with a private key. ECDSA results come back as `r || s`.
    fn sign(
        &self,
        channel: &mut Channel,
        key: &KeyInfo,
        input: SignInput<'_>,
    ) -> Result<Vec<u8>, AppError>;
    /// Raw RSA private-key operation on `ciphertext` (decryption); the caller
    /// removes the padding.
    fn decrypt_raw(
        &self,
        channel: &mut Channel,
        key: &KeyInfo,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AppError>;
}

/// The card engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PIV (NIST SP 800-73-4).
    Piv,
}

/// An ATR pattern with its mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtrMatch {
    value: Vec<u8>,
    mask: Vec<u8>,
}

impl AtrMatch {
    /// Whether `atr` matches the pattern under the mask.
    pub fn matches(&self, atr: &[u8]) -> bool {
        atr.len() == self.value.len()
            && atr
                .iter()
                .zip(&self.value)
                .zip(&self.mask)
                .all(|((a, v), m)| a & m == v & m)
    }
}

/// A key slot as the profile describes it.
#[derive(Debug, Clone)]
pub struct KeySlot {
    /// The card's key reference.
    pub reference: u8,
    /// The key's role.
    pub role: String,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// `CKA_LABEL`.
    pub label: String,
    /// Data object holding the certificate.
    pub certificate_tag: u32,
    /// PIN needed right before each use.
    pub always_authenticate: bool,
    /// No PIN needed.
    pub no_pin: bool,
}

/// A validated card profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Unique name.
    pub name: String,
    /// Human description (also the token model).
    pub description: String,
    /// The engine.
    pub engine: Engine,
    /// Matching order: lower first.
    pub priority: u32,
    /// ATR patterns.
    pub atr: Vec<AtrMatch>,
    /// AID to select.
    pub aid: Vec<u8>,
    /// Manufacturer for the token info.
    pub manufacturer: String,
    /// Model for the token info.
    pub model: String,
    /// Channel framing.
    pub channel: ChannelOptions,
    /// The user PIN's rules.
    pub pin: schema::PinRule,
    /// Key slots.
    pub keys: Vec<KeySlot>,
}

impl Profile {
    /// Parses and validates a profile's TOML text.
    pub fn from_toml(text: &str) -> Result<Profile, String> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.validate()?;
        let engine = match file.engine.as_str() {
            "piv" => Engine::Piv,
            other => return Err(format!("unknown engine {other:?}")),
        };
        let atr = file
            .atr
            .iter()
            .map(|pattern| {
                let value = parse_hex(&pattern.value)?;
                let mask = match &pattern.mask {
                    Some(mask) => parse_hex(mask)?,
                    None => vec![0xFF; value.len()],
                };
                Ok(AtrMatch { value, mask })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let keys = file
            .keys
            .iter()
            .map(|key| {
                Ok(KeySlot {
                    reference: key.reference,
                    role: key.role.clone(),
                    id: parse_hex(&key.id)?,
                    label: key.label.clone(),
                    certificate_tag: key.certificate_tag,
                    always_authenticate: key.always_authenticate,
                    no_pin: key.no_pin,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Profile {
            name: file.name.clone(),
            manufacturer: file
                .manufacturer
                .clone()
                .unwrap_or_else(|| file.description.clone()),
            model: file.model.clone().unwrap_or_else(|| file.name.clone()),
            description: file.description,
            engine,
            priority: file.priority,
            atr,
            aid: parse_hex(&file.aid)?,
            channel: ChannelOptions {
                extended_length: file.quirks.extended_length,
            },
            pin: file.pin,
            keys,
        })
    }

    /// Checks a PIN against the profile's length rules (before any APDU).
    pub fn check_pin_length(&self, pin: &[u8]) -> Result<(), AppError> {
        if pin.len() < self.pin.min_length || pin.len() > self.pin.max_length {
            return Err(AppError::PinLength);
        }
        Ok(())
    }

    /// Checks an unblocking code (PUK) against the profile's length rules.
    pub fn check_puk_length(&self, puk: &[u8]) -> Result<(), AppError> {
        let min = self.pin.puk_min_length.unwrap_or(1);
        let max = self.pin.puk_max_length.unwrap_or(usize::MAX);
        if puk.len() < min || puk.len() > max {
            return Err(AppError::PinLength);
        }
        Ok(())
    }

    fn engine(self: &Arc<Self>) -> Box<dyn CardApp> {
        match self.engine {
            Engine::Piv => Box::new(piv::PivApp::new(Arc::clone(self))),
        }
    }
}

/// The profiles a module matches cards against, in matching order.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    profiles: Vec<Arc<Profile>>,
}

impl ProfileSet {
    /// The profiles built into the library.
    pub fn embedded() -> ProfileSet {
        let profiles = embedded::EMBEDDED
            .iter()
            // build.rs validated these; a failure here would be a build bug.
            .filter_map(|(_, text)| Profile::from_toml(text).ok())
            .map(Arc::new)
            .collect();
        let mut set = ProfileSet { profiles };
        set.sort();
        set
    }

    fn sort(&mut self) {
        self.profiles.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
    }

    /// Adds the `*.toml` profiles of `dir`; a profile with the name of an
    /// existing one replaces it. Returns the files that were not valid.
    pub fn add_dir(&mut self, dir: &Path) -> Vec<(String, String)> {
        let mut rejected = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            rejected.push((dir.display().to_string(), "cannot read directory".into()));
            return rejected;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.extension().is_none_or(|ext| ext != "toml") {
                continue;
            }
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| Profile::from_toml(&text));
            match parsed {
                Ok(profile) => {
                    self.profiles.retain(|p| p.name != profile.name);
                    self.profiles.push(Arc::new(profile));
                }
                Err(message) => rejected.push((path.display().to_string(), message)),
            }
        }
        self.sort();
        rejected
    }

    /// Keeps only the profiles `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&Profile) -> bool) {
        self.profiles.retain(|p| keep(p));
    }

    /// The profiles in matching order.
    pub fn profiles(&self) -> &[Arc<Profile>] {
        &self.profiles
    }

    /// Finds the application on a card: first by ATR (no APDU), then by
    /// selecting each profile's AID in matching order. The application is
    /// left selected. `Ok(None)` means no profile fits the card.
    pub fn identify(
        &self,
        atr: &[u8],
        link: &mut dyn crate::transport::Transmit,
    ) -> Result<Option<Box<dyn CardApp>>, AppError> {
        let by_atr = self
            .profiles
            .iter()
            .find(|profile| profile.atr.iter().any(|pattern| pattern.matches(atr)));
        let candidates: Vec<&Arc<Profile>> = match by_atr {
            Some(profile) => vec![profile],
            None => self.profiles.iter().collect(),
        };
        let mut tried = Vec::new();
        for profile in candidates {
            if tried.contains(&&profile.aid) {
                continue;
            }
            let app = profile.engine();
            let mut channel = Channel::new(link, profile.channel);
            match app.select(&mut channel) {
                Ok(()) => return Ok(Some(app)),
                // Only a definite "no such application" moves on; any other
                // answer is a card problem, not an unknown card.
                Err(AppError::Card(CardError::Status(sw))) if is_application_absent(sw) => {
                    tried.push(&profile.aid)
                }
                Err(other) => return Err(other),
            }
        }
        Ok(None)
    }
}

/// Status words with which a card says it has no application with this AID
/// (ISO/IEC 7816-4 §5.6: file not found, function or instruction or class
/// not supported, wrong parameters for SELECT by name).
fn is_application_absent(sw: crate::iso7816::StatusWord) -> bool {
    matches!(
        sw.0,
        0x6A82 | 0x6A81 | 0x6A86 | 0x6D00 | 0x6E00 | 0x6999 | 0x6A87
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_profiles_load() {
        let set = ProfileSet::embedded();
        let piv = set.profiles().iter().find(|p| p.name == "piv").unwrap();
        assert_eq!(piv.engine, Engine::Piv);
        assert_eq!(piv.aid, [0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0]);
        assert_eq!(piv.keys.len(), 4);
        assert_eq!(piv.keys[0].id, [1]);
        assert!(piv.keys[1].always_authenticate);
    }

    #[test]
    fn atr_masks_match() {
        let pattern = AtrMatch {
            value: vec![0x3B, 0xF8, 0x13],
            mask: vec![0xFF, 0xF0, 0xFF],
        };
        assert!(pattern.matches(&[0x3B, 0xFA, 0x13]));
        assert!(!pattern.matches(&[0x3B, 0xE8, 0x13]));
        assert!(!pattern.matches(&[0x3B, 0xF8]));
    }

    #[test]
    fn invalid_profiles_are_rejected_with_a_reason() {
        let base = include_str!("../../cardprofiles/piv.toml");
        let bad_engine = base.replace("engine = \"piv\"", "engine = \"nope\"");
        assert!(Profile::from_toml(&bad_engine)
            .unwrap_err()
            .contains("engine"));
        let bad_aid = base.replace("aid = \"A0 00", "aid = \"Z0 00");
        assert!(Profile::from_toml(&bad_aid).unwrap_err().contains("aid"));
        let unknown_field = format!("{base}\nsurprise = 1\n");
        assert!(Profile::from_toml(&unknown_field).is_err());
        let bad_pin = base.replace("min_length = 6", "min_length = 9");
        assert!(Profile::from_toml(&bad_pin).unwrap_err().contains("pin"));
    }

    #[test]
    fn pin_length_is_checked() {
        let set = ProfileSet::embedded();
        let piv = &set.profiles()[0];
        assert_eq!(piv.check_pin_length(b"12345"), Err(AppError::PinLength));
        assert_eq!(piv.check_pin_length(b"123456789"), Err(AppError::PinLength));
        assert_eq!(piv.check_pin_length(b"123456"), Ok(()));
    }
}
