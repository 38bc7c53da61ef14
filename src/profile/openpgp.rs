//! The OpenPGP card application ("Functional Specification of the OpenPGP
//! application on ISO Smart Card Operating Systems", v3.4; v2.x cards
//! too): one function per card command, each a few lines.
//!
//! What the token shows:
//! - the three keys (signature `B6`, decryption `B8`, authentication `A4`)
//!   with their algorithm attributes (`C1`–`C3`): RSA, ECDSA/ECDH on
//!   P-256/P-384, Ed25519 (EdDSA) and X25519 (ECDH); public keys from
//!   GENERATE ASYMMETRIC KEY PAIR in read mode (`47 81`);
//! - the cardholder certificates (`7F21`, one occurrence per key on v3
//!   cards, reached with SELECT DATA / GET NEXT DATA), each attached to the
//!   key whose public key it certifies;
//! - PW1 (`81` for signing, `82` for the others) as the user PIN, with the
//!   tries from the PW status bytes (`C4`); the signature key wants the PIN
//!   before every signature when `C4` says PW1 is valid for one signature;
//! - the digital signature counter (`93` in `7A`).

use super::{
    AppError, CardApp, CardInfo, KeyInfo, KeyRole, OpenPgpRole, PinStatus, Profile, Recall,
    SignInput,
};
use crate::cert::{parse_certificate, Curve, PublicKey};
use crate::crypto;
use crate::iso7816::{tlv, CardError, Channel, ChannelOptions, Command, StatusWord};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// INS codes (spec v3.4 §7.2).
const INS_SELECT: u8 = 0xA4;
const INS_SELECT_DATA: u8 = 0xA5;
const INS_GET_DATA: u8 = 0xCA;
const INS_GET_NEXT_DATA: u8 = 0xCC;
const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE_DATA: u8 = 0x24;
const INS_RESET_RETRY_COUNTER: u8 = 0x2C;
const INS_PSO: u8 = 0x2A;
const INS_INTERNAL_AUTHENTICATE: u8 = 0x88;
const INS_GENERATE_ASYMMETRIC_KEY_PAIR: u8 = 0x47;

/// Data objects (spec v3.4 §4.4.1).
const DO_APPLICATION_RELATED_DATA: u16 = 0x006E;
const DO_NAME: u16 = 0x005B;
const DO_SECURITY_SUPPORT_TEMPLATE: u16 = 0x007A;
const DO_PW_STATUS: u16 = 0x00C4;
const DO_CARDHOLDER_CERTIFICATE: u16 = 0x7F21;

/// Password references (spec v3.4 §7.2.2).
const PW1_SIGN: u8 = 0x81;
const PW1: u8 = 0x82;
const PW3: u8 = 0x83;

/// Algorithm IDs in the algorithm attributes (spec v3.4 §4.4.3.9).
const ALGO_RSA: u8 = 0x01;
const ALGO_ECDH: u8 = 0x12;
const ALGO_ECDSA: u8 = 0x13;
const ALGO_EDDSA: u8 = 0x16;

/// Curve OIDs (DER contents, no tag) as the algorithm attributes hold them.
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
/// Ed25519: GnuPG's 1.3.6.1.4.1.11591.15.1, or RFC 8410's 1.3.101.112.
const OID_ED25519: &[&[u8]] = &[
    &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01],
    &[0x2B, 0x65, 0x70],
];
/// Curve25519 for ECDH: 1.3.6.1.4.1.3029.1.5.1, or RFC 8410's 1.3.101.110.
const OID_X25519: &[&[u8]] = &[
    &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01],
    &[0x2B, 0x65, 0x6E],
];

/// A key's algorithm, as its attributes (`C1`–`C3`) say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    /// RSA with a modulus of this many bits.
    Rsa(u16),
    /// ECDSA (signature and authentication keys).
    Ecdsa(Curve),
    /// ECDH on a NIST curve (decryption key).
    Ecdh(Curve),
    /// EdDSA on Ed25519.
    Ed25519,
    /// ECDH on Curve25519 (X25519).
    X25519,
}

