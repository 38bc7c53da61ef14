//! Functions a read-only smart-card token does not offer. Each still checks
//! that the library is initialised, then answers with the spec's code.

use crate::abi::{guard, module};
use cryptoki_sys::*;
use std::ffi::c_void;

fn not_supported() -> CK_RV {
    guard(|| {
        module()?;
        Ok(CKR_FUNCTION_NOT_SUPPORTED)
    })
}

/// `C_InitToken`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    pLabel: *mut CK_UTF8CHAR,
) -> CK_RV {
    let _ = (slotID, pPin, ulPinLen, pLabel);
    not_supported()
}

/// `C_GetOperationState`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_GetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: *mut CK_BYTE,
    pulOperationStateLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (hSession, pOperationState, pulOperationStateLen);
    not_supported()
}

/// `C_SetOperationState`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_SetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: *mut CK_BYTE,
    ulOperationStateLen: CK_ULONG,
    hEncryptionKey: CK_OBJECT_HANDLE,
    hAuthenticationKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    let _ = (
        hSession,
        pOperationState,
        ulOperationStateLen,
        hEncryptionKey,
        hAuthenticationKey,
    );
    not_supported()
}

/// `C_CreateObject`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let _ = (hSession, pTemplate, ulCount, phObject);
    not_supported()
}

/// `C_CopyObject`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phNewObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let _ = (hSession, hObject, pTemplate, ulCount, phNewObject);
    not_supported()
}

/// `C_SetAttributeValue`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    let _ = (hSession, hObject, pTemplate, ulCount);
    not_supported()
}

/// `C_EncryptUpdate`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
    pEncryptedPart: *mut CK_BYTE,
    pulEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (
        hSession,
        pPart,
        ulPartLen,
        pEncryptedPart,
        pulEncryptedPartLen,
    );
    not_supported()
}

/// `C_EncryptFinal`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastEncryptedPart: *mut CK_BYTE,
    pulLastEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (hSession, pLastEncryptedPart, pulLastEncryptedPartLen);
    not_supported()
}

/// `C_DecryptUpdate`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: *mut CK_BYTE,
    ulEncryptedPartLen: CK_ULONG,
    pPart: *mut CK_BYTE,
    pulPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (
        hSession,
        pEncryptedPart,
        ulEncryptedPartLen,
        pPart,
        pulPartLen,
    );
    not_supported()
}

/// `C_DecryptFinal`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastPart: *mut CK_BYTE,
    pulLastPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (hSession, pLastPart, pulLastPartLen);
    not_supported()
}

/// `C_DigestKey`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) -> CK_RV {
    let _ = (hSession, hKey);
    not_supported()
}

/// `C_SignRecoverInit`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_SignRecoverInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    let _ = (hSession, pMechanism, hKey);
    not_supported()
}

/// `C_SignRecover`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_SignRecover(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (hSession, pData, ulDataLen, pSignature, pulSignatureLen);
    not_supported()
}

/// `C_VerifyRecoverInit`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyRecoverInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    let _ = (hSession, pMechanism, hKey);
    not_supported()
}

/// `C_VerifyRecover`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyRecover(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
    pData: *mut CK_BYTE,
    pulDataLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (hSession, pSignature, ulSignatureLen, pData, pulDataLen);
    not_supported()
}

/// `C_DigestEncryptUpdate`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_DigestEncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
    pEncryptedPart: *mut CK_BYTE,
    pulEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (
        hSession,
        pPart,
        ulPartLen,
        pEncryptedPart,
        pulEncryptedPartLen,
    );
    not_supported()
}

/// `C_DecryptDigestUpdate`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptDigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: *mut CK_BYTE,
    ulEncryptedPartLen: CK_ULONG,
    pPart: *mut CK_BYTE,
    pulPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (
        hSession,
        pEncryptedPart,
        ulEncryptedPartLen,
        pPart,
        pulPartLen,
    );
    not_supported()
}

/// `C_SignEncryptUpdate`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_SignEncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
    pEncryptedPart: *mut CK_BYTE,
    pulEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (
        hSession,
        pPart,
        ulPartLen,
        pEncryptedPart,
        pulEncryptedPartLen,
    );
    not_supported()
}

