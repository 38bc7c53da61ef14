//! What the module answers to calls a C application gets wrong, as tables
//! of (call, expected CK_RV) (PKCS#11 2.40 §5.1 "Function return values",
//! and the return values listed under each function).

#[macro_use]
mod common;

use common::*;
use cryptoki_sys::*;
use p11card_cardsim::Slot;
use std::ffi::c_void;
use std::ptr;

const NULL: *mut c_void = ptr::null_mut();

/// Runs a table: every row's call must give its expected code. All rows are
/// tried before the test fails, so one run lists every deviation.
fn check_table(table: Vec<(&str, CK_RV, CK_RV)>) {
    let wrong: Vec<String> = table
        .into_iter()
        .filter(|(_, actual, expected)| actual != expected)
        .map(|(call, actual, expected)| format!("{call}: expected {expected:#x}, got {actual:#x}"))
        .collect();
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

// ----- before C_Initialize ----------------------------------------------------

/// §5.1: "CKR_CRYPTOKI_NOT_INITIALIZED … any function other than
/// C_Initialize and C_GetFunctionList" (and, in 3.0, C_GetInterfaceList
/// and C_GetInterface) before C_Initialize.
#[test]
fn every_function_before_c_initialize_is_cryptoki_not_initialized() {
    let _module = Uninitialized::new();
    let l = f3();
    let n = CKR_CRYPTOKI_NOT_INITIALIZED;
    let (s, o): (CK_SESSION_HANDLE, CK_OBJECT_HANDLE) = (1, 1);
    let (b, u, m, a) = (
        ptr::null_mut::<u8>(),
        ptr::null_mut::<CK_ULONG>(),
        ptr::null_mut::<CK_MECHANISM>(),
        ptr::null_mut::<CK_ATTRIBUTE>(),
    );
    let h = ptr::null_mut::<CK_OBJECT_HANDLE>();
    let table = unsafe {
        vec![
            ("C_Finalize", (l.C_Finalize.unwrap())(NULL), n),
            ("C_GetInfo", (l.C_GetInfo.unwrap())(ptr::null_mut()), n),
            (
                "C_GetSlotList",
                (l.C_GetSlotList.unwrap())(CK_TRUE, ptr::null_mut(), u),
                n,
            ),
            (
                "C_GetSlotInfo",
                (l.C_GetSlotInfo.unwrap())(0, ptr::null_mut()),
                n,
            ),
            (
                "C_GetTokenInfo",
                (l.C_GetTokenInfo.unwrap())(0, ptr::null_mut()),
                n,
            ),
            (
                "C_GetMechanismList",
                (l.C_GetMechanismList.unwrap())(0, ptr::null_mut(), u),
                n,
            ),
            (
                "C_GetMechanismInfo",
                (l.C_GetMechanismInfo.unwrap())(0, CKM_RSA_PKCS, ptr::null_mut()),
                n,
            ),
            ("C_InitToken", (l.C_InitToken.unwrap())(0, b, 0, b), n),
            ("C_InitPIN", (l.C_InitPIN.unwrap())(s, b, 0), n),
            ("C_SetPIN", (l.C_SetPIN.unwrap())(s, b, 0, b, 0), n),
            (
                "C_OpenSession",
                (l.C_OpenSession.unwrap())(0, CKF_SERIAL_SESSION, NULL, None, ptr::null_mut()),
                n,
            ),
            ("C_CloseSession", (l.C_CloseSession.unwrap())(s), n),
            ("C_CloseAllSessions", (l.C_CloseAllSessions.unwrap())(0), n),
            (
                "C_GetSessionInfo",
                (l.C_GetSessionInfo.unwrap())(s, ptr::null_mut()),
                n,
            ),
            (
                "C_GetOperationState",
                (l.C_GetOperationState.unwrap())(s, b, u),
                n,
            ),
            (
                "C_SetOperationState",
                (l.C_SetOperationState.unwrap())(s, b, 0, 0, 0),
                n,
            ),
            ("C_Login", (l.C_Login.unwrap())(s, CKU_USER, b, 0), n),
            ("C_Logout", (l.C_Logout.unwrap())(s), n),
            ("C_CreateObject", (l.C_CreateObject.unwrap())(s, a, 0, h), n),
            ("C_CopyObject", (l.C_CopyObject.unwrap())(s, o, a, 0, h), n),
            ("C_DestroyObject", (l.C_DestroyObject.unwrap())(s, o), n),
            ("C_GetObjectSize", (l.C_GetObjectSize.unwrap())(s, o, u), n),
            (
                "C_GetAttributeValue",
                (l.C_GetAttributeValue.unwrap())(s, o, a, 0),
                n,
            ),
            (
                "C_SetAttributeValue",
                (l.C_SetAttributeValue.unwrap())(s, o, a, 0),
                n,
            ),
            (
                "C_FindObjectsInit",
                (l.C_FindObjectsInit.unwrap())(s, a, 0),
                n,
            ),
            ("C_FindObjects", (l.C_FindObjects.unwrap())(s, h, 0, u), n),
            ("C_FindObjectsFinal", (l.C_FindObjectsFinal.unwrap())(s), n),
            ("C_EncryptInit", (l.C_EncryptInit.unwrap())(s, m, o), n),
            ("C_Encrypt", (l.C_Encrypt.unwrap())(s, b, 0, b, u), n),
            (
                "C_EncryptUpdate",
                (l.C_EncryptUpdate.unwrap())(s, b, 0, b, u),
                n,
            ),
            ("C_EncryptFinal", (l.C_EncryptFinal.unwrap())(s, b, u), n),
            ("C_DecryptInit", (l.C_DecryptInit.unwrap())(s, m, o), n),
            ("C_Decrypt", (l.C_Decrypt.unwrap())(s, b, 0, b, u), n),
            (
                "C_DecryptUpdate",
                (l.C_DecryptUpdate.unwrap())(s, b, 0, b, u),
                n,
            ),
            ("C_DecryptFinal", (l.C_DecryptFinal.unwrap())(s, b, u), n),
            ("C_DigestInit", (l.C_DigestInit.unwrap())(s, m), n),
            ("C_Digest", (l.C_Digest.unwrap())(s, b, 0, b, u), n),
            ("C_DigestUpdate", (l.C_DigestUpdate.unwrap())(s, b, 0), n),
            ("C_DigestKey", (l.C_DigestKey.unwrap())(s, o), n),
            ("C_DigestFinal", (l.C_DigestFinal.unwrap())(s, b, u), n),
            ("C_SignInit", (l.C_SignInit.unwrap())(s, m, o), n),
            ("C_Sign", (l.C_Sign.unwrap())(s, b, 0, b, u), n),
            ("C_SignUpdate", (l.C_SignUpdate.unwrap())(s, b, 0), n),
            ("C_SignFinal", (l.C_SignFinal.unwrap())(s, b, u), n),
            (
                "C_SignRecoverInit",
                (l.C_SignRecoverInit.unwrap())(s, m, o),
                n,
            ),
            (
                "C_SignRecover",
                (l.C_SignRecover.unwrap())(s, b, 0, b, u),
                n,
            ),
            ("C_VerifyInit", (l.C_VerifyInit.unwrap())(s, m, o), n),
            ("C_Verify", (l.C_Verify.unwrap())(s, b, 0, b, 0), n),
            ("C_VerifyUpdate", (l.C_VerifyUpdate.unwrap())(s, b, 0), n),
            ("C_VerifyFinal", (l.C_VerifyFinal.unwrap())(s, b, 0), n),
            (
                "C_VerifyRecoverInit",
                (l.C_VerifyRecoverInit.unwrap())(s, m, o),
                n,
            ),
            (
                "C_VerifyRecover",
                (l.C_VerifyRecover.unwrap())(s, b, 0, b, u),
                n,
            ),
            (
                "C_DigestEncryptUpdate",
                (l.C_DigestEncryptUpdate.unwrap())(s, b, 0, b, u),
                n,
            ),
            (
                "C_DecryptDigestUpdate",
                (l.C_DecryptDigestUpdate.unwrap())(s, b, 0, b, u),
                n,
            ),
            (
                "C_SignEncryptUpdate",
                (l.C_SignEncryptUpdate.unwrap())(s, b, 0, b, u),
                n,
            ),
            (
                "C_DecryptVerifyUpdate",
                (l.C_DecryptVerifyUpdate.unwrap())(s, b, 0, b, u),
                n,
            ),
            (
                "C_GenerateKey",
                (l.C_GenerateKey.unwrap())(s, m, a, 0, h),
                n,
            ),
            (
                "C_GenerateKeyPair",
                (l.C_GenerateKeyPair.unwrap())(s, m, a, 0, a, 0, h, h),
                n,
            ),
            ("C_WrapKey", (l.C_WrapKey.unwrap())(s, m, o, o, b, u), n),
            (
                "C_UnwrapKey",
                (l.C_UnwrapKey.unwrap())(s, m, o, b, 0, a, 0, h),
                n,
            ),
            ("C_DeriveKey", (l.C_DeriveKey.unwrap())(s, m, o, a, 0, h), n),
            ("C_SeedRandom", (l.C_SeedRandom.unwrap())(s, b, 0), n),
            (
                "C_GenerateRandom",
                (l.C_GenerateRandom.unwrap())(s, b, 0),
                n,
            ),
            (
                "C_GetFunctionStatus",
                (l.C_GetFunctionStatus.unwrap())(s),
                n,
            ),
            ("C_CancelFunction", (l.C_CancelFunction.unwrap())(s), n),
            (
                "C_WaitForSlotEvent",
                (l.C_WaitForSlotEvent.unwrap())(CKF_DONT_BLOCK, ptr::null_mut(), NULL),
                n,
            ),
            (
                "C_LoginUser",
                (l.C_LoginUser.unwrap())(s, CKU_USER, b, 0, b, 0),
                n,
            ),
            (
                "C_SessionCancel",
                (l.C_SessionCancel.unwrap())(s, CKF_SIGN),
                n,
            ),
            (
                "C_MessageEncryptInit",
                (l.C_MessageEncryptInit.unwrap())(s, m, o),
                n,
            ),
            (
                "C_EncryptMessage",
                (l.C_EncryptMessage.unwrap())(s, NULL, 0, b, 0, b, 0, b, u),
                n,
            ),
            (
                "C_EncryptMessageBegin",
                (l.C_EncryptMessageBegin.unwrap())(s, NULL, 0, b, 0),
                n,
            ),
            (
                "C_EncryptMessageNext",
                (l.C_EncryptMessageNext.unwrap())(s, NULL, 0, b, 0, b, u, 0),
                n,
            ),
            (
                "C_MessageEncryptFinal",
                (l.C_MessageEncryptFinal.unwrap())(s),
                n,
            ),
            (
                "C_MessageDecryptInit",
                (l.C_MessageDecryptInit.unwrap())(s, m, o),
                n,
            ),
            (
                "C_DecryptMessage",
                (l.C_DecryptMessage.unwrap())(s, NULL, 0, b, 0, b, 0, b, u),
                n,
            ),
            (
                "C_DecryptMessageBegin",
                (l.C_DecryptMessageBegin.unwrap())(s, NULL, 0, b, 0),
                n,
            ),
            (
                "C_DecryptMessageNext",
                (l.C_DecryptMessageNext.unwrap())(s, NULL, 0, b, 0, b, u, 0),
                n,
            ),
            (
                "C_MessageDecryptFinal",
                (l.C_MessageDecryptFinal.unwrap())(s),
                n,
            ),
            (
                "C_MessageSignInit",
                (l.C_MessageSignInit.unwrap())(s, m, o),
                n,
            ),
            (
                "C_SignMessage",
                (l.C_SignMessage.unwrap())(s, NULL, 0, b, 0, b, u),
                n,
            ),
            (
                "C_SignMessageBegin",
                (l.C_SignMessageBegin.unwrap())(s, NULL, 0),
                n,
            ),
            (
                "C_SignMessageNext",
                (l.C_SignMessageNext.unwrap())(s, NULL, 0, b, 0, b, u),
                n,
            ),
            ("C_MessageSignFinal", (l.C_MessageSignFinal.unwrap())(s), n),
            (
                "C_MessageVerifyInit",
                (l.C_MessageVerifyInit.unwrap())(s, m, o),
                n,
            ),
            (
                "C_VerifyMessage",
                (l.C_VerifyMessage.unwrap())(s, NULL, 0, b, 0, b, 0),
                n,
            ),
            (
                "C_VerifyMessageBegin",
                (l.C_VerifyMessageBegin.unwrap())(s, NULL, 0),
                n,
            ),
            (
                "C_VerifyMessageNext",
                (l.C_VerifyMessageNext.unwrap())(s, NULL, 0, b, 0, b, 0),
                n,
            ),
            (
                "C_MessageVerifyFinal",
                (l.C_MessageVerifyFinal.unwrap())(s),
                n,
            ),
        ]
    };
    // Every entry of the 3.0 list except the four that work uninitialised.
    assert_eq!(table.len(), 92 - 4);
    check_table(table);
}

#[test]
fn function_lists_and_interfaces_are_handed_out_before_c_initialize() {
    let _module = Uninitialized::new();
    let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
    assert_eq!(
        unsafe { p11card_pkcs11::C_GetFunctionList(&mut list) },
        CKR_OK
    );
    assert!(!list.is_null());
    let mut count: CK_ULONG = 0;
    assert_eq!(
        unsafe { p11card_pkcs11::C_GetInterfaceList(ptr::null_mut(), &mut count) },
        CKR_OK
    );
    assert_eq!(count, 2);
    let mut interface: *mut CK_INTERFACE = ptr::null_mut();
    assert_eq!(
        unsafe {
            p11card_pkcs11::C_GetInterface(ptr::null_mut(), ptr::null_mut(), &mut interface, 0)
        },
        CKR_OK
    );
    assert!(!interface.is_null());
}

#[test]
fn c_initialize_twice_is_cryptoki_already_initialized() {
    let _module = Uninitialized::new();
    assert_eq!(ck!(C_Initialize(NULL)), CKR_OK);
    assert_eq!(ck!(C_Initialize(NULL)), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_eq!(ck!(C_Finalize(NULL)), CKR_OK);
    assert_eq!(ck!(C_Finalize(NULL)), CKR_CRYPTOKI_NOT_INITIALIZED);
    // And again after C_Finalize.
    assert_eq!(ck!(C_Initialize(NULL)), CKR_OK);
}

unsafe extern "C" fn create_mutex(mutex: *mut *mut c_void) -> CK_RV {
    unsafe { *mutex = ptr::dangling_mut::<c_void>() };
    CKR_OK
}

unsafe extern "C" fn mutex_op(_mutex: *mut c_void) -> CK_RV {
    CKR_OK
}

fn init_args(callbacks: [bool; 4], flags: CK_FLAGS, reserved: bool) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: callbacks[0].then_some(create_mutex as _),
        DestroyMutex: callbacks[1].then_some(mutex_op as _),
        LockMutex: callbacks[2].then_some(mutex_op as _),
        UnlockMutex: callbacks[3].then_some(mutex_op as _),
        flags,
        pReserved: if reserved {
            ptr::dangling_mut::<c_void>()
        } else {
            NULL
        },
    }
}

