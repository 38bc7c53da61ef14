//! The algorithm policy: which keys and algorithms the module refuses to
//! use, from the configuration's `[policy]` table (off by default).
//!
//! Two presets: `compatible` (the default: nothing refused) and `strict`
//! (for high-assurance logins: RSA keys of at least 2048 bits, no SHA-1
//! signatures, no PKCS#1 v1.5 or raw RSA decryption, no raw RSA signature
//! blocks padded by the caller). Each setting of the table overrides the
//! preset's. What a policy leaves of a key is a [`Refusals`] value the
//! module puts on the key when it reads the card; the mechanism table and
//! the operations consult it before any APDU.

use crate::cert::{Curve, PublicKey};
use crate::crypto::HashAlg;
use serde::Deserialize;

/// A named starting point for the policy.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Nothing refused: every key and mechanism the card can do.
    #[default]
    Compatible,
    /// High-assurance logins: RSA ≥ 2048 bits, every supported curve
    /// (P-256, P-384, Ed25519, X25519), no SHA-1 signatures, no PKCS#1
    /// v1.5 or raw RSA decryption, no raw RSA signature blocks.
    Strict,
}

/// The configuration's `[policy]` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The preset the other settings change (default `compatible`).
    #[serde(default)]
    pub preset: Preset,
    /// The shortest RSA modulus, in bits, a key may have.
    pub min_rsa_bits: Option<usize>,
    /// The curves keys may be on: "P-256", "P-384", "Ed25519", "X25519".
    pub curves: Option<Vec<String>>,
    /// Hashes signatures may not be made over: "SHA-1", "SHA-224",
    /// "SHA-256", "SHA-384", "SHA-512".
    pub refused_signature_hashes: Option<Vec<String>>,
    /// RSA decryption with PKCS#1 v1.5 padding (and raw RSA decryption,
    /// which lets the caller unpad it).
    pub rsa_pkcs1_decryption: Option<bool>,
    /// RSA signatures over a block the caller padded (`CKM_RSA_X_509`).
    pub raw_rsa_signatures: Option<bool>,
}

/// A key's curve family, as the policy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CurveName {
    P256,
    P384,
    Ed25519,
    X25519,
}

impl CurveName {
    const ALL: [CurveName; 4] = [
        CurveName::P256,
        CurveName::P384,
        CurveName::Ed25519,
        CurveName::X25519,
    ];

    fn name(self) -> &'static str {
        match self {
            CurveName::P256 => "P-256",
            CurveName::P384 => "P-384",
            CurveName::Ed25519 => "Ed25519",
            CurveName::X25519 => "X25519",
        }
    }

    fn of(key: &PublicKey) -> Option<CurveName> {
        match key {
            PublicKey::Ec {
                curve: Curve::P256, ..
            } => Some(CurveName::P256),
            PublicKey::Ec {
                curve: Curve::P384, ..
            } => Some(CurveName::P384),
            PublicKey::Ed25519 { .. } => Some(CurveName::Ed25519),
            PublicKey::X25519 { .. } => Some(CurveName::X25519),
            PublicKey::Rsa { .. } => None,
        }
    }
}

/// The hashes by the names the policy table uses.
const HASHES: [(HashAlg, &str); 5] = [
    (HashAlg::Sha1, "SHA-1"),
    (HashAlg::Sha224, "SHA-224"),
    (HashAlg::Sha256, "SHA-256"),
    (HashAlg::Sha384, "SHA-384"),
    (HashAlg::Sha512, "SHA-512"),
];

fn hash_bit(hash: HashAlg) -> u8 {
    match hash {
        HashAlg::Sha1 => 1,
        HashAlg::Sha224 => 2,
        HashAlg::Sha256 => 4,
        HashAlg::Sha384 => 8,
        HashAlg::Sha512 => 16,
    }
}

/// The policy in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    min_rsa_bits: usize,
    curves: Vec<CurveName>,
    refused_hashes: u8,
    rsa_pkcs1_decryption: bool,
    raw_rsa_signatures: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::preset(Preset::Compatible)
    }
}

impl Policy {
    /// A preset as it stands.
    pub fn preset(preset: Preset) -> Policy {
        match preset {
            Preset::Compatible => Policy {
                min_rsa_bits: 0,
                curves: CurveName::ALL.to_vec(),
                refused_hashes: 0,
                rsa_pkcs1_decryption: true,
                raw_rsa_signatures: true,
            },
            Preset::Strict => Policy {
                min_rsa_bits: 2048,
                curves: CurveName::ALL.to_vec(),
                refused_hashes: hash_bit(HashAlg::Sha1),
                rsa_pkcs1_decryption: false,
                raw_rsa_signatures: false,
            },
        }
    }

