//! The simulated PIV card application (SP 800-73-4 Part 2), one APDU at a
//! time: SELECT, GET DATA, VERIFY, CHANGE REFERENCE DATA, RESET RETRY
//! COUNTER, GENERAL AUTHENTICATE, GET RESPONSE, command chaining, and the
//! Yubico GET VERSION / GET SERIAL / GET METADATA extensions.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::apdu::{put_tlv, read_all, read_tlv, sw, tlv, Command};
use crate::frame::{Applet, Frame, INS_SELECT};
use crate::keys::{slot_certificate_der, KeyType, PrivateKey, SimPublicKey, Slot};
use crate::log::LoggedApdu;
use crate::misbehave::{Misbehaviour, WrongKey, FORGED_DER_SIGNATURE};
use crate::objects::{chuid_signed_with, default_ccc, default_chuid, default_discovery};
use crate::policy::{PinPolicy, TouchPolicy};
use crate::secret::{split_old_new, Secret};

mod extensions;

/// The PIV application identifier, with version (SP 800-73-4 Part 2 §2.2).
pub const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

/// The default ATR (a YubiKey 5 over T=1).
pub const DEFAULT_ATR: [u8; 18] = [
    0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x59, 0x75, 0x62, 0x69, 0x6B, 0x65, 0x79,
    0x34, 0xD4,
];

/// The CHUID's GUID (tag 34).
pub const CHUID_GUID: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
];

/// Data object tags (SP 800-73-4 Part 1 Table 3).
pub mod tags {
    /// Card Capability Container.
    pub const CCC: u32 = 0x5FC107;
    /// Card Holder Unique Identifier.
    pub const CHUID: u32 = 0x5FC102;
    /// Discovery object (requested as `5C 01 7E`).
    pub const DISCOVERY: u32 = 0x7E;
    /// Key History object.
    pub const KEY_HISTORY: u32 = 0x5FC10C;
    /// Retired X.509 Certificate for Key Management 1 (…20 is `5FC120`).
    pub const RETIRED_1: u32 = 0x5FC10D;
}

/// The key reference of retired key management key 1 (…20 is `0x95`).
pub const RETIRED_1_REFERENCE: u8 = 0x82;

const INS_GET_DATA: u8 = 0xCB;
const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE: u8 = 0x24;
const INS_RESET_RETRY: u8 = 0x2C;
const INS_GENERAL_AUTHENTICATE: u8 = 0x87;
const INS_YK_GET_VERSION: u8 = 0xFD;
const INS_YK_GET_SERIAL: u8 = 0xF8;
const INS_YK_GET_METADATA: u8 = 0xF7;
const KEY_REF_GLOBAL_PIN: u8 = 0x00;
const KEY_REF_PIN: u8 = 0x80;
const KEY_REF_PUK: u8 = 0x81;

#[derive(Debug, Clone, Default)]
struct SlotState {
    key: Option<PrivateKey>,
    cert: Option<Vec<u8>>,
    compressed: bool,
}

/// A simulated PIV card: configuration (built with the `with_*` methods),
/// the applet's volatile state, the misbehaviour switches, and the APDU log.
///
/// The default card ([`SimPivCard::new`]) holds:
/// - 9A RSA-2048, 9C ECC P-256, 9D ECC P-384, 9E ECC P-256, each with a
///   certificate `CN=cardsim 9A PIV Authentication,O=p11card test` (9C
///   `Digital Signature`, 9D `Key Management`, 9E `Card Authentication`)
///   issued by `CN=cardsim test CA,O=p11card test`; the 9D certificate is
///   stored gzip-compressed;
/// - PIN `123456` and PUK `12345678`, 3 tries each;
/// - CHUID, CCC and Discovery objects, serial 12345678, the YubiKey 5 ATR.
#[derive(Debug, Clone)]
pub struct SimPivCard {
    slots: [SlotState; 4],
    /// Retired key management keys by key reference (`0x82..=0x95`).
    retired: BTreeMap<u8, SlotState>,
    /// PIN and touch policies that differ from the key reference's default.
    policies: BTreeMap<u8, (PinPolicy, TouchPolicy)>,
    objects: BTreeMap<u32, Vec<u8>>,
    pin: Secret,
    puk: Secret,
    /// The global PIN (key reference `00`), on cards that have one.
    global_pin: Option<Secret>,
    serial: u32,
    atr: Vec<u8>,
    yubico: bool,
    selected: bool,
    pin_verified: bool,
    /// A VERIFY came immediately before: 9C may be used once.
    pin_always: bool,
    frame: Frame,
}

