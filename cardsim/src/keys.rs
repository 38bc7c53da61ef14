//! PIV key slots, the embedded test keys, their private-key operations, and
//! the test certificates issued for them.
//!
//! Keys are never generated at run time: every (algorithm, slot) pair has a
//! throw-away key under `src/keys/`. Certificates are built once per pair
//! (deterministic ECDSA from a fixed test CA) and cached for the process.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use der::asn1::UtcTime;
use der::{Decode, Encode};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::signature::hazmat::PrehashSigner;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::apdu::{put_tlv, sw};

/// A PIV key slot (SP 800-73-4 Part 1 §3.1.1, key references Part 1 Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// 9A, PIV Authentication: PIN required once per session.
    Authentication,
    /// 9C, Digital Signature: PIN required immediately before each use.
    Signature,
    /// 9D, Key Management: PIN required once per session.
    KeyManagement,
    /// 9E, Card Authentication: no PIN.
    CardAuthentication,
}

impl Slot {
    /// All four slots, in key-reference order.
    pub const ALL: [Slot; 4] = [
        Slot::Authentication,
        Slot::Signature,
        Slot::KeyManagement,
        Slot::CardAuthentication,
    ];

    /// The key reference used in GENERAL AUTHENTICATE (P2).
    pub fn key_ref(self) -> u8 {
        match self {
            Slot::Authentication => 0x9A,
            Slot::Signature => 0x9C,
            Slot::KeyManagement => 0x9D,
            Slot::CardAuthentication => 0x9E,
        }
    }

    /// The slot for a key reference, if it is one of the four.
    pub fn from_key_ref(key_ref: u8) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.key_ref() == key_ref)
    }

    /// The tag of the slot's certificate data object (Part 1 Table 3).
    pub fn object_tag(self) -> u32 {
        match self {
            Slot::Authentication => 0x5FC105,
            Slot::Signature => 0x5FC10A,
            Slot::KeyManagement => 0x5FC10B,
            Slot::CardAuthentication => 0x5FC101,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    fn title(self) -> &'static str {
        match self {
            Slot::Authentication => "PIV Authentication",
            Slot::Signature => "Digital Signature",
            Slot::KeyManagement => "Key Management",
            Slot::CardAuthentication => "Card Authentication",
        }
    }
}

/// A key algorithm the simulated card supports (Part 1 Table 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA 2048, algorithm `07`.
    Rsa2048,
    /// RSA 1024, algorithm `06` (legacy cards; a key an algorithm policy
    /// refuses).
    Rsa1024,
    /// ECC P-256, algorithm `11`.
    EccP256,
    /// ECC P-384, algorithm `14`.
    EccP384,
}

impl KeyType {
    /// The algorithm identifier used in GENERAL AUTHENTICATE (P1).
    pub fn algorithm_id(self) -> u8 {
        match self {
            KeyType::Rsa2048 => 0x07,
            KeyType::Rsa1024 => 0x06,
            KeyType::EccP256 => 0x11,
            KeyType::EccP384 => 0x14,
        }
    }
}

/// The public half of a slot's key, for tests that verify what the card did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimPublicKey {
    /// RSA 2048.
    Rsa(RsaPublicKey),
    /// ECC P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// ECC P-384.
    P384(p384::ecdsa::VerifyingKey),
}

impl SimPublicKey {
    /// DER `SubjectPublicKeyInfo`.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let der = match self {
            SimPublicKey::Rsa(k) => k.to_public_key_der(),
            SimPublicKey::P256(k) => k.to_public_key_der(),
            SimPublicKey::P384(k) => k.to_public_key_der(),
        };
        der.map(|d| d.into_vec()).unwrap_or_default()
    }
}

/// A private key held in a slot.
#[derive(Debug, Clone)]
pub(crate) enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

macro_rules! key_file {
    ($name:literal) => {
        include_bytes!(concat!("keys/", $name, ".der"))
    };
}

fn embedded_der(key_type: KeyType, slot: Slot) -> &'static [u8] {
    use KeyType::*;
    use Slot::*;
    match (key_type, slot) {
        (Rsa2048, Authentication) => key_file!("rsa2048-9a"),
        (Rsa2048, Signature) => key_file!("rsa2048-9c"),
        (Rsa2048, KeyManagement) => key_file!("rsa2048-9d"),
        (Rsa2048, CardAuthentication) => key_file!("rsa2048-9e"),
        (EccP256, Authentication) => key_file!("p256-9a"),
        (EccP256, Signature) => key_file!("p256-9c"),
        (EccP256, KeyManagement) => key_file!("p256-9d"),
        (EccP256, CardAuthentication) => key_file!("p256-9e"),
        (EccP384, Authentication) => key_file!("p384-9a"),
        (EccP384, Signature) => key_file!("p384-9c"),
        (EccP384, KeyManagement) => key_file!("p384-9d"),
        (EccP384, CardAuthentication) => key_file!("p384-9e"),
        (Rsa1024, _) => key_file!("rsa1024-9d"),
    }
}

