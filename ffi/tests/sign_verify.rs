//! Signing on the card and verifying in software (PKCS#11 2.40 §5.11,
//! §5.12; mechanisms from "PKCS #11 Current Mechanisms" §2.1 RSA and §2.3
//! ECDSA). Every signature is checked with RustCrypto against the public
//! key the *simulated card* holds, and with the module's own C_Verify.
//!
//! The default card: 9A RSA-2048, 9C P-256 (PIN for every use), 9D P-384,
//! 9E P-256 (no PIN).

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimCard, Slot};
use std::collections::BTreeSet;
use std::ptr;

const MESSAGE: &[u8] = b"The quick brown fox jumps over the lazy dog";

/// A logged-in session with the private and public key of `slot`.
struct Keys {
    session: CK_SESSION_HANDLE,
    private: CK_OBJECT_HANDLE,
    public: CK_OBJECT_HANDLE,
}

fn keys(harness: &Harness, slot: Slot) -> Keys {
    let session = harness.user_session();
    Keys {
        session,
        private: private_key(session, slot),
        public: public_key(session, slot),
    }
}

/// Signs `data` with `mech`, checks the signature with `independent`, then
/// with the module's C_Verify; returns it.
fn sign_and_verify(
    keys: &Keys,
    mut mech: Mech,
    data: &[u8],
    independent: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let kind = mech.raw().mechanism;
    let signature = sign(keys.session, mech.raw(), keys.private, data)
        .unwrap_or_else(|rv| panic!("mechanism {kind:#x}: C_Sign {rv:#x}"));
    assert!(
        independent(&signature),
        "mechanism {kind:#x}: RustCrypto rejects the signature"
    );
    assert_eq!(
        verify(keys.session, &mut mech, keys.public, data, &signature),
        CKR_OK,
        "mechanism {kind:#x}: C_Verify"
    );
    signature
}

fn rsa_public(card: &SimCard) -> p11card_cardsim::SimPublicKey {
    card_public_key(card, Slot::Authentication)
}

// ----- RSA (9A) -----------------------------------------------------------

/// CKM_RSA_PKCS signs what it is given, here a DigestInfo (RFC 8017 §9.2),
/// with EMSA-PKCS1-v1_5 block type 01.
#[test]
fn rsa_pkcs_signs_a_digest_info() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let public = rsa_public(&card);
    for hash in Hash::ALL {
        let digest = hash.digest(MESSAGE);
        let info = hash.digest_info(&digest);
        let signature = sign_and_verify(&keys, Mech::new(CKM_RSA_PKCS), &info, |sig| {
            check::rsa_pkcs1(&public, hash, &digest, sig)
        });
        assert_eq!(signature.len(), 256);
    }
}

#[test]
fn rsa_pkcs_input_longer_than_k_minus_11_is_data_len_range() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let result = sign(
        keys.session,
        &mut mechanism(CKM_RSA_PKCS),
        keys.private,
        &[0x5A; 246],
    );
    assert_eq!(result, Err(CKR_DATA_LEN_RANGE));
}

/// CKM_RSA_X_509 is the bare private-key operation: s^e mod n gives back
/// the input, left-padded with zeros to the modulus length.
#[test]
fn rsa_x_509_is_the_raw_private_key_operation() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let public = rsa_public(&card);
    let mut block = vec![0x00, 0x01];
    block.extend((0..254).map(|i| (i * 7 + 3) as u8));
    for input in [block.clone(), b"short input".to_vec()] {
        let signature = sign_and_verify(&keys, Mech::new(CKM_RSA_X_509), &input, |sig| {
            let recovered = check::rsa_public_op(&public, sig);
            recovered[256 - input.len()..] == input[..]
                && recovered[..256 - input.len()].iter().all(|&b| b == 0)
        });
        assert_eq!(signature.len(), 256);
    }
}