impl Default for SimPivCard {
    fn default() -> Self {
        Self::new()
    }
}

impl SimPivCard {
    /// The default card (see the type's documentation), powered on with
    /// nothing selected.
    pub fn new() -> Self {
        let mut card = SimPivCard {
            slots: Default::default(),
            retired: BTreeMap::new(),
            policies: BTreeMap::new(),
            objects: BTreeMap::new(),
            pin: Secret::new("123456", 3),
            puk: Secret::new("12345678", 3),
            global_pin: None,
            serial: 12_345_678,
            atr: DEFAULT_ATR.to_vec(),
            yubico: true,
            selected: false,
            pin_verified: false,
            pin_always: false,
            frame: Frame::default(),
        };
        card.objects.insert(tags::CHUID, default_chuid());
        card.objects.insert(tags::CCC, default_ccc());
        card.objects.insert(tags::DISCOVERY, default_discovery());
        card.with_key(Slot::Authentication, KeyType::Rsa2048)
            .with_key(Slot::Signature, KeyType::EccP256)
            .with_key(Slot::KeyManagement, KeyType::EccP384)
            .with_key(Slot::CardAuthentication, KeyType::EccP256)
            .with_cert_compressed(Slot::KeyManagement, true)
    }

    // ---- configuration -------------------------------------------------

    /// Gives the CHUID an issuer signature (tag 3E; these bytes, not a real
    /// signature), as issued PIV cards have: the same GUID and FASC-N.
    pub fn with_signed_chuid(self, signature: &[u8]) -> Self {
        self.with_object(tags::CHUID, Some(chuid_signed_with(signature)))
    }

    /// Sets the PIN (6 to 8 bytes) and its number of tries (1..=15).
    ///
    /// # Panics
    /// If the PIN is not 6 to 8 bytes long.
    pub fn with_pin(mut self, pin: &str, tries: u8) -> Self {
        self.pin = Secret::new(pin, tries);
        self
    }

    /// Sets the PUK (6 to 8 bytes) and its number of tries (1..=15).
    ///
    /// # Panics
    /// If the PUK is not 6 to 8 bytes long.
    pub fn with_puk(mut self, puk: &str, tries: u8) -> Self {
        self.puk = Secret::new(puk, tries);
        self
    }

    /// Puts the embedded test key of `key_type` into `slot`, with a fresh
    /// test certificate for it (keeping the slot's compression setting).
    pub fn with_key(self, slot: Slot, key_type: KeyType) -> Self {
        self.with_key_from(slot, key_type, slot)
    }

    /// Puts the embedded test key of `key_type` that [`with_key`] gives
    /// `source` into `slot`, with a test certificate for it: a card whose
    /// `slot` holds another key of the same type (another card of the
    /// same model, or one personalised again).
    ///
    /// [`with_key`]: Self::with_key
    pub fn with_key_from(mut self, slot: Slot, key_type: KeyType, source: Slot) -> Self {
        let key = PrivateKey::embedded(key_type, source);
        let state = &mut self.slots[slot.index()];
        state.cert = Some(slot_certificate_der(slot, &key, source));
        state.key = Some(key);
        self
    }

    /// Empties `slot`: no key, no certificate.
    pub fn without_slot(mut self, slot: Slot) -> Self {
        self.slots[slot.index()] = SlotState::default();
        self
    }

    /// Empties every slot not in `keep` (e.g. a card with only 9A).
    pub fn only_slots(self, keep: &[Slot]) -> Self {
        Slot::ALL
            .into_iter()
            .filter(|s| !keep.contains(s))
            .fold(self, Self::without_slot)
    }

    /// Removes the key of `slot` but keeps its certificate (GENERAL
    /// AUTHENTICATE then answers `6A88`).
    pub fn without_key(mut self, slot: Slot) -> Self {
        self.slots[slot.index()].key = None;
        self
    }

    /// Removes the certificate of `slot` but keeps its key (GET DATA of the
    /// certificate object then answers `6A82`).
    pub fn without_cert(mut self, slot: Slot) -> Self {
        self.slots[slot.index()].cert = None;
        self
    }

