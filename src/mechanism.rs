//! Mechanisms: which ones the module offers, their `CK_MECHANISM_INFO`, and
//! their parameters in typed form.

use crate::crypto::HashAlg;
use crate::error::{Error, Result};
use cryptoki_sys::*;

/// A mechanism with its parameters checked and typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// `CKM_RSA_PKCS`: PKCS#1 v1.5 on caller-supplied data (a DigestInfo).
    RsaPkcs,
    /// `CKM_RSA_X_509`: raw RSA.
    RsaX509,
    /// `CKM_RSA_PKCS_PSS` on a caller-supplied hash.
    RsaPss(PssParams),
    /// `CKM_SHAx_RSA_PKCS`.
    HashRsaPkcs(HashAlg),
    /// `CKM_SHAx_RSA_PKCS_PSS`.
    HashRsaPss(PssParams),
    /// `CKM_RSA_PKCS_OAEP`.
    RsaOaep {
        /// Hash for the label.
        hash: HashAlg,
        /// Hash for MGF1.
        mgf: HashAlg,
        /// The label (`CKZ_DATA_SPECIFIED` source).
        label: Vec<u8>,
    },
    /// `CKM_ECDSA` on a caller-supplied hash.
    Ecdsa,
    /// `CKM_ECDSA_SHAx`.
    EcdsaHash(HashAlg),
    /// `CKM_SHAx` digest.
    Digest(HashAlg),
    /// `CKM_EDDSA`: Ed25519 (PureEdDSA) over the data.
    EdDsa,
    /// `CKM_ECDH1_DERIVE` with `CKD_NULL`: the raw shared secret with the
    /// peer's public point (uncompressed, or 32 bytes for X25519).
    Ecdh1Derive {
        /// The peer's public point, unwrapped from a DER OCTET STRING if the
        /// caller sent one.
        public_data: Vec<u8>,
    },
}

/// RSA-PSS parameters (`CK_RSA_PKCS_PSS_PARAMS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PssParams {
    /// The message hash.
    pub hash: HashAlg,
    /// The MGF1 hash.
    pub mgf: HashAlg,
    /// Salt length in bytes.
    pub salt_len: usize,
}

/// Raw mechanism parameters, as read from C memory by the ABI layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawParams {
    /// No parameter (`pParameter` NULL, length 0).
    None,
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss {
        /// `hashAlg`.
        hash: CK_MECHANISM_TYPE,
        /// `mgf`.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// `sLen`.
        salt_len: CK_ULONG,
    },
    /// `CK_RSA_PKCS_OAEP_PARAMS`.
    Oaep {
        /// `hashAlg`.
        hash: CK_MECHANISM_TYPE,
        /// `mgf`.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// `source`.
        source: CK_RSA_PKCS_OAEP_SOURCE_TYPE,
        /// `pSourceData`.
        source_data: Vec<u8>,
    },
    /// `CK_EDDSA_PARAMS`.
    EdDsa {
        /// `phFlag`: HashEdDSA (Ed25519ph).
        prehash: bool,
        /// The context data.
        context: Vec<u8>,
    },
    /// `CK_ECDH1_DERIVE_PARAMS`.
    Ecdh1 {
        /// `kdf`.
        kdf: CK_EC_KDF_TYPE,
        /// `pSharedData`.
        shared_data: Vec<u8>,
        /// `pPublicData`.
        public_data: Vec<u8>,
    },
    /// A parameter the mechanism does not take, or of the wrong size.
    Invalid,
}

/// The peer's public point from `CK_ECDH1_DERIVE_PARAMS.pPublicData`:
/// raw (an uncompressed point, or 32 bytes for X25519), or wrapped in a DER
/// OCTET STRING as some applications send it (PKCS#11 3.0 §2.3.13 allows
/// both).
fn unwrap_public_data(data: &[u8]) -> Vec<u8> {
    // Uncompressed P-256, P-384 and P-521 points; X25519's 32 bytes.
    let raw_form =
        data.len() == 32 || (data.first() == Some(&0x04) && matches!(data.len(), 65 | 97 | 133));
    if !raw_form {
        if let Ok((octets, rest)) = crate::iso7816::tlv::read(data) {
            if octets.tag == 0x04 && rest.is_empty() {
                return octets.value.to_vec();
            }
        }
    }
    data.to_vec()
}

