//! Types every PKCS#15 object shares: identifiers, paths, object values,
//! the common object and key attributes, and the object frame itself.

use super::ber::{self, Element, Reader};
use super::{Pkcs15Error, MAX_OBJECTS};

/// Declares a struct of named bits (an ASN.1 BIT STRING with named bits),
/// one `bool` per bit, read from [`ber::bits`]' result.
macro_rules! named_bits {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident = $bit:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: bool,)*
        }

        impl $name {
            /// The flags set in `bits` (bit `n` is the ASN.1 named bit `n`).
            pub(crate) fn from_bits(bits: u32) -> Self {
                $name { $($field: bits & (1 << $bit) != 0,)* }
            }
        }
    };
}
pub(crate) use named_bits;

/// Longest identifier (iD, authId) read: `pkcs15-ub-identifier`.
const MAX_IDENTIFIER: usize = 255;
/// Longest file path read (eight file identifiers).
const MAX_PATH: usize = 16;
/// Longest application identifier (ISO/IEC 7816-4: 16 bytes).
pub(crate) const MAX_AID: usize = 16;
/// Most access control rules or algorithm references read per object.
const MAX_RULES: usize = 32;

/// An object identifier (`iD`, `authId`): links keys, certificates and
/// the PIN that protects them.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Identifier(pub Vec<u8>);

impl std::fmt::Debug for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identifier(")?;
        for byte in &self.0 {
            write!(f, "{byte:02X}")?;
        }
        write!(f, ")")
    }
}

impl Identifier {
    pub(crate) fn parse(value: &[u8], what: &'static str) -> Result<Self, Pkcs15Error> {
        ber::octets(value, MAX_IDENTIFIER, what).map(Identifier)
    }
}

/// Where a file is (ASN.1 `Path`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path {
    /// `efidOrPath`: a file identifier (two bytes) or a path of them; a path
    /// that does not start with `3F00` is relative to the PKCS#15
    /// application's DF.
    pub efid_or_path: Vec<u8>,
    /// `index`: where the object starts in the file (absent: the start).
    pub index: Option<u32>,
    /// `length` (`[0]`): how many bytes from `index` (absent: to the end).
    pub length: Option<u32>,
    /// The application the path is in, when an extended path (`[1]`, as
    /// OpenSC reads it for multi-application cards) names one.
    pub aid: Option<Vec<u8>>,
}

impl Path {
    /// Reads a `Path` from the value of its SEQUENCE.
    pub(crate) fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let mut reader = Reader::new(value, "Path");
        let mut path = Path::default();
        let efid = reader.optional(0x04)?;
        if let Some(index) = reader.optional(0x02)? {
            path.index = Some(ber::unsigned(index, "Path.index")?);
        }
        if let Some(length) = reader.optional(0x80)? {
            path.length = Some(ber::unsigned(length, "Path.length")?);
        }
        if let Some(extended) = reader.optional(0xA1)? {
            let mut inner = Reader::new(extended, "Path.pathExtended");
            let aid = inner.required(0x4F, "Path.pathExtended.aid")?;
            path.aid = Some(ber::octets(aid, MAX_AID, "Path.pathExtended.aid")?);
            let efid = inner.required(0x04, "Path.pathExtended.path")?;
            path.efid_or_path = ber::octets(efid, MAX_PATH, "Path.pathExtended.path")?;
            inner.skip_rest()?;
        } else {
            let efid = efid.ok_or(Pkcs15Error::Missing("Path.efidOrPath"))?;
            path.efid_or_path = ber::octets(efid, MAX_PATH, "Path.efidOrPath")?;
        }
        reader.skip_rest()?;
        Ok(path)
    }
}

/// Where an object's value is (ASN.1 `ObjectValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectValue {
    /// In a file (`indirect` path): the usual case. An empty path (no
    /// file identifier) means the application DF.
    Path(Path),
    /// In the directory file itself (`direct [0]`): the bytes inside the
    /// `[0]`, as the card wrote them (a certificate's DER; for a public
    /// key, an `RSAPublicKey`, an `[1]` SubjectPublicKeyInfo or an
    /// ECPoint OCTET STRING).
    Direct(Vec<u8>),
    /// A URL, or an enveloped (protected) value: not read.
    Unsupported,
}

