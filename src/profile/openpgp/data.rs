//! What an OpenPGP card's data objects say (spec v3.4 §4.4): algorithm
//! attributes, the PW status bytes, the Application Related Data, the
//! historical bytes and the cardholder name; parsers of untrusted card data.

use super::*;

/// Algorithm IDs in the algorithm attributes (spec v3.4 §4.4.3.9).
pub(super) const ALGO_RSA: u8 = 0x01;
pub(super) const ALGO_ECDH: u8 = 0x12;
pub(super) const ALGO_ECDSA: u8 = 0x13;
pub(super) const ALGO_EDDSA: u8 = 0x16;

/// Curve OIDs (DER contents, no tag) as the algorithm attributes hold them.
pub(super) const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
pub(super) const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
/// Ed25519: GnuPG's 1.3.6.1.4.1.11591.15.1, or RFC 8410's 1.3.101.112.
pub(super) const OID_ED25519: &[&[u8]] = &[
    &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01],
    &[0x2B, 0x65, 0x70],
];
/// Curve25519 for ECDH: 1.3.6.1.4.1.3029.1.5.1, or RFC 8410's 1.3.101.110.
pub(super) const OID_X25519: &[&[u8]] = &[
    &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01],
    &[0x2B, 0x65, 0x6E],
];

/// A key's algorithm, as its attributes (`C1`–`C3`) say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    /// RSA with a modulus of this many bits.
    Rsa(u16),
    /// ECDSA (signature and authentication keys).
    Ecdsa(Curve),
    /// ECDH on a NIST curve (decryption key).
    Ecdh(Curve),
    /// EdDSA on Ed25519.
    Ed25519,
    /// ECDH on Curve25519 (X25519).
    X25519,
}

impl Algorithm {
    /// Parses algorithm attributes; `None` for algorithms the module does
    /// not support (P-521, brainpool, secp256k1, Ed448, ...).
    pub(super) fn parse(attributes: &[u8]) -> Option<Algorithm> {
        let (&id, rest) = attributes.split_first()?;
        if id == ALGO_RSA {
            let bits = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
            return Some(Algorithm::Rsa(bits));
        }
        // ECC: the OID, then an optional import-format byte FF.
        let oid = match rest.split_last() {
            Some((0xFF, head)) => head,
            _ => rest,
        };
        let is = |candidates: &[&[u8]]| candidates.contains(&oid);
        let nist = if oid == OID_P256 {
            Some(Curve::P256)
        } else if oid == OID_P384 {
            Some(Curve::P384)
        } else {
            None
        };
        match (id, nist) {
            (ALGO_ECDSA, Some(curve)) => Some(Algorithm::Ecdsa(curve)),
            (ALGO_ECDH, Some(curve)) => Some(Algorithm::Ecdh(curve)),
            (ALGO_EDDSA, None) if is(OID_ED25519) => Some(Algorithm::Ed25519),
            (ALGO_ECDH, None) if is(OID_X25519) => Some(Algorithm::X25519),
            _ => None,
        }
    }
}

/// The PW status bytes (`C4`, spec v3.4 §4.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct PwStatus {
    /// PW1 is valid for one PSO:CDS only (byte 1 = `00`).
    pub(super) single_signature: bool,
    /// PW1 tries left.
    pub(super) pw1_tries: u8,
    /// Resetting Code tries left (0: no Resetting Code set, or blocked).
    pub(super) rc_tries: u8,
    /// PW3 tries left.
    pub(super) pw3_tries: u8,
}

impl PwStatus {
    pub(super) fn parse(bytes: &[u8]) -> Result<PwStatus, CardError> {
        if bytes.len() < 7 {
            return Err(CardError::Malformed("PW status bytes shorter than 7"));
        }
        Ok(PwStatus {
            single_signature: bytes[0] == 0x00,
            pw1_tries: bytes[4],
            rc_tries: bytes[5],
            pw3_tries: bytes[6],
        })
    }

    pub(super) fn pin_status(self) -> PinStatus {
        PinStatus {
            tries_left: Some(self.pw1_tries),
            verified: false,
            blocked: self.pw1_tries == 0,
        }
    }
}

/// What the Application Related Data (`6E`) says.
#[derive(Debug, Clone, Default)]
pub(super) struct ApplicationData {
    pub(super) aid: Vec<u8>,
    pub(super) historical: Option<Vec<u8>>,
    pub(super) extended_capabilities: Vec<u8>,
    pub(super) attributes: [Option<Vec<u8>>; 3],
    pub(super) pw_status: Option<PwStatus>,
    pub(super) fingerprints: Vec<u8>,
    pub(super) timestamps: Vec<u8>,
    pub(super) key_information: Option<Vec<u8>>,
}

impl ApplicationData {
    /// Collects the DOs of `6E`, whether a card nests them in the
    /// discretionary data objects (`73`) or not.
    pub(super) fn parse(data: &[u8]) -> Result<ApplicationData, CardError> {
        let outer = unwrap_do(data, u32::from(DO_APPLICATION_RELATED_DATA));
        let mut out = ApplicationData::default();
        let mut elements = tlv::parse_all(outer)?;
        let mut index = 0;
        while index < elements.len() {
            let element = elements[index];
            index += 1;
            match element.tag {
                DO_DISCRETIONARY_DATA => elements.extend(tlv::parse_all(element.value)?),
                DO_AID => out.aid = element.value.to_vec(),
                DO_HISTORICAL_BYTES => out.historical = Some(element.value.to_vec()),
                DO_EXTENDED_CAPABILITIES => out.extended_capabilities = element.value.to_vec(),
                DO_ALGORITHM_ATTRIBUTES_FIRST..=DO_ALGORITHM_ATTRIBUTES_LAST => {
                    let index = (element.tag - DO_ALGORITHM_ATTRIBUTES_FIRST) as usize;
                    out.attributes[index] = Some(element.value.to_vec())
                }
                tag if tag == u32::from(DO_PW_STATUS) => {
                    out.pw_status = Some(PwStatus::parse(element.value)?)
                }
                DO_FINGERPRINTS => out.fingerprints = element.value.to_vec(),
                DO_GENERATION_TIMES => out.timestamps = element.value.to_vec(),
                DO_KEY_INFORMATION => out.key_information = Some(element.value.to_vec()),
                _ => {}
            }
        }
        if out.aid.len() < 14 {
            return Err(CardError::Malformed("no OpenPGP AID in 6E"));
        }
        Ok(out)
    }