/// §5.4 C_Initialize: the four mutex callbacks are all supplied or all
/// NULL (else CKR_ARGUMENTS_BAD), and pReserved must be NULL.
#[test]
fn c_initialize_checks_its_arguments() {
    let _module = Uninitialized::new();
    let rows: [(&str, CK_C_INITIALIZE_ARGS, CK_RV); 6] = [
        (
            "no callbacks, no flags",
            init_args([false; 4], 0, false),
            CKR_OK,
        ),
        (
            "no callbacks, OS locking",
            init_args([false; 4], CKF_OS_LOCKING_OK, false),
            CKR_OK,
        ),
        (
            "all callbacks, OS locking",
            init_args([true; 4], CKF_OS_LOCKING_OK, false),
            CKR_OK,
        ),
        (
            "create and destroy only",
            init_args([true, true, false, false], CKF_OS_LOCKING_OK, false),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "lock only",
            init_args([false, false, true, false], 0, false),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "pReserved set",
            init_args([false; 4], CKF_OS_LOCKING_OK, true),
            CKR_ARGUMENTS_BAD,
        ),
    ];
    let mut table = Vec::new();
    for (name, mut args, expected) in rows {
        let rv = ck!(C_Initialize(
            &mut args as *mut CK_C_INITIALIZE_ARGS as *mut c_void
        ));
        if rv == CKR_OK {
            assert_eq!(ck!(C_Finalize(NULL)), CKR_OK);
        }
        table.push((name, rv, expected));
    }
    check_table(table);
}