/// CKM_RSA_PKCS_PSS signs a hash the caller computed, with
/// CK_RSA_PKCS_PSS_PARAMS (hash, MGF1 hash, salt length).
#[test]
fn rsa_pkcs_pss_signs_a_hash_with_every_hash_algorithm() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let public = rsa_public(&card);
    for hash in Hash::ALL {
        let digest = hash.digest(MESSAGE);
        let mech = Mech::pss(CKM_RSA_PKCS_PSS, hash, hash.len());
        sign_and_verify(&keys, mech, &digest, |sig| {
            check::rsa_pss(&public, hash, hash.len(), &digest, sig)
        });
    }
}

#[test]
fn rsa_pkcs_pss_with_a_zero_length_salt() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let public = rsa_public(&card);
    let digest = Hash::Sha256.digest(MESSAGE);
    let mech = Mech::pss(CKM_RSA_PKCS_PSS, Hash::Sha256, 0);
    sign_and_verify(&keys, mech, &digest, |sig| {
        check::rsa_pss(&public, Hash::Sha256, 0, &digest, sig)
    });
}

#[test]
fn sha_rsa_pkcs_mechanisms_hash_and_sign() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let public = rsa_public(&card);
    for hash in Hash::ALL {
        let digest = hash.digest(MESSAGE);
        sign_and_verify(&keys, Mech::new(hash.rsa_pkcs()), MESSAGE, |sig| {
            check::rsa_pkcs1(&public, hash, &digest, sig)
        });
    }
}

#[test]
fn sha_rsa_pkcs_pss_mechanisms_hash_and_sign() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let public = rsa_public(&card);
    for hash in Hash::ALL {
        let digest = hash.digest(MESSAGE);
        let mech = Mech::pss(hash.rsa_pss(), hash, hash.len());
        sign_and_verify(&keys, mech, MESSAGE, |sig| {
            check::rsa_pss(&public, hash, hash.len(), &digest, sig)
        });
    }
}

// ----- ECDSA (9E P-256 without PIN, 9D P-384) ------------------------------

/// CKM_ECDSA signs a hash of any length: the card uses its leftmost field
/// bits (truncating a longer one), and the signature is r || s, each the
/// field size (Current Mechanisms §2.3.1).
#[test]
fn ecdsa_on_p256_signs_hashes_of_32_20_and_64_bytes() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::CardAuthentication);
    let public = card_public_key(&card, Slot::CardAuthentication);
    for hash in [Hash::Sha256, Hash::Sha1, Hash::Sha512] {
        let digest = hash.digest(MESSAGE);
        let signature = sign_and_verify(&keys, Mech::new(CKM_ECDSA), &digest, |sig| {
            check::ecdsa(&public, &digest, sig)
        });
        assert_eq!(signature.len(), 64, "{hash:?}");
    }
}

#[test]
fn ecdsa_on_p384_signs_hashes_of_48_32_20_and_64_bytes() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::KeyManagement);
    let public = card_public_key(&card, Slot::KeyManagement);
    for hash in [Hash::Sha384, Hash::Sha256, Hash::Sha1, Hash::Sha512] {
        let digest = hash.digest(MESSAGE);
        let signature = sign_and_verify(&keys, Mech::new(CKM_ECDSA), &digest, |sig| {
            check::ecdsa(&public, &digest, sig)
        });
        assert_eq!(signature.len(), 96, "{hash:?}");
    }
}

#[test]
fn ecdsa_sha_mechanisms_on_p256_and_p384() {
    let (harness, card) = Harness::new();
    for (slot, signature_len) in [(Slot::CardAuthentication, 64), (Slot::KeyManagement, 96)] {
        let keys = keys(&harness, slot);
        let public = card_public_key(&card, slot);
        for hash in Hash::ALL {
            let digest = hash.digest(MESSAGE);
            let signature = sign_and_verify(&keys, Mech::new(hash.ecdsa()), MESSAGE, |sig| {
                check::ecdsa(&public, &digest, sig)
            });
            assert_eq!(signature.len(), signature_len, "{slot:?} {hash:?}");
        }
    }
}