fn hash_of_mechanism(mechanism: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    Some(match mechanism {
        CKM_SHA_1 => HashAlg::Sha1,
        CKM_SHA224 => HashAlg::Sha224,
        CKM_SHA256 => HashAlg::Sha256,
        CKM_SHA384 => HashAlg::Sha384,
        CKM_SHA512 => HashAlg::Sha512,
        _ => return None,
    })
}

fn hash_of_mgf(mgf: CK_RSA_PKCS_MGF_TYPE) -> Option<HashAlg> {
    Some(match mgf {
        CKG_MGF1_SHA1 => HashAlg::Sha1,
        CKG_MGF1_SHA224 => HashAlg::Sha224,
        CKG_MGF1_SHA256 => HashAlg::Sha256,
        CKG_MGF1_SHA384 => HashAlg::Sha384,
        CKG_MGF1_SHA512 => HashAlg::Sha512,
        _ => return None,
    })
}

fn pss_params(params: &RawParams, expected_hash: Option<HashAlg>) -> Result<PssParams> {
    let RawParams::Pss {
        hash,
        mgf,
        salt_len,
    } = params
    else {
        return Err(Error::MechanismParamInvalid);
    };
    let hash = hash_of_mechanism(*hash).ok_or(Error::MechanismParamInvalid)?;
    let mgf = hash_of_mgf(*mgf).ok_or(Error::MechanismParamInvalid)?;
    if expected_hash.is_some_and(|expected| expected != hash) {
        return Err(Error::MechanismParamInvalid);
    }
    let salt_len = usize::try_from(*salt_len).map_err(|_| Error::MechanismParamInvalid)?;
    Ok(PssParams {
        hash,
        mgf,
        salt_len,
    })
}

fn no_params(params: &RawParams, mechanism: Mechanism) -> Result<Mechanism> {
    match params {
        RawParams::None => Ok(mechanism),
        _ => Err(Error::MechanismParamInvalid),
    }
}

impl Mechanism {
    /// Types and checks a mechanism from the C caller.
    pub fn from_raw(mechanism: CK_MECHANISM_TYPE, params: &RawParams) -> Result<Mechanism> {
        let hash_rsa_pkcs = |alg| no_params(params, Mechanism::HashRsaPkcs(alg));
        let hash_rsa_pss = |alg| pss_params(params, Some(alg)).map(Mechanism::HashRsaPss);
        let ecdsa_hash = |alg| no_params(params, Mechanism::EcdsaHash(alg));
        match mechanism {
            CKM_RSA_PKCS => no_params(params, Mechanism::RsaPkcs),
            CKM_RSA_X_509 => no_params(params, Mechanism::RsaX509),
            CKM_RSA_PKCS_PSS => pss_params(params, None).map(Mechanism::RsaPss),
            CKM_SHA1_RSA_PKCS => hash_rsa_pkcs(HashAlg::Sha1),
            CKM_SHA224_RSA_PKCS => hash_rsa_pkcs(HashAlg::Sha224),
            CKM_SHA256_RSA_PKCS => hash_rsa_pkcs(HashAlg::Sha256),
            CKM_SHA384_RSA_PKCS => hash_rsa_pkcs(HashAlg::Sha384),
            CKM_SHA512_RSA_PKCS => hash_rsa_pkcs(HashAlg::Sha512),
            CKM_SHA1_RSA_PKCS_PSS => hash_rsa_pss(HashAlg::Sha1),
            CKM_SHA224_RSA_PKCS_PSS => hash_rsa_pss(HashAlg::Sha224),
            CKM_SHA256_RSA_PKCS_PSS => hash_rsa_pss(HashAlg::Sha256),
            CKM_SHA384_RSA_PKCS_PSS => hash_rsa_pss(HashAlg::Sha384),
            CKM_SHA512_RSA_PKCS_PSS => hash_rsa_pss(HashAlg::Sha512),
            CKM_RSA_PKCS_OAEP => {
                let RawParams::Oaep {
                    hash,
                    mgf,
                    source,
                    source_data,
                } = params
                else {
                    return Err(Error::MechanismParamInvalid);
                };
                let hash = hash_of_mechanism(*hash).ok_or(Error::MechanismParamInvalid)?;
                let mgf = hash_of_mgf(*mgf).ok_or(Error::MechanismParamInvalid)?;
                if *source != 0 && *source != CKZ_DATA_SPECIFIED {
                    return Err(Error::MechanismParamInvalid);
                }
                Ok(Mechanism::RsaOaep {
                    hash,
                    mgf,
                    label: source_data.clone(),
                })
            }
            CKM_ECDSA => no_params(params, Mechanism::Ecdsa),
            CKM_ECDSA_SHA1 => ecdsa_hash(HashAlg::Sha1),
            CKM_ECDSA_SHA224 => ecdsa_hash(HashAlg::Sha224),
            CKM_ECDSA_SHA256 => ecdsa_hash(HashAlg::Sha256),
            CKM_ECDSA_SHA384 => ecdsa_hash(HashAlg::Sha384),
            CKM_ECDSA_SHA512 => ecdsa_hash(HashAlg::Sha512),
            CKM_EDDSA => match params {
                RawParams::None => Ok(Mechanism::EdDsa),
                // Plain Ed25519 only: no prehash, no context (Ed25519ctx).
                RawParams::EdDsa { prehash, context } if !prehash && context.is_empty() => {
                    Ok(Mechanism::EdDsa)
                }
                _ => Err(Error::MechanismParamInvalid),
            },
            CKM_ECDH1_DERIVE => match params {
                RawParams::Ecdh1 {
                    kdf,
                    shared_data,
                    public_data,
                } if *kdf == CKD_NULL && shared_data.is_empty() && !public_data.is_empty() => {
                    Ok(Mechanism::Ecdh1Derive {
                        public_data: unwrap_public_data(public_data),
                    })
                }
                _ => Err(Error::MechanismParamInvalid),
            },
            other => match hash_of_mechanism(other) {
                Some(alg) => no_params(params, Mechanism::Digest(alg)),
                None => Err(Error::MechanismInvalid),
            },
        }
    }

