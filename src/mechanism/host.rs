//! What the host computes for a mechanism: the one place that prepares
//! what the card gets for a signature (DigestInfo, PKCS#1 v1.5 padding, PSS
//! encoding, raw blocks, ECDSA input fitted to the curve), removes the
//! padding of what a card decrypted, and does the public-key operations in
//! software. An engine says only what its card does itself
//! ([`KeyInfo::card_pads`]: the OpenPGP card pads PKCS#1 v1.5 and takes a
//! DigestInfo; PIV takes a raw RSA block).

use super::Mechanism;
use crate::cert::PublicKey;
use crate::crypto::{self, HashAlg};
use crate::error::{Error, Result};
use crate::profile::{KeyInfo, SignInput};
use zeroize::Zeroizing;

/// What a card gets for one signature, prepared on the host.
#[derive(Debug)]
pub struct CardSignInput {
    form: Form,
    bytes: Zeroizing<Vec<u8>>,
}

#[derive(Debug, Clone, Copy)]
enum Form {
    DigestInfo,
    RawBlock,
    EcdsaHash,
    Message,
}

impl CardSignInput {
    /// The request for the engine.
    pub fn request(&self) -> SignInput<'_> {
        match self.form {
            Form::DigestInfo => SignInput::RsaPkcs1(&self.bytes),
            Form::RawBlock => SignInput::RsaRaw(&self.bytes),
            Form::EcdsaHash => SignInput::Ecdsa(&self.bytes),
            Form::Message => SignInput::EdDsa(&self.bytes),
        }
    }
}

/// Prepares what the card signs for `mechanism` with `key`, from `data`
/// (the host's hash for hashing mechanisms, else the caller's data).
pub fn card_sign_input(
    mechanism: &Mechanism,
    key: &KeyInfo,
    data: Zeroizing<Vec<u8>>,
) -> Result<CardSignInput> {
    let k = key.public_key.signature_len();
    let (form, bytes) = match mechanism {
        Mechanism::RsaPkcs | Mechanism::HashRsaPkcs(_) => {
            let digest_info = match mechanism.host_hash() {
                Some(alg) => Zeroizing::new(alg.digest_info(&data)),
                None => {
                    if !policy_allows_digest_info(key, &data) {
                        return Err(Error::DataInvalid);
                    }
                    data
                }
            };
            if !crypto::pkcs1_v15_fits(digest_info.len(), k) {
                return Err(Error::DataLenRange);
            }
            if key.card_pads {
                (Form::DigestInfo, digest_info)
            } else {
                let block = crypto::pkcs1_v15_sign_pad(&digest_info, k);
                (
                    Form::RawBlock,
                    Zeroizing::new(block.ok_or(Error::DataLenRange)?),
                )
            }
        }
        Mechanism::RsaX509 => {
            if data.len() > k {
                return Err(Error::DataLenRange);
            }
            let mut block = Zeroizing::new(Vec::with_capacity(k));
            block.resize(k - data.len(), 0);
            block.extend_from_slice(&data);
            (Form::RawBlock, block)
        }
        Mechanism::RsaPss(params) | Mechanism::HashRsaPss(params) => {
            if data.len() != params.hash.output_len() {
                return Err(Error::DataLenRange);
            }
            let block = crypto::pss_encode(
                &data,
                params.hash,
                params.mgf,
                params.salt_len,
                key.public_key.bits(),
            )
            .ok_or(Error::MechanismParamInvalid)?;
            (Form::RawBlock, Zeroizing::new(block))
        }
        Mechanism::Ecdsa | Mechanism::EcdsaHash(_) => {
            let PublicKey::Ec { curve, .. } = &key.public_key else {
                return Err(Error::KeyTypeInconsistent);
            };
            if data.is_empty() {
                return Err(Error::DataLenRange);
            }
            if matches!(mechanism, Mechanism::Ecdsa) && key.refusals.refuses_hash_length(data.len())
            {
                return Err(Error::DataInvalid);
            }
            let fitted = crypto::ecdsa_fit_hash(&data, curve.order_len());
            (Form::EcdsaHash, Zeroizing::new(fitted))
        }
        Mechanism::EdDsa => (Form::Message, data),
        Mechanism::RsaOaep { .. } | Mechanism::Digest(_) | Mechanism::Ecdh1Derive { .. } => {
            return Err(Error::MechanismInvalid)
        }
    };
    Ok(CardSignInput { form, bytes })
}

