//! What the module reports about mechanisms, pinned per card type: the
//! token's `C_GetMechanismList` with each mechanism's `C_GetMechanismInfo`,
//! and every key's `CKA_ALLOWED_MECHANISMS` with the capabilities its
//! objects show. Written before the mechanism table replaced the lists it
//! came from, so that the table reports exactly what they did.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{KeyRole, KeyType, PgpKeyType, SimBackend, SimOpenPgpCard, SimPivCard, Slot};
use std::fmt::Write as _;
use std::ptr;

fn ulongs(value: &[u8]) -> Vec<CK_ULONG> {
    value
        .chunks(std::mem::size_of::<CK_ULONG>())
        .map(as_ulong)
        .collect()
}

fn flag(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, kind: CK_ATTRIBUTE_TYPE) -> char {
    match attribute(session, object, kind) {
        Ok(value) if as_bool(&value) => '1',
        Ok(_) => '0',
        Err(_) => '-',
    }
}

fn list(mechanisms: &[CK_MECHANISM_TYPE]) -> String {
    mechanisms
        .iter()
        .map(|m| format!("{m:x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The mechanism list with its info, then per private key (by `CKA_ID`):
/// allowed mechanisms; sign, decrypt, derive, always-authenticate of the
/// private key; verify and encrypt of its public key.
fn report(slot: CK_SLOT_ID) -> String {
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetMechanismList(slot, ptr::null_mut(), &mut count)),
        CKR_OK
    );
    let mut mechanisms = vec![0 as CK_MECHANISM_TYPE; count as usize];
    assert_eq!(
        ck!(C_GetMechanismList(
            slot,
            mechanisms.as_mut_ptr(),
            &mut count
        )),
        CKR_OK
    );
    let mut out = String::new();
    for &mechanism in &mechanisms {
        let mut info = CK_MECHANISM_INFO {
            ulMinKeySize: 0,
            ulMaxKeySize: 0,
            flags: 0,
        };
        assert_eq!(ck!(C_GetMechanismInfo(slot, mechanism, &mut info)), CKR_OK);
        writeln!(
            out,
            "{mechanism:x} {} {} {:x}",
            info.ulMinKeySize, info.ulMaxKeySize, info.flags
        )
        .unwrap();
    }
    for absent in [CKM_SHA3_256, CKM_ECDSA_SHA3_256, CKM_AES_CBC, 0x9999] {
        let mut info = CK_MECHANISM_INFO {
            ulMinKeySize: 0,
            ulMaxKeySize: 0,
            flags: 0,
        };
        assert_eq!(
            ck!(C_GetMechanismInfo(slot, absent, &mut info)),
            CKR_MECHANISM_INVALID
        );
    }
    let session = open_session(slot, CKF_SERIAL_SESSION);
    assert_eq!(login(session, CKU_USER, PIN), CKR_OK);
    for key in find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]) {
        let id = attribute(session, key, CKA_ID).unwrap();
        let public = find(
            session,
            &[(CKA_CLASS, ulong(CKO_PUBLIC_KEY)), (CKA_ID, id.clone())],
        )[0];
        let allowed = ulongs(&attribute(session, key, CKA_ALLOWED_MECHANISMS).unwrap());
        let public_allowed = ulongs(&attribute(session, public, CKA_ALLOWED_MECHANISMS).unwrap());
        assert_eq!(allowed, public_allowed, "key {id:02x?}");
        writeln!(
            out,
            "key {} s{} d{} x{} a{} v{} e{}: {}",
            hex(&id),
            flag(session, key, CKA_SIGN),
            flag(session, key, CKA_DECRYPT),
            flag(session, key, CKA_DERIVE),
            flag(session, key, CKA_ALWAYS_AUTHENTICATE),
            flag(session, public, CKA_VERIFY),
            flag(session, public, CKA_ENCRYPT),
            list(&allowed)
        )
        .unwrap();
    }
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
    out
}

fn piv_report(card: SimPivCard) -> String {
    let (harness, _card) = Harness::with_card(card);
    report(harness.slot())
}

fn openpgp_report(card: SimOpenPgpCard) -> String {
    let (backend, _card) = SimBackend::with_card(card);
    let harness = Harness::with_backend(backend);
    report(harness.slot())
}

fn openpgp(sig: PgpKeyType, dec: PgpKeyType, aut: PgpKeyType) -> SimOpenPgpCard {
    SimOpenPgpCard::new()
        .with_key(KeyRole::Signature, sig)
        .with_key(KeyRole::Decryption, dec)
        .with_key(KeyRole::Authentication, aut)
}

/// The RSA mechanisms with their info: `CKM_RSA_PKCS`, `CKM_RSA_X_509`,
/// `CKM_RSA_PKCS_PSS`, `CKM_RSA_PKCS_OAEP`, then `CKM_SHAx_RSA_PKCS` and
/// `CKM_SHAx_RSA_PKCS_PSS` (SHA-1, 256, 384, 512, 224).
const RSA_ALL: &str = "\
1 1024 4096 2b01
3 1024 4096 2b01
d 1024 4096 2801
9 1024 4096 301
6 1024 4096 2801
46 1024 4096 2801
40 1024 4096 2801
41 1024 4096 2801
42 1024 4096 2801
e 1024 4096 2801
47 1024 4096 2801
43 1024 4096 2801
44 1024 4096 2801
45 1024 4096 2801
";

/// Those of a card that pads RSA itself: PKCS#1 v1.5 only.
const RSA_CARD_PADS: &str = "\
1 1024 4096 2b01
6 1024 4096 2801
46 1024 4096 2801
40 1024 4096 2801
41 1024 4096 2801
42 1024 4096 2801
";