#[test]
fn c_finalize_with_a_reserved_pointer_is_arguments_bad() {
    let (_harness, _card) = Harness::new();
    assert_eq!(
        ck!(C_Finalize(ptr::dangling_mut::<c_void>())),
        CKR_ARGUMENTS_BAD
    );
}

// ----- after C_Initialize ---------------------------------------------------------

/// A logged-in session and the 9E private key.
fn session_with_key(harness: &Harness) -> (CK_SESSION_HANDLE, CK_OBJECT_HANDLE) {
    let session = harness.user_session();
    (session, private_key(session, Slot::CardAuthentication))
}

#[test]
fn null_output_pointers_are_arguments_bad() {
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    let (session, key) = session_with_key(&harness);
    let mut mech = Mech::new(CKM_ECDSA);
    let data = [0x11u8; 32];
    let mut table = vec![
        (
            "C_GetInfo(NULL)",
            ck!(C_GetInfo(ptr::null_mut())),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "C_GetSlotList(NULL count)",
            ck!(C_GetSlotList(CK_FALSE, ptr::null_mut(), ptr::null_mut())),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "C_GetSlotInfo(NULL)",
            ck!(C_GetSlotInfo(slot, ptr::null_mut())),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "C_GetTokenInfo(NULL)",
            ck!(C_GetTokenInfo(slot, ptr::null_mut())),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "C_GetMechanismList(NULL count)",
            ck!(C_GetMechanismList(slot, ptr::null_mut(), ptr::null_mut())),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "C_GetMechanismInfo(NULL)",
            ck!(C_GetMechanismInfo(slot, CKM_ECDSA, ptr::null_mut())),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "C_OpenSession(NULL handle)",
            ck!(C_OpenSession(
                slot,
                CKF_SERIAL_SESSION,
                NULL,
                None,
                ptr::null_mut()
            )),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "C_GetSessionInfo(NULL)",
            ck!(C_GetSessionInfo(session, ptr::null_mut())),
            CKR_ARGUMENTS_BAD,
        ),
        (
            "C_SignInit(NULL mechanism)",
            ck!(C_SignInit(session, ptr::null_mut(), key)),
            CKR_ARGUMENTS_BAD,
        ),
    ];
    assert_eq!(ck!(C_FindObjectsInit(session, ptr::null_mut(), 0)), CKR_OK);
    let mut handles = [0 as CK_OBJECT_HANDLE; 4];
    table.push((
        "C_FindObjects(NULL count)",
        ck!(C_FindObjects(
            session,
            handles.as_mut_ptr(),
            4,
            ptr::null_mut()
        )),
        CKR_ARGUMENTS_BAD,
    ));
    assert_eq!(ck!(C_FindObjectsFinal(session)), CKR_OK);
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    let mut signature = [0u8; 64];
    table.push((
        "C_Sign(NULL pulSignatureLen)",
        ck!(C_Sign(
            session,
            data.as_ptr() as *mut u8,
            32,
            signature.as_mut_ptr(),
            ptr::null_mut()
        )),
        CKR_ARGUMENTS_BAD,
    ));
    check_table(table);
}

