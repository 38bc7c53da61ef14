//! Where the PKCS#15 files are: EF.DIR's application templates and the
//! object directory file (EF.ODF).

use super::ber::{self, Reader};
use super::common::{parse_objects, Directory, Path, MAX_AID};
use super::Pkcs15Error;

/// The PKCS#15 application's AID (RID `A000000063`, then `PKCS-15`).
/// Cards may append bytes to it; [`Application::is_pkcs15`] compares the
/// prefix.
pub const PKCS15_AID: [u8; 12] = [
    0xA0, 0x00, 0x00, 0x00, 0x63, 0x50, 0x4B, 0x43, 0x53, 0x2D, 0x31, 0x35,
];

/// The discretionary data of a PKCS#15 application template (tag `73`,
/// ASN.1 `DDO`): where its ODF and TokenInfo are when not at their
/// default file identifiers (`5031`, `5032`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscretionaryData {
    /// `oid`: the application's profile.
    pub oid: Option<der::asn1::ObjectIdentifier>,
    /// `odfPath`.
    pub odf_path: Option<Path>,
    /// `tokenInfoPath` (`[0]`).
    pub token_info_path: Option<Path>,
    /// `unusedPath` (`[1]`).
    pub unused_path: Option<Path>,
}

impl DiscretionaryData {
    fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let mut reader = Reader::new(value, "DDO");
        let mut ddo = DiscretionaryData::default();
        if let Some(oid) = reader.optional(0x06)? {
            ddo.oid = Some(ber::object_identifier(oid, "DDO.oid")?);
        }
        if let Some(path) = reader.optional(0x30)? {
            ddo.odf_path = Some(Path::parse(path)?);
        }
        if let Some(path) = reader.optional(0xA0)? {
            ddo.token_info_path = Some(Path::parse(path)?);
        }
        if let Some(path) = reader.optional(0xA1)? {
            ddo.unused_path = Some(Path::parse(path)?);
        }
        reader.skip_rest()?;
        Ok(ddo)
    }
}

/// One application template (tag `61`) of EF.DIR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Application {
    /// `4F`: the application identifier.
    pub aid: Vec<u8>,
    /// `50`: the application label.
    pub label: Option<String>,
    /// `51`: the path of the application's DF (e.g. `3F00 5015`).
    pub path: Option<Vec<u8>>,
    /// `73`: the PKCS#15 discretionary data, when present and readable.
    pub ddo: Option<DiscretionaryData>,
}

impl Application {
    /// Whether this is a PKCS#15 application (its AID starts with
    /// [`PKCS15_AID`]).
    pub fn is_pkcs15(&self) -> bool {
        self.aid.starts_with(&PKCS15_AID)
    }

    fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let mut reader = Reader::new(value, "EF.DIR template");
        let mut application = Application::default();
        let mut aid = None;
        // Templates order their data objects freely (ISO/IEC 7816-4 §8.2.1).
        while let Some(element) = reader.next()? {
            match element.tag {
                0x4F => aid = Some(ber::octets(element.value, MAX_AID, "EF.DIR AID")?),
                0x50 => application.label = Some(ber::label(element.value)),
                0x51 => application.path = Some(ber::octets(element.value, 16, "EF.DIR path")?),
                0x73 => application.ddo = Some(DiscretionaryData::parse(element.value)?),
                _ => {}
            }
        }
        application.aid = aid.ok_or(Pkcs15Error::Missing("EF.DIR AID"))?;
        Ok(application)
    }
}

/// Reads EF.DIR (`3F00 2F00`): the whole file when it is transparent, or
/// one record of a record file; filler after the templates is ignored.
/// Elements other than application templates are skipped. Use
/// [`Application::is_pkcs15`] to find the PKCS#15 application.
pub fn parse_dir(data: &[u8]) -> Result<Directory<Application>, Pkcs15Error> {
    parse_objects(data, "EF.DIR", |element| match element.tag {
        0x61 => Application::parse(element.value).map(Some),
        _ => Ok(None),
    })
}