impl Algorithm {
    /// Parses algorithm attributes; `None` for algorithms the module does
    /// not support (P-521, brainpool, secp256k1, Ed448, ...).
    fn parse(attributes: &[u8]) -> Option<Algorithm> {
        let (&id, rest) = attributes.split_first()?;
        if id == ALGO_RSA {
            let bits = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
            return Some(Algorithm::Rsa(bits));
        }
        // ECC: the OID, then an optional import-format byte FF.
        let oid = match rest.split_last() {
            Some((0xFF, head)) => head,
            _ => rest,
        };
        let is = |candidates: &[&[u8]]| candidates.contains(&oid);
        let nist = if oid == OID_P256 {
            Some(Curve::P256)
        } else if oid == OID_P384 {
            Some(Curve::P384)
        } else {
            None
        };
        match (id, nist) {
            (ALGO_ECDSA, Some(curve)) => Some(Algorithm::Ecdsa(curve)),
            (ALGO_ECDH, Some(curve)) => Some(Algorithm::Ecdh(curve)),
            (ALGO_EDDSA, None) if is(OID_ED25519) => Some(Algorithm::Ed25519),
            (ALGO_ECDH, None) if is(OID_X25519) => Some(Algorithm::X25519),
            _ => None,
        }
    }
}

/// The three keys: their role in the profile, control reference template,
/// and index in `C1`–`C3`, `C5`, `CD` and `DE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRef {
    Signature,
    Decryption,
    Authentication,
}

impl KeyRef {
    fn from_role(role: &KeyRole) -> Option<KeyRef> {
        match role {
            KeyRole::OpenPgp(OpenPgpRole::Signature) => Some(KeyRef::Signature),
            KeyRole::OpenPgp(OpenPgpRole::Decryption) => Some(KeyRef::Decryption),
            KeyRole::OpenPgp(OpenPgpRole::Authentication) => Some(KeyRef::Authentication),
            _ => None,
        }
    }

    /// The control reference template (spec v3.4 §7.2.14).
    fn crt(self) -> u8 {
        match self {
            KeyRef::Signature => 0xB6,
            KeyRef::Decryption => 0xB8,
            KeyRef::Authentication => 0xA4,
        }
    }

    /// Position in the algorithm attributes (`C1`–`C3`), fingerprint
    /// (`C5`) and timestamp (`CD`) lists.
    fn index(self) -> usize {
        match self {
            KeyRef::Signature => 0,
            KeyRef::Decryption => 1,
            KeyRef::Authentication => 2,
        }
    }
}

/// The PW status bytes (`C4`, spec v3.4 §4.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct PwStatus {
    /// PW1 is valid for one PSO:CDS only (byte 1 = `00`).
    single_signature: bool,
    /// PW1 tries left.
    pw1_tries: u8,
    /// Resetting Code tries left (0: no Resetting Code set, or blocked).
    rc_tries: u8,
    /// PW3 tries left.
    pw3_tries: u8,
}

impl PwStatus {
    fn parse(bytes: &[u8]) -> Result<PwStatus, CardError> {
        if bytes.len() < 7 {
            return Err(CardError::Malformed("PW status bytes shorter than 7"));
        }
        Ok(PwStatus {
            single_signature: bytes[0] == 0x00,
            pw1_tries: bytes[4],
            rc_tries: bytes[5],
            pw3_tries: bytes[6],
        })
    }

    fn pin_status(self) -> PinStatus {
        PinStatus {
            tries_left: Some(self.pw1_tries),
            verified: false,
            blocked: self.pw1_tries == 0,
        }
    }
}

/// What the Application Related Data (`6E`) says.
#[derive(Debug, Clone, Default)]
struct ApplicationData {
    aid: Vec<u8>,
    historical: Option<Vec<u8>>,
    extended_capabilities: Vec<u8>,
    attributes: [Option<Vec<u8>>; 3],
    pw_status: Option<PwStatus>,
    fingerprints: Vec<u8>,
    timestamps: Vec<u8>,
    key_information: Option<Vec<u8>>,
}

impl ApplicationData {
    /// Collects the DOs of `6E`, whether a card nests them in the
    /// discretionary data objects (`73`) or not.
    fn parse(data: &[u8]) -> Result<ApplicationData, CardError> {
        let outer = unwrap_do(data, 0x6E);
        let mut out = ApplicationData::default();
        let mut elements = tlv::parse_all(outer)?;
        let mut index = 0;
        while index < elements.len() {
            let element = elements[index];
            index += 1;
            match element.tag {
                0x73 => elements.extend(tlv::parse_all(element.value)?),
                0x4F => out.aid = element.value.to_vec(),
                0x5F52 => out.historical = Some(element.value.to_vec()),
                0xC0 => out.extended_capabilities = element.value.to_vec(),
                0xC1..=0xC3 => {
                    out.attributes[(element.tag - 0xC1) as usize] = Some(element.value.to_vec())
                }
                0xC4 => out.pw_status = Some(PwStatus::parse(element.value)?),
                0xC5 => out.fingerprints = element.value.to_vec(),
                0xCD => out.timestamps = element.value.to_vec(),
                0xDE => out.key_information = Some(element.value.to_vec()),
                _ => {}
            }
        }
        if out.aid.len() < 14 {
            return Err(CardError::Malformed("no OpenPGP AID in 6E"));
        }
        Ok(out)
    }

