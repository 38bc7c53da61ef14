//! Mechanisms: the table of those the module offers ([`table`]), a
//! caller's mechanism in typed form, and the one place that prepares what
//! the card gets and computes what the host does ([`host`]).

pub mod host;
pub mod table;

use crate::crypto::HashAlg;
use crate::error::{Error, Result};
use cryptoki_sys::*;
pub use table::{
    allowed_for, for_keys, is_rsa_mechanism, parameters_of, spec_of, supported, KeyFamily,
    MechanismSpec, Parameters, Purpose, Scheme, MECHANISMS,
};

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
    let hash = table::digest_hash(*hash).ok_or(Error::MechanismParamInvalid)?;
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

fn oaep(params: &RawParams) -> Result<Mechanism> {
    let RawParams::Oaep {
        hash,
        mgf,
        source,
        source_data,
    } = params
    else {
        return Err(Error::MechanismParamInvalid);
    };
    let hash = table::digest_hash(*hash).ok_or(Error::MechanismParamInvalid)?;
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

fn eddsa(params: &RawParams) -> Result<Mechanism> {
    match params {
        RawParams::None => Ok(Mechanism::EdDsa),
        // Plain Ed25519 only: no prehash, no context (Ed25519ctx).
        RawParams::EdDsa { prehash, context } if !prehash && context.is_empty() => {
            Ok(Mechanism::EdDsa)
        }
        _ => Err(Error::MechanismParamInvalid),
    }
}

fn ecdh(params: &RawParams) -> Result<Mechanism> {
    match params {
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
    }
}

impl Mechanism {
    /// Types and checks a mechanism from the C caller: its row in the
    /// table, then its parameter.
    pub fn from_raw(mechanism: CK_MECHANISM_TYPE, params: &RawParams) -> Result<Mechanism> {
        let spec = spec_of(mechanism).ok_or(Error::MechanismInvalid)?;
        let hash = spec.host_hash;
        match spec.scheme {
            Scheme::RsaPkcs1 => no_params(
                params,
                hash.map_or(Mechanism::RsaPkcs, Mechanism::HashRsaPkcs),
            ),
            Scheme::RsaRaw => no_params(params, Mechanism::RsaX509),
            Scheme::RsaPss => pss_params(params, hash).map(|pss| match hash {
                Some(_) => Mechanism::HashRsaPss(pss),
                None => Mechanism::RsaPss(pss),
            }),
            Scheme::RsaOaep => oaep(params),
            Scheme::Ecdsa => no_params(params, hash.map_or(Mechanism::Ecdsa, Mechanism::EcdsaHash)),
            Scheme::EdDsa => eddsa(params),
            Scheme::Ecdh => ecdh(params),
            Scheme::Digest => match hash {
                Some(alg) => no_params(params, Mechanism::Digest(alg)),
                None => Err(Error::MechanismInvalid),
            },
        }
    }

    /// The mechanism's scheme and host hash: what finds its table row.
    pub fn scheme_and_hash(&self) -> (Scheme, Option<HashAlg>) {
        match self {
            Mechanism::RsaPkcs => (Scheme::RsaPkcs1, None),
            Mechanism::HashRsaPkcs(alg) => (Scheme::RsaPkcs1, Some(*alg)),
            Mechanism::RsaX509 => (Scheme::RsaRaw, None),
            Mechanism::RsaPss(_) => (Scheme::RsaPss, None),
            Mechanism::HashRsaPss(params) => (Scheme::RsaPss, Some(params.hash)),
            Mechanism::RsaOaep { .. } => (Scheme::RsaOaep, None),
            Mechanism::Ecdsa => (Scheme::Ecdsa, None),
            Mechanism::EcdsaHash(alg) => (Scheme::Ecdsa, Some(*alg)),
            Mechanism::EdDsa => (Scheme::EdDsa, None),
            Mechanism::Ecdh1Derive { .. } => (Scheme::Ecdh, None),
            Mechanism::Digest(alg) => (Scheme::Digest, Some(*alg)),
        }
    }

    /// The mechanism's row in the table (every typed mechanism has one).
    pub fn spec(&self) -> Option<&'static MechanismSpec> {
        let (scheme, hash) = self.scheme_and_hash();
        table::spec_for(scheme, hash)
    }

    /// Whether the mechanism works on RSA keys (else EC, or no key).
    pub fn is_rsa(&self) -> bool {
        self.spec()
            .is_some_and(|spec| spec.family == KeyFamily::Rsa)
    }

    /// The mechanism's `CK_MECHANISM_TYPE` (`CKM_VENDOR_DEFINED` for none,
    /// which no typed mechanism lacks).
    pub fn kind(&self) -> CK_MECHANISM_TYPE {
        self.spec().map_or(CKM_VENDOR_DEFINED, |spec| spec.kind)
    }

    /// The hash the module computes over the data, for multi-part use.
    pub fn host_hash(&self) -> Option<HashAlg> {
        self.scheme_and_hash().1
    }
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
