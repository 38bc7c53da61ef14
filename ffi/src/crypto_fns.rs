//! Cryptographic functions (PKCS#11 §5.8–5.15): the card signs, decrypts and
//! agrees on keys; verification, encryption, digests and random numbers are
//! computed here.

use crate::abi::{
    capacity, deliver, guard, input, mechanism, module, operation_args, output, run, template,
    write_out,
};
use cryptoki_sys::*;
use p11card::session::OperationKind;
use p11card::Error;

/// `C_SignInit`.
#[no_mangle]
pub unsafe extern "C" fn C_SignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pMechanism is NULL or a CK_MECHANISM, per PKCS#11.
        let mechanism = unsafe { mechanism(pMechanism)? };
        module.sign_init(hSession, mechanism, hKey)
    })
}

/// `C_Sign`.
#[no_mangle]
pub unsafe extern "C" fn C_Sign(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let module = module()?;
        // SAFETY: buffers as PKCS#11 defines them; checked by the helpers.
        let args = unsafe {
            capacity(pSignature, pulSignatureLen)
                .and_then(|room| Ok((room, input(pData, ulDataLen)?)))
        };
        let (room, data) = operation_args(&module, hSession, OperationKind::Sign, args)?;
        let output = module.sign(hSession, data, room)?;
        // SAFETY: `pulSignatureLen` was checked; `pSignature` has the room
        // it said.
        unsafe { deliver(output, pSignature, pulSignatureLen) }
    })
}

/// `C_SignUpdate`.
#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pPart covers ulPartLen bytes, per PKCS#11.
        let part = unsafe { input(pPart, ulPartLen) };
        let part = operation_args(&module, hSession, OperationKind::Sign, part)?;
        module.sign_update(hSession, part)
    })
}

/// `C_SignFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let module = module()?;
        // SAFETY: buffers as PKCS#11 defines them; checked by the helper.
        let room = unsafe { capacity(pSignature, pulSignatureLen) };
        let room = operation_args(&module, hSession, OperationKind::Sign, room)?;
        let output = module.sign_final(hSession, room)?;
        // SAFETY: as above.
        unsafe { deliver(output, pSignature, pulSignatureLen) }
    })
}

/// `C_VerifyInit`.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pMechanism is NULL or a CK_MECHANISM, per PKCS#11.
        let mechanism = unsafe { mechanism(pMechanism)? };
        module.verify_init(hSession, mechanism, hKey)
    })
}

/// `C_Verify`.
#[no_mangle]
pub unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: both buffers cover their lengths, per PKCS#11.
        let args = unsafe {
            input(pData, ulDataLen).and_then(|data| Ok((data, input(pSignature, ulSignatureLen)?)))
        };
        let (data, signature) = operation_args(&module, hSession, OperationKind::Verify, args)?;
        module.verify(hSession, data, signature)
    })
}

/// `C_VerifyUpdate`.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pPart covers ulPartLen bytes, per PKCS#11.
        let part = unsafe { input(pPart, ulPartLen) };
        let part = operation_args(&module, hSession, OperationKind::Verify, part)?;
        module.verify_update(hSession, part)
    })
}

/// `C_VerifyFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pSignature covers ulSignatureLen bytes, per PKCS#11.
        let signature = unsafe { input(pSignature, ulSignatureLen) };
        let signature = operation_args(&module, hSession, OperationKind::Verify, signature)?;
        module.verify_final(hSession, signature)
    })
}

/// `C_DecryptInit`.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pMechanism is NULL or a CK_MECHANISM, per PKCS#11.
        let mechanism = unsafe { mechanism(pMechanism)? };
        module.decrypt_init(hSession, mechanism, hKey)
    })
}

/// `C_Decrypt`.
#[no_mangle]
pub unsafe extern "C" fn C_Decrypt(
    hSession: CK_SESSION_HANDLE,
    pEncryptedData: *mut CK_BYTE,
    ulEncryptedDataLen: CK_ULONG,
    pData: *mut CK_BYTE,
    pulDataLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let module = module()?;
        // SAFETY: buffers as PKCS#11 defines them; checked by the helpers.
        let args = unsafe {
            capacity(pData, pulDataLen)
                .and_then(|room| Ok((room, input(pEncryptedData, ulEncryptedDataLen)?)))
        };
        let (room, ciphertext) = operation_args(&module, hSession, OperationKind::Decrypt, args)?;
        let output = module.decrypt(hSession, ciphertext, room)?;
        // SAFETY: `pulDataLen` was checked; `pData` has the room it said.
        unsafe { deliver(output, pData, pulDataLen) }
    })
}