    /// The application version (AID bytes 7–8, spec v3.4 §4.2.1).
    fn version(&self) -> (u8, u8) {
        (self.aid[6], self.aid[7])
    }

    /// Manufacturer ID and serial number (AID bytes 9–14) as hex: the token
    /// serial OpenSC shows, so `pkcs11:serial=` URIs keep matching.
    fn serial(&self) -> String {
        self.aid[8..14].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn manufacturer_id(&self) -> u16 {
        u16::from_be_bytes([self.aid[8], self.aid[9]])
    }

    fn algorithm(&self, key: KeyRef) -> Option<Algorithm> {
        self.attributes[key.index()]
            .as_deref()
            .and_then(Algorithm::parse)
    }

    /// Whether the card holds a key in this slot: the key information DO
    /// (`DE`, v3.3+) if the card has it, else a fingerprint or generation
    /// time; `None` when nothing tells (keys generated without either).
    fn key_present(&self, key: KeyRef) -> Option<bool> {
        if let Some(info) = &self.key_information {
            let number = key.index() as u8 + 1;
            return Some(
                info.chunks(2)
                    .any(|pair| pair.len() == 2 && pair[0] == number && pair[1] != 0),
            );
        }
        let nonzero = |list: &[u8], width: usize| {
            list.get(key.index() * width..(key.index() + 1) * width)
                .is_some_and(|part| part.iter().any(|&b| b != 0))
        };
        if nonzero(&self.fingerprints, 20) || nonzero(&self.timestamps, 4) {
            Some(true)
        } else {
            None
        }
    }

    /// The card announces cardholder certificates (`C0` bytes 5–6: the
    /// longest one it takes; v1 cards have none).
    fn max_certificate_len(&self) -> usize {
        match self.extended_capabilities.get(4..6) {
            Some(len) => usize::from(u16::from_be_bytes([len[0], len[1]])),
            None => 0,
        }
    }
}

/// The value of a constructed DO as GET DATA returns it: cards answer with
/// the DO's tag and length around the value, or with the value alone.
fn unwrap_do(data: &[u8], tag: u32) -> &[u8] {
    match tlv::read(data) {
        Ok((element, rest)) if element.tag == tag && rest.is_empty() => element.value,
        _ => data,
    }
}

/// The historical bytes of an ATR (ISO/IEC 7816-3 §8.2), if well formed.
fn atr_historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let count = usize::from(t0 & 0x0F);
    let mut position = 2;
    let mut presence = t0 >> 4;
    loop {
        position += (presence & 1) as usize + ((presence >> 1) & 1) as usize;
        position += ((presence >> 2) & 1) as usize;
        if presence & 0x08 == 0 {
            break;
        }
        presence = *atr.get(position)? >> 4;
        position += 1;
    }
    atr.get(position..position + count)
}

/// Whether historical bytes announce extended Lc/Le: the card capabilities
/// (compact-TLV tag 7, third byte, bit 7; ISO/IEC 7816-4 §8.1.1.2.7).
fn announces_extended_length(historical: &[u8]) -> bool {
    let Some((&category, mut rest)) = historical.split_first() else {
        return false;
    };
    match category {
        // Category 00: compact-TLV objects, then a 3-byte status indicator.
        0x00 if rest.len() >= 3 => rest = &rest[..rest.len() - 3],
        0x80 => {}
        _ => return false,
    }
    while let Some((&header, after)) = rest.split_first() {
        let len = usize::from(header & 0x0F);
        let Some(value) = after.get(..len) else {
            return false;
        };
        if header >> 4 == 0x7 {
            return value.get(2).is_some_and(|b| b & 0x40 != 0);
        }
        rest = &after[len..];
    }
    false
}

/// The cardholder name (`5B`, ISO/IEC 7501-1 style: `Surname<<Given<Names`)
/// as people write it: "Given Names Surname".
fn display_name(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '<' || c.is_whitespace() || c == '\0');
    if text.is_empty() {
        return None;
    }
    let name = match text.split_once("<<") {
        Some((surname, given)) => format!("{given} {surname}"),
        None => text.to_owned(),
    };
    let words: Vec<&str> = name
        .split(|c: char| c == '<' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    Some(words.join(" "))
}

