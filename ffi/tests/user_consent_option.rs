//! `pin_cache_ignore_user_consent = true` (issue 12, point 6), for programs
//! that cannot do the context-specific login (the OpenSSL engine,
//! pam_pkcs11, older ssh): the module presents the logged-in user's PIN
//! right before each use of a key that wants it every time. Off by default
//! (`always_authenticate.rs` shows the refusal); this binary turns it on
//! through the configuration file named by `P11CARD_CONFIG`, for every test
//! in it.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::Slot;

const MESSAGE: &[u8] = b"signed without a context login";

/// Starts the module with the option on (the file is read by
/// `C_Initialize`; written once, before any test's module starts, since
/// the tests' threads run side by side until the harness serialises them).
fn harness() -> (Harness, p11card_cardsim::SimCard) {
    static CONFIG: std::sync::Once = std::sync::Once::new();
    CONFIG.call_once(|| {
        let dir = std::env::temp_dir().join(format!("p11card-consent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p11card.toml");
        std::fs::write(&path, "pin_cache_ignore_user_consent = true\n").unwrap();
        std::env::set_var("P11CARD_CONFIG", &path);
    });
    Harness::new()
}

#[test]
fn the_always_authenticate_key_signs_after_the_user_login_alone() {
    let (harness, card) = harness();
    let session = harness.user_session();
    let key = private_key(session, Slot::Signature);
    // The card's rule is still shown: programs that can ask the user do.
    assert!(as_bool(
        &attribute(session, key, CKA_ALWAYS_AUTHENTICATE).unwrap()
    ));
    card.clear_log();
    let signature =
        sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, MESSAGE).unwrap_or_else(|rv| {
            panic!(
                "C_Sign without the context login: {rv:#x}\n{}",
                card.transcript()
            )
        });
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::Signature),
        &Hash::Sha256.digest(MESSAGE),
        &signature
    ));
    // The module sent VERIFY right before the signature.
    let sent = instructions(&card);
    let verify = sent.iter().rposition(|&ins| ins == 0x20);
    let sign = sent.iter().rposition(|&ins| ins == 0x87);
    assert!(
        matches!((verify, sign), (Some(v), Some(s)) if v < s),
        "{}",
        card.transcript()
    );
    // Again, for the next signature.
    assert!(sign_more_after_init(session, key).is_ok());
}

fn sign_more_after_init(
    session: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
) -> Result<Vec<u8>, CK_RV> {
    sign(session, &mut mechanism(CKM_ECDSA_SHA256), key, MESSAGE)
}

/// After `C_Logout` there is no PIN to present: `CKR_USER_NOT_LOGGED_IN`,
/// and no signature command reaches the card.
#[test]
fn after_logout_it_is_user_not_logged_in_again() {
    let (harness, card) = harness();
    let session = harness.user_session();
    let key = private_key(session, Slot::Signature);
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    card.clear_log();
    assert_eq!(sign_more(session, MESSAGE), Err(CKR_USER_NOT_LOGGED_IN));
    assert!(
        !instructions(&card).contains(&0x87),
        "{}",
        card.transcript()
    );
}

#[test]
fn a_context_login_still_counts_and_a_wrong_one_is_refused() {
    let (harness, card) = harness();
    let session = harness.user_session();
    let key = private_key(session, Slot::Signature);
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    assert_eq!(
        login(session, CKU_CONTEXT_SPECIFIC, "000000"),
        CKR_PIN_INCORRECT
    );
    assert_eq!(pin_tries_left(&card), 2);
    assert_eq!(login(session, CKU_CONTEXT_SPECIFIC, PIN), CKR_OK);
    assert!(sign_more(session, MESSAGE).is_ok());
}
