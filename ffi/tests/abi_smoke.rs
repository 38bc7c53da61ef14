//! First contact through the C ABI: enumerate, log in, sign, verify.

mod common;

use common::*;
use cryptoki_sys::*;

#[test]
fn lists_the_card_logs_in_and_signs_with_every_key() {
    let (harness, _card) = Harness::new();
    let slots = harness.slots();
    assert_eq!(slots.len(), 1);
    let session = harness.session();
    let certificates = find(session, &[(CKA_CLASS, ulong(CKO_CERTIFICATE))]);
    assert_eq!(certificates.len(), 4);
    assert_eq!(login(session, CKU_USER, "123456"), CKR_OK);
    for (id, mech) in [
        (1u8, CKM_SHA256_RSA_PKCS),
        (3, CKM_ECDSA_SHA384),
        (4, CKM_ECDSA_SHA256),
    ] {
        let key = object(session, CKO_PRIVATE_KEY, id);
        let public = object(session, CKO_PUBLIC_KEY, id);
        let signature = sign(session, &mut mechanism(mech), key, b"hello").expect("sign");
        let mut m = mechanism(mech);
        unsafe {
            assert_eq!((f().C_VerifyInit.unwrap())(session, &mut m, public), CKR_OK);
            let rv = (f().C_Verify.unwrap())(
                session,
                b"hello".as_ptr() as *mut u8,
                5,
                signature.as_ptr() as *mut u8,
                signature.len() as CK_ULONG,
            );
            assert_eq!(rv, CKR_OK, "verify with key {id}");
        }
    }
}
