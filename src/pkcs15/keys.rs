//! Private and public key directories (PrKDF, PuKDF): RSA and EC keys.

use super::ber::{self, Element, Reader};
use super::common::{
    parse_objects, CommonKeyAttributes, CommonObjectAttributes, Directory, ObjectParts, ObjectValue,
};
use super::Pkcs15Error;

/// The largest RSA modulus or EC field size read, in bits.
const MAX_KEY_BITS: u32 = 16_384;

/// A key's algorithm and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA (`privateRSAKey`, `publicRSAKey`).
    Rsa {
        /// `modulusLength`, in bits.
        modulus_bits: u32,
    },
    /// EC (`[0] privateECKey`, `[0] publicECKey`).
    Ec {
        /// The field size in bits, where the card gives it (`fieldSize`,
        /// the INTEGER after the value that OpenSC writes). As in OpenSC,
        /// a first INTEGER there is read as the field size, although
        /// ISO/IEC 7816-15 would make it a `keyInfo` reference.
        field_bits: Option<u32>,
        /// The named curve, where the card gives it (an OID in the
        /// SEQUENCE after the value: ISO/IEC 7816-15 `keyInfo` parameters,
        /// or the curve some national eID cards write there).
        curve: Option<der::asn1::ObjectIdentifier>,
    },
}

/// A size in bits: from 1 to [`MAX_KEY_BITS`].
fn key_bits(value: &[u8], what: &'static str) -> Result<u32, Pkcs15Error> {
    match ber::unsigned(value, what)? {
        bits @ 1..=MAX_KEY_BITS => Ok(bits),
        _ => Err(Pkcs15Error::OutOfRange(what)),
    }
}

/// Reads RSA or EC type attributes (the SEQUENCE inside `[1]`): the
/// value and the algorithm.
fn key_attributes(
    choice_tag: u32,
    attributes: &[u8],
) -> Result<(ObjectValue, KeyAlgorithm), Pkcs15Error> {
    let mut reader = Reader::new(attributes, "key attributes");
    let value = ObjectValue::read(&mut reader, "key attributes.value")?;
    let algorithm = if choice_tag == 0x30 {
        let modulus = reader.required(0x02, "RSA key attributes.modulusLength")?;
        KeyAlgorithm::Rsa {
            modulus_bits: key_bits(modulus, "RSA key attributes.modulusLength")?,
        }
    } else {
        let field_bits = match reader.optional(0x02)? {
            Some(size) => Some(key_bits(size, "EC key attributes.fieldSize")?),
            None => None,
        };
        reader.optional(0x02)?; // keyInfo reference
        let mut curve = None;
        if let Some(parameters) = reader.optional(0x30)? {
            let mut inner = Reader::new(parameters, "EC key attributes.keyInfo");
            if let Some(oid) = inner.optional(0x06)? {
                curve = Some(ber::object_identifier(oid, "EC key attributes.curve")?);
            }
            inner.skip_rest()?;
        }
        KeyAlgorithm::Ec { field_bits, curve }
    };
    reader.skip_rest()?;
    Ok((value, algorithm))
}

/// The parts shared by private and public key objects.
struct KeyObject {
    object: CommonObjectAttributes,
    key: CommonKeyAttributes,
    value: ObjectValue,
    algorithm: KeyAlgorithm,
}

/// Reads an RSA (`30`) or EC (`A0`) key object; `None` for other kinds.
fn key_object(element: Element<'_>, what: &'static str) -> Result<Option<KeyObject>, Pkcs15Error> {
    if element.tag != 0x30 && element.tag != 0xA0 {
        return Ok(None);
    }
    let parts = ObjectParts::parse(element.value, what)?;
    let key = CommonKeyAttributes::parse(parts.class)?;
    let (value, algorithm) = key_attributes(element.tag, parts.type_sequence(what)?)?;
    Ok(Some(KeyObject {
        object: parts.common,
        key,
        value,
        algorithm,
    }))
}

/// A private key of the PrKDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKey {
    /// Label, flags, and the `authId` of the PIN that guards the key.
    pub object: CommonObjectAttributes,
    /// iD, usage, access flags, key reference.
    pub key: CommonKeyAttributes,
    /// Where the key is: for most cards the path of the key file, or of
    /// the DF the key reference is relative to.
    pub value: ObjectValue,
    /// RSA or EC, and the size.
    pub algorithm: KeyAlgorithm,
}

