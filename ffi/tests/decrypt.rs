//! Decryption on the card with the RSA-2048 key in 9A (PKCS#11 2.40 §5.9;
//! Current Mechanisms §2.1.6 PKCS #1 v1.5, §2.1.8 OAEP, §2.1.9 raw), of
//! data encrypted independently with the `rsa` crate under the public key
//! the simulated card holds, and of data the module encrypted in software.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimCard, Slot};
use rsa::rand_core::OsRng;
use rsa::Pkcs1v15Encrypt;
use std::ptr;

const SECRET: &[u8] = b"a 32-byte session key, say......";

struct Keys {
    session: CK_SESSION_HANDLE,
    private: CK_OBJECT_HANDLE,
    public: CK_OBJECT_HANDLE,
}

fn keys(harness: &Harness) -> Keys {
    let session = harness.user_session();
    Keys {
        session,
        private: private_key(session, Slot::Authentication),
        public: public_key(session, Slot::Authentication),
    }
}

fn rsa_key(card: &SimCard) -> rsa::RsaPublicKey {
    check::rsa(&card_public_key(card, Slot::Authentication)).clone()
}

#[test]
fn rsa_pkcs_decrypts_what_the_rsa_crate_encrypted() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness);
    let ciphertext = rsa_key(&card)
        .encrypt(&mut OsRng, Pkcs1v15Encrypt, SECRET)
        .unwrap();
    assert_eq!(
        decrypt(
            keys.session,
            &mut Mech::new(CKM_RSA_PKCS),
            keys.private,
            &ciphertext
        ),
        Ok(SECRET.to_vec())
    );
}

#[test]
fn rsa_oaep_decrypts_with_sha256_and_sha1_with_and_without_a_label() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness);
    let public = rsa_key(&card);
    for hash in [Hash::Sha256, Hash::Sha1] {
        for label in ["", "p11card label"] {
            let ciphertext = public
                .encrypt(&mut OsRng, check::oaep(hash, label), SECRET)
                .unwrap();
            let mut mech = Mech::oaep(hash, label.as_bytes());
            assert_eq!(
                decrypt(keys.session, &mut mech, keys.private, &ciphertext),
                Ok(SECRET.to_vec()),
                "{hash:?} label {label:?}"
            );
        }
    }
}

#[test]
fn rsa_oaep_with_the_wrong_label_is_encrypted_data_invalid() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness);
    let ciphertext = rsa_key(&card)
        .encrypt(&mut OsRng, check::oaep(Hash::Sha256, "right"), SECRET)
        .unwrap();
    let mut mech = Mech::oaep(Hash::Sha256, b"wrong");
    assert_eq!(
        decrypt(keys.session, &mut mech, keys.private, &ciphertext),
        Err(CKR_ENCRYPTED_DATA_INVALID)
    );
}

#[test]
fn rsa_x_509_decryption_is_the_raw_private_key_operation() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness);
    let mut block = vec![0u8; 256];
    block[200..].copy_from_slice(&[0x42; 56]);
    let ciphertext = check::rsa_public_op(&card_public_key(&card, Slot::Authentication), &block);
    assert_eq!(
        decrypt(
            keys.session,
            &mut Mech::new(CKM_RSA_X_509),
            keys.private,
            &ciphertext
        ),
        Ok(block)
    );
}

#[test]
fn software_encryption_with_the_public_key_round_trips_through_the_card() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness);
    for (name, mut mech) in [
        ("PKCS #1 v1.5", Mech::new(CKM_RSA_PKCS)),
        ("OAEP SHA-256", Mech::oaep(Hash::Sha256, b"")),
        ("OAEP SHA-1 with label", Mech::oaep(Hash::Sha1, b"label")),
    ] {
        let ciphertext = encrypt(keys.session, &mut mech, keys.public, SECRET)
            .unwrap_or_else(|rv| panic!("{name}: C_Encrypt {rv:#x}"));
        assert_eq!(ciphertext.len(), 256, "{name}");
        assert_eq!(
            decrypt(keys.session, &mut mech, keys.private, &ciphertext),
            Ok(SECRET.to_vec()),
            "{name}"
        );
    }
}