/// Every mechanism the token lists with CKF_SIGN, on a key that fits it.
#[test]
fn every_listed_signing_mechanism_signs_and_verifies() {
    let (harness, card) = Harness::new();
    let slot = harness.slot();
    let mut count: CK_ULONG = 0;
    assert_eq!(
        ck!(C_GetMechanismList(slot, ptr::null_mut(), &mut count)),
        CKR_OK
    );
    let mut list = vec![0; count as usize];
    assert_eq!(
        ck!(C_GetMechanismList(slot, list.as_mut_ptr(), &mut count)),
        CKR_OK
    );
    let rsa = keys(&harness, Slot::Authentication);
    let ec = keys(&harness, Slot::CardAuthentication);
    let rsa_public = rsa_public(&card);
    let ec_public = card_public_key(&card, Slot::CardAuthentication);
    let mut signed = BTreeSet::new();
    for kind in list {
        let mut info = unsafe { std::mem::zeroed::<CK_MECHANISM_INFO>() };
        assert_eq!(ck!(C_GetMechanismInfo(slot, kind, &mut info)), CKR_OK);
        if info.flags & CKF_SIGN == 0 {
            continue;
        }
        let by_hash =
            |f: fn(Hash) -> CK_MECHANISM_TYPE| Hash::ALL.into_iter().find(|&h| f(h) == kind);
        if kind == CKM_RSA_PKCS {
            let digest = Hash::Sha256.digest(MESSAGE);
            sign_and_verify(
                &rsa,
                Mech::new(kind),
                &Hash::Sha256.digest_info(&digest),
                |s| check::rsa_pkcs1(&rsa_public, Hash::Sha256, &digest, s),
            );
        } else if kind == CKM_RSA_X_509 {
            sign_and_verify(&rsa, Mech::new(kind), MESSAGE, |s| {
                check::rsa_public_op(&rsa_public, s).ends_with(MESSAGE)
            });
        } else if kind == CKM_RSA_PKCS_PSS {
            let digest = Hash::Sha256.digest(MESSAGE);
            sign_and_verify(&rsa, Mech::pss(kind, Hash::Sha256, 32), &digest, |s| {
                check::rsa_pss(&rsa_public, Hash::Sha256, 32, &digest, s)
            });
        } else if kind == CKM_ECDSA {
            let digest = Hash::Sha256.digest(MESSAGE);
            sign_and_verify(&ec, Mech::new(kind), &digest, |s| {
                check::ecdsa(&ec_public, &digest, s)
            });
        } else if let Some(hash) = by_hash(Hash::rsa_pkcs) {
            let digest = hash.digest(MESSAGE);
            sign_and_verify(&rsa, Mech::new(kind), MESSAGE, |s| {
                check::rsa_pkcs1(&rsa_public, hash, &digest, s)
            });
        } else if let Some(hash) = by_hash(Hash::rsa_pss) {
            let digest = hash.digest(MESSAGE);
            sign_and_verify(&rsa, Mech::pss(kind, hash, hash.len()), MESSAGE, |s| {
                check::rsa_pss(&rsa_public, hash, hash.len(), &digest, s)
            });
        } else if let Some(hash) = by_hash(Hash::ecdsa) {
            let digest = hash.digest(MESSAGE);
            sign_and_verify(&ec, Mech::new(kind), MESSAGE, |s| {
                check::ecdsa(&ec_public, &digest, s)
            });
        } else {
            panic!("no test knows signing mechanism {kind:#x}");
        }
        signed.insert(kind);
    }
    // 13 RSA (raw, PKCS #1 v1.5 and PSS, with and without hashing) and 6
    // ECDSA mechanisms.
    assert_eq!(signed.len(), 19, "signing mechanisms listed: {signed:x?}");
}

// ----- multi-part ---------------------------------------------------------

const PARTS: [&[u8]; 4] = [
    b"The quick brown ",
    b"",
    b"fox jumps over",
    b" the lazy dog",
];

