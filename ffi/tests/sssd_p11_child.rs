//! SSSD's `p11_child` (2.8, the smart-card login of GNOME's login screen,
//! `sudo` and `su` through `pam_sss`) as a consumer, call for call, on the
//! simulated PIV card: `sssd_pam` runs it twice per login, each time a new
//! process that loads the module through p11-kit: pre-auth (find the slot,
//! read every certificate without logging in) and auth (log in, read the
//! certificates again, find the private key by `CKA_ID` with `CKA_SIGN`,
//! sign 128 random bytes — RSA with the first of `CKM_SHA512_RSA_PKCS`…
//! the token offers, EC with `CKM_ECDSA` over a SHA-512 hash, 64 bytes for
//! a P-256 key — verify, log out, close, finalise). The real stack runs
//! the real `p11_child` (tests/realstack/suite-sssd.sh); this pins down
//! what it relies on.

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::{SimCard, Slot};
use std::ptr;

/// A certificate as `read_certs` collects it.
struct FoundCert {
    id: Vec<u8>,
    label: Vec<u8>,
    value: Vec<u8>,
}

/// The slot `do_card` picks: the first of `C_GetSlotList(CK_FALSE)` (length
/// query, then the list) that is removable and holds a token.
fn p11_child_slot() -> CK_SLOT_ID {
    // SAFETY: CK_INFO is plain data (integers and byte arrays): all zeroes is valid.
    let mut info = unsafe { std::mem::zeroed::<CK_INFO>() };
    assert_eq!(
        ck!(C_GetInfo(&mut info)),
        CKR_OK,
        "C_GetInfo (p11_uri match)"
    );
    let slots = slot_list(false);
    let slot = slots
        .into_iter()
        .find(|&slot| {
            let flags = slot_info(slot).expect("C_GetSlotInfo").flags;
            flags & CKF_REMOVABLE_DEVICE != 0 && flags & CKF_TOKEN_PRESENT != 0
        })
        .expect("a removable slot with a token");
    token_info(slot).expect("C_GetTokenInfo");
    slot
}

