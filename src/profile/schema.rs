//! The format of `cardprofiles/*.toml`, shared by `build.rs` (which validates
//! and embeds the files) and the runtime loader (extra profile directories
//! named in the configuration file).
//!
//! A profile names how a card is recognised (ATR patterns with masks, the
//! AID to select, whether AID probing may pick it), which engine speaks to
//! it, its key slots with their roles, its PIN rules and its quirks. Fields
//! that only make sense for one engine (a PIV key's `certificate_tag`) are
//! optional in the format and checked per engine by [`ProfileFile::validate`].

use serde::Deserialize;

/// One card profile file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Short unique name (`piv`, `yubikey-piv`); a profile in an extra
    /// directory with the name of a built-in one replaces it.
    pub name: String,
    /// What the profile describes, for humans.
    pub description: String,
    /// Which card engine drives the card: the name of one of [`ENGINES`].
    pub engine: String,
    /// Matching order among profiles: lower first.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// ATR patterns (hex, optional `mask`): a card whose ATR matches is
    /// tried with this profile before any AID probing.
    #[serde(default)]
    pub atr: Vec<AtrPattern>,
    /// Whether a card that matched no ATR pattern may be probed with this
    /// profile's AID (default true). Vendor profiles whose quirks only fit
    /// their own cards set it to false, so only their ATR selects them.
    #[serde(default = "default_true")]
    pub probe: bool,
    /// The application identifier to SELECT (hex, 5 to 16 bytes; a prefix
    /// of the full AID where the engine selects by partial name, as
    /// OpenPGP's `D2 76 00 01 24 01`).
    pub aid: String,
    /// Token manufacturer shown in `CK_TOKEN_INFO` (up to 32 bytes).
    #[serde(default)]
    pub manufacturer: Option<String>,
    /// Token model shown in `CK_TOKEN_INFO` (up to 16 bytes).
    #[serde(default)]
    pub model: Option<String>,
    /// Card behaviour that differs from the engine's defaults.
    #[serde(default)]
    pub quirks: Quirks,
    /// The user PIN and the credential that unblocks it.
    pub pin: PinRule,
    /// The key slots the engine should look at (none for an engine that
    /// reads the card's own key list, as PKCS#15 does).
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// PKCS#15 engine only: how the card's operating system does what
    /// ISO/IEC 7816-15 leaves to the card.
    #[serde(default)]
    pub pkcs15: Option<Pkcs15Options>,
}

/// What differs between the operating systems of PKCS#15 cards: how
/// MSE:SET names the key, the algorithm references, whether the card pads
/// RSA, how much one READ BINARY returns.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pkcs15Options {
    /// The PKCS#15 application DF's path from the MF (hex), selected when
    /// SELECT of the AID fails; relative paths in the files start here.
    #[serde(default = "default_application_path")]
    pub application_path: String,
    /// How the application is selected at the start of each transaction.
    pub select: SelectApplication,
    /// How the card forgets a verified PIN.
    pub logout: LogoutCommand,
    /// How MSE:SET names the private key.
    pub mse_key: MseKey,
    /// Algorithm reference (tag `80`) for a raw RSA signature block (the
    /// module pads), if the card has one; without it the card pads
    /// PKCS#1 v1.5 signatures itself with `rsa_pkcs1_algorithm` (or, if
    /// that is unset too, the key's default algorithm: no tag `80`).
    #[serde(default)]
    pub rsa_raw_algorithm: Option<u8>,
    /// Algorithm reference for PKCS#1 v1.5 signatures the card pads.
    #[serde(default)]
    pub rsa_pkcs1_algorithm: Option<u8>,
    /// Algorithm reference for raw RSA decryption (the module unpads).
    #[serde(default)]
    pub rsa_decipher_algorithm: Option<u8>,
    /// Algorithm reference for ECDSA.
    #[serde(default)]
    pub ecdsa_algorithm: Option<u8>,
    /// The card answers ECDSA with a DER `Ecdsa-Sig-Value` rather than
    /// `r || s`.
    #[serde(default)]
    pub ecdsa_der: bool,
    /// The most bytes one READ BINARY asks for (1 to 256).
    #[serde(default = "default_read_size")]
    pub max_read: usize,
    /// How the card does ECDH with an EC key whose usage allows
    /// derivation (none: such keys get no `CKA_DERIVE`).
    #[serde(default)]
    pub key_agreement: KeyAgreement,
    /// The card's own proof that its files are unchanged, which lets the
    /// disk cache keep them; without it the card is read every time.
    #[serde(default)]
    pub change_counter: Option<ChangeCounter>,
}

