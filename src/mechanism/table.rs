//! The mechanism table: every mechanism the module offers, once, with its
//! key family, purposes, host hash, parameter, key sizes and
//! `CK_MECHANISM_INFO` flags. `C_GetMechanismList`, `C_GetMechanismInfo`,
//! `CKA_ALLOWED_MECHANISMS`, the typing of a caller's mechanism and the
//! checks of `C_*Init` all read it.

use crate::cert::PublicKey;
use crate::crypto::HashAlg;
use crate::profile::KeyInfo;
use cryptoki_sys::*;

/// The keys a mechanism works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// RSA keys.
    Rsa,
    /// Keys on the NIST curves (ECDSA).
    Ec,
    /// Ed25519 keys (EdDSA).
    Ed25519,
    /// Keys on the NIST curves or X25519 (ECDH).
    EcOrX25519,
    /// No key (digests).
    NoKey,
}

impl KeyFamily {
    /// Whether `key` belongs to the family.
    pub fn fits(self, key: &PublicKey) -> bool {
        match self {
            KeyFamily::Rsa => matches!(key, PublicKey::Rsa { .. }),
            KeyFamily::Ec => matches!(key, PublicKey::Ec { .. }),
            KeyFamily::Ed25519 => matches!(key, PublicKey::Ed25519 { .. }),
            KeyFamily::EcOrX25519 => {
                matches!(key, PublicKey::Ec { .. } | PublicKey::X25519 { .. })
            }
            KeyFamily::NoKey => false,
        }
    }

    /// The key sizes the module takes, in bits (Ed25519 and X25519: 255, the
    /// size OpenSC reports for them).
    const fn key_bits(self) -> (CK_ULONG, CK_ULONG) {
        match self {
            KeyFamily::Rsa => (1024, 4096),
            KeyFamily::Ec => (256, 384),
            KeyFamily::Ed25519 => (255, 255),
            KeyFamily::EcOrX25519 => (255, 384),
            KeyFamily::NoKey => (0, 0),
        }
    }

    /// `CK_MECHANISM_INFO` flags of the family: done by the card (`CKF_HW`)
    /// for keys; the curve flags for the NIST curves.
    const fn info_flags(self) -> CK_FLAGS {
        const EC: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
        match self {
            KeyFamily::Rsa | KeyFamily::Ed25519 => CKF_HW,
            KeyFamily::Ec | KeyFamily::EcOrX25519 => CKF_HW | EC,
            KeyFamily::NoKey => 0,
        }
    }
}

/// How a mechanism turns the caller's data into what the key works on
/// (`super::host` does it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// PKCS#1 v1.5 (RFC 8017 §8.2, §7.2): a signature over a DigestInfo, or
    /// encryption of a message.
    RsaPkcs1,
    /// Raw RSA on a block as long as the modulus.
    RsaRaw,
    /// RSASSA-PSS (RFC 8017 §8.1), encoded on the host.
    RsaPss,
    /// RSAES-OAEP (RFC 8017 §7.1), decoded on the host.
    RsaOaep,
    /// ECDSA over a hash fitted to the curve.
    Ecdsa,
    /// Ed25519 over the message.
    EdDsa,
    /// ECDH: the raw shared secret.
    Ecdh,
    /// A digest, on the host.
    Digest,
}

impl Scheme {
    /// Whether the key's card must do raw RSA for it: a card that pads RSA
    /// itself (OpenPGP) cannot.
    pub fn needs_raw_rsa(self) -> bool {
        matches!(self, Scheme::RsaRaw | Scheme::RsaPss | Scheme::RsaOaep)
    }
}

/// The parameter a mechanism takes (`CK_MECHANISM.pParameter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parameters {
    /// None.
    None,
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss,
    /// `CK_RSA_PKCS_OAEP_PARAMS`.
    Oaep,
    /// `CK_EDDSA_PARAMS`, optional.
    EdDsa,
    /// `CK_ECDH1_DERIVE_PARAMS`.
    Ecdh1,
}

/// What an operation does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `C_SignInit`.
    Sign,
    /// `C_VerifyInit`.
    Verify,
    /// `C_DecryptInit`.
    Decrypt,
    /// `C_EncryptInit`.
    Encrypt,
    /// `C_DeriveKey`.
    Derive,
}

impl Purpose {
    /// The purpose's `CK_MECHANISM_INFO` flag.
    pub fn flag(self) -> CK_FLAGS {
        match self {
            Purpose::Sign => CKF_SIGN,
            Purpose::Verify => CKF_VERIFY,
            Purpose::Decrypt => CKF_DECRYPT,
            Purpose::Encrypt => CKF_ENCRYPT,
            Purpose::Derive => CKF_DERIVE,
        }
    }
}