/// `CKM_ECDSA` and `CKM_ECDSA_SHAx`.
const ECDSA_ALL: &str = "\
1041 256 384 1902801
1042 256 384 1902801
1043 256 384 1902801
1044 256 384 1902801
1045 256 384 1902801
1046 256 384 1902801
";

const ECDH: &str = "1050 255 384 1980001\n";
const EDDSA: &str = "1057 255 255 2801\n";

/// The digests every token offers.
const DIGESTS: &str = "\
220 0 0 400
255 0 0 400
250 0 0 400
260 0 0 400
270 0 0 400
";

const RSA_KEY: &str = "1 3 d 9 6 46 40 41 42 e 47 43 44 45";
const RSA_CARD_PADS_SIGN: &str = "1 6 46 40 41 42";
const ECDSA_KEY: &str = "1041 1042 1043 1044 1045 1046";

#[test]
fn the_default_piv_card() {
    let expected = format!(
        "{RSA_ALL}{ECDSA_ALL}{ECDH}{DIGESTS}\
key 01 s1 d1 x0 a0 v1 e1: {RSA_KEY}\n\
key 02 s1 d0 x0 a1 v1 e0: {ECDSA_KEY}\n\
key 03 s1 d0 x1 a0 v1 e0: {ECDSA_KEY} 1050\n\
key 04 s1 d0 x0 a0 v1 e0: {ECDSA_KEY}\n"
    );
    assert_eq!(piv_report(SimPivCard::new()), expected);
}

#[test]
fn a_piv_card_with_rsa_keys_only() {
    let card = [
        Slot::Signature,
        Slot::KeyManagement,
        Slot::CardAuthentication,
    ]
    .into_iter()
    .fold(SimPivCard::new(), |card, slot| {
        card.with_key(slot, KeyType::Rsa2048)
    })
    .with_retired_key(1, KeyType::Rsa2048, Slot::KeyManagement);
    let expected = format!(
        "{RSA_ALL}{DIGESTS}\
key 01 s1 d1 x0 a0 v1 e1: {RSA_KEY}\n\
key 02 s1 d1 x0 a1 v1 e1: {RSA_KEY}\n\
key 03 s1 d1 x0 a0 v1 e1: {RSA_KEY}\n\
key 04 s1 d1 x0 a0 v1 e1: {RSA_KEY}\n\
key 05 s1 d1 x0 a0 v1 e1: {RSA_KEY}\n"
    );
    assert_eq!(piv_report(card), expected);
}

#[test]
fn a_piv_card_with_ec_keys_only() {
    let card = SimPivCard::new()
        .with_key(Slot::Authentication, KeyType::EccP256)
        .with_retired_key(2, KeyType::EccP384, Slot::KeyManagement);
    let expected = format!(
        "{ECDSA_ALL}{ECDH}{DIGESTS}\
key 01 s1 d0 x0 a0 v1 e0: {ECDSA_KEY}\n\
key 02 s1 d0 x0 a1 v1 e0: {ECDSA_KEY}\n\
key 03 s1 d0 x1 a0 v1 e0: {ECDSA_KEY} 1050\n\
key 04 s1 d0 x0 a0 v1 e0: {ECDSA_KEY}\n\
key 06 s1 d0 x1 a0 v1 e0: {ECDSA_KEY} 1050\n"
    );
    assert_eq!(piv_report(card), expected);
}

#[test]
fn the_default_openpgp_card() {
    let expected = format!(
        "{RSA_CARD_PADS}{ECDSA_ALL}{DIGESTS}\
key 01 s1 d0 x0 a1 v1 e0: {RSA_CARD_PADS_SIGN}\n\
key 02 s0 d1 x0 a0 v0 e1: 1\n\
key 03 s1 d0 x0 a0 v1 e0: {ECDSA_KEY}\n"
    );
    assert_eq!(openpgp_report(SimOpenPgpCard::new()), expected);
}

#[test]
fn openpgp_cards_with_curve25519_nist_and_rsa_keys() {
    let curve25519 = openpgp(PgpKeyType::Ed25519, PgpKeyType::X25519, PgpKeyType::Ed25519);
    assert_eq!(
        openpgp_report(curve25519),
        format!(
            "{EDDSA}{ECDH}{DIGESTS}\
key 01 s1 d0 x0 a1 v1 e0: 1057\n\
key 02 s0 d0 x1 a0 v0 e0: 1050\n\
key 03 s1 d0 x0 a0 v1 e0: 1057\n"
        )
    );
    let nist = openpgp(PgpKeyType::P384, PgpKeyType::P256, PgpKeyType::Rsa2048);
    assert_eq!(
        openpgp_report(nist),
        format!(
            "{RSA_CARD_PADS}{ECDSA_ALL}{ECDH}{DIGESTS}\
key 01 s1 d0 x0 a1 v1 e0: {ECDSA_KEY}\n\
key 02 s0 d0 x1 a0 v0 e0: 1050\n\
key 03 s1 d0 x0 a0 v1 e0: {RSA_CARD_PADS_SIGN}\n"
        )
    );
    let rsa = openpgp(
        PgpKeyType::Rsa2048,
        PgpKeyType::Rsa2048,
        PgpKeyType::Rsa2048,
    );
    assert_eq!(
        openpgp_report(rsa),
        format!(
            "{RSA_CARD_PADS}{DIGESTS}\
key 01 s1 d0 x0 a1 v1 e0: {RSA_CARD_PADS_SIGN}\n\
key 02 s0 d1 x0 a0 v0 e1: 1\n\
key 03 s1 d0 x0 a0 v1 e0: {RSA_CARD_PADS_SIGN}\n"
        )
    );
}
