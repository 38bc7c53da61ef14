//! The OpenPGP card's three keys: roles, algorithms and their attributes
//! (OpenPGP card spec 3.4 §4.4.3.9), the embedded test keys, the card-side
//! operations, OpenPGP v4 fingerprints (RFC 4880 §12.2, RFC 6637 §9) and
//! the test certificates for DO 7F21.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock, PoisonError};

use der::Decode;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::signature::hazmat::PrehashSigner;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::{Digest, Sha1};
use x509_cert::builder::Profile;
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::apdu::sw;
use crate::keys::{build_cert, CA_NAME};
use crate::SimPublicKey;

/// One of the card's three keys (spec 3.4 §4.4.3.7, §7.2.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyRole {
    /// Key 1, signature (CRT `B6`): PSO:COMPUTE DIGITAL SIGNATURE, PW1 (81).
    Signature,
    /// Key 2, decryption (CRT `B8`): PSO:DECIPHER, PW1 (82).
    Decryption,
    /// Key 3, authentication (CRT `A4`): INTERNAL AUTHENTICATE, PW1 (82).
    Authentication,
}

impl KeyRole {
    /// The three roles, in key-number order.
    pub const ALL: [KeyRole; 3] = [
        KeyRole::Signature,
        KeyRole::Decryption,
        KeyRole::Authentication,
    ];

    /// The control reference template tag (`B6`, `B8`, `A4`) used in
    /// GENERATE ASYMMETRIC KEY PAIR.
    pub fn crt_tag(self) -> u8 {
        match self {
            KeyRole::Signature => 0xB6,
            KeyRole::Decryption => 0xB8,
            KeyRole::Authentication => 0xA4,
        }
    }

    /// The role of a control reference template tag.
    pub fn from_crt_tag(tag: u8) -> Option<KeyRole> {
        KeyRole::ALL.into_iter().find(|r| r.crt_tag() == tag)
    }

    /// The key number (1, 2, 3), as in DO `DE` and OpenSC's key IDs.
    pub fn key_number(self) -> u8 {
        self as u8 + 1
    }

    /// The algorithm attributes DO (`C1`, `C2`, `C3`).
    pub fn attributes_tag(self) -> u8 {
        0xC0 + self.key_number()
    }

    /// A short lower-case name: `sig`, `dec`, `aut`.
    pub fn short_name(self) -> &'static str {
        match self {
            KeyRole::Signature => "sig",
            KeyRole::Decryption => "dec",
            KeyRole::Authentication => "aut",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    fn title(self) -> &'static str {
        match self {
            KeyRole::Signature => "Signature",
            KeyRole::Decryption => "Decryption",
            KeyRole::Authentication => "Authentication",
        }
    }
}

const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];
const OID_CV25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01];

/// OpenPGP public-key algorithm IDs (RFC 4880 §9.1, RFC 6637 §5).
const ALGO_RSA: u8 = 0x01;
const ALGO_ECDH: u8 = 0x12;
const ALGO_ECDSA: u8 = 0x13;
const ALGO_EDDSA: u8 = 0x16;

/// A key algorithm the simulated OpenPGP card supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PgpKeyType {
    /// RSA 2048, e = 65537 (any role).
    Rsa2048,
    /// NIST P-256: ECDSA (signature, authentication) or ECDH (decryption).
    P256,
    /// NIST P-384: ECDSA (signature, authentication) or ECDH (decryption).
    P384,
    /// Ed25519, EdDSA (signature, authentication).
    Ed25519,
    /// X25519 (Cv25519), ECDH (decryption).
    X25519,
}

impl PgpKeyType {
    /// Every type.
    pub const ALL: [PgpKeyType; 5] = [
        PgpKeyType::Rsa2048,
        PgpKeyType::P256,
        PgpKeyType::P384,
        PgpKeyType::Ed25519,
        PgpKeyType::X25519,
    ];

    /// Whether a key of this type can hold `role` (EdDSA only signs,
    /// X25519 only decrypts).
    pub fn supports(self, role: KeyRole) -> bool {
        match self {
            PgpKeyType::Rsa2048 | PgpKeyType::P256 | PgpKeyType::P384 => true,
            PgpKeyType::Ed25519 => role != KeyRole::Decryption,
            PgpKeyType::X25519 => role == KeyRole::Decryption,
        }
    }

