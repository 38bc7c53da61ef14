//! The audit trail (issue 16) through the C ABI: with `[audit]` in the
//! configuration file named by `P11CARD_CONFIG`, the card, each login (a
//! wrong PIN with the tries left), each signature and decryption (key ID,
//! certificate subject and fingerprint, mechanism, result) and PIN changes
//! are recorded, one line each, and neither the PIN nor the data signed or
//! decrypted nor any result is.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::Slot;
use std::path::PathBuf;

/// The trail's file (one per test process: the tests share it, each
/// looks for its own events).
fn trail() -> PathBuf {
    std::env::temp_dir()
        .join(format!("p11card-audit-test-{}", std::process::id()))
        .join("audit.log")
}

fn harness() -> (Harness, p11card_cardsim::SimCard) {
    static CONFIG: std::sync::Once = std::sync::Once::new();
    CONFIG.call_once(|| {
        let file = trail();
        let dir = file.parent().unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("p11card.toml");
        std::fs::write(
            &config,
            format!(
                "[audit]\nenabled = true\nfile = {:?}\n",
                file.display().to_string()
            ),
        )
        .unwrap();
        std::env::set_var("P11CARD_CONFIG", &config);
    });
    Harness::new()
}

/// The trail's lines without the token serial (a serial may hold any
/// digits).
fn lines() -> Vec<String> {
    std::fs::read_to_string(trail())
        .unwrap_or_default()
        .lines()
        .map(|line| {
            line.split(' ')
                .filter(|field| !field.starts_with("serial="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn logins_signatures_decryptions_and_pin_changes_are_recorded_without_secrets() {
    let (harness, card) = harness();
    let session = open_session(harness.slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION);
    assert_eq!(login(session, CKU_USER, "654321"), CKR_PIN_INCORRECT);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let key = private_key(session, Slot::Authentication);
    let message = b"the data the card signs: never in the trail";
    sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, message).unwrap();
    let ciphertext = check::rsa(&card_public_key(&card, Slot::Authentication))
        .encrypt(
            &mut rsa::rand_core::OsRng,
            rsa::Pkcs1v15Encrypt,
            b"decrypted: not in the trail",
        )
        .unwrap();
    let plain = decrypt(session, &mut Mech::new(CKM_RSA_PKCS), key, &ciphertext).unwrap();
    assert_eq!(plain, b"decrypted: not in the trail");
    let (old, new) = (PIN.as_bytes(), b"24681357");
    assert_eq!(
        ck!(C_SetPIN(
            session,
            old.as_ptr() as *mut u8,
            old.len() as CK_ULONG,
            new.as_ptr() as *mut u8,
            new.len() as CK_ULONG
        )),
        CKR_OK
    );
    assert_eq!(
        ck!(C_SetPIN(
            session,
            new.as_ptr() as *mut u8,
            new.len() as CK_ULONG,
            old.as_ptr() as *mut u8,
            old.len() as CK_ULONG
        )),
        CKR_OK
    );

    let lines = lines();
    let find = |parts: &[&str]| {
        lines
            .iter()
            .find(|line| parts.iter().all(|part| line.contains(part)))
            .unwrap_or_else(|| panic!("no line with {parts:?} in\n{}", lines.join("\n")))
            .clone()
    };
    find(&["event=card", "reader=", "profile="]);
    find(&[
        "event=login",
        "user=user",
        "result=PinIncorrect",
        "tries_left=2",
    ]);
    find(&["event=login", "user=user", "result=ok"]);
    let signed = find(&["event=sign", "key_id=01", "mechanism=0x40", "result=ok"]);
    assert!(signed.contains("subject=") && signed.contains("cert_sha256="));
    find(&["event=decrypt", "key_id=01", "mechanism=0x1", "result=ok"]);
    find(&["event=pin-change", "result=ok"]);
    assert!(lines
        .iter()
        .all(|l| l.contains("program=") && l.contains("pid=")));

    let text = lines.join("\n");
    for secret in ["123456", "24681357", "654321"] {
        assert!(!text.contains(secret), "{secret} in the trail:\n{text}");
    }
    assert!(!text.contains("never in the trail") && !text.contains("not in the trail"));
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert!(!text.to_lowercase().contains(&hex(&message[..8])));
}

#[test]
fn a_pulled_card_is_recorded_as_gone() {
    let (harness, _card) = harness();
    let slot = harness.slot();
    token_info(slot).unwrap();
    harness.backend.remove(p11card_cardsim::DEFAULT_READER);
    assert_eq!(token_info(slot).err(), Some(CKR_TOKEN_NOT_PRESENT));
    let lines = lines();
    assert!(
        lines.iter().any(|l| l.contains("event=card-gone")
            && l.contains("reader=")
            && l.contains("profile=")),
        "{}",
        lines.join("\n")
    );
}