impl ObjectValue {
    pub(crate) fn parse(element: Element<'_>) -> Result<Self, Pkcs15Error> {
        Ok(match element.tag {
            // An empty path: the key is named by its reference only (OpenSC
            // allows it for keys).
            0x30 if element.value.is_empty() => ObjectValue::Path(Path::default()),
            0x30 => ObjectValue::Path(Path::parse(element.value)?),
            0xA0 => ObjectValue::Direct(element.value.to_vec()),
            _ => ObjectValue::Unsupported,
        })
    }

    /// Reads the next element of `reader` as the `value` field.
    pub(crate) fn read(reader: &mut Reader<'_>, what: &'static str) -> Result<Self, Pkcs15Error> {
        reader
            .next()?
            .ok_or(Pkcs15Error::Missing(what))
            .and_then(ObjectValue::parse)
    }
}

named_bits! {
    /// `CommonObjectFlags`.
    ObjectFlags {
        /// The object can only be read after authentication.
        private = 0,
        /// The object may be changed.
        modifiable = 1,
    }
}

named_bits! {
    /// `AccessMode` of an access control rule.
    AccessMode {
        /// Read.
        read = 0,
        /// Update.
        update = 1,
        /// Execute (use the key).
        execute = 2,
        /// Delete (ISO/IEC 7816-15).
        delete = 3,
        /// Change attributes (OpenSC's extension).
        attribute = 4,
        /// PSO: COMPUTE DIGITAL SIGNATURE.
        pso_cds = 5,
        /// PSO: VERIFY.
        pso_verify = 6,
        /// PSO: DECIPHER.
        pso_decrypt = 7,
        /// PSO: ENCIPHER.
        pso_encrypt = 8,
        /// INTERNAL AUTHENTICATE.
        int_auth = 9,
        /// EXTERNAL AUTHENTICATE.
        ext_auth = 10,
    }
}

/// What an access control rule requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityCondition {
    /// Nothing (`always`).
    Always,
    /// Authentication with the authentication object of this `authId`.
    AuthId(Identifier),
    /// A reference, or a combination of conditions: not read.
    Other,
}

/// One `AccessControlRule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControlRule {
    /// The operations the rule is about.
    pub access_mode: AccessMode,
    /// What they need.
    pub condition: SecurityCondition,
}

impl AccessControlRule {
    fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let mut reader = Reader::new(value, "AccessControlRule");
        let access_mode = match reader.optional(0x03)? {
            Some(bits) => AccessMode::from_bits(ber::bits(bits, "AccessControlRule.accessMode")?),
            None => AccessMode::default(),
        };
        let condition = match reader.next()? {
            None => SecurityCondition::Other,
            Some(Element { tag: 0x05, .. }) => SecurityCondition::Always,
            Some(Element { tag: 0x04, value }) => SecurityCondition::AuthId(Identifier::parse(
                value,
                "AccessControlRule.securityCondition",
            )?),
            Some(_) => SecurityCondition::Other,
        };
        reader.skip_rest()?;
        Ok(AccessControlRule {
            access_mode,
            condition,
        })
    }
}

/// `CommonObjectAttributes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonObjectAttributes {
    /// `label`.
    pub label: Option<String>,
    /// `flags`: private, modifiable.
    pub flags: ObjectFlags,
    /// `authId`: the authentication object (PIN) that protects the object.
    pub auth_id: Option<Identifier>,
    /// `userConsent`: how many operations one authentication allows (a
    /// key with `1` needs the PIN before each use).
    pub user_consent: Option<u32>,
    /// `accessControlRules` (ISO/IEC 7816-15), in the card's order.
    pub access_control_rules: Vec<AccessControlRule>,
}

