//! The PKCS#11 3.0 entry points (3.0 §5.2 C_GetInterfaceList /
//! C_GetInterface, §5.6 C_LoginUser and C_SessionCancel, §5.15 message-based
//! functions).

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::Slot;
use std::ffi::{c_void, CStr};
use std::ptr;

fn interface_name(interface: &CK_INTERFACE) -> &str {
    unsafe { CStr::from_ptr(interface.pInterfaceName as *const std::ffi::c_char) }
        .to_str()
        .expect("a UTF-8 interface name")
}

/// Both function lists begin with their CK_VERSION.
fn interface_version(interface: &CK_INTERFACE) -> (u8, u8) {
    let version = unsafe { *(interface.pFunctionList as *const CK_VERSION) };
    (version.major, version.minor)
}

fn get_interface(name: Option<&[u8]>, version: Option<(u8, u8)>) -> Result<CK_INTERFACE, CK_RV> {
    let mut version = version.map(|(major, minor)| CK_VERSION { major, minor });
    let mut interface: *mut CK_INTERFACE = ptr::null_mut();
    let rv = unsafe {
        p11card_pkcs11::C_GetInterface(
            name.map_or(ptr::null_mut(), |n| n.as_ptr() as *mut u8),
            version.as_mut().map_or(ptr::null_mut(), |v| v as *mut _),
            &mut interface,
            0,
        )
    };
    match rv {
        CKR_OK => {
            assert!(!interface.is_null());
            Ok(unsafe { *interface })
        }
        rv => {
            assert!(interface.is_null(), "an interface handed out with {rv:#x}");
            Err(rv)
        }
    }
}

