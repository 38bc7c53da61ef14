//! The card conversations behind PKCS#11 calls, written out APDU by APDU so
//! that a reader who knows NIST SP 800-73-4 Part 2 can check them without
//! reading the module: what the module sent (hex, PINs redacted by the
//! simulated card's log) and the status word the card answered.
//!
//! Each `C_*` call that needs the card runs in one card transaction that
//! begins with SELECT of the PIV application (§3.1.1), because another
//! process may have selected something else in between.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{LoggedApdu, SimCard, Slot, PIV_AID};

/// SELECT the PIV application by its full AID, Le = 00 (Part 2 §3.1.1).
fn select_piv() -> String {
    format!("00 A4 04 00 0B {} 00", hex(&PIV_AID))
}

/// One line per APDU: the command and the status word.
fn conversation(card: &SimCard) -> Vec<String> {
    card.log().iter().map(line).collect()
}

fn line(entry: &LoggedApdu) -> String {
    let redacted = if entry.redacted { " <redacted>" } else { "" };
    format!("{}{redacted} -> {:04X}", hex(&entry.command), entry.sw)
}

/// Asserts the card saw exactly `expected`, and prints both if not.
fn assert_conversation(card: &SimCard, expected: &[String]) {
    let actual = conversation(card);
    assert!(
        actual == expected,
        "the card saw:\n{}\nexpected:\n{}",
        actual.join("\n"),
        expected.join("\n")
    );
}

/// The response data of the exchanges logged, joined (what GET RESPONSE
/// reassembles).
fn response_data(card: &SimCard) -> Vec<u8> {
    card.log().iter().flat_map(|e| e.response.clone()).collect()
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2) for a 2048-bit key: 00 01 FF… 00 T.
fn emsa_pkcs1_v15(digest_info: &[u8]) -> Vec<u8> {
    let mut block = vec![0x00, 0x01];
    block.resize(256 - digest_info.len() - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(digest_info);
    block
}

#[test]
fn login_then_sign_with_the_piv_authentication_key() {
    let (harness, card) = Harness::new();
    let session = harness.session();

    // C_Login(CKU_USER, "123456"): VERIFY the PIV Card Application PIN
    // (key reference 80), padded with FF to 8 bytes (Part 2 §3.2.1). The
    // token info read only the first certificate; the others (9C, 9D, 9E:
    // containers 5FC10A, 5FC10B, 5FC101) follow in the same transaction,
    // since a login is followed by a search for keys.
    card.clear_log();
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let sizes: Vec<String> = card.log()[2..8]
        .chunks(2)
        .map(|pair| format!("{:02X}", pair[1].command[4]))
        .collect();
    let read = |tag: &str, size: &str| {
        [
            format!("00 CB 3F FF 05 5C 03 5F C1 {tag} 00 -> 61{size}"),
            format!("00 C0 00 00 {size} -> 9000"),
        ]
    };
    let mut expected = vec![
        format!("{} -> 9000", select_piv()),
        "00 20 00 80 08 <redacted> -> 9000".to_owned(),
    ];
    for (tag, size) in ["0A", "0B", "01"].iter().zip(&sizes) {
        expected.extend(read(tag, size));
    }
    // This card (a YubiKey's profile) tells each key's PIN policy: GET
    // METADATA (Yubico INS F7) per key slot; 9A's answer carries its RSA
    // public key (279 bytes, GET RESPONSE for the rest). Then the Key
    // History object (5FC10C): none, so no retired key. Last, GET
    // METADATA of the PIN (its maximum tries), which the disk cache keeps
    // with the keys; once per card.
    expected.extend([
        "00 F7 00 9A 00 -> 6117".to_owned(),
        "00 C0 00 00 17 -> 9000".to_owned(),
        "00 F7 00 9C 00 -> 9000".to_owned(),
        "00 F7 00 9D 00 -> 9000".to_owned(),
        "00 F7 00 9E 00 -> 9000".to_owned(),
        "00 CB 3F FF 05 5C 03 5F C1 0C 00 -> 6A82".to_owned(),
        "00 F7 00 80 00 -> 9000".to_owned(),
    ]);
    assert_conversation(&card, &expected);

    // C_Sign with CKM_SHA256_RSA_PKCS: the module hashes and pads; the card
    // gets GENERAL AUTHENTICATE (Part 2 §3.2.4), algorithm 07 (RSA 2048),
    // key 9A, data 7C { 82 00 (response wanted), 81 <the 256-byte block> }.
    // 266 bytes do not fit a short APDU: two chained commands (CLA 10, then
    // 00, ISO 7816-4 §5.1.1.1), and the 264-byte answer 7C { 82 <signature> }
    // comes as 256 bytes + 61 08, then GET RESPONSE for the last 8. No
    // SELECT: the login's transaction left PIV selected (had another
    // process selected something else, the card would refuse and the
    // module would SELECT and send it again).
    let key = private_key(session, Slot::Authentication);
    let block = emsa_pkcs1_v15(&Hash::Sha256.digest_info(&Hash::Sha256.digest(b"hello")));
    card.clear_log();
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), key, b"hello").unwrap();
    assert_conversation(
        &card,
        &[
            format!(
                "10 87 07 9A FF 7C 82 01 06 82 00 81 82 01 00 {} -> 9000",
                hex(&block[..245])
            ),
            format!("00 87 07 9A 0B {} 00 -> 6108", hex(&block[245..])),
            "00 C0 00 00 08 -> 9000".to_owned(),
        ],
    );
    // The card's answer, reassembled, holds the signature C_Sign returned.
    let mut answer = vec![0x7C, 0x82, 0x01, 0x04, 0x82, 0x82, 0x01, 0x00];
    answer.extend_from_slice(&signature);
    assert_eq!(response_data(&card), answer);
    let public = card_public_key(&card, Slot::Authentication);
    assert!(check::rsa_pkcs1(
        &public,
        Hash::Sha256,
        &Hash::Sha256.digest(b"hello"),
        &signature
    ));
}