/// One mechanism the module offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechanismSpec {
    /// The `CK_MECHANISM_TYPE`.
    pub kind: CK_MECHANISM_TYPE,
    /// The keys it works on.
    pub family: KeyFamily,
    /// What it does: `CKF_SIGN`, `CKF_VERIFY`, `CKF_DECRYPT`,
    /// `CKF_ENCRYPT`, `CKF_DERIVE`, `CKF_DIGEST`.
    pub purposes: CK_FLAGS,
    /// How the data becomes what the key works on.
    pub scheme: Scheme,
    /// The hash the module computes over the data (multi-part capable).
    pub host_hash: Option<HashAlg>,
    /// Its parameter.
    pub parameters: Parameters,
    /// Smallest key, in bits.
    pub min_key_bits: CK_ULONG,
    /// Largest key, in bits.
    pub max_key_bits: CK_ULONG,
    /// `CK_MECHANISM_INFO.flags`.
    pub info_flags: CK_FLAGS,
}

const SIGN: CK_FLAGS = CKF_SIGN | CKF_VERIFY;
const CRYPT: CK_FLAGS = CKF_ENCRYPT | CKF_DECRYPT;

const fn row(
    kind: CK_MECHANISM_TYPE,
    family: KeyFamily,
    purposes: CK_FLAGS,
    scheme: Scheme,
    host_hash: Option<HashAlg>,
    parameters: Parameters,
) -> MechanismSpec {
    let (min_key_bits, max_key_bits) = family.key_bits();
    MechanismSpec {
        kind,
        family,
        purposes,
        scheme,
        host_hash,
        parameters,
        min_key_bits,
        max_key_bits,
        info_flags: purposes | family.info_flags(),
    }
}

const fn rsa(kind: CK_MECHANISM_TYPE, scheme: Scheme, hash: Option<HashAlg>) -> MechanismSpec {
    let parameters = match scheme {
        Scheme::RsaPss => Parameters::Pss,
        _ => Parameters::None,
    };
    row(kind, KeyFamily::Rsa, SIGN, scheme, hash, parameters)
}

const fn ecdsa(kind: CK_MECHANISM_TYPE, hash: Option<HashAlg>) -> MechanismSpec {
    row(
        kind,
        KeyFamily::Ec,
        SIGN,
        Scheme::Ecdsa,
        hash,
        Parameters::None,
    )
}

const fn digest(kind: CK_MECHANISM_TYPE, hash: HashAlg) -> MechanismSpec {
    let scheme = Scheme::Digest;
    row(
        kind,
        KeyFamily::NoKey,
        CKF_DIGEST,
        scheme,
        Some(hash),
        Parameters::None,
    )
}

use HashAlg::{Sha1, Sha224, Sha256, Sha384, Sha512};

/// The mechanisms, in `C_GetMechanismList` order.
pub static MECHANISMS: &[MechanismSpec] = &[
    row(
        CKM_RSA_PKCS,
        KeyFamily::Rsa,
        SIGN | CRYPT,
        Scheme::RsaPkcs1,
        None,
        Parameters::None,
    ),
    row(
        CKM_RSA_X_509,
        KeyFamily::Rsa,
        SIGN | CRYPT,
        Scheme::RsaRaw,
        None,
        Parameters::None,
    ),
    rsa(CKM_RSA_PKCS_PSS, Scheme::RsaPss, None),
    row(
        CKM_RSA_PKCS_OAEP,
        KeyFamily::Rsa,
        CRYPT,
        Scheme::RsaOaep,
        None,
        Parameters::Oaep,
    ),
    rsa(CKM_SHA1_RSA_PKCS, Scheme::RsaPkcs1, Some(Sha1)),
    rsa(CKM_SHA224_RSA_PKCS, Scheme::RsaPkcs1, Some(Sha224)),
    rsa(CKM_SHA256_RSA_PKCS, Scheme::RsaPkcs1, Some(Sha256)),
    rsa(CKM_SHA384_RSA_PKCS, Scheme::RsaPkcs1, Some(Sha384)),
    rsa(CKM_SHA512_RSA_PKCS, Scheme::RsaPkcs1, Some(Sha512)),
    rsa(CKM_SHA1_RSA_PKCS_PSS, Scheme::RsaPss, Some(Sha1)),
    rsa(CKM_SHA224_RSA_PKCS_PSS, Scheme::RsaPss, Some(Sha224)),
    rsa(CKM_SHA256_RSA_PKCS_PSS, Scheme::RsaPss, Some(Sha256)),
    rsa(CKM_SHA384_RSA_PKCS_PSS, Scheme::RsaPss, Some(Sha384)),
    rsa(CKM_SHA512_RSA_PKCS_PSS, Scheme::RsaPss, Some(Sha512)),
    ecdsa(CKM_ECDSA, None),
    ecdsa(CKM_ECDSA_SHA1, Some(Sha1)),
    ecdsa(CKM_ECDSA_SHA224, Some(Sha224)),
    ecdsa(CKM_ECDSA_SHA256, Some(Sha256)),
    ecdsa(CKM_ECDSA_SHA384, Some(Sha384)),
    ecdsa(CKM_ECDSA_SHA512, Some(Sha512)),
    row(
        CKM_EDDSA,
        KeyFamily::Ed25519,
        SIGN,
        Scheme::EdDsa,
        None,
        Parameters::EdDsa,
    ),
    row(
        CKM_ECDH1_DERIVE,
        KeyFamily::EcOrX25519,
        CKF_DERIVE,
        Scheme::Ecdh,
        None,
        Parameters::Ecdh1,
    ),
    digest(CKM_SHA_1, Sha1),
    digest(CKM_SHA224, Sha224),
    digest(CKM_SHA256, Sha256),
    digest(CKM_SHA384, Sha384),
    digest(CKM_SHA512, Sha512),
];

