//! The authentication object directory (AODF): PIN objects.

use super::ber::{self, Reader};
use super::common::{
    named_bits, parse_objects, CommonObjectAttributes, Directory, Identifier, ObjectParts, Path,
};
use super::Pkcs15Error;

named_bits! {
    /// `PinFlags`.
    PinFlags {
        /// Letters are compared with their case.
        case_sensitive = 0,
        /// The PIN belongs to the application DF, not the card (global).
        local = 1,
        /// The PIN cannot be changed.
        change_disabled = 2,
        /// The PIN cannot be unblocked.
        unblock_disabled = 3,
        /// The PIN has been set.
        initialized = 4,
        /// The PIN is padded to `storedLength` with `padChar`.
        needs_padding = 5,
        /// This is an unblocking PIN (PUK).
        unblocking_pin = 6,
        /// This is the security officer's PIN.
        so_pin = 7,
        /// The PIN may be disabled.
        disable_allowed = 8,
        /// The PIN is sent with secure messaging (integrity).
        integrity_protected = 9,
        /// The PIN is sent enciphered.
        confidentiality_protected = 10,
        /// Change and unblock send the new PIN only (ISO/IEC 7816-15).
        exchange_ref_data = 11,
    }
}

/// How a PIN is encoded for VERIFY (`PinType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinType {
    /// One BCD digit per nibble.
    Bcd,
    /// ASCII digits.
    AsciiNumeric,
    /// UTF-8 text.
    Utf8,
    /// One BCD digit per byte, high nibble `F`.
    HalfNibbleBcd,
    /// ISO 9564-1 format 2 PIN block.
    Iso9564_1,
}

impl PinType {
    fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        Ok(match ber::integer(value, "PinAttributes.pinType")? {
            0 => PinType::Bcd,
            1 => PinType::AsciiNumeric,
            2 => PinType::Utf8,
            3 => PinType::HalfNibbleBcd,
            4 => PinType::Iso9564_1,
            _ => return Err(Pkcs15Error::OutOfRange("PinAttributes.pinType")),
        })
    }
}

/// A PIN object of the AODF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The common object attributes (label, flags, the `authId` of the
    /// PIN that unblocks this one).
    pub object: CommonObjectAttributes,
    /// `authId` of the authentication object: what keys' `authId` name.
    pub auth_id: Option<Identifier>,
    /// `pinFlags`.
    pub flags: PinFlags,
    /// `pinType`.
    pub pin_type: PinType,
    /// `minLength`.
    pub min_length: u8,
    /// `storedLength`: the length the card stores (and pads to).
    pub stored_length: u8,
    /// `maxLength`.
    pub max_length: Option<u8>,
    /// `pinReference` (`[0]`, default 0): the VERIFY P2.
    pub reference: u32,
    /// `padChar`.
    pub pad_char: Option<u8>,
    /// `path`: the DF the PIN belongs to, where it is local.
    pub path: Option<Path>,
}

/// A PIN length: an INTEGER from 0 to 255.
fn pin_length(value: &[u8], what: &'static str) -> Result<u8, Pkcs15Error> {
    u8::try_from(ber::unsigned(value, what)?).map_err(|_| Pkcs15Error::OutOfRange(what))
}