    /// Stores `der` as the certificate of `slot` (any bytes: tests may store
    /// a malformed certificate).
    pub fn with_cert_der(mut self, slot: Slot, der: Vec<u8>) -> Self {
        self.slots[slot.index()].cert = Some(der);
        self
    }

    /// Stores the certificate of `slot` gzip-compressed (CertInfo `01`) or
    /// plain (CertInfo `00`).
    pub fn with_cert_compressed(mut self, slot: Slot, compressed: bool) -> Self {
        self.slots[slot.index()].compressed = compressed;
        self
    }

    /// Sets (`Some`) or removes (`None`) a data object, given as the whole
    /// GET DATA response body (`53 L …`, or `7E L …` for Discovery). An
    /// object set here hides the certificate a slot would otherwise serve.
    pub fn with_object(mut self, tag: u32, body: Option<Vec<u8>>) -> Self {
        match body {
            Some(body) => self.objects.insert(tag, body),
            None => self.objects.remove(&tag),
        };
        self
    }

    /// Sets the serial number (Yubico GET SERIAL).
    pub fn with_serial(mut self, serial: u32) -> Self {
        self.serial = serial;
        self
    }

    /// Sets the answer-to-reset.
    pub fn with_atr(mut self, atr: impl Into<Vec<u8>>) -> Self {
        self.atr = atr.into();
        self
    }

    /// Rejects extended-length APDUs with `6700`, like cards and readers
    /// that only speak short APDUs.
    pub fn short_apdus_only(mut self) -> Self {
        self.frame.short_only = true;
        self
    }

    /// Answers the Yubico GET VERSION / GET SERIAL / GET METADATA with
    /// `6D00`, like a non-Yubico PIV card (or a YubiKey before firmware 5.3
    /// for GET METADATA).
    pub fn without_yubico_extensions(mut self) -> Self {
        self.yubico = false;
        self
    }

    // ---- accessors -----------------------------------------------------

    /// The public key in `slot`, if it holds a key.
    pub fn public_key(&self, slot: Slot) -> Option<SimPublicKey> {
        self.slots[slot.index()]
            .key
            .as_ref()
            .map(PrivateKey::public)
    }

    /// The key type in `slot`, if it holds a key.
    pub fn key_type(&self, slot: Slot) -> Option<KeyType> {
        self.slots[slot.index()]
            .key
            .as_ref()
            .map(PrivateKey::key_type)
    }

    /// The (uncompressed) DER certificate in `slot`, if any.
    pub fn certificate_der(&self, slot: Slot) -> Option<&[u8]> {
        self.slots[slot.index()].cert.as_deref()
    }

