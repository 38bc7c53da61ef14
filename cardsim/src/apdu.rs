//! The card's side of ISO/IEC 7816-4: command APDU parsing (§5.1, all four
//! cases, short and extended), status words, and the BER-TLV subset PIV uses.

/// Status words the simulated card answers with (ISO/IEC 7816-4 §5.6,
/// SP 800-73-4 Part 2 §3).
pub(crate) mod sw {
    pub const OK: u16 = 0x9000;
    /// `61xx`: more data available through GET RESPONSE.
    pub const MORE_DATA: u16 = 0x6100;
    /// `63Cx`: verification failed, `x` tries left.
    pub const VERIFY_FAILED: u16 = 0x63C0;
    pub const WRONG_LENGTH: u16 = 0x6700;
    /// `6Cxx`: wrong Le, `xx` is the right one.
    pub const WRONG_LE: u16 = 0x6C00;
    pub const LAST_COMMAND_EXPECTED: u16 = 0x6883;
    pub const SECURITY_STATUS: u16 = 0x6982;
    pub const AUTH_BLOCKED: u16 = 0x6983;
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const NOT_FOUND: u16 = 0x6A82;
    pub const WRONG_P1P2: u16 = 0x6A86;
    pub const REF_NOT_FOUND: u16 = 0x6A88;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;

    /// `63Cx` with the tries left (at most 15).
    pub fn tries_left(tries: u8) -> u16 {
        VERIFY_FAILED | u16::from(tries.min(15))
    }
}

/// One parsed command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Ne, the maximum response length (Le `00` = 256, `00 00` = 65536).
    pub ne: Option<usize>,
    /// Whether Lc or Le used the extended (3- or 2-byte) form.
    pub extended: bool,
}

impl Command {
    /// Parses a raw command APDU; a malformed one is `6700`.
    pub fn parse(apdu: &[u8]) -> Result<Self, u16> {
        let (&[cla, ins, p1, p2], body) = apdu.split_first_chunk::<4>().ok_or(sw::WRONG_LENGTH)?;
        let mut cmd = Command {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            ne: None,
            extended: false,
        };
        let short_ne = |b: u8| if b == 0 { 256 } else { usize::from(b) };
        let ext_ne = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
            0 => 65536,
            n => usize::from(n),
        };
        match *body {
            // Case 1.
            [] => {}
            // Case 2S.
            [le] => cmd.ne = Some(short_ne(le)),
            // Case 3S / 4S.
            [lc @ 1..=255, ref rest @ ..] => {
                let lc = usize::from(lc);
                cmd.data = rest.get(..lc).ok_or(sw::WRONG_LENGTH)?.to_vec();
                match rest[lc..] {
                    [] => {}
                    [le] => cmd.ne = Some(short_ne(le)),
                    _ => return Err(sw::WRONG_LENGTH),
                }
            }
            // Case 2E.
            [0, hi, lo] => {
                cmd.extended = true;
                cmd.ne = Some(ext_ne(hi, lo));
            }
            // Case 3E / 4E.
            [0, hi, lo, ref rest @ ..] => {
                cmd.extended = true;
                let lc = usize::from(u16::from_be_bytes([hi, lo]));
                if lc == 0 {
                    return Err(sw::WRONG_LENGTH);
                }
                cmd.data = rest.get(..lc).ok_or(sw::WRONG_LENGTH)?.to_vec();
                match rest[lc..] {
                    [] => {}
                    [hi, lo] => cmd.ne = Some(ext_ne(hi, lo)),
                    _ => return Err(sw::WRONG_LENGTH),
                }
            }
            _ => return Err(sw::WRONG_LENGTH),
        }
        Ok(cmd)
    }
}

/// Appends the BER-TLV encoding of `tag` (raw tag bytes) and `value`.
pub(crate) fn put_tlv(out: &mut Vec<u8>, tag: &[u8], value: &[u8]) {
    out.extend_from_slice(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len <= 0xFFFF {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
}

/// The BER-TLV encoding of `tag` and `value`.
pub(crate) fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + tag.len() + 4);
    put_tlv(&mut out, tag, value);
    out
}