/// How a PKCS#15 card computes an ECDH shared secret.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAgreement {
    /// The card offers none the engine knows.
    #[default]
    None,
    /// MSE:SET of an authentication template (`A4`) naming the key, then
    /// GENERAL AUTHENTICATE (`86`, P1-P2 `00 00`) with `7C { 85 <peer
    /// point> }`; the answer is the shared secret (the x-coordinate).
    GeneralAuthenticate,
}

/// A command whose answer holds the card's serial number and a counter the
/// card itself changes at every write to its file system (files, keys,
/// PINs): the disk cache keeps the card's files under the serial number
/// and uses them while the counter is the one they were read under.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChangeCounter {
    /// The command APDU in hex: `CLA INS P1 P2`, optionally `Le` (no data).
    pub command: String,
    /// Where the serial number is in the answer: `[start, end)` offsets.
    pub serial: [usize; 2],
    /// Where the counter is in the answer: `[start, end)` offsets.
    pub counter: [usize; 2],
}

impl ChangeCounter {
    /// The command's header (`CLA INS P1 P2`) and the answer's length
    /// (`Le`, 256 when the profile gives none or `00`).
    pub fn header(&self) -> Result<([u8; 4], usize), String> {
        match parse_hex(&self.command)?[..] {
            [cla, ins, p1, p2] => Ok(([cla, ins, p1, p2], 256)),
            [cla, ins, p1, p2, le] => Ok(([cla, ins, p1, p2], usize::from(le).max(1))),
            _ => Err("CLA INS P1 P2 and at most an Le byte".into()),
        }
    }
}

fn default_read_size() -> usize {
    256
}

fn default_application_path() -> String {
    "3F00 5015".into()
}

/// How the engine selects the PKCS#15 application.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SelectApplication {
    /// SELECT by the profile's AID (DF name): what AID probing needs.
    Aid,
    /// SELECT of `application_path` from the MF: for a card whose
    /// application DF has no name (or whose default application it is).
    Path,
}

/// The command that drops a PIN's verified state.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LogoutCommand {
    /// VERIFY with P1 `FF` (ISO/IEC 7816-4 §11.5.6).
    VerifyReset,
    /// A proprietary LOGOUT, INS `2E`, P1 `00`, P2 the PIN reference.
    #[serde(rename = "ins-2e")]
    Ins2e,
}

/// How MSE:SET names the private key (ISO/IEC 7816-8 control reference
/// data objects).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MseKey {
    /// `84`: the key reference of the PrKDF.
    KeyReference,
    /// `81`: the key file's identifier (last two bytes of the key's path,
    /// in the application DF).
    FileIdentifier,
}

fn default_priority() -> u32 {
    100
}

fn default_true() -> bool {
    true
}

/// An ATR with an optional mask (both hex, same length).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtrPattern {
    /// The ATR bytes to compare.
    pub value: String,
    /// Bits that must match (default: all).
    #[serde(default)]
    pub mask: Option<String>,
}