    /// The policy a `[policy]` table describes; an unknown curve or hash
    /// name is an error (a typo must not weaken a policy).
    pub fn from_config(config: &PolicyConfig) -> Result<Policy, String> {
        let mut policy = Policy::preset(config.preset);
        if let Some(bits) = config.min_rsa_bits {
            policy.min_rsa_bits = bits;
        }
        if let Some(names) = &config.curves {
            policy.curves = names
                .iter()
                .map(|name| {
                    CurveName::ALL
                        .into_iter()
                        .find(|c| c.name().eq_ignore_ascii_case(name))
                        .ok_or_else(|| format!("policy: unknown curve {name:?}"))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(names) = &config.refused_signature_hashes {
            policy.refused_hashes = 0;
            for name in names {
                let (hash, _) = HASHES
                    .iter()
                    .find(|(_, n)| n.eq_ignore_ascii_case(name))
                    .ok_or_else(|| format!("policy: unknown hash {name:?}"))?;
                policy.refused_hashes |= hash_bit(*hash);
            }
        }
        if let Some(allowed) = config.rsa_pkcs1_decryption {
            policy.rsa_pkcs1_decryption = allowed;
        }
        if let Some(allowed) = config.raw_rsa_signatures {
            policy.raw_rsa_signatures = allowed;
        }
        Ok(policy)
    }

    /// What this policy refuses of a key with `public_key`.
    pub fn refusals(&self, public_key: &PublicKey) -> Refusals {
        let shape = match CurveName::of(public_key) {
            Some(curve) => KeyShape::Curve(curve.name()),
            None => KeyShape::Rsa {
                bits: public_key.bits(),
            },
        };
        Refusals {
            key: self.key_refusal(shape),
            hashes: self.refused_hashes,
            rsa_pkcs1_decryption: !self.rsa_pkcs1_decryption,
            raw_rsa_signatures: !self.raw_rsa_signatures,
        }
    }

    /// Why the policy refuses a key of this `shape` altogether, if it does.
    pub fn key_refusal(&self, shape: KeyShape<'_>) -> Option<KeyRefusal> {
        match shape {
            KeyShape::Rsa { bits } if bits < self.min_rsa_bits => Some(KeyRefusal::RsaTooShort),
            KeyShape::Curve(name) if !self.curves.iter().any(|c| c.name() == name) => {
                Some(KeyRefusal::Curve)
            }
            _ => None,
        }
    }

    /// What the policy refuses of the keys it allows, in words (empty: nothing).
    pub fn refused_uses(&self) -> Vec<String> {
        let mut uses: Vec<String> = HASHES
            .iter()
            .filter(|(h, _)| self.refused_hashes & hash_bit(*h) != 0)
            .map(|(_, name)| format!("signatures over {name}"))
            .collect();
        if !self.rsa_pkcs1_decryption {
            uses.push("PKCS#1 v1.5 and raw RSA decryption".into());
        }
        if !self.raw_rsa_signatures {
            uses.push("raw RSA signature blocks".into());
        }
        uses
    }

    /// The shortest RSA key the policy allows, in bits.
    pub fn min_rsa_bits(&self) -> usize {
        self.min_rsa_bits
    }

    /// A one-line description for logs and tools.
    pub fn describe(&self) -> String {
        let hashes: Vec<&str> = HASHES
            .iter()
            .filter(|(h, _)| self.refused_hashes & hash_bit(*h) != 0)
            .map(|(_, n)| *n)
            .collect();
        let curves: Vec<&str> = self.curves.iter().map(|c| c.name()).collect();
        let rsa = match self.min_rsa_bits {
            0 => "RSA of any size".to_string(),
            bits => format!("RSA >= {bits} bits"),
        };
        let signatures = if hashes.is_empty() {
            "signatures over any hash".to_string()
        } else {
            format!("signatures refused over {}", hashes.join(", "))
        };
        let verdict = |allowed: bool| if allowed { "allowed" } else { "refused" };
        format!(
            "{rsa}; curves {}; {signatures}; PKCS#1 v1.5 decryption {}; raw RSA signatures {}",
            curves.join(", "),
            verdict(self.rsa_pkcs1_decryption),
            verdict(self.raw_rsa_signatures),
        )
    }
}

/// A key as the policy judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape<'a> {
    /// An RSA key with a modulus of `bits`.
    Rsa {
        /// The modulus length.
        bits: usize,
    },
    /// A key on the curve of this name ("P-256", "P-384", "Ed25519",
    /// "X25519").
    Curve(&'a str),
}

/// Why the policy refuses a key altogether.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// An RSA modulus shorter than the policy's minimum.
    RsaTooShort,
    /// A curve the policy does not list.
    Curve,
}

/// What the policy refuses of one key; the default refuses nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// The key altogether (its private key is not shown), and why.
    pub key: Option<KeyRefusal>,
    hashes: u8,
    /// PKCS#1 v1.5 and raw RSA decryption.
    pub rsa_pkcs1_decryption: bool,
    /// Raw RSA signature blocks (`CKM_RSA_X_509`).
    pub raw_rsa_signatures: bool,
}

impl Refusals {
    /// Whether signatures over `hash` are refused.
    pub fn refuses_hash(&self, hash: HashAlg) -> bool {
        self.hashes & hash_bit(hash) != 0
    }