impl PrivateKey {
    /// The embedded test key of `key_type` for `slot`.
    pub fn embedded(key_type: KeyType, slot: Slot) -> Self {
        let der = embedded_der(key_type, slot);
        let bad = "embedded test key must be valid PKCS#8";
        match key_type {
            KeyType::Rsa2048 | KeyType::Rsa1024 => {
                PrivateKey::Rsa(Box::new(RsaPrivateKey::from_pkcs8_der(der).expect(bad)))
            }
            KeyType::EccP256 => {
                PrivateKey::P256(p256::ecdsa::SigningKey::from_pkcs8_der(der).expect(bad))
            }
            KeyType::EccP384 => {
                PrivateKey::P384(p384::ecdsa::SigningKey::from_pkcs8_der(der).expect(bad))
            }
        }
    }

    pub fn key_type(&self) -> KeyType {
        match self {
            PrivateKey::Rsa(key) if rsa::traits::PublicKeyParts::size(key.as_ref()) == 128 => {
                KeyType::Rsa1024
            }
            PrivateKey::Rsa(_) => KeyType::Rsa2048,
            PrivateKey::P256(_) => KeyType::EccP256,
            PrivateKey::P384(_) => KeyType::EccP384,
        }
    }

    pub fn public(&self) -> SimPublicKey {
        match self {
            PrivateKey::Rsa(k) => SimPublicKey::Rsa(k.to_public_key()),
            PrivateKey::P256(k) => SimPublicKey::P256(*k.verifying_key()),
            PrivateKey::P384(k) => SimPublicKey::P384(*k.verifying_key()),
        }
    }

    /// The public key as Yubico's GET METADATA nests it in tag `04`: RSA
    /// `81` modulus `82` public exponent, EC `86` uncompressed point.
    pub fn metadata_public_key(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            PrivateKey::Rsa(k) => {
                put_tlv(&mut out, &[0x81], &k.n().to_bytes_be());
                put_tlv(&mut out, &[0x82], &k.e().to_bytes_be());
            }
            PrivateKey::P256(k) => {
                put_tlv(
                    &mut out,
                    &[0x86],
                    k.verifying_key().to_encoded_point(false).as_bytes(),
                );
            }
            PrivateKey::P384(k) => {
                put_tlv(
                    &mut out,
                    &[0x86],
                    k.verifying_key().to_encoded_point(false).as_bytes(),
                );
            }
        }
        out
    }

    /// GENERAL AUTHENTICATE with a challenge (tag 81): the raw RSA private
    /// operation on a full-size block, or an ECDSA signature (DER) over a
    /// prehash of exactly the curve's size.
    pub fn sign(&self, challenge: &[u8]) -> Result<Vec<u8>, u16> {
        match self {
            PrivateKey::Rsa(k) => {
                let size = k.size();
                if challenge.len() != size {
                    return Err(sw::WRONG_DATA);
                }
                let c = BigUint::from_bytes_be(challenge);
                let m = rsa::hazmat::rsa_decrypt_and_check::<dyn rsa::rand_core::CryptoRngCore>(
                    k.as_ref(),
                    None,
                    &c,
                )
                .map_err(|_| sw::WRONG_DATA)?;
                let m = m.to_bytes_be();
                let mut out = vec![0; size.saturating_sub(m.len())];
                out.extend_from_slice(&m);
                Ok(out)
            }
            PrivateKey::P256(k) if challenge.len() == 32 => {
                let sig: p256::ecdsa::Signature =
                    k.sign_prehash(challenge).map_err(|_| sw::WRONG_DATA)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PrivateKey::P384(k) if challenge.len() == 48 => {
                let sig: p384::ecdsa::Signature =
                    k.sign_prehash(challenge).map_err(|_| sw::WRONG_DATA)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            _ => Err(sw::WRONG_DATA),
        }
    }

    /// GENERAL AUTHENTICATE with a peer point (tag 85): ECDH, returning the
    /// shared secret's x coordinate (SP 800-73-4 Part 2 §3.2.4, key
    /// establishment).
    pub fn ecdh(&self, peer: &[u8]) -> Result<Vec<u8>, u16> {
        match self {
            PrivateKey::P256(k) => {
                let peer = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| sw::WRONG_DATA)?;
                let shared = (peer.to_projective() * k.as_nonzero_scalar().as_ref()).to_affine();
                Ok(shared.x().to_vec())
            }
            PrivateKey::P384(k) => {
                let peer = p384::PublicKey::from_sec1_bytes(peer).map_err(|_| sw::WRONG_DATA)?;
                let shared = (peer.to_projective() * k.as_nonzero_scalar().as_ref()).to_affine();
                Ok(shared.x().to_vec())
            }
            PrivateKey::Rsa(_) => Err(sw::WRONG_DATA),
        }
    }
}