/// Behaviour flags, each documented (with the card that needs it) in the
/// profile that sets it. The engines read the flags, never a card's name.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Quirks {
    /// Use extended-length APDUs for long commands and responses, falling
    /// back to short ones on a connection where one is refused (an OpenPGP
    /// card announces its support itself).
    #[serde(default)]
    pub extended_length: bool,
    /// Never use extended-length APDUs, even if the card announces them
    /// (command chaining and GET RESPONSE instead).
    #[serde(default)]
    pub short_apdus_only: bool,
    /// The card reports PIN tries left as `630X` instead of `63CX`.
    #[serde(default)]
    pub tries_as_630x: bool,
    /// SELECT of the application (even when it is already selected) drops
    /// the verified PIN: the engine checks whether its application is still
    /// selected (one harmless command) and selects it only when it is not.
    #[serde(default)]
    pub loses_login_on_select: bool,
    /// The card answers GET METADATA (Yubico's INS `F7`) for a key slot
    /// with the slot's public key (YubiKey 5.3+): a cached certificate is
    /// used only while its slot's public key still matches.
    #[serde(default)]
    pub key_metadata: bool,
    /// PIV: the card has no global PIN, so the Discovery object (whose PIN
    /// usage policy could name the global PIN primary) is not read.
    #[serde(default)]
    pub no_global_pin: bool,
}

/// How the user PIN is checked and formatted, and what unblocks it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRule {
    /// Key reference of the user PIN (PIV: `0x80`; OpenPGP: `0x82`, PW1 for
    /// the decryption and authentication keys).
    pub reference: u8,
    /// Shortest PIN the card takes.
    pub min_length: usize,
    /// Longest PIN the card takes.
    pub max_length: usize,
    /// Byte used to pad the PIN (PIV: `0xFF`).
    #[serde(default)]
    pub pad_byte: Option<u8>,
    /// Length to pad to (PIV: 8).
    #[serde(default)]
    pub pad_length: Option<usize>,
    /// Key reference of the credential `C_Login(CKU_SO)` takes to unblock
    /// the PIN (PIV PUK: `0x81`; OpenPGP PW3: `0x83`, or the Resetting Code
    /// when the card has one). Without it there is no SO login.
    #[serde(default)]
    pub puk_reference: Option<u8>,
    /// Shortest unblocking code the card takes.
    #[serde(default)]
    pub puk_min_length: Option<usize>,
    /// Longest unblocking code the card takes.
    #[serde(default)]
    pub puk_max_length: Option<usize>,
}

/// One key slot on the card.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// The card's key reference (PIV `0x9A`; OpenPGP the control reference
    /// template tag: `0xB6` signature, `0xB8` decryption, `0xA4`
    /// authentication).
    pub reference: u8,
    /// What the key is for: one of the engine's roles ([`PivRole`],
    /// [`OpenPgpRole`]), typed by [`ProfileFile::key_roles`].
    pub role: String,
    /// PKCS#11 `CKA_ID` (hex), shared by the key, public key and certificate.
    pub id: String,
    /// PKCS#11 `CKA_LABEL`, shared by the three objects.
    pub label: String,
    /// PIV only: the data object holding the certificate (`0x5FC105`).
    #[serde(default)]
    pub certificate_tag: Option<u32>,
    /// The PIN reference that guards the key, if not `pin.reference`
    /// (OpenPGP signature key: `0x81`).
    #[serde(default)]
    pub pin_reference: Option<u8>,
    /// The card wants the PIN right before every use of this key. Unset:
    /// the engine decides (OpenPGP reads it from the PW status bytes).
    #[serde(default)]
    pub always_authenticate: Option<bool>,
    /// The key can be used without the PIN.
    #[serde(default)]
    pub no_pin: bool,
}

/// The card engines this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PIV (NIST SP 800-73-4).
    Piv,
    /// OpenPGP card (OpenPGP Smart Card Application v2.x/v3.x).
    OpenPgp,
    /// A PKCS#15 (ISO/IEC 7816-15) card: keys, certificates and PINs as
    /// the card's own directory files describe them.
    Pkcs15,
}

/// One engine as profiles name it: the table row that `engine = "..."`
/// selects. The crate adds the constructor (`Profile::open_engine`).
#[derive(Debug)]
pub struct EngineSchema {
    /// The engine.
    pub engine: Engine,
    /// Its name in profiles (`engine = "piv"`).
    pub name: &'static str,
    /// Types a key's `role` with the engine's role enum (serde).
    pub role: fn(&str) -> Result<KeyRole, String>,
    /// The profile rules only this engine has (the common ones are checked
    /// by [`ProfileFile::validate`] first); `roles` are the keys' typed
    /// roles, in the order of `keys`.
    pub validate: fn(&ProfileFile, &[KeyRole]) -> Result<(), String>,
}

