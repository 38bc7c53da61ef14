//! BER-TLV (ISO/IEC 7816-4 §5.2, ITU-T X.690 tag and length rules), parsed
//! with bounds checks: card data is untrusted.

use super::CardError;

/// One TLV element borrowed from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag, with its leading bytes (e.g. `0x5FC105`, `0x7C`).
    pub tag: u32,
    /// The value bytes.
    pub value: &'a [u8],
}

const MALFORMED: CardError = CardError::Malformed("bad BER-TLV");

/// Reads one TLV from the start of `input`; returns it and the rest.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), CardError> {
    let (&first, mut rest) = input.split_first().ok_or(MALFORMED)?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Multi-byte tag: continuation bytes while bit 8 is set.
        loop {
            let (&byte, after) = rest.split_first().ok_or(MALFORMED)?;
            rest = after;
            if tag > 0x00FF_FFFF {
                return Err(MALFORMED);
            }
            tag = (tag << 8) | u32::from(byte);
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    let (&len_byte, after) = rest.split_first().ok_or(MALFORMED)?;
    rest = after;
    let length = match len_byte {
        0x00..=0x7F => usize::from(len_byte),
        0x81..=0x84 => {
            let count = usize::from(len_byte & 0x7F);
            if rest.len() < count {
                return Err(MALFORMED);
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        }
        _ => return Err(MALFORMED),
    };
    if rest.len() < length {
        return Err(MALFORMED);
    }
    let (value, rest) = rest.split_at(length);
    Ok((Tlv { tag, value }, rest))
}

/// Parses a sequence of TLVs filling all of `input`. Padding bytes `00` and
/// `FF` between elements are skipped, as ISO/IEC 7816-4 allows.
pub fn parse_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, CardError> {
    let mut out = Vec::new();
    while let Some(&first) = input.first() {
        if first == 0x00 || first == 0xFF {
            input = &input[1..];
            continue;
        }
        let (tlv, rest) = read(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

/// The value of the first element tagged `tag` in `input`, if any.
pub fn find(input: &[u8], tag: u32) -> Result<Option<&[u8]>, CardError> {
    Ok(parse_all(input)?
        .into_iter()
        .find(|tlv| tlv.tag == tag)
        .map(|tlv| tlv.value))
}

/// Appends the BER length of `len` to `out`.
pub fn push_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x83);
            out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        }
    }
}

/// Encodes one TLV. `tag` is written with as many bytes as it needs.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let tag_bytes = tag.to_be_bytes();
    let skip = tag_bytes.iter().take_while(|&&b| b == 0).count().min(3);
    out.extend_from_slice(&tag_bytes[skip..]);
    push_length(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_and_multi_byte_tags() {
        let data = [0x5F, 0xC1, 0x05, 0x02, 0xAA, 0xBB, 0x7C, 0x00];
        let all = parse_all(&data).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].tag, 0x5FC105);
        assert_eq!(all[0].value, &[0xAA, 0xBB]);
        assert_eq!(all[1].tag, 0x7C);
        assert!(all[1].value.is_empty());
    }

    #[test]
    fn reads_long_lengths() {
        let mut data = vec![0x53, 0x82, 0x01, 0x00];
        data.extend(std::iter::repeat_n(7, 256));
        let (tlv, rest) = read(&data).unwrap();
        assert_eq!(tlv.value.len(), 256);
        assert!(rest.is_empty());
    }

    #[test]
    fn rejects_truncated_and_oversized() {
        assert!(read(&[0x53, 0x05, 1, 2]).is_err());
        assert!(read(&[0x53, 0x82, 0x01]).is_err());
        assert!(read(&[0x5F]).is_err());
        assert!(read(&[0x5F, 0xC1]).is_err());
        assert!(read(&[0x53, 0x85, 0, 0, 0, 0, 1]).is_err());
        assert!(read(&[0x53, 0x80]).is_err());
        assert!(read(&[]).is_err());
        assert!(read(&[0x5F, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00]).is_err());
    }

    #[test]
    fn round_trips_encoding() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let value = vec![0x42; len];
            let encoded = encode(0x5FC105, &value);
            let (tlv, rest) = read(&encoded).unwrap();
            assert_eq!(tlv.tag, 0x5FC105);
            assert_eq!(tlv.value.len(), len);
            assert!(rest.is_empty());
        }
        assert_eq!(encode(0x81, &[1]), vec![0x81, 0x01, 0x01]);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap exhaustive sweep over short inputs.
        for a in 0..=255u8 {
            for b in [0x00u8, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF] {
                let _ = parse_all(&[a, b, 0x01, 0x02]);
                let _ = parse_all(&[a, b]);
                let _ = parse_all(&[a]);
            }
        }
    }
}
