//! The format of `cardprofiles/*.toml`, shared by `build.rs` (which validates
//! and embeds the files) and the runtime loader.

use serde::Deserialize;

/// One card profile file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Short unique name (`piv`, `yubikey-piv`).
    pub name: String,
    /// What the profile describes, for humans.
    pub description: String,
    /// Which card engine drives the card.
    pub engine: String,
    /// Matching order among profiles: lower first.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// ATR patterns (hex, optional `mask`): a match selects this profile
    /// without probing.
    #[serde(default)]
    pub atr: Vec<AtrPattern>,
    /// The application identifier to SELECT (hex).
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
    /// The user PIN.
    pub pin: PinRule,
    /// The key slots the engine should look at.
    pub keys: Vec<KeySpec>,
}

fn default_priority() -> u32 {
    100
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

/// Behaviour flags, each documented in the profile that sets it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quirks {
    /// Card and reader accept extended-length APDUs.
    #[serde(default)]
    pub extended_length: bool,
}

/// How a PIN is checked and formatted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRule {
    /// Key reference of the PIN (PIV: `0x80`).
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
    /// Key reference of the unblocking key (PIV PUK: `0x81`).
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
    /// The card's key reference (PIV `0x9A`).
    pub reference: u8,
    /// What the key is for: `authentication`, `signature`,
    /// `key-management`, `card-authentication`.
    pub role: String,
    /// PKCS#11 `CKA_ID` (hex), shared by the key, public key and certificate.
    pub id: String,
    /// PKCS#11 `CKA_LABEL`, shared by the three objects.
    pub label: String,
    /// Data object tag holding the certificate (PIV `0x5FC105`).
    pub certificate_tag: u32,
    /// The card wants the PIN right before every use of this key.
    #[serde(default)]
    pub always_authenticate: bool,
    /// The key can be used without the PIN.
    #[serde(default)]
    pub no_pin: bool,
}

/// The engines this build knows.
pub const ENGINES: &[&str] = &["piv"];

/// The roles a key may have.
pub const ROLES: &[&str] = &[
    "authentication",
    "signature",
    "key-management",
    "card-authentication",
];

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
        if !ENGINES.contains(&self.engine.as_str()) {
            return Err(format!(
                "engine {:?} is not one of {ENGINES:?}",
                self.engine
            ));
        }
        let aid = parse_hex(&self.aid).map_err(|e| format!("aid: {e}"))?;
        if !(5..=16).contains(&aid.len()) {
            return Err(format!("aid must be 5 to 16 bytes, not {}", aid.len()));
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
            }
        }
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
        if self.manufacturer.as_ref().is_some_and(|m| m.len() > 32) {
            return Err("manufacturer: at most 32 bytes".into());
        }
        if self.model.as_ref().is_some_and(|m| m.len() > 16) {
            return Err("model: at most 16 bytes".into());
        }
        if self.keys.is_empty() {
            return Err("keys: at least one key is needed".into());
        }
        let mut ids = Vec::new();
        let mut references = Vec::new();
        for key in &self.keys {
            let id =
                parse_hex(&key.id).map_err(|e| format!("key {:#04X} id: {e}", key.reference))?;
            if id.is_empty() {
                return Err(format!("key {:#04X}: id is empty", key.reference));
            }
            if !ROLES.contains(&key.role.as_str()) {
                return Err(format!(
                    "key {:#04X}: role {:?} is not one of {ROLES:?}",
                    key.reference, key.role
                ));
            }
            if key.label.is_empty() {
                return Err(format!("key {:#04X}: label is empty", key.reference));
            }
            if ids.contains(&id) || references.contains(&key.reference) {
                return Err(format!(
                    "key {:#04X}: duplicate id or reference",
                    key.reference
                ));
            }
            if key.always_authenticate && key.no_pin {
                return Err(format!(
                    "key {:#04X}: always_authenticate and no_pin exclude each other",
                    key.reference
                ));
            }
            ids.push(id);
            references.push(key.reference);
        }
        Ok(())
    }
}