/// The engines, in the order error messages list them.
pub const ENGINES: &[EngineSchema] = &[
    EngineSchema {
        engine: Engine::Piv,
        name: "piv",
        role: typed_role::<PivRole>,
        validate: validate_piv,
    },
    EngineSchema {
        engine: Engine::OpenPgp,
        name: "openpgp",
        role: typed_role::<OpenPgpRole>,
        validate: validate_openpgp,
    },
    EngineSchema {
        engine: Engine::Pkcs15,
        name: "pkcs15",
        role: typed_role::<Pkcs15Role>,
        validate: validate_pkcs15,
    },
];

/// The engine a profile names, if this build knows it.
pub fn engine_schema(name: &str) -> Option<&'static EngineSchema> {
    ENGINES.iter().find(|schema| schema.name == name)
}

/// What a key is for, as its engine knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// A PIV key.
    Piv(PivRole),
    /// An OpenPGP card key.
    OpenPgp(OpenPgpRole),
    /// A key a PKCS#15 card lists.
    Pkcs15(Pkcs15Role),
}

/// A PKCS#15 key's role: the card's PrKDF gives it, never a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pkcs15Role {
    /// A private key of the PrKDF.
    #[serde(skip_deserializing)]
    PrivateKey,
}

impl From<PivRole> for KeyRole {
    fn from(role: PivRole) -> Self {
        KeyRole::Piv(role)
    }
}

impl From<Pkcs15Role> for KeyRole {
    fn from(role: Pkcs15Role) -> Self {
        KeyRole::Pkcs15(role)
    }
}

impl From<OpenPgpRole> for KeyRole {
    fn from(role: OpenPgpRole) -> Self {
        KeyRole::OpenPgp(role)
    }
}

/// The PIV key slots' purposes (SP 800-73-4 Part 1 §3.1, Table 4b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PivRole {
    /// PIV Authentication (9A).
    Authentication,
    /// Digital Signature (9C).
    Signature,
    /// Key Management (9D).
    KeyManagement,
    /// Card Authentication (9E).
    CardAuthentication,
    /// A retired key management key (82–95): found through the Key History
    /// object, never named in a profile.
    #[serde(skip_deserializing)]
    RetiredKeyManagement,
}

impl PivRole {
    /// A key for key establishment (Part 1 §3.3.3): an EC key here does
    /// ECDH.
    pub fn establishes_keys(self) -> bool {
        matches!(self, PivRole::KeyManagement | PivRole::RetiredKeyManagement)
    }
}

/// The OpenPGP card's three keys (spec v3.4 §7.2.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpenPgpRole {
    /// Signature key (PSO: COMPUTE DIGITAL SIGNATURE; counted in DO `93`).
    Signature,
    /// Decryption key (PSO: DECIPHER, ECDH).
    Decryption,
    /// Authentication key (INTERNAL AUTHENTICATE).
    Authentication,
}

impl OpenPgpRole {
    /// The control reference template (spec v3.4 §7.2.14): the only key
    /// reference an OpenPGP profile may give the key.
    pub fn control_reference(self) -> u8 {
        match self {
            OpenPgpRole::Signature => 0xB6,
            OpenPgpRole::Decryption => 0xB8,
            OpenPgpRole::Authentication => 0xA4,
        }
    }
}

/// Reads a role name with the engine's role enum `R`.
fn typed_role<R>(name: &str) -> Result<KeyRole, String>
where
    R: serde::de::DeserializeOwned + Into<KeyRole>,
{
    use serde::de::value::{Error, StrDeserializer};
    R::deserialize(StrDeserializer::<Error>::new(name))
        .map(Into::into)
        .map_err(|err| err.to_string())
}

