//! A key the algorithm policy refuses altogether (issue 16): with
//! `min_rsa_bits = 3072`, the simulated PIV card's RSA-2048 key 9A shows
//! its certificate and public key, but no private key to use, even after
//! login; the EC keys are unaffected. (An RSA-1024 key under the `strict`
//! preset takes the same path: `policy::tests` checks the refusal itself.)

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::Slot;

fn harness() -> (Harness, p11card_cardsim::SimCard) {
    static CONFIG: std::sync::Once = std::sync::Once::new();
    CONFIG.call_once(|| {
        let dir = std::env::temp_dir().join(format!("p11card-policy-rsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p11card.toml");
        std::fs::write(&path, "[policy]\nmin_rsa_bits = 3072\n").unwrap();
        std::env::set_var("P11CARD_CONFIG", &path);
    });
    Harness::new()
}

#[test]
fn a_refused_key_shows_its_certificate_but_no_private_key() {
    let (harness, card) = harness();
    let session = harness.user_session();
    let id = vec![key_id(Slot::Authentication)];
    let of_class = |class| find(session, &[(CKA_CLASS, ulong(class)), (CKA_ID, id.clone())]);
    assert_eq!(of_class(CKO_CERTIFICATE).len(), 1);
    assert_eq!(of_class(CKO_PUBLIC_KEY).len(), 1);
    assert!(of_class(CKO_PRIVATE_KEY).is_empty());
    // The other keys are there, and sign.
    let ec = private_key(session, Slot::CardAuthentication);
    let hash = Hash::Sha256.digest(b"policy");
    let signature = sign(session, &mut mechanism(CKM_ECDSA), ec, &hash).unwrap();
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::CardAuthentication),
        &hash,
        &signature
    ));
    // No key allows an RSA signature: the token lists none.
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetMechanismList(
            harness.slot(),
            std::ptr::null_mut(),
            &mut count
        )),
        CKR_OK
    );
    let mut list = vec![0; count as usize];
    assert_eq!(
        ck!(C_GetMechanismList(
            harness.slot(),
            list.as_mut_ptr(),
            &mut count
        )),
        CKR_OK
    );
    assert!(!list.contains(&CKM_SHA256_RSA_PKCS));
    assert!(list.contains(&CKM_ECDSA_SHA256));
}