/// Manufacturer names by the ID in the AID (as GnuPG lists them).
fn manufacturer_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x0001 => "PPC Card Systems",
        0x0002 => "Prism",
        0x0003 => "OpenFortress",
        0x0004 => "Wewid",
        0x0005 => "ZeitControl",
        0x0006 => "Yubico",
        0x0007 => "OpenKMS",
        0x0008 => "LogoEmail",
        0x000F => "Nitrokey",
        0xF517 => "FSIJ",
        0x0000 | 0xFFFF => "test card",
        _ => return None,
    })
}

/// What the engine learned about the card, for later transactions.
#[derive(Debug, Clone, Copy, Default)]
struct CardState {
    /// Use extended-length APDUs.
    extended: bool,
    /// Application version, major.
    version: u8,
    /// PW1 is valid for one signature only.
    single_signature: bool,
    /// The card holds a signature key.
    has_signature_key: bool,
}

/// The OpenPGP engine for one profile.
#[derive(Debug)]
pub struct OpenPgpApp {
    profile: Arc<Profile>,
    state: Mutex<CardState>,
}

impl OpenPgpApp {
    /// An engine for a card with this ATR matching `profile`. Whether to use
    /// extended-length APDUs comes from the profile's quirks, else from the
    /// card capabilities in the ATR's historical bytes (and later from the
    /// historical bytes DO `5F52`).
    pub fn new(profile: Arc<Profile>, atr: &[u8]) -> Self {
        let announced = atr_historical_bytes(atr).is_some_and(announces_extended_length);
        let state = CardState {
            extended: Self::use_extended(&profile, announced),
            version: 3,
            ..CardState::default()
        };
        OpenPgpApp {
            profile,
            state: Mutex::new(state),
        }
    }

    fn use_extended(profile: &Profile, announced: bool) -> bool {
        !profile.quirks.short_apdus_only && (profile.quirks.extended_length || announced)
    }