/// The row of a mechanism type, if the module offers it.
pub fn spec_of(kind: CK_MECHANISM_TYPE) -> Option<&'static MechanismSpec> {
    MECHANISMS.iter().find(|spec| spec.kind == kind)
}

/// The row with this scheme and host hash (the typed mechanism's).
pub(super) fn spec_for(
    scheme: Scheme,
    host_hash: Option<HashAlg>,
) -> Option<&'static MechanismSpec> {
    MECHANISMS
        .iter()
        .find(|spec| spec.scheme == scheme && spec.host_hash == host_hash)
}

/// The hash a digest mechanism type computes (`hashAlg` of PSS and OAEP
/// parameters).
pub(super) fn digest_hash(kind: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    spec_of(kind)
        .filter(|spec| spec.scheme == Scheme::Digest)
        .and_then(|spec| spec.host_hash)
}

/// The parameter a mechanism type takes (the C ABI reads it from the
/// caller's memory accordingly); `None` for a mechanism not offered.
pub fn parameters_of(kind: CK_MECHANISM_TYPE) -> Option<Parameters> {
    spec_of(kind).map(|spec| spec.parameters)
}

impl MechanismSpec {
    /// Its `CK_MECHANISM_INFO`.
    pub fn info(&self) -> CK_MECHANISM_INFO {
        CK_MECHANISM_INFO {
            ulMinKeySize: self.min_key_bits,
            ulMaxKeySize: self.max_key_bits,
            flags: self.info_flags,
        }
    }

    /// Whether the mechanism serves `purpose`.
    pub fn serves(&self, purpose: Purpose) -> bool {
        self.purposes & purpose.flag() != 0
    }

    fn serves_digest(&self) -> bool {
        self.purposes & CKF_DIGEST != 0
    }

    /// Whether `key` allows the mechanism: a key of its family whose card
    /// does what the mechanism is for (sign, decrypt, derive), and raw RSA
    /// where the mechanism needs it.
    pub fn allowed_with(&self, key: &KeyInfo) -> bool {
        let does = |can: bool, purpose: Purpose| {
            can && self.serves(purpose) && self.policy_allows(key, purpose)
        };
        let card_does = does(key.can_sign, Purpose::Sign)
            || does(key.can_decrypt, Purpose::Decrypt)
            || does(key.can_derive, Purpose::Derive);
        self.family.fits(&key.public_key)
            && card_does
            && !(key.card_pads && self.scheme.needs_raw_rsa())
    }
}

impl MechanismSpec {
    /// Whether the algorithm policy on `key` lets the mechanism serve
    /// `purpose`: not a key the policy refuses, not a signature over a
    /// refused hash, no PKCS#1 v1.5 or raw RSA decryption and no raw RSA
    /// signature block where the policy refuses them.
    pub fn policy_allows(&self, key: &KeyInfo, purpose: Purpose) -> bool {
        let refusals = &key.refusals;
        if refusals.key.is_some() {
            return false;
        }
        match purpose {
            Purpose::Sign => {
                let refused_hash = self.host_hash.is_some_and(|h| refusals.refuses_hash(h));
                let refused_raw = self.scheme == Scheme::RsaRaw && refusals.raw_rsa_signatures;
                !refused_hash && !refused_raw
            }
            Purpose::Decrypt => {
                !(matches!(self.scheme, Scheme::RsaPkcs1 | Scheme::RsaRaw)
                    && refusals.rsa_pkcs1_decryption)
            }
            _ => true,
        }
    }
}

/// The mechanisms offered, with their info, in `C_GetMechanismList` order.
pub fn supported() -> Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)> {
    MECHANISMS
        .iter()
        .map(|spec| (spec.kind, spec.info()))
        .collect()
}