pub(crate) fn ca_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_pkcs8_der(include_bytes!("keys/ca-p256.der"))
        .expect("embedded CA key must be valid PKCS#8")
}

pub(crate) const CA_NAME: &str = "CN=cardsim test CA,O=p11card test";

fn validity() -> Validity {
    // 2024-01-01T00:00:00Z .. 2049-12-31T23:59:59Z (still UTCTime).
    let time = |secs| {
        UtcTime::from_unix_duration(Duration::from_secs(secs))
            .map(Time::UtcTime)
            .expect("fixed validity dates are in UTCTime range")
    };
    Validity {
        not_before: time(1_704_067_200),
        not_after: time(2_524_607_999),
    }
}

pub(crate) fn build_cert(
    profile: Profile,
    serial: &[u8],
    subject: &str,
    spki: SubjectPublicKeyInfoOwned,
) -> Vec<u8> {
    let ca = ca_key();
    let subject = Name::from_str(subject).expect("fixed subject must parse");
    let serial = SerialNumber::new(serial).expect("fixed serial must be valid");
    CertificateBuilder::new(profile, serial, validity(), subject, spki, &ca)
        .and_then(|b| b.build::<p256::ecdsa::DerSignature>())
        .and_then(|c| c.to_der().map_err(Into::into))
        .expect("test certificate must build")
}

/// Certificates by (slot, key type, slot whose embedded key it is).
type CertCache = Mutex<HashMap<(Slot, KeyType, Slot), Vec<u8>>>;

/// The DER certificate of the test CA (self-signed, ECDSA P-256) that issues
/// every slot certificate (and the OpenPGP card's cardholder certificates).
pub fn ca_certificate_der() -> Vec<u8> {
    static CA: OnceLock<Vec<u8>> = OnceLock::new();
    CA.get_or_init(|| {
        let spki = SubjectPublicKeyInfoOwned::from_key(*ca_key().verifying_key())
            .expect("CA key must encode");
        build_cert(Profile::Root, &[0x01], CA_NAME, spki)
    })
    .clone()
}

/// The test certificate for `key` in `slot`, subject
/// `CN=cardsim 9A PIV Authentication,O=p11card test` (and so on). `key` is
/// the embedded key of its type for `source`: normally `slot` itself; another
/// slot's key gets a certificate with its own serial number.
pub(crate) fn slot_certificate_der(slot: Slot, key: &PrivateKey, source: Slot) -> Vec<u8> {
    static CACHE: OnceLock<CertCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = (slot, key.key_type(), source);
    if let Some(der) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
    {
        return der.clone();
    }
    let subject = format!(
        "CN=cardsim {:02X} {},O=p11card test",
        slot.key_ref(),
        slot.title()
    );
    let mut serial = vec![0x10, slot.key_ref(), id.1.algorithm_id()];
    if source != slot {
        serial.push(source.key_ref());
    }
    let der = leaf_certificate(key, &subject, &serial, slot == Slot::KeyManagement);
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, der.clone());
    der
}

/// The test certificate for a retired key management key (`number` 1 to
/// 20, key reference `0x81 + number`), subject
/// `CN=cardsim Retired 1,O=p11card test`; `source` as for a slot.
pub(crate) fn retired_certificate_der(number: u8, key: &PrivateKey, source: Slot) -> Vec<u8> {
    let subject = format!("CN=cardsim Retired {number},O=p11card test");
    let serial = [
        0x20,
        number,
        key.key_type().algorithm_id(),
        source.key_ref(),
    ];
    leaf_certificate(key, &subject, &serial, true)
}

/// A certificate from the test CA for `key`; a key management key gets
/// keyAgreement (EC) or keyEncipherment (RSA).
fn leaf_certificate(
    key: &PrivateKey,
    subject: &str,
    serial: &[u8],
    key_management: bool,
) -> Vec<u8> {
    let spki_der = key.public().to_spki_der();
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der).expect("SPKI must round-trip");
    let ca_name = Name::from_str(CA_NAME).expect("fixed CA name must parse");
    let rsa = matches!(key.key_type(), KeyType::Rsa2048 | KeyType::Rsa1024);
    let profile = Profile::Leaf {
        issuer: ca_name,
        enable_key_agreement: key_management && !rsa,
        enable_key_encipherment: key_management && rsa,
    };
    build_cert(profile, serial, subject, spki)
}
