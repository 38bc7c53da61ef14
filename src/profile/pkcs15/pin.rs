//! How a PKCS#15 PIN is formed for VERIFY: the AODF's encoding, lengths
//! and padding (ISO/IEC 7816-15 `PinAttributes`).

use super::super::{AppError, Profile};
use crate::pkcs15::{Pin, PinType};
use zeroize::Zeroizing;

/// A PIN's reference and the rules its VERIFY data follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinFormat {
    /// VERIFY P2.
    pub reference: u8,
    min_length: usize,
    max_length: usize,
    encoding: PinType,
    /// Pad to this many bytes with `pad_byte` (`needs-padding`).
    padded_length: Option<usize>,
    pad_byte: u8,
}

impl PinFormat {
    /// The format the AODF gives; `None` for a PIN this engine cannot form
    /// (a reference above 255, an ISO 9564-1 PIN block).
    pub fn from_aodf(pin: &Pin) -> Option<Self> {
        let reference = u8::try_from(pin.reference).ok()?;
        if pin.pin_type == PinType::Iso9564_1 {
            return None;
        }
        let stored = usize::from(pin.stored_length);
        let max_length = pin
            .max_length
            .map_or(stored.max(usize::from(pin.min_length)), usize::from);
        Some(PinFormat {
            reference,
            min_length: usize::from(pin.min_length).max(1),
            max_length,
            encoding: pin.pin_type,
            padded_length: pin.flags.needs_padding.then_some(stored),
            // ISO/IEC 7816-15: padChar has no default; OpenSC pads with 00.
            pad_byte: pin.pad_char.unwrap_or(0x00),
        })
    }

    /// The profile's PIN rule (before the AODF is read).
    pub fn from_profile(profile: &Profile) -> Self {
        PinFormat {
            reference: profile.pin.reference,
            min_length: profile.pin.min_length,
            max_length: profile.pin.max_length,
            encoding: PinType::Utf8,
            padded_length: profile.pin.pad_length,
            pad_byte: profile.pin.pad_byte.unwrap_or(0x00),
        }
    }

    /// VERIFY data for `pin`: checked against the lengths and encoding,
    /// encoded, padded.
    pub fn encode(&self, pin: &[u8]) -> Result<Zeroizing<Vec<u8>>, AppError> {
        if pin.len() < self.min_length || pin.len() > self.max_length {
            return Err(AppError::PinLength);
        }
        let digits_only = !matches!(self.encoding, PinType::Utf8);
        if digits_only && !pin.iter().all(u8::is_ascii_digit) {
            return Err(AppError::PinLength);
        }
        let mut data = Zeroizing::new(Vec::with_capacity(self.padded_length.unwrap_or(pin.len())));
        match self.encoding {
            PinType::Bcd => {
                for pair in pin.chunks(2) {
                    let high = pair[0] - b'0';
                    let low = pair.get(1).map_or(self.pad_byte & 0x0F, |d| d - b'0');
                    data.push((high << 4) | low);
                }
            }
            PinType::HalfNibbleBcd => data.extend(pin.iter().map(|d| 0xF0 | (d - b'0'))),
            _ => data.extend_from_slice(pin),
        }
        if let Some(length) = self.padded_length {
            if data.len() > length {
                return Err(AppError::PinLength);
            }
            data.resize(length, self.pad_byte);
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(encoding: PinType, padded_length: Option<usize>, pad_byte: u8) -> PinFormat {
        PinFormat {
            reference: 1,
            min_length: 4,
            max_length: 8,
            encoding,
            padded_length,
            pad_byte,
        }
    }

    #[test]
    fn pins_are_encoded_and_padded_as_the_aodf_says() {
        let ascii = format(PinType::AsciiNumeric, Some(8), 0xFF);
        assert_eq!(
            ascii.encode(b"123456").unwrap().as_slice(),
            b"123456\xFF\xFF"
        );
        assert_eq!(ascii.encode(b"123"), Err(AppError::PinLength));
        assert_eq!(ascii.encode(b"123456789"), Err(AppError::PinLength));
        assert_eq!(ascii.encode(b"12a456"), Err(AppError::PinLength));
        let utf8 = format(PinType::Utf8, None, 0);
        assert_eq!(utf8.encode(b"pass").unwrap().as_slice(), b"pass");
        let bcd = format(PinType::Bcd, Some(4), 0xFF);
        assert_eq!(
            bcd.encode(b"12345").unwrap().as_slice(),
            [0x12, 0x34, 0x5F, 0xFF]
        );
        let half = format(PinType::HalfNibbleBcd, None, 0);
        assert_eq!(
            half.encode(b"1234").unwrap().as_slice(),
            [0xF1, 0xF2, 0xF3, 0xF4]
        );
    }
}