    /// The algorithm attributes for `role` (spec 3.4 §4.4.3.9): RSA
    /// `01 0800 0020 00`, ECC the algorithm ID and the curve OID.
    pub fn algorithm_attributes(self, role: KeyRole) -> Vec<u8> {
        let ecc = |algo: u8, oid: &[u8]| [&[algo][..], oid].concat();
        let nist = if role == KeyRole::Decryption {
            ALGO_ECDH
        } else {
            ALGO_ECDSA
        };
        match self {
            PgpKeyType::Rsa2048 => vec![ALGO_RSA, 0x08, 0x00, 0x00, 0x20, 0x00],
            PgpKeyType::P256 => ecc(nist, OID_P256),
            PgpKeyType::P384 => ecc(nist, OID_P384),
            PgpKeyType::Ed25519 => ecc(ALGO_EDDSA, OID_ED25519),
            PgpKeyType::X25519 => ecc(ALGO_ECDH, OID_CV25519),
        }
    }

    /// The type whose attributes for `role` are `attributes` (a trailing
    /// import-format byte is accepted for ECC, any RSA import format for RSA).
    pub fn from_algorithm_attributes(role: KeyRole, attributes: &[u8]) -> Option<PgpKeyType> {
        PgpKeyType::ALL.into_iter().find(|t| {
            if !t.supports(role) {
                return false;
            }
            let expected = t.algorithm_attributes(role);
            match *t {
                PgpKeyType::Rsa2048 => attributes.len() == 6 && attributes[..5] == expected[..5],
                _ => {
                    attributes == expected
                        || attributes.strip_suffix(&[0xFF]) == Some(&expected[..])
                }
            }
        })
    }

    /// The curve OID of an ECC type.
    fn curve_oid(self) -> Option<&'static [u8]> {
        match self {
            PgpKeyType::Rsa2048 => None,
            PgpKeyType::P256 => Some(OID_P256),
            PgpKeyType::P384 => Some(OID_P384),
            PgpKeyType::Ed25519 => Some(OID_ED25519),
            PgpKeyType::X25519 => Some(OID_CV25519),
        }
    }

    fn file_tag(self) -> u8 {
        self as u8
    }
}

/// The public half of one of the card's keys, for tests that check what the
/// card did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgpPublicKey {
    /// RSA 2048.
    Rsa(RsaPublicKey),
    /// NIST P-256 (ECDSA or ECDH).
    P256(p256::ecdsa::VerifyingKey),
    /// NIST P-384 (ECDSA or ECDH).
    P384(p384::ecdsa::VerifyingKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// X25519.
    X25519(x25519_dalek::PublicKey),
}

impl PgpPublicKey {
    /// The key's type.
    pub fn key_type(&self) -> PgpKeyType {
        match self {
            PgpPublicKey::Rsa(_) => PgpKeyType::Rsa2048,
            PgpPublicKey::P256(_) => PgpKeyType::P256,
            PgpPublicKey::P384(_) => PgpKeyType::P384,
            PgpPublicKey::Ed25519(_) => PgpKeyType::Ed25519,
            PgpPublicKey::X25519(_) => PgpKeyType::X25519,
        }
    }

    /// The ECC public point as the card sends it in tag `86`: `04 || x || y`
    /// for NIST curves, the 32 raw bytes for Ed25519 and X25519; `None` for
    /// RSA.
    pub fn ecc_point(&self) -> Option<Vec<u8>> {
        match self {
            PgpPublicKey::Rsa(_) => None,
            PgpPublicKey::P256(k) => Some(k.to_encoded_point(false).as_bytes().to_vec()),
            PgpPublicKey::P384(k) => Some(k.to_encoded_point(false).as_bytes().to_vec()),
            PgpPublicKey::Ed25519(k) => Some(k.to_bytes().to_vec()),
            PgpPublicKey::X25519(k) => Some(k.to_bytes().to_vec()),
        }
    }

    /// The same key as a [`SimPublicKey`] (RSA, P-256, P-384), to reuse
    /// helpers written for the PIV card.
    pub fn to_sim_public_key(&self) -> Option<SimPublicKey> {
        match self {
            PgpPublicKey::Rsa(k) => Some(SimPublicKey::Rsa(k.clone())),
            PgpPublicKey::P256(k) => Some(SimPublicKey::P256(*k)),
            PgpPublicKey::P384(k) => Some(SimPublicKey::P384(*k)),
            PgpPublicKey::Ed25519(_) | PgpPublicKey::X25519(_) => None,
        }
    }