/// `read_certs`: every X.509 certificate, one `C_FindObjects` at a time,
/// `CKA_ID`, `CKA_LABEL` and `CKA_VALUE` in one `C_GetAttributeValue`
/// (lengths first; each must be readable).
fn read_certs(session: CK_SESSION_HANDLE) -> Vec<FoundCert> {
    let mut template = [
        (CKA_CLASS, ulong(CKO_CERTIFICATE)),
        (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
    ];
    let mut attrs: Vec<CK_ATTRIBUTE> = template
        .iter_mut()
        .map(|(kind, value)| CK_ATTRIBUTE {
            type_: *kind,
            pValue: value.as_mut_ptr().cast(),
            ulValueLen: value.len() as CK_ULONG,
        })
        .collect();
    assert_eq!(
        ck!(C_FindObjectsInit(session, attrs.as_mut_ptr(), 2)),
        CKR_OK
    );
    let mut found = Vec::new();
    loop {
        let mut object: CK_OBJECT_HANDLE = 0;
        let mut count: CK_ULONG = 0;
        assert_eq!(
            ck!(C_FindObjects(session, &mut object, 1, &mut count)),
            CKR_OK
        );
        if count == 0 {
            break;
        }
        let mut attrs = [CKA_ID, CKA_LABEL, CKA_VALUE].map(|kind| CK_ATTRIBUTE {
            type_: kind,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        });
        assert_eq!(
            ck!(C_GetAttributeValue(session, object, attrs.as_mut_ptr(), 3)),
            CKR_OK
        );
        assert!(
            attrs
                .iter()
                .all(|a| a.ulValueLen != CK_UNAVAILABLE_INFORMATION),
            "every certificate has CKA_ID, CKA_LABEL and CKA_VALUE"
        );
        let mut values: Vec<Vec<u8>> = attrs
            .iter()
            .map(|a| vec![0u8; a.ulValueLen as usize])
            .collect();
        for (attr, value) in attrs.iter_mut().zip(values.iter_mut()) {
            attr.pValue = value.as_mut_ptr().cast();
        }
        assert_eq!(
            ck!(C_GetAttributeValue(session, object, attrs.as_mut_ptr(), 3)),
            CKR_OK
        );
        let [id, label, value] = <[Vec<u8>; 3]>::try_from(values).expect("three values");
        found.push(FoundCert { id, label, value });
    }
    assert_eq!(ck!(C_FindObjectsFinal(session)), CKR_OK);
    found
}

/// `sign_data`: the private key with the certificate's `CKA_ID` and
/// `CKA_SIGN`, its type, the mechanism, two-call `C_Sign` of 128 bytes (or
/// their SHA-512 for ECDSA). Returns the mechanism, the signed input and
/// the signature.
fn sign_data(
    session: CK_SESSION_HANDLE,
    slot: CK_SLOT_ID,
    cert: &FoundCert,
) -> (CK_MECHANISM_TYPE, Vec<u8>, Vec<u8>) {
    let mut class = ulong(CKO_PRIVATE_KEY);
    let mut can_sign = vec![CK_TRUE];
    let mut id = cert.id.clone();
    let mut template = [
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: class.as_mut_ptr().cast(),
            ulValueLen: class.len() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_SIGN,
            pValue: can_sign.as_mut_ptr().cast(),
            ulValueLen: 1,
        },
        CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: id.as_mut_ptr().cast(),
            ulValueLen: id.len() as CK_ULONG,
        },
    ];
    assert_eq!(
        ck!(C_FindObjectsInit(session, template.as_mut_ptr(), 3)),
        CKR_OK
    );
    let mut key: CK_OBJECT_HANDLE = 0;
    let mut count: CK_ULONG = 0;
    assert_eq!(ck!(C_FindObjects(session, &mut key, 1, &mut count)), CKR_OK);
    assert_eq!(ck!(C_FindObjectsFinal(session)), CKR_OK);
    assert_eq!(count, 1, "the private key of certificate {:02x?}", cert.id);

    // get_key_type: a CK_KEY_TYPE-sized buffer, no length query.
    let mut key_type: CK_KEY_TYPE = CK_UNAVAILABLE_INFORMATION;
    let mut attr = CK_ATTRIBUTE {
        type_: CKA_KEY_TYPE,
        pValue: (&mut key_type as *mut CK_KEY_TYPE).cast(),
        ulValueLen: std::mem::size_of::<CK_KEY_TYPE>() as CK_ULONG,
    };
    assert_eq!(ck!(C_GetAttributeValue(session, key, &mut attr, 1)), CKR_OK);

    let random: Vec<u8> = (0..128u8).map(|b| b.wrapping_mul(151) ^ 0x5A).collect();
    let (mechanism, input) = match key_type {
        CKK_RSA => {
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
            let preferred = [
                CKM_SHA512_RSA_PKCS,
                CKM_SHA384_RSA_PKCS,
                CKM_SHA256_RSA_PKCS,
                CKM_SHA224_RSA_PKCS,
                CKM_RSA_PKCS,
                CKM_SHA1_RSA_PKCS,
            ];
            let chosen = preferred
                .into_iter()
                .find(|m| list.contains(m))
                .expect("an RSA mechanism p11_child knows");
            assert_eq!(
                chosen, CKM_SHA512_RSA_PKCS,
                "the token offers SHA512-RSA-PKCS"
            );
            (chosen, random)
        }
        CKK_EC => {
            // get_ec_curve_type: CKA_EC_PARAMS into a 128-byte buffer.
            let mut params = [0u8; 128];
            let mut attr = CK_ATTRIBUTE {
                type_: CKA_EC_PARAMS,
                pValue: params.as_mut_ptr().cast(),
                ulValueLen: params.len() as CK_ULONG,
            };
            assert_eq!(ck!(C_GetAttributeValue(session, key, &mut attr, 1)), CKR_OK);
            (CKM_ECDSA, Hash::Sha512.digest(&random))
        }
        other => panic!("key type {other} is neither RSA nor EC"),
    };
    let mut mech = common::mechanism(mechanism);
    let signature = sign(session, &mut mech, key, &input).expect("C_SignInit + C_Sign");
    assert!(!signature.is_empty());
    (mechanism, input, signature)
}

/// A signature `p11_child` made: mechanism, signed input, signature.
struct Signed {
    mechanism: CK_MECHANISM_TYPE,
    input: Vec<u8>,
    signature: Vec<u8>,
}

