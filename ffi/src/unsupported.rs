//! Functions a read-only smart-card token does not offer, or offers only as
//! far as its card allows. Those the module does not implement at all
//! answer `CKR_FUNCTION_NOT_SUPPORTED` once the library is initialised;
//! the others check the session, the object and the read-only state first
//! and answer the code PKCS#11 gives for the first check that fails.

use crate::abi::{guard, module, run, template};
use cryptoki_sys::*;
use p11card::Error;
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

/// `C_CreateObject`: the card takes no new objects.
#[no_mangle]
pub unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pTemplate holds ulCount attributes, per PKCS#11.
        let wanted = unsafe { template(pTemplate, ulCount)? };
        if phObject.is_null() {
            return Err(Error::ArgumentsBad);
        }
        module.create_object(hSession, &wanted)
    })
}

/// `C_CopyObject`: no object is copyable.
#[no_mangle]
pub unsafe extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phNewObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pTemplate holds ulCount attributes, per PKCS#11.
        let wanted = unsafe { template(pTemplate, ulCount)? };
        if phNewObject.is_null() {
            return Err(Error::ArgumentsBad);
        }
        module.copy_object(hSession, hObject, &wanted)
    })
}

/// `C_SetAttributeValue`: no object is modifiable.
#[no_mangle]
pub unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pTemplate holds ulCount attributes, per PKCS#11.
        unsafe { template(pTemplate, ulCount)? };
        module.set_attributes(hSession, hObject)
    })
}

/// `C_EncryptUpdate`: the encryption mechanisms are single-part only.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
    pEncryptedPart: *mut CK_BYTE,
    pulEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
    run(|| module()?.encrypt_multi_part(hSession))
}

/// `C_EncryptFinal`: the encryption mechanisms are single-part only.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastEncryptedPart: *mut CK_BYTE,
    pulLastEncryptedPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (pLastEncryptedPart, pulLastEncryptedPartLen);
    run(|| module()?.encrypt_multi_part(hSession))
}

/// `C_DecryptUpdate`: the decryption mechanisms are single-part only.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: *mut CK_BYTE,
    ulEncryptedPartLen: CK_ULONG,
    pPart: *mut CK_BYTE,
    pulPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
    run(|| module()?.decrypt_multi_part(hSession))
}

/// `C_DecryptFinal`: the decryption mechanisms are single-part only.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastPart: *mut CK_BYTE,
    pulLastPartLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (pLastPart, pulLastPartLen);
    run(|| module()?.decrypt_multi_part(hSession))
}

/// `C_DigestKey`: a readable secret key (from `C_DeriveKey`).
#[no_mangle]
pub unsafe extern "C" fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) -> CK_RV {
    run(|| module()?.digest_key(hSession, hKey))
}

/// `C_SignRecoverInit`: no mechanism signs with recovery.
#[no_mangle]
pub unsafe extern "C" fn C_SignRecoverInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        if pMechanism.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let _ = hKey;
        module.no_such_mechanism(hSession)
    })
}

/// `C_SignRecover`: never initialised.
#[no_mangle]
pub unsafe extern "C" fn C_SignRecover(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (pData, ulDataLen, pSignature, pulSignatureLen);
    run(|| module()?.no_such_operation(hSession))
}

/// `C_VerifyRecoverInit`: no mechanism verifies with recovery.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyRecoverInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        if pMechanism.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let _ = hKey;
        module.no_such_mechanism(hSession)
    })
}

/// `C_VerifyRecover`: never initialised.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyRecover(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
    pData: *mut CK_BYTE,
    pulDataLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (pSignature, ulSignatureLen, pData, pulDataLen);
    run(|| module()?.no_such_operation(hSession))
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

/// `C_GenerateKey`: the token makes no keys.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pTemplate holds ulCount attributes, per PKCS#11.
        let wanted = unsafe { template(pTemplate, ulCount)? };
        if pMechanism.is_null() || phKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        module.make_key(hSession, &[&wanted])
    })
}

/// `C_GenerateKeyPair`: the token generates no key pairs (yet).
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
    run(|| {
        let module = module()?;
        // SAFETY: both templates hold their counts of attributes, per PKCS#11.
        let (public, private) = unsafe {
            (
                template(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
                template(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
            )
        };
        if pMechanism.is_null() || phPublicKey.is_null() || phPrivateKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        module.make_key(hSession, &[&public, &private])
    })
}

/// `C_WrapKey`: no mechanism wraps keys.
#[no_mangle]
pub unsafe extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    pulWrappedKeyLen: *mut CK_ULONG,
) -> CK_RV {
    let _ = (hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen);
    run(|| {
        let module = module()?;
        if pMechanism.is_null() || pulWrappedKeyLen.is_null() {
            return Err(Error::ArgumentsBad);
        }
        module.no_such_mechanism(hSession)
    })
}

/// `C_UnwrapKey`: no mechanism unwraps keys.
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
    let _ = (hUnwrappingKey, pWrappedKey, ulWrappedKeyLen);
    run(|| {
        let module = module()?;
        // SAFETY: pTemplate holds ulAttributeCount attributes, per PKCS#11.
        let wanted = unsafe { template(pTemplate, ulAttributeCount)? };
        if pMechanism.is_null() || phKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        module.make_key(hSession, &[&wanted])
    })
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