fn validate_pkcs15(file: &ProfileFile, _roles: &[KeyRole]) -> Result<(), String> {
    if !file.keys.is_empty() {
        return Err("keys: a PKCS#15 card lists its keys itself".into());
    }
    let Some(options) = &file.pkcs15 else {
        return Err("pkcs15: the PKCS#15 engine needs its [pkcs15] table".into());
    };
    let path = parse_hex(&options.application_path)
        .map_err(|e| format!("pkcs15.application_path: {e}"))?;
    if path.len() < 2 || path.len() % 2 != 0 || !path.starts_with(&[0x3F, 0x00]) {
        return Err("pkcs15.application_path: file identifiers from 3F00".into());
    }
    if !(1..=256).contains(&options.max_read) {
        return Err("pkcs15: max_read must be 1 to 256".into());
    }
    if let Some(counter) = &options.change_counter {
        counter
            .header()
            .map_err(|e| format!("pkcs15.change_counter.command: {e}"))?;
        for (what, [start, end]) in [("serial", counter.serial), ("counter", counter.counter)] {
            if start >= end || end > 256 {
                return Err(format!(
                    "pkcs15.change_counter.{what}: [start, end) within 256 bytes"
                ));
            }
        }
    }
    Ok(())
}

/// The rules every engine with profile-named key slots shares.
fn validate_slots(file: &ProfileFile) -> Result<(), String> {
    if file.keys.is_empty() {
        return Err("keys: at least one key is needed".into());
    }
    if file.pkcs15.is_some() {
        return Err("pkcs15: only the PKCS#15 engine takes a [pkcs15] table".into());
    }
    Ok(())
}

fn validate_piv(file: &ProfileFile, _roles: &[KeyRole]) -> Result<(), String> {
    validate_slots(file)?;
    match file.keys.iter().find(|key| key.certificate_tag.is_none()) {
        Some(key) => Err(format!(
            "key {:#04X}: a PIV key needs certificate_tag",
            key.reference
        )),
        None => Ok(()),
    }
}

fn validate_openpgp(file: &ProfileFile, roles: &[KeyRole]) -> Result<(), String> {
    // OpenPGP card spec v3.4 §7.2.2: PW1 is 81 (signing) or 82
    // (everything else), PW3 is 83; PINs are sent unpadded.
    validate_slots(file)?;
    let pin = &file.pin;
    if !matches!(pin.reference, 0x81 | 0x82) {
        return Err("pin: an OpenPGP user PIN reference is 0x81 or 0x82".into());
    }
    if pin.puk_reference.is_some_and(|r| r != 0x83) {
        return Err("pin: an OpenPGP puk_reference is PW3, 0x83".into());
    }
    if pin.pad_byte.is_some() || pin.pad_length.is_some() {
        return Err("pin: OpenPGP PINs are not padded".into());
    }
    for (key, role) in file.keys.iter().zip(roles) {
        let name = format!("key {:#04X}", key.reference);
        if key.certificate_tag.is_some() {
            return Err(format!(
                "{name}: certificate_tag is PIV-only (OpenPGP keeps certificates in 7F21)"
            ));
        }
        let KeyRole::OpenPgp(role) = role else {
            return Err(format!("{name}: not an OpenPGP role"));
        };
        if role.control_reference() != key.reference {
            return Err(format!(
                "{name}: the OpenPGP {} key's reference is {:#04X}",
                key.role,
                role.control_reference()
            ));
        }
        if key.pin_reference.is_some_and(|r| !matches!(r, 0x81 | 0x82)) {
            return Err(format!("{name}: pin_reference is 0x81 or 0x82"));
        }
        if key.no_pin {
            return Err(format!("{name}: every OpenPGP key needs PW1"));
        }
    }
    Ok(())
}

/// Decodes hex (spaces and colons allowed).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in {text:?}"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("not hex: {text:?}"))
        })
        .collect()
}