    /// Whether the mechanism works on RSA keys (else EC).
    pub fn is_rsa(&self) -> bool {
        !matches!(
            self,
            Mechanism::Ecdsa
                | Mechanism::EcdsaHash(_)
                | Mechanism::Digest(_)
                | Mechanism::EdDsa
                | Mechanism::Ecdh1Derive { .. }
        )
    }

    /// The mechanism's `CK_MECHANISM_TYPE`.
    pub fn kind(&self) -> CK_MECHANISM_TYPE {
        let hash_rsa = |alg| match alg {
            HashAlg::Sha1 => CKM_SHA1_RSA_PKCS,
            HashAlg::Sha224 => CKM_SHA224_RSA_PKCS,
            HashAlg::Sha256 => CKM_SHA256_RSA_PKCS,
            HashAlg::Sha384 => CKM_SHA384_RSA_PKCS,
            HashAlg::Sha512 => CKM_SHA512_RSA_PKCS,
        };
        let hash_pss = |alg| match alg {
            HashAlg::Sha1 => CKM_SHA1_RSA_PKCS_PSS,
            HashAlg::Sha224 => CKM_SHA224_RSA_PKCS_PSS,
            HashAlg::Sha256 => CKM_SHA256_RSA_PKCS_PSS,
            HashAlg::Sha384 => CKM_SHA384_RSA_PKCS_PSS,
            HashAlg::Sha512 => CKM_SHA512_RSA_PKCS_PSS,
        };
        let ecdsa = |alg| match alg {
            HashAlg::Sha1 => CKM_ECDSA_SHA1,
            HashAlg::Sha224 => CKM_ECDSA_SHA224,
            HashAlg::Sha256 => CKM_ECDSA_SHA256,
            HashAlg::Sha384 => CKM_ECDSA_SHA384,
            HashAlg::Sha512 => CKM_ECDSA_SHA512,
        };
        let digest = |alg| match alg {
            HashAlg::Sha1 => CKM_SHA_1,
            HashAlg::Sha224 => CKM_SHA224,
            HashAlg::Sha256 => CKM_SHA256,
            HashAlg::Sha384 => CKM_SHA384,
            HashAlg::Sha512 => CKM_SHA512,
        };
        match self {
            Mechanism::RsaPkcs => CKM_RSA_PKCS,
            Mechanism::RsaX509 => CKM_RSA_X_509,
            Mechanism::RsaPss(_) => CKM_RSA_PKCS_PSS,
            Mechanism::HashRsaPkcs(alg) => hash_rsa(*alg),
            Mechanism::HashRsaPss(params) => hash_pss(params.hash),
            Mechanism::RsaOaep { .. } => CKM_RSA_PKCS_OAEP,
            Mechanism::Ecdsa => CKM_ECDSA,
            Mechanism::EcdsaHash(alg) => ecdsa(*alg),
            Mechanism::Digest(alg) => digest(*alg),
            Mechanism::EdDsa => CKM_EDDSA,
            Mechanism::Ecdh1Derive { .. } => CKM_ECDH1_DERIVE,
        }
    }

