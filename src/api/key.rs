//! A key on the card: what it is, its certificate, what the card lets it
//! do, and signing on the card.

use super::card::{class_template, CardSession};
use super::error::{Error, Result};
use super::signers::{P256Signer, P384Signer, RsaHash, RsaPkcs1v15Signer, RsaPssSigner};
use crate::error::Error as ModuleError;
use crate::mechanism::{Mechanism, RawParams};
use crate::session::Output;
use crate::token::AttrValue;
use cryptoki_sys::*;
use der::Decode;
use std::sync::Arc;
use std::time::SystemTime;
use zeroize::Zeroizing;

/// An elliptic curve of a card key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcCurve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

/// The kind of a card key, with its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// RSA with a modulus of this many bits.
    Rsa {
        /// The modulus length in bits.
        bits: usize,
    },
    /// ECDSA and ECDH on a NIST curve.
    Ec(EcCurve),
    /// Ed25519 signatures (EdDSA).
    Ed25519,
    /// X25519 key agreement.
    X25519,
}

/// `CKA_EC_PARAMS` (DER OIDs) of the curves.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

/// A key's public part, parsed.
#[derive(Debug, Clone)]
pub(super) enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    /// Ed25519 and X25519: not used for signing through this API.
    Other,
}

/// An X.509 certificate the card holds for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    subject: String,
    issuer: String,
    validity: Option<(SystemTime, SystemTime)>,
}

impl Certificate {
    fn new(der: Vec<u8>) -> Certificate {
        let parsed = x509_cert::Certificate::from_der(&der).ok();
        let tbs = parsed.as_ref().map(|cert| &cert.tbs_certificate);
        let name = |name: &x509_cert::name::Name| name.to_string();
        Certificate {
            subject: tbs.map(|tbs| name(&tbs.subject)).unwrap_or_default(),
            issuer: tbs.map(|tbs| name(&tbs.issuer)).unwrap_or_default(),
            validity: tbs.map(|tbs| {
                (
                    tbs.validity.not_before.to_system_time(),
                    tbs.validity.not_after.to_system_time(),
                )
            }),
            der,
        }
    }

    /// The certificate, DER encoded.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject's distinguished name (RFC 4514 string, e.g.
    /// `CN=Jane Doe,O=Example`); empty if it cannot be parsed.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer's distinguished name (RFC 4514 string); empty if the
    /// certificate cannot be parsed.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The first moment the certificate is valid (`notBefore`); `None` if
    /// the certificate cannot be parsed.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.validity.map(|(from, _)| from)
    }

    /// The last moment the certificate is valid (`notAfter`); `None` if the
    /// certificate cannot be parsed.
    pub fn not_after(&self) -> Option<SystemTime> {
        self.validity.map(|(_, until)| until)
    }
}

/// What the card lets a key do, known once the private key is visible
/// (after the login, or at once for a key without PIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Capabilities {
    /// The key signs.
    pub sign: bool,
    /// The key decrypts (RSA).
    pub decrypt: bool,
    /// The key agrees on secrets (ECDH).
    pub derive: bool,
    /// The card wants the PIN right before each use of the key (PIV 9C):
    /// signing needs a context that presents it ([`Error::PinEveryUse`]).
    pub pin_every_use: bool,
}

/// A key on the card, with its certificate when the card holds one. Signs
/// through the typed signers ([`Key::p256_signer`], [`Key::p384_signer`],
/// [`Key::rsa_pkcs1v15_signer`], [`Key::rsa_pss_signer`]); the private key
/// never leaves the card.
#[derive(Debug, Clone)]
pub struct Key {
    session: Arc<CardSession>,
    label: String,
    id: Vec<u8>,
    kind: KeyKind,
    public_key: PublicKey,
    certificate: Option<Certificate>,
    can_sign: bool,
    capabilities: Option<Capabilities>,
}

/// The bytes of a readable attribute.
fn bytes(value: &Option<AttrValue>) -> Option<&[u8]> {
    match value {
        Some(AttrValue::Bytes(bytes)) => Some(bytes),
        _ => None,
    }
}

