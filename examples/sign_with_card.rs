//! Uses the `p11card` crate directly (no C ABI): lists the PC/SC readers and
//! their tokens, logs in with the PIN from `P11CARD_PIN`, and signs a message
//! with the card's first signing key.
//!
//! ```sh
//! P11CARD_PIN=123456 cargo run --example sign_with_card -- "message"
//! ```

use cryptoki_sys::*;
use p11card::crypto::HashAlg;
use p11card::mechanism::Mechanism;
use p11card::profile::ProfileSet;
use p11card::session::Output;
use p11card::token::AttrValue;
use p11card::transport::pcsc::PcscBackend;
use p11card::Module;

fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).trim_end().to_string()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let message = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "hello from p11card".into());
    let module = Module::new(Box::new(PcscBackend::new()), ProfileSet::embedded());
    let slots = module.slot_list(true, true)?;
    if slots.is_empty() {
        println!("no card in any reader");
        return Ok(());
    }
    for &slot in &slots {
        let reader = module.slot_info(slot)?;
        match module.token_info(slot) {
            Ok(token) => println!(
                "slot {slot}: {} — token {:?}, serial {}",
                text(&reader.slotDescription),
                text(&token.label),
                text(&token.serialNumber)
            ),
            Err(err) => println!("slot {slot}: {} — {err}", text(&reader.slotDescription)),
        }
    }
    let slot = slots[0];
    let session = module.open_session(slot, CKF_SERIAL_SESSION)?;
    let pin = std::env::var("P11CARD_PIN").map_err(|_| "set P11CARD_PIN to the card's PIN")?;
    module.login(session, CKU_USER, Some(pin.as_bytes()))?;

    module.find_init(
        session,
        vec![(CKA_CLASS, CKO_PRIVATE_KEY.to_ne_bytes().to_vec())],
    )?;
    let keys = module.find_next(session, 16)?;
    module.find_final(session)?;
    for key in keys {
        let values = module.attributes(
            session,
            key,
            &[CKA_KEY_TYPE, CKA_LABEL, CKA_ALWAYS_AUTHENTICATE],
        )?;
        let [Some(AttrValue::Bytes(key_type)), Some(AttrValue::Bytes(label)), Some(AttrValue::Bytes(always))] =
            values.as_slice()
        else {
            continue;
        };
        if always.first() == Some(&CK_TRUE) {
            continue; // needs the PIN again right before use; skip for this demo
        }
        let mechanism = if key_type.as_slice() == CKK_EC.to_ne_bytes() {
            Mechanism::EcdsaHash(HashAlg::Sha256)
        } else {
            Mechanism::HashRsaPkcs(HashAlg::Sha256)
        };
        module.sign_init(session, mechanism, key)?;
        if let Output::Done(signature) = module.sign(session, message.as_bytes(), Some(1024))? {
            println!(
                "signed {:?} with {:?}: {} bytes: {}",
                message,
                String::from_utf8_lossy(label),
                signature.len(),
                signature
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
        }
        break;
    }
    module.logout(session)?;
    module.close_session(session)?;
    Ok(())
}
