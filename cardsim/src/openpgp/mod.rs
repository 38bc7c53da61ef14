//! The simulated OpenPGP card application (OpenPGP Smart Card Application
//! spec 3.4), one APDU at a time: SELECT, GET DATA, SELECT DATA / GET NEXT
//! DATA (cardholder certificates), PUT DATA, VERIFY, CHANGE REFERENCE DATA,
//! RESET RETRY COUNTER, GENERATE ASYMMETRIC KEY PAIR, PSO:COMPUTE DIGITAL
//! SIGNATURE, PSO:DECIPHER, INTERNAL AUTHENTICATE, GET CHALLENGE, with the
//! framing (chaining, extended length, GET RESPONSE) shared with the PIV card.

mod keys;
#[cfg(test)]
mod tests;

use sha2::{Digest, Sha256};

use crate::apdu::{put_tlv, read_tlv, sw, tlv, Command};
use crate::frame::{Applet, Frame, INS_SELECT};
use crate::log::LoggedApdu;
use crate::misbehave::{forged_signature, Misbehaviour};
use keys::{role_certificate_der, PgpPrivateKey};
pub use keys::{KeyRole, PgpKeyType, PgpPublicKey};

/// The registered application identifier (RID `D2 76 00 01 24`) and the
/// OpenPGP application (`01`): what a host SELECTs (spec 3.4 §4.2.1).
pub const OPENPGP_AID_PREFIX: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];

/// The default manufacturer ID (`FFFE`: the range for randomly assigned
/// serial numbers, not a real manufacturer).
pub const DEFAULT_MANUFACTURER: u16 = 0xFFFE;

/// The default serial number (in the AID).
pub const DEFAULT_OPENPGP_SERIAL: u32 = 0x1234_5678;

/// The default creation time of the keys: 2024-01-01T00:00:00Z.
pub const KEY_CREATION_TIME: u32 = 1_704_067_200;

/// The historical bytes (DO 5F52, and in the ATR): category 00, card service
/// data `31 C5`, card capabilities `73 C0 01 C0` (selection by full and
/// partial DF name; command chaining; extended Lc/Le), life cycle `05`
/// (operational), `90 00`.
const HISTORICAL_BYTES: [u8; 10] = [0x00, 0x31, 0xC5, 0x73, 0xC0, 0x01, 0xC0, 0x05, 0x90, 0x00];
/// Offset of the byte that announces chaining (80) and extended length (40).
const HIST_APDU_CAPS: usize = 6;

/// The default ATR: T=1, the historical bytes above. It matches no entry of
/// OpenSC's OpenPGP ATR table, so OpenSC recognises the card by SELECT.
pub const DEFAULT_OPENPGP_ATR: [u8; 21] = [
    0x3B, 0xDA, 0x18, 0xFF, 0x81, 0xB1, 0xFE, 0x75, 0x1F, 0x03, 0x00, 0x31, 0xC5, 0x73, 0xC0, 0x01,
    0xC0, 0x05, 0x90, 0x00, 0x89,
];

const INS_GET_DATA: u8 = 0xCA;
const INS_GET_NEXT_DATA: u8 = 0xCC;
const INS_SELECT_DATA: u8 = 0xA5;
const INS_PUT_DATA: u8 = 0xDA;
const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE: u8 = 0x24;
const INS_RESET_RETRY: u8 = 0x2C;
const INS_GENERATE: u8 = 0x47;
const INS_PSO: u8 = 0x2A;
const INS_INTERNAL_AUTHENTICATE: u8 = 0x88;
const INS_GET_CHALLENGE: u8 = 0x84;

/// PW1 in mode 81 (PSO:CDS), PW1 in mode 82 (other operations), PW3.
const PW1_SIGN: u8 = 0x81;
const PW1_OTHER: u8 = 0x82;
const PW3: u8 = 0x83;

/// Maximum lengths (C4 bytes 2-4; extended capabilities).
const MAX_PW_LEN: usize = 0x7F;
const MAX_CHALLENGE: usize = 0x100;
const MAX_CERT: usize = 0x800;
const MAX_SPECIAL_DO: usize = 0xFF;
/// Announced in DO 7F66: maximum command and response length.
const MAX_APDU_DATA: u16 = 0x1000;
/// The name (5B) may have up to 39 bytes.
const MAX_NAME: usize = 39;

/// The order of DO 7F21 occurrences (spec 3.4 §7.2.5): AUT, DEC, SIG.
const CERT_OCCURRENCES: [KeyRole; 3] = [
    KeyRole::Authentication,
    KeyRole::Decryption,
    KeyRole::Signature,
];

/// DE key status: not present, generated on the card, imported.
const KEY_ABSENT: u8 = 0x00;
const KEY_GENERATED: u8 = 0x01;
const KEY_IMPORTED: u8 = 0x02;

/// A password (PW1, PW3, Resetting Code) with its retry counter.
#[derive(Debug, Clone)]
struct Password {
    value: Vec<u8>,
    tries: u8,
    max: u8,
    min_len: usize,
}

impl Password {
    fn new(value: &str, max: u8, min_len: usize) -> Self {
        let mut pw = Password {
            value: Vec::new(),
            tries: 0,
            max: max.clamp(1, 15),
            min_len,
        };
        let valid = pw.set(value.as_bytes());
        assert!(
            valid,
            "a password has {min_len} to {MAX_PW_LEN} bytes, not {value:?}"
        );
        pw
    }

