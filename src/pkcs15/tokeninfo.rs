//! EF.TokenInfo: the token's label, serial number, manufacturer, flags,
//! supported algorithms and last update.

use super::ber::{self, Reader};
use super::common::named_bits;
use super::Pkcs15Error;

/// Most `supportedAlgorithms` entries read.
const MAX_ALGORITHMS: usize = 64;
/// Longest serial number read.
const MAX_SERIAL: usize = 255;

named_bits! {
    /// `TokenFlags`.
    TokenFlags {
        /// The token cannot be written.
        readonly = 0,
        /// Objects can only be used after login.
        login_required = 1,
        /// The card generates random numbers.
        prn_generation = 2,
        /// The token follows the eID profile of PKCS#15.
        eid_compliant = 3,
    }
}

named_bits! {
    /// `supportedOperations` of an algorithm.
    AlgorithmOperations {
        /// Compute a checksum (MAC).
        compute_checksum = 0,
        /// Compute a signature.
        compute_signature = 1,
        /// Verify a checksum.
        verify_checksum = 2,
        /// Verify a signature.
        verify_signature = 3,
        /// Encipher.
        encipher = 4,
        /// Decipher.
        decipher = 5,
        /// Hash.
        hash = 6,
        /// Generate a key.
        generate_key = 7,
    }
}

/// One `AlgorithmInfo` of `supportedAlgorithms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmInfo {
    /// `reference`: how keys' `algReference` name this entry.
    pub reference: u32,
    /// `algorithm`: the PKCS#11 mechanism (`CKM_*`).
    pub algorithm: u32,
    /// `parameters`, when an OBJECT IDENTIFIER (an EC curve).
    pub parameters: Option<der::asn1::ObjectIdentifier>,
    /// `supportedOperations`.
    pub operations: AlgorithmOperations,
    /// `objId`: the algorithm's OID.
    pub object_id: Option<der::asn1::ObjectIdentifier>,
    /// `algRef`: the card's own algorithm reference (for MSE:SET).
    pub algorithm_reference: Option<u32>,
}

impl AlgorithmInfo {
    fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let mut reader = Reader::new(value, "AlgorithmInfo");
        let reference = ber::reference(
            reader.required(0x02, "AlgorithmInfo.reference")?,
            "AlgorithmInfo.reference",
        )?;
        let algorithm = ber::unsigned(
            reader.required(0x02, "AlgorithmInfo.algorithm")?,
            "AlgorithmInfo.algorithm",
        )?;
        // The parameters (NULL for RSA, a curve for EC) sit before the
        // operations BIT STRING; OpenSC writes none at times.
        let mut parameters = None;
        if !matches!(reader.peek_tag()?, Some(0x03) | None) {
            if let Some(element) = reader.next()? {
                if element.tag == 0x06 {
                    parameters = Some(ber::object_identifier(
                        element.value,
                        "AlgorithmInfo.parameters",
                    )?);
                }
            }
        }
        let operations = AlgorithmOperations::from_bits(ber::bits(
            reader.required(0x03, "AlgorithmInfo.supportedOperations")?,
            "AlgorithmInfo.supportedOperations",
        )?);
        let object_id = match reader.optional(0x06)? {
            Some(oid) => Some(ber::object_identifier(oid, "AlgorithmInfo.objId")?),
            None => None,
        };
        let algorithm_reference = match reader.optional(0x02)? {
            Some(reference) => Some(ber::reference(reference, "AlgorithmInfo.algRef")?),
            None => None,
        };
        reader.skip_rest()?;
        Ok(AlgorithmInfo {
            reference,
            algorithm,
            parameters,
            operations,
            object_id,
            algorithm_reference,
        })
    }
}

/// EF.TokenInfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenInfo {
    /// `version` (0: v1).
    pub version: u32,
    /// `serialNumber`: required by the ASN.1, absent on some cards (as
    /// OpenSC allows).
    pub serial_number: Option<Vec<u8>>,
    /// `manufacturerID`.
    pub manufacturer_id: Option<String>,
    /// `label` (`[0]`).
    pub label: Option<String>,
    /// `tokenflags`.
    pub flags: TokenFlags,
    /// `supportedAlgorithms` (`[2]`), in the card's order.
    pub supported_algorithms: Vec<AlgorithmInfo>,
    /// `issuerId` (`[3]`).
    pub issuer_id: Option<String>,
    /// `holderId` (`[4]`).
    pub holder_id: Option<String>,
    /// `lastUpdate` (`[5]`) when the card writes the time itself (not a
    /// reference to a file), as its GeneralizedTime text.
    pub last_update: Option<String>,
    /// `preferredLanguage` (RFC 1766 tag).
    pub preferred_language: Option<String>,
}

