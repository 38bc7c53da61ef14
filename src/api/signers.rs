//! Card keys as RustCrypto signers: ECDSA (P-256, P-384) and RSA (PKCS#1
//! v1.5, PSS). The card signs; the module checks each signature with the
//! key's public key before it is returned.

use super::error::Error;
use super::key::Key;
use crate::mechanism::RawParams;
use cryptoki_sys::*;
use signature::digest::{Digest, FixedOutputReset};
use signature::hazmat::PrehashSigner;
use signature::{DigestSigner, Keypair, Signer};

/// A signature of the wrong shape from the card (the module has checked
/// it, so this does not happen with a working card).
fn malformed<E>(_: E) -> signature::Error {
    Error::BadCard.into()
}

macro_rules! ecdsa_signer {
    ($name:ident, $krate:ident, $curve:literal, $hash_mechanism:ident) => {
        #[doc = concat!("A card key as an ECDSA ", $curve, " signer: [`Signer`] hashes with the")]
        #[doc = concat!("curve's hash (`", stringify!($hash_mechanism), "` on the card's side),")]
        /// [`DigestSigner`] and [`PrehashSigner`] sign a hash made by the
        /// caller, [`Keypair`] gives the verifying key.
        #[derive(Debug, Clone)]
        pub struct $name {
            key: Key,
            verifying_key: $krate::ecdsa::VerifyingKey,
        }

        impl $name {
            pub(super) fn new(key: Key, verifying_key: $krate::ecdsa::VerifyingKey) -> Self {
                $name { key, verifying_key }
            }

            /// The card key behind the signer.
            pub fn key(&self) -> &Key {
                &self.key
            }
        }

        impl Signer<$krate::ecdsa::Signature> for $name {
            fn try_sign(&self, msg: &[u8]) -> Result<$krate::ecdsa::Signature, signature::Error> {
                let raw = self
                    .key
                    .sign_on_card($hash_mechanism, RawParams::None, msg)?;
                $krate::ecdsa::Signature::from_slice(&raw).map_err(malformed)
            }
        }

        impl Signer<$krate::ecdsa::DerSignature> for $name {
            fn try_sign(
                &self,
                msg: &[u8],
            ) -> Result<$krate::ecdsa::DerSignature, signature::Error> {
                let signature: $krate::ecdsa::Signature = self.try_sign(msg)?;
                Ok(signature.to_der())
            }
        }

        impl PrehashSigner<$krate::ecdsa::Signature> for $name {
            fn sign_prehash(
                &self,
                prehash: &[u8],
            ) -> Result<$krate::ecdsa::Signature, signature::Error> {
                let raw = self.key.sign_on_card(CKM_ECDSA, RawParams::None, prehash)?;
                $krate::ecdsa::Signature::from_slice(&raw).map_err(malformed)
            }
        }

        impl<D: Digest> DigestSigner<D, $krate::ecdsa::Signature> for $name {
            fn try_sign_digest(
                &self,
                digest: D,
            ) -> Result<$krate::ecdsa::Signature, signature::Error> {
                self.sign_prehash(&digest.finalize())
            }
        }

        impl Keypair for $name {
            type VerifyingKey = $krate::ecdsa::VerifyingKey;

            fn verifying_key(&self) -> Self::VerifyingKey {
                self.verifying_key
            }
        }
    };
}

ecdsa_signer!(P256Signer, p256, "P-256", CKM_ECDSA_SHA256);
ecdsa_signer!(P384Signer, p384, "P-384", CKM_ECDSA_SHA384);

mod sealed {
    /// The PKCS#11 names of a hash, for the RSA signers.
    pub trait HashMechanisms {
        /// `CKM_SHAx`.
        const DIGEST: cryptoki_sys::CK_MECHANISM_TYPE;
        /// `CKM_SHAx_RSA_PKCS`.
        const PKCS1V15: cryptoki_sys::CK_MECHANISM_TYPE;
        /// `CKM_SHAx_RSA_PKCS_PSS`.
        const PSS: cryptoki_sys::CK_MECHANISM_TYPE;
        /// `CKG_MGF1_SHAx`.
        const MGF1: cryptoki_sys::CK_RSA_PKCS_MGF_TYPE;
    }
}

