//! Certificate directories (CDF: certificates, trusted and useful ones)
//! and the data object directory (DODF).

use super::ber::{self, Reader};
use super::common::{
    parse_objects, CommonObjectAttributes, Directory, Identifier, ObjectParts, ObjectValue,
};
use super::Pkcs15Error;

/// An X.509 certificate of a CDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Label and flags.
    pub object: CommonObjectAttributes,
    /// `iD`: that of the certificate's key.
    pub id: Identifier,
    /// `authority`: a CA certificate.
    pub authority: bool,
    /// A path to the certificate's file, or its DER
    /// ([`ObjectValue::Direct`]).
    pub value: ObjectValue,
}

impl Certificate {
    fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let parts = ObjectParts::parse(value, "certificate object")?;
        let mut class = Reader::new(parts.class, "CommonCertificateAttributes");
        let id = Identifier::parse(
            class.required(0x04, "CommonCertificateAttributes.iD")?,
            "CommonCertificateAttributes.iD",
        )?;
        let authority = match class.optional(0x01)? {
            Some(authority) => ber::boolean(authority, "CommonCertificateAttributes.authority")?,
            None => false,
        };
        class.skip_rest()?;
        let mut attributes = Reader::new(
            parts.type_sequence("X509CertificateAttributes")?,
            "X509CertificateAttributes",
        );
        let value = ObjectValue::read(&mut attributes, "X509CertificateAttributes.value")?;
        attributes.skip_rest()?;
        Ok(Certificate {
            object: parts.common,
            id,
            authority,
            value,
        })
    }
}

/// Reads a CDF (certificates, trusted or useful certificates): its X.509
/// certificates. Other kinds (attribute, SPKI, PGP, WTLS, X9.68, card
/// verifiable certificates) are skipped; filler after the objects is
/// ignored.
pub fn parse_cdf(data: &[u8]) -> Result<Directory<Certificate>, Pkcs15Error> {
    parse_objects(data, "CDF", |element| match element.tag {
        0x30 => Certificate::parse(element.value).map(Some),
        _ => Ok(None),
    })
}

/// An opaque data object of the DODF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataObject {
    /// Label, flags, and the `authId` of the PIN needed to read it.
    pub object: CommonObjectAttributes,
    /// `applicationName` (`CKA_APPLICATION`).
    pub application_name: Option<String>,
    /// `applicationOID` (`CKA_OBJECT_ID`).
    pub application_oid: Option<der::asn1::ObjectIdentifier>,
    /// Where the data is, or the data itself.
    pub value: ObjectValue,
}

impl DataObject {
    fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let parts = ObjectParts::parse(value, "data object")?;
        let mut class = Reader::new(parts.class, "CommonDataObjectAttributes");
        let application_name = class.optional(0x0C)?.map(ber::label);
        let application_oid = match class.optional(0x06)? {
            Some(oid) => Some(ber::object_identifier(oid, "applicationOID")?),
            None => None,
        };
        class.skip_rest()?;
        let value = ObjectValue::parse(parts.type_element("data object value")?)?;
        Ok(DataObject {
            object: parts.common,
            application_name,
            application_oid,
            value,
        })
    }
}

/// Reads a DODF: its opaque data objects. External and OID-typed data
/// objects are skipped; filler after the objects is ignored.
pub fn parse_dodf(data: &[u8]) -> Result<Directory<DataObject>, Pkcs15Error> {
    parse_objects(data, "DODF", |element| match element.tag {
        0x30 => DataObject::parse(element.value).map(Some),
        _ => Ok(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_certificates() {
        let data = [
            0x30, 0x1D, // x509Certificate
            0x30, 0x06, 0x0C, 0x04, b'C', b'e', b'r', b't', // label "Cert"
            0x30, 0x03, 0x04, 0x01, 0x45, // iD 45
            0xA1, 0x0E, 0x30, 0x0C, // X509CertificateAttributes
            0x30, 0x0A, 0x04, 0x02, 0x43, 0x01, // value: path 4301,
            0x02, 0x01, 0x00, 0x80, 0x01, 0x7F, // index 0, length 127
            0x30, 0x12, // x509Certificate, a CA's, by value
            0x30, 0x00, // CommonObjectAttributes
            0x30, 0x06, 0x04, 0x01, 0x46, 0x01, 0x01, 0xFF, // iD 46, authority
            0xA1, 0x06, 0x30, 0x04, // X509CertificateAttributes
            0xA0, 0x02, 0x30, 0x00, // value: direct [0] (a dummy certificate)
            0xA2, 0x00, // [2] pgpCertificate: skipped
        ];
        let certificates = parse_cdf(&data).unwrap().objects;
        assert_eq!(certificates.len(), 2);
        let user = &certificates[0];
        assert_eq!(user.object.label.as_deref(), Some("Cert"));
        assert_eq!(user.id, Identifier(vec![0x45]));
        assert!(!user.authority);
        let ObjectValue::Path(path) = &user.value else {
            panic!()
        };
        assert_eq!((path.index, path.length), (Some(0), Some(127)));
        let ca = &certificates[1];
        assert!(ca.authority);
        assert_eq!(ca.value, ObjectValue::Direct(vec![0x30, 0x00]));
    }

    #[test]
    fn refuses_a_certificate_without_id() {
        let data = [
            0x30, 0x0A, 0x30, 0x00, 0x30, 0x00, // no iD
            0xA1, 0x04, 0x30, 0x02, 0xA0, 0x00,
        ];
        assert_eq!(
            crate::pkcs15::rejected(parse_cdf(&data)),
            Pkcs15Error::Missing("CommonCertificateAttributes.iD")
        );
    }

    #[test]
    fn reads_data_objects() {
        let data = [
            0x30, 0x1A, // opaqueDO
            0x30, 0x04, 0x03, 0x02, 0x06, 0x40, // flags: modifiable
            0x30, 0x0A, // CommonDataObjectAttributes
            0x0C, 0x03, b'a', b'p', b'p', // applicationName "app"
            0x06, 0x03, 0x2A, 0x03, 0x04, // applicationOID 1.2.3.4
            0xA1, 0x06, 0x30, 0x04, 0x04, 0x02, 0x46, 0x01, // value: path 4601
            0xA1, 0x00, // [1] oidDO: skipped
        ];
        let objects = parse_dodf(&data).unwrap().objects;
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].application_name.as_deref(), Some("app"));
        assert_eq!(objects[0].application_oid.unwrap().to_string(), "1.2.3.4");
        assert!(objects[0].object.flags.modifiable);
        let ObjectValue::Path(path) = &objects[0].value else {
            panic!()
        };
        assert_eq!(path.efid_or_path, [0x46, 0x01]);
    }
}