#[test]
fn c_decrypt_follows_the_two_call_convention() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness);
    let ciphertext = rsa_key(&card)
        .encrypt(&mut OsRng, Pkcs1v15Encrypt, SECRET)
        .unwrap();
    let mut mech = Mech::new(CKM_RSA_PKCS);
    assert_eq!(
        ck!(C_DecryptInit(keys.session, mech.ptr(), keys.private)),
        CKR_OK
    );
    let (input, input_len) = (ciphertext.as_ptr() as *mut u8, ciphertext.len() as CK_ULONG);
    // A length query may answer with an upper bound (§5.2).
    let mut len: CK_ULONG = 0;
    assert_eq!(
        ck!(C_Decrypt(
            keys.session,
            input,
            input_len,
            ptr::null_mut(),
            &mut len
        )),
        CKR_OK
    );
    assert!(len as usize >= SECRET.len());
    // Too small: CKR_BUFFER_TOO_SMALL, the operation stays active.
    let mut small = [0u8; 4];
    len = small.len() as CK_ULONG;
    assert_eq!(
        ck!(C_Decrypt(
            keys.session,
            input,
            input_len,
            small.as_mut_ptr(),
            &mut len
        )),
        CKR_BUFFER_TOO_SMALL
    );
    assert!(len as usize >= SECRET.len());
    let mut plain = vec![0u8; 256];
    len = plain.len() as CK_ULONG;
    assert_eq!(
        ck!(C_Decrypt(
            keys.session,
            input,
            input_len,
            plain.as_mut_ptr(),
            &mut len
        )),
        CKR_OK
    );
    assert_eq!(&plain[..len as usize], SECRET);
}

/// A ciphertext whose plaintext is not a PKCS #1 v1.5 encryption block
/// (block type 01 instead of 02, RFC 8017 §7.2.2).
#[test]
fn corrupted_pkcs1_ciphertext_is_encrypted_data_invalid() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness);
    let mut block = vec![0x00, 0x01];
    block.extend([0xFF; 221]);
    block.push(0x00);
    block.extend_from_slice(SECRET);
    assert_eq!(block.len(), 256);
    let ciphertext = check::rsa_public_op(&card_public_key(&card, Slot::Authentication), &block);
    assert_eq!(
        decrypt(
            keys.session,
            &mut Mech::new(CKM_RSA_PKCS),
            keys.private,
            &ciphertext
        ),
        Err(CKR_ENCRYPTED_DATA_INVALID)
    );
}

#[test]
fn corrupted_oaep_ciphertext_is_encrypted_data_invalid() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness);
    let mut ciphertext = rsa_key(&card)
        .encrypt(&mut OsRng, check::oaep(Hash::Sha256, ""), SECRET)
        .unwrap();
    ciphertext[255] ^= 0x01;
    assert_eq!(
        decrypt(
            keys.session,
            &mut Mech::oaep(Hash::Sha256, b""),
            keys.private,
            &ciphertext
        ),
        Err(CKR_ENCRYPTED_DATA_INVALID)
    );
}

#[test]
fn ciphertext_of_the_wrong_length_is_encrypted_data_len_range() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness);
    for len in [255, 257, 16] {
        assert_eq!(
            decrypt(
                keys.session,
                &mut Mech::new(CKM_RSA_PKCS),
                keys.private,
                &vec![0x11; len]
            ),
            Err(CKR_ENCRYPTED_DATA_LEN_RANGE),
            "{len} bytes"
        );
    }
}

#[test]
fn decrypting_without_login_is_refused_before_any_apdu() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    card.clear_log();
    let result = decrypt(session, &mut Mech::new(CKM_RSA_PKCS), key, &[0x11; 256]);
    assert!(
        matches!(
            result,
            Err(CKR_USER_NOT_LOGGED_IN) | Err(CKR_KEY_HANDLE_INVALID)
        ),
        "{result:x?}"
    );
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
}