impl CommonObjectAttributes {
    fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let mut reader = Reader::new(value, "CommonObjectAttributes");
        let mut attributes = CommonObjectAttributes::default();
        if let Some(label) = reader.optional(0x0C)? {
            attributes.label = Some(ber::label(label));
        }
        if let Some(flags) = reader.optional(0x03)? {
            attributes.flags = ObjectFlags::from_bits(ber::bits(flags, "CommonObjectFlags")?);
        }
        if let Some(auth_id) = reader.optional(0x04)? {
            attributes.auth_id = Some(Identifier::parse(auth_id, "CommonObjectAttributes.authId")?);
        }
        if let Some(consent) = reader.optional(0x02)? {
            attributes.user_consent = Some(ber::unsigned(consent, "userConsent")?);
        }
        if let Some(rules) = reader.optional(0x30)? {
            let mut rules_reader = Reader::new(rules, "accessControlRules");
            while let Some(rule) = rules_reader.next()? {
                if attributes.access_control_rules.len() == MAX_RULES {
                    return Err(Pkcs15Error::TooMany {
                        what: "accessControlRules",
                        limit: MAX_RULES,
                    });
                }
                if rule.tag != 0x30 {
                    return Err(Pkcs15Error::UnexpectedTag {
                        what: "AccessControlRule",
                        expected: 0x30,
                        found: rule.tag,
                    });
                }
                attributes
                    .access_control_rules
                    .push(AccessControlRule::parse(rule.value)?);
            }
        }
        reader.skip_rest()?;
        Ok(attributes)
    }
}

named_bits! {
    /// `KeyUsageFlags`.
    KeyUsage {
        /// Encrypt.
        encrypt = 0,
        /// Decrypt.
        decrypt = 1,
        /// Sign.
        sign = 2,
        /// Sign with message recovery.
        sign_recover = 3,
        /// Wrap keys.
        wrap = 4,
        /// Unwrap keys.
        unwrap = 5,
        /// Verify.
        verify = 6,
        /// Verify with message recovery.
        verify_recover = 7,
        /// Derive (key agreement).
        derive = 8,
        /// Non-repudiation (qualified signatures).
        non_repudiation = 9,
    }
}

named_bits! {
    /// `KeyAccessFlags`.
    KeyAccessFlags {
        /// The key cannot leave the card in plain.
        sensitive = 0,
        /// The key can be extracted.
        extractable = 1,
        /// The key was always sensitive.
        always_sensitive = 2,
        /// The key was never extractable.
        never_extractable = 3,
        /// The key was generated on the card.
        local = 4,
    }
}

/// `CommonKeyAttributes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonKeyAttributes {
    /// `iD`: shared by a key, its public key and its certificate.
    pub id: Identifier,
    /// `usage`.
    pub usage: KeyUsage,
    /// `native`: the card's own algorithms use the key (default true).
    pub native: bool,
    /// `accessFlags`, when present.
    pub access_flags: Option<KeyAccessFlags>,
    /// `keyReference`: the card's reference for the key (MSE key
    /// reference).
    pub key_reference: Option<u32>,
    /// `algReference` (`[1]`, ISO/IEC 7816-15): the TokenInfo
    /// `supportedAlgorithms` references the key may be used with.
    pub algorithm_references: Vec<u32>,
}

impl CommonKeyAttributes {
    /// Reads the attributes from the value of their SEQUENCE.
    pub(crate) fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let mut reader = Reader::new(value, "CommonKeyAttributes");
        let id = Identifier::parse(
            reader.required(0x04, "CommonKeyAttributes.iD")?,
            "CommonKeyAttributes.iD",
        )?;
        let usage = KeyUsage::from_bits(ber::bits(
            reader.required(0x03, "CommonKeyAttributes.usage")?,
            "CommonKeyAttributes.usage",
        )?);
        let native = match reader.optional(0x01)? {
            Some(native) => ber::boolean(native, "CommonKeyAttributes.native")?,
            None => true,
        };
        let access_flags = match reader.optional(0x03)? {
            Some(flags) => Some(KeyAccessFlags::from_bits(ber::bits(
                flags,
                "KeyAccessFlags",
            )?)),
            None => None,
        };
        let key_reference = match reader.optional(0x02)? {
            Some(reference) => Some(ber::reference(reference, "keyReference")?),
            None => None,
        };
        reader.optional(0x18)?; // startDate
        reader.optional(0x80)?; // endDate
        let mut algorithm_references = Vec::new();
        if let Some(references) = reader.optional(0xA1)? {
            let mut inner = Reader::new(references, "algReference");
            while let Some(reference) = inner.next()? {
                if algorithm_references.len() == MAX_RULES {
                    return Err(Pkcs15Error::TooMany {
                        what: "algReference",
                        limit: MAX_RULES,
                    });
                }
                if reference.tag != 0x02 {
                    return Err(Pkcs15Error::UnexpectedTag {
                        what: "algReference",
                        expected: 0x02,
                        found: reference.tag,
                    });
                }
                algorithm_references.push(ber::reference(reference.value, "algReference")?);
            }
        }
        reader.skip_rest()?;
        Ok(CommonKeyAttributes {
            id,
            usage,
            native,
            access_flags,
            key_reference,
            algorithm_references,
        })
    }
}