    /// The hash the module computes over the data, for multi-part use.
    pub fn host_hash(&self) -> Option<HashAlg> {
        match self {
            Mechanism::HashRsaPkcs(alg) | Mechanism::EcdsaHash(alg) | Mechanism::Digest(alg) => {
                Some(*alg)
            }
            Mechanism::HashRsaPss(params) => Some(params.hash),
            _ => None,
        }
    }
}

/// Whether a mechanism type works on RSA keys.
pub fn is_rsa_mechanism(mechanism: CK_MECHANISM_TYPE) -> bool {
    matches!(
        mechanism,
        CKM_RSA_PKCS
            | CKM_RSA_X_509
            | CKM_RSA_PKCS_PSS
            | CKM_RSA_PKCS_OAEP
            | CKM_SHA1_RSA_PKCS
            | CKM_SHA224_RSA_PKCS
            | CKM_SHA256_RSA_PKCS
            | CKM_SHA384_RSA_PKCS
            | CKM_SHA512_RSA_PKCS
            | CKM_SHA1_RSA_PKCS_PSS
            | CKM_SHA224_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS
    )
}

const RSA_MIN_BITS: CK_ULONG = 1024;
const RSA_MAX_BITS: CK_ULONG = 4096;
const EC_MIN_BITS: CK_ULONG = 256;
const EC_MAX_BITS: CK_ULONG = 384;
const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
/// Ed25519 and X25519 keys, in bits (the size OpenSC reports for them).
const CURVE25519_BITS: CK_ULONG = 255;

/// The mechanisms offered, with their info, in `C_GetMechanismList` order.
pub fn supported() -> Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)> {
    let info = |min, max, flags| CK_MECHANISM_INFO {
        ulMinKeySize: min,
        ulMaxKeySize: max,
        flags,
    };
    let rsa_sign = info(RSA_MIN_BITS, RSA_MAX_BITS, CKF_HW | CKF_SIGN | CKF_VERIFY);
    let rsa_all = info(
        RSA_MIN_BITS,
        RSA_MAX_BITS,
        CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT,
    );
    let rsa_crypt = info(
        RSA_MIN_BITS,
        RSA_MAX_BITS,
        CKF_HW | CKF_ENCRYPT | CKF_DECRYPT,
    );
    let ecdsa = info(
        EC_MIN_BITS,
        EC_MAX_BITS,
        CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS,
    );
    let eddsa = info(
        CURVE25519_BITS,
        CURVE25519_BITS,
        CKF_HW | CKF_SIGN | CKF_VERIFY,
    );
    let ecdh = info(CURVE25519_BITS, EC_MAX_BITS, CKF_HW | CKF_DERIVE | EC_FLAGS);
    let digest = info(0, 0, CKF_DIGEST);
    vec![
        (CKM_RSA_PKCS, rsa_all),
        (CKM_RSA_X_509, rsa_all),
        (CKM_RSA_PKCS_PSS, rsa_sign),
        (CKM_RSA_PKCS_OAEP, rsa_crypt),
        (CKM_SHA1_RSA_PKCS, rsa_sign),
        (CKM_SHA224_RSA_PKCS, rsa_sign),
        (CKM_SHA256_RSA_PKCS, rsa_sign),
        (CKM_SHA384_RSA_PKCS, rsa_sign),
        (CKM_SHA512_RSA_PKCS, rsa_sign),
        (CKM_SHA1_RSA_PKCS_PSS, rsa_sign),
        (CKM_SHA224_RSA_PKCS_PSS, rsa_sign),
        (CKM_SHA256_RSA_PKCS_PSS, rsa_sign),
        (CKM_SHA384_RSA_PKCS_PSS, rsa_sign),
        (CKM_SHA512_RSA_PKCS_PSS, rsa_sign),
        (CKM_ECDSA, ecdsa),
        (CKM_ECDSA_SHA1, ecdsa),
        (CKM_ECDSA_SHA224, ecdsa),
        (CKM_ECDSA_SHA256, ecdsa),
        (CKM_ECDSA_SHA384, ecdsa),
        (CKM_ECDSA_SHA512, ecdsa),
        (CKM_EDDSA, eddsa),
        (CKM_ECDH1_DERIVE, ecdh),
        (CKM_SHA_1, digest),
        (CKM_SHA224, digest),
        (CKM_SHA256, digest),
        (CKM_SHA384, digest),
        (CKM_SHA512, digest),
    ]
}