fn ulong(value: &Option<AttrValue>) -> Option<CK_ULONG> {
    Some(CK_ULONG::from_ne_bytes(bytes(value)?.try_into().ok()?))
}

fn flag(value: &Option<AttrValue>) -> bool {
    bytes(value) == Some(&[CK_TRUE])
}

/// The content of a DER OCTET STRING (`CKA_EC_POINT`).
fn octet_string(der: &[u8]) -> Option<Vec<u8>> {
    der::asn1::OctetString::from_der(der)
        .ok()
        .map(|octets| octets.into_bytes())
}

impl Key {
    /// Reads the key behind the public key object `public`.
    pub(super) fn read(session: &Arc<CardSession>, public: CK_OBJECT_HANDLE) -> Result<Key> {
        let module = &session.module;
        let values = module.attributes(
            session.handle,
            public,
            &[
                CKA_ID,
                CKA_LABEL,
                CKA_KEY_TYPE,
                CKA_MODULUS,
                CKA_PUBLIC_EXPONENT,
                CKA_EC_PARAMS,
                CKA_EC_POINT,
                CKA_VERIFY,
            ],
        )?;
        let [id, label, key_type, modulus, exponent, params, point, verify] = values.as_slice()
        else {
            return Err(Error::BadCard);
        };
        let id = bytes(id).ok_or(Error::BadCard)?.to_vec();
        let (kind, public_key) = public_key(ulong(key_type), modulus, exponent, params, point)?;
        let _held = session.hold();
        let with_id = (CKA_ID, id.clone());
        let certificate = match session
            .find(vec![class_template(CKO_CERTIFICATE), with_id.clone()])?
            .first()
        {
            Some(&handle) => module
                .attributes(session.handle, handle, &[CKA_VALUE])?
                .first()
                .and_then(bytes)
                .map(|der| Certificate::new(der.to_vec())),
            None => None,
        };
        let capabilities = match session
            .find(vec![class_template(CKO_PRIVATE_KEY), with_id])?
            .first()
        {
            Some(&handle) => {
                let values = module.attributes(
                    session.handle,
                    handle,
                    &[CKA_SIGN, CKA_DECRYPT, CKA_DERIVE, CKA_ALWAYS_AUTHENTICATE],
                )?;
                let [sign, decrypt, derive, always] = values.as_slice() else {
                    return Err(Error::BadCard);
                };
                Some(Capabilities {
                    sign: flag(sign),
                    decrypt: flag(decrypt),
                    derive: flag(derive),
                    pin_every_use: flag(always),
                })
            }
            None => None,
        };
        Ok(Key {
            session: Arc::clone(session),
            label: String::from_utf8_lossy(bytes(label).unwrap_or_default()).into_owned(),
            id,
            kind,
            public_key,
            certificate,
            can_sign: flag(verify),
            capabilities,
        })
    }