/// The parts of a `PKCS15Object` this crate reads (the subclass
/// attributes are not), the common attributes decoded.
pub(crate) struct ObjectParts<'a> {
    pub common: CommonObjectAttributes,
    /// The class attributes' SEQUENCE value.
    pub class: &'a [u8],
    /// The `[1]` type attributes' value (one element inside).
    pub type_attributes: &'a [u8],
}

impl<'a> ObjectParts<'a> {
    /// Splits an object (the value of its SEQUENCE, or of the implicitly
    /// tagged CHOICE alternative) into its parts.
    pub(crate) fn parse(value: &'a [u8], what: &'static str) -> Result<Self, Pkcs15Error> {
        let mut reader = Reader::new(value, what);
        let common = CommonObjectAttributes::parse(reader.required(0x30, what)?)?;
        let class = reader.required(0x30, what)?;
        // The subclass attributes (a private key's subject name, a public
        // key's trusted usage) are not needed.
        reader.optional(0xA0)?;
        let type_attributes = reader.required(0xA1, what)?;
        reader.skip_rest()?;
        Ok(ObjectParts {
            common,
            class,
            type_attributes,
        })
    }

    /// The element inside the `[1]` type attributes (extensions after it
    /// are skipped).
    pub(crate) fn type_element(&self, what: &'static str) -> Result<Element<'a>, Pkcs15Error> {
        let mut reader = Reader::new(self.type_attributes, what);
        let element = reader.next()?.ok_or(Pkcs15Error::Missing(what))?;
        reader.skip_rest()?;
        Ok(element)
    }

    /// The value of the SEQUENCE inside the `[1]` type attributes.
    pub(crate) fn type_sequence(&self, what: &'static str) -> Result<&'a [u8], Pkcs15Error> {
        let element = self.type_element(what)?;
        if element.tag != 0x30 {
            return Err(Pkcs15Error::UnexpectedTag {
                what,
                expected: 0x30,
                found: element.tag,
            });
        }
        Ok(element.value)
    }
}

/// The objects of a directory file, and those that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory<T> {
    /// The objects read, in the file's order.
    pub objects: Vec<T>,
    /// The objects that are well framed but malformed inside: their
    /// position among the file's elements (from 0), and why. One broken
    /// object does not hide the others (OpenSC stops at it and drops the
    /// objects after it).
    pub rejected: Vec<(usize, Pkcs15Error)>,
}

/// Reads the objects of a directory file: `parse` maps each top-level
/// element to an object, or to `None` for kinds that are skipped. Framing
/// errors (an element that cannot be delimited) and too many elements fail
/// the whole file.
pub(crate) fn parse_objects<'a, T>(
    data: &'a [u8],
    what: &'static str,
    mut parse: impl FnMut(Element<'a>) -> Result<Option<T>, Pkcs15Error>,
) -> Result<Directory<T>, Pkcs15Error> {
    let mut directory = Directory {
        objects: Vec::new(),
        rejected: Vec::new(),
    };
    for (position, element) in ber::file_elements(data, what, MAX_OBJECTS)?
        .into_iter()
        .enumerate()
    {
        match parse(element) {
            Ok(Some(object)) => directory.objects.push(object),
            Ok(None) => {}
            Err(error) => directory.rejected.push((position, error)),
        }
    }
    Ok(directory)
}