/// The mechanisms a key allows (`CKA_ALLOWED_MECHANISMS`, and what
/// `C_SignInit`/`C_DecryptInit`/`C_DeriveKey` accept), in
/// `C_GetMechanismList` order. A card that pads RSA itself (OpenPGP) takes
/// only PKCS#1 v1.5 on a DigestInfo: no raw RSA, PSS or OAEP.
pub fn allowed_for(key: &crate::profile::KeyInfo) -> Vec<CK_MECHANISM_TYPE> {
    use crate::cert::PublicKey;
    supported()
        .into_iter()
        .map(|(mechanism, _)| mechanism)
        .filter(|&mechanism| match &key.public_key {
            PublicKey::Rsa { .. } => {
                is_rsa_mechanism(mechanism)
                    && if key.card_pads {
                        match mechanism {
                            CKM_RSA_PKCS => key.can_sign || key.can_decrypt,
                            CKM_SHA1_RSA_PKCS | CKM_SHA224_RSA_PKCS | CKM_SHA256_RSA_PKCS
                            | CKM_SHA384_RSA_PKCS | CKM_SHA512_RSA_PKCS => key.can_sign,
                            _ => false,
                        }
                    } else {
                        true
                    }
            }
            PublicKey::Ec { .. } => match mechanism {
                CKM_ECDSA | CKM_ECDSA_SHA1 | CKM_ECDSA_SHA224 | CKM_ECDSA_SHA256
                | CKM_ECDSA_SHA384 | CKM_ECDSA_SHA512 => key.can_sign,
                CKM_ECDH1_DERIVE => key.can_derive,
                _ => false,
            },
            PublicKey::Ed25519 { .. } => mechanism == CKM_EDDSA && key.can_sign,
            PublicKey::X25519 { .. } => mechanism == CKM_ECDH1_DERIVE && key.can_derive,
        })
        .collect()
}