/// Whether a mechanism type works on RSA keys.
pub fn is_rsa_mechanism(mechanism: CK_MECHANISM_TYPE) -> bool {
    spec_of(mechanism).is_some_and(|spec| spec.family == KeyFamily::Rsa)
}

/// The mechanisms a key allows (`CKA_ALLOWED_MECHANISMS`, and what
/// `C_SignInit`/`C_DecryptInit`/`C_DeriveKey` accept), in
/// `C_GetMechanismList` order. A card that pads RSA itself (OpenPGP) takes
/// only PKCS#1 v1.5 on a DigestInfo: no raw RSA, PSS or OAEP.
pub fn allowed_for(key: &KeyInfo) -> Vec<CK_MECHANISM_TYPE> {
    MECHANISMS
        .iter()
        .filter(|spec| spec.allowed_with(key))
        .map(|spec| spec.kind)
        .collect()
}

/// The mechanisms a token with these keys offers (`C_GetMechanismList`):
/// those some key allows, and the digests. A purpose the algorithm policy
/// refuses on every key (e.g. PKCS#1 v1.5 decryption) loses its flag.
pub fn for_keys(keys: &[KeyInfo]) -> Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)> {
    MECHANISMS
        .iter()
        .filter(|spec| spec.serves_digest() || keys.iter().any(|key| spec.allowed_with(key)))
        .map(|spec| {
            let mut info = spec.info();
            for purpose in [Purpose::Sign, Purpose::Decrypt, Purpose::Derive] {
                let mut family = keys
                    .iter()
                    .filter(|key| spec.family.fits(&key.public_key))
                    .peekable();
                let refused = spec.serves(purpose)
                    && family.peek().is_some()
                    && family.all(|key| !spec.policy_allows(key, purpose));
                if refused {
                    info.flags &= !purpose.flag();
                }
            }
            (spec.kind, info)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::{Mechanism, PssParams};

    const HASHES: [HashAlg; 5] = [Sha1, Sha224, Sha256, Sha384, Sha512];

    #[test]
    fn every_typed_mechanism_has_exactly_one_row() {
        let mut typed = vec![
            Mechanism::RsaPkcs,
            Mechanism::RsaX509,
            Mechanism::RsaOaep {
                hash: Sha256,
                mgf: Sha256,
                label: vec![],
            },
            Mechanism::Ecdsa,
            Mechanism::EdDsa,
            Mechanism::Ecdh1Derive {
                public_data: vec![4],
            },
        ];
        let pss = |hash| PssParams {
            hash,
            mgf: hash,
            salt_len: 0,
        };
        typed.push(Mechanism::RsaPss(pss(Sha384)));
        for hash in HASHES {
            typed.extend([
                Mechanism::HashRsaPkcs(hash),
                Mechanism::HashRsaPss(pss(hash)),
                Mechanism::EcdsaHash(hash),
                Mechanism::Digest(hash),
            ]);
        }
        for mechanism in &typed {
            let (scheme, hash) = mechanism.scheme_and_hash();
            let rows = MECHANISMS
                .iter()
                .filter(|spec| spec.scheme == scheme && spec.host_hash == hash)
                .count();
            assert_eq!(rows, 1, "{mechanism:?}");
            assert_ne!(mechanism.kind(), CKM_VENDOR_DEFINED);
        }
        assert_eq!(typed.len(), MECHANISMS.len());
        let mut kinds: Vec<CK_MECHANISM_TYPE> = MECHANISMS.iter().map(|s| s.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), MECHANISMS.len(), "a mechanism type twice");
    }

    #[test]
    fn rows_are_consistent() {
        for spec in MECHANISMS {
            let name = format!("{:#x}", spec.kind);
            assert_eq!(spec.info_flags & spec.purposes, spec.purposes, "{name}");
            assert_eq!(
                spec.parameters == Parameters::Pss,
                spec.scheme == Scheme::RsaPss,
                "{name}"
            );
            if spec.family == KeyFamily::NoKey {
                assert_eq!(spec.purposes, CKF_DIGEST, "{name}");
                assert!(spec.host_hash.is_some(), "{name}");
            } else {
                assert_ne!(spec.info_flags & CKF_HW, 0, "{name}");
                assert!(spec.min_key_bits <= spec.max_key_bits, "{name}");
            }
        }
        assert_eq!(digest_hash(CKM_SHA384), Some(Sha384));
        assert_eq!(digest_hash(CKM_SHA384_RSA_PKCS), None);
        assert_eq!(
            parameters_of(CKM_SHA512_RSA_PKCS_PSS),
            Some(Parameters::Pss)
        );
        assert_eq!(parameters_of(CKM_AES_CBC), None);
        assert!(is_rsa_mechanism(CKM_RSA_PKCS_OAEP));
        assert!(!is_rsa_mechanism(CKM_ECDSA));
    }
}