#[test]
fn card_authentication_signs_without_any_verify() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    let key = private_key(session, Slot::CardAuthentication);
    let hash = Hash::Sha256.digest(b"open the door");
    // CKM_ECDSA_SHA256 with 9E (no PIN, Part 1 §3.2): GENERAL AUTHENTICATE,
    // algorithm 11 (ECC P-256), key 9E, 7C { 82 00, 81 <32-byte hash> },
    // answered with 7C { 82 <DER ECDSA-Sig-Value> }; no SELECT, since the
    // module's last transaction left PIV selected.
    card.clear_log();
    let signature = sign(
        session,
        &mut mechanism(CKM_ECDSA_SHA256),
        key,
        b"open the door",
    )
    .unwrap();
    assert_conversation(
        &card,
        &[format!(
            "00 87 11 9E 26 7C 24 82 00 81 20 {} 00 -> 9000",
            hex(&hash)
        )],
    );
    // The module turned the card's DER signature into PKCS#11's r || s.
    let log = card.log();
    let answer = &log[0].response;
    assert_eq!(answer[0], 0x7C);
    assert_eq!(answer[2], 0x82);
    let der = &answer[4..];
    let from_card = p256::ecdsa::Signature::from_der(der).expect("DER from the card");
    assert_eq!(&from_card.to_bytes()[..], &signature[..]);
}

#[test]
fn the_pin_always_key_gets_verify_right_before_general_authenticate() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Signature);
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    let hash = Hash::Sha256.digest(b"contract");
    card.clear_log();
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    sign_more(session, b"contract").unwrap();
    // 9C is "PIN Always" (SP 800-73-4 Part 1 §3.2): the card accepts the
    // signature only if VERIFY came immediately before it. The context
    // login's VERIFY is that command; nothing else goes to the card before
    // the signature (not even a SELECT, which would be one command too many).
    assert_conversation(
        &card,
        &[
            format!("{} -> 9000", select_piv()),
            "00 20 00 80 08 <redacted> -> 9000".to_owned(),
            format!("00 87 11 9C 26 7C 24 82 00 81 20 {} 00 -> 9000", hex(&hash)),
        ],
    );
}

#[test]
fn logout_resets_the_pin_status_on_the_card() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    card.clear_log();
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    // VERIFY with P1 = FF and no data resets the PIN's security status
    // (Part 2 §3.2.1).
    assert_conversation(
        &card,
        &[
            format!("{} -> 9000", select_piv()),
            "00 20 FF 80 -> 9000".to_owned(),
        ],
    );
}