    /// The application version (AID bytes 7–8, spec v3.4 §4.2.1).
    pub(super) fn version(&self) -> (u8, u8) {
        (self.aid[6], self.aid[7])
    }

    /// Manufacturer ID and serial number (AID bytes 9–14) as hex: the token
    /// serial OpenSC shows, so `pkcs11:serial=` URIs keep matching.
    pub(super) fn serial(&self) -> String {
        self.aid[8..14].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(super) fn manufacturer_id(&self) -> u16 {
        u16::from_be_bytes([self.aid[8], self.aid[9]])
    }

    pub(super) fn algorithm(&self, key: KeyRef) -> Option<Algorithm> {
        self.attributes[key.index()]
            .as_deref()
            .and_then(Algorithm::parse)
    }

    /// Whether the card holds a key in this slot: the key information DO
    /// (`DE`, v3.3+) if the card has it, else a fingerprint or generation
    /// time; `None` when nothing tells (keys generated without either).
    pub(super) fn key_present(&self, key: KeyRef) -> Option<bool> {
        if let Some(info) = &self.key_information {
            let number = key.index() as u8 + 1;
            return Some(
                info.chunks(2)
                    .any(|pair| pair.len() == 2 && pair[0] == number && pair[1] != 0),
            );
        }
        let nonzero = |list: &[u8], width: usize| {
            list.get(key.index() * width..(key.index() + 1) * width)
                .is_some_and(|part| part.iter().any(|&b| b != 0))
        };
        if nonzero(&self.fingerprints, 20) || nonzero(&self.timestamps, 4) {
            Some(true)
        } else {
            None
        }
    }

    /// The card announces cardholder certificates (`C0` bytes 5–6: the
    /// longest one it takes; v1 cards have none).
    pub(super) fn max_certificate_len(&self) -> usize {
        match self.extended_capabilities.get(4..6) {
            Some(len) => usize::from(u16::from_be_bytes([len[0], len[1]])),
            None => 0,
        }
    }
}

/// The value of a constructed DO as GET DATA returns it: cards answer with
/// the DO's tag and length around the value, or with the value alone.
pub(super) fn unwrap_do(data: &[u8], tag: u32) -> &[u8] {
    match tlv::read(data) {
        Ok((element, rest)) if element.tag == tag && rest.is_empty() => element.value,
        _ => data,
    }
}

/// The historical bytes of an ATR (ISO/IEC 7816-3 §8.2), if well formed.
pub(super) fn atr_historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let count = usize::from(t0 & 0x0F);
    let mut position = 2;
    let mut presence = t0 >> 4;
    loop {
        position += (presence & 1) as usize + ((presence >> 1) & 1) as usize;
        position += ((presence >> 2) & 1) as usize;
        if presence & 0x08 == 0 {
            break;
        }
        presence = *atr.get(position)? >> 4;
        position += 1;
    }
    atr.get(position..position + count)
}

/// Whether historical bytes announce extended Lc/Le: the card capabilities
/// (compact-TLV tag 7, third byte, bit 7; ISO/IEC 7816-4 §8.1.1.2.7).
pub(super) fn announces_extended_length(historical: &[u8]) -> bool {
    let Some((&category, mut rest)) = historical.split_first() else {
        return false;
    };
    match category {
        // Category 00: compact-TLV objects, then a 3-byte status indicator.
        0x00 if rest.len() >= 3 => rest = &rest[..rest.len() - 3],
        0x80 => {}
        _ => return false,
    }
    while let Some((&header, after)) = rest.split_first() {
        let len = usize::from(header & 0x0F);
        let Some(value) = after.get(..len) else {
            return false;
        };
        if header >> 4 == 0x7 {
            return value.get(2).is_some_and(|b| b & 0x40 != 0);
        }
        rest = &after[len..];
    }
    false
}

/// The cardholder name (`5B`, ISO/IEC 7501-1 style: `Surname<<Given<Names`)
/// as people write it: "Given Names Surname".
pub(super) fn display_name(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '<' || c.is_whitespace() || c == '\0');
    if text.is_empty() {
        return None;
    }
    let name = match text.split_once("<<") {
        Some((surname, given)) => format!("{given} {surname}"),
        None => text.to_owned(),
    };
    let words: Vec<&str> = name
        .split(|c: char| c == '<' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    Some(words.join(" "))
}

/// Manufacturer names by the ID in the AID (as GnuPG lists them).
pub(super) fn manufacturer_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x0001 => "PPC Card Systems",
        0x0002 => "Prism",
        0x0003 => "OpenFortress",
        0x0004 => "Wewid",
        0x0005 => "ZeitControl",
        0x0006 => "Yubico",
        0x0007 => "OpenKMS",
        0x0008 => "LogoEmail",
        0x000F => "Nitrokey",
        0xF517 => "FSIJ",
        0x0000 | 0xFFFF => "test card",
        _ => return None,
    })
}