/// Issue 11, finding 7: every kind of bad PKCS #1 v1.5 padding is the same
/// `CKR_ENCRYPTED_DATA_INVALID`, whatever room the caller gave: a length
/// query answers without the card, and the padding is checked before the
/// room, so `CKR_BUFFER_TOO_SMALL` says nothing about a bad block. The card
/// decrypts once per operation, however many calls the caller makes.
#[test]
fn bad_padding_is_one_error_whatever_the_output_room() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness);
    let public = card_public_key(&card, Slot::Authentication);
    let block_with = |first: u8, kind: u8, ps_len: usize, separator: u8| {
        let mut block = vec![first, kind];
        block.extend(std::iter::repeat_n(0xA5, ps_len));
        block.push(separator);
        block.resize(256, 0x42);
        check::rsa_public_op(&public, &block)
    };
    let decryptions = |card: &SimCard| {
        commands(card)
            .iter()
            .filter(|c| c[1] == 0x87 && c[0] & 0x10 == 0)
            .count()
    };
    let bad = [
        ("first byte 01", block_with(0x01, 0x02, 20, 0x00)),
        ("block type 01", block_with(0x00, 0x01, 20, 0x00)),
        ("PS of 7 bytes", block_with(0x00, 0x02, 7, 0x00)),
        ("no separator", block_with(0x00, 0x02, 254, 0x42)),
    ];
    for (what, ciphertext) in &bad {
        let mut mech = Mech::new(CKM_RSA_PKCS);
        assert_eq!(
            ck!(C_DecryptInit(keys.session, mech.ptr(), keys.private)),
            CKR_OK
        );
        let (input, input_len) = (ciphertext.as_ptr() as *mut u8, ciphertext.len() as CK_ULONG);
        card.clear_log();
        let mut len: CK_ULONG = 0;
        assert_eq!(
            ck!(C_Decrypt(
                keys.session,
                input,
                input_len,
                ptr::null_mut(),
                &mut len
            )),
            CKR_OK,
            "{what}: length query"
        );
        assert_eq!(len, 256, "{what}: the modulus length, without the card");
        assert_eq!(decryptions(&card), 0, "{what}: the card was asked");
        let mut small = [0u8; 4];
        len = small.len() as CK_ULONG;
        assert_eq!(
            ck!(C_Decrypt(
                keys.session,
                input,
                input_len,
                small.as_mut_ptr(),
                &mut len
            )),
            CKR_ENCRYPTED_DATA_INVALID,
            "{what}: too little room"
        );
        assert_eq!(
            decrypt(keys.session, &mut mech, keys.private, ciphertext),
            Err(CKR_ENCRYPTED_DATA_INVALID),
            "{what}: room enough"
        );
        assert_eq!(decryptions(&card), 2, "{what}: once per operation");
    }
    // A good block: too little room keeps the result for the next call.
    let ciphertext = rsa_key(&card)
        .encrypt(&mut OsRng, Pkcs1v15Encrypt, SECRET)
        .unwrap();
    let mut mech = Mech::new(CKM_RSA_PKCS);
    assert_eq!(
        ck!(C_DecryptInit(keys.session, mech.ptr(), keys.private)),
        CKR_OK
    );
    let (input, input_len) = (ciphertext.as_ptr() as *mut u8, ciphertext.len() as CK_ULONG);
    card.clear_log();
    let mut plain = vec![0u8; 256];
    for (room, expected) in [(4, CKR_BUFFER_TOO_SMALL), (256, CKR_OK)] {
        let mut len: CK_ULONG = room;
        assert_eq!(
            ck!(C_Decrypt(
                keys.session,
                input,
                input_len,
                plain.as_mut_ptr(),
                &mut len
            )),
            expected
        );
        assert_eq!(len as usize, SECRET.len());
    }
    assert_eq!(&plain[..SECRET.len()], SECRET);
    assert_eq!(decryptions(&card), 1);
}