    /// An unset password (the Resetting Code of a new card): no tries.
    fn unset(max: u8, min_len: usize) -> Self {
        Password {
            value: Vec::new(),
            tries: 0,
            max,
            min_len,
        }
    }

    fn valid(&self, value: &[u8]) -> bool {
        (self.min_len..=MAX_PW_LEN).contains(&value.len())
    }

    /// Sets a new value and a full retry counter; `false` if its length is
    /// out of range.
    fn set(&mut self, value: &[u8]) -> bool {
        if !self.valid(value) {
            return false;
        }
        self.value = value.to_vec();
        self.tries = self.max;
        true
    }

    /// Checks an attempt with retry-counter semantics: blocked → `6983`,
    /// wrong → `63Cx` with one try less, right → a full counter.
    fn check(&mut self, attempt: &[u8]) -> Result<(), u16> {
        if self.tries == 0 {
            return Err(sw::AUTH_BLOCKED);
        }
        if attempt == self.value {
            self.tries = self.max;
            Ok(())
        } else {
            self.tries -= 1;
            Err(sw::tries_left(self.tries))
        }
    }

    /// `63Cx`, or `6983` when blocked.
    fn status(&self) -> u16 {
        match self.tries {
            0 => sw::AUTH_BLOCKED,
            n => sw::tries_left(n),
        }
    }
}

/// One key slot: the algorithm attributes, the key, its DOs.
#[derive(Debug, Clone)]
struct KeySlot {
    /// The algorithm attributes (C1-C3) name this type, key or no key.
    key_type: PgpKeyType,
    key: Option<PgpPrivateKey>,
    /// DE key status.
    status: u8,
    fingerprint: [u8; 20],
    ca_fingerprint: [u8; 20],
    created: u32,
    cert: Option<Vec<u8>>,
    /// The certificate is the test certificate of the key (rebuilt when the
    /// key changes).
    test_cert: bool,
}

impl KeySlot {
    fn new(role: KeyRole, key_type: PgpKeyType) -> Self {
        let mut slot = KeySlot {
            key_type,
            key: None,
            status: KEY_ABSENT,
            fingerprint: [0; 20],
            ca_fingerprint: [0; 20],
            created: 0,
            cert: None,
            test_cert: false,
        };
        slot.install(role, key_type, KEY_IMPORTED);
        slot
    }

    /// Puts the embedded key of `key_type` in, with its fingerprint and
    /// creation time.
    fn install(&mut self, role: KeyRole, key_type: PgpKeyType, status: u8) {
        let key = PgpPrivateKey::embedded(key_type, role);
        self.fingerprint = key.public().fingerprint(role, KEY_CREATION_TIME);
        self.created = KEY_CREATION_TIME;
        if self.test_cert {
            self.cert = Some(role_certificate_der(role, &key));
        }
        self.key_type = key_type;
        self.key = Some(key);
        self.status = status;
    }

    /// Removes the key and what describes it (the attributes stay).
    fn clear(&mut self) {
        self.key = None;
        self.status = KEY_ABSENT;
        self.fingerprint = [0; 20];
        self.created = 0;
    }
}

/// A simulated OpenPGP card (spec 3.4): configuration (built with the
/// `with_*` methods), the application's volatile state, the misbehaviour
/// switches, and the APDU log.
///
/// The default card ([`SimOpenPgpCard::new`]) holds:
/// - AID `D2 76 00 01 24 01 03 04 FF FE 12 34 56 78 00 00` (version 3.4,
///   manufacturer `FFFE`, serial `12345678`), the ATR [`DEFAULT_OPENPGP_ATR`];
/// - signature key RSA-2048, decryption key RSA-2048, authentication key
///   ECDSA P-256 (embedded test keys), with OpenPGP v4 fingerprints for
///   creation time 2024-01-01 ([`KEY_CREATION_TIME`]);
/// - a cardholder certificate for the authentication key (DO 7F21, first
///   occurrence), `CN=cardsim OpenPGP Authentication key,O=p11card test`,
///   issued by the cardsim test CA;
/// - PW1 `123456`, PW3 `12345678` (3 tries each), no Resetting Code; PW1
///   valid for one signature (PW status byte 1 = `00`);
/// - name `Simulated<<PGP`, language `en`, sex `9`, a URL, signature
///   counter 0.
///
/// ```
/// use p11card_cardsim::{KeyRole, PgpKeyType, SimBackend, SimOpenPgpCard};
///
/// let card = SimOpenPgpCard::new().with_key(KeyRole::Decryption, PgpKeyType::X25519);
/// let (_backend, card) = SimBackend::with_card(card);
/// let select = [0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
/// let verify = [0x00, 0x20, 0x00, 0x82, 0x06, b'1', b'2', b'3', b'4', b'5', b'6'];
/// card.with_openpgp(|c| {
///     assert_eq!(c.process(&select), [0x90, 0x00]);
///     assert_eq!(c.process(&verify), [0x90, 0x00]);
///     assert!(c.pw1_verified() && !c.pw1_verified_for_signing());
/// });
/// assert!(card.transcript().contains("00 20 00 82 06 <redacted>"));
/// ```
#[derive(Debug, Clone)]
pub struct SimOpenPgpCard {
    slots: [KeySlot; 3],
    pw1: Password,
    pw3: Password,
    rc: Password,
    /// PW status byte 1: PW1 (81) stays valid for several PSO:CDS.
    pw1_multiple: bool,
    signature_counter: u32,
    name: Vec<u8>,
    language: Vec<u8>,
    sex: u8,
    url: Vec<u8>,
    login: Vec<u8>,
    private_dos: [Vec<u8>; 4],
    manufacturer: u16,
    serial: u32,
    atr: Option<Vec<u8>>,
    default_atr: Vec<u8>,
    challenges: u64,
    selected: bool,
    pw1_81: bool,
    pw1_82: bool,
    pw3_ok: bool,
    /// The DO 7F21 occurrence SELECT DATA chose (0 = AUT).
    occurrence: usize,
    frame: Frame,
}

