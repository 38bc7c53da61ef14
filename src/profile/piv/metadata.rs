//! Yubico's GET METADATA (INS `F7`, also in Nitrokey's PIV applet): what a
//! key slot holds (algorithm `01`, PIN and touch policy `02`, origin `03`,
//! public key `04` with `81` modulus / `82` exponent or `86` point), and
//! for the PIN its tries (`06`: total, remaining).

use crate::cert::{Curve, PublicKey};
use crate::iso7816::tlv;
use crate::profile::KeyInfo;

/// When the card wants the PIN for a key (GET METADATA policy byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PinPolicy {
    /// `01`: no PIN.
    Never,
    /// `02`: once per session.
    Once,
    /// `03`: right before every use.
    Always,
}

/// What GET METADATA says about a key slot that holds a key.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyMetadata {
    /// The PIN policy, when the card named one of the three.
    pub pin_policy: Option<PinPolicy>,
    /// The key waits for a touch (touch policy `02` always, `03` cached).
    pub touch: bool,
    /// The RSA modulus or the EC/EdDSA point, as the card reported it.
    pub key_value: Option<Vec<u8>>,
    /// The whole public key, when the algorithm and the key parts fit.
    pub public_key: Option<PublicKey>,
    /// The card's answer as it came (what the disk cache keeps).
    pub raw: Vec<u8>,
}

/// The card's answer to GET METADATA for a key slot.
#[derive(Debug, Clone)]
pub(super) enum SlotAnswer {
    /// The slot holds no key.
    Empty,
    /// The slot's key, as far as the card described it.
    Key(KeyMetadata),
    /// The card did not say (no GET METADATA, or an answer that does not
    /// parse).
    Unknown,
}

impl SlotAnswer {
    /// The answer as the disk cache keeps it: `00` empty, `01` and the
    /// card's GET METADATA answer, `02` unknown.
    pub fn to_record(&self) -> Vec<u8> {
        match self {
            SlotAnswer::Empty => vec![0x00],
            SlotAnswer::Key(found) => [&[0x01][..], &found.raw].concat(),
            SlotAnswer::Unknown => vec![0x02],
        }
    }

    /// The answer a cache record holds ([`SlotAnswer::to_record`]); `None`
    /// for a record that is not one (the cache is not used then).
    pub fn from_record(record: &[u8]) -> Option<SlotAnswer> {
        let (&tag, rest) = record.split_first()?;
        match (tag, rest) {
            (0x00, []) => Some(SlotAnswer::Empty),
            (0x01, raw) => parse_key_metadata(raw).map(SlotAnswer::Key),
            (0x02, []) => Some(SlotAnswer::Unknown),
            _ => None,
        }
    }
}

/// Parses GET METADATA of a key slot; `None` when it is not BER-TLV.
pub(super) fn parse_key_metadata(data: &[u8]) -> Option<KeyMetadata> {
    let algorithm = tlv::find(data, 0x01).ok()?.and_then(|a| a.first().copied());
    let policy = tlv::find(data, 0x02).ok()?.unwrap_or(&[]);
    let pin_policy = match policy.first() {
        Some(0x01) => Some(PinPolicy::Never),
        Some(0x02) => Some(PinPolicy::Once),
        Some(0x03) => Some(PinPolicy::Always),
        _ => None,
    };
    let touch = matches!(policy.get(1), Some(0x02 | 0x03));
    let mut metadata = KeyMetadata {
        pin_policy,
        touch,
        raw: data.to_vec(),
        ..KeyMetadata::default()
    };
    let Some(public) = tlv::find(data, 0x04).ok()? else {
        return Some(metadata);
    };
    let modulus = tlv::find(public, 0x81).ok()?;
    let exponent = tlv::find(public, 0x82).ok()?;
    let point = tlv::find(public, 0x86).ok()?;
    metadata.key_value = modulus.or(point).map(<[u8]>::to_vec);
    metadata.public_key = match (algorithm, modulus, exponent, point) {
        (Some(0x05 | 0x06 | 0x07 | 0x16), Some(n), Some(e), _) => rsa_key(algorithm?, n, e),
        (Some(0x11), _, _, Some(p)) => ec_key(Curve::P256, p),
        (Some(0x14), _, _, Some(p)) => ec_key(Curve::P384, p),
        (Some(0xE0), _, _, Some(p)) if p.len() == 32 => {
            Some(PublicKey::Ed25519 { point: p.to_vec() })
        }
        (Some(0xE1), _, _, Some(p)) if p.len() == 32 => {
            Some(PublicKey::X25519 { point: p.to_vec() })
        }
        _ => None,
    };
    Some(metadata)
}