#[test]
fn reading_a_new_card_reads_the_first_certificate_for_token_info_and_the_rest_for_objects() {
    let (harness, card) = Harness::new();
    assert!(token_info(harness.slot()).is_ok());
    let session = harness.session();
    assert_eq!(
        ck!(C_FindObjectsInit(session, std::ptr::null_mut(), 0)),
        CKR_OK
    );
    let log = card.log();
    // GET RESPONSE (00 C0 00 00 xx) follows every 61xx, asking for the xx
    // bytes the card announced (ISO 7816-4 §5.1.3; 00 = 256).
    for pair in log.windows(2) {
        if pair[0].sw >> 8 == 0x61 {
            assert_eq!(
                pair[1].command,
                vec![0x00, 0xC0, 0x00, 0x00, pair[0].sw as u8],
                "after {}",
                line(&pair[0])
            );
        }
    }
    let without_get_response: Vec<String> = log
        .iter()
        .filter(|e| e.ins() != 0xC0)
        .map(|e| {
            let sw = if e.sw >> 8 == 0x61 {
                "61xx".to_owned()
            } else {
                format!("{:04X}", e.sw)
            };
            format!("{} -> {sw}", hex(&e.command))
        })
        .collect();
    let get_data = |tag: &str, sw: &str| format!("00 CB 3F FF 05 5C 03 {tag} 00 -> {sw}");
    assert_eq!(
        without_get_response,
        vec![
            format!("{} -> 9000", select_piv()),
            // GET DATA (Part 2 §3.1.2) of the CHUID: the token serial.
            get_data("5F C1 02", "9000"),
            // The 9A certificate (Part 1 Table 3): its CN is the token label.
            // Longer than one short response.
            get_data("5F C1 05", "61xx"),
            // GET METADATA of the PIN (Yubico): its maximum tries, for
            // CKF_USER_PIN_COUNT_LOW; once per card.
            "00 F7 00 80 00 -> 9000".to_owned(),
            // VERIFY without data: the PIN's status, 63C3 = not verified,
            // 3 tries left; spends no try (Part 2 §3.2.1).
            "00 20 00 80 -> 63C3".to_owned(),
            // C_FindObjectsInit: the other certificates, once.
            format!("{} -> 9000", select_piv()),
            get_data("5F C1 0A", "61xx"),
            get_data("5F C1 0B", "61xx"),
            get_data("5F C1 01", "61xx"),
            // Each key's PIN policy (GET METADATA), then the Key History.
            "00 F7 00 9A 00 -> 61xx".to_owned(),
            "00 F7 00 9C 00 -> 9000".to_owned(),
            "00 F7 00 9D 00 -> 9000".to_owned(),
            "00 F7 00 9E 00 -> 9000".to_owned(),
            get_data("5F C1 0C", "6A82"),
        ]
    );
}

/// The PIN goes to the card in VERIFY only, and nowhere else: no other
/// command carries its bytes, and every VERIFY with data is the 8-byte
/// padded PIN (Lc = 08), which the card's log keeps out of the transcript.
#[test]
fn the_pin_appears_in_no_apdu() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    assert_eq!(login(session, CKU_USER, "654321"), CKR_PIN_INCORRECT);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    let key = private_key(session, Slot::Signature);
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    sign_more(session, b"data").unwrap();
    let rsa = private_key(session, Slot::Authentication);
    sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), rsa, b"data").unwrap();
    assert_eq!(ck!(C_Logout(session)), CKR_OK);

    let log = card.log();
    for secret in [PIN.as_bytes(), b"654321"] {
        for entry in &log {
            assert!(
                !entry.command.windows(secret.len()).any(|w| w == secret),
                "a PIN in: {}",
                line(entry)
            );
        }
        let shown = hex(secret);
        assert!(
            !card.transcript().contains(&shown),
            "{shown} in the transcript"
        );
    }
    let redacted: Vec<&LoggedApdu> = log.iter().filter(|e| e.redacted).collect();
    assert!(redacted.len() >= 3, "{}", card.transcript());
    for entry in redacted {
        assert_eq!(
            entry.command,
            vec![0x00, 0x20, 0x00, 0x80, 0x08],
            "{}",
            line(entry)
        );
    }
}