/// Whether the policy on `key` lets a caller's `CKM_RSA_PKCS` input be
/// signed: when it refuses some hash, the input must be the DigestInfo of
/// a hash it allows (not a refused hash's, nor TLS 1.0's MD5 + SHA-1).
fn policy_allows_digest_info(key: &KeyInfo, data: &[u8]) -> bool {
    let refusals = &key.refusals;
    if !HashAlg::ALL.iter().any(|h| refusals.refuses_hash(*h)) {
        return true;
    }
    HashAlg::ALL.iter().any(|h| {
        !refusals.refuses_hash(*h)
            && data.len() == h.digest_info_prefix().len() + h.output_len()
            && data.starts_with(h.digest_info_prefix())
    })
}

/// Whether the card removes the padding of what it decrypts for
/// `mechanism` (then it gets the ciphertext and answers the message);
/// otherwise it does raw RSA and [`decrypted_message`] unpads.
pub fn card_unpads(mechanism: &Mechanism, key: &KeyInfo) -> bool {
    key.card_pads && *mechanism == Mechanism::RsaPkcs
}

/// The message in what the card decrypted: `block` as the card answered
/// it (the message itself where [`card_unpads`]), unpadded on the host in
/// constant time; `None` for any bad padding.
pub fn decrypted_message(
    mechanism: &Mechanism,
    key: &KeyInfo,
    block: Zeroizing<Vec<u8>>,
) -> Option<Zeroizing<Vec<u8>>> {
    if card_unpads(mechanism, key) {
        return Some(block);
    }
    match mechanism {
        Mechanism::RsaX509 => Some(block),
        Mechanism::RsaPkcs => crypto::pkcs1_v15_decrypt_unpad(&block),
        Mechanism::RsaOaep { hash, mgf, label } => crypto::oaep_decode(&block, *hash, *mgf, label),
        _ => None,
    }
}

/// Encryption with the public key, in software; `None` if the data does
/// not fit the key.
pub fn encrypt(mechanism: &Mechanism, key: &PublicKey, data: &[u8]) -> Option<Vec<u8>> {
    let k = key.signature_len();
    match mechanism {
        Mechanism::RsaX509 => {
            if data.len() > k {
                return None;
            }
            let mut block = vec![0u8; k - data.len()];
            block.extend_from_slice(data);
            crypto::rsa_public_raw(key, &block)
        }
        Mechanism::RsaPkcs => crypto::rsa_encrypt(key, data, None),
        Mechanism::RsaOaep { hash, label, .. } => {
            crypto::rsa_encrypt(key, data, Some((*hash, label)))
        }
        _ => None,
    }
}