    fn state(&self) -> CardState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update_state(&self, f: impl FnOnce(&mut CardState)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Sets the channel's framing to what the card takes.
    fn frame(&self, channel: &mut Channel) {
        channel.set_options(ChannelOptions {
            extended_length: self.state().extended,
        });
    }

    /// GET DATA (spec v3.4 §7.2.6): the DO's value, or `None` if the card
    /// does not have it.
    fn get_data(&self, channel: &mut Channel, tag: u16) -> Result<Option<Vec<u8>>, AppError> {
        let [p1, p2] = tag.to_be_bytes();
        let command = Command::new(0x00, INS_GET_DATA, p1, p2).expect_long_response();
        let response = channel.execute(&command)?;
        match response.sw {
            StatusWord::SUCCESS => Ok(Some(response.data.to_vec())),
            StatusWord::DATA_NOT_FOUND | StatusWord::NOT_FOUND | StatusWord::WRONG_P1P2 => Ok(None),
            other => Err(CardError::Status(other).into()),
        }
    }

    fn pw_status(&self, channel: &mut Channel) -> Result<PwStatus, AppError> {
        let data = self
            .get_data(channel, DO_PW_STATUS)?
            .ok_or(CardError::Malformed("no PW status bytes"))?;
        Ok(PwStatus::parse(&data)?)
    }

    /// GENERATE ASYMMETRIC KEY PAIR in read mode (`47 81`, spec v3.4
    /// §7.2.14): the public key template `7F49`, or `None` if the slot is
    /// empty.
    fn read_public_key(
        &self,
        channel: &mut Channel,
        key: KeyRef,
        algorithm: Algorithm,
    ) -> Result<Option<PublicKey>, AppError> {
        let command = Command::new(0x00, INS_GENERATE_ASYMMETRIC_KEY_PAIR, 0x81, 0x00)
            .data(vec![key.crt(), 0x00])
            .expect_long_response();
        let response = channel.execute(&command)?;
        match response.sw {
            StatusWord::SUCCESS => {}
            // Referenced data not found (an empty slot; some cards say
            // "wrong data" or "wrong parameters" for it).
            StatusWord::DATA_NOT_FOUND | StatusWord::WRONG_DATA | StatusWord::WRONG_P1P2 => {
                log::debug!("no public key for {key:?}: {}", response.sw);
                return Ok(None);
            }
            // Anything else is a card problem, not an empty slot: a token
            // must never come up with a key silently missing.
            other => return Err(CardError::Status(other).into()),
        }
        let template = tlv::find(&response.data, 0x7F49)?
            .ok_or(CardError::Malformed("no public key template 7F49"))?;
        let field = |tag| -> Result<&[u8], AppError> {
            Ok(tlv::find(template, tag)?
                .ok_or(CardError::Malformed("public key template lacks a field"))?)
        };
        let trim = |bytes: &[u8]| {
            let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
            bytes[first..].to_vec()
        };
        let raw_25519 = |point: &[u8]| -> Result<Vec<u8>, AppError> {
            // GnuPG's native form prefixes 0x40; the card's is 32 bytes.
            let point = match point {
                [0x40, rest @ ..] if rest.len() == 32 => rest,
                other => other,
            };
            if point.len() != 32 {
                return Err(CardError::Malformed("Curve25519 public key is not 32 bytes").into());
            }
            Ok(point.to_vec())
        };
        let public = match algorithm {
            Algorithm::Rsa(_) => PublicKey::Rsa {
                modulus: trim(field(0x81)?),
                public_exponent: trim(field(0x82)?),
            },
            Algorithm::Ecdsa(curve) | Algorithm::Ecdh(curve) => {
                let point = field(0x86)?;
                if point.len() != 1 + 2 * curve.field_len() || point[0] != 0x04 {
                    return Err(
                        CardError::Malformed("EC public key is not an uncompressed point").into(),
                    );
                }
                PublicKey::Ec {
                    curve,
                    point: point.to_vec(),
                }
            }
            Algorithm::Ed25519 => PublicKey::Ed25519 {
                point: raw_25519(field(0x86)?)?,
            },
            Algorithm::X25519 => PublicKey::X25519 {
                point: raw_25519(field(0x86)?)?,
            },
        };
        Ok(Some(public))
    }

    /// The cardholder certificates (`7F21`): on v3 cards one occurrence per
    /// key, reached with SELECT DATA of the first and GET NEXT DATA for the
    /// others (spec v3.4 §7.2.5, §7.2.7); on v2 cards the one DO. Empty
    /// occurrences are left out.
    fn read_certificates(
        &self,
        channel: &mut Channel,
        occurrences: u8,
    ) -> Result<Vec<Vec<u8>>, AppError> {
        let mut found = Vec::new();
        let selected = occurrences > 1 && self.select_data(channel, 0)?;
        let first = self.get_data(channel, DO_CARDHOLDER_CERTIFICATE)?;
        found.extend(first);
        if !selected {
            return Ok(found);
        }
        for occurrence in 1..occurrences {
            let [p1, p2] = DO_CARDHOLDER_CERTIFICATE.to_be_bytes();
            let next = Command::new(0x00, INS_GET_NEXT_DATA, p1, p2).expect_long_response();
            let response = channel.execute(&next)?;
            let certificate = if response.sw.is_success() {
                Some(response.data.to_vec())
            } else if self.select_data(channel, occurrence)? {
                self.get_data(channel, DO_CARDHOLDER_CERTIFICATE)?
            } else {
                break;
            };
            found.extend(certificate);
        }
        Ok(found
            .into_iter()
            .map(|c| unwrap_do(&c, u32::from(DO_CARDHOLDER_CERTIFICATE)).to_vec())
            .filter(|c| !c.is_empty())
            .collect())
    }

    /// SELECT DATA of occurrence `index` of `7F21`; `false` if the card does
    /// not know the command.
    fn select_data(&self, channel: &mut Channel, index: u8) -> Result<bool, AppError> {
        let command = Command::new(0x00, INS_SELECT_DATA, index, 0x04)
            .data(vec![0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21]);
        let response = channel.execute(&command)?;
        Ok(response.sw.is_success())
    }

    fn verify(&self, channel: &mut Channel, reference: u8, pin: &[u8]) -> Result<(), AppError> {
        let command = Command::new(0x00, INS_VERIFY, 0x00, reference)
            .secret_data(Zeroizing::new(pin.to_vec()));
        self.profile.pin_command(channel, &command)
    }

    /// VERIFY with P1 = FF (spec v3.4 §7.2.2): resets the access status of
    /// one password. Cards before v3 do not know it; that is not an error.
    fn forget(&self, channel: &mut Channel, reference: u8) -> Result<(), AppError> {
        let response = channel.execute(&Command::new(0x00, INS_VERIFY, 0xFF, reference))?;
        if !response.sw.is_success() {
            log::debug!("card kept the state of PW {reference:02X}: {}", response.sw);
        }
        Ok(())
    }

    /// Runs a PSO or INTERNAL AUTHENTICATE and maps its failures.
    fn private_key_operation(
        &self,
        channel: &mut Channel,
        command: Command,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        // Its answer may be a decrypted message or a shared secret.
        let response = channel.execute(&command.expect_long_response().redacted())?;
        match response.sw {
            StatusWord::SUCCESS => Ok(response.data),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED => Err(AppError::NotAuthenticated),
            other => Err(CardError::Status(other).into()),
        }
    }
}

impl CardApp for OpenPgpApp {
    fn profile(&self) -> &Profile {
        &self.profile
    }