#[test]
fn interface_list_offers_pkcs11_3_0_and_2_40_with_the_two_call_convention() {
    let (_harness, _card) = Harness::new();
    let mut count: CK_ULONG = 0;
    assert_eq!(
        unsafe { p11card_pkcs11::C_GetInterfaceList(ptr::null_mut(), &mut count) },
        CKR_OK
    );
    assert_eq!(count, 2);
    let mut one = [unsafe { std::mem::zeroed::<CK_INTERFACE>() }; 1];
    count = 1;
    assert_eq!(
        unsafe { p11card_pkcs11::C_GetInterfaceList(one.as_mut_ptr(), &mut count) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(count, 2);
    let mut list = [unsafe { std::mem::zeroed::<CK_INTERFACE>() }; 2];
    assert_eq!(
        unsafe { p11card_pkcs11::C_GetInterfaceList(list.as_mut_ptr(), &mut count) },
        CKR_OK
    );
    let mut seen: Vec<(&str, (u8, u8))> = list
        .iter()
        .map(|i| (interface_name(i), interface_version(i)))
        .collect();
    seen.sort();
    assert_eq!(seen, vec![("PKCS 11", (2, 40)), ("PKCS 11", (3, 0))]);
}

#[test]
fn get_interface_without_name_or_version_gives_3_0() {
    let (_harness, _card) = Harness::new();
    let interface = get_interface(None, None).expect("the default interface");
    assert_eq!(interface_name(&interface), "PKCS 11");
    assert_eq!(interface_version(&interface), (3, 0));
    assert_eq!(
        interface.pFunctionList as *const CK_FUNCTION_LIST_3_0,
        f3() as *const _
    );
}

#[test]
fn get_interface_by_name_and_version_2_40_gives_the_2_40_list() {
    let (_harness, _card) = Harness::new();
    let interface = get_interface(Some(b"PKCS 11\0"), Some((2, 40))).expect("2.40");
    assert_eq!(interface_version(&interface), (2, 40));
    assert_eq!(
        interface.pFunctionList as *const CK_FUNCTION_LIST,
        f() as *const _
    );
    // Its C_GetInfo speaks 2.40.
    let list = unsafe { &*(interface.pFunctionList as *const CK_FUNCTION_LIST) };
    let mut info = unsafe { std::mem::zeroed::<CK_INFO>() };
    assert_eq!(unsafe { (list.C_GetInfo.unwrap())(&mut info) }, CKR_OK);
    assert_eq!(
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
        (2, 40)
    );
}

#[test]
fn get_interface_by_name_and_version_3_0_gives_the_3_0_list() {
    let (_harness, _card) = Harness::new();
    let interface = get_interface(Some(b"PKCS 11\0"), Some((3, 0))).expect("3.0");
    assert_eq!(interface_version(&interface), (3, 0));
}

#[test]
fn get_interface_with_an_unknown_name_or_version_is_an_error() {
    let (_harness, _card) = Harness::new();
    assert_eq!(
        get_interface(Some(b"Vendor Extension\0"), None).err(),
        Some(CKR_ARGUMENTS_BAD)
    );
    assert_eq!(
        get_interface(Some(b"PKCS 11\0"), Some((1, 0))).err(),
        Some(CKR_ARGUMENTS_BAD)
    );
}

#[test]
fn every_entry_of_the_3_0_function_list_is_set() {
    let list = f3();
    let first = std::mem::offset_of!(CK_FUNCTION_LIST_3_0, C_Initialize);
    let size = std::mem::size_of::<CK_FUNCTION_LIST_3_0>();
    let entries = (size - first) / std::mem::size_of::<usize>();
    assert_eq!(entries, 92);
    let base = list as *const CK_FUNCTION_LIST_3_0 as *const u8;
    let missing: Vec<usize> = (0..entries)
        .filter(|i| {
            let entry = unsafe {
                (base.add(first + i * std::mem::size_of::<usize>()) as *const usize).read()
            };
            entry == 0
        })
        .collect();
    assert!(missing.is_empty(), "NULL entries at indexes {missing:?}");
    // The 2.40 list has every 2.40 entry.
    let list = f();
    let first = std::mem::offset_of!(CK_FUNCTION_LIST, C_Initialize);
    let size = std::mem::size_of::<CK_FUNCTION_LIST>();
    let base = list as *const CK_FUNCTION_LIST as *const u8;
    for i in 0..(size - first) / std::mem::size_of::<usize>() {
        let entry =
            unsafe { (base.add(first + i * std::mem::size_of::<usize>()) as *const usize).read() };
        assert_ne!(entry, 0, "2.40 entry {i} is NULL");
    }
}

#[test]
fn login_user_with_an_empty_user_name_works_like_c_login() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    let pin = PIN.as_ptr() as *mut u8;
    assert_eq!(
        ck3!(C_LoginUser(session, CKU_USER, pin, 6, ptr::null_mut(), 0)),
        CKR_OK
    );
    assert_eq!(session_info(session).unwrap().state, CKS_RO_USER_FUNCTIONS);
    assert!(card.with(|c| c.pin_verified()));
    assert_eq!(ck!(C_Logout(session)), CKR_OK);
    let mut empty = [0u8; 1];
    assert_eq!(
        ck3!(C_LoginUser(
            session,
            CKU_USER,
            pin,
            6,
            empty.as_mut_ptr(),
            0
        )),
        CKR_OK
    );
    assert_eq!(
        ck3!(C_LoginUser(session, CKU_USER, pin, 6, ptr::null_mut(), 0)),
        CKR_USER_ALREADY_LOGGED_IN
    );
}

#[test]
fn login_user_with_a_wrong_pin_is_pin_incorrect() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    let wrong = b"000000".as_ptr() as *mut u8;
    assert_eq!(
        ck3!(C_LoginUser(session, CKU_USER, wrong, 6, ptr::null_mut(), 0)),
        CKR_PIN_INCORRECT
    );
    assert_eq!(pin_tries_left(&card), 2);
}

#[test]
fn session_cancel_ends_an_active_sign_operation() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    let key = private_key(session, Slot::CardAuthentication);
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    assert_eq!(ck3!(C_SessionCancel(session, CKF_SIGN)), CKR_OK);
    card.clear_log();
    assert_eq!(
        sign_more(session, b"data"),
        Err(CKR_OPERATION_NOT_INITIALIZED)
    );
    assert_eq!(card.apdu_count(), 0);
    // A new operation can start.
    assert!(sign(session, mech.raw(), key, b"data").is_ok());
}