/// `C_DecryptVerifyUpdate`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptVerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: *mut CK_BYTE,
    ulEncryptedPartLen: CK_ULONG,
    pPart: *mut CK_BYTE,
    pulPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (
        hSession,
        pEncryptedPart,
        ulEncryptedPartLen,
        pPart,
        pulPartLen,
    );
    not_supported()
}

/// `C_GenerateKey`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let _ = (hSession, pMechanism, pTemplate, ulCount, phKey);
    not_supported()
}

/// `C_GenerateKeyPair`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pPublicKeyTemplate: *mut CK_ATTRIBUTE,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: *mut CK_ATTRIBUTE,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: *mut CK_OBJECT_HANDLE,
    phPrivateKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let _ = (
        hSession,
        pMechanism,
        pPublicKeyTemplate,
        ulPublicKeyAttributeCount,
        pPrivateKeyTemplate,
        ulPrivateKeyAttributeCount,
        phPublicKey,
        phPrivateKey,
    );
    not_supported()
}

/// `C_WrapKey`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    pulWrappedKeyLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (
        hSession,
        pMechanism,
        hWrappingKey,
        hKey,
        pWrappedKey,
        pulWrappedKeyLen,
    );
    not_supported()
}

/// `C_UnwrapKey`: not offered by this token.
#[no_mangle]
pub unsafe extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let _ = (
        hSession,
        pMechanism,
        hUnwrappingKey,
        pWrappedKey,
        ulWrappedKeyLen,
        pTemplate,
        ulAttributeCount,
        phKey,
    );
    not_supported()
}

/// The 3.0 message-based functions: not offered (no message mechanisms).
macro_rules! message_functions {
    ($($name:ident ( $($arg:ident : $ty:ty),* $(,)? );)*) => {
        $(
            #[doc = concat!("`C_", stringify!($name), "`: not offered by this token.")]
            pub(crate) unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
                let _ = ($($arg),*);
                not_supported()
            }
        )*
    };
}

message_functions! {
    MessageEncryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE);
    EncryptMessage(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pAssociatedData: *mut CK_BYTE, ulAssociatedDataLen: CK_ULONG, pPlaintext: *mut CK_BYTE, ulPlaintextLen: CK_ULONG, pCiphertext: *mut CK_BYTE, pulCiphertextLen: *mut CK_ULONG);
    EncryptMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pAssociatedData: *mut CK_BYTE, ulAssociatedDataLen: CK_ULONG);
    EncryptMessageNext(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pPlaintextPart: *mut CK_BYTE, ulPlaintextPartLen: CK_ULONG, pCiphertextPart: *mut CK_BYTE, pulCiphertextPartLen: *mut CK_ULONG, flags: CK_FLAGS);
    MessageEncryptFinal(hSession: CK_SESSION_HANDLE);
    MessageDecryptInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE);
    DecryptMessage(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pAssociatedData: *mut CK_BYTE, ulAssociatedDataLen: CK_ULONG, pCiphertext: *mut CK_BYTE, ulCiphertextLen: CK_ULONG, pPlaintext: *mut CK_BYTE, pulPlaintextLen: *mut CK_ULONG);
    DecryptMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pAssociatedData: *mut CK_BYTE, ulAssociatedDataLen: CK_ULONG);
    DecryptMessageNext(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pCiphertextPart: *mut CK_BYTE, ulCiphertextPartLen: CK_ULONG, pPlaintextPart: *mut CK_BYTE, pulPlaintextPartLen: *mut CK_ULONG, flags: CK_FLAGS);
    MessageDecryptFinal(hSession: CK_SESSION_HANDLE);
    MessageSignInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE);
    SignMessage(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, pulSignatureLen: *mut CK_ULONG);
    SignMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG);
    SignMessageNext(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, pulSignatureLen: *mut CK_ULONG);
    MessageSignFinal(hSession: CK_SESSION_HANDLE);
    MessageVerifyInit(hSession: CK_SESSION_HANDLE, pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE);
    VerifyMessage(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG);
    VerifyMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG);
    VerifyMessageNext(hSession: CK_SESSION_HANDLE, pParameter: *mut c_void, ulParameterLen: CK_ULONG, pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG);
    MessageVerifyFinal(hSession: CK_SESSION_HANDLE);
}