/// The mechanisms a token with these keys offers (`C_GetMechanismList`):
/// those some key allows, and the digests.
pub fn for_keys(keys: &[crate::profile::KeyInfo]) -> Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)> {
    let allowed: Vec<Vec<CK_MECHANISM_TYPE>> = keys.iter().map(allowed_for).collect();
    supported()
        .into_iter()
        .filter(|(mechanism, info)| {
            info.flags & CKF_DIGEST != 0 || allowed.iter().any(|list| list.contains(mechanism))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_mechanisms_and_checks_parameters() {
        assert_eq!(
            Mechanism::from_raw(CKM_RSA_PKCS, &RawParams::None),
            Ok(Mechanism::RsaPkcs)
        );
        assert_eq!(
            Mechanism::from_raw(CKM_RSA_PKCS, &RawParams::Invalid),
            Err(Error::MechanismParamInvalid)
        );
        assert_eq!(
            Mechanism::from_raw(0x9999, &RawParams::None),
            Err(Error::MechanismInvalid)
        );
        let pss = RawParams::Pss {
            hash: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            salt_len: 32,
        };
        assert!(matches!(
            Mechanism::from_raw(CKM_SHA256_RSA_PKCS_PSS, &pss),
            Ok(Mechanism::HashRsaPss(PssParams { salt_len: 32, .. }))
        ));
        assert_eq!(
            Mechanism::from_raw(CKM_SHA384_RSA_PKCS_PSS, &pss),
            Err(Error::MechanismParamInvalid)
        );
        assert_eq!(
            Mechanism::from_raw(CKM_RSA_PKCS_PSS, &RawParams::None),
            Err(Error::MechanismParamInvalid)
        );
    }

    #[test]
    fn every_listed_mechanism_is_accepted() {
        for (mechanism, _) in supported() {
            let params = match mechanism {
                CKM_RSA_PKCS_PSS => RawParams::Pss {
                    hash: CKM_SHA256,
                    mgf: CKG_MGF1_SHA256,
                    salt_len: 32,
                },
                CKM_SHA1_RSA_PKCS_PSS => RawParams::Pss {
                    hash: CKM_SHA_1,
                    mgf: CKG_MGF1_SHA1,
                    salt_len: 20,
                },
                CKM_SHA224_RSA_PKCS_PSS => RawParams::Pss {
                    hash: CKM_SHA224,
                    mgf: CKG_MGF1_SHA224,
                    salt_len: 28,
                },
                CKM_SHA256_RSA_PKCS_PSS => RawParams::Pss {
                    hash: CKM_SHA256,
                    mgf: CKG_MGF1_SHA256,
                    salt_len: 32,
                },
                CKM_SHA384_RSA_PKCS_PSS => RawParams::Pss {
                    hash: CKM_SHA384,
                    mgf: CKG_MGF1_SHA384,
                    salt_len: 48,
                },
                CKM_SHA512_RSA_PKCS_PSS => RawParams::Pss {
                    hash: CKM_SHA512,
                    mgf: CKG_MGF1_SHA512,
                    salt_len: 64,
                },
                CKM_RSA_PKCS_OAEP => RawParams::Oaep {
                    hash: CKM_SHA256,
                    mgf: CKG_MGF1_SHA256,
                    source: CKZ_DATA_SPECIFIED,
                    source_data: vec![],
                },
                CKM_ECDH1_DERIVE => RawParams::Ecdh1 {
                    kdf: CKD_NULL,
                    shared_data: vec![],
                    public_data: vec![0x11; 32],
                },
                _ => RawParams::None,
            };
            let typed = Mechanism::from_raw(mechanism, &params);
            assert!(typed.is_ok(), "{mechanism:#x}");
            assert_eq!(typed.unwrap().kind(), mechanism);
        }
    }

    #[test]
    fn checks_ecdh_and_eddsa_parameters() {
        let ecdh = |kdf, shared: &[u8], public: &[u8]| {
            Mechanism::from_raw(
                CKM_ECDH1_DERIVE,
                &RawParams::Ecdh1 {
                    kdf,
                    shared_data: shared.to_vec(),
                    public_data: public.to_vec(),
                },
            )
        };
        let mut point = vec![0x04];
        point.extend_from_slice(&[7; 64]);
        assert_eq!(
            ecdh(CKD_NULL, &[], &point),
            Ok(Mechanism::Ecdh1Derive {
                public_data: point.clone()
            })
        );
        // The same point wrapped in a DER OCTET STRING.
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&point);
        assert_eq!(
            ecdh(CKD_NULL, &[], &wrapped),
            Ok(Mechanism::Ecdh1Derive {
                public_data: point.clone()
            })
        );
        let mut x25519_wrapped = vec![0x04, 0x20];
        x25519_wrapped.extend_from_slice(&[9; 32]);
        assert_eq!(
            ecdh(CKD_NULL, &[], &x25519_wrapped),
            Ok(Mechanism::Ecdh1Derive {
                public_data: vec![9; 32]
            })
        );
        assert_eq!(
            ecdh(CKD_SHA256_KDF, &[], &point),
            Err(Error::MechanismParamInvalid)
        );
        assert_eq!(
            ecdh(CKD_NULL, b"info", &point),
            Err(Error::MechanismParamInvalid)
        );
        assert_eq!(
            Mechanism::from_raw(CKM_ECDH1_DERIVE, &RawParams::None),
            Err(Error::MechanismParamInvalid)
        );
        let eddsa = |prehash, context: &[u8]| {
            Mechanism::from_raw(
                CKM_EDDSA,
                &RawParams::EdDsa {
                    prehash,
                    context: context.to_vec(),
                },
            )
        };
        assert_eq!(eddsa(false, &[]), Ok(Mechanism::EdDsa));
        assert_eq!(eddsa(true, &[]), Err(Error::MechanismParamInvalid));
        assert_eq!(eddsa(false, b"ctx"), Err(Error::MechanismParamInvalid));
    }
}
