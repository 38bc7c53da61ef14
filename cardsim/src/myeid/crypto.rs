//! The MyEID card's security operations (reference manual, "MANAGE
//! SECURITY ENVIRONMENT", "PERFORM SECURITY OPERATION", "GENERAL
//! AUTHENTICATE"; ISO/IEC 7816-8): MSE:SET names the key EF and the
//! algorithm reference, PSO signs or deciphers with it.
//!
//! Algorithm references: `00` raw RSA (input as long as the modulus), `02`
//! RSA with PKCS#1 v1.5 padding done by the card (signature: block type 1
//! around the DigestInfo sent; decipher: block type 2 removed), `12` PKCS#1
//! v1.5 over a SHA-1 hash (the card adds the DigestInfo), `04` ECDSA over
//! the hash sent (the signature comes back DER-encoded).

use super::{SecurityEnv, SimMyEidCard, SW_INCOMPATIBLE_FILE};
use crate::apdu::{read_all, sw, Command};
use crate::keys::PrivateKey;

use super::fs::Op;

/// DigestInfo prefix of SHA-1 (RFC 8017 §9.2 note 1).
const SHA1_DIGEST_INFO: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00, 0x04, 0x14,
];
const ALG_RSA_RAW: u8 = 0x00;
const ALG_RSA_PKCS1: u8 = 0x02;
const ALG_RSA_PKCS1_SHA1: u8 = 0x12;
const ALG_ECDSA: u8 = 0x04;
const TEMPLATE_SIGN: u8 = 0xB6;
const TEMPLATE_DECIPHER: u8 = 0xB8;
const TEMPLATE_AGREE: u8 = 0xA4;

/// PKCS#1 v1.5 block type 1 around `data` for a `k`-byte modulus.
fn pad_type1(data: &[u8], k: usize) -> Result<Vec<u8>, u16> {
    if data.len() + 11 > k {
        return Err(sw::WRONG_LENGTH);
    }
    let mut block = vec![0xFF; k];
    block[0] = 0x00;
    block[1] = 0x01;
    block[k - data.len() - 1] = 0x00;
    block[k - data.len()..].copy_from_slice(data);
    Ok(block)
}

/// Removes PKCS#1 v1.5 block type 2 padding.
fn unpad_type2(block: &[u8]) -> Result<Vec<u8>, u16> {
    let separator = match block {
        [0x00, 0x02, rest @ ..] => rest.iter().position(|&b| b == 0),
        _ => None,
    };
    match separator {
        Some(i) if i >= 8 => Ok(block[2 + i + 1..].to_vec()),
        _ => Err(sw::WRONG_DATA),
    }
}

impl SimMyEidCard {
    pub(super) fn manage_security_env(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        self.env = None;
        if cmd.p1 != 0x41 || !matches!(cmd.p2, TEMPLATE_SIGN | TEMPLATE_DECIPHER | TEMPLATE_AGREE) {
            return Err(sw::WRONG_P1P2);
        }
        let mut env = SecurityEnv {
            template: cmd.p2,
            algorithm: None,
            key: None,
        };
        for (tag, value) in read_all(&cmd.data).ok_or(sw::WRONG_DATA)? {
            match (tag, value) {
                (&[0x80], &[alg]) => env.algorithm = Some(alg),
                (&[0x81], &[hi, lo]) => {
                    let fid = u16::from_be_bytes([hi, lo]);
                    let path = self
                        .fs
                        .walk(&self.cur_df, &[fid])
                        .ok_or(sw::REF_NOT_FOUND)?;
                    if !self.fs.get(&path).is_some_and(|n| n.is_key()) {
                        return Err(SW_INCOMPATIBLE_FILE);
                    }
                    env.key = Some(path);
                }
                // Key reference `84 01 00`: the key EF of tag 81 itself.
                (&[0x84], &[0x00]) => {}
                _ => return Err(sw::WRONG_DATA),
            }
        }
        if env.key.is_none() {
            return Err(sw::REF_NOT_FOUND);
        }
        self.env = Some(env);
        Ok(Vec::new())
    }

    /// The key the environment names for `template`, after its CRYPTO
    /// access condition.
    fn env_key(&self, template: u8) -> Result<(&PrivateKey, Option<u8>), u16> {
        let env = self
            .env
            .as_ref()
            .filter(|e| e.template == template)
            .ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        let path = env.key.as_ref().ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        self.check(path, Op::ReadOrUse)?;
        let key = self
            .fs
            .get(path)
            .and_then(|n| n.key.as_ref())
            .ok_or(sw::REF_NOT_FOUND)?;
        Ok((key, env.algorithm))
    }