/// An RSA key of the size its algorithm names (SP 800-78-4 Table 6-2; `16`
/// RSA-4096 as YubiKeys number it).
fn rsa_key(algorithm: u8, modulus: &[u8], exponent: &[u8]) -> Option<PublicKey> {
    let bits = match algorithm {
        0x06 => 1024,
        0x07 => 2048,
        0x05 => 3072,
        _ => 4096,
    };
    let strip = |bytes: &[u8]| {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        bytes[start..].to_vec()
    };
    let key = PublicKey::Rsa {
        modulus: strip(modulus),
        public_exponent: strip(exponent),
    };
    (key.bits() == bits && key.to_rsa().is_some()).then_some(key)
}

/// An EC key with an uncompressed point of the curve's size.
fn ec_key(curve: Curve, point: &[u8]) -> Option<PublicKey> {
    (point.len() == 1 + 2 * curve.field_len() && point[0] == 0x04).then(|| PublicKey::Ec {
        curve,
        point: point.to_vec(),
    })
}

/// The PIN's total and remaining tries (GET METADATA of the PIN, tag `06`).
pub(super) fn pin_tries(data: &[u8]) -> Option<(u8, u8)> {
    match tlv::find(data, 0x06).ok()?? {
        [total, remaining] if *total > 0 && remaining <= total => Some((*total, *remaining)),
        _ => None,
    }
}

impl KeyMetadata {
    /// Gives `key` the card's PIN rule for it, where the card named one.
    pub fn apply(&self, key: &mut KeyInfo) {
        match self.pin_policy {
            Some(PinPolicy::Never) => {
                key.no_pin = true;
                key.always_authenticate = false;
            }
            Some(PinPolicy::Once) => {
                key.no_pin = false;
                key.always_authenticate = false;
            }
            Some(PinPolicy::Always) => {
                key.no_pin = false;
                key.always_authenticate = true;
            }
            None => {}
        }
        if self.touch {
            // The card waits for the touch (a YubiKey up to 15 s) inside
            // the APDU; PC/SC's transmit has no timeout of its own.
            log::debug!("key {:02X} waits for a touch on the card", key.reference);
        }
    }
}

