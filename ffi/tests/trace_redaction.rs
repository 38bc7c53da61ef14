//! Issue 11, finding 2: secrets never reach the log, not even at trace
//! level. The module runs with `P11CARD_LOG=trace` into a file, as a user
//! debugging a card would set it up, while a consumer logs in, decrypts with
//! RSA, agrees on a key with ECDH and changes the PIN on the simulated PIV
//! and OpenPGP cards, with responses whole and split into `61xx` pieces.
//! Then no PIN, plaintext, raw RSA block or shared secret may appear in the
//! log, whole or as any 8-byte piece, in upper- or lower-case hex.
//!
//! The logger is process-wide and set at the first `C_Initialize`: this
//! binary holds only these tests, and each sets the environment before it.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{KeyRole, PgpKeyType, SimBackend, SimCard, SimOpenPgpCard, SimPivCard};
use std::path::PathBuf;
use std::ptr;
use std::sync::OnceLock;

/// The log file, set up (before the first `C_Initialize`) on first use.
fn log_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace-redaction.log");
        let _ = std::fs::remove_file(&file);
        std::env::set_var("P11CARD_LOG", "trace");
        std::env::set_var("P11CARD_LOG_FILE", &file);
        file
    })
}

/// What was logged from byte `since` of the log on (each test looks at
/// its own part: one module at a time runs in this binary).
fn log_text(since: usize) -> String {
    let log = std::fs::read_to_string(log_file()).unwrap_or_default();
    log.get(since..).unwrap_or_default().to_owned()
}

/// Where the log ends now.
fn log_end() -> usize {
    std::fs::metadata(log_file()).map_or(0, |m| m.len() as usize)
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The forms of `secret` that must not appear: all of it and every 8-byte
/// window, in both cases of hex.
fn forbidden_forms(secret: &[u8]) -> Vec<String> {
    let mut parts: Vec<&[u8]> = secret.windows(8.min(secret.len())).collect();
    parts.push(secret);
    parts
        .into_iter()
        .flat_map(|part| [upper_hex(part), upper_hex(part).to_lowercase()])
        .collect()
}

fn assert_not_logged(log: &str, what: &str, secret: &[u8]) {
    for form in forbidden_forms(secret) {
        if let Some(at) = log.find(&form) {
            let line = log[..at].lines().count();
            panic!("{what} in the trace at line {line}: {form}");
        }
    }
}

/// The trace is really on: a public certificate's bytes are in it.
fn assert_trace_is_on(log: &str, certificate: &[u8]) {
    assert!(log.contains("TRACE"), "no trace records:\n{log}");
    assert!(
        log.contains(&upper_hex(&certificate[..8])),
        "the certificate's response data is not traced"
    );
}

/// Bytes that look like nothing else in a trace.
fn distinctive(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 0x01)
        .collect()
}

/// A private key with `usage` (`CKA_DECRYPT`, `CKA_DERIVE`) and its public
/// key.
fn key_pair(
    session: CK_SESSION_HANDLE,
    usage: CK_ATTRIBUTE_TYPE,
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let private = find(
        session,
        &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY)), (usage, vec![CK_TRUE])],
    );
    assert!(!private.is_empty(), "no key for {usage:#x}");
    let id = attribute(session, private[0], CKA_ID).unwrap();
    let public = find(session, &[(CKA_CLASS, ulong(CKO_PUBLIC_KEY)), (CKA_ID, id)]);
    (private[0], public[0])
}