    pub(super) fn perform_security_operation(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        match (cmd.p1, cmd.p2) {
            (0x9E, 0x9A) => self.sign(&cmd.data),
            (0x80, 0x86) => self.decipher(&cmd.data),
            _ => Err(sw::WRONG_P1P2),
        }
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, u16> {
        let (key, algorithm) = self.env_key(TEMPLATE_SIGN)?;
        match (key, algorithm) {
            (PrivateKey::Rsa(k), alg) => {
                let size = rsa::traits::PublicKeyParts::size(k.as_ref());
                let block = match alg.unwrap_or(ALG_RSA_PKCS1) {
                    ALG_RSA_RAW => data.to_vec(),
                    ALG_RSA_PKCS1 => pad_type1(data, size)?,
                    ALG_RSA_PKCS1_SHA1 if data.len() == 20 => {
                        pad_type1(&[&SHA1_DIGEST_INFO[..], data].concat(), size)?
                    }
                    _ => return Err(sw::WRONG_DATA),
                };
                key.sign(&block)
            }
            (_, None | Some(ALG_ECDSA)) => {
                // The hash fitted to the 32-byte order: left-padded or truncated.
                let mut hash = [0u8; 32];
                let take = data.len().min(32);
                hash[32 - take..].copy_from_slice(&data[..take]);
                key.sign(&hash)
            }
            _ => Err(sw::WRONG_DATA),
        }
    }

    fn decipher(&mut self, data: &[u8]) -> Result<Vec<u8>, u16> {
        let (&indicator, cryptogram) = data.split_first().ok_or(sw::WRONG_LENGTH)?;
        let cryptogram = match indicator {
            0x00 => cryptogram.to_vec(),
            0x81 => {
                self.env_key(TEMPLATE_DECIPHER)?;
                self.first_half = Some(cryptogram.to_vec());
                return Ok(Vec::new());
            }
            0x82 => {
                let mut whole = self.first_half.take().ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
                whole.extend_from_slice(cryptogram);
                whole
            }
            _ => return Err(sw::WRONG_DATA),
        };
        let (key, algorithm) = self.env_key(TEMPLATE_DECIPHER)?;
        let PrivateKey::Rsa(_) = key else {
            return Err(SW_INCOMPATIBLE_FILE);
        };
        let block = key.sign(&cryptogram)?;
        match algorithm.unwrap_or(ALG_RSA_PKCS1) {
            ALG_RSA_RAW => Ok(block),
            ALG_RSA_PKCS1 => unpad_type2(&block),
            _ => Err(sw::WRONG_DATA),
        }
    }

    /// GENERAL AUTHENTICATE `86 00 00` with `7C { 85 <peer point> }`: ECDH,
    /// the shared x coordinate.
    pub(super) fn general_authenticate(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if (cmd.p1, cmd.p2) != (0, 0) {
            return Err(sw::WRONG_P1P2);
        }
        let items = read_all(&cmd.data).ok_or(sw::WRONG_DATA)?;
        let [(&[0x7C], inner)] = items.as_slice() else {
            return Err(sw::WRONG_DATA);
        };
        let inner = read_all(inner).ok_or(sw::WRONG_DATA)?;
        let [(&[0x85], point)] = inner.as_slice() else {
            return Err(sw::WRONG_DATA);
        };
        let (key, _) = self.env_key(TEMPLATE_AGREE)?;
        key.ecdh(point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_padding_round_trip_shapes() {
        let block = pad_type1(&[1, 2, 3], 16).unwrap();
        assert_eq!(block[..2], [0, 1]);
        assert_eq!(block[12..], [0, 1, 2, 3]);
        assert_eq!(pad_type1(&[0; 6], 16), Err(sw::WRONG_LENGTH));
        let mut type2 = vec![0x00, 0x02];
        type2.extend([0x55; 8]);
        type2.extend([0x00, 9, 9]);
        assert_eq!(unpad_type2(&type2), Ok(vec![9, 9]));
        type2[5] = 0;
        assert_eq!(unpad_type2(&type2), Err(sw::WRONG_DATA));
    }
}
