//! Loads the built module (`libp11card_pkcs11.so`) through the `cryptoki`
//! crate, as any Rust PKCS#11 consumer would: lists tokens, logs in with the
//! PIN from `P11CARD_PIN`, signs with the card's authentication key and
//! verifies the signature.
//!
//! ```sh
//! cargo build --release -p p11card-pkcs11
//! P11CARD_PIN=123456 cargo run -p p11card-pkcs11 --example cryptoki_client -- target/release/libp11card_pkcs11.so
//! ```

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/libp11card_pkcs11.so".into());
    let pkcs11 = Pkcs11::new(&path)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let info = pkcs11.get_library_info()?;
    println!(
        "module: {} {}",
        info.manufacturer_id(),
        info.library_description()
    );

    let slots = pkcs11.get_slots_with_token()?;
    for slot in &slots {
        let token = pkcs11.get_token_info(*slot)?;
        println!(
            "slot {}: token {:?}, serial {}",
            slot.id(),
            token.label(),
            token.serial_number()
        );
    }
    let Some(slot) = slots.first().copied() else {
        println!("no card");
        return Ok(());
    };
    let session = pkcs11.open_ro_session(slot)?;
    let pin = std::env::var("P11CARD_PIN").map_err(|_| "set P11CARD_PIN to the card's PIN")?;
    session.login(UserType::User, Some(&AuthPin::new(pin.into())))?;

    // The PIV authentication key (CKA_ID 01), as OpenSC numbers it too.
    let template = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Id(vec![0x01]),
    ];
    let key = *session
        .find_objects(&template)?
        .first()
        .ok_or("no key with CKA_ID 01")?;
    let key_type = session.get_attributes(key, &[AttributeType::KeyType])?;
    let mechanism = match key_type.first() {
        Some(Attribute::KeyType(kind)) if *kind == KeyType::EC => Mechanism::EcdsaSha256,
        _ => Mechanism::Sha256RsaPkcs,
    };
    let data = b"signed by the card through cryptoki";
    let signature = session.sign(&mechanism, key, data)?;
    println!("signature ({} bytes) from key 01", signature.len());

    let public_template = [
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Id(vec![0x01]),
    ];
    let public = *session
        .find_objects(&public_template)?
        .first()
        .ok_or("no public key 01")?;
    session.verify(&mechanism, public, data, &signature)?;
    println!("signature verified");
    session.logout()?;
    Ok(())
}
