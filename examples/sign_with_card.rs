//! Uses the `p11card` crate's Rust API (no PKCS#11, no C): lists the PC/SC
//! readers and their cards, logs in with the PIN from `P11CARD_PIN`, lists
//! the card's keys, and signs a message with the first key that can sign
//! without asking for the PIN again, checking the signature with the key's
//! public key.
//!
//! ```sh
//! P11CARD_PIN=123456 cargo run --example sign_with_card -- "message"
//! ```

use p11card::api::{EcCurve, KeyKind};
use p11card::{Context, Key};
use signature::{Keypair, SignatureEncoding, Signer, Verifier};
use zeroize::Zeroizing;

type Failure = Box<dyn std::error::Error>;

/// Signs `message` with `key` as its kind wants; returns the signature.
fn sign(key: &Key, message: &[u8]) -> Result<Vec<u8>, Failure> {
    Ok(match key.kind() {
        KeyKind::Ec(EcCurve::P256) => {
            let signer = key.p256_signer()?;
            let signature: p256::ecdsa::Signature = signer.try_sign(message)?;
            signer.verifying_key().verify(message, &signature)?;
            signature.to_vec()
        }
        KeyKind::Ec(EcCurve::P384) => {
            let signer = key.p384_signer()?;
            let signature: p384::ecdsa::Signature = signer.try_sign(message)?;
            signer.verifying_key().verify(message, &signature)?;
            signature.to_vec()
        }
        KeyKind::Rsa { .. } => {
            let signer = key.rsa_pkcs1v15_signer::<sha2::Sha256>()?;
            let signature = signer.try_sign(message)?;
            signer.verifying_key().verify(message, &signature)?;
            signature.to_vec()
        }
        other => return Err(format!("this example does not sign with {other:?} keys").into()),
    })
}

fn main() -> Result<(), Failure> {
    let message = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "hello from p11card".into());
    let context = Context::new();
    for reader in context.readers()? {
        if !reader.has_card() {
            println!("{}: no card", reader.name());
            continue;
        }
        match reader.card().and_then(|card| card.token_info()) {
            Ok(info) => println!(
                "{}: {:?}, serial {}, {} {}, PIN tries {:?}",
                reader.name(),
                info.label,
                info.serial,
                info.manufacturer,
                info.model,
                info.pin_tries
            ),
            Err(err) => println!("{}: {err}", reader.name()),
        }
    }

    let card = context.first_card()?;
    let pin = Zeroizing::new(
        std::env::var("P11CARD_PIN").map_err(|_| "set P11CARD_PIN to the card's PIN")?,
    );
    card.login(pin.as_bytes())?;
    drop(pin);

    let keys = card.keys()?;
    for key in &keys {
        let subject = key
            .certificate()
            .map_or("(no certificate)", |c| c.subject());
        println!("key {:?} {:?}: {subject}", key.label(), key.kind());
    }
    let key = keys
        .iter()
        .find(|key| {
            key.capabilities()
                .is_some_and(|caps| caps.sign && !caps.pin_every_use)
        })
        .ok_or("no key signs without asking for the PIN again")?;
    let signature = sign(key, message.as_bytes())?;
    let hex: String = signature.iter().map(|b| format!("{b:02x}")).collect();
    println!(
        "signed {message:?} with {:?}: {} bytes: {hex}",
        key.label(),
        signature.len()
    );
    card.logout()?;
    Ok(())
}