/// RSA decryption of a distinctive message, PKCS#1 v1.5 and (where the key
/// allows) raw; returns the secrets the card's answers held.
fn decrypt_secrets(session: CK_SESSION_HANDLE) -> Vec<Vec<u8>> {
    let (private, public) = key_pair(session, CKA_DECRYPT);
    let message = distinctive(48, 0x5B);
    let ciphertext = encrypt(session, &mut Mech::new(CKM_RSA_PKCS), public, &message).unwrap();
    let plain = decrypt(session, &mut Mech::new(CKM_RSA_PKCS), private, &ciphertext).unwrap();
    assert_eq!(plain, message);
    let mut secrets = vec![message];
    let modulus = attribute(session, public, CKA_MODULUS).unwrap();
    let mut block = distinctive(modulus.len(), 0x2D);
    block[0] = 0;
    let ciphertext = encrypt(session, &mut Mech::new(CKM_RSA_X_509), public, &block);
    if let Ok(ciphertext) = ciphertext {
        if let Ok(raw) = decrypt(session, &mut Mech::new(CKM_RSA_X_509), private, &ciphertext) {
            assert_eq!(raw, block);
            secrets.push(block);
        }
    }
    secrets
}

/// ECDH with a fixed peer key; returns the shared secret.
fn derive_secret(session: CK_SESSION_HANDLE) -> Vec<u8> {
    let (private, public) = key_pair(session, CKA_DERIVE);
    let params = attribute(session, public, CKA_EC_PARAMS).unwrap();
    let point = attribute(session, public, CKA_EC_POINT).unwrap()[2..].to_vec();
    let (peer, expected) = match params.as_slice() {
        // P-384
        [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22] => {
            use p384::elliptic_curve::sec1::ToEncodedPoint;
            let peer = p384::SecretKey::from_slice(&[0x31; 48]).unwrap();
            let card = p384::PublicKey::from_sec1_bytes(&point).unwrap();
            let secret = p384::ecdh::diffie_hellman(peer.to_nonzero_scalar(), card.as_affine());
            let peer_point = peer.public_key().to_encoded_point(false);
            (
                peer_point.as_bytes().to_vec(),
                secret.raw_secret_bytes().to_vec(),
            )
        }
        // X25519 (RFC 8410)
        [0x06, 0x03, 0x2B, 0x65, 0x6E] => {
            let peer = x25519_dalek::StaticSecret::from([0x31; 32]);
            let card = x25519_dalek::PublicKey::from(<[u8; 32]>::try_from(&point[..]).unwrap());
            (
                x25519_dalek::PublicKey::from(&peer).as_bytes().to_vec(),
                peer.diffie_hellman(&card).as_bytes().to_vec(),
            )
        }
        other => panic!("no peer for curve {other:02x?}"),
    };
    let mut public_data = peer;
    let mut params = CK_ECDH1_DERIVE_PARAMS {
        kdf: CKD_NULL,
        ulSharedDataLen: 0,
        pSharedData: ptr::null_mut(),
        ulPublicDataLen: public_data.len() as CK_ULONG,
        pPublicData: public_data.as_mut_ptr(),
    };
    let mut mech = CK_MECHANISM {
        mechanism: CKM_ECDH1_DERIVE,
        pParameter: &mut params as *mut CK_ECDH1_DERIVE_PARAMS as *mut _,
        ulParameterLen: std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG,
    };
    let class = CKO_SECRET_KEY;
    let mut template = [CK_ATTRIBUTE {
        type_: CKA_CLASS,
        pValue: &class as *const _ as *mut _,
        ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
    }];
    let mut secret = 0;
    let rv = ck!(C_DeriveKey(
        session,
        &mut mech,
        private,
        template.as_mut_ptr(),
        template.len() as CK_ULONG,
        &mut secret
    ));
    assert_eq!(rv, CKR_OK, "C_DeriveKey");
    assert_eq!(attribute(session, secret, CKA_VALUE).unwrap(), expected);
    expected
}

fn set_pin(session: CK_SESSION_HANDLE, old: &str, new: &str) {
    let rv = ck!(C_SetPIN(
        session,
        old.as_ptr() as *mut u8,
        old.len() as CK_ULONG,
        new.as_ptr() as *mut u8,
        new.len() as CK_ULONG
    ));
    assert_eq!(rv, CKR_OK, "C_SetPIN");
}

