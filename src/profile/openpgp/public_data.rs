//! The card's public data: public keys (GENERATE ASYMMETRIC KEY PAIR in
//! read mode) and cardholder certificates (`7F21`, one occurrence per key
//! on v3 cards).

use super::*;

impl OpenPgpApp {
    /// GENERATE ASYMMETRIC KEY PAIR in read mode (`47 81`, spec v3.4
    /// §7.2.14): the public key template `7F49`, or `None` if the slot is
    /// empty.
    pub(super) fn read_public_key(
        &self,
        card: &mut Transaction,
        key: KeyRef,
        algorithm: Algorithm,
    ) -> Result<Option<PublicKey>, AppError> {
        let command =
            commands::generate_asymmetric_key_pair(READ_PUBLIC_KEY, vec![key.crt(), 0x00]);
        let response = card.execute(&command)?;
        match response.sw {
            StatusWord::SUCCESS => {}
            // Referenced data not found (an empty slot; some cards say
            // "wrong data" or "wrong parameters" for it).
            StatusWord::DATA_NOT_FOUND | StatusWord::WRONG_DATA | StatusWord::WRONG_P1P2 => {
                log::debug!("no public key for {key:?}: {}", response.sw);
                return Ok(None);
            }
            // Anything else is a card problem, not an empty slot: a token
            // must never come up with a key silently missing.
            other => return Err(CardError::Status(other).into()),
        }
        let template = tlv::find(&response.data, DO_PUBLIC_KEY)?
            .ok_or(CardError::Malformed("no public key template 7F49"))?;
        let field = |tag| -> Result<&[u8], AppError> {
            Ok(tlv::find(template, tag)?
                .ok_or(CardError::Malformed("public key template lacks a field"))?)
        };
        let trim = |bytes: &[u8]| {
            let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
            bytes[first..].to_vec()
        };
        let raw_25519 = |point: &[u8]| -> Result<Vec<u8>, AppError> {
            // GnuPG's native form prefixes 0x40; the card's is 32 bytes.
            let point = match point {
                [0x40, rest @ ..] if rest.len() == 32 => rest,
                other => other,
            };
            if point.len() != 32 {
                return Err(CardError::Malformed("Curve25519 public key is not 32 bytes").into());
            }
            Ok(point.to_vec())
        };
        let public = match algorithm {
            Algorithm::Rsa(_) => PublicKey::Rsa {
                modulus: trim(field(DO_RSA_MODULUS)?),
                public_exponent: trim(field(DO_RSA_EXPONENT)?),
            },
            Algorithm::Ecdsa(curve) | Algorithm::Ecdh(curve) => {
                let point = field(DO_EC_POINT)?;
                if point.len() != 1 + 2 * curve.field_len() || point[0] != 0x04 {
                    return Err(
                        CardError::Malformed("EC public key is not an uncompressed point").into(),
                    );
                }
                PublicKey::Ec {
                    curve,
                    point: point.to_vec(),
                }
            }
            Algorithm::Ed25519 => PublicKey::Ed25519 {
                point: raw_25519(field(DO_EC_POINT)?)?,
            },
            Algorithm::X25519 => PublicKey::X25519 {
                point: raw_25519(field(DO_EC_POINT)?)?,
            },
        };
        Ok(Some(public))
    }

    /// The cardholder certificates (`7F21`): on v3 cards one occurrence per
    /// key, reached with SELECT DATA of the first and GET NEXT DATA for the
    /// others (spec v3.4 §7.2.5, §7.2.7); on v2 cards the one DO. Empty
    /// occurrences are left out.
    pub(super) fn read_certificates(
        &self,
        card: &mut Transaction,
        occurrences: u8,
    ) -> Result<Vec<Vec<u8>>, AppError> {
        let mut found = Vec::new();
        let selected = occurrences > 1 && self.select_data(card, 0)?;
        let first = self.get_data(card, DO_CARDHOLDER_CERTIFICATE)?;
        found.extend(first);
        if !selected {
            return Ok(found);
        }
        for occurrence in 1..occurrences {
            let response = card.execute(&commands::get_next_data(DO_CARDHOLDER_CERTIFICATE))?;
            let certificate = if response.sw.is_success() {
                Some(response.data.to_vec())
            } else if self.select_data(card, occurrence)? {
                self.get_data(card, DO_CARDHOLDER_CERTIFICATE)?
            } else {
                break;
            };
            found.extend(certificate);
        }
        Ok(found
            .into_iter()
            .map(|c| unwrap_do(&c, u32::from(DO_CARDHOLDER_CERTIFICATE)).to_vec())
            .filter(|c| !c.is_empty())
            .collect())
    }

    /// SELECT DATA of occurrence `index` of `7F21`; `false` if the card does
    /// not know the command.
    fn select_data(&self, card: &mut Transaction, index: u8) -> Result<bool, AppError> {
        // Tag path (`60`) of a tag list (`5C`) naming 7F21.
        let command = commands::select_data(index, vec![0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21]);
        let response = card.execute(&command)?;
        Ok(response.sw.is_success())
    }
}