impl Pin {
    fn parse(value: &[u8]) -> Result<Self, Pkcs15Error> {
        let parts = ObjectParts::parse(value, "PIN object")?;
        let mut class = Reader::new(parts.class, "CommonAuthenticationObjectAttributes");
        let auth_id = match class.optional(0x04)? {
            Some(id) => Some(Identifier::parse(
                id,
                "CommonAuthenticationObjectAttributes.authId",
            )?),
            None => None,
        };
        class.skip_rest()?;
        let mut reader = Reader::new(parts.type_sequence("PinAttributes")?, "PinAttributes");
        let flags = PinFlags::from_bits(ber::bits(
            reader.required(0x03, "PinAttributes.pinFlags")?,
            "PinAttributes.pinFlags",
        )?);
        let pin_type = PinType::parse(reader.required(0x0A, "PinAttributes.pinType")?)?;
        let min_length = pin_length(
            reader.required(0x02, "PinAttributes.minLength")?,
            "PinAttributes.minLength",
        )?;
        let stored_length = pin_length(
            reader.required(0x02, "PinAttributes.storedLength")?,
            "PinAttributes.storedLength",
        )?;
        let max_length = match reader.optional(0x02)? {
            Some(max) => Some(pin_length(max, "PinAttributes.maxLength")?),
            None => None,
        };
        let reference = match reader.optional(0x80)? {
            Some(reference) => ber::reference(reference, "PinAttributes.pinReference")?,
            None => 0,
        };
        let pad_char = match reader.optional(0x04)? {
            Some([pad]) => Some(*pad),
            Some(_) => return Err(Pkcs15Error::OutOfRange("PinAttributes.padChar")),
            None => None,
        };
        reader.optional(0x18)?; // lastPinChange
        let path = match reader.optional(0x30)? {
            Some(path) => Some(Path::parse(path)?),
            None => None,
        };
        reader.skip_rest()?;
        Ok(Pin {
            object: parts.common,
            auth_id,
            flags,
            pin_type,
            min_length,
            stored_length,
            max_length,
            reference,
            pad_char,
            path,
        })
    }
}