    /// The answer-to-reset.
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }

    /// The serial number.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// PIN tries left.
    pub fn pin_tries_left(&self) -> u8 {
        self.pin.tries
    }

    /// PUK tries left.
    pub fn puk_tries_left(&self) -> u8 {
        self.puk.tries
    }

    /// Whether the PIN is verified now.
    pub fn pin_verified(&self) -> bool {
        self.pin_verified
    }

    /// The misbehaviour switches.
    pub fn misbehaviour_mut(&mut self) -> &mut Misbehaviour {
        &mut self.frame.misbehaviour
    }

    /// Every APDU processed since power-up of the simulation (or
    /// [`clear_log`](Self::clear_log)), PINs redacted.
    pub fn log(&self) -> &[LoggedApdu] {
        &self.frame.log
    }

    /// The number of APDUs processed (the log's length).
    pub fn apdu_count(&self) -> usize {
        self.frame.log.len()
    }

    /// Empties the log.
    pub fn clear_log(&mut self) {
        self.frame.log.clear();
    }

    /// The log as text, one [`LoggedApdu`] per line.
    pub fn transcript(&self) -> String {
        self.frame
            .log
            .iter()
            .map(|entry| format!("{entry}\n"))
            .collect()
    }

    // ---- the applet ----------------------------------------------------

    /// Power-on (or reset): nothing selected, PIN not verified, no pending
    /// response or chain. Retry counters and contents persist.
    pub fn power_on(&mut self) {
        self.selected = false;
        self.pin_verified = false;
        self.pin_always = false;
        self.frame.reset();
    }

    /// Processes one raw command APDU and returns the raw response (data +
    /// SW1 SW2), applying the [`Misbehaviour`] switches, and logs it.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.process_apdu(apdu)
    }

    fn dispatch(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        // Any complete command uses up the "PIN just verified" state.
        let pin_always = std::mem::take(&mut self.pin_always);
        match cmd.ins {
            INS_SELECT => self.select(cmd),
            INS_GET_DATA => self.get_data(cmd),
            INS_VERIFY => self.verify(cmd),
            INS_CHANGE_REFERENCE => self.change_reference(cmd),
            INS_RESET_RETRY => self.reset_retry_counter(cmd),
            INS_GENERAL_AUTHENTICATE => self.general_authenticate(cmd, pin_always),
            INS_YK_GET_VERSION | INS_YK_GET_SERIAL if self.yubico => {
                if (cmd.p1, cmd.p2) != (0, 0) {
                    Err(sw::WRONG_P1P2)
                } else if cmd.ins == INS_YK_GET_VERSION {
                    Ok(vec![5, 7, 1])
                } else {
                    Ok(self.serial.to_be_bytes().to_vec())
                }
            }
            INS_YK_GET_METADATA if self.yubico => self.get_metadata(cmd),
            _ => Err(sw::INS_NOT_SUPPORTED),
        }
    }

    /// SELECT (Part 2 §3.1.1): the PIV AID or a prefix of at least 9 bytes;
    /// answers the Application Property Template.
    fn select(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if (cmd.p1, cmd.p2) != (0x04, 0x00) {
            return Err(sw::WRONG_P1P2);
        }
        if cmd.data.len() < 9 || !PIV_AID.starts_with(&cmd.data) {
            return Err(sw::NOT_FOUND);
        }
        self.selected = true;
        let misbehaviour = &mut self.frame.misbehaviour;
        if misbehaviour.wrong_key == Some(WrongKey::UntilSelect) {
            misbehaviour.wrong_key = None;
        }
        let mut apt = Vec::new();
        put_tlv(&mut apt, &[0x4F], &PIV_AID[5..]);
        put_tlv(&mut apt, &[0x79], &tlv(&[0x4F], &PIV_AID));
        put_tlv(&mut apt, &[0x50], b"Simulated PIV");
        let algorithms = [0x80, 1, 0x07, 0x80, 1, 0x11, 0x80, 1, 0x14, 0x06, 1, 0x00];
        put_tlv(&mut apt, &[0xAC], &algorithms);
        Ok(tlv(&[0x61], &apt))
    }

    /// GET DATA (Part 2 §3.1.2): `5C` with the object's tag.
    fn get_data(&self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
            return Err(sw::WRONG_P1P2);
        }
        let tag = match read_tlv(&cmd.data) {
            Some(([0x5C], value @ [_, ..], [])) if value.len() <= 3 => {
                value.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
            }
            _ => return Err(sw::WRONG_DATA),
        };
        self.object(tag).ok_or(sw::NOT_FOUND)
    }

    fn object(&self, tag: u32) -> Option<Vec<u8>> {
        if let Some(body) = self.objects.get(&tag) {
            return Some(body.clone());
        }
        if tag == tags::KEY_HISTORY {
            return self.key_history();
        }
        let state = match Slot::ALL.into_iter().find(|s| s.object_tag() == tag) {
            Some(slot) => &self.slots[slot.index()],
            None => {
                let number = tag.checked_sub(tags::RETIRED_1).filter(|n| *n < 20)? as u8;
                self.retired.get(&(RETIRED_1_REFERENCE + number))?
            }
        };
        let cert = state.cert.as_ref()?;
        let mut content = Vec::new();
        if state.compressed {
            put_tlv(&mut content, &[0x70], &gzip(cert));
        } else {
            put_tlv(&mut content, &[0x70], cert);
        }
        put_tlv(&mut content, &[0x71], &[u8::from(state.compressed)]);
        put_tlv(&mut content, &[0xFE], &[]);
        Some(tlv(&[0x53], &content))
    }

    /// VERIFY (Part 2 §3.2.1) of the PIV application PIN, or of the
    /// global PIN on cards with one (either satisfies the access rules).
    fn verify(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if !matches!(cmd.p1, 0x00 | 0xFF) {
            return Err(sw::WRONG_P1P2);
        }
        let verified = self.pin_verified;
        let pin = self.pin_mut(cmd.p2)?;
        if cmd.p1 == 0xFF {
            self.pin_verified = false;
            return Ok(Vec::new());
        }
        if cmd.data.is_empty() {
            return match verified {
                true => Ok(Vec::new()),
                false => Err(pin.status()),
            };
        }
        if cmd.data.len() != 8 {
            return Err(sw::WRONG_DATA);
        }
        let checked = pin.check(&cmd.data);
        self.pin_verified = false;
        checked?;
        self.pin_verified = true;
        self.pin_always = true;
        Ok(Vec::new())
    }

    /// CHANGE REFERENCE DATA (Part 2 §3.2.2) of the PIN (80) or PUK (81):
    /// old || new, each padded to 8 bytes.
    fn change_reference(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let is_pin = match (cmd.p1, cmd.p2) {
            (0, KEY_REF_PIN | KEY_REF_GLOBAL_PIN) => true,
            (0, KEY_REF_PUK) => false,
            _ => return Err(sw::WRONG_P1P2),
        };
        let (old, new) = split_old_new(&cmd.data)?;
        let secret = if is_pin {
            self.pin_mut(cmd.p2)?
        } else {
            &mut self.puk
        };
        let result = secret.check(old);
        if result.is_ok() {
            secret.padded = new;
        }
        if is_pin {
            self.pin_verified = result.is_ok();
        }
        result.map(|()| Vec::new())
    }

    /// RESET RETRY COUNTER (Part 2 §3.2.3): PUK || new PIN.
    fn reset_retry_counter(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if (cmd.p1, cmd.p2) != (0, KEY_REF_PIN) {
            return Err(sw::WRONG_P1P2);
        }
        let (puk, new) = split_old_new(&cmd.data)?;
        self.puk.check(puk)?;
        self.pin.padded = new;
        self.pin.tries = self.pin.max;
        Ok(Vec::new())
    }

    /// GENERAL AUTHENTICATE (Part 2 §3.2.4): `7C { 82 00, 81 challenge }`
    /// (sign, or raw RSA) or `7C { 82 00, 85 point }` (ECDH).
    fn general_authenticate(&mut self, cmd: &Command, pin_always: bool) -> Result<Vec<u8>, u16> {
        let mut key = self
            .key_slot(cmd.p2)
            .ok_or(sw::WRONG_P1P2)?
            .key
            .as_ref()
            .ok_or(sw::REF_NOT_FOUND)?;
        let foreign;
        if self.frame.misbehaviour.wrong_key.is_some() {
            foreign = another_key(key);
            key = &foreign;
        }
        if key.key_type().algorithm_id() != cmd.p1 {
            return Err(sw::WRONG_DATA);
        }
        let allowed = match self.policy(cmd.p2).0 {
            PinPolicy::Never => true,
            PinPolicy::Always => self.pin_verified && pin_always,
            PinPolicy::Once => self.pin_verified,
        };
        if !allowed {
            return Err(sw::SECURITY_STATUS);
        }
        let items = match read_tlv(&cmd.data) {
            Some(([0x7C], inner, [])) => read_all(inner).ok_or(sw::WRONG_DATA)?,
            _ => return Err(sw::WRONG_DATA),
        };
        let mut response_requested = false;
        let mut result = None;
        for (tag, value) in items {
            match (tag, value) {
                ([0x82], []) => response_requested = true,
                ([0x81], challenge) if result.is_none() => {
                    let forge = self.frame.misbehaviour.forged_signatures
                        && !matches!(key.key_type(), KeyType::Rsa2048 | KeyType::Rsa1024);
                    result = Some(match forge {
                        true => FORGED_DER_SIGNATURE.to_vec(),
                        false => key.sign(challenge)?,
                    });
                }
                ([0x85], point) if result.is_none() => result = Some(key.ecdh(point)?),
                _ => return Err(sw::WRONG_DATA),
            }
        }
        match result {
            Some(result) if response_requested => Ok(tlv(&[0x7C], &tlv(&[0x82], &result))),
            _ => Err(sw::WRONG_DATA),
        }
    }
}

impl Applet for SimPivCard {
    const GET_DATA_INS: u8 = INS_GET_DATA;

    fn frame(&mut self) -> &mut Frame {
        &mut self.frame
    }

    fn selected(&self) -> bool {
        self.selected
    }

    fn execute(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        self.dispatch(cmd)
    }
}

/// An embedded key of `key`'s type that is not `key` (the key a second
/// application would hold).
fn another_key(key: &PrivateKey) -> PrivateKey {
    let public = key.public();
    Slot::ALL
        .into_iter()
        .map(|source| PrivateKey::embedded(key.key_type(), source))
        .find(|other| other.public() != public)
        .unwrap_or_else(|| key.clone())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}