/// One `p11_child` process after `C_Initialize`: the certificates it
/// reports (pre-auth: every one; auth: the one with `sign_with`'s
/// `CKA_ID`) and, in auth mode, its signature. A refused `C_Login` ends it.
fn p11_child(
    card: &SimCard,
    pin: Option<&str>,
    sign_with: Option<u8>,
) -> Result<(Vec<FoundCert>, Option<Signed>), CK_RV> {
    let slot = p11_child_slot();
    let session = open_session(slot, CKF_SERIAL_SESSION);
    let logged_in = match pin.map(|pin| login(session, CKU_USER, pin)) {
        Some(CKR_OK) => true,
        Some(rv) => {
            assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
            return Err(rv);
        }
        None => false,
    };
    let mut certs = read_certs(session);
    // SAFETY: CK_INFO is plain data (integers and byte arrays): all zeroes is valid.
    let mut info = unsafe { std::mem::zeroed::<CK_INFO>() };
    assert_eq!(ck!(C_GetInfo(&mut info)), CKR_OK);
    let mut signed = None;
    if let Some(id) = sign_with {
        certs.retain(|cert| cert.id == [id]);
        assert_eq!(certs.len(), 1, "one certificate with CKA_ID {id:02x}");
        let (mechanism, input, signature) = sign_data(session, slot, &certs[0]);
        signed = Some(Signed {
            mechanism,
            input,
            signature,
        });
        assert!(
            card_pin_verified(card),
            "the card holds the PIN verified while logged in"
        );
    }
    if logged_in {
        assert_eq!(ck!(C_Logout(session)), CKR_OK);
    }
    assert_eq!(ck!(C_CloseSession(session)), CKR_OK);
    Ok((certs, signed))
}

/// Checks a `p11_child` signature with the card's key (RustCrypto).
fn assert_signed_by(card: &SimCard, slot: Slot, signed: &Signed) {
    let public = card_public_key(card, slot);
    let ok = match signed.mechanism {
        CKM_SHA512_RSA_PKCS => check::rsa_pkcs1(
            &public,
            Hash::Sha512,
            &Hash::Sha512.digest(&signed.input),
            &signed.signature,
        ),
        CKM_ECDSA => check::ecdsa(&public, &signed.input, &signed.signature),
        other => panic!("unexpected mechanism {other:#x}"),
    };
    assert!(ok, "the {slot:?} key's signature verifies");
}

/// Pre-auth then auth, as two processes, with the RSA key (9A, the
/// certificate a login maps) and the P-256 key (9E: `CKM_ECDSA` over 64
/// bytes, cut to the key's 32); afterwards the card no longer holds the
/// PIN verified, so the next program needs the PIN again.
#[test]
fn p11_child_pre_auth_then_auth_signs_with_rsa_and_ec_keys() {
    let (harness, card) = Harness::new();
    let (certs, signed) = p11_child(&card, None, None).expect("pre-auth");
    assert!(signed.is_none());
    let ids: Vec<Vec<u8>> = certs.iter().map(|c| c.id.clone()).collect();
    for (slot, label) in [
        (Slot::Authentication, "PIV Authentication"),
        (Slot::CardAuthentication, "Card Authentication"),
    ] {
        let cert = certs
            .iter()
            .find(|c| c.id == [key_id(slot)])
            .unwrap_or_else(|| panic!("pre-auth finds the {slot:?} certificate among {ids:02x?}"));
        assert_eq!(cert.label, label.as_bytes());
        assert_eq!(cert.value, card_certificate(&card, slot));
    }
    for slot in [Slot::Authentication, Slot::CardAuthentication] {
        harness.restart();
        let (certs, signed) = p11_child(&card, Some(PIN), Some(key_id(slot)))
            .unwrap_or_else(|rv| panic!("auth: {rv:#x}"));
        assert_eq!(certs[0].value, card_certificate(&card, slot));
        assert_signed_by(&card, slot, signed.as_ref().expect("a signature"));
        harness.restart();
        assert!(
            !card_pin_verified(&card),
            "after p11_child with the {slot:?} key the card forgot the PIN"
        );
    }
}

/// A wrong PIN: `C_Login` says `CKR_PIN_INCORRECT` (pam_sss: "wrong PIN"),
/// one try spent; the right PIN in the next process works and restores the
/// tries.
#[test]
fn p11_child_wrong_pin_costs_one_try_then_the_right_one_logs_in() {
    let (harness, card) = Harness::new();
    let full = pin_tries_left(&card);
    assert_eq!(
        p11_child(&card, Some("000000"), Some(key_id(Slot::Authentication))).err(),
        Some(CKR_PIN_INCORRECT)
    );
    assert_eq!(pin_tries_left(&card), full - 1);
    harness.restart();
    let (_, signed) =
        p11_child(&card, Some(PIN), Some(key_id(Slot::Authentication))).expect("auth");
    assert_signed_by(
        &card,
        Slot::Authentication,
        signed.as_ref().expect("a signature"),
    );
    assert_eq!(pin_tries_left(&card), full);
}
