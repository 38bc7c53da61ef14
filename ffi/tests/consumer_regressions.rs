//! Regressions found by real consumers on the real stack, pinned down on the
//! simulated card.

mod common;

use common::*;
use cryptoki_sys::*;

/// libp11 (OpenSSL's pkcs11 engine) logs in only when the key it found is a
/// private object; a PIN-protected key that was visible and `CKA_PRIVATE`
/// false made it sign without login and fail with CKR_USER_NOT_LOGGED_IN.
#[test]
fn pin_protected_private_keys_are_private_objects_hidden_until_login() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let before = find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]);
    assert_eq!(
        before.len(),
        1,
        "only the no-PIN card authentication key (9E) is visible before login"
    );
    assert_eq!(attribute(session, before[0], CKA_ID), Ok(vec![0x04]));
    assert_eq!(
        attribute(session, before[0], CKA_PRIVATE),
        Ok(vec![CK_FALSE])
    );
    assert_eq!(
        find(session, &[]).len(),
        9,
        "4 certificates, 4 public keys, 1 private key"
    );

    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    let after = find(session, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]);
    assert_eq!(after.len(), 4);
    for id in [1u8, 2, 3] {
        let key = object(session, CKO_PRIVATE_KEY, id);
        assert_eq!(
            attribute(session, key, CKA_PRIVATE),
            Ok(vec![CK_TRUE]),
            "key {id:02x}"
        );
    }

    // After logout the handles of private objects are no longer usable.
    let hidden = object(session, CKO_PRIVATE_KEY, 1);
    assert_eq!(unsafe { (f().C_Logout.unwrap())(session) }, CKR_OK);
    assert_eq!(
        attribute(session, hidden, CKA_LABEL),
        Err(CKR_OBJECT_HANDLE_INVALID)
    );
}