    fn select(&self, channel: &mut Channel) -> Result<(), AppError> {
        self.frame(channel);
        if self.profile.quirks.loses_login_on_select {
            // GET DATA C4 only works while the OpenPGP application is
            // selected: then a SELECT would drop the PIN state.
            let [p1, p2] = DO_PW_STATUS.to_be_bytes();
            let probe =
                channel.execute(&Command::new(0x00, INS_GET_DATA, p1, p2).expect_response())?;
            if probe.sw.is_success() && PwStatus::parse(&probe.data).is_ok() {
                return Ok(());
            }
        }
        let command = Command::new(0x00, INS_SELECT, 0x04, 0x00)
            .data(self.profile.aid.clone())
            .expect_response();
        channel.transmit_ok(&command)?;
        Ok(())
    }

    fn read_card(&self, channel: &mut Channel, _recall: &dyn Recall) -> Result<CardInfo, AppError> {
        self.frame(channel);
        let raw = self
            .get_data(channel, DO_APPLICATION_RELATED_DATA)?
            .ok_or(CardError::Malformed("no application related data"))?;
        let data = ApplicationData::parse(&raw)?;
        let pw = data
            .pw_status
            .ok_or(CardError::Malformed("no PW status bytes in 6E"))?;
        let (major, minor) = data.version();
        if let Some(historical) = &data.historical {
            let announced = announces_extended_length(historical);
            self.update_state(|s| s.extended = Self::use_extended(&self.profile, announced));
        }
        self.update_state(|s| {
            s.version = major;
            s.single_signature = pw.single_signature;
        });
        self.frame(channel);
        log::debug!(
            "OpenPGP card v{major}.{minor}, serial {}, extended length {}",
            data.serial(),
            self.state().extended
        );

        let mut keys = Vec::new();
        for slot in &self.profile.keys {
            let Some(key_ref) = KeyRef::from_role(&slot.role) else {
                continue;
            };
            let Some(algorithm) = data.algorithm(key_ref) else {
                log::warn!("{key_ref:?} key: algorithm not supported or not announced");
                continue;
            };
            if data.key_present(key_ref) == Some(false) {
                continue;
            }
            let Some(public_key) = self.read_public_key(channel, key_ref, algorithm)? else {
                continue;
            };
            let is_rsa = public_key.is_rsa();
            let signing_key = key_ref != KeyRef::Decryption;
            let always_authenticate = slot
                .always_authenticate
                .unwrap_or(key_ref == KeyRef::Signature && pw.single_signature);
            keys.push(KeyInfo {
                reference: slot.reference,
                id: slot.id.clone(),
                label: slot.label.clone(),
                role: slot.role,
                certificate: None,
                always_authenticate,
                counts_signatures: key_ref == KeyRef::Signature,
                no_pin: false,
                pin_reference: slot.pin_reference,
                can_sign: signing_key,
                can_decrypt: !signing_key && is_rsa,
                can_derive: !signing_key && !is_rsa,
                card_pads: is_rsa,
                recalled: false,
                public_key,
            });
        }
        self.update_state(|s| {
            s.has_signature_key = keys
                .iter()
                .any(|k| k.role == KeyRole::OpenPgp(OpenPgpRole::Signature));
        });

        if !keys.is_empty() && data.max_certificate_len() > 0 {
            let occurrences = if major >= 3 { 3 } else { 1 };
            for der in self.read_certificates(channel, occurrences)? {
                let Ok(certificate) = parse_certificate(&der) else {
                    log::warn!("a cardholder certificate is not usable");
                    continue;
                };
                match keys
                    .iter_mut()
                    .find(|k| k.certificate.is_none() && k.public_key == certificate.public_key)
                {
                    Some(key) => key.certificate = Some(der),
                    None => log::warn!("a cardholder certificate matches no key on the card"),
                }
            }
        }

        let name = self
            .get_data(channel, DO_NAME)?
            .and_then(|raw| display_name(&raw));
        let signature_counter = self
            .get_data(channel, DO_SECURITY_SUPPORT_TEMPLATE)?
            .and_then(|template| {
                let inner = unwrap_do(&template, 0x7A);
                tlv::find(inner, 0x93).ok().flatten().map(<[u8]>::to_vec)
            })
            .filter(|counter| counter.len() <= 4)
            .map(|counter| {
                counter
                    .iter()
                    .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
            });
        // The manufacturer ID in the AID names the maker better than a
        // generic profile can.
        let manufacturer = manufacturer_name(data.manufacturer_id())
            .map_or_else(|| self.profile.manufacturer.clone(), str::to_owned);
        Ok(CardInfo {
            label: name.unwrap_or_else(|| "OpenPGP card".to_owned()),
            serial: data.serial(),
            manufacturer,
            model: self.profile.model.clone(),
            keys,
            pin: Some(pw.pin_status()),
            signature_counter,
            keys_complete: true,
            key_slots_read: 0,
            identity: None,
            recalled: false,
        })
    }

