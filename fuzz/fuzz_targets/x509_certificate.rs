//! X.509 as the module reads it (src/cert.rs): the certificate's names,
//! serial and public key, and what the token layer asks of the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card::cert::{parse_certificate, PublicKey};
use p11card::token::key_type;

fuzz_target!(|data: &[u8]| {
    let Ok(certificate) = parse_certificate(data) else {
        return;
    };
    assert_eq!(certificate.der, data);
    let key = &certificate.public_key;
    let _ = key.bits();
    let _ = key.signature_len();
    let _ = key.ec_params();
    let _ = key.ec_point();
    let _ = key_type(key);
    if let PublicKey::Rsa { .. } = key {
        let _ = key.to_rsa();
    }
});
