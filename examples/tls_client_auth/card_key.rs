//! A card key as a rustls client-certificate key: rustls's `SigningKey` and
//! `Signer` over the `p11card` signers, and a `ResolvesClientCert` that
//! offers the key's certificate to the server.

use p11card::api::{KeyKind, P256Signer, P384Signer};
use p11card::Key;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use signature::{SignatureEncoding, Signer as _};
use std::sync::Arc;

/// The card key in the form that fits its kind.
#[derive(Debug, Clone)]
enum CardKey {
    P256(P256Signer),
    P384(P384Signer),
    Rsa(Key),
}

/// The TLS signature schemes an RSA card key offers, best first (TLS 1.3
/// takes only PSS).
const RSA_SCHEMES: [SignatureScheme; 6] = [
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

impl CardKey {
    fn schemes(&self) -> &'static [SignatureScheme] {
        match self {
            CardKey::P256(_) => &[SignatureScheme::ECDSA_NISTP256_SHA256],
            CardKey::P384(_) => &[SignatureScheme::ECDSA_NISTP384_SHA384],
            CardKey::Rsa(_) => &RSA_SCHEMES,
        }
    }

    /// Signs `message` on the card as TLS wants it for `scheme` (ECDSA as
    /// DER, RSA as the bare signature).
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        use sha2::{Sha256, Sha384, Sha512};
        Ok(match (self, scheme) {
            (CardKey::P256(signer), _) => {
                let signature: p256::ecdsa::DerSignature = signer.try_sign(message)?;
                signature.to_vec()
            }
            (CardKey::P384(signer), _) => {
                let signature: p384::ecdsa::DerSignature = signer.try_sign(message)?;
                signature.to_vec()
            }
            (CardKey::Rsa(key), SignatureScheme::RSA_PSS_SHA256) => {
                key.rsa_pss_signer::<Sha256>()?.try_sign(message)?.to_vec()
            }
            (CardKey::Rsa(key), SignatureScheme::RSA_PSS_SHA384) => {
                key.rsa_pss_signer::<Sha384>()?.try_sign(message)?.to_vec()
            }
            (CardKey::Rsa(key), SignatureScheme::RSA_PSS_SHA512) => {
                key.rsa_pss_signer::<Sha512>()?.try_sign(message)?.to_vec()
            }
            (CardKey::Rsa(key), SignatureScheme::RSA_PKCS1_SHA256) => key
                .rsa_pkcs1v15_signer::<Sha256>()?
                .try_sign(message)?
                .to_vec(),
            (CardKey::Rsa(key), SignatureScheme::RSA_PKCS1_SHA384) => key
                .rsa_pkcs1v15_signer::<Sha384>()?
                .try_sign(message)?
                .to_vec(),
            (CardKey::Rsa(key), _) => key
                .rsa_pkcs1v15_signer::<Sha512>()?
                .try_sign(message)?
                .to_vec(),
        })
    }
}

impl SigningKey for CardKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = *self.schemes().iter().find(|s| offered.contains(s))?;
        Some(Box::new(CardSigner {
            key: self.clone(),
            scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            CardKey::P256(_) | CardKey::P384(_) => SignatureAlgorithm::ECDSA,
            CardKey::Rsa(_) => SignatureAlgorithm::RSA,
        }
    }
}

/// One handshake's signature with the card key.
#[derive(Debug)]
struct CardSigner {
    key: CardKey,
    scheme: SignatureScheme,
}

impl Signer for CardSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.key
            .sign(self.scheme, message)
            .map_err(|err| rustls::Error::General(format!("the card did not sign: {err:?}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Offers a card key's certificate to servers that ask for a client
/// certificate.
#[derive(Debug)]
pub struct CardClientCert {
    certified: Arc<CertifiedKey>,
}

impl CardClientCert {
    /// The client certificate of `key` (which must hold a certificate and be
    /// an ECDSA P-256/P-384 or RSA key).
    pub fn new(key: &Key) -> Result<CardClientCert, Box<dyn std::error::Error>> {
        let certificate = key.certificate().ok_or("the key has no certificate")?;
        let card_key = match key.kind() {
            KeyKind::Rsa { .. } => CardKey::Rsa(key.clone()),
            KeyKind::Ec(p11card::api::EcCurve::P256) => CardKey::P256(key.p256_signer()?),
            KeyKind::Ec(p11card::api::EcCurve::P384) => CardKey::P384(key.p384_signer()?),
            other => return Err(format!("no TLS client authentication with {other:?}").into()),
        };
        let chain = vec![CertificateDer::from(certificate.der().to_vec())];
        Ok(CardClientCert {
            certified: Arc::new(CertifiedKey::new(chain, Arc::new(card_key))),
        })
    }
}

impl ResolvesClientCert for CardClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let usable = self.certified.key.choose_scheme(sigschemes).is_some();
        usable.then(|| Arc::clone(&self.certified))
    }

    fn has_certs(&self) -> bool {
        true
    }
}