/// §5.1: a NULL pointer where data of a non-zero length was promised.
#[test]
fn null_data_with_a_non_zero_length_is_arguments_bad() {
    let (harness, _card) = Harness::new();
    let (session, key) = session_with_key(&harness);
    let public = public_key(session, Slot::CardAuthentication);
    let b = ptr::null_mut::<u8>();
    let mut out = [0u8; 128];
    let mut len: CK_ULONG = 128;
    let mut table = Vec::new();
    let init_sign = || {
        assert_eq!(
            ck!(C_SignInit(session, Mech::new(CKM_ECDSA_SHA256).ptr(), key)),
            CKR_OK
        )
    };
    init_sign();
    table.push((
        "C_Sign(NULL, 32)",
        ck!(C_Sign(session, b, 32, out.as_mut_ptr(), &mut len)),
        CKR_ARGUMENTS_BAD,
    ));
    assert_eq!(ck3!(C_SessionCancel(session, CKF_SIGN)), CKR_OK);
    init_sign();
    table.push((
        "C_SignUpdate(NULL, 32)",
        ck!(C_SignUpdate(session, b, 32)),
        CKR_ARGUMENTS_BAD,
    ));
    assert_eq!(ck3!(C_SessionCancel(session, CKF_SIGN)), CKR_OK);
    assert_eq!(
        ck!(C_VerifyInit(
            session,
            Mech::new(CKM_ECDSA_SHA256).ptr(),
            public
        )),
        CKR_OK
    );
    table.push((
        "C_Verify(NULL data, 32)",
        ck!(C_Verify(session, b, 32, out.as_mut_ptr(), 64)),
        CKR_ARGUMENTS_BAD,
    ));
    assert_eq!(
        ck!(C_DigestInit(session, Mech::new(CKM_SHA256).ptr())),
        CKR_OK
    );
    table.push((
        "C_Digest(NULL, 32)",
        ck!(C_Digest(session, b, 32, out.as_mut_ptr(), &mut len)),
        CKR_ARGUMENTS_BAD,
    ));
    table.push((
        "C_Login(NULL PIN, 6)",
        ck!(C_Login(session, CKU_CONTEXT_SPECIFIC, b, 6)),
        CKR_ARGUMENTS_BAD,
    ));
    table.push((
        "C_FindObjectsInit(NULL template, 1)",
        ck!(C_FindObjectsInit(session, ptr::null_mut(), 1)),
        CKR_ARGUMENTS_BAD,
    ));
    table.push((
        "C_GenerateRandom(NULL, 16)",
        ck!(C_GenerateRandom(session, b, 16)),
        CKR_ARGUMENTS_BAD,
    ));
    check_table(table);
}