/// Logs in, decrypts (when the token has an RSA decryption key), derives
/// (when it has an ECDH key) and changes the PIN there and back on the
/// token in `slot`; then checks the log for every secret involved.
fn use_secrets_and_check_the_log(slot: CK_SLOT_ID, log_start: usize) {
    const NEW_PIN: &str = "97531864";
    let session = open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let usable = |usage| {
        !find(
            session,
            &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY)), (usage, vec![CK_TRUE])],
        )
        .is_empty()
    };
    let mut secrets = Vec::new();
    if usable(CKA_DECRYPT) {
        secrets.extend(decrypt_secrets(session));
    }
    if usable(CKA_DERIVE) {
        secrets.push(derive_secret(session));
    }
    assert!(!secrets.is_empty(), "the token decrypts nothing");
    set_pin(session, PIN, NEW_PIN);
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    assert_eq!(login(session, CKU_USER, NEW_PIN), CKR_OK);
    set_pin(session, NEW_PIN, PIN);
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);

    let log = log_text(log_start);
    assert_trace_is_on(&log, &first_certificate(slot));
    assert!(log.contains("<redacted>"), "no redacted command");
    for (index, secret) in secrets.iter().enumerate() {
        assert_not_logged(&log, &format!("secret {index}"), secret);
    }
    // PINs are shorter than 8 bytes: the whole of them, as sent (ASCII),
    // and as PIV pads them (FF to 8 bytes).
    for pin in [PIN, NEW_PIN] {
        assert_not_logged(&log, &format!("PIN {pin}"), pin.as_bytes());
        let mut padded = pin.as_bytes().to_vec();
        padded.resize(8.max(padded.len()), 0xFF);
        assert_not_logged(&log, &format!("padded PIN {pin}"), &padded);
    }
}

fn first_certificate(session_slot: CK_SLOT_ID) -> Vec<u8> {
    let session = open_session(session_slot, CKF_SERIAL_SESSION);
    let certificates = find(session, &[(CKA_CLASS, ulong(CKO_CERTIFICATE))]);
    let value = attribute(session, certificates[0], CKA_VALUE).unwrap();
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
    value
}

fn check_piv(card: SimPivCard, split: Option<usize>) {
    log_file();
    let (harness, handle): (Harness, SimCard) = Harness::with_card(card);
    let log_start = log_end();
    handle.misbehave(|m| m.chunk_responses = split);
    use_secrets_and_check_the_log(harness.slot(), log_start);
    if split.is_some() {
        assert!(instructions(&handle).contains(&0xC0), "no GET RESPONSE");
    }
}

#[test]
fn piv_decryption_ecdh_and_pins_stay_out_of_the_trace() {
    check_piv(SimPivCard::new(), None);
}

#[test]
fn piv_secrets_split_into_61xx_pieces_stay_out_of_the_trace() {
    check_piv(SimPivCard::new(), Some(100));
    check_piv(SimPivCard::new().short_apdus_only(), Some(16));
}

#[test]
fn openpgp_decryption_ecdh_and_pins_stay_out_of_the_trace() {
    log_file();
    for split in [None, Some(100)] {
        // RSA decryption on the default card; ECDH with X25519 and P-384.
        for card in [
            SimOpenPgpCard::new(),
            SimOpenPgpCard::new()
                .with_key(KeyRole::Decryption, PgpKeyType::X25519)
                .with_test_cert(KeyRole::Signature),
            SimOpenPgpCard::new()
                .with_key(KeyRole::Decryption, PgpKeyType::P384)
                .with_test_cert(KeyRole::Signature),
        ] {
            let (backend, handle) = SimBackend::with_card(card);
            handle.misbehave(|m| m.chunk_responses = split);
            let harness = Harness::with_backend(backend);
            use_secrets_and_check_the_log(harness.slot(), log_end());
        }
    }
}