/// Reads a PrKDF: its RSA and EC keys. Other key kinds (DH, DSA, KEA,
/// GOST, generic) are skipped; filler after the objects is ignored.
pub fn parse_prkdf(data: &[u8]) -> Result<Directory<PrivateKey>, Pkcs15Error> {
    parse_objects(data, "PrKDF", |element| {
        Ok(
            key_object(element, "private key object")?.map(|key| PrivateKey {
                object: key.object,
                key: key.key,
                value: key.value,
                algorithm: key.algorithm,
            }),
        )
    })
}

/// A public key of a PuKDF (public or trusted public keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Label and flags.
    pub object: CommonObjectAttributes,
    /// iD (that of the private key), usage.
    pub key: CommonKeyAttributes,
    /// A path to the key's file, or the key itself ([`ObjectValue::Direct`]).
    pub value: ObjectValue,
    /// RSA or EC, and the size.
    pub algorithm: KeyAlgorithm,
}

/// Reads a PuKDF: its RSA and EC keys. Other key kinds are skipped;
/// filler after the objects is ignored.
pub fn parse_pukdf(data: &[u8]) -> Result<Directory<PublicKey>, Pkcs15Error> {
    parse_objects(data, "PuKDF", |element| {
        Ok(
            key_object(element, "public key object")?.map(|key| PublicKey {
                object: key.object,
                key: key.key,
                value: key.value,
                algorithm: key.algorithm,
            }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkcs15::{Identifier, KeyUsage};

    /// An RSA key, an EC key and a DSA key (skipped), then filler.
    const PRKDF: [u8; 112] = [
        0x30, 0x37, // privateRSAKey
        0x30, 0x0F, // CommonObjectAttributes
        0x0C, 0x03, b'R', b'S', b'A', // label "RSA"
        0x03, 0x02, 0x07, 0x80, // flags: private
        0x04, 0x01, 0x01, // authId 01
        0x02, 0x01, 0x01, // userConsent 1
        0x30, 0x13, // CommonKeyAttributes
        0x04, 0x02, 0x45, 0x01, // iD 4501
        0x03, 0x03, 0x06, 0x20, 0x40, // usage: sign, nonRepudiation
        0x01, 0x01, 0x00, // native FALSE
        0x03, 0x02, 0x03,
        0xB8, // accessFlags: sensitive, alwaysSensitive, neverExtractable, local
        0x02, 0x01, 0x02, // keyReference 2
        0xA1, 0x0F, 0x30, 0x0D, // PrivateRSAKeyAttributes
        0x30, 0x06, 0x04, 0x04, 0x3F, 0x00, 0x50, 0x15, // value: path 3F00 5015
        0x02, 0x03, 0x00, 0x80, 0x00, // modulusLength 32768: too long (fixed below)
        0xA0, 0x31, // [0] privateECKey (implicit: the object's fields)
        0x30, 0x07, // CommonObjectAttributes
        0x0C, 0x02, b'E', b'C', // label "EC"
        0x04, 0x01, 0x02, // authId 02
        0x30, 0x0C, // CommonKeyAttributes
        0x04, 0x01, 0x46, // iD 46
        0x03, 0x02, 0x05, 0x20, // usage: sign
        0xA1, 0x03, 0x02, 0x01, 0x03, // algReference [1] { 3 }
        0xA0, 0x02, 0x30, 0x00, // subClassAttributes [0] (skipped)
        0xA1, 0x14, 0x30, 0x12, // PrivateECKeyAttributes
        0x30, 0x00, // value: empty path (the key is named by its reference)
        0x02, 0x02, 0x01, 0x00, // fieldSize 256
        0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, // P-256
        0xA2, 0x00, // [2] privateDSAKey: skipped
        0x00, 0x00, // filler
    ];

    fn fixed_prkdf() -> Vec<u8> {
        let mut data = PRKDF.to_vec();
        // modulusLength 02 03 00 80 00 -> 02 03 00 08 00 (2048).
        data[54..57].copy_from_slice(&[0x00, 0x08, 0x00]);
        data
    }

    #[test]
    fn refuses_an_oversized_modulus() {
        assert_eq!(
            crate::pkcs15::rejected(parse_prkdf(&PRKDF)),
            Pkcs15Error::OutOfRange("RSA key attributes.modulusLength")
        );
    }

    #[test]
    fn reads_rsa_and_ec_private_keys() {
        let keys = parse_prkdf(&fixed_prkdf()).unwrap().objects;
        assert_eq!(keys.len(), 2);
        let rsa = &keys[0];
        assert_eq!(rsa.object.label.as_deref(), Some("RSA"));
        assert!(rsa.object.flags.private);
        assert_eq!(rsa.object.auth_id, Some(Identifier(vec![0x01])));
        assert_eq!(rsa.object.user_consent, Some(1));
        assert_eq!(rsa.key.id, Identifier(vec![0x45, 0x01]));
        assert_eq!(
            rsa.key.usage,
            KeyUsage {
                sign: true,
                non_repudiation: true,
                ..KeyUsage::default()
            }
        );
        assert!(!rsa.key.native);
        let access = rsa.key.access_flags.unwrap();
        assert!(access.sensitive && access.always_sensitive && access.never_extractable);
        assert!(access.local && !access.extractable);
        assert_eq!(rsa.key.key_reference, Some(2));
        assert_eq!(rsa.algorithm, KeyAlgorithm::Rsa { modulus_bits: 2048 });
        let ObjectValue::Path(path) = &rsa.value else {
            panic!("{:?}", rsa.value)
        };
        assert_eq!(path.efid_or_path, [0x3F, 0x00, 0x50, 0x15]);

        let ec = &keys[1];
        assert_eq!(ec.object.label.as_deref(), Some("EC"));
        assert!(!ec.object.flags.private);
        assert_eq!(ec.object.user_consent, None);
        assert_eq!(ec.key.id, Identifier(vec![0x46]));
        assert!(ec.key.native);
        assert_eq!(ec.key.access_flags, None);
        assert_eq!(ec.key.key_reference, None);
        assert_eq!(ec.key.algorithm_references, [3]);
        assert_eq!(ec.value, ObjectValue::Path(Default::default()));
        let KeyAlgorithm::Ec { field_bits, curve } = &ec.algorithm else {
            panic!()
        };
        assert_eq!(*field_bits, Some(256));
        assert_eq!(curve.unwrap().to_string(), "1.2.840.10045.3.1.7");
    }

    #[test]
    fn refuses_keys_without_required_fields() {
        // RSA attributes without modulusLength: 30 xx ... A1 04 30 02 30 00
        let key = [
            0x30, 0x10, 0x30, 0x00, // no common object attributes
            0x30, 0x06, 0x04, 0x01, 0x01, 0x03, 0x01, 0x00, // iD 01, usage none
            0xA1, 0x04, 0x30, 0x02, 0x30, 0x00, // value only
        ];
        assert_eq!(
            crate::pkcs15::rejected(parse_prkdf(&key)),
            Pkcs15Error::Missing("RSA key attributes.modulusLength")
        );
        // No usage.
        let key = [
            0x30, 0x10, 0x30, 0x00, 0x30, 0x03, 0x04, 0x01, 0x01, // iD only
            0xA1, 0x07, 0x30, 0x05, 0x30, 0x00, 0x02, 0x01, 0x10,
        ];
        assert_eq!(
            crate::pkcs15::rejected(parse_prkdf(&key)),
            Pkcs15Error::Missing("CommonKeyAttributes.usage")
        );
        // No type attributes.
        let key = [
            0x30, 0x09, 0x30, 0x00, 0x30, 0x05, 0x04, 0x00, 0x03, 0x01, 0x00,
        ];
        assert_eq!(
            crate::pkcs15::rejected(parse_prkdf(&key)),
            Pkcs15Error::Missing("private key object")
        );
    }

    #[test]
    fn reads_public_keys_by_value_and_by_path() {
        let data = [
            0x30, 0x20, // publicRSAKey
            0x30, 0x00, // CommonObjectAttributes
            0x30, 0x06, 0x04, 0x01, 0x01, 0x03, 0x01, 0x00, // iD 01, usage none
            0xA1, 0x14, 0x30, 0x12, // PublicRSAKeyAttributes
            0xA0, 0x0C, // value: direct [0]
            0x30, 0x0A, 0x02, 0x03, 0x00, 0xC0, 0x01, 0x02, 0x03, 0x01, 0x00,
            0x01, // RSAPublicKey
            0x02, 0x02, 0x04, 0x00, // modulusLength 1024
            0xA0, 0x16, // publicECKey
            0x30, 0x00, // CommonObjectAttributes
            0x30, 0x06, 0x04, 0x01, 0x02, 0x03, 0x01, 0x00, // iD 02
            0xA1, 0x0A, 0x30, 0x08, // PublicECKeyAttributes
            0x30, 0x06, 0x04, 0x04, 0x3F, 0x00, 0x50, 0x15, // value: path
        ];
        let keys = parse_pukdf(&data).unwrap().objects;
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].algorithm, KeyAlgorithm::Rsa { modulus_bits: 1024 });
        let ObjectValue::Direct(direct) = &keys[0].value else {
            panic!()
        };
        assert_eq!(direct[..2], [0x30, 0x0A]);
        assert_eq!(
            keys[1].algorithm,
            KeyAlgorithm::Ec {
                field_bits: None,
                curve: None
            }
        );
        assert!(matches!(keys[1].value, ObjectValue::Path(_)));
    }
}