/// §5.11: C_SignUpdate + C_SignFinal over parts signs their concatenation.
/// PKCS #1 v1.5 is deterministic, so both signatures are the same bytes.
#[test]
fn multi_part_sha256_rsa_pkcs_equals_single_part() {
    assert_eq!(PARTS.concat(), MESSAGE);
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let public = rsa_public(&card);
    let digest = Hash::Sha256.digest(MESSAGE);
    let mut mech = Mech::new(CKM_SHA256_RSA_PKCS);
    let single = sign(keys.session, mech.raw(), keys.private, MESSAGE).unwrap();
    let multi = sign_parts(keys.session, &mut mech, keys.private, &PARTS).unwrap();
    assert_eq!(multi, single);
    assert!(check::rsa_pkcs1(&public, Hash::Sha256, &digest, &multi));
    assert_eq!(
        verify_parts(keys.session, &mut mech, keys.public, &PARTS, &single),
        CKR_OK
    );
}

#[test]
fn multi_part_ecdsa_and_pss_signatures_verify_like_single_part_ones() {
    let (harness, card) = Harness::new();
    let cases = [
        (
            Slot::KeyManagement,
            Mech::new(CKM_ECDSA_SHA384),
            Hash::Sha384,
        ),
        (
            Slot::CardAuthentication,
            Mech::new(CKM_ECDSA_SHA256),
            Hash::Sha256,
        ),
        (
            Slot::Authentication,
            Mech::pss(CKM_SHA256_RSA_PKCS_PSS, Hash::Sha256, 32),
            Hash::Sha256,
        ),
    ];
    for (slot, mut mech, hash) in cases {
        let keys = keys(&harness, slot);
        let public = card_public_key(&card, slot);
        let digest = hash.digest(MESSAGE);
        let good = |sig: &[u8]| match slot {
            Slot::Authentication => check::rsa_pss(&public, hash, 32, &digest, sig),
            _ => check::ecdsa(&public, &digest, sig),
        };
        let single = sign(keys.session, mech.raw(), keys.private, MESSAGE).unwrap();
        let multi = sign_parts(keys.session, &mut mech, keys.private, &PARTS).unwrap();
        assert!(good(&single), "{slot:?} single-part");
        assert!(good(&multi), "{slot:?} multi-part");
        assert_eq!(
            verify_parts(keys.session, &mut mech, keys.public, &PARTS, &single),
            CKR_OK
        );
        assert_eq!(
            verify(keys.session, &mut mech, keys.public, MESSAGE, &multi),
            CKR_OK
        );
    }
}

// ----- the two-call convention (§5.2) -------------------------------------

#[test]
fn c_sign_length_query_and_too_small_buffer_keep_the_operation_active() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let mut mech = Mech::new(CKM_SHA256_RSA_PKCS);
    assert_eq!(
        ck!(C_SignInit(keys.session, mech.ptr(), keys.private)),
        CKR_OK
    );
    let data = MESSAGE.as_ptr() as *mut u8;
    let data_len = MESSAGE.len() as CK_ULONG;
    card.clear_log();
    // A NULL buffer asks for the length; nothing needs the card for that.
    let mut len: CK_ULONG = 0;
    assert_eq!(
        ck!(C_Sign(
            keys.session,
            data,
            data_len,
            ptr::null_mut(),
            &mut len
        )),
        CKR_OK
    );
    assert_eq!(len, 256);
    // A buffer too small: CKR_BUFFER_TOO_SMALL and the length needed.
    let mut small = [0u8; 10];
    len = small.len() as CK_ULONG;
    assert_eq!(
        ck!(C_Sign(
            keys.session,
            data,
            data_len,
            small.as_mut_ptr(),
            &mut len
        )),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, 256);
    assert_eq!(card.apdu_count(), 0, "{}", card.transcript());
    // The operation is still active: a big enough buffer gets the signature.
    let mut signature = vec![0u8; 300];
    len = signature.len() as CK_ULONG;
    assert_eq!(
        ck!(C_Sign(
            keys.session,
            data,
            data_len,
            signature.as_mut_ptr(),
            &mut len
        )),
        CKR_OK
    );
    assert_eq!(len, 256);
    signature.truncate(256);
    let digest = Hash::Sha256.digest(MESSAGE);
    assert!(check::rsa_pkcs1(
        &rsa_public(&card),
        Hash::Sha256,
        &digest,
        &signature
    ));
    // …and then over (§5.11 "A call to C_Sign always terminates …").
    assert_eq!(
        ck!(C_Sign(
            keys.session,
            data,
            data_len,
            signature.as_mut_ptr(),
            &mut len
        )),
        CKR_OPERATION_NOT_INITIALIZED
    );
}