#[test]
fn invalid_slot_is_slot_id_invalid() {
    let (_harness, _card) = Harness::new();
    let bad: CK_SLOT_ID = 4242;
    let mut slot_info = unsafe { std::mem::zeroed::<CK_SLOT_INFO>() };
    let mut token_info = unsafe { std::mem::zeroed::<CK_TOKEN_INFO>() };
    let mut mech_info = unsafe { std::mem::zeroed::<CK_MECHANISM_INFO>() };
    let mut count: CK_ULONG = 0;
    let mut session = 0;
    check_table(vec![
        (
            "C_GetSlotInfo",
            ck!(C_GetSlotInfo(bad, &mut slot_info)),
            CKR_SLOT_ID_INVALID,
        ),
        (
            "C_GetTokenInfo",
            ck!(C_GetTokenInfo(bad, &mut token_info)),
            CKR_SLOT_ID_INVALID,
        ),
        (
            "C_GetMechanismList",
            ck!(C_GetMechanismList(bad, ptr::null_mut(), &mut count)),
            CKR_SLOT_ID_INVALID,
        ),
        (
            "C_GetMechanismInfo",
            ck!(C_GetMechanismInfo(bad, CKM_ECDSA, &mut mech_info)),
            CKR_SLOT_ID_INVALID,
        ),
        (
            "C_OpenSession",
            ck!(C_OpenSession(
                bad,
                CKF_SERIAL_SESSION,
                NULL,
                None,
                &mut session
            )),
            CKR_SLOT_ID_INVALID,
        ),
        (
            "C_CloseAllSessions",
            ck!(C_CloseAllSessions(bad)),
            CKR_SLOT_ID_INVALID,
        ),
    ]);
}

#[test]
fn invalid_session_is_session_handle_invalid() {
    let (harness, _card) = Harness::new();
    // A session that never existed, and one that was closed.
    let closed = harness.session();
    assert_eq!(ck!(C_CloseSession(closed)), CKR_OK);
    for bad in [0xBAD0 as CK_SESSION_HANDLE, closed] {
        let b = ptr::null_mut::<u8>();
        let mut out = [0u8; 64];
        let mut len: CK_ULONG = 64;
        let mut info = unsafe { std::mem::zeroed::<CK_SESSION_INFO>() };
        let mut handle: CK_OBJECT_HANDLE = 0;
        let mut attr = CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        };
        let mut mech = Mech::new(CKM_ECDSA);
        let mut sha = Mech::new(CKM_SHA256);
        let pin = PIN.as_ptr() as *mut u8;
        let i = CKR_SESSION_HANDLE_INVALID;
        check_table(vec![
            ("C_CloseSession", ck!(C_CloseSession(bad)), i),
            ("C_GetSessionInfo", ck!(C_GetSessionInfo(bad, &mut info)), i),
            ("C_Login", ck!(C_Login(bad, CKU_USER, pin, 6)), i),
            ("C_Logout", ck!(C_Logout(bad)), i),
            (
                "C_FindObjectsInit",
                ck!(C_FindObjectsInit(bad, ptr::null_mut(), 0)),
                i,
            ),
            (
                "C_FindObjects",
                ck!(C_FindObjects(bad, &mut handle, 1, &mut len)),
                i,
            ),
            ("C_FindObjectsFinal", ck!(C_FindObjectsFinal(bad)), i),
            (
                "C_GetAttributeValue",
                ck!(C_GetAttributeValue(bad, 1, &mut attr, 1)),
                i,
            ),
            ("C_GetObjectSize", ck!(C_GetObjectSize(bad, 1, &mut len)), i),
            ("C_SignInit", ck!(C_SignInit(bad, mech.ptr(), 1)), i),
            (
                "C_Sign",
                ck!(C_Sign(
                    bad,
                    out.as_mut_ptr(),
                    32,
                    out.as_mut_ptr(),
                    &mut len
                )),
                i,
            ),
            (
                "C_SignUpdate",
                ck!(C_SignUpdate(bad, out.as_mut_ptr(), 32)),
                i,
            ),
            (
                "C_SignFinal",
                ck!(C_SignFinal(bad, out.as_mut_ptr(), &mut len)),
                i,
            ),
            ("C_VerifyInit", ck!(C_VerifyInit(bad, mech.ptr(), 1)), i),
            (
                "C_Verify",
                ck!(C_Verify(bad, out.as_mut_ptr(), 32, out.as_mut_ptr(), 64)),
                i,
            ),
            ("C_DecryptInit", ck!(C_DecryptInit(bad, mech.ptr(), 1)), i),
            (
                "C_Decrypt",
                ck!(C_Decrypt(
                    bad,
                    out.as_mut_ptr(),
                    64,
                    out.as_mut_ptr(),
                    &mut len
                )),
                i,
            ),
            ("C_EncryptInit", ck!(C_EncryptInit(bad, mech.ptr(), 1)), i),
            ("C_DigestInit", ck!(C_DigestInit(bad, sha.ptr())), i),
            (
                "C_Digest",
                ck!(C_Digest(bad, b, 0, out.as_mut_ptr(), &mut len)),
                i,
            ),
            (
                "C_GenerateRandom",
                ck!(C_GenerateRandom(bad, out.as_mut_ptr(), 16)),
                i,
            ),
            (
                "C_SeedRandom",
                ck!(C_SeedRandom(bad, out.as_mut_ptr(), 16)),
                i,
            ),
            ("C_SessionCancel", ck3!(C_SessionCancel(bad, CKF_SIGN)), i),
        ]);
    }
}