/// Reads one BER-TLV from `buf`: (raw tag bytes, value, rest). `None` when
/// it is malformed or runs past the end.
pub(crate) fn read_tlv(buf: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let first = *buf.first()?;
    let mut tag_len = 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *buf.get(tag_len)?;
            tag_len += 1;
            if b & 0x80 == 0 {
                break;
            }
            if tag_len > 3 {
                return None;
            }
        }
    }
    let (tag, rest) = buf.split_at(tag_len);
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = match len0 {
        0..=0x7F => (usize::from(len0), rest),
        0x81..=0x83 => {
            let n = usize::from(len0 & 0x7F);
            let bytes = rest.get(..n)?;
            let len = bytes.iter().fold(0, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[n..])
        }
        _ => return None,
    };
    let value = rest.get(..len)?;
    Some((tag, value, &rest[len..]))
}

/// Splits `buf` into its top-level TLVs; `None` if any is malformed.
pub(crate) fn read_all(mut buf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut items = Vec::new();
    while !buf.is_empty() {
        let (tag, value, rest) = read_tlv(buf)?;
        items.push((tag, value));
        buf = rest;
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_four_cases() {
        let c = Command::parse(&[0, 0xA4, 4, 0]).unwrap();
        assert_eq!((c.data.len(), c.ne, c.extended), (0, None, false));
        let c = Command::parse(&[0, 0xC0, 0, 0, 0]).unwrap();
        assert_eq!(c.ne, Some(256));
        let c = Command::parse(&[0, 0x20, 0, 0x80, 2, 1, 2]).unwrap();
        assert_eq!((c.data, c.ne), (vec![1, 2], None));
        let c = Command::parse(&[0, 0xCB, 0x3F, 0xFF, 1, 9, 0x10]).unwrap();
        assert_eq!((c.data, c.ne), (vec![9], Some(16)));
        let c = Command::parse(&[0, 0xCB, 0x3F, 0xFF, 0, 0, 0]).unwrap();
        assert_eq!((c.ne, c.extended), (Some(65536), true));
        let c = Command::parse(&[0, 0x87, 7, 0x9A, 0, 0, 2, 5, 6, 0, 0]).unwrap();
        assert_eq!((c.data, c.ne, c.extended), (vec![5, 6], Some(65536), true));
        let c = Command::parse(&[0, 0x87, 7, 0x9A, 0, 0, 1, 5]).unwrap();
        assert_eq!((c.data, c.ne, c.extended), (vec![5], None, true));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &[0u8, 0xA4, 4][..],
            &[0, 0xA4, 4, 0, 3, 1],
            &[0, 0xA4, 4, 0, 1, 1, 2, 3],
            &[0, 0xA4, 4, 0, 0, 0],
            &[0, 0xA4, 4, 0, 0, 0, 0, 1],
            &[0, 0xA4, 4, 0, 0, 0, 2, 1, 2, 3],
        ] {
            assert_eq!(Command::parse(bad), Err(sw::WRONG_LENGTH), "{bad:02X?}");
        }
    }

    #[test]
    fn tlv_round_trip() {
        for len in [0, 0x7F, 0x80, 0xFF, 0x100, 0x10000] {
            let v = vec![7; len];
            let enc = tlv(&[0x5F, 0xC1, 0x05], &v);
            let (tag, value, rest) = read_tlv(&enc).unwrap();
            assert_eq!(
                (tag, value.len(), rest.len()),
                (&[0x5F, 0xC1, 0x05][..], len, 0)
            );
        }
        assert!(read_tlv(&[0x53, 0x82, 0x01]).is_none());
        assert!(read_tlv(&[0x53, 0x05, 0x01]).is_none());
    }
}