    /// DER `SubjectPublicKeyInfo` (RFC 8410 for Ed25519 and X25519).
    pub fn to_spki_der(&self) -> Vec<u8> {
        let der = match self {
            PgpPublicKey::Rsa(k) => k.to_public_key_der(),
            PgpPublicKey::P256(k) => k.to_public_key_der(),
            PgpPublicKey::P384(k) => k.to_public_key_der(),
            PgpPublicKey::Ed25519(k) => return rfc8410_spki(0x70, &k.to_bytes()),
            PgpPublicKey::X25519(k) => return rfc8410_spki(0x6E, k.as_bytes()),
        };
        der.map(|d| d.into_vec()).unwrap_or_default()
    }

    /// The public key template content (inside `7F49`) of GENERATE
    /// ASYMMETRIC KEY PAIR (spec 3.4 §7.2.14): `81` modulus and `82`
    /// exponent for RSA, `86` point for ECC.
    pub(crate) fn template(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            PgpPublicKey::Rsa(k) => {
                crate::apdu::put_tlv(&mut out, &[0x81], &k.n().to_bytes_be());
                crate::apdu::put_tlv(&mut out, &[0x82], &k.e().to_bytes_be());
            }
            other => {
                let point = other.ecc_point().unwrap_or_default();
                crate::apdu::put_tlv(&mut out, &[0x86], &point);
            }
        }
        out
    }

    /// The OpenPGP v4 fingerprint of this key as `role` created at `created`
    /// (seconds since 1970): SHA-1 over the public-key packet (RFC 4880
    /// §12.2; ECC per RFC 6637 §9 and the EdDSA/Cv25519 drafts, with
    /// GnuPG's default KDF parameters for ECDH).
    pub fn fingerprint(&self, role: KeyRole, created: u32) -> [u8; 20] {
        let key_type = self.key_type();
        let mut body = vec![0x04];
        body.extend_from_slice(&created.to_be_bytes());
        let attributes = key_type.algorithm_attributes(role);
        body.push(attributes[0]);
        match self {
            PgpPublicKey::Rsa(k) => {
                put_mpi(&mut body, &k.n().to_bytes_be());
                put_mpi(&mut body, &k.e().to_bytes_be());
            }
            other => {
                let oid = key_type.curve_oid().unwrap_or_default();
                body.push(oid.len() as u8);
                body.extend_from_slice(oid);
                let mut point = other.ecc_point().unwrap_or_default();
                if matches!(key_type, PgpKeyType::Ed25519 | PgpKeyType::X25519) {
                    // Native point format: the 0x40 prefix.
                    point.insert(0, 0x40);
                }
                put_mpi(&mut body, &point);
                if attributes[0] == ALGO_ECDH {
                    // KDF parameters: SHA-256 + AES-128, SHA-384 + AES-256.
                    let kdf = match key_type {
                        PgpKeyType::P384 => [0x03, 0x01, 0x09, 0x09],
                        _ => [0x03, 0x01, 0x08, 0x07],
                    };
                    body.extend_from_slice(&kdf);
                }
            }
        }
        let mut hasher = Sha1::new();
        hasher.update([0x99]);
        hasher.update((body.len() as u16).to_be_bytes());
        hasher.update(&body);
        hasher.finalize().into()
    }
}