/// Verifies `signature` over `data` (the host's hash for hashing
/// mechanisms, else the caller's data) with the public key, in software.
pub fn verify(
    mechanism: &Mechanism,
    key: &PublicKey,
    data: &[u8],
    signature: &[u8],
) -> Result<bool> {
    Ok(match mechanism {
        Mechanism::RsaPkcs => crypto::verify_rsa_pkcs1(key, data, signature),
        Mechanism::HashRsaPkcs(alg) => {
            crypto::verify_rsa_pkcs1(key, &alg.digest_info(data), signature)
        }
        Mechanism::RsaX509 => {
            let k = key.signature_len();
            data.len() <= k
                && crypto::rsa_public_raw(key, signature).is_some_and(|recovered| {
                    recovered[k - data.len()..] == data[..]
                        && recovered[..k - data.len()].iter().all(|&b| b == 0)
                })
        }
        Mechanism::RsaPss(params) | Mechanism::HashRsaPss(params) => {
            params.mgf == params.hash
                && crypto::verify_rsa_pss(key, data, params.hash, params.salt_len, signature)
        }
        Mechanism::Ecdsa | Mechanism::EcdsaHash(_) => crypto::verify_ecdsa(key, data, signature),
        Mechanism::EdDsa => crypto::verify_eddsa(key, data, signature),
        Mechanism::RsaOaep { .. } | Mechanism::Digest(_) | Mechanism::Ecdh1Derive { .. } => {
            return Err(Error::MechanismInvalid)
        }
    })
}

