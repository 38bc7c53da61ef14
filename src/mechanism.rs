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
    /// A parameter the mechanism does not take, or of the wrong size.
    Invalid,
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
            Mechanism::Ecdsa | Mechanism::EcdsaHash(_) | Mechanism::Digest(_)
        )
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
        (CKM_SHA_1, digest),
        (CKM_SHA224, digest),
        (CKM_SHA256, digest),
        (CKM_SHA384, digest),
        (CKM_SHA512, digest),
    ]
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
                _ => RawParams::None,
            };
            assert!(
                Mechanism::from_raw(mechanism, &params).is_ok(),
                "{mechanism:#x}"
            );
        }
    }
}