/// Reads an AODF: its PIN objects. Other authentication objects
/// (biometric templates, authentication keys, external) are skipped;
/// filler after the objects is ignored.
pub fn parse_aodf(data: &[u8]) -> Result<Directory<Pin>, Pkcs15Error> {
    parse_objects(data, "AODF", |element| match element.tag {
        0x30 => Pin::parse(element.value).map(Some),
        _ => Ok(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user PIN and its PUK, the PUK with a path, then filler.
    const AODF: [u8; 90] = [
        0x30, 0x2B, // pin
        0x30, 0x0A, // CommonObjectAttributes
        0x0C, 0x04, b'U', b's', b'e', b'r', // label "User"
        0x03, 0x02, 0x06, 0x40, // flags: modifiable
        0x30, 0x03, 0x04, 0x01, 0x01, // authId 01
        0xA1, 0x18, 0x30, 0x16, // PinAttributes
        0x03, 0x02, 0x02,
        0x3C, // pinFlags: change-/unblock-disabled, initialized, needs-padding
        0x0A, 0x01, 0x01, // pinType ascii-numeric
        0x02, 0x01, 0x04, // minLength 4
        0x02, 0x01, 0x08, // storedLength 8
        0x02, 0x01, 0x08, // maxLength 8
        0x80, 0x01, 0x81, // pinReference 0x81, in one byte (old OpenSC)
        0x04, 0x01, 0xFF, // padChar FF
        0x30, 0x27, // pin
        0x30, 0x09, // CommonObjectAttributes
        0x0C, 0x03, b'P', b'U', b'K', // label "PUK"
        0x03, 0x02, 0x07, 0x80, // flags: private
        0x30, 0x03, 0x04, 0x01, 0x02, // authId 02
        0xA1, 0x15, 0x30, 0x13, // PinAttributes
        0x03, 0x02, 0x00, 0x42, // pinFlags: local, unblockingPin
        0x0A, 0x01, 0x02, // pinType utf8
        0x02, 0x01, 0x06, // minLength 6
        0x02, 0x01, 0x06, // storedLength 6 (no maxLength, no reference)
        0x30, 0x04, 0x04, 0x02, 0x3F, 0x00, // path 3F00
        0x00, 0x00, 0x00, 0x00, // filler
    ];

    #[test]
    fn reads_pins() {
        let pins = parse_aodf(&AODF).unwrap().objects;
        assert_eq!(pins.len(), 2);
        let user = &pins[0];
        assert_eq!(user.object.label.as_deref(), Some("User"));
        assert!(user.object.flags.modifiable && !user.object.flags.private);
        assert_eq!(user.auth_id, Some(Identifier(vec![0x01])));
        assert!(user.flags.initialized && user.flags.needs_padding);
        assert!(user.flags.change_disabled && user.flags.unblock_disabled);
        assert!(!user.flags.local && !user.flags.so_pin);
        assert_eq!(user.pin_type, PinType::AsciiNumeric);
        assert_eq!(
            (user.min_length, user.stored_length, user.max_length),
            (4, 8, Some(8))
        );
        assert_eq!(user.reference, 0x81);
        assert_eq!(user.pad_char, Some(0xFF));
        assert_eq!(user.path, None);
        let puk = &pins[1];
        assert!(puk.object.flags.private);
        assert!(puk.flags.local && puk.flags.unblocking_pin);
        assert_eq!(puk.pin_type, PinType::Utf8);
        assert_eq!(puk.max_length, None);
        assert_eq!(puk.reference, 0);
        assert_eq!(puk.path.as_ref().unwrap().efid_or_path, [0x3F, 0x00]);
    }

    #[test]
    fn refuses_a_pin_path_without_a_file() {
        // The PUK's path as 30 04 { 02 02 00 00 }: an index, no efidOrPath.
        let mut data = AODF.to_vec();
        data[82..86].copy_from_slice(&[0x02, 0x02, 0x00, 0x00]);
        assert_eq!(
            crate::pkcs15::rejected(parse_aodf(&data)),
            Pkcs15Error::Missing("Path.efidOrPath")
        );
    }

    #[test]
    fn refuses_bad_pin_attributes() {
        let object = |attributes: &[u8]| {
            let mut pin = vec![
                0x30,
                0x00,
                0x30,
                0x00,
                0xA1,
                0x00,
                0x30,
                attributes.len() as u8,
            ];
            pin.extend(attributes);
            pin[5] = (attributes.len() + 2) as u8;
            let mut data = vec![0x30, pin.len() as u8];
            data.extend(pin);
            parse_aodf(&data)
        };
        // pinType 5 is not defined.
        let bad_type = [
            0x03, 0x01, 0x00, 0x0A, 0x01, 0x05, 0x02, 0x01, 0x04, 0x02, 0x01, 0x08,
        ];
        assert_eq!(
            crate::pkcs15::rejected(object(&bad_type)),
            Pkcs15Error::OutOfRange("PinAttributes.pinType")
        );
        // storedLength 256.
        let long = [
            0x03, 0x01, 0x00, 0x0A, 0x01, 0x01, 0x02, 0x01, 0x04, 0x02, 0x02, 0x01, 0x00,
        ];
        assert_eq!(
            crate::pkcs15::rejected(object(&long)),
            Pkcs15Error::OutOfRange("PinAttributes.storedLength")
        );
        // A two-byte padChar.
        let pad = [
            0x03, 0x01, 0x00, 0x0A, 0x01, 0x01, 0x02, 0x01, 0x04, 0x02, 0x01, 0x08, 0x04, 0x02,
            0xFF, 0xFF,
        ];
        assert_eq!(
            crate::pkcs15::rejected(object(&pad)),
            Pkcs15Error::OutOfRange("PinAttributes.padChar")
        );
        // No storedLength.
        let short = [0x03, 0x01, 0x00, 0x0A, 0x01, 0x01, 0x02, 0x01, 0x04];
        assert_eq!(
            crate::pkcs15::rejected(object(&short)),
            Pkcs15Error::Missing("PinAttributes.storedLength")
        );
        // The minimum is read.
        let minimal = [
            0x03, 0x01, 0x00, 0x0A, 0x01, 0x00, 0x02, 0x01, 0x04, 0x02, 0x01, 0x08,
        ];
        assert_eq!(object(&minimal).unwrap().objects[0].pin_type, PinType::Bcd);
    }

    #[test]
    fn skips_other_authentication_objects() {
        // [1] authKey object (skipped), then filler.
        assert_eq!(parse_aodf(&[0xA1, 0x00, 0x00]).unwrap().objects, vec![]);
    }
}