    fn pin_status(&self, channel: &mut Channel) -> Result<PinStatus, AppError> {
        Ok(self.pw_status(channel)?.pin_status())
    }

    fn verify_pin(&self, channel: &mut Channel, pin: &[u8]) -> Result<(), AppError> {
        self.profile.check_pin_length(pin)?;
        // PW1 in mode 82 unlocks decryption and authentication; mode 81 the
        // signature key, unless the card wants PW1 before each signature
        // (then that key is always-authenticate and verifies 81 itself).
        self.verify(channel, PW1, pin)?;
        let state = self.state();
        if state.has_signature_key && !state.single_signature {
            self.verify(channel, PW1_SIGN, pin)?;
        }
        Ok(())
    }

    fn verify_pin_for_key(
        &self,
        channel: &mut Channel,
        key: &KeyInfo,
        pin: &[u8],
    ) -> Result<(), AppError> {
        self.profile.check_pin_length(pin)?;
        self.verify(channel, key.pin_reference, pin)
    }

    fn logout(&self, channel: &mut Channel) -> Result<(), AppError> {
        self.forget(channel, PW1_SIGN)?;
        self.forget(channel, PW1)
    }

    fn change_pin(&self, channel: &mut Channel, old: &[u8], new: &[u8]) -> Result<(), AppError> {
        // Spec v3.4 §7.2.3: CHANGE REFERENCE DATA for PW1 (P2 = 81), old || new.
        self.profile.check_pin_length(old)?;
        self.profile.check_pin_length(new)?;
        let data = super::joined_secret(&[old, new]);
        let command =
            Command::new(0x00, INS_CHANGE_REFERENCE_DATA, 0x00, PW1_SIGN).secret_data(data);
        self.profile.pin_command(channel, &command)
    }

    /// With a Resetting Code on the card (its retry counter in `C4` is not
    /// zero), `unblock_code` is that code: RESET RETRY COUNTER with P1 = 00.
    /// Otherwise it is PW3 (the Admin PIN): VERIFY 83, then RESET RETRY
    /// COUNTER with P1 = 02, then PW3's state is reset (spec v3.4 §7.2.4).
    fn unblock_pin(
        &self,
        channel: &mut Channel,
        unblock_code: &[u8],
        new: &[u8],
    ) -> Result<(), AppError> {
        self.profile.check_pin_length(new)?;
        self.profile.check_puk_length(unblock_code)?;
        let pw = self.pw_status(channel)?;
        let command = if pw.rc_tries > 0 {
            let data = super::joined_secret(&[unblock_code, new]);
            Command::new(0x00, INS_RESET_RETRY_COUNTER, 0x00, PW1_SIGN).secret_data(data)
        } else {
            if pw.pw3_tries == 0 {
                return Err(AppError::PinLocked);
            }
            self.verify(channel, PW3, unblock_code)?;
            Command::new(0x00, INS_RESET_RETRY_COUNTER, 0x02, PW1_SIGN)
                .secret_data(Zeroizing::new(new.to_vec()))
        };
        let response = channel.execute(&command)?;
        if pw.rc_tries == 0 {
            self.forget(channel, PW3)?;
        }
        if response.sw.is_success() {
            Ok(())
        } else if pw.rc_tries == 0 && response.sw == StatusWord::WRONG_DATA {
            Err(AppError::PinLength)
        } else {
            Err(self.profile.pin_error(response.sw))
        }
    }

