//! Shared machinery of the entry points: the module instance, the panic
//! guard, and checked conversions of C pointers.

use cryptoki_sys::*;
use p11card::session::Output;
use p11card::{Error, Module, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};

/// The initialised module and the process that initialised it (a child
/// after `fork()` starts uninitialised).
pub(crate) static MODULE: RwLock<Option<(Arc<Module>, u32)>> = RwLock::new(None);

/// The module, if `C_Initialize` ran in this process.
pub(crate) fn module() -> Result<Arc<Module>> {
    let guard = MODULE.read().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some((module, pid)) if *pid == std::process::id() => Ok(Arc::clone(module)),
        _ => Err(Error::CryptokiNotInitialized),
    }
}

/// Runs an entry point's body: errors become their `CK_RV`, a panic becomes
/// `CKR_GENERAL_ERROR` and never unwinds into C.
pub(crate) fn guard(body: impl FnOnce() -> Result<CK_RV>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(rv)) => rv,
        Ok(Err(err)) => err.rv(),
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// Like [`guard`] for bodies that either succeed or fail.
pub(crate) fn run(body: impl FnOnce() -> Result<()>) -> CK_RV {
    guard(|| body().map(|()| CKR_OK))
}

/// Converts a caller's length to `usize`.
pub(crate) fn length(len: CK_ULONG) -> Result<usize> {
    usize::try_from(len).map_err(|_| Error::ArgumentsBad)
}

/// Borrows caller input `(pointer, length)`; NULL is allowed only for an
/// empty input.
///
/// # Safety
/// `data` must be NULL or point to `len` readable bytes for the call's life.
pub(crate) unsafe fn input<'a>(data: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    let len = length(len)?;
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: the caller guarantees `len` readable bytes at `data`.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// Writes `value` through `out`, which must not be NULL.
///
/// # Safety
/// `out` must be NULL or valid for writing one `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) -> Result<()> {
    if out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: non-NULL, and the caller guarantees it is writable.
    unsafe { out.write_unaligned(value) };
    Ok(())
}

/// The caller's output capacity for the two-call convention: `None` when
/// the buffer is NULL (a length query).
///
/// # Safety
/// `len` must be NULL or valid for reading one `CK_ULONG`.
pub(crate) unsafe fn capacity(buffer: *const u8, len: *const CK_ULONG) -> Result<Option<usize>> {
    if len.is_null() {
        return Err(Error::ArgumentsBad);
    }
    if buffer.is_null() {
        return Ok(None);
    }
    // SAFETY: checked non-NULL above; the caller guarantees it is readable.
    length(unsafe { len.read_unaligned() }).map(Some)
}

/// Delivers an [`Output`] through `(buffer, len)` and returns its `CK_RV`.
///
/// # Safety
/// `len` must be valid for writing; `buffer`, when the output is delivered,
/// must have room for as many bytes as `*len` said.
pub(crate) unsafe fn deliver(output: Output, buffer: *mut u8, len: *mut CK_ULONG) -> Result<CK_RV> {
    match output {
        Output::Length(needed) => {
            // SAFETY: `len` was checked by `capacity`.
            unsafe { write_out(len, needed as CK_ULONG)? };
            Ok(CKR_OK)
        }
        Output::TooSmall(needed) => {
            // SAFETY: as above.
            unsafe { write_out(len, needed as CK_ULONG)? };
            Ok(CKR_BUFFER_TOO_SMALL)
        }
        Output::Done(bytes) => {
            // SAFETY: `capacity` saw a non-NULL buffer of at least this size
            // (the module only returns `Done` when it fits).
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer, bytes.len());
                write_out(len, bytes.len() as CK_ULONG)?;
            }
            Ok(CKR_OK)
        }
    }
}

