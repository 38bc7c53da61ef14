//! The function tables and the 2.40/3.0 entry points that hand them out.

use crate::abi::{guard, write_out};
use crate::crypto_fns::*;
use crate::general::*;
use crate::object_fns::*;
use crate::session_fns::*;
use crate::slot_fns::*;
use crate::unsupported::*;
use cryptoki_sys::*;
use p11card::Error;

macro_rules! function_list {
    ($ty:ident, $version:expr, $get_info:expr, { $($extra:ident : $value:expr),* $(,)? }) => {
        $ty {
            version: $version,
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some($get_info),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: $value,)*
        }
    };
}

/// The PKCS#11 2.40 function list.
pub(crate) static FUNCTION_LIST: CK_FUNCTION_LIST = function_list!(
    CK_FUNCTION_LIST,
    CK_VERSION {
        major: 2,
        minor: 40
    },
    C_GetInfo,
    {}
);

/// The PKCS#11 3.0 function list.
pub(crate) static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = function_list!(
    CK_FUNCTION_LIST_3_0,
    CK_VERSION { major: 3, minor: 0 },
    get_info_v3,
    {
        C_GetInterfaceList: Some(C_GetInterfaceList),
        C_GetInterface: Some(C_GetInterface),
        C_LoginUser: Some(C_LoginUser),
        C_SessionCancel: Some(C_SessionCancel),
        C_MessageEncryptInit: Some(MessageEncryptInit),
        C_EncryptMessage: Some(EncryptMessage),
        C_EncryptMessageBegin: Some(EncryptMessageBegin),
        C_EncryptMessageNext: Some(EncryptMessageNext),
        C_MessageEncryptFinal: Some(MessageEncryptFinal),
        C_MessageDecryptInit: Some(MessageDecryptInit),
        C_DecryptMessage: Some(DecryptMessage),
        C_DecryptMessageBegin: Some(DecryptMessageBegin),
        C_DecryptMessageNext: Some(DecryptMessageNext),
        C_MessageDecryptFinal: Some(MessageDecryptFinal),
        C_MessageSignInit: Some(MessageSignInit),
        C_SignMessage: Some(SignMessage),
        C_SignMessageBegin: Some(SignMessageBegin),
        C_SignMessageNext: Some(SignMessageNext),
        C_MessageSignFinal: Some(MessageSignFinal),
        C_MessageVerifyInit: Some(MessageVerifyInit),
        C_VerifyMessage: Some(VerifyMessage),
        C_VerifyMessageBegin: Some(VerifyMessageBegin),
        C_VerifyMessageNext: Some(VerifyMessageNext),
        C_MessageVerifyFinal: Some(MessageVerifyFinal),
    }
);

/// The interface name both interfaces carry.
static INTERFACE_NAME: &[u8] = b"PKCS 11\0";

/// A `CK_INTERFACE` that can live in a static.
struct StaticInterface(CK_INTERFACE);

// SAFETY: the pointers inside refer to immutable statics (the name and the
// function lists), which consumers only read.
unsafe impl Sync for StaticInterface {}

static INTERFACES: [StaticInterface; 2] = [
    StaticInterface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut std::ffi::c_void,
        flags: 0,
    }),
    StaticInterface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut std::ffi::c_void,
        flags: 0,
    }),
];

fn interface_version(interface: &CK_INTERFACE) -> CK_VERSION {
    // Both function lists start with their CK_VERSION.
    // SAFETY: pFunctionList points to one of the two static lists above.
    unsafe { (interface.pFunctionList as *const CK_VERSION).read() }
}

/// `C_GetFunctionList`: the 2.40 function list. Works before `C_Initialize`.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        let list = &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST;
        // SAFETY: ppFunctionList is NULL or writable, per PKCS#11.
        unsafe { write_out(ppFunctionList, list)? };
        Ok(CKR_OK)
    })
}

/// `C_GetInterfaceList` (3.0): the 3.0 and the 2.40 interface, in that order.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: *mut CK_INTERFACE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let interfaces: Vec<CK_INTERFACE> = INTERFACES.iter().map(|i| i.0).collect();
        // SAFETY: pointers as PKCS#11 defines them; checked in write_list.
        unsafe { write_list(&interfaces, pInterfacesList, pulCount) }
    })
}

/// `C_GetInterface` (3.0): by name ("PKCS 11" or NULL), version (or NULL
/// for the newest) and flags.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: *mut CK_UTF8CHAR,
    pVersion: *mut CK_VERSION,
    ppInterface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard(|| {
        if ppInterface.is_null() {
            return Err(Error::ArgumentsBad);
        }
        if !pInterfaceName.is_null() {
            // SAFETY: a non-NULL name is a NUL-terminated string, per PKCS#11.
            let name =
                unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::ffi::c_char) };
            if name.to_bytes_with_nul() != INTERFACE_NAME {
                return Ok(CKR_ARGUMENTS_BAD);
            }
        }
        let wanted = if pVersion.is_null() {
            None
        } else {
            // SAFETY: non-NULL; points to a CK_VERSION, per PKCS#11.
            Some(unsafe { pVersion.read_unaligned() })
        };
        let found = INTERFACES.iter().find(|candidate| {
            let version = interface_version(&candidate.0);
            candidate.0.flags & flags == flags
                && wanted.is_none_or(|w| w.major == version.major && w.minor == version.minor)
        });
        match found {
            Some(interface) => {
                let pointer = &interface.0 as *const CK_INTERFACE as *mut CK_INTERFACE;
                // SAFETY: ppInterface checked non-NULL above.
                unsafe { write_out(ppInterface, pointer)? };
                Ok(CKR_OK)
            }
            None => Ok(CKR_ARGUMENTS_BAD),
        }
    })
}