/// `C_EncryptInit`.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pMechanism is NULL or a CK_MECHANISM, per PKCS#11.
        let mechanism = unsafe { mechanism(pMechanism)? };
        module.encrypt_init(hSession, mechanism, hKey)
    })
}

/// `C_Encrypt`.
#[no_mangle]
pub unsafe extern "C" fn C_Encrypt(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pEncryptedData: *mut CK_BYTE,
    pulEncryptedDataLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let module = module()?;
        // SAFETY: buffers as PKCS#11 defines them; checked by the helpers.
        let args = unsafe {
            capacity(pEncryptedData, pulEncryptedDataLen)
                .and_then(|room| Ok((room, input(pData, ulDataLen)?)))
        };
        let (room, data) = operation_args(&module, hSession, OperationKind::Encrypt, args)?;
        let output = module.encrypt(hSession, data, room)?;
        // SAFETY: `pulEncryptedDataLen` was checked; `pEncryptedData` has
        // the room it said.
        unsafe { deliver(output, pEncryptedData, pulEncryptedDataLen) }
    })
}

/// `C_DigestInit`.
#[no_mangle]
pub unsafe extern "C" fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pMechanism is NULL or a CK_MECHANISM, per PKCS#11.
        let mechanism = unsafe { mechanism(pMechanism)? };
        module.digest_init(hSession, mechanism)
    })
}

/// `C_Digest`.
#[no_mangle]
pub unsafe extern "C" fn C_Digest(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let module = module()?;
        // SAFETY: buffers as PKCS#11 defines them; checked by the helpers.
        let args = unsafe {
            capacity(pDigest, pulDigestLen).and_then(|room| Ok((room, input(pData, ulDataLen)?)))
        };
        let (room, data) = operation_args(&module, hSession, OperationKind::Digest, args)?;
        let output = module.digest(hSession, data, room)?;
        // SAFETY: `pulDigestLen` was checked; `pDigest` has the room it said.
        unsafe { deliver(output, pDigest, pulDigestLen) }
    })
}

/// `C_DigestUpdate`.
#[no_mangle]
pub unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pPart covers ulPartLen bytes, per PKCS#11.
        let part = unsafe { input(pPart, ulPartLen) };
        let part = operation_args(&module, hSession, OperationKind::Digest, part)?;
        module.digest_update(hSession, part)
    })
}

/// `C_DigestFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_DigestFinal(
    hSession: CK_SESSION_HANDLE,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let module = module()?;
        // SAFETY: buffers as PKCS#11 defines them; checked by the helper.
        let room = unsafe { capacity(pDigest, pulDigestLen) };
        let room = operation_args(&module, hSession, OperationKind::Digest, room)?;
        let output = module.digest_final(hSession, room)?;
        // SAFETY: as above.
        unsafe { deliver(output, pDigest, pulDigestLen) }
    })
}

/// `C_GenerateRandom`.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: *mut CK_BYTE,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: RandomData has room for ulRandomLen bytes, per PKCS#11.
        let out = unsafe { output(RandomData, ulRandomLen)? };
        module.generate_random(hSession, out)
    })
}

/// `C_SeedRandom`: the OS generator takes no seed.
#[no_mangle]
pub unsafe extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    pSeed: *mut CK_BYTE,
    ulSeedLen: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pSeed covers ulSeedLen bytes, per PKCS#11.
        unsafe { input(pSeed, ulSeedLen)? };
        module.session_info(hSession)?;
        Err(Error::RandomSeedNotSupported)
    })
}

/// `C_DeriveKey`: `CKM_ECDH1_DERIVE` (`CKD_NULL`) with an EC or X25519
/// private key; the new key is a session `CKO_SECRET_KEY`.
#[no_mangle]
pub unsafe extern "C" fn C_DeriveKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hBaseKey: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| {
        let module = module()?;
        if phKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: pMechanism is NULL or a CK_MECHANISM, per PKCS#11.
        let mechanism = unsafe { mechanism(pMechanism)? };
        // SAFETY: pTemplate holds ulAttributeCount attributes, per PKCS#11.
        let wanted = unsafe { template(pTemplate, ulAttributeCount)? };
        let wanted = p11card::token::SecretKeyTemplate::from_attributes(&wanted)?;
        let key = module.derive_key(hSession, mechanism, hBaseKey, wanted)?;
        // SAFETY: checked non-NULL above; points to a CK_OBJECT_HANDLE.
        unsafe { write_out(phKey, key) }
    })
}