/// Appends an OpenPGP MPI: the bit count (2 bytes) and the big-endian value
/// without leading zero bytes.
fn put_mpi(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    let value = &value[start..];
    let bits = match value.first() {
        Some(&b) => (value.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    };
    out.extend_from_slice(&(bits as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// A SubjectPublicKeyInfo with OID 1.3.101.`last` and no parameters.
fn rfc8410_spki(last: u8, key: &[u8]) -> Vec<u8> {
    let mut out = vec![
        0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, last, 0x03, 0x21, 0x00,
    ];
    out.extend_from_slice(key);
    out
}

/// The PKCS#8 prefix of an RFC 8410 private key (OID 1.3.101.`last`),
/// followed by the 32-byte key.
fn rfc8410_pkcs8_prefix(last: u8) -> [u8; 16] {
    [
        0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, last, 0x04, 0x22, 0x04,
        0x20,
    ]
}

/// A private key on the card.
#[derive(Debug, Clone)]
pub(crate) enum PgpPrivateKey {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    X25519(X25519Secret),
}

/// An X25519 private key (`StaticSecret` has no `Debug`; this one shows
/// only the public key).
#[derive(Clone)]
pub(crate) struct X25519Secret([u8; 32]);

impl X25519Secret {
    fn secret(&self) -> x25519_dalek::StaticSecret {
        x25519_dalek::StaticSecret::from(self.0)
    }

    fn public(&self) -> x25519_dalek::PublicKey {
        x25519_dalek::PublicKey::from(&self.secret())
    }
}

impl std::fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("X25519Secret").field(&self.public()).finish()
    }
}

macro_rules! key_file {
    ($name:literal) => {
        include_bytes!(concat!("../keys/pgp-", $name, ".der"))
    };
}

fn embedded_der(key_type: PgpKeyType, role: KeyRole) -> &'static [u8] {
    use KeyRole::*;
    use PgpKeyType::*;
    match (key_type, role) {
        (Rsa2048, Signature) => key_file!("rsa2048-sig"),
        (Rsa2048, Decryption) => key_file!("rsa2048-dec"),
        (Rsa2048, Authentication) => key_file!("rsa2048-aut"),
        (P256, Signature) => key_file!("p256-sig"),
        (P256, Decryption) => key_file!("p256-dec"),
        (P256, Authentication) => key_file!("p256-aut"),
        (P384, Signature) => key_file!("p384-sig"),
        (P384, Decryption) => key_file!("p384-dec"),
        (P384, Authentication) => key_file!("p384-aut"),
        (Ed25519, Signature | Decryption) => key_file!("ed25519-sig"),
        (Ed25519, Authentication) => key_file!("ed25519-aut"),
        (X25519, _) => key_file!("x25519-dec"),
    }
}

/// The 32 key bytes of an embedded RFC 8410 PKCS#8 key.
fn rfc8410_key(der: &[u8], last: u8) -> [u8; 32] {
    der.strip_prefix(&rfc8410_pkcs8_prefix(last))
        .and_then(|key| <[u8; 32]>::try_from(key).ok())
        .expect("embedded test key must be RFC 8410 PKCS#8")
}

impl PgpPrivateKey {
    /// The embedded test key of `key_type` for `role`.
    ///
    /// # Panics
    /// If `key_type` cannot hold `role` (see [`PgpKeyType::supports`]).
    pub fn embedded(key_type: PgpKeyType, role: KeyRole) -> Self {
        assert!(
            key_type.supports(role),
            "an OpenPGP {key_type:?} key cannot be the {role:?} key"
        );
        let der = embedded_der(key_type, role);
        let bad = "embedded test key must be valid PKCS#8";
        match key_type {
            PgpKeyType::Rsa2048 => {
                PgpPrivateKey::Rsa(Box::new(RsaPrivateKey::from_pkcs8_der(der).expect(bad)))
            }
            PgpKeyType::P256 => {
                PgpPrivateKey::P256(p256::ecdsa::SigningKey::from_pkcs8_der(der).expect(bad))
            }
            PgpKeyType::P384 => {
                PgpPrivateKey::P384(p384::ecdsa::SigningKey::from_pkcs8_der(der).expect(bad))
            }
            PgpKeyType::Ed25519 => PgpPrivateKey::Ed25519(Box::new(
                ed25519_dalek::SigningKey::from_bytes(&rfc8410_key(der, 0x70)),
            )),
            PgpKeyType::X25519 => PgpPrivateKey::X25519(X25519Secret(rfc8410_key(der, 0x6E))),
        }
    }

    pub fn key_type(&self) -> PgpKeyType {
        self.public().key_type()
    }

    pub fn public(&self) -> PgpPublicKey {
        match self {
            PgpPrivateKey::Rsa(k) => PgpPublicKey::Rsa(k.to_public_key()),
            PgpPrivateKey::P256(k) => PgpPublicKey::P256(*k.verifying_key()),
            PgpPrivateKey::P384(k) => PgpPublicKey::P384(*k.verifying_key()),
            PgpPrivateKey::Ed25519(k) => PgpPublicKey::Ed25519(k.verifying_key()),
            PgpPrivateKey::X25519(k) => PgpPublicKey::X25519(k.public()),
        }
    }

    /// PSO:COMPUTE DIGITAL SIGNATURE and INTERNAL AUTHENTICATE (spec 3.4
    /// §7.2.10, §7.2.13): RSA pads `input` (a DigestInfo, at most 40 % of
    /// the modulus) with PKCS#1 v1.5; ECDSA signs the hash `input` and
    /// answers `r || s`; EdDSA signs the message `input` and answers
    /// `R || S`.
    pub fn sign(&self, input: &[u8]) -> Result<Vec<u8>, u16> {
        match self {
            PgpPrivateKey::Rsa(k) => {
                if input.is_empty() || input.len() > k.size() * 2 / 5 {
                    return Err(sw::WRONG_LENGTH);
                }
                k.sign(Pkcs1v15Sign::new_unprefixed(), input)
                    .map_err(|_| sw::WRONG_DATA)
            }
            PgpPrivateKey::P256(k) => {
                let sig: p256::ecdsa::Signature =
                    k.sign_prehash(input).map_err(|_| sw::WRONG_LENGTH)?;
                Ok(sig.to_bytes().to_vec())
            }
            PgpPrivateKey::P384(k) => {
                let sig: p384::ecdsa::Signature =
                    k.sign_prehash(input).map_err(|_| sw::WRONG_LENGTH)?;
                Ok(sig.to_bytes().to_vec())
            }
            PgpPrivateKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                Ok(k.sign(input).to_bytes().to_vec())
            }
            PgpPrivateKey::X25519(_) => Err(sw::CONDITIONS_NOT_SATISFIED),
        }
    }

    /// PSO:DECIPHER with an RSA key (spec 3.4 §7.2.11): `ciphertext`
    /// (without the padding indicator) → the PKCS#1 v1.5-unpadded plaintext.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, u16> {
        match self {
            PgpPrivateKey::Rsa(k) => {
                if ciphertext.len() != k.size() {
                    return Err(sw::WRONG_LENGTH);
                }
                k.decrypt(Pkcs1v15Encrypt, ciphertext)
                    .map_err(|_| sw::WRONG_DATA)
            }
            _ => Err(sw::CONDITIONS_NOT_SATISFIED),
        }
    }

    /// PSO:DECIPHER with an ECC key (spec 3.4 §7.2.11): ECDH with the peer
    /// point, answering the shared secret (the x coordinate for NIST curves,
    /// the 32-byte X25519 result).
    pub fn ecdh(&self, peer: &[u8]) -> Result<Vec<u8>, u16> {
        match self {
            PgpPrivateKey::P256(k) => {
                let peer = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| sw::WRONG_DATA)?;
                let shared = (peer.to_projective() * k.as_nonzero_scalar().as_ref()).to_affine();
                Ok(shared.x().to_vec())
            }
            PgpPrivateKey::P384(k) => {
                let peer = p384::PublicKey::from_sec1_bytes(peer).map_err(|_| sw::WRONG_DATA)?;
                let shared = (peer.to_projective() * k.as_nonzero_scalar().as_ref()).to_affine();
                Ok(shared.x().to_vec())
            }
            PgpPrivateKey::X25519(k) => {
                // Accept the native format with its 0x40 prefix too.
                let raw = match peer {
                    [0x40, rest @ ..] if rest.len() == 32 => rest,
                    other => other,
                };
                let raw = <[u8; 32]>::try_from(raw).map_err(|_| sw::WRONG_DATA)?;
                let shared = k
                    .secret()
                    .diffie_hellman(&x25519_dalek::PublicKey::from(raw));
                Ok(shared.as_bytes().to_vec())
            }
            PgpPrivateKey::Rsa(_) | PgpPrivateKey::Ed25519(_) => Err(sw::CONDITIONS_NOT_SATISFIED),
        }
    }
}