/// Whether a certificate's public key is the one GET METADATA reported
/// (RSA modulus, leading zeros aside; EC/EdDSA point).
pub(super) fn public_key_matches(key: &PublicKey, reported: &[u8]) -> bool {
    fn significant(bytes: &[u8]) -> &[u8] {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        &bytes[start..]
    }
    match key {
        PublicKey::Rsa { modulus, .. } => significant(modulus) == significant(reported),
        PublicKey::Ec { point, .. } => point.as_slice() == reported,
        PublicKey::Ed25519 { point } | PublicKey::X25519 { point } => point.as_slice() == reported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_public_keys_match_certificates_leading_zeros_aside() {
        let rsa = PublicKey::Rsa {
            modulus: vec![0xC1, 0x02, 0x03],
            public_exponent: vec![0x01, 0x00, 0x01],
        };
        assert!(public_key_matches(&rsa, &[0xC1, 0x02, 0x03]));
        assert!(public_key_matches(&rsa, &[0x00, 0xC1, 0x02, 0x03]));
        assert!(!public_key_matches(&rsa, &[0xC1, 0x02, 0x04]));
        let ec = PublicKey::Ec {
            curve: Curve::P256,
            point: vec![0x04, 0x01, 0x02],
        };
        assert!(public_key_matches(&ec, &[0x04, 0x01, 0x02]));
        assert!(!public_key_matches(&ec, &[0x00, 0x04, 0x01, 0x02]));
    }

    fn metadata(algorithm: u8, policy: [u8; 2], public: &[u8]) -> Vec<u8> {
        let mut data = tlv::encode(0x01, &[algorithm]);
        data.extend(tlv::encode(0x02, &policy));
        data.extend(tlv::encode(0x03, &[0x01]));
        data.extend(tlv::encode(0x04, public));
        data
    }

    #[test]
    fn parses_policies_and_public_keys() {
        let mut point = vec![0x04];
        point.extend([0x11; 64]);
        let parsed =
            parse_key_metadata(&metadata(0x11, [0x02, 0x03], &tlv::encode(0x86, &point))).unwrap();
        assert_eq!(parsed.pin_policy, Some(PinPolicy::Once));
        assert!(parsed.touch);
        assert_eq!(parsed.key_value.as_deref(), Some(&point[..]));
        assert!(matches!(
            parsed.public_key,
            Some(PublicKey::Ec {
                curve: Curve::P256,
                ..
            })
        ));
        // A P-256 point where the card says P-384: no public key.
        let wrong =
            parse_key_metadata(&metadata(0x14, [0x03, 0x01], &tlv::encode(0x86, &point))).unwrap();
        assert_eq!(wrong.pin_policy, Some(PinPolicy::Always));
        assert!(!wrong.touch);
        assert!(wrong.public_key.is_none());
        // Unknown policy bytes (Yubico's biometric ones) name no policy.
        let bio = parse_key_metadata(&metadata(0x11, [0x04, 0x01], &[])).unwrap();
        assert_eq!(bio.pin_policy, None);
        assert!(bio.public_key.is_none());
        assert!(parse_key_metadata(&[0x01, 0x05]).is_none());
    }

    #[test]
    fn rsa_keys_must_have_the_algorithms_size() {
        let mut modulus = vec![0x00, 0xC5];
        modulus.extend([0x5B; 255]);
        let mut public = tlv::encode(0x81, &modulus);
        public.extend(tlv::encode(0x82, &[0x01, 0x00, 0x01]));
        let rsa = parse_key_metadata(&metadata(0x07, [0x02, 0x01], &public)).unwrap();
        assert_eq!(rsa.public_key.as_ref().map(PublicKey::bits), Some(2048));
        let mislabelled = parse_key_metadata(&metadata(0x16, [0x02, 0x01], &public)).unwrap();
        assert!(mislabelled.public_key.is_none());
    }

    #[test]
    fn slot_answers_survive_their_cache_records() {
        let mut point = vec![0x04];
        point.extend([0x22; 64]);
        let data = metadata(0x11, [0x03, 0x02], &tlv::encode(0x86, &point));
        let key = SlotAnswer::Key(parse_key_metadata(&data).unwrap());
        let record = key.to_record();
        assert_eq!(record[1..], data[..]);
        let Some(SlotAnswer::Key(back)) = SlotAnswer::from_record(&record) else {
            panic!("not a key");
        };
        assert_eq!(back.pin_policy, Some(PinPolicy::Always));
        assert!(back.touch);
        assert_eq!(
            back.public_key,
            parse_key_metadata(&data).unwrap().public_key
        );
        assert!(matches!(
            SlotAnswer::from_record(&SlotAnswer::Empty.to_record()),
            Some(SlotAnswer::Empty)
        ));
        assert!(matches!(
            SlotAnswer::from_record(&SlotAnswer::Unknown.to_record()),
            Some(SlotAnswer::Unknown)
        ));
        for bad in [
            &[][..],
            &[0x00, 0x00],
            &[0x02, 0x01],
            &[0x03],
            &[0x01, 0x01, 0x05],
        ] {
            assert!(SlotAnswer::from_record(bad).is_none(), "{bad:02X?}");
        }
    }

    #[test]
    fn pin_tries_are_total_then_remaining() {
        let mut data = tlv::encode(0x01, &[0xFF]);
        data.extend(tlv::encode(0x05, &[0x01]));
        data.extend(tlv::encode(0x06, &[0x05, 0x04]));
        assert_eq!(pin_tries(&data), Some((5, 4)));
        assert_eq!(pin_tries(&tlv::encode(0x06, &[0x03, 0x04])), None);
        assert_eq!(pin_tries(&tlv::encode(0x06, &[0x03])), None);
        assert_eq!(pin_tries(&[]), None);
    }
}
