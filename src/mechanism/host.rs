//! What the host computes for a mechanism: the one place that prepares
//! what the card gets for a signature (DigestInfo, PKCS#1 v1.5 padding, PSS
//! encoding, raw blocks, ECDSA input fitted to the curve), removes the
//! padding of what a card decrypted, and does the public-key operations in
//! software. An engine says only what its card does itself
//! ([`KeyInfo::card_pads`]: the OpenPGP card pads PKCS#1 v1.5 and takes a
//! DigestInfo; PIV takes a raw RSA block).

use super::Mechanism;
use crate::cert::PublicKey;
use crate::crypto;
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
                None => data,
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
    if !spec.allowed_with(key) {
        return Err(Error::MechanismInvalid);
    }
    if let Mechanism::RsaPss(params) | Mechanism::HashRsaPss(params) = mechanism {
        let em_len = (key.public_key.bits() - 1).div_ceil(8);
        if em_len < params.hash.output_len() + params.salt_len + 2 {
            return Err(Error::MechanismParamInvalid);
        }
    }
    Ok(())
}