/// Reads a caller's `CK_MECHANISM` into the typed form.
///
/// # Safety
/// `mechanism` must be NULL or point to a readable `CK_MECHANISM` whose
/// parameter pointer covers its stated length.
pub(crate) unsafe fn mechanism(
    mechanism: *const CK_MECHANISM,
) -> Result<p11card::mechanism::Mechanism> {
    use p11card::mechanism::{Mechanism, RawParams};
    if mechanism.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: non-NULL; the caller guarantees a readable CK_MECHANISM.
    let mechanism = unsafe { mechanism.read_unaligned() };
    let param_len = length(mechanism.ulParameterLen)?;
    let raw = if mechanism.pParameter.is_null() || param_len == 0 {
        if param_len == 0 {
            RawParams::None
        } else {
            RawParams::Invalid
        }
    } else if param_len == std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>()
        && matches!(
            mechanism.mechanism,
            CKM_RSA_PKCS_PSS
                | CKM_SHA1_RSA_PKCS_PSS
                | CKM_SHA224_RSA_PKCS_PSS
                | CKM_SHA256_RSA_PKCS_PSS
                | CKM_SHA384_RSA_PKCS_PSS
                | CKM_SHA512_RSA_PKCS_PSS
        )
    {
        // SAFETY: the parameter is as long as the struct it should hold.
        let params =
            unsafe { (mechanism.pParameter as *const CK_RSA_PKCS_PSS_PARAMS).read_unaligned() };
        RawParams::Pss {
            hash: params.hashAlg,
            mgf: params.mgf,
            salt_len: params.sLen,
        }
    } else if param_len == std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>()
        && mechanism.mechanism == CKM_RSA_PKCS_OAEP
    {
        // SAFETY: the parameter is as long as the struct it should hold.
        let params =
            unsafe { (mechanism.pParameter as *const CK_RSA_PKCS_OAEP_PARAMS).read_unaligned() };
        // SAFETY: the caller guarantees the label covers its stated length.
        let label = unsafe { input(params.pSourceData as *const u8, params.ulSourceDataLen) }
            .map_err(|_| Error::MechanismParamInvalid)?;
        RawParams::Oaep {
            hash: params.hashAlg,
            mgf: params.mgf,
            source: params.source,
            source_data: label.to_vec(),
        }
    } else if param_len == std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>()
        && mechanism.mechanism == CKM_ECDH1_DERIVE
    {
        // SAFETY: the parameter is as long as the struct it should hold.
        let params =
            unsafe { (mechanism.pParameter as *const CK_ECDH1_DERIVE_PARAMS).read_unaligned() };
        // SAFETY: the caller guarantees both buffers cover their lengths.
        let (shared, public) = unsafe {
            (
                input(params.pSharedData as *const u8, params.ulSharedDataLen),
                input(params.pPublicData as *const u8, params.ulPublicDataLen),
            )
        };
        RawParams::Ecdh1 {
            kdf: params.kdf,
            shared_data: shared.map_err(|_| Error::MechanismParamInvalid)?.to_vec(),
            public_data: public.map_err(|_| Error::MechanismParamInvalid)?.to_vec(),
        }
    } else if param_len == std::mem::size_of::<CK_EDDSA_PARAMS>()
        && mechanism.mechanism == CKM_EDDSA
    {
        // SAFETY: the parameter is as long as the struct it should hold.
        let params = unsafe { (mechanism.pParameter as *const CK_EDDSA_PARAMS).read_unaligned() };
        // SAFETY: the caller guarantees the context covers its length.
        let context = unsafe { input(params.pContextData as *const u8, params.ulContextDataLen) }
            .map_err(|_| Error::MechanismParamInvalid)?;
        RawParams::EdDsa {
            prehash: params.phFlag != CK_FALSE,
            context: context.to_vec(),
        }
    } else {
        RawParams::Invalid
    };
    Mechanism::from_raw(mechanism.mechanism, &raw)
}

/// Reads a search template into `(type, value)` pairs.
///
/// # Safety
/// `template` must be NULL (with `count` 0) or point to `count` readable
/// `CK_ATTRIBUTE`s whose values cover their stated lengths.
pub(crate) unsafe fn template(
    template: *const CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>> {
    let count = length(count)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    if template.is_null() {
        return Err(Error::ArgumentsBad);
    }
    (0..count)
        .map(|index| {
            // SAFETY: `index < count`, within the caller's array.
            let attribute = unsafe { template.add(index).read_unaligned() };
            // SAFETY: the caller guarantees the value covers its length.
            let value = unsafe { input(attribute.pValue as *const u8, attribute.ulValueLen)? };
            Ok((attribute.type_, value.to_vec()))
        })
        .collect()
}