    /// The key's label (e.g. `PIV AUTH key`), as PKCS#11 programs see it.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The key's ID (`CKA_ID`), shared with its certificate; what `pkcs11:`
    /// URIs name as `id=`.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The key's kind and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The certificate the card holds for the key, if any.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref()
    }

    /// Whether the card lets the key sign (known before the login).
    pub fn can_sign(&self) -> bool {
        self.can_sign
    }

    /// What the card lets the key do; `None` for a key behind the PIN while
    /// not logged in (as it was when [`Card::keys`](super::Card::keys) read it).
    pub fn capabilities(&self) -> Option<Capabilities> {
        self.capabilities
    }

    /// The key as an ECDSA P-256 signer; [`Error::Unsupported`] for another
    /// kind of key.
    pub fn p256_signer(&self) -> Result<P256Signer> {
        match &self.public_key {
            PublicKey::P256(verifying) => Ok(P256Signer::new(self.clone(), *verifying)),
            _ => Err(Error::Unsupported("not a P-256 key")),
        }
    }

    /// The key as an ECDSA P-384 signer; [`Error::Unsupported`] for another
    /// kind of key.
    pub fn p384_signer(&self) -> Result<P384Signer> {
        match &self.public_key {
            PublicKey::P384(verifying) => Ok(P384Signer::new(self.clone(), *verifying)),
            _ => Err(Error::Unsupported("not a P-384 key")),
        }
    }

    /// The key as an RSA PKCS#1 v1.5 signer hashing with `D`
    /// (`sha2::Sha256`, `Sha384` or `Sha512`).
    pub fn rsa_pkcs1v15_signer<D: RsaHash>(&self) -> Result<RsaPkcs1v15Signer<D>> {
        match &self.public_key {
            PublicKey::Rsa(public) => Ok(RsaPkcs1v15Signer::new(self.clone(), public.clone())),
            _ => Err(Error::Unsupported("not an RSA key")),
        }
    }

    /// The key as an RSA-PSS signer hashing with `D` (MGF1 with `D`, a salt
    /// as long as the hash).
    pub fn rsa_pss_signer<D: RsaHash>(&self) -> Result<RsaPssSigner<D>> {
        match &self.public_key {
            PublicKey::Rsa(public) => Ok(RsaPssSigner::new(self.clone(), public.clone())),
            _ => Err(Error::Unsupported("not an RSA key")),
        }
    }

    /// Signs `data` on the card with the PKCS#11 mechanism `mechanism`;
    /// the module checks the card's signature with the public key.
    pub(super) fn sign_on_card(
        &self,
        mechanism: CK_MECHANISM_TYPE,
        params: RawParams,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if !self.can_sign {
            return Err(Error::Unsupported("the card does not let this key sign"));
        }
        let mechanism = Mechanism::from_raw(mechanism, &params)?;
        let session = &self.session;
        let _held = session.hold();
        let private = session.find(vec![
            class_template(CKO_PRIVATE_KEY),
            (CKA_ID, self.id.clone()),
        ])?;
        let Some(&private) = private.first() else {
            return Err(Error::NotLoggedIn);
        };
        let signed = session
            .module
            .sign_init(session.handle, mechanism, private)
            .and_then(|()| session.module.sign(session.handle, data, Some(usize::MAX)));
        match signed {
            Ok(Output::Done(signature)) => Ok(signature),
            Ok(_) => Err(Error::BadCard),
            Err(ModuleError::UserNotLoggedIn) if session.logged_in()? => Err(Error::PinEveryUse),
            Err(
                ModuleError::KeyFunctionNotPermitted
                | ModuleError::KeyTypeInconsistent
                | ModuleError::MechanismInvalid,
            ) => Err(Error::Unsupported(
                "the card does not let this key sign this way",
            )),
            Err(other) => Err(other.into()),
        }
    }
}

/// The kind and parsed public key from a public key object's attributes.
fn public_key(
    key_type: Option<CK_KEY_TYPE>,
    modulus: &Option<AttrValue>,
    exponent: &Option<AttrValue>,
    params: &Option<AttrValue>,
    point: &Option<AttrValue>,
) -> Result<(KeyKind, PublicKey)> {
    let ec_point = || bytes(point).and_then(octet_string).ok_or(Error::BadCard);
    match key_type {
        Some(CKK_RSA) => {
            let (Some(modulus), Some(exponent)) = (bytes(modulus), bytes(exponent)) else {
                return Err(Error::BadCard);
            };
            let public = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(modulus),
                rsa::BigUint::from_bytes_be(exponent),
            )
            .map_err(|_| Error::BadCard)?;
            let bits = rsa::traits::PublicKeyParts::n(&public).bits();
            Ok((KeyKind::Rsa { bits }, PublicKey::Rsa(public)))
        }
        Some(CKK_EC) => match bytes(params) {
            Some(OID_P256) => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&ec_point()?)
                    .map_err(|_| Error::BadCard)?;
                Ok((KeyKind::Ec(EcCurve::P256), PublicKey::P256(key)))
            }
            Some(OID_P384) => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&ec_point()?)
                    .map_err(|_| Error::BadCard)?;
                Ok((KeyKind::Ec(EcCurve::P384), PublicKey::P384(key)))
            }
            _ => Err(Error::BadCard),
        },
        Some(CKK_EC_EDWARDS) => Ok((KeyKind::Ed25519, PublicKey::Other)),
        Some(CKK_EC_MONTGOMERY) => Ok((KeyKind::X25519, PublicKey::Other)),
        _ => Err(Error::BadCard),
    }
}
