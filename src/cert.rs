//! X.509 certificates and public keys, as far as a token needs them:
//! subject, issuer, serial number and the public key (RSA, EC P-256/P-384,
//! Ed25519, X25519).

use der::{Decode, Encode};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use thiserror::Error;

/// A certificate or key that p11card cannot use.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CertError {
    /// Not a DER X.509 certificate.
    #[error("not a valid X.509 certificate")]
    Malformed,
    /// The public key algorithm or curve is not supported.
    #[error("unsupported public key algorithm")]
    UnsupportedKey,
}

/// `rsaEncryption` (RFC 8017).
const OID_RSA: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480).
const OID_EC: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `id-Ed25519` (RFC 8410).
const OID_ED25519: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-X25519` (RFC 8410).
const OID_X25519: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.101.110");
/// `commonName` (X.520).
const OID_CN: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");

/// Elliptic curves the module supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

impl Curve {
    /// The named-curve OID, DER encoded (`CKA_EC_PARAMS`).
    pub fn params_der(self) -> &'static [u8] {
        match self {
            Curve::P256 => &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
            Curve::P384 => &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22],
        }
    }

    /// Size of a field element (and of the group order) in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    /// Length of the group order in bytes. Both curves' orders are a
    /// whole number of bytes long (256 and 384 bits), so the leftmost bits
    /// of a hash that FIPS 186-4 §6.4 keeps are its leftmost bytes.
    pub fn order_len(self) -> usize {
        self.field_len()
    }

    /// The curve for a named-curve OID.
    pub fn from_oid(oid: &der::asn1::ObjectIdentifier) -> Option<Curve> {
        match oid.to_string().as_str() {
            "1.2.840.10045.3.1.7" => Some(Curve::P256),
            "1.3.132.0.34" => Some(Curve::P384),
            _ => None,
        }
    }
}

/// A public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: big-endian modulus and public exponent, no leading zeros.
    Rsa {
        /// The modulus n.
        modulus: Vec<u8>,
        /// The public exponent e.
        public_exponent: Vec<u8>,
    },
    /// EC: the curve and the uncompressed point `04 || x || y`.
    Ec {
        /// The curve.
        curve: Curve,
        /// The uncompressed point.
        point: Vec<u8>,
    },
    /// Ed25519 (RFC 8032), a `CKK_EC_EDWARDS` key.
    Ed25519 {
        /// The 32-byte public key.
        point: Vec<u8>,
    },
    /// X25519 (RFC 7748), a `CKK_EC_MONTGOMERY` key.
    X25519 {
        /// The 32-byte u-coordinate.
        point: Vec<u8>,
    },
}

/// `CKA_EC_PARAMS` of Ed25519: the `id-Ed25519` OID (RFC 8410), the form
/// PKCS#11 3.0 §2.3.10 names.
const PARAMS_ED25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];
/// `CKA_EC_PARAMS` of X25519: the `id-X25519` OID (RFC 8410).
const PARAMS_X25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x6E];

impl PublicKey {
    /// The key size in bits (RSA modulus bits, EC field bits).
    pub fn bits(&self) -> usize {
        match self {
            PublicKey::Rsa { modulus, .. } => {
                let first = modulus
                    .iter()
                    .position(|&b| b != 0)
                    .unwrap_or(modulus.len());
                let rest = &modulus[first..];
                match rest.first() {
                    Some(top) => rest.len() * 8 - top.leading_zeros() as usize,
                    None => 0,
                }
            }
            PublicKey::Ec { curve, .. } => curve.field_len() * 8,
            PublicKey::Ed25519 { .. } | PublicKey::X25519 { .. } => 255,
        }
    }

    /// Length of a signature made with the key, in PKCS#11 form (for an
    /// X25519 key: the length of a shared secret).
    pub fn signature_len(&self) -> usize {
        match self {
            PublicKey::Rsa { .. } => self.bits().div_ceil(8),
            PublicKey::Ec { curve, .. } => 2 * curve.field_len(),
            PublicKey::Ed25519 { .. } => 64,
            PublicKey::X25519 { .. } => 32,
        }
    }

    /// `CKA_EC_PARAMS` (DER), for the elliptic-curve key types.
    pub fn ec_params(&self) -> Option<&'static [u8]> {
        match self {
            PublicKey::Rsa { .. } => None,
            PublicKey::Ec { curve, .. } => Some(curve.params_der()),
            PublicKey::Ed25519 { .. } => Some(PARAMS_ED25519),
            PublicKey::X25519 { .. } => Some(PARAMS_X25519),
        }
    }

    /// The public point as PKCS#11 puts it in `CKA_EC_POINT` (before the
    /// DER OCTET STRING): uncompressed for the NIST curves, the raw 32
    /// bytes for Ed25519 and X25519.
    pub fn ec_point(&self) -> Option<&[u8]> {
        match self {
            PublicKey::Rsa { .. } => None,
            PublicKey::Ec { point, .. }
            | PublicKey::Ed25519 { point }
            | PublicKey::X25519 { point } => Some(point),
        }
    }

    /// Whether this is an RSA key.
    pub fn is_rsa(&self) -> bool {
        matches!(self, PublicKey::Rsa { .. })
    }

    /// The `rsa` crate's key, for software operations.
    pub fn to_rsa(&self) -> Option<rsa::RsaPublicKey> {
        match self {
            PublicKey::Rsa {
                modulus,
                public_exponent,
            } => rsa::RsaPublicKey::new_with_max_size(
                rsa::BigUint::from_bytes_be(modulus),
                rsa::BigUint::from_bytes_be(public_exponent),
                16_384,
            )
            .ok(),
            _ => None,
        }
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<PublicKey, CertError> {
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or(CertError::Malformed)?;
        if spki.algorithm.oid == OID_RSA {
            let key = rsa::RsaPublicKey::from_pkcs1_der(bits).map_err(|_| CertError::Malformed)?;
            Ok(PublicKey::Rsa {
                modulus: key.n().to_bytes_be(),
                public_exponent: key.e().to_bytes_be(),
            })
        } else if spki.algorithm.oid == OID_EC {
            let curve_oid: der::asn1::ObjectIdentifier = spki
                .algorithm
                .parameters
                .as_ref()
                .ok_or(CertError::Malformed)?
                .decode_as()
                .map_err(|_| CertError::UnsupportedKey)?;
            let curve = Curve::from_oid(&curve_oid).ok_or(CertError::UnsupportedKey)?;
            if bits.len() != 1 + 2 * curve.field_len() || bits[0] != 0x04 {
                return Err(CertError::UnsupportedKey);
            }
            Ok(PublicKey::Ec {
                curve,
                point: bits.to_vec(),
            })
        } else if spki.algorithm.oid == OID_ED25519 && bits.len() == 32 {
            Ok(PublicKey::Ed25519 {
                point: bits.to_vec(),
            })
        } else if spki.algorithm.oid == OID_X25519 && bits.len() == 32 {
            Ok(PublicKey::X25519 {
                point: bits.to_vec(),
            })
        } else {
            Err(CertError::UnsupportedKey)
        }
    }
}

/// The parts of an X.509 certificate a token exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The whole certificate (`CKA_VALUE`).
    pub der: Vec<u8>,
    /// DER of the subject Name (`CKA_SUBJECT`).
    pub subject: Vec<u8>,
    /// DER of the issuer Name (`CKA_ISSUER`).
    pub issuer: Vec<u8>,
    /// DER of the serial number INTEGER (`CKA_SERIAL_NUMBER`).
    pub serial_number: Vec<u8>,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
    /// The certified public key.
    pub public_key: PublicKey,
}

/// Parses a DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<CertificateInfo, CertError> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|_| CertError::Malformed)?;
    let tbs = &cert.tbs_certificate;
    fn encode(value: &impl Encode) -> Result<Vec<u8>, CertError> {
        value.to_der().map_err(|_| CertError::Malformed)
    }
    let common_name = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == OID_CN)
        .map(|atv| String::from_utf8_lossy(atv.value.value()).into_owned());
    Ok(CertificateInfo {
        der: der.to_vec(),
        subject: encode(&tbs.subject)?,
        issuer: encode(&tbs.issuer)?,
        serial_number: encode(&tbs.serial_number)?,
        common_name,
        public_key: PublicKey::from_spki(&tbs.subject_public_key_info)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_certificate(&[]), Err(CertError::Malformed));
        assert_eq!(
            parse_certificate(&[0x30, 0x03, 1, 2, 3]),
            Err(CertError::Malformed)
        );
    }

    #[test]
    fn counts_rsa_modulus_bits() {
        let key = PublicKey::Rsa {
            modulus: vec![0x00, 0x7F, 0xFF],
            public_exponent: vec![1, 0, 1],
        };
        assert_eq!(key.bits(), 15);
        assert_eq!(key.signature_len(), 2);
    }
}