#[test]
fn session_without_the_serial_flag_is_session_parallel_not_supported() {
    let (harness, _card) = Harness::new();
    let mut session = 0;
    // §5.6 C_OpenSession: "For legacy reasons, the CKF_SERIAL_SESSION bit
    // MUST always be set".
    assert_eq!(
        ck!(C_OpenSession(harness.slot(), 0, NULL, None, &mut session)),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
    assert_eq!(
        ck!(C_OpenSession(
            harness.slot(),
            CKF_RW_SESSION,
            NULL,
            None,
            &mut session
        )),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
}

#[test]
fn invalid_key_handle_is_key_handle_invalid() {
    let (harness, _card) = Harness::new();
    let session = harness.user_session();
    let bad: CK_OBJECT_HANDLE = 0xBAD_BAD;
    let mut ecdsa = Mech::new(CKM_ECDSA);
    let mut rsa = Mech::new(CKM_RSA_PKCS);
    let k = CKR_KEY_HANDLE_INVALID;
    check_table(vec![
        ("C_SignInit", ck!(C_SignInit(session, ecdsa.ptr(), bad)), k),
        (
            "C_VerifyInit",
            ck!(C_VerifyInit(session, ecdsa.ptr(), bad)),
            k,
        ),
        (
            "C_DecryptInit",
            ck!(C_DecryptInit(session, rsa.ptr(), bad)),
            k,
        ),
        (
            "C_EncryptInit",
            ck!(C_EncryptInit(session, rsa.ptr(), bad)),
            k,
        ),
        (
            "C_SignInit(CK_INVALID_HANDLE)",
            ck!(C_SignInit(session, ecdsa.ptr(), CK_INVALID_HANDLE)),
            k,
        ),
    ]);
}

#[test]
fn operations_out_of_order() {
    let (harness, _card) = Harness::new();
    let (session, key) = session_with_key(&harness);
    let public = public_key(session, Slot::CardAuthentication);
    let mut mech = Mech::new(CKM_ECDSA_SHA256);
    let mut sha = Mech::new(CKM_SHA256);
    let mut out = [0u8; 128];
    let mut len: CK_ULONG = 128;
    let mut handle: CK_OBJECT_HANDLE = 0;
    let data = out.as_mut_ptr();
    let not_init = CKR_OPERATION_NOT_INITIALIZED;
    let mut table = vec![
        (
            "C_Sign without C_SignInit",
            ck!(C_Sign(session, data, 8, data, &mut len)),
            not_init,
        ),
        (
            "C_SignUpdate without C_SignInit",
            ck!(C_SignUpdate(session, data, 8)),
            not_init,
        ),
        (
            "C_SignFinal without C_SignInit",
            ck!(C_SignFinal(session, data, &mut len)),
            not_init,
        ),
        (
            "C_Verify without C_VerifyInit",
            ck!(C_Verify(session, data, 8, data, 64)),
            not_init,
        ),
        (
            "C_Decrypt without C_DecryptInit",
            ck!(C_Decrypt(session, data, 8, data, &mut len)),
            not_init,
        ),
        (
            "C_Encrypt without C_EncryptInit",
            ck!(C_Encrypt(session, data, 8, data, &mut len)),
            not_init,
        ),
        (
            "C_Digest without C_DigestInit",
            ck!(C_Digest(session, data, 8, data, &mut len)),
            not_init,
        ),
        (
            "C_FindObjects without C_FindObjectsInit",
            ck!(C_FindObjects(session, &mut handle, 1, &mut len)),
            not_init,
        ),
        (
            "C_FindObjectsFinal without C_FindObjectsInit",
            ck!(C_FindObjectsFinal(session)),
            not_init,
        ),
    ];
    assert_eq!(ck!(C_SignInit(session, mech.ptr(), key)), CKR_OK);
    table.push((
        "C_SignInit twice",
        ck!(C_SignInit(session, mech.ptr(), key)),
        CKR_OPERATION_ACTIVE,
    ));
    assert_eq!(ck!(C_VerifyInit(session, mech.ptr(), public)), CKR_OK);
    table.push((
        "C_VerifyInit twice",
        ck!(C_VerifyInit(session, mech.ptr(), public)),
        CKR_OPERATION_ACTIVE,
    ));
    assert_eq!(ck!(C_DigestInit(session, sha.ptr())), CKR_OK);
    table.push((
        "C_DigestInit twice",
        ck!(C_DigestInit(session, sha.ptr())),
        CKR_OPERATION_ACTIVE,
    ));
    assert_eq!(ck!(C_FindObjectsInit(session, ptr::null_mut(), 0)), CKR_OK);
    table.push((
        "C_FindObjectsInit twice",
        ck!(C_FindObjectsInit(session, ptr::null_mut(), 0)),
        CKR_OPERATION_ACTIVE,
    ));
    check_table(table);
}

#[test]
fn login_with_an_unknown_user_type_is_user_type_invalid() {
    let (harness, card) = Harness::new();
    let session = harness.session();
    assert_eq!(login(session, 7, PIN), CKR_USER_TYPE_INVALID);
    assert_eq!(pin_tries_left(&card), 3);
}

/// §5.1: functions a library does not offer answer
/// CKR_FUNCTION_NOT_SUPPORTED; those it offers as far as the card allows
/// answer the code of the first check that fails (issue 12; here in a
/// read-only session, with templates that ask for no token object).
#[test]
fn functions_a_read_only_card_token_does_not_offer_answer_the_spec_code() {
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    let session = harness.user_session();
    let key = private_key(session, Slot::Authentication);
    let b = ptr::null_mut::<u8>();
    let a = ptr::null_mut::<CK_ATTRIBUTE>();
    let mut label = [b' '; 32];
    let mut new_object: CK_OBJECT_HANDLE = 0;
    let mut public: CK_OBJECT_HANDLE = 0;
    let mut rsa_gen = Mech::new(CKM_RSA_PKCS_KEY_PAIR_GEN);
    let mut aes_gen = Mech::new(CKM_AES_KEY_GEN);
    let mut rsa = Mech::new(CKM_RSA_PKCS);
    let mut state = [0u8; 64];
    let mut len: CK_ULONG = 64;
    let pin = PIN.as_ptr() as *mut u8;
    let no = CKR_FUNCTION_NOT_SUPPORTED;
    check_table(vec![
        (
            "C_InitToken",
            ck!(C_InitToken(slot, pin, 6, label.as_mut_ptr())),
            no,
        ),
        (
            "C_CreateObject",
            ck!(C_CreateObject(session, a, 0, &mut new_object)),
            no,
        ),
        (
            "C_CopyObject",
            ck!(C_CopyObject(session, key, a, 0, &mut new_object)),
            CKR_SESSION_READ_ONLY,
        ),
        // Token objects are not destroyable (CKA_DESTROYABLE false);
        // only session objects (derived keys) are.
        (
            "C_DestroyObject",
            ck!(C_DestroyObject(session, key)),
            CKR_ACTION_PROHIBITED,
        ),
        (
            "C_SetAttributeValue",
            ck!(C_SetAttributeValue(session, key, a, 0)),
            CKR_SESSION_READ_ONLY,
        ),
        (
            "C_GenerateKey",
            ck!(C_GenerateKey(session, aes_gen.ptr(), a, 0, &mut new_object)),
            CKR_MECHANISM_INVALID,
        ),
        (
            "C_GenerateKeyPair",
            ck!(C_GenerateKeyPair(
                session,
                rsa_gen.ptr(),
                a,
                0,
                a,
                0,
                &mut public,
                &mut new_object
            )),
            CKR_MECHANISM_INVALID,
        ),
        (
            "C_WrapKey",
            ck!(C_WrapKey(session, rsa.ptr(), key, key, b, &mut len)),
            CKR_MECHANISM_INVALID,
        ),
        (
            "C_UnwrapKey",
            ck!(C_UnwrapKey(
                session,
                rsa.ptr(),
                key,
                state.as_mut_ptr(),
                16,
                a,
                0,
                &mut new_object
            )),
            CKR_MECHANISM_INVALID,
        ),
        // C_DeriveKey exists for CKM_ECDH1_DERIVE; RSA-PKCS derives nothing.
        (
            "C_DeriveKey",
            ck!(C_DeriveKey(session, rsa.ptr(), key, a, 0, &mut new_object)),
            CKR_MECHANISM_INVALID,
        ),
        (
            "C_GetOperationState",
            ck!(C_GetOperationState(session, state.as_mut_ptr(), &mut len)),
            no,
        ),
        (
            "C_SignRecoverInit",
            ck!(C_SignRecoverInit(session, rsa.ptr(), key)),
            CKR_MECHANISM_INVALID,
        ),
        (
            "C_VerifyRecoverInit",
            ck!(C_VerifyRecoverInit(session, rsa.ptr(), key)),
            CKR_MECHANISM_INVALID,
        ),
        (
            "C_DigestKey",
            ck!(C_DigestKey(session, key)),
            CKR_OPERATION_NOT_INITIALIZED,
        ),
    ]);
}

#[test]
fn generate_random_fills_the_buffer() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let mut first = [0u8; 64];
    let mut second = [0u8; 64];
    assert_eq!(
        ck!(C_GenerateRandom(session, first.as_mut_ptr(), 64)),
        CKR_OK
    );
    assert_eq!(
        ck!(C_GenerateRandom(session, second.as_mut_ptr(), 64)),
        CKR_OK
    );
    assert_ne!(first, [0u8; 64]);
    assert_ne!(first, second);
    assert_eq!(ck!(C_GenerateRandom(session, ptr::null_mut(), 0)), CKR_OK);
}

#[test]
fn seed_random_is_random_seed_not_supported() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let mut seed = [7u8; 16];
    assert_eq!(
        ck!(C_SeedRandom(session, seed.as_mut_ptr(), 16)),
        CKR_RANDOM_SEED_NOT_SUPPORTED
    );
}

