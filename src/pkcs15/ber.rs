//! A BER reader for PKCS#15 files (ITU-T X.690 §8), as cards write them:
//! definite lengths in any form (long forms that are not minimal too), tags
//! of up to four bytes. Indefinite lengths are refused: OpenSC, which wrote
//! or reads most cards in use, does not accept them either. Every read is
//! bounds-checked; nothing here allocates more than the input holds.

use super::Pkcs15Error;

/// One element: its tag (all tag bytes, as in `0x30`, `0xA1`, `0x5F2D`) and
/// its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Element<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

/// Reads the tag at the start of `input`: the tag and the bytes after it.
fn read_tag<'a>(input: &'a [u8], what: &'static str) -> Result<(u32, &'a [u8]), Pkcs15Error> {
    let (&first, mut rest) = input.split_first().ok_or(Pkcs15Error::Malformed(what))?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // High tag number: continuation bytes while bit 8 is set.
        loop {
            let (&byte, after) = rest.split_first().ok_or(Pkcs15Error::Malformed(what))?;
            rest = after;
            if tag > 0x00FF_FFFF {
                return Err(Pkcs15Error::Malformed(what));
            }
            tag = (tag << 8) | u32::from(byte);
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    Ok((tag, rest))
}

/// Reads one element from the start of `input`: the element and the rest.
pub(crate) fn read_element<'a>(
    input: &'a [u8],
    what: &'static str,
) -> Result<(Element<'a>, &'a [u8]), Pkcs15Error> {
    let malformed = Pkcs15Error::Malformed(what);
    let (tag, rest) = read_tag(input, what)?;
    let (&len_byte, mut rest) = rest.split_first().ok_or(malformed)?;
    let length = match len_byte {
        0x00..=0x7F => usize::from(len_byte),
        0x81..=0x84 => {
            let count = usize::from(len_byte & 0x7F);
            if rest.len() < count {
                return Err(malformed);
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        }
        // 0x80: indefinite length; 0x85..: longer than any card file.
        _ => return Err(malformed),
    };
    if rest.len() < length {
        return Err(malformed);
    }
    let (value, rest) = rest.split_at(length);
    Ok((Element { tag, value }, rest))
}

/// A cursor over the elements inside one constructed value, read in order
/// with optional fields looked up by tag.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `value`; `what` names the structure in errors.
    pub fn new(value: &'a [u8], what: &'static str) -> Self {
        Reader { rest: value, what }
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Result<Option<u32>, Pkcs15Error> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        Ok(Some(read_tag(self.rest, self.what)?.0))
    }

    /// The next element, if any.
    pub fn next(&mut self) -> Result<Option<Element<'a>>, Pkcs15Error> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (element, rest) = read_element(self.rest, self.what)?;
        self.rest = rest;
        Ok(Some(element))
    }

    /// The next element's value when its tag is `tag`; nothing is read
    /// otherwise.
    pub fn optional(&mut self, tag: u32) -> Result<Option<&'a [u8]>, Pkcs15Error> {
        if self.peek_tag()? == Some(tag) {
            return Ok(self.next()?.map(|element| element.value));
        }
        Ok(None)
    }

    /// The next element's value, which must be tagged `tag`.
    pub fn required(&mut self, tag: u32, field: &'static str) -> Result<&'a [u8], Pkcs15Error> {
        match self.peek_tag()? {
            None => Err(Pkcs15Error::Missing(field)),
            Some(found) if found != tag => Err(Pkcs15Error::UnexpectedTag {
                what: field,
                expected: tag,
                found,
            }),
            Some(_) => Ok(self
                .next()?
                .map(|element| element.value)
                .unwrap_or_default()),
        }
    }

    /// Reads past the elements left (extensions this parser does not know),
    /// checking that they are well formed.
    pub fn skip_rest(&mut self) -> Result<(), Pkcs15Error> {
        while self.next()?.is_some() {}
        Ok(())
    }
}

/// Reads the top-level elements of a PKCS#15 file, up to `limit` of them.
/// Reading stops at the first `00` or `FF` byte where an element would
/// start: cards allocate their directory files larger than the objects they
/// hold and leave the rest as filler (OpenSC stops there too).
pub(crate) fn file_elements<'a>(
    data: &'a [u8],
    what: &'static str,
    limit: usize,
) -> Result<Vec<Element<'a>>, Pkcs15Error> {
    let mut rest = data;
    let mut elements = Vec::new();
    while let Some(&first) = rest.first() {
        if first == 0x00 || first == 0xFF {
            break;
        }
        if elements.len() == limit {
            return Err(Pkcs15Error::TooMany { what, limit });
        }
        let (element, after) = read_element(rest, what)?;
        elements.push(element);
        rest = after;
    }
    Ok(elements)
}