/// The kinds of directory file the ODF points to (`PKCS15Objects`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectoryKind {
    /// `[0]`: private keys (PrKDF).
    PrivateKeys,
    /// `[1]`: public keys (PuKDF).
    PublicKeys,
    /// `[2]`: trusted public keys (a PuKDF).
    TrustedPublicKeys,
    /// `[3]`: secret keys (SKDF).
    SecretKeys,
    /// `[4]`: certificates (CDF).
    Certificates,
    /// `[5]`: trusted certificates (a CDF).
    TrustedCertificates,
    /// `[6]`: useful certificates (a CDF).
    UsefulCertificates,
    /// `[7]`: data objects (DODF).
    DataObjects,
    /// `[8]`: authentication objects (AODF).
    AuthObjects,
}

impl DirectoryKind {
    fn from_tag(tag: u32) -> Option<Self> {
        Some(match tag {
            0xA0 => DirectoryKind::PrivateKeys,
            0xA1 => DirectoryKind::PublicKeys,
            0xA2 => DirectoryKind::TrustedPublicKeys,
            0xA3 => DirectoryKind::SecretKeys,
            0xA4 => DirectoryKind::Certificates,
            0xA5 => DirectoryKind::TrustedCertificates,
            0xA6 => DirectoryKind::UsefulCertificates,
            0xA7 => DirectoryKind::DataObjects,
            0xA8 => DirectoryKind::AuthObjects,
            _ => return None,
        })
    }
}

/// One entry of EF.ODF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OdfEntry {
    /// Which objects the file holds.
    pub kind: DirectoryKind,
    /// Where the file is.
    pub path: Path,
}