#[test]
fn c_finalize_closes_every_session() {
    let (harness, card) = Harness::new();
    let session = harness.user_session();
    let mut info = unsafe { std::mem::zeroed::<CK_SESSION_INFO>() };
    assert_eq!(ck!(C_Finalize(NULL)), CKR_OK);
    assert_eq!(
        ck!(C_GetSessionInfo(session, &mut info)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    // Finalising logs the token out on the card too.
    assert!(!card.with(|c| c.pin_verified()), "{}", card.transcript());
    assert_eq!(ck!(C_Initialize(NULL)), CKR_OK);
    assert_eq!(
        ck!(C_GetSessionInfo(session, &mut info)),
        CKR_SESSION_HANDLE_INVALID
    );
}

// ----- counts and lengths no buffer has (issue 11, finding 8) --------------------

/// A count or length over a terabyte is a caller's mistake: `CKR_ARGUMENTS_BAD`
/// (mechanism parameters: `CKR_MECHANISM_PARAM_INVALID`), never an attempt
/// to allocate that much, which aborts the process (a failed allocation is
/// no panic): this test binary would die with SIGABRT.
#[test]
fn huge_counts_and_lengths_are_errors_not_an_abort() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    let certificate = object(session, CKO_CERTIFICATE, key_id(Slot::Authentication));
    let key = public_key(session, Slot::Authentication);
    let huge_count: CK_ULONG = 1 << 42;
    let huge_len: CK_ULONG = 1 << 45;
    let mut one = CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: ptr::null_mut(),
        ulValueLen: 0,
    };
    let mut value = [0u8; 8];
    let mut long_value = CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: value.as_mut_ptr() as *mut c_void,
        ulValueLen: huge_len,
    };
    let mut random = [0u8; 32];
    let mut label = [0u8; 4];
    let mut oaep = CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        source: CKZ_DATA_SPECIFIED,
        pSourceData: label.as_mut_ptr() as *mut c_void,
        ulSourceDataLen: huge_len,
    };
    let mut mech = CK_MECHANISM {
        mechanism: CKM_RSA_PKCS_OAEP,
        pParameter: &mut oaep as *mut _ as *mut c_void,
        ulParameterLen: std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>() as CK_ULONG,
    };
    let bad = CKR_ARGUMENTS_BAD;
    check_table(vec![
        (
            "C_GetAttributeValue, 2^42 attributes",
            ck!(C_GetAttributeValue(
                session,
                certificate,
                &mut one,
                huge_count
            )),
            bad,
        ),
        (
            "C_GenerateRandom, 2^45 bytes",
            ck!(C_GenerateRandom(session, random.as_mut_ptr(), huge_len)),
            bad,
        ),
        (
            "C_FindObjectsInit, 2^42 attributes",
            ck!(C_FindObjectsInit(session, &mut one, huge_count)),
            bad,
        ),
        (
            "C_FindObjectsInit, a value of 2^45 bytes",
            ck!(C_FindObjectsInit(session, &mut long_value, 1)),
            bad,
        ),
        (
            "C_EncryptInit, an OAEP label of 2^45 bytes",
            ck!(C_EncryptInit(session, &mut mech, key)),
            CKR_MECHANISM_PARAM_INVALID,
        ),
        (
            "C_DigestUpdate, 2^45 bytes",
            {
                let mut digest = mechanism(CKM_SHA256);
                assert_eq!(ck!(C_DigestInit(session, &mut digest)), CKR_OK);
                ck!(C_DigestUpdate(session, random.as_mut_ptr(), huge_len))
            },
            bad,
        ),
    ]);
    // The session is fine afterwards.
    assert!(attribute(session, certificate, CKA_LABEL).is_ok());
}