/// An INTEGER's value (two's complement, at most eight bytes).
pub(crate) fn integer(value: &[u8], what: &'static str) -> Result<i64, Pkcs15Error> {
    if value.is_empty() || value.len() > 8 {
        return Err(Pkcs15Error::OutOfRange(what));
    }
    let negative = value[0] & 0x80 != 0;
    let start: i64 = if negative { -1 } else { 0 };
    Ok(value
        .iter()
        .fold(start, |acc, &b| (acc << 8) | i64::from(b)))
}

/// A non-negative INTEGER that fits in `u32`.
pub(crate) fn unsigned(value: &[u8], what: &'static str) -> Result<u32, Pkcs15Error> {
    u32::try_from(integer(value, what)?).map_err(|_| Pkcs15Error::OutOfRange(what))
}

/// A key or PIN reference. A one-byte negative value is read as the byte
/// itself (`80 01 82` is reference `0x82`): OpenSC 0.11.4 and older wrote
/// references above `0x7F` that way, and cards carry them still.
pub(crate) fn reference(value: &[u8], what: &'static str) -> Result<u32, Pkcs15Error> {
    match value {
        [byte] => Ok(u32::from(*byte)),
        _ => unsigned(value, what),
    }
}

/// A BOOLEAN (BER: any non-zero byte is true).
pub(crate) fn boolean(value: &[u8], what: &'static str) -> Result<bool, Pkcs15Error> {
    match value {
        [byte] => Ok(*byte != 0),
        _ => Err(Pkcs15Error::Malformed(what)),
    }
}

/// A BIT STRING of named bits: bit `n` of the ASN.1 numbering (bit 0 is
/// the first byte's most significant bit) is bit `n` of the result. Named
/// bits past 31 are not used by PKCS#15 and are ignored.
pub(crate) fn bits(value: &[u8], what: &'static str) -> Result<u32, Pkcs15Error> {
    let (&unused, bytes) = value.split_first().ok_or(Pkcs15Error::Malformed(what))?;
    if unused > 7 || (bytes.is_empty() && unused != 0) {
        return Err(Pkcs15Error::Malformed(what));
    }
    let mut result = 0u32;
    for (index, &byte) in bytes.iter().take(4).enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                result |= 1 << (index * 8 + bit);
            }
        }
    }
    Ok(result)
}

/// An OCTET STRING of at most `max` bytes.
pub(crate) fn octets(value: &[u8], max: usize, what: &'static str) -> Result<Vec<u8>, Pkcs15Error> {
    if value.len() > max {
        return Err(Pkcs15Error::OutOfRange(what));
    }
    Ok(value.to_vec())
}