impl Default for SimOpenPgpCard {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds an ATR (T=1) around `historical` (10 bytes), with its check byte.
fn atr_for(historical: &[u8; 10]) -> Vec<u8> {
    let mut atr = vec![0x3B, 0xDA, 0x18, 0xFF, 0x81, 0xB1, 0xFE, 0x75, 0x1F, 0x03];
    atr.extend_from_slice(historical);
    let tck = atr[1..].iter().fold(0, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

impl SimOpenPgpCard {
    /// The default card (see the type's documentation), powered on with
    /// nothing selected.
    pub fn new() -> Self {
        let mut slots = [
            KeySlot::new(KeyRole::Signature, PgpKeyType::Rsa2048),
            KeySlot::new(KeyRole::Decryption, PgpKeyType::Rsa2048),
            KeySlot::new(KeyRole::Authentication, PgpKeyType::P256),
        ];
        let aut = &mut slots[KeyRole::Authentication.index()];
        aut.test_cert = true;
        aut.cert = aut
            .key
            .as_ref()
            .map(|key| role_certificate_der(KeyRole::Authentication, key));
        SimOpenPgpCard {
            slots,
            pw1: Password::new("123456", 3, 6),
            pw3: Password::new("12345678", 3, 8),
            rc: Password::unset(3, 8),
            pw1_multiple: false,
            signature_counter: 0,
            name: b"Simulated<<PGP".to_vec(),
            language: b"en".to_vec(),
            sex: b'9',
            url: b"https://example.invalid/cardsim-openpgp.asc".to_vec(),
            login: Vec::new(),
            private_dos: Default::default(),
            manufacturer: DEFAULT_MANUFACTURER,
            serial: DEFAULT_OPENPGP_SERIAL,
            atr: None,
            default_atr: atr_for(&HISTORICAL_BYTES),
            challenges: 0,
            selected: false,
            pw1_81: false,
            pw1_82: false,
            pw3_ok: false,
            occurrence: 0,
            frame: Frame::default(),
        }
    }

    // ---- configuration -------------------------------------------------

    /// Puts the embedded test key of `key_type` in the `role` slot (with its
    /// algorithm attributes and fingerprint; a test certificate there is
    /// rebuilt for the new key).
    ///
    /// # Panics
    /// If `key_type` cannot hold `role` (Ed25519 cannot decrypt, X25519 only
    /// decrypts).
    pub fn with_key(mut self, role: KeyRole, key_type: PgpKeyType) -> Self {
        self.slots[role.index()].install(role, key_type, KEY_IMPORTED);
        self
    }

    /// Empties the `role` slot: no key, zero fingerprint (the algorithm
    /// attributes stay). GENERATE in read mode and the key's operation
    /// answer `6A88`.
    pub fn without_key(mut self, role: KeyRole) -> Self {
        self.slots[role.index()].clear();
        self
    }

    /// Stores the test certificate of the `role` key (issued by the cardsim
    /// test CA) as its cardholder certificate.
    ///
    /// # Panics
    /// If the slot holds no key.
    pub fn with_test_cert(mut self, role: KeyRole) -> Self {
        let slot = &mut self.slots[role.index()];
        let key = slot.key.as_ref().expect("a test certificate needs a key");
        slot.cert = Some(role_certificate_der(role, key));
        slot.test_cert = true;
        self
    }

    /// Stores `der` as the cardholder certificate of `role` (any bytes).
    pub fn with_cert_der(mut self, role: KeyRole, der: Vec<u8>) -> Self {
        let slot = &mut self.slots[role.index()];
        slot.cert = Some(der);
        slot.test_cert = false;
        self
    }

    /// Removes the cardholder certificate of `role` (DO 7F21 reads empty).
    pub fn without_cert(mut self, role: KeyRole) -> Self {
        let slot = &mut self.slots[role.index()];
        slot.cert = None;
        slot.test_cert = false;
        self
    }

    /// Sets PW1, the user PIN (6 to 127 bytes), and its tries (1..=15).
    ///
    /// # Panics
    /// If the PIN is shorter than 6 or longer than 127 bytes.
    pub fn with_pw1(mut self, pin: &str, tries: u8) -> Self {
        self.pw1 = Password::new(pin, tries, 6);
        self
    }

    /// Sets PW3, the admin PIN (8 to 127 bytes), and its tries (1..=15).
    ///
    /// # Panics
    /// If the PIN is shorter than 8 or longer than 127 bytes.
    pub fn with_pw3(mut self, pin: &str, tries: u8) -> Self {
        self.pw3 = Password::new(pin, tries, 8);
        self
    }

    /// Sets the Resetting Code (8 to 127 bytes) and its tries (1..=15).
    ///
    /// # Panics
    /// If the code is shorter than 8 or longer than 127 bytes.
    pub fn with_resetting_code(mut self, code: &str, tries: u8) -> Self {
        self.rc = Password::new(code, tries, 8);
        self
    }

    /// PW status byte 1: `false` (the default, `00`) makes a VERIFY of PW1
    /// (81) good for one PSO:COMPUTE DIGITAL SIGNATURE only; `true` (`01`)
    /// for several.
    pub fn with_pw1_valid_for_several_signatures(mut self, several: bool) -> Self {
        self.pw1_multiple = several;
        self
    }

    /// Sets the serial number (AID bytes 11-14).
    pub fn with_serial(mut self, serial: u32) -> Self {
        self.serial = serial;
        self
    }

    /// Sets the manufacturer ID (AID bytes 9-10).
    pub fn with_manufacturer(mut self, manufacturer: u16) -> Self {
        self.manufacturer = manufacturer;
        self
    }

    /// Sets the answer-to-reset (the historical bytes in DO 5F52 stay).
    pub fn with_atr(mut self, atr: impl Into<Vec<u8>>) -> Self {
        self.atr = Some(atr.into());
        self
    }

    /// Rejects extended-length APDUs with `6700`, and stops announcing them
    /// in the historical bytes (the card then relies on chaining and GET
    /// RESPONSE).
    pub fn short_apdus_only(mut self) -> Self {
        self.frame.short_only = true;
        self.default_atr = atr_for(&self.historical_bytes());
        self
    }

    /// Sets the cardholder name (DO 5B, at most 39 bytes, `Last<<First`).
    pub fn with_cardholder_name(mut self, name: &str) -> Self {
        self.name = name.as_bytes()[..name.len().min(MAX_NAME)].to_vec();
        self
    }

    /// Sets the URL of the public key (DO 5F50).
    pub fn with_url(mut self, url: &str) -> Self {
        self.url = url.as_bytes().to_vec();
        self
    }

    /// Fills private-use DO `0101` + `index` - 1 (`index` 1..=4).
    ///
    /// # Panics
    /// If `index` is not 1..=4.
    pub fn with_private_do(mut self, index: usize, data: &[u8]) -> Self {
        self.private_dos[index - 1] = data.to_vec();
        self
    }

    /// Sets the digital signature counter (DO 93, 3 bytes).
    pub fn with_signature_counter(mut self, counter: u32) -> Self {
        self.signature_counter = counter.min(0xFF_FFFF);
        self
    }

    // ---- accessors -----------------------------------------------------

    /// The full AID (16 bytes, DO 4F).
    pub fn aid(&self) -> [u8; 16] {
        let mut aid = [0; 16];
        aid[..6].copy_from_slice(&OPENPGP_AID_PREFIX);
        aid[6..8].copy_from_slice(&[0x03, 0x04]);
        aid[8..10].copy_from_slice(&self.manufacturer.to_be_bytes());
        aid[10..14].copy_from_slice(&self.serial.to_be_bytes());
        aid
    }

    /// The serial number.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The answer-to-reset.
    pub fn atr(&self) -> &[u8] {
        self.atr.as_deref().unwrap_or(&self.default_atr)
    }

    /// The public key of `role`, if the card holds one.
    pub fn public_key(&self, role: KeyRole) -> Option<PgpPublicKey> {
        self.slots[role.index()]
            .key
            .as_ref()
            .map(PgpPrivateKey::public)
    }

    /// The type of the `role` key, if the card holds one.
    pub fn key_type(&self, role: KeyRole) -> Option<PgpKeyType> {
        self.slots[role.index()]
            .key
            .as_ref()
            .map(PgpPrivateKey::key_type)
    }

    /// The fingerprint the card stores for `role` (zero when empty).
    pub fn fingerprint(&self, role: KeyRole) -> [u8; 20] {
        self.slots[role.index()].fingerprint
    }

    /// The cardholder certificate of `role`, if any.
    pub fn certificate_der(&self, role: KeyRole) -> Option<&[u8]> {
        self.slots[role.index()].cert.as_deref()
    }

    /// PW1 tries left.
    pub fn pw1_tries_left(&self) -> u8 {
        self.pw1.tries
    }

    /// PW3 tries left.
    pub fn pw3_tries_left(&self) -> u8 {
        self.pw3.tries
    }

    /// Resetting Code tries left (0 when it is not set).
    pub fn resetting_code_tries_left(&self) -> u8 {
        self.rc.tries
    }

    /// The digital signature counter.
    pub fn signature_counter(&self) -> u32 {
        self.signature_counter
    }

    /// Whether PW1 is verified for PSO:COMPUTE DIGITAL SIGNATURE (81) now.
    pub fn pw1_verified_for_signing(&self) -> bool {
        self.pw1_81
    }

    /// Whether PW1 is verified for the other operations (82) now.
    pub fn pw1_verified(&self) -> bool {
        self.pw1_82
    }

    /// Whether PW3 (admin) is verified now.
    pub fn pw3_verified(&self) -> bool {
        self.pw3_ok
    }

    /// PW status byte 1: whether PW1 (81) stays valid for several signatures.
    pub fn pw1_valid_for_several_signatures(&self) -> bool {
        self.pw1_multiple
    }

    /// The cardholder name (DO 5B).
    pub fn cardholder_name(&self) -> &[u8] {
        &self.name
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

    // ---- the application -----------------------------------------------

    /// Power-on (or reset): nothing selected, no password verified, first
    /// certificate occurrence, no pending response or chain. Retry counters
    /// and contents persist.
    pub fn power_on(&mut self) {
        self.selected = false;
        self.pw1_81 = false;
        self.pw1_82 = false;
        self.pw3_ok = false;
        self.occurrence = 0;
        self.frame.reset();
    }

    /// Processes one raw command APDU and returns the raw response (data +
    /// SW1 SW2), applying the [`Misbehaviour`] switches, and logs it.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.process_apdu(apdu)
    }

    fn historical_bytes(&self) -> [u8; 10] {
        let mut hist = HISTORICAL_BYTES;
        if self.frame.short_only {
            hist[HIST_APDU_CAPS] &= !0x40;
        }
        hist
    }

    fn dispatch(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        match cmd.ins {
            INS_SELECT => self.select(cmd),
            INS_GET_DATA => self.get_data(cmd),
            INS_SELECT_DATA => self.select_data(cmd),
            INS_GET_NEXT_DATA => self.get_next_data(cmd),
            INS_PUT_DATA => self.put_data(cmd),
            INS_VERIFY => self.verify(cmd),
            INS_CHANGE_REFERENCE => self.change_reference(cmd),
            INS_RESET_RETRY => self.reset_retry_counter(cmd),
            INS_GENERATE => self.generate(cmd),
            INS_PSO => match (cmd.p1, cmd.p2) {
                (0x9E, 0x9A) => self.compute_signature(cmd),
                (0x80, 0x86) => self.decipher(cmd),
                _ => Err(sw::WRONG_P1P2),
            },
            INS_INTERNAL_AUTHENTICATE => self.internal_authenticate(cmd),
            INS_GET_CHALLENGE => self.get_challenge(cmd),
            _ => Err(sw::INS_NOT_SUPPORTED),
        }
    }

    /// SELECT (spec 3.4 §7.2.1) by DF name: the AID or a prefix of at least
    /// the 6 bytes RID + application. Answers no data.
    fn select(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if cmd.p1 != 0x04 || !matches!(cmd.p2, 0x00 | 0x0C) {
            return Err(sw::WRONG_P1P2);
        }
        if cmd.data.len() < OPENPGP_AID_PREFIX.len() || !self.aid().starts_with(&cmd.data) {
            return Err(sw::NOT_FOUND);
        }
        self.selected = true;
        Ok(Vec::new())
    }

    // ---- data objects --------------------------------------------------

    /// GET DATA (spec 3.4 §7.2.6): P1 P2 is the tag. Besides the DOs the
    /// spec lists, the simple DOs inside 65, 6E and 7A are served one by one
    /// (as many cards do).
    fn get_data(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
        match tag {
            0x0103 if !self.pw1_82 => Err(sw::SECURITY_STATUS),
            0x0104 if !self.pw3_ok => Err(sw::SECURITY_STATUS),
            0x7F21 => Ok(self.occurrence_cert()),
            _ => self.data_object(tag).ok_or(sw::REF_NOT_FOUND),
        }
    }

    /// The value of a readable DO (without its own tag and length).
    fn data_object(&self, tag: u16) -> Option<Vec<u8>> {
        let slot_tags = |base: u16| (base..base + 3).contains(&tag);
        let value = match tag {
            0x004F => self.aid().to_vec(),
            0x005E => self.login.clone(),
            0x005B => self.name.clone(),
            0x5F2D => self.language.clone(),
            0x5F35 => vec![self.sex],
            0x5F50 => self.url.clone(),
            0x5F52 => self.historical_bytes().to_vec(),
            0x0065 => self.cardholder_data(),
            0x006E => self.application_data(),
            0x0073 => self.discretionary_data(),
            0x007A => tlv(&[0x93], &self.counter_bytes()),
            0x0093 => self.counter_bytes().to_vec(),
            0x7F66 => self.extended_length_info(),
            0x00C0 => self.extended_capabilities().to_vec(),
            _ if slot_tags(0x00C1) => {
                let role = KeyRole::ALL[usize::from(tag - 0x00C1)];
                self.attributes(role)
            }
            0x00C4 => self.pw_status().to_vec(),
            0x00C5 => self.slots.iter().flat_map(|s| s.fingerprint).collect(),
            0x00C6 => self.slots.iter().flat_map(|s| s.ca_fingerprint).collect(),
            0x00CD => self
                .slots
                .iter()
                .flat_map(|s| s.created.to_be_bytes())
                .collect(),
            0x00DE => self.key_information().to_vec(),
            0x00FA => self.algorithm_information(),
            0x0101..=0x0104 => self.private_dos[usize::from(tag - 0x0101)].clone(),
            _ => return None,
        };
        Some(value)
    }

    fn counter_bytes(&self) -> [u8; 3] {
        let c = self.signature_counter.to_be_bytes();
        [c[1], c[2], c[3]]
    }

    fn attributes(&self, role: KeyRole) -> Vec<u8> {
        self.slots[role.index()].key_type.algorithm_attributes(role)
    }

    /// DO 65 (spec 3.4 §4.4.3.2): name, language, sex.
    fn cardholder_data(&self) -> Vec<u8> {
        let mut out = tlv(&[0x5B], &self.name);
        put_tlv(&mut out, &[0x5F, 0x2D], &self.language);
        put_tlv(&mut out, &[0x5F, 0x35], &[self.sex]);
        out
    }

    /// DO 6E (spec 3.4 §4.4.3.1): AID, historical bytes, extended length
    /// information, discretionary data objects.
    fn application_data(&self) -> Vec<u8> {
        let mut out = tlv(&[0x4F], &self.aid());
        put_tlv(&mut out, &[0x5F, 0x52], &self.historical_bytes());
        put_tlv(&mut out, &[0x7F, 0x66], &self.extended_length_info());
        put_tlv(&mut out, &[0x73], &self.discretionary_data());
        out
    }

    /// DO 73: C0 to C6, CD, DE.
    fn discretionary_data(&self) -> Vec<u8> {
        let mut out = tlv(&[0xC0], &self.extended_capabilities());
        for role in KeyRole::ALL {
            put_tlv(&mut out, &[role.attributes_tag()], &self.attributes(role));
        }
        put_tlv(&mut out, &[0xC4], &self.pw_status());
        for tag in [0xC5, 0xC6, 0xCD] {
            let value = self.data_object(tag).unwrap_or_default();
            put_tlv(&mut out, &[tag as u8], &value);
        }
        put_tlv(&mut out, &[0xDE], &self.key_information());
        out
    }

    /// DO 7F66: maximum command and response length.
    fn extended_length_info(&self) -> Vec<u8> {
        let max = MAX_APDU_DATA.to_be_bytes();
        vec![0x02, 0x02, max[0], max[1], 0x02, 0x02, max[0], max[1]]
    }

    /// DO C0 (spec 3.4 §4.4.3.7): GET CHALLENGE, key import, PW status
    /// changeable, private DOs, algorithm attributes changeable (no secure
    /// messaging, no AES, no KDF); no SM algorithm; maximum challenge,
    /// certificate and special-DO lengths; no PIN block 2; no MSE.
    fn extended_capabilities(&self) -> [u8; 10] {
        let [c1, c2] = (MAX_CHALLENGE as u16).to_be_bytes();
        let [m1, m2] = (MAX_CERT as u16).to_be_bytes();
        let [s1, s2] = (MAX_SPECIAL_DO as u16).to_be_bytes();
        [0x7C, 0x00, c1, c2, m1, m2, s1, s2, 0x00, 0x00]
    }

    /// DO C4 (spec 3.4 §4.4.3.8): PW1 mode, maximum lengths of PW1, RC, PW3,
    /// and their retry counters.
    fn pw_status(&self) -> [u8; 7] {
        let max = MAX_PW_LEN as u8;
        [
            u8::from(self.pw1_multiple),
            max,
            max,
            max,
            self.pw1.tries,
            self.rc.tries,
            self.pw3.tries,
        ]
    }

    /// DO DE (spec 3.4 §4.4.3.8): key reference and status per key.
    fn key_information(&self) -> [u8; 6] {
        let mut out = [0; 6];
        for role in KeyRole::ALL {
            out[role.index() * 2] = role.key_number();
            out[role.index() * 2 + 1] = self.slots[role.index()].status;
        }
        out
    }

    /// DO FA (spec 3.4 §4.4.3.11): every supported algorithm attribute,
    /// per key.
    fn algorithm_information(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for role in KeyRole::ALL {
            for key_type in PgpKeyType::ALL.into_iter().filter(|t| t.supports(role)) {
                let attributes = key_type.algorithm_attributes(role);
                put_tlv(&mut out, &[role.attributes_tag()], &attributes);
            }
        }
        out
    }

    /// The cardholder certificate of the current occurrence (empty if none).
    fn occurrence_cert(&self) -> Vec<u8> {
        let role = CERT_OCCURRENCES[self.occurrence];
        self.slots[role.index()].cert.clone().unwrap_or_default()
    }

    /// SELECT DATA (spec 3.4 §7.2.5): P1 is the occurrence of DO 7F21 that
    /// GET DATA and PUT DATA reach from now on. The data is `60 04 5C 02 7F
    /// 21` (also accepted: `5C 02 7F 21`, as early GnuPG versions sent it).
    fn select_data(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if cmd.p2 != 0x04 || usize::from(cmd.p1) >= CERT_OCCURRENCES.len() {
            return Err(sw::WRONG_P1P2);
        }
        let tag_list: &[u8] = &[0x5C, 0x02, 0x7F, 0x21];
        let wrapped = tlv(&[0x60], tag_list);
        if cmd.data != wrapped && cmd.data != tag_list {
            return Err(sw::WRONG_DATA);
        }
        self.occurrence = usize::from(cmd.p1);
        Ok(Vec::new())
    }

    /// GET NEXT DATA (spec 3.4 §7.2.7) of DO 7F21: the next occurrence.
    fn get_next_data(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if (cmd.p1, cmd.p2) != (0x7F, 0x21) {
            return Err(sw::WRONG_P1P2);
        }
        if self.occurrence + 1 >= CERT_OCCURRENCES.len() {
            return Err(sw::REF_NOT_FOUND);
        }
        self.occurrence += 1;
        Ok(self.occurrence_cert())
    }

    /// PUT DATA (spec 3.4 §7.2.8): private DOs 0101/0103 after PW1 (82),
    /// everything else after PW3.
    fn put_data(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
        let allowed = match tag {
            0x0101 | 0x0103 => self.pw1_82,
            _ => self.pw3_ok,
        };
        if !allowed {
            return Err(sw::SECURITY_STATUS);
        }
        let data = &cmd.data;
        let fits = |max: usize| {
            if data.len() <= max {
                Ok(data.clone())
            } else {
                Err(sw::WRONG_LENGTH)
            }
        };
        let fixed = |len: usize| {
            if data.len() == len {
                Ok(())
            } else {
                Err(sw::WRONG_LENGTH)
            }
        };
        match tag {
            0x005B => self.name = fits(MAX_NAME)?,
            0x005E => self.login = fits(MAX_SPECIAL_DO)?,
            0x5F2D => self.language = fits(8)?,
            0x5F35 => {
                fixed(1)?;
                self.sex = data[0];
            }
            0x5F50 => self.url = fits(MAX_SPECIAL_DO)?,
            0x7F21 => {
                let role = CERT_OCCURRENCES[self.occurrence];
                let cert = fits(MAX_CERT)?;
                let slot = &mut self.slots[role.index()];
                slot.cert = (!cert.is_empty()).then_some(cert);
                slot.test_cert = false;
            }
            0x00C1..=0x00C3 => {
                let role = KeyRole::ALL[usize::from(tag - 0x00C1)];
                let key_type =
                    PgpKeyType::from_algorithm_attributes(role, data).ok_or(sw::WRONG_DATA)?;
                let slot = &mut self.slots[role.index()];
                if slot.key_type != key_type {
                    // New attributes: the old key is gone until GENERATE.
                    slot.key_type = key_type;
                    slot.clear();
                }
            }
            0x00C4 => match data.as_slice() {
                [mode @ (0 | 1), ..] => self.pw1_multiple = *mode == 1,
                [_, ..] => return Err(sw::WRONG_DATA),
                [] => return Err(sw::WRONG_LENGTH),
            },
            0x00C7..=0x00C9 => {
                fixed(20)?;
                let slot = &mut self.slots[usize::from(tag - 0x00C7)];
                slot.fingerprint.copy_from_slice(data);
            }
            0x00CA..=0x00CC => {
                fixed(20)?;
                let slot = &mut self.slots[usize::from(tag - 0x00CA)];
                slot.ca_fingerprint.copy_from_slice(data);
            }
            0x00CE..=0x00D0 => {
                fixed(4)?;
                let slot = &mut self.slots[usize::from(tag - 0x00CE)];
                slot.created = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            }
            0x00D3 => {
                if data.is_empty() {
                    self.rc = Password::unset(self.rc.max, self.rc.min_len);
                } else if !self.rc.set(data) {
                    return Err(sw::WRONG_LENGTH);
                }
            }
            0x0101..=0x0104 => self.private_dos[usize::from(tag - 0x0101)] = fits(MAX_SPECIAL_DO)?,
            _ => return Err(sw::REF_NOT_FOUND),
        }
        Ok(Vec::new())
    }

    // ---- passwords -----------------------------------------------------

    /// VERIFY (spec 3.4 §7.2.2): P2 81 (PW1 for signing), 82 (PW1 for the
    /// other operations), 83 (PW3). No data: the status (`9000`, `63Cx`),
    /// no try spent. P1 = FF: reset the verified state.
    fn verify(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if !(PW1_SIGN..=PW3).contains(&cmd.p2) || !matches!(cmd.p1, 0x00 | 0xFF) {
            return Err(sw::WRONG_P1P2);
        }
        if cmd.p1 == 0xFF {
            if !cmd.data.is_empty() {
                return Err(sw::WRONG_LENGTH);
            }
            *self.verified_mut(cmd.p2) = false;
            return Ok(Vec::new());
        }
        if cmd.data.is_empty() {
            let status = if cmd.p2 == PW3 { &self.pw3 } else { &self.pw1 }.status();
            return match *self.verified_mut(cmd.p2) {
                true => Ok(Vec::new()),
                false => Err(status),
            };
        }
        *self.verified_mut(cmd.p2) = false;
        let password = if cmd.p2 == PW3 {
            &mut self.pw3
        } else {
            &mut self.pw1
        };
        password.check(&cmd.data)?;
        *self.verified_mut(cmd.p2) = true;
        Ok(Vec::new())
    }

    fn verified_mut(&mut self, reference: u8) -> &mut bool {
        match reference {
            PW1_SIGN => &mut self.pw1_81,
            PW1_OTHER => &mut self.pw1_82,
            _ => &mut self.pw3_ok,
        }
    }

    /// CHANGE REFERENCE DATA (spec 3.4 §7.2.3) of PW1 (81) or PW3 (83):
    /// old || new, unpadded; the card splits at the current length.
    fn change_reference(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let password = match (cmd.p1, cmd.p2) {
            (0x00, PW1_SIGN) => &mut self.pw1,
            (0x00, PW3) => &mut self.pw3,
            _ => return Err(sw::WRONG_P1P2),
        };
        let split = password.value.len().min(cmd.data.len());
        let (old, new) = cmd.data.split_at(split);
        let result = password.check(old);
        if result.is_err() {
            if cmd.p2 == PW3 {
                self.pw3_ok = false;
            } else {
                self.pw1_81 = false;
                self.pw1_82 = false;
            }
        }
        result?;
        if !password.set(new) {
            return Err(sw::WRONG_DATA);
        }
        Ok(Vec::new())
    }

    /// RESET RETRY COUNTER (spec 3.4 §7.2.4) of PW1: P1 00 with Resetting
    /// Code || new PW1, or P1 02 with the new PW1 after PW3.
    fn reset_retry_counter(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let new = match (cmd.p1, cmd.p2) {
            (0x00, PW1_SIGN) => {
                let split = self.rc.value.len().min(cmd.data.len());
                let (code, new) = cmd.data.split_at(split);
                self.rc.check(code)?;
                new
            }
            (0x02, PW1_SIGN) if self.pw3_ok => &cmd.data[..],
            (0x02, PW1_SIGN) => return Err(sw::SECURITY_STATUS),
            _ => return Err(sw::WRONG_P1P2),
        };
        if !self.pw1.set(new) {
            return Err(sw::WRONG_DATA);
        }
        Ok(Vec::new())
    }

    // ---- keys ----------------------------------------------------------

    fn key(&self, role: KeyRole) -> Result<&PgpPrivateKey, u16> {
        self.slots[role.index()]
            .key
            .as_ref()
            .ok_or(sw::REF_NOT_FOUND)
    }

    /// GENERATE ASYMMETRIC KEY PAIR (spec 3.4 §7.2.14): P1 81 reads the
    /// public key of the key whose CRT (`B6 00`, `B8 00`, `A4 00`) is the
    /// data; P1 80 (after PW3) "generates" it: the embedded test key of the
    /// type the algorithm attributes name, the same every time.
    fn generate(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if cmd.p2 != 0x00 || !matches!(cmd.p1, 0x80 | 0x81) {
            return Err(sw::WRONG_P1P2);
        }
        let role = match cmd.data.as_slice() {
            [tag, 0x00] | [tag, 0x03, 0x84, 0x01, _] => {
                KeyRole::from_crt_tag(*tag).ok_or(sw::WRONG_DATA)?
            }
            _ => return Err(sw::WRONG_DATA),
        };
        if cmd.p1 == 0x80 {
            if !self.pw3_ok {
                return Err(sw::SECURITY_STATUS);
            }
            let slot = &mut self.slots[role.index()];
            let key_type = slot.key_type;
            slot.install(role, key_type, KEY_GENERATED);
            // The host computes and writes fingerprint and date.
            slot.fingerprint = [0; 20];
            slot.created = 0;
            if role == KeyRole::Signature {
                self.signature_counter = 0;
            }
        }
        let public = self.key(role)?.public();
        Ok(tlv(&[0x7F, 0x49], &public.template()))
    }

    /// PSO:COMPUTE DIGITAL SIGNATURE (spec 3.4 §7.2.10) with the signature
    /// key, after PW1 (81); PW1 (81) is used up unless PW status byte 1 is
    /// `01`. Counts in DO 93.
    fn compute_signature(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        self.key(KeyRole::Signature)?;
        if !self.pw1_81 {
            return Err(sw::SECURITY_STATUS);
        }
        if !self.pw1_multiple {
            self.pw1_81 = false;
        }
        let signature = self.key(KeyRole::Signature)?.sign(&cmd.data)?;
        let signature = self.forged_or(KeyRole::Signature, signature);
        self.signature_counter = (self.signature_counter + 1).min(0xFF_FFFF);
        Ok(signature)
    }

    /// INTERNAL AUTHENTICATE (spec 3.4 §7.2.13) with the authentication
    /// key, after PW1 (82).
    fn internal_authenticate(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if (cmd.p1, cmd.p2) != (0x00, 0x00) {
            return Err(sw::WRONG_P1P2);
        }
        let key = self.key(KeyRole::Authentication)?;
        if !self.pw1_82 {
            return Err(sw::SECURITY_STATUS);
        }
        let signature = key.sign(&cmd.data)?;
        Ok(self.forged_or(KeyRole::Authentication, signature))
    }

    /// `signature`, or with [`Misbehaviour::forged_signatures`] an EC or
    /// EdDSA signature of the same length with r = s = 1.
    fn forged_or(&self, role: KeyRole, signature: Vec<u8>) -> Vec<u8> {
        let ec_or_eddsa = self
            .key(role)
            .is_ok_and(|key| key.key_type() != PgpKeyType::Rsa2048);
        if self.frame.misbehaviour.forged_signatures && ec_or_eddsa {
            forged_signature(signature.len() / 2)
        } else {
            signature
        }
    }

    /// PSO:DECIPHER (spec 3.4 §7.2.11) with the decryption key, after PW1
    /// (82): `00 || ciphertext` for RSA, `A6 { 7F49 { 86 point } }` for ECDH.
    fn decipher(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let key = self.key(KeyRole::Decryption)?;
        if !self.pw1_82 {
            return Err(sw::SECURITY_STATUS);
        }
        match cmd.data.as_slice() {
            [] => Err(sw::WRONG_LENGTH),
            [0x00, ciphertext @ ..] => key.decrypt(ciphertext),
            [0xA6, ..] => {
                let point = match read_tlv(&cmd.data) {
                    Some(([0xA6], inner, [])) => match read_tlv(inner) {
                        Some(([0x7F, 0x49], template, [])) => match read_tlv(template) {
                            Some(([0x86], point, [])) => point,
                            _ => return Err(sw::WRONG_DATA),
                        },
                        _ => return Err(sw::WRONG_DATA),
                    },
                    _ => return Err(sw::WRONG_DATA),
                };
                key.ecdh(point)
            }
            _ => Err(sw::WRONG_DATA),
        }
    }

    /// GET CHALLENGE (spec 3.4 §7.2.15): Le pseudo-random bytes, the same
    /// sequence on every card (SHA-256 of a counter), so tests stay
    /// deterministic.
    fn get_challenge(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if (cmd.p1, cmd.p2) != (0x00, 0x00) {
            return Err(sw::WRONG_P1P2);
        }
        let len = cmd.ne.filter(|&n| n <= MAX_CHALLENGE);
        let len = len.ok_or(sw::WRONG_LENGTH)?;
        let mut out = Vec::with_capacity(len + 32);
        while out.len() < len {
            self.challenges += 1;
            out.extend_from_slice(&Sha256::digest(self.challenges.to_be_bytes()));
        }
        out.truncate(len);
        Ok(out)
    }
}

impl Applet for SimOpenPgpCard {
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
