//! ECDSA input of any hash length, in every path (issue 12, point 5): the
//! module fits the hash to the group order on the host, once — a shorter
//! hash left-padded with zeros, a longer one cut to its leftmost bytes
//! (FIPS 186-4 §6.4; P-256 and P-384 orders are whole bytes) — for
//! single-part `CKM_ECDSA` and for `C_SignUpdate`/`C_SignFinal` with
//! `CKM_ECDSA_SHA*`, on P-256 and P-384 keys, PIV and OpenPGP alike. The
//! card gets exactly the order's length (the simulated PIV card refuses
//! anything else, as virtpiv does); every signature is checked with
//! RustCrypto against the card's key and with the module's `C_Verify`.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{
    KeyRole, PgpKeyType, SimBackend, SimCard, SimOpenPgpCard, SimPublicKey, Slot,
};

const MESSAGE: &[u8] = b"The quick brown fox jumps over the lazy dog";

/// Hash lengths around both orders (32 and 48 bytes) and the SHA sizes.
const HASH_LENGTHS: [usize; 11] = [1, 20, 28, 31, 32, 33, 47, 48, 49, 64, 100];

const PARTS: [&[u8]; 3] = [b"The quick brown fox ", b"", b"jumps over the lazy dog"];

/// A hash-like input of `len` bytes (SHA-512 of the message, repeated).
fn hash_of_len(len: usize) -> Vec<u8> {
    Hash::Sha512
        .digest(MESSAGE)
        .into_iter()
        .cycle()
        .take(len)
        .collect()
}

/// One key under test: its session, handles and the card's public key.
struct EcKey {
    name: String,
    session: CK_SESSION_HANDLE,
    private: CK_OBJECT_HANDLE,
    public: CK_OBJECT_HANDLE,
    card_key: SimPublicKey,
}

/// Signs every hash length with `CKM_ECDSA` and every hash mechanism in
/// parts; checks each signature two ways and the length the card was sent.
fn sign_every_input(key: &EcKey, card: &SimCard, order_len: usize) {
    for len in HASH_LENGTHS {
        let hash = hash_of_len(len);
        card.clear_log();
        let signature = sign(key.session, &mut mechanism(CKM_ECDSA), key.private, &hash)
            .unwrap_or_else(|rv| panic!("{}: CKM_ECDSA, {len}-byte hash: {rv:#x}", key.name));
        assert_eq!(signature.len(), 2 * order_len);
        assert!(
            check::ecdsa(&key.card_key, &hash, &signature),
            "{}: CKM_ECDSA over a {len}-byte hash does not verify",
            key.name
        );
        assert_eq!(
            verify(
                key.session,
                &mut Mech::new(CKM_ECDSA),
                key.public,
                &hash,
                &signature
            ),
            CKR_OK,
            "{}: C_Verify, {len}-byte hash",
            key.name
        );
        assert_card_got(card, order_len, &key.name);
    }
    for hash in Hash::ALL {
        let digest = hash.digest(MESSAGE);
        let mut mech = Mech::new(hash.ecdsa());
        card.clear_log();
        let signature = sign_parts(key.session, &mut mech, key.private, &PARTS)
            .unwrap_or_else(|rv| panic!("{}: {hash:?} in parts: {rv:#x}", key.name));
        assert!(
            check::ecdsa(&key.card_key, &digest, &signature),
            "{}: {hash:?} in parts does not verify",
            key.name
        );
        assert_eq!(
            verify_parts(key.session, &mut mech, key.public, &PARTS, &signature),
            CKR_OK,
            "{}: C_VerifyUpdate/Final, {hash:?}",
            key.name
        );
        assert_eq!(
            verify(key.session, &mut mech, key.public, MESSAGE, &signature),
            CKR_OK,
            "{}: C_Verify, {hash:?}",
            key.name
        );
        assert_card_got(card, order_len, &key.name);
    }
}

/// The signing command the card got last carried exactly `order_len`
/// bytes of input (PIV: inside the dynamic authentication template, tag
/// 81; OpenPGP: the whole command data).
fn assert_card_got(card: &SimCard, order_len: usize, name: &str) {
    let commands = commands(card);
    let signing = commands
        .iter()
        .rev()
        .find(|c| matches!(c.get(1), Some(0x87 | 0x2A | 0x88)))
        .unwrap_or_else(|| panic!("{name}: no signing command:\n{}", card.transcript()));
    // Short APDUs: CLA INS P1 P2 Lc data [Le].
    let lc = usize::from(signing[4]);
    let data = &signing[5..5 + lc];
    let input_len = if signing[1] == 0x87 {
        // 7C L { 82 00, 81 L' input }
        assert_eq!(
            (data[0], data[2], data[4]),
            (0x7C, 0x82, 0x81),
            "{}",
            hex(signing)
        );
        usize::from(data[5])
    } else {
        data.len()
    };
    assert_eq!(input_len, order_len, "{name}: {}", hex(signing));
}

#[test]
fn piv_p256_and_p384_keys_sign_hashes_of_any_length_in_every_path() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    for (slot, order_len) in [(Slot::CardAuthentication, 32), (Slot::KeyManagement, 48)] {
        let key = EcKey {
            name: format!("PIV {slot:?}"),
            session,
            private: private_key(session, slot),
            public: public_key(session, slot),
            card_key: card_public_key(&card, slot),
        };
        sign_every_input(&key, &card, order_len);
    }
}

#[test]
fn openpgp_p256_and_p384_keys_sign_hashes_of_any_length_in_every_path() {
    let card = SimOpenPgpCard::new()
        .with_key(KeyRole::Signature, PgpKeyType::P384)
        .with_key(KeyRole::Authentication, PgpKeyType::P256)
        .with_pw1_valid_for_several_signatures(true);
    let (backend, card) = SimBackend::with_card(card);
    let harness = Harness::with_backend(backend);
    let session = harness.user_session();
    for (role, id, order_len) in [
        (KeyRole::Authentication, 3u8, 32),
        (KeyRole::Signature, 1u8, 48),
    ] {
        let key = EcKey {
            name: format!("OpenPGP {role:?}"),
            session,
            private: object(session, CKO_PRIVATE_KEY, id),
            public: object(session, CKO_PUBLIC_KEY, id),
            card_key: card
                .with_openpgp(|c| c.public_key(role))
                .and_then(|k| k.to_sim_public_key())
                .expect("an EC key"),
        };
        sign_every_input(&key, &card, order_len);
    }
}

/// An empty input is no hash at all: `CKR_DATA_LEN_RANGE`, nothing sent.
#[test]
fn an_empty_ecdsa_input_is_data_len_range() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let key = private_key(session, Slot::CardAuthentication);
    card.clear_log();
    assert_eq!(
        sign(session, &mut mechanism(CKM_ECDSA), key, &[]),
        Err(CKR_DATA_LEN_RANGE)
    );
    assert!(
        !instructions(&card).contains(&0x87),
        "{}",
        card.transcript()
    );
}