#[test]
fn session_cancel_leaves_other_operations_alone() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let key = private_key(session, Slot::CardAuthentication);
    let mut ecdsa = Mech::new(CKM_ECDSA_SHA256);
    let mut sha = Mech::new(CKM_SHA256);
    assert_eq!(ck!(C_SignInit(session, ecdsa.ptr(), key)), CKR_OK);
    assert_eq!(ck!(C_DigestInit(session, sha.ptr())), CKR_OK);
    assert_eq!(ck3!(C_SessionCancel(session, CKF_DIGEST)), CKR_OK);
    assert!(sign_more(session, b"data").is_ok());
}

#[test]
fn message_based_functions_are_function_not_supported() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let key = private_key(session, Slot::CardAuthentication);
    let mut m = Mech::new(CKM_ECDSA);
    let mut buf = [0u8; 64];
    let mut len: CK_ULONG = 64;
    let b = buf.as_mut_ptr();
    let p = ptr::null_mut::<c_void>();
    let no = CKR_FUNCTION_NOT_SUPPORTED;
    let rows = [
        (
            "C_MessageEncryptInit",
            ck3!(C_MessageEncryptInit(session, m.ptr(), key)),
        ),
        (
            "C_EncryptMessage",
            ck3!(C_EncryptMessage(session, p, 0, b, 0, b, 8, b, &mut len)),
        ),
        (
            "C_EncryptMessageBegin",
            ck3!(C_EncryptMessageBegin(session, p, 0, b, 0)),
        ),
        (
            "C_EncryptMessageNext",
            ck3!(C_EncryptMessageNext(session, p, 0, b, 8, b, &mut len, 0)),
        ),
        (
            "C_MessageEncryptFinal",
            ck3!(C_MessageEncryptFinal(session)),
        ),
        (
            "C_MessageDecryptInit",
            ck3!(C_MessageDecryptInit(session, m.ptr(), key)),
        ),
        (
            "C_DecryptMessage",
            ck3!(C_DecryptMessage(session, p, 0, b, 0, b, 8, b, &mut len)),
        ),
        (
            "C_DecryptMessageBegin",
            ck3!(C_DecryptMessageBegin(session, p, 0, b, 0)),
        ),
        (
            "C_DecryptMessageNext",
            ck3!(C_DecryptMessageNext(session, p, 0, b, 8, b, &mut len, 0)),
        ),
        (
            "C_MessageDecryptFinal",
            ck3!(C_MessageDecryptFinal(session)),
        ),
        (
            "C_MessageSignInit",
            ck3!(C_MessageSignInit(session, m.ptr(), key)),
        ),
        (
            "C_SignMessage",
            ck3!(C_SignMessage(session, p, 0, b, 8, b, &mut len)),
        ),
        (
            "C_SignMessageBegin",
            ck3!(C_SignMessageBegin(session, p, 0)),
        ),
        (
            "C_SignMessageNext",
            ck3!(C_SignMessageNext(session, p, 0, b, 8, b, &mut len)),
        ),
        ("C_MessageSignFinal", ck3!(C_MessageSignFinal(session))),
        (
            "C_MessageVerifyInit",
            ck3!(C_MessageVerifyInit(session, m.ptr(), key)),
        ),
        (
            "C_VerifyMessage",
            ck3!(C_VerifyMessage(session, p, 0, b, 8, b, 64)),
        ),
        (
            "C_VerifyMessageBegin",
            ck3!(C_VerifyMessageBegin(session, p, 0)),
        ),
        (
            "C_VerifyMessageNext",
            ck3!(C_VerifyMessageNext(session, p, 0, b, 8, b, 64)),
        ),
        ("C_MessageVerifyFinal", ck3!(C_MessageVerifyFinal(session))),
    ];
    let wrong: Vec<String> = rows
        .iter()
        .filter(|(_, rv)| *rv != no)
        .map(|(name, rv)| format!("{name}: {rv:#x}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}