/// Reads EF.ODF (default `5031` in the application DF). Entries that hold
/// their objects inline or protected instead of a path, and kinds added
/// after ISO/IEC 7816-15 (tags `[9]` and up), are skipped; filler after
/// the entries is ignored. At most [`MAX_OBJECTS`](super::MAX_OBJECTS)
/// entries.
pub fn parse_odf(data: &[u8]) -> Result<Directory<OdfEntry>, Pkcs15Error> {
    parse_objects(data, "EF.ODF", |element| {
        let Some(kind) = DirectoryKind::from_tag(element.tag) else {
            return Ok(None);
        };
        // The CHOICE inside is explicitly tagged: a Path SEQUENCE, or the
        // objects themselves ([0]) or protected ([1], [2]).
        let mut reader = Reader::new(element.value, "EF.ODF entry");
        let Some(path) = reader.optional(0x30)? else {
            return Ok(None);
        };
        let path = Path::parse(path)?;
        reader.skip_rest()?;
        Ok(Some(OdfEntry { kind, path }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkcs15::MAX_OBJECTS;

    #[test]
    fn reads_a_dir_template_with_ddo() {
        let data = [
            0x61, 0x2D, // application template
            0x4F, 0x0C, // AID: A0 00 00 00 63 "PKCS-15"
            0xA0, 0x00, 0x00, 0x00, 0x63, 0x50, 0x4B, 0x43, 0x53, 0x2D, 0x31, 0x35, //
            0x50, 0x04, b'T', b'e', b's', b't', // label "Test"
            0x51, 0x04, 0x3F, 0x00, 0x50, 0x15, // path 3F00 5015
            0x73, 0x11, // DDO
            0x06, 0x03, 0x2A, 0x03, 0x04, // oid 1.2.3.4
            0x30, 0x04, 0x04, 0x02, 0x50, 0x31, // odfPath 5031
            0xA0, 0x04, 0x04, 0x02, 0x50, 0x32, // tokenInfoPath [0] 5032
            0x00, 0x00, 0x00, // filler
        ];
        let apps = parse_dir(&data).unwrap().objects;
        assert_eq!(apps.len(), 1);
        let app = &apps[0];
        assert!(app.is_pkcs15());
        assert_eq!(app.label.as_deref(), Some("Test"));
        assert_eq!(app.path.as_deref(), Some(&[0x3F, 0x00, 0x50, 0x15][..]));
        let ddo = app.ddo.as_ref().unwrap();
        assert_eq!(ddo.oid.unwrap().to_string(), "1.2.3.4");
        assert_eq!(ddo.odf_path.as_ref().unwrap().efid_or_path, [0x50, 0x31]);
        assert_eq!(
            ddo.token_info_path.as_ref().unwrap().efid_or_path,
            [0x50, 0x32]
        );
        assert_eq!(ddo.unused_path, None);
    }

    #[test]
    fn dir_template_needs_an_aid() {
        // 61 03 { 50 01 'x' }: a label, no AID.
        assert_eq!(
            crate::pkcs15::rejected(parse_dir(&[0x61, 0x03, 0x50, 0x01, b'x'])),
            Pkcs15Error::Missing("EF.DIR AID")
        );
        // 61 02 { 4F 00 }: an empty AID is no PKCS#15 application.
        assert!(!parse_dir(&[0x61, 0x02, 0x4F, 0x00]).unwrap().objects[0].is_pkcs15());
    }

    #[test]
    fn reads_odf_entries_and_skips_unknown_ones() {
        let data = [
            0xA0, 0x06, 0x30, 0x04, 0x04, 0x02, 0x44, 0x00, // privateKeys: path 4400
            0xA8, 0x0B, // authObjects
            0x30, 0x09, 0x04, 0x02, 0x44, 0x01, // path 4401
            0x02, 0x01, 0x00, // index 0
            0x80, 0x00, // length: an empty INTEGER
        ];
        // The empty length INTEGER is an error, not a silent zero.
        assert_eq!(
            crate::pkcs15::rejected(parse_odf(&data)),
            Pkcs15Error::OutOfRange("Path.length")
        );
        let data = [
            0xA0, 0x06, 0x30, 0x04, 0x04, 0x02, 0x44, 0x00, // privateKeys: path 4400
            0xA9, 0x02, 0x05, 0x00, // [9]: a later kind, skipped
            0xA7, 0x02, 0xA0, 0x00, // dataObjects held inline: skipped
            0xA8, 0x0C, // authObjects
            0x30, 0x0A, 0x04, 0x02, 0x44, 0x01, // path 4401
            0x02, 0x01, 0x10, // index 16
            0x80, 0x01, 0x20, // length 32
            0xFF, 0xFF, // filler
        ];
        let entries = parse_odf(&data).unwrap().objects;
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].kind, DirectoryKind::PrivateKeys);
        assert_eq!(entries[0].path.efid_or_path, [0x44, 0x00]);
        assert_eq!(entries[1].kind, DirectoryKind::AuthObjects);
        assert_eq!(entries[1].path.index, Some(16));
        assert_eq!(entries[1].path.length, Some(32));
    }

    #[test]
    fn reads_an_aid_extended_path() {
        let data = [
            0xA4, 0x0E, 0x30, 0x0C, // certificates: path
            0xA1, 0x0A, // pathExtended [1]
            0x4F, 0x04, 0xA0, 0x00, 0x00, 0x01, // aid
            0x04, 0x02, 0xC0, 0x00, // path C000
        ];
        let entries = parse_odf(&data).unwrap().objects;
        assert_eq!(
            entries[0].path.aid.as_deref(),
            Some(&[0xA0, 0x00, 0x00, 0x01][..])
        );
        assert_eq!(entries[0].path.efid_or_path, [0xC0, 0x00]);
    }

    #[test]
    fn odf_path_must_name_a_file() {
        // A0 04 { 30 02 { 02 00 } }: a path with neither efidOrPath nor
        // an extended path.
        assert_eq!(
            crate::pkcs15::rejected(parse_odf(&[0xA0, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00])),
            Pkcs15Error::Missing("Path.efidOrPath")
        );
        // 17 bytes of path.
        let mut data = vec![0xA0, 0x15, 0x30, 0x13, 0x04, 0x11];
        data.extend([0x3F; 17]);
        assert_eq!(
            crate::pkcs15::rejected(parse_odf(&data)),
            Pkcs15Error::OutOfRange("Path.efidOrPath")
        );
    }

    #[test]
    fn too_many_odf_entries_is_an_error() {
        let entry = [0xA0, 0x06, 0x30, 0x04, 0x04, 0x02, 0x44, 0x00];
        let data = entry.repeat(MAX_OBJECTS);
        assert_eq!(parse_odf(&data).unwrap().objects.len(), MAX_OBJECTS);
        let data = entry.repeat(MAX_OBJECTS + 1);
        assert!(matches!(parse_odf(&data), Err(Pkcs15Error::TooMany { .. })));
    }
}