type CertCache = Mutex<HashMap<(KeyRole, PgpKeyType), Vec<u8>>>;

/// The test certificate for the embedded key of `key_type` as `role`:
/// subject `CN=cardsim OpenPGP Authentication key,O=p11card test` (and so
/// on), issued by the cardsim test CA.
pub(crate) fn role_certificate_der(role: KeyRole, key: &PgpPrivateKey) -> Vec<u8> {
    static CACHE: OnceLock<CertCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = (role, key.key_type());
    if let Some(der) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
    {
        return der.clone();
    }
    let spki_der = key.public().to_spki_der();
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der).expect("SPKI must round-trip");
    let ca_name = Name::from_str(CA_NAME).expect("fixed CA name must parse");
    let decryption = role == KeyRole::Decryption;
    let profile = Profile::Leaf {
        issuer: ca_name,
        enable_key_agreement: decryption && id.1 != PgpKeyType::Rsa2048,
        enable_key_encipherment: decryption && id.1 == PgpKeyType::Rsa2048,
    };
    let subject = format!("CN=cardsim OpenPGP {} key,O=p11card test", role.title());
    let der = build_cert(
        profile,
        &[0x20, role.key_number(), id.1.file_tag()],
        &subject,
        spki,
    );
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, der.clone());
    der
}