/// `C_GenerateRandom` writes straight into the caller's buffer, a piece at a
/// time, with no copy as long as the request: a request far longer than
/// the buffer (under the terabyte bound) stops at the first page the
/// process may not write (the kernel refuses `getrandom` into it) with
/// `CKR_FUNCTION_FAILED`, having allocated nothing.
#[test]
fn generate_random_needs_no_buffer_of_its_own() {
    let (harness, _card) = Harness::new();
    let session = harness.session();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    // SAFETY: an anonymous private mapping of two pages (unmapped below).
    let map = unsafe {
        libc::mmap(
            ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    // SAFETY: the second page of the mapping, made inaccessible.
    let guard = unsafe { (map as *mut u8).add(page) };
    assert_eq!(
        // SAFETY: `guard` is a page of the mapping.
        unsafe { libc::mprotect(guard as *mut c_void, page, libc::PROT_NONE) },
        0
    );
    let rv = ck!(C_GenerateRandom(session, map as *mut u8, 1 << 39));
    // SAFETY: the first page is readable.
    let filled = unsafe { std::slice::from_raw_parts(map as *const u8, page) }
        .iter()
        .any(|&b| b != 0);
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(map, 2 * page) };
    assert_eq!(rv, CKR_FUNCTION_FAILED);
    assert!(filled, "the accessible page was filled first");
}