impl ProfileFile {
    /// Checks everything the engine relies on; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("name is empty".into());
        }
        let Some(engine) = engine_schema(&self.engine) else {
            let names: Vec<&str> = ENGINES.iter().map(|schema| schema.name).collect();
            return Err(format!("engine {:?} is not one of {names:?}", self.engine));
        };
        let aid = parse_hex(&self.aid).map_err(|e| format!("aid: {e}"))?;
        if !(5..=16).contains(&aid.len()) {
            return Err(format!("aid must be 5 to 16 bytes, not {}", aid.len()));
        }
        if self.atr.is_empty() && !self.probe {
            return Err("probe = false needs at least one atr pattern".into());
        }
        for (index, atr) in self.atr.iter().enumerate() {
            let value = parse_hex(&atr.value).map_err(|e| format!("atr[{index}].value: {e}"))?;
            if value.len() < 2 || value.len() > 33 {
                return Err(format!("atr[{index}].value must be 2 to 33 bytes"));
            }
            if let Some(mask) = &atr.mask {
                let mask = parse_hex(mask).map_err(|e| format!("atr[{index}].mask: {e}"))?;
                if mask.len() != value.len() {
                    return Err(format!("atr[{index}].mask must be as long as the value"));
                }
                if value.iter().zip(&mask).any(|(v, m)| v & !m != 0) {
                    return Err(format!(
                        "atr[{index}].value has bits set that the mask ignores"
                    ));
                }
            }
        }
        if self.quirks.extended_length && self.quirks.short_apdus_only {
            return Err("quirks: extended_length and short_apdus_only exclude each other".into());
        }
        self.validate_pin()?;
        if self.manufacturer.as_ref().is_some_and(|m| m.len() > 32) {
            return Err("manufacturer: at most 32 bytes".into());
        }
        if self.model.as_ref().is_some_and(|m| m.len() > 16) {
            return Err("model: at most 16 bytes".into());
        }
        let roles = self.validate_keys()?;
        (engine.validate)(self, &roles)
    }

    /// The keys' roles, typed by the profile's engine (after
    /// [`ProfileFile::validate`] accepted the file).
    pub fn key_roles(&self) -> Result<Vec<KeyRole>, String> {
        let engine = engine_schema(&self.engine)
            .ok_or_else(|| format!("unknown engine {:?}", self.engine))?;
        self.keys
            .iter()
            .map(|key| {
                (engine.role)(&key.role).map_err(|err| {
                    format!(
                        "key {:#04X}: role {:?}: {err} (engine {})",
                        key.reference, key.role, engine.name
                    )
                })
            })
            .collect()
    }

    fn validate_pin(&self) -> Result<(), String> {
        let pin = &self.pin;
        if pin.min_length == 0 || pin.min_length > pin.max_length {
            return Err("pin: min_length must be 1..=max_length".into());
        }
        if let (Some(min), Some(max)) = (pin.puk_min_length, pin.puk_max_length) {
            if min == 0 || min > max {
                return Err("pin: puk_min_length must be 1..=puk_max_length".into());
            }
        }
        if let Some(pad) = pin.pad_length {
            if pad < pin.max_length {
                return Err("pin: pad_length must be at least max_length".into());
            }
            if pin.pad_byte.is_none() {
                return Err("pin: pad_length needs pad_byte".into());
            }
        }
        Ok(())
    }

    fn validate_keys(&self) -> Result<Vec<KeyRole>, String> {
        let roles = self.key_roles()?;
        let mut ids = Vec::new();
        let mut references = Vec::new();
        for key in &self.keys {
            let name = format!("key {:#04X}", key.reference);
            let id = parse_hex(&key.id).map_err(|e| format!("{name} id: {e}"))?;
            if id.is_empty() {
                return Err(format!("{name}: id is empty"));
            }
            if key.label.is_empty() {
                return Err(format!("{name}: label is empty"));
            }
            if ids.contains(&id) || references.contains(&key.reference) {
                return Err(format!("{name}: duplicate id or reference"));
            }
            if key.always_authenticate == Some(true) && key.no_pin {
                return Err(format!(
                    "{name}: always_authenticate and no_pin exclude each other"
                ));
            }
            ids.push(id);
            references.push(key.reference);
        }
        Ok(roles)
    }
}
