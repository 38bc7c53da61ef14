//! The algorithm policy's `strict` preset (issue 16), through the C ABI on
//! the simulated PIV card (9A RSA-2048, 9C and 9E P-256, 9D P-384): SHA-1
//! signatures and PKCS#1 v1.5 or raw RSA decryption are refused before any
//! APDU, refused mechanisms are neither listed nor in
//! `CKA_ALLOWED_MECHANISMS`, and what the policy allows still works. This
//! binary sets the policy through the configuration file named by
//! `P11CARD_CONFIG`, for every test in it.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card::crypto::HashAlg;
use p11card_cardsim::{KeyType, SimBackend, SimPivCard, Slot};

/// Names a configuration file with the strict preset (written once,
/// before any test's module starts).
fn strict_preset() {
    static CONFIG: std::sync::Once = std::sync::Once::new();
    CONFIG.call_once(|| {
        let dir = std::env::temp_dir().join(format!("p11card-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p11card.toml");
        std::fs::write(&path, "[policy]\npreset = \"strict\"\n").unwrap();
        std::env::set_var("P11CARD_CONFIG", &path);
    });
}

/// The module with the strict preset and the default simulated card.
fn harness() -> (Harness, p11card_cardsim::SimCard) {
    strict_preset();
    Harness::new()
}

fn allowed_mechanisms(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Vec<CK_MECHANISM_TYPE> {
    attribute(session, key, CKA_ALLOWED_MECHANISMS)
        .unwrap()
        .chunks(std::mem::size_of::<CK_MECHANISM_TYPE>())
        .map(as_ulong)
        .collect()
}

#[test]
fn sha1_and_pkcs1_decryption_are_neither_listed_nor_allowed() {
    let (harness, _card) = harness();
    let listed = mechanism_list(harness.slot());
    for refused in [
        CKM_SHA1_RSA_PKCS,
        CKM_SHA1_RSA_PKCS_PSS,
        CKM_ECDSA_SHA1,
        CKM_RSA_X_509,
    ] {
        assert!(!listed.contains(&refused), "{refused:#x} listed");
    }
    for allowed in [
        CKM_SHA256_RSA_PKCS,
        CKM_RSA_PKCS_PSS,
        CKM_RSA_PKCS_OAEP,
        CKM_ECDSA,
        CKM_ECDSA_SHA256,
    ] {
        assert!(listed.contains(&allowed), "{allowed:#x} missing");
    }
    // CKM_RSA_PKCS still signs, but no longer decrypts.
    let mut info: CK_MECHANISM_INFO = unsafe { std::mem::zeroed() };
    assert_eq!(
        ck!(C_GetMechanismInfo(harness.slot(), CKM_RSA_PKCS, &mut info)),
        CKR_OK
    );
    assert_ne!(info.flags & CKF_SIGN, 0);
    assert_eq!(info.flags & CKF_DECRYPT, 0);

    let session = harness.user_session();
    let rsa = private_key(session, Slot::Authentication);
    let allowed = allowed_mechanisms(session, rsa);
    assert!(allowed.contains(&CKM_SHA256_RSA_PKCS));
    assert!(!allowed.contains(&CKM_SHA1_RSA_PKCS));
    assert!(!allowed.contains(&CKM_RSA_X_509));
}

#[test]
fn refused_mechanisms_are_mechanism_invalid_before_any_apdu() {
    let (harness, card) = harness();
    let session = harness.user_session();
    let rsa = private_key(session, Slot::Authentication);
    let ec = private_key(session, Slot::CardAuthentication);
    card.clear_log();
    for (kind, key) in [
        (CKM_SHA1_RSA_PKCS, rsa),
        (CKM_RSA_X_509, rsa),
        (CKM_ECDSA_SHA1, ec),
    ] {
        assert_eq!(
            ck!(C_SignInit(session, &mut mechanism(kind), key)),
            CKR_MECHANISM_INVALID,
            "{kind:#x}"
        );
    }
    for kind in [CKM_RSA_PKCS, CKM_RSA_X_509] {
        assert_eq!(
            ck!(C_DecryptInit(session, &mut mechanism(kind), rsa)),
            CKR_MECHANISM_INVALID,
            "{kind:#x}"
        );
    }
    // RSA-PSS with SHA-1 as its hash: the parameters are refused.
    let mut pss = Mech::pss(CKM_RSA_PKCS_PSS, Hash::Sha1, 20);
    assert_eq!(
        ck!(C_SignInit(session, pss.ptr(), rsa)),
        CKR_MECHANISM_PARAM_INVALID
    );
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
}

#[test]
fn host_supplied_hashes_of_sha1_are_refused_and_sha256_signs() {
    let (harness, card) = harness();
    let session = harness.user_session();
    let rsa = private_key(session, Slot::Authentication);
    let ec = private_key(session, Slot::CardAuthentication);
    let sha1 = Hash::Sha1.digest(b"policy");
    let sha256 = Hash::Sha256.digest(b"policy");
    // CKM_RSA_PKCS over a SHA-1 DigestInfo (TLS 1.2's rsa_pkcs1_sha1).
    let sha1_info = [HashAlg::Sha1.digest_info_prefix(), &sha1[..]].concat();
    card.clear_log();
    assert_eq!(
        sign(session, &mut mechanism(CKM_RSA_PKCS), rsa, &sha1_info).err(),
        Some(CKR_DATA_INVALID)
    );
    // CKM_ECDSA over 20 bytes: only SHA-1 is that long.
    assert_eq!(
        sign(session, &mut mechanism(CKM_ECDSA), ec, &sha1).err(),
        Some(CKR_DATA_INVALID)
    );
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());

    let sha256_info = [HashAlg::Sha256.digest_info_prefix(), &sha256[..]].concat();
    let signature = sign(session, &mut mechanism(CKM_RSA_PKCS), rsa, &sha256_info).unwrap();
    assert!(check::rsa_pkcs1(
        &card_public_key(&card, Slot::Authentication),
        Hash::Sha256,
        &sha256,
        &signature
    ));
    let signature = sign(session, &mut mechanism(CKM_ECDSA), ec, &sha256).unwrap();
    assert!(check::ecdsa(
        &card_public_key(&card, Slot::CardAuthentication),
        &sha256,
        &signature
    ));
}

#[test]
fn an_rsa_1024_key_shows_no_private_key_and_its_certificate_stays() {
    strict_preset();
    let card = SimPivCard::new().with_key(Slot::KeyManagement, KeyType::Rsa1024);
    let (backend, card) = SimBackend::with_card(card);
    let harness = Harness::with_backend(backend);
    let session = harness.user_session();
    let id = vec![key_id(Slot::KeyManagement)];
    let of_class = |class| find(session, &[(CKA_CLASS, ulong(class)), (CKA_ID, id.clone())]);
    assert_eq!(of_class(CKO_CERTIFICATE).len(), 1);
    assert_eq!(of_class(CKO_PUBLIC_KEY).len(), 1);
    assert!(of_class(CKO_PRIVATE_KEY).is_empty());
    let public = of_class(CKO_PUBLIC_KEY)[0];
    assert_eq!(
        as_ulong(&attribute(session, public, CKA_MODULUS_BITS).unwrap()),
        1024
    );
    // The RSA-2048 key 9A is still there and signs.
    let rsa = private_key(session, Slot::Authentication);
    let hash = Hash::Sha256.digest(b"policy");
    let signature = sign(session, &mut mechanism(CKM_SHA256_RSA_PKCS), rsa, b"policy").unwrap();
    assert!(check::rsa_pkcs1(
        &card_public_key(&card, Slot::Authentication),
        Hash::Sha256,
        &hash,
        &signature
    ));
}