    /// Whether a host-supplied hash of `len` bytes is refused: it can only
    /// be of a refused hash (20 bytes: SHA-1).
    pub fn refuses_hash_length(&self, len: usize) -> bool {
        HASHES
            .iter()
            .any(|(h, _)| self.refuses_hash(*h) && h.output_len() == len)
            && !HASHES
                .iter()
                .any(|(h, _)| !self.refuses_hash(*h) && h.output_len() == len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa(bits: usize) -> PublicKey {
        let mut modulus = vec![0xFF; bits / 8];
        modulus[0] = 0x80;
        PublicKey::Rsa {
            modulus,
            public_exponent: vec![1, 0, 1],
        }
    }

    fn p256() -> PublicKey {
        PublicKey::Ec {
            curve: Curve::P256,
            point: vec![4; 65],
        }
    }

    #[test]
    fn descriptions_say_what_each_preset_refuses() {
        assert_eq!(
            Policy::default().describe(),
            "RSA of any size; curves P-256, P-384, Ed25519, X25519; signatures over any hash; \
             PKCS#1 v1.5 decryption allowed; raw RSA signatures allowed"
        );
        assert_eq!(
            Policy::preset(Preset::Strict).describe(),
            "RSA >= 2048 bits; curves P-256, P-384, Ed25519, X25519; signatures refused over SHA-1; \
             PKCS#1 v1.5 decryption refused; raw RSA signatures refused"
        );
    }

    #[test]
    fn compatible_refuses_nothing() {
        let policy = Policy::default();
        assert_eq!(policy.refusals(&rsa(1024)), Refusals::default());
        assert_eq!(policy.refusals(&p256()), Refusals::default());
    }

    #[test]
    fn strict_refuses_short_rsa_sha1_and_pkcs1_decryption() {
        let policy = Policy::preset(Preset::Strict);
        assert_eq!(
            policy.refusals(&rsa(1024)).key,
            Some(KeyRefusal::RsaTooShort)
        );
        let rsa2048 = policy.refusals(&rsa(2048));
        assert_eq!(rsa2048.key, None);
        assert!(rsa2048.refuses_hash(HashAlg::Sha1));
        assert!(!rsa2048.refuses_hash(HashAlg::Sha256));
        assert!(rsa2048.rsa_pkcs1_decryption && rsa2048.raw_rsa_signatures);
        assert!(rsa2048.refuses_hash_length(20));
        assert!(!rsa2048.refuses_hash_length(32));
        assert_eq!(policy.refusals(&p256()).key, None);
    }

    #[test]
    fn the_table_changes_the_preset_and_typos_are_errors() {
        let config: PolicyConfig = toml::from_str(
            "preset = \"strict\"\nmin_rsa_bits = 3072\ncurves = [\"P-384\"]\nrefused_signature_hashes = [\"SHA-1\", \"SHA-224\"]",
        )
        .unwrap();
        let policy = Policy::from_config(&config).unwrap();
        assert_eq!(
            policy.refusals(&rsa(2048)).key,
            Some(KeyRefusal::RsaTooShort)
        );
        assert_eq!(policy.refusals(&p256()).key, Some(KeyRefusal::Curve));
        assert!(policy.refusals(&rsa(3072)).refuses_hash(HashAlg::Sha224));
        let typo = PolicyConfig {
            curves: Some(vec!["P-265".into()]),
            ..PolicyConfig::default()
        };
        assert!(Policy::from_config(&typo).is_err());
        let typo = PolicyConfig {
            refused_signature_hashes: Some(vec!["SHA1x".into()]),
            ..PolicyConfig::default()
        };
        assert!(Policy::from_config(&typo).is_err());
        assert!(toml::from_str::<PolicyConfig>("min_rsa_bit = 1").is_err());
    }
}