/// A label (UTF8String). Labels are only shown, so bytes that are not
/// UTF-8 (some cards write Latin-1) become U+FFFD instead of failing the
/// object.
pub(crate) fn label(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

/// An OBJECT IDENTIFIER's value.
pub(crate) fn object_identifier(
    value: &[u8],
    what: &'static str,
) -> Result<der::asn1::ObjectIdentifier, Pkcs15Error> {
    der::asn1::ObjectIdentifier::from_bytes(value).map_err(|_| Pkcs15Error::Malformed(what))
}

/// A GeneralizedTime's text (`YYYYMMDDHHMMSSZ` and the other X.680 forms),
/// kept as the card wrote it: the digits, `.`, `,`, `+`, `-` and `Z`.
pub(crate) fn generalized_time(value: &[u8], what: &'static str) -> Result<String, Pkcs15Error> {
    let allowed = |b: &u8| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'+' | b'-' | b'Z');
    if value.len() < 10 || value.len() > 32 || !value.iter().all(allowed) {
        return Err(Pkcs15Error::Malformed(what));
    }
    Ok(value.iter().map(|&b| char::from(b)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_long_and_non_minimal_lengths() {
        // 04 03 'abc'
        let (e, rest) = read_element(&[0x04, 0x03, b'a', b'b', b'c', 0x99], "t").unwrap();
        assert_eq!((e.tag, e.value, rest), (0x04, &b"abc"[..], &[0x99][..]));
        // 04 81 03 'abc': long form where the short one would do (BER).
        let (e, _) = read_element(&[0x04, 0x81, 0x03, b'a', b'b', b'c'], "t").unwrap();
        assert_eq!(e.value, b"abc");
        // 04 82 00 01 'a'
        let (e, _) = read_element(&[0x04, 0x82, 0x00, 0x01, b'a'], "t").unwrap();
        assert_eq!(e.value, b"a");
        // 5F 2D 01 'x': a two-byte tag.
        let (e, _) = read_element(&[0x5F, 0x2D, 0x01, b'x'], "t").unwrap();
        assert_eq!(e.tag, 0x5F2D);
    }

    #[test]
    fn refuses_indefinite_truncated_and_oversized() {
        let bad: [&[u8]; 7] = [
            &[0x30, 0x80, 0x04, 0x00, 0x00, 0x00], // indefinite length
            &[0x04, 0x05, 1, 2],                   // value cut short
            &[0x04, 0x82, 0x01],                   // length cut short
            &[0x04, 0x85, 0, 0, 0, 0, 1],          // five length bytes
            &[0x1F],                               // tag cut short
            &[0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00], // tag too long
            &[],
        ];
        for input in bad {
            assert!(read_element(input, "t").is_err(), "{input:02X?}");
        }
    }

    #[test]
    fn file_elements_stop_at_filler_and_bound_the_count() {
        // 04 00, 04 01 07, then zero and FF filler with junk behind it.
        let data = [0x04, 0x00, 0x04, 0x01, 0x07, 0x00, 0x00, 0x30, 0x7F];
        assert_eq!(file_elements(&data, "t", 10).unwrap().len(), 2);
        let data = [0x04, 0x00, 0xFF, 0xFF];
        assert_eq!(file_elements(&data, "t", 10).unwrap().len(), 1);
        let many = [0x04, 0x00].repeat(5);
        assert_eq!(
            file_elements(&many, "t", 4),
            Err(Pkcs15Error::TooMany {
                what: "t",
                limit: 4
            })
        );
    }

    #[test]
    fn decodes_primitives() {
        assert_eq!(integer(&[0x08, 0x00], "t"), Ok(2048));
        assert_eq!(integer(&[0xFF], "t"), Ok(-1));
        assert_eq!(integer(&[0x00, 0x80], "t"), Ok(128));
        assert!(integer(&[], "t").is_err());
        assert!(integer(&[1; 9], "t").is_err());
        assert!(unsigned(&[0x80], "t").is_err());
        assert!(unsigned(&[0x01, 0, 0, 0, 0], "t").is_err());
        assert_eq!(reference(&[0x82], "t"), Ok(0x82));
        assert_eq!(reference(&[0x00, 0x82], "t"), Ok(0x82));
        assert!(reference(&[0xFF, 0x82], "t").is_err());
        assert_eq!(boolean(&[0xFF], "t"), Ok(true));
        assert_eq!(boolean(&[0x00], "t"), Ok(false));
        assert!(boolean(&[], "t").is_err());
        // 03 02 07 80: one bit, bit 0.
        assert_eq!(bits(&[0x07, 0x80], "t"), Ok(1));
        // 03 03 06 00 40: ten bits, bit 9.
        assert_eq!(bits(&[0x06, 0x00, 0x40], "t"), Ok(1 << 9));
        assert_eq!(bits(&[0x00], "t"), Ok(0));
        assert!(bits(&[0x08, 0x00], "t").is_err());
        assert!(bits(&[0x01], "t").is_err());
        assert!(bits(&[], "t").is_err());
        assert_eq!(label(&[b'a', 0xE9]), "a\u{FFFD}");
        assert!(octets(&[0; 17], 16, "t").is_err());
        // 2.16.840.1.101.3.4.1.1 (aes128-ECB)
        let oid = object_identifier(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x01], "t");
        assert_eq!(oid.unwrap().to_string(), "2.16.840.1.101.3.4.1.1");
        assert!(object_identifier(&[0x80], "t").is_err());
        assert_eq!(
            generalized_time(b"20211220114021Z", "t").as_deref(),
            Ok("20211220114021Z")
        );
        assert!(generalized_time(b"2021\n220114021Z", "t").is_err());
    }

    #[test]
    fn reader_reads_optional_and_required_fields() {
        // 02 01 05, 0C 01 'x', 30 00
        let data = [0x02, 0x01, 0x05, 0x0C, 0x01, b'x', 0x30, 0x00];
        let mut reader = Reader::new(&data, "t");
        assert_eq!(reader.optional(0x04), Ok(None));
        assert_eq!(reader.required(0x02, "int"), Ok(&[0x05][..]));
        assert_eq!(
            reader.required(0x04, "str"),
            Err(Pkcs15Error::UnexpectedTag {
                what: "str",
                expected: 0x04,
                found: 0x0C
            })
        );
        assert_eq!(reader.optional(0x0C), Ok(Some(&b"x"[..])));
        reader.skip_rest().unwrap();
        assert_eq!(reader.next(), Ok(None));
        assert_eq!(
            reader.required(0x02, "int"),
            Err(Pkcs15Error::Missing("int"))
        );
    }
}