/// Checks a mechanism against a key for `purpose`, in the order PKCS#11
/// §5.x lists the return codes: a mechanism not for this purpose
/// (`CKR_MECHANISM_INVALID`), a key of another family
/// (`CKR_KEY_TYPE_INCONSISTENT`), a mechanism this key does not allow
/// (`CKA_ALLOWED_MECHANISMS`, `CKR_MECHANISM_INVALID`: e.g. RSA-PSS on an
/// OpenPGP key, whose card pads itself), PSS parameters too large for the
/// key (`CKR_MECHANISM_PARAM_INVALID`).
pub fn check_fits(mechanism: &Mechanism, key: &KeyInfo, purpose: super::Purpose) -> Result<()> {
    let spec = mechanism.spec().ok_or(Error::MechanismInvalid)?;
    if !spec.serves(purpose) {
        return Err(Error::MechanismInvalid);
    }
    if !spec.family.fits(&key.public_key) {
        return Err(Error::KeyTypeInconsistent);
    }
    if !spec.allowed_with(key) || !spec.policy_allows(key, purpose) {
        return Err(Error::MechanismInvalid);
    }
    if let Mechanism::RsaPss(params) | Mechanism::HashRsaPss(params) = mechanism {
        if key.refusals.refuses_hash(params.hash) {
            return Err(Error::MechanismParamInvalid);
        }
        let em_len = (key.public_key.bits() - 1).div_ceil(8);
        if em_len < params.hash.output_len() + params.salt_len + 2 {
            return Err(Error::MechanismParamInvalid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Curve;
    use crate::crypto::HashAlg;
    use crate::profile::{OpenPgpRole, PivRole};

    fn key(public_key: PublicKey, card_pads: bool) -> KeyInfo {
        KeyInfo {
            reference: 0x9A,
            id: vec![1],
            label: "key".into(),
            role: if card_pads {
                OpenPgpRole::Signature.into()
            } else {
                PivRole::Authentication.into()
            },
            public_key,
            certificate: None,
            always_authenticate: false,
            counts_signatures: false,
            no_pin: false,
            own_pin: false,
            pin_reference: 0x80,
            can_sign: true,
            can_decrypt: true,
            can_derive: false,
            card_pads,
            recalled: false,
            refusals: Default::default(),
        }
    }

    fn rsa_1024(card_pads: bool) -> KeyInfo {
        let modulus = vec![0xC5; 128];
        let public_exponent = vec![1, 0, 1];
        key(
            PublicKey::Rsa {
                modulus,
                public_exponent,
            },
            card_pads,
        )
    }

    /// What the card gets: the request's form and bytes.
    fn prepared(mechanism: &Mechanism, key: &KeyInfo, data: &[u8]) -> Result<(Form, Vec<u8>)> {
        let input = card_sign_input(mechanism, key, Zeroizing::new(data.to_vec()))?;
        let bytes = match input.request() {
            SignInput::RsaPkcs1(b)
            | SignInput::RsaRaw(b)
            | SignInput::Ecdsa(b)
            | SignInput::EdDsa(b) => b.to_vec(),
        };
        Ok((input.form, bytes))
    }

    #[test]
    fn pkcs1_goes_to_the_card_as_a_digest_info_or_a_padded_block() {
        let hash = HashAlg::Sha256.digest(b"data");
        let digest_info = HashAlg::Sha256.digest_info(&hash);
        let mechanism = Mechanism::HashRsaPkcs(HashAlg::Sha256);
        let Ok((Form::DigestInfo, sent)) = prepared(&mechanism, &rsa_1024(true), &hash) else {
            panic!("a card that pads gets the DigestInfo");
        };
        assert_eq!(sent, digest_info);
        let Ok((Form::RawBlock, block)) = prepared(&mechanism, &rsa_1024(false), &hash) else {
            panic!("a card doing raw RSA gets a block");
        };
        assert_eq!(block.len(), 128);
        assert_eq!(&block[..3], [0x00, 0x01, 0xFF]);
        assert!(block.ends_with(&digest_info));
        // The len + 11 > k rule, once, for both kinds of card.
        for card_pads in [true, false] {
            let key = rsa_1024(card_pads);
            assert!(prepared(&Mechanism::RsaPkcs, &key, &[7; 117]).is_ok());
            assert_eq!(
                prepared(&Mechanism::RsaPkcs, &key, &[7; 118]).err(),
                Some(Error::DataLenRange)
            );
        }
    }

    #[test]
    fn raw_blocks_and_ecdsa_input_are_fitted_to_the_key() {
        let Ok((Form::RawBlock, block)) =
            prepared(&Mechanism::RsaX509, &rsa_1024(false), &[9; 100])
        else {
            panic!("a raw block");
        };
        assert_eq!(block.len(), 128);
        assert!(block[..28].iter().all(|&b| b == 0));
        assert_eq!(
            prepared(&Mechanism::RsaX509, &rsa_1024(false), &[9; 129]).err(),
            Some(Error::DataLenRange)
        );
        let p256 = key(
            PublicKey::Ec {
                curve: Curve::P256,
                point: vec![4; 65],
            },
            false,
        );
        let long = HashAlg::Sha512.digest(b"data");
        let Ok((Form::EcdsaHash, fitted)) = prepared(&Mechanism::Ecdsa, &p256, &long) else {
            panic!("an ECDSA input");
        };
        assert_eq!(fitted, long[..32]);
        assert_eq!(
            prepared(&Mechanism::Ecdsa, &p256, &[]).err(),
            Some(Error::DataLenRange)
        );
        assert_eq!(
            prepared(&Mechanism::Digest(HashAlg::Sha256), &p256, &long).err(),
            Some(Error::MechanismInvalid)
        );
    }

    #[test]
    fn only_a_card_that_pads_unpads_and_only_pkcs1() {
        let pads = rsa_1024(true);
        let raw = rsa_1024(false);
        assert!(card_unpads(&Mechanism::RsaPkcs, &pads));
        assert!(!card_unpads(&Mechanism::RsaPkcs, &raw));
        assert!(!card_unpads(&Mechanism::RsaX509, &pads));
        let mut block = vec![0x00, 0x02];
        block.extend([0x55; 119]);
        block.push(0);
        block.extend(b"secret");
        let message = decrypted_message(&Mechanism::RsaPkcs, &raw, Zeroizing::new(block));
        assert_eq!(message.as_deref().map(Vec::as_slice), Some(&b"secret"[..]));
        assert!(
            decrypted_message(&Mechanism::RsaPkcs, &raw, Zeroizing::new(vec![1; 128])).is_none()
        );
        // What a card that unpads answered is the message.
        let answered = decrypted_message(&Mechanism::RsaPkcs, &pads, Zeroizing::new(b"m".to_vec()));
        assert_eq!(answered.as_deref().map(Vec::as_slice), Some(&b"m"[..]));
    }
}