/// A hash the RSA signers sign with: `sha2::Sha256`, `Sha384` or `Sha512`.
pub trait RsaHash:
    Digest + FixedOutputReset + der::oid::AssociatedOid + sealed::HashMechanisms
{
}

macro_rules! rsa_hash {
    ($hash:ty, $digest:ident, $pkcs1:ident, $pss:ident, $mgf:ident) => {
        impl sealed::HashMechanisms for $hash {
            const DIGEST: CK_MECHANISM_TYPE = $digest;
            const PKCS1V15: CK_MECHANISM_TYPE = $pkcs1;
            const PSS: CK_MECHANISM_TYPE = $pss;
            const MGF1: CK_RSA_PKCS_MGF_TYPE = $mgf;
        }
        impl RsaHash for $hash {}
    };
}

rsa_hash!(
    sha2::Sha256,
    CKM_SHA256,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKG_MGF1_SHA256
);
rsa_hash!(
    sha2::Sha384,
    CKM_SHA384,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKG_MGF1_SHA384
);
rsa_hash!(
    sha2::Sha512,
    CKM_SHA512,
    CKM_SHA512_RSA_PKCS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKG_MGF1_SHA512
);

/// A card key as an RSA PKCS#1 v1.5 signer hashing with `D`; [`Keypair`]
/// gives the verifying key.
#[derive(Debug, Clone)]
pub struct RsaPkcs1v15Signer<D: RsaHash> {
    key: Key,
    verifying_key: rsa::pkcs1v15::VerifyingKey<D>,
}

impl<D: RsaHash> RsaPkcs1v15Signer<D> {
    pub(super) fn new(key: Key, public: rsa::RsaPublicKey) -> Self {
        RsaPkcs1v15Signer {
            key,
            verifying_key: rsa::pkcs1v15::VerifyingKey::new(public),
        }
    }

    /// The card key behind the signer.
    pub fn key(&self) -> &Key {
        &self.key
    }
}

impl<D: RsaHash> Signer<rsa::pkcs1v15::Signature> for RsaPkcs1v15Signer<D> {
    fn try_sign(&self, msg: &[u8]) -> Result<rsa::pkcs1v15::Signature, signature::Error> {
        let raw = self.key.sign_on_card(D::PKCS1V15, RawParams::None, msg)?;
        rsa::pkcs1v15::Signature::try_from(raw.as_slice()).map_err(malformed)
    }
}

impl<D: RsaHash> Keypair for RsaPkcs1v15Signer<D> {
    type VerifyingKey = rsa::pkcs1v15::VerifyingKey<D>;

    fn verifying_key(&self) -> Self::VerifyingKey {
        self.verifying_key.clone()
    }
}

/// A card key as an RSA-PSS signer hashing with `D` (MGF1 with `D`, a salt
/// as long as the hash, as TLS 1.3 wants); [`Keypair`] gives the verifying
/// key.
#[derive(Debug, Clone)]
pub struct RsaPssSigner<D: RsaHash> {
    key: Key,
    verifying_key: rsa::pss::VerifyingKey<D>,
}

impl<D: RsaHash> RsaPssSigner<D> {
    pub(super) fn new(key: Key, public: rsa::RsaPublicKey) -> Self {
        RsaPssSigner {
            key,
            verifying_key: rsa::pss::VerifyingKey::new(public),
        }
    }

    /// The card key behind the signer.
    pub fn key(&self) -> &Key {
        &self.key
    }
}

impl<D: RsaHash> Signer<rsa::pss::Signature> for RsaPssSigner<D> {
    fn try_sign(&self, msg: &[u8]) -> Result<rsa::pss::Signature, signature::Error> {
        let params = RawParams::Pss {
            hash: D::DIGEST,
            mgf: D::MGF1,
            salt_len: <D as Digest>::output_size() as CK_ULONG,
        };
        let raw = self.key.sign_on_card(D::PSS, params, msg)?;
        rsa::pss::Signature::try_from(raw.as_slice()).map_err(malformed)
    }
}

impl<D: RsaHash> Keypair for RsaPssSigner<D> {
    type VerifyingKey = rsa::pss::VerifyingKey<D>;

    fn verifying_key(&self) -> Self::VerifyingKey {
        self.verifying_key.clone()
    }
}