    fn sign(
        &self,
        channel: &mut Channel,
        key: &KeyInfo,
        input: SignInput<'_>,
    ) -> Result<Vec<u8>, AppError> {
        let data: Vec<u8> = match (&key.public_key, input) {
            // The card pads (PKCS#1 v1.5 type 1): it takes the DigestInfo,
            // which the module has checked fits the modulus.
            (PublicKey::Rsa { .. }, SignInput::RsaPkcs1(data)) => data.to_vec(),
            (PublicKey::Ec { curve, .. }, SignInput::Ecdsa(input)) => {
                if input.len() != curve.order_len() {
                    return Err(AppError::DataLength);
                }
                input.to_vec()
            }
            (PublicKey::Ed25519 { .. }, SignInput::EdDsa(message)) => message.to_vec(),
            _ => return Err(AppError::Unsupported("mechanism does not fit the key")),
        };
        let command = match KeyRef::from_role(&key.role) {
            // PSO: COMPUTE DIGITAL SIGNATURE (spec v3.4 §7.2.10).
            Some(KeyRef::Signature) => Command::new(0x00, INS_PSO, 0x9E, 0x9A),
            // INTERNAL AUTHENTICATE (spec v3.4 §7.2.13).
            Some(KeyRef::Authentication) => {
                Command::new(0x00, INS_INTERNAL_AUTHENTICATE, 0x00, 0x00)
            }
            _ => return Err(AppError::Unsupported("this key does not sign")),
        };
        let result = self.private_key_operation(channel, command.data(data))?;
        match &key.public_key {
            PublicKey::Rsa { modulus, .. } => {
                if result.len() > modulus.len() {
                    return Err(
                        CardError::Malformed("RSA signature longer than the modulus").into(),
                    );
                }
                let mut signature = vec![0u8; modulus.len() - result.len()];
                signature.extend_from_slice(&result);
                Ok(signature)
            }
            PublicKey::Ec { curve, .. } => {
                let len = curve.field_len();
                // The card answers r || s; some answer DER.
                if result.len() == 2 * len {
                    Ok(result.to_vec())
                } else {
                    crypto::ecdsa_der_to_raw(&result, len)
                        .ok_or(CardError::Malformed("ECDSA signature of the wrong form").into())
                }
            }
            _ => {
                if result.len() != 64 {
                    return Err(CardError::Malformed("Ed25519 signature is not 64 bytes").into());
                }
                Ok(result.to_vec())
            }
        }
    }

    fn decrypt_raw(
        &self,
        _channel: &mut Channel,
        _key: &KeyInfo,
        _ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        Err(AppError::Unsupported(
            "OpenPGP cards remove the padding themselves",
        ))
    }

    fn decrypt_pkcs1(
        &self,
        channel: &mut Channel,
        key: &KeyInfo,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let PublicKey::Rsa { modulus, .. } = &key.public_key else {
            return Err(AppError::Unsupported("RSA decryption with a non-RSA key"));
        };
        if KeyRef::from_role(&key.role) != Some(KeyRef::Decryption) {
            return Err(AppError::Unsupported("this key does not decrypt"));
        }
        if ciphertext.len() != modulus.len() {
            return Err(AppError::DataLength);
        }
        // PSO: DECIPHER (spec v3.4 §7.2.11): padding indicator 00, then the
        // cryptogram; the card answers the message without its padding.
        let mut data = Vec::with_capacity(ciphertext.len() + 1);
        data.push(0x00);
        data.extend_from_slice(ciphertext);
        let command = Command::new(0x00, INS_PSO, 0x80, 0x86).data(data);
        match self.private_key_operation(channel, command) {
            Err(AppError::Card(CardError::Status(StatusWord::WRONG_DATA))) => {
                Err(AppError::BadCiphertext)
            }
            other => other,
        }
    }

    fn derive(
        &self,
        channel: &mut Channel,
        key: &KeyInfo,
        peer_point: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let secret_len = match &key.public_key {
            PublicKey::Ec { curve, .. } => {
                if peer_point.len() != 1 + 2 * curve.field_len() || peer_point[0] != 0x04 {
                    return Err(AppError::BadCiphertext);
                }
                curve.field_len()
            }
            PublicKey::X25519 { .. } => {
                if peer_point.len() != 32 {
                    return Err(AppError::BadCiphertext);
                }
                32
            }
            _ => return Err(AppError::Unsupported("ECDH with a non-ECDH key")),
        };
        // PSO: DECIPHER with the cipher DO: A6 { 7F49 { 86 <point> } }.
        let point = tlv::encode(0x86, peer_point);
        let data = tlv::encode(0xA6, &tlv::encode(0x7F49, &point));
        let command = Command::new(0x00, INS_PSO, 0x80, 0x86).data(data);
        let result = match self.private_key_operation(channel, command) {
            Err(AppError::Card(CardError::Status(StatusWord::WRONG_DATA))) => {
                return Err(AppError::BadCiphertext)
            }
            other => other?,
        };
        // The shared secret is the x-coordinate; some cards answer the
        // whole point 04 || x || y.
        match result.len() {
            len if len == secret_len => Ok(result),
            len if len == 1 + 2 * secret_len && result[0] == 0x04 => {
                Ok(Zeroizing::new(result[1..=secret_len].to_vec()))
            }
            _ => Err(CardError::Malformed("shared secret of the wrong length").into()),
        }
    }
}

#[cfg(test)]
mod tests;