/// Reads EF.TokenInfo (default `5032` in the application DF): its first
/// element; what follows it in the file is ignored (cards leave the rest
/// of an older, longer TokenInfo there).
pub fn parse_token_info(data: &[u8]) -> Result<TokenInfo, Pkcs15Error> {
    let (element, _) = ber::read_element(data, "TokenInfo")?;
    if element.tag != 0x30 {
        return Err(Pkcs15Error::UnexpectedTag {
            what: "TokenInfo",
            expected: 0x30,
            found: element.tag,
        });
    }
    let mut reader = Reader::new(element.value, "TokenInfo");
    let mut info = TokenInfo {
        version: ber::unsigned(
            reader.required(0x02, "TokenInfo.version")?,
            "TokenInfo.version",
        )?,
        ..TokenInfo::default()
    };
    if let Some(serial) = reader.optional(0x04)? {
        info.serial_number = Some(ber::octets(serial, MAX_SERIAL, "TokenInfo.serialNumber")?);
    }
    if let Some(manufacturer) = reader.optional(0x0C)? {
        info.manufacturer_id = Some(ber::label(manufacturer));
    }
    if let Some(label) = reader.optional(0x80)? {
        info.label = Some(ber::label(label));
    } else if let Some(explicit) = reader.optional(0xA0)? {
        // [0] written explicitly around the UTF8String (Taiwan's eID card,
        // as OpenSC notes).
        let mut inner = Reader::new(explicit, "TokenInfo.label");
        info.label = Some(ber::label(inner.required(0x0C, "TokenInfo.label")?));
    }
    info.flags = TokenFlags::from_bits(ber::bits(
        reader.required(0x03, "TokenInfo.tokenflags")?,
        "TokenInfo.tokenflags",
    )?);
    reader.optional(0x30)?; // seInfo
    reader.optional(0xA1)?; // recordInfo
    if let Some(algorithms) = reader.optional(0xA2)? {
        let mut inner = Reader::new(algorithms, "TokenInfo.supportedAlgorithms");
        while let Some(algorithm) = inner.next()? {
            if info.supported_algorithms.len() == MAX_ALGORITHMS {
                return Err(Pkcs15Error::TooMany {
                    what: "TokenInfo.supportedAlgorithms",
                    limit: MAX_ALGORITHMS,
                });
            }
            if algorithm.tag != 0x30 {
                return Err(Pkcs15Error::UnexpectedTag {
                    what: "AlgorithmInfo",
                    expected: 0x30,
                    found: algorithm.tag,
                });
            }
            info.supported_algorithms
                .push(AlgorithmInfo::parse(algorithm.value)?);
        }
    }
    if let Some(issuer) = reader.optional(0x83)? {
        info.issuer_id = Some(ber::label(issuer));
    }
    if let Some(holder) = reader.optional(0x84)? {
        info.holder_id = Some(ber::label(holder));
    }
    if let Some(last_update) = reader.optional(0xA5)? {
        let mut inner = Reader::new(last_update, "TokenInfo.lastUpdate");
        if let Some(time) = inner.optional(0x18)? {
            info.last_update = Some(ber::generalized_time(time, "TokenInfo.lastUpdate")?);
        }
        inner.skip_rest()?;
    }
    if let Some(language) = reader.optional(0x13)? {
        info.preferred_language = Some(ber::label(language));
    }
    reader.skip_rest()?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_field() {
        let data = [
            0x30, 0x64, // TokenInfo
            0x02, 0x01, 0x00, // version v1
            0x04, 0x02, 0x12, 0x34, // serialNumber 1234
            0x0C, 0x03, b'A', b'c', b'm', // manufacturerID "Acm"
            0x80, 0x02, b'T', b'k', // label [0] "Tk"
            0x03, 0x02, 0x04, 0x50, // tokenflags: loginRequired, eidCompliant
            0x30, 0x00, // seInfo (skipped)
            0xA2, 0x2D, // supportedAlgorithms [2]
            0x30, 0x10, // AlgorithmInfo
            0x02, 0x01, 0x01, // reference 1
            0x02, 0x01, 0x01, // algorithm CKM_RSA_PKCS
            0x05, 0x00, // parameters NULL
            0x03, 0x02, 0x06, 0x40, // supportedOperations: compute-signature
            0x02, 0x02, 0x00, 0x82, // algRef 0x82 (no objId)
            0x30, 0x19, // AlgorithmInfo
            0x02, 0x01, 0x02, // reference 2
            0x02, 0x03, 0x00, 0x10, 0x41, // algorithm CKM_ECDSA (0x1041)
            0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, // P-256
            0x03, 0x02, 0x06, 0x40, // supportedOperations: compute-signature
            0x02, 0x01, 0x21, // algRef 0x21
            0x83, 0x01, b'I', // issuerId [3] "I"
            0x84, 0x01, b'H', // holderId [4] "H"
            0xA5, 0x11, 0x18, 0x0F, // lastUpdate [5] { GeneralizedTime }
            b'2', b'0', b'2', b'4', b'0', b'1', b'0', b'2', b'0', b'3', b'0', b'4', b'0', b'5',
            b'Z', //
            0x13, 0x02, b'f', b'i', // preferredLanguage "fi"
            0xA6, 0x00, // profileIndication [6] (skipped)
            0xDE, 0xAD, // after the TokenInfo: ignored
        ];
        let info = parse_token_info(&data).unwrap();
        assert_eq!(info.version, 0);
        assert_eq!(info.serial_number.as_deref(), Some(&[0x12, 0x34][..]));
        assert_eq!(info.manufacturer_id.as_deref(), Some("Acm"));
        assert_eq!(info.label.as_deref(), Some("Tk"));
        assert_eq!(
            info.flags,
            TokenFlags {
                login_required: true,
                eid_compliant: true,
                ..TokenFlags::default()
            }
        );
        assert_eq!(info.supported_algorithms.len(), 2);
        let rsa = &info.supported_algorithms[0];
        assert_eq!((rsa.reference, rsa.algorithm), (1, 1));
        assert_eq!(rsa.parameters, None);
        assert!(rsa.operations.compute_signature && !rsa.operations.decipher);
        assert_eq!(rsa.object_id, None);
        assert_eq!(rsa.algorithm_reference, Some(0x82));
        let ec = &info.supported_algorithms[1];
        assert_eq!(ec.algorithm, 0x1041);
        assert_eq!(ec.parameters.unwrap().to_string(), "1.2.840.10045.3.1.7");
        assert_eq!(ec.algorithm_reference, Some(0x21));
        assert_eq!(info.issuer_id.as_deref(), Some("I"));
        assert_eq!(info.holder_id.as_deref(), Some("H"));
        assert_eq!(info.last_update.as_deref(), Some("20240102030405Z"));
        assert_eq!(info.preferred_language.as_deref(), Some("fi"));
    }

    #[test]
    fn reads_the_minimum_and_an_explicit_label() {
        let data = [
            0x30, 0x0C, // TokenInfo
            0x02, 0x01, 0x00, // version
            0xA0, 0x03, 0x0C, 0x01, b'L', // label, explicitly tagged
            0x03, 0x02, 0x07, 0x80, // tokenflags: readonly
        ];
        let info = parse_token_info(&data).unwrap();
        assert_eq!(info.serial_number, None);
        assert_eq!(info.label.as_deref(), Some("L"));
        assert!(info.flags.readonly);
        assert!(info.supported_algorithms.is_empty());
        assert_eq!(info.last_update, None);
    }

    #[test]
    fn refuses_missing_and_misplaced_fields() {
        // No tokenflags.
        let data = [0x30, 0x03, 0x02, 0x01, 0x00];
        assert_eq!(
            parse_token_info(&data),
            Err(Pkcs15Error::Missing("TokenInfo.tokenflags"))
        );
        // A SET instead of the SEQUENCE.
        assert!(matches!(
            parse_token_info(&[0x31, 0x00]),
            Err(Pkcs15Error::UnexpectedTag { .. })
        ));
        // A negative version.
        let data = [0x30, 0x07, 0x02, 0x01, 0xFF, 0x03, 0x02, 0x00, 0x00];
        assert_eq!(
            parse_token_info(&data),
            Err(Pkcs15Error::OutOfRange("TokenInfo.version"))
        );
        // An algorithm without its supportedOperations.
        let data = [
            0x30, 0x0F, 0x02, 0x01, 0x00, 0x03, 0x01, 0x00, // version, flags
            0xA2, 0x07, 0x30, 0x05, 0x02, 0x01, 0x01, 0x02, 0x00, // algorithm INTEGER empty
        ];
        assert!(parse_token_info(&data).is_err());
        // A lastUpdate that is not a time.
        let data = [
            0x30, 0x0C, 0x02, 0x01, 0x00, 0x03, 0x01, 0x00, // version, flags
            0xA5, 0x04, 0x18, 0x02, b'x', b'y', // lastUpdate "xy"
        ];
        assert_eq!(
            parse_token_info(&data),
            Err(Pkcs15Error::Malformed("TokenInfo.lastUpdate"))
        );
    }

    #[test]
    fn bounds_the_algorithm_list() {
        let algorithm = [
            0x30, 0x0B, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x05, 0x00, 0x03, 0x01, 0x00,
        ];
        let list = algorithm.repeat(MAX_ALGORITHMS + 1);
        let mut data = vec![0x30, 0x82, 0x00, 0x00, 0x02, 0x01, 0x00, 0x03, 0x01, 0x00];
        data.extend([0xA2, 0x82]);
        data.extend((list.len() as u16).to_be_bytes());
        data.extend(&list);
        let total = (data.len() - 4) as u16;
        data[2..4].copy_from_slice(&total.to_be_bytes());
        assert!(matches!(
            parse_token_info(&data),
            Err(Pkcs15Error::TooMany { .. })
        ));
    }
}