#[test]
fn c_sign_final_follows_the_two_call_convention() {
    let (harness, card) = Harness::new();
    let keys = keys(&harness, Slot::KeyManagement);
    let mut mech = Mech::new(CKM_ECDSA_SHA384);
    assert_eq!(
        ck!(C_SignInit(keys.session, mech.ptr(), keys.private)),
        CKR_OK
    );
    assert_eq!(
        ck!(C_SignUpdate(
            keys.session,
            MESSAGE.as_ptr() as *mut u8,
            MESSAGE.len() as CK_ULONG
        )),
        CKR_OK
    );
    let mut len: CK_ULONG = 0;
    assert_eq!(
        ck!(C_SignFinal(keys.session, ptr::null_mut(), &mut len)),
        CKR_OK
    );
    assert_eq!(len, 96);
    let mut small = [0u8; 95];
    len = small.len() as CK_ULONG;
    assert_eq!(
        ck!(C_SignFinal(keys.session, small.as_mut_ptr(), &mut len)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, 96);
    let mut signature = [0u8; 96];
    len = 96;
    assert_eq!(
        ck!(C_SignFinal(keys.session, signature.as_mut_ptr(), &mut len)),
        CKR_OK
    );
    let public = card_public_key(&card, Slot::KeyManagement);
    assert!(check::ecdsa(
        &public,
        &Hash::Sha384.digest(MESSAGE),
        &signature
    ));
}

// ----- verification failures ----------------------------------------------

#[test]
fn verify_rejects_a_modified_signature() {
    let (harness, _card) = Harness::new();
    for (slot, kind) in [
        (Slot::Authentication, CKM_SHA256_RSA_PKCS),
        (Slot::CardAuthentication, CKM_ECDSA_SHA256),
        (Slot::KeyManagement, CKM_ECDSA_SHA384),
    ] {
        let keys = keys(&harness, slot);
        let mut mech = Mech::new(kind);
        let mut signature = sign(keys.session, mech.raw(), keys.private, MESSAGE).unwrap();
        signature[10] ^= 0x01;
        assert_eq!(
            verify(keys.session, &mut mech, keys.public, MESSAGE, &signature),
            CKR_SIGNATURE_INVALID,
            "{slot:?}"
        );
        signature[10] ^= 0x01;
        assert_eq!(
            verify(
                keys.session,
                &mut mech,
                keys.public,
                b"another message",
                &signature
            ),
            CKR_SIGNATURE_INVALID,
            "{slot:?}"
        );
    }
}

#[test]
fn verify_rejects_a_signature_of_the_wrong_length() {
    let (harness, _card) = Harness::new();
    for (slot, kind) in [
        (Slot::Authentication, CKM_SHA256_RSA_PKCS),
        (Slot::CardAuthentication, CKM_ECDSA_SHA256),
    ] {
        let keys = keys(&harness, slot);
        let mut mech = Mech::new(kind);
        let signature = sign(keys.session, mech.raw(), keys.private, MESSAGE).unwrap();
        for bad in [&signature[1..], &[signature.as_slice(), &[0]].concat()[..]] {
            assert_eq!(
                verify(keys.session, &mut mech, keys.public, MESSAGE, bad),
                CKR_SIGNATURE_LEN_RANGE,
                "{slot:?} length {}",
                bad.len()
            );
        }
    }
}

// ----- refused mechanisms ---------------------------------------------------

#[test]
fn ecdsa_on_the_rsa_key_is_key_type_inconsistent() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    for kind in [CKM_ECDSA, CKM_ECDSA_SHA256] {
        let mut mech = Mech::new(kind);
        assert_eq!(
            ck!(C_SignInit(keys.session, mech.ptr(), keys.private)),
            CKR_KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            ck!(C_VerifyInit(keys.session, mech.ptr(), keys.public)),
            CKR_KEY_TYPE_INCONSISTENT
        );
    }
}

#[test]
fn rsa_mechanisms_on_an_ec_key_are_key_type_inconsistent() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness, Slot::CardAuthentication);
    let mut mech = Mech::new(CKM_SHA256_RSA_PKCS);
    assert_eq!(
        ck!(C_SignInit(keys.session, mech.ptr(), keys.private)),
        CKR_KEY_TYPE_INCONSISTENT
    );
}

#[test]
fn unknown_mechanism_is_mechanism_invalid() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    for kind in [CKM_MD5_RSA_PKCS, CKM_VENDOR_DEFINED | 0x77] {
        let mut mech = Mech::new(kind);
        assert_eq!(
            ck!(C_SignInit(keys.session, mech.ptr(), keys.private)),
            CKR_MECHANISM_INVALID,
            "{kind:#x}"
        );
    }
}

/// OAEP encrypts and decrypts; it cannot sign.
#[test]
fn oaep_cannot_sign() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let mut mech = Mech::oaep(Hash::Sha256, b"");
    assert_eq!(
        ck!(C_SignInit(keys.session, mech.ptr(), keys.private)),
        CKR_MECHANISM_INVALID
    );
}

#[test]
fn pss_without_its_parameter_is_mechanism_param_invalid() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    for kind in [CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS] {
        let mut mech = Mech::new(kind);
        assert_eq!(
            ck!(C_SignInit(keys.session, mech.ptr(), keys.private)),
            CKR_MECHANISM_PARAM_INVALID,
            "{kind:#x} with no parameter"
        );
        let mut mech = Mech::null_param(kind, std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>());
        assert_eq!(
            ck!(C_SignInit(keys.session, mech.ptr(), keys.private)),
            CKR_MECHANISM_PARAM_INVALID,
            "{kind:#x} with a NULL parameter"
        );
    }
}

/// Current Mechanisms §2.1.14: for CKM_SHAx_RSA_PKCS_PSS the parameter's
/// hashAlg must be the mechanism's hash.
#[test]
fn pss_with_a_hash_other_than_the_mechanisms_is_mechanism_param_invalid() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let mut mech = Mech::pss(CKM_SHA256_RSA_PKCS_PSS, Hash::Sha384, 48);
    assert_eq!(
        ck!(C_SignInit(keys.session, mech.ptr(), keys.private)),
        CKR_MECHANISM_PARAM_INVALID
    );
}

/// CKM_RSA_PKCS_PSS signs a hash: input of another length is refused.
#[test]
fn rsa_pkcs_pss_on_input_that_is_not_the_hash_is_refused() {
    let (harness, _card) = Harness::new();
    let keys = keys(&harness, Slot::Authentication);
    let mut mech = Mech::pss(CKM_RSA_PKCS_PSS, Hash::Sha256, 32);
    let result = sign(keys.session, mech.raw(), keys.private, &[0x11; 31]);
    assert!(
        matches!(result, Err(CKR_DATA_LEN_RANGE) | Err(CKR_DATA_INVALID)),
        "{result:x?}"
    );
}

// ----- digests ----------------------------------------------------------------

#[test]
fn c_digest_matches_rustcrypto() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    for hash in Hash::ALL {
        assert_eq!(
            digest(session, hash.ckm(), MESSAGE),
            Ok(hash.digest(MESSAGE)),
            "{hash:?}"
        );
        assert_eq!(
            digest(session, hash.ckm(), b""),
            Ok(hash.digest(b"")),
            "{hash:?} of nothing"
        );
    }
}

#[test]
fn multi_part_digest_matches_rustcrypto() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let mut mech = Mech::new(CKM_SHA384);
    assert_eq!(ck!(C_DigestInit(session, mech.ptr())), CKR_OK);
    for part in PARTS {
        assert_eq!(
            ck!(C_DigestUpdate(
                session,
                part.as_ptr() as *mut u8,
                part.len() as CK_ULONG
            )),
            CKR_OK
        );
    }
    let result = two_call(|out, len| ck!(C_DigestFinal(session, out, len)));
    assert_eq!(result, Ok(Hash::Sha384.digest(MESSAGE)));
}
