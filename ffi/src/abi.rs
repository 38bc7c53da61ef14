//! Shared machinery of the entry points: the module instance, the panic
//! guard, and checked conversions of C pointers.

use cryptoki_sys::*;
use p11card::session::{OperationKind, Output};
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

/// A call's arguments as the C ABI read them; a bad one (`CKR_ARGUMENTS_BAD`)
/// ends the session's operation of `kind`, as any error of that call would
/// (PKCS#11 3.0 §5.9–§5.13).
pub(crate) fn operation_args<T>(
    module: &Module,
    session: CK_SESSION_HANDLE,
    kind: OperationKind,
    args: Result<T>,
) -> Result<T> {
    args.inspect_err(|_| module.end_operation(session, kind))
}

/// Like [`guard`] for bodies that either succeed or fail.
pub(crate) fn run(body: impl FnOnce() -> Result<()>) -> CK_RV {
    guard(|| body().map(|()| CKR_OK))
}

/// Converts a caller's length to `usize`.
pub(crate) fn length(len: CK_ULONG) -> Result<usize> {
    usize::try_from(len).map_err(|_| Error::ArgumentsBad)
}

/// The largest buffer a caller may hand the module: no PKCS#11 call has a
/// use for a terabyte, so a larger length or count is a caller's mistake
/// (one the module would otherwise act on by allocating, reading or
/// writing that much).
const MAX_CALLER_BYTES: u64 = 1 << 40;

/// Converts a caller's count of `T`s to `usize`: an array over
/// [`MAX_CALLER_BYTES`] (or over `isize::MAX` bytes, where Rust slices end)
/// is `CKR_ARGUMENTS_BAD`.
fn count_of<T>(len: CK_ULONG) -> Result<usize> {
    let count = length(len)?;
    let bytes = count.checked_mul(std::mem::size_of::<T>().max(1));
    match bytes {
        Some(bytes)
            if isize::try_from(bytes).is_ok()
                && u64::try_from(bytes).is_ok_and(|b| b <= MAX_CALLER_BYTES) =>
        {
            Ok(count)
        }
        _ => Err(Error::ArgumentsBad),
    }
}

/// An empty vector with room for `count` items, or `CKR_HOST_MEMORY` (a
/// failed allocation must not abort the caller's process).
fn room_for<T>(count: usize) -> Result<Vec<T>> {
    let mut items = Vec::new();
    items
        .try_reserve_exact(count)
        .map_err(|_| Error::HostMemory)?;
    Ok(items)
}

/// Borrows caller input `(pointer, length)`; NULL is allowed only for an
/// empty input.
///
/// # Safety
/// `data` must be NULL or point to `len` readable bytes for the call's life.
pub(crate) unsafe fn input<'a>(data: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    let len = count_of::<u8>(len)?;
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: the caller guarantees `len` readable bytes at `data`; `len` is
    // at most `isize::MAX`.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// Copies caller input `(pointer, length)` as [`input`] borrows it; an
/// allocation that fails is `CKR_HOST_MEMORY`.
///
/// # Safety
/// As for [`input`].
pub(crate) unsafe fn owned_input(data: *const u8, len: CK_ULONG) -> Result<Vec<u8>> {
    // SAFETY: as the caller guarantees.
    let bytes = unsafe { input(data, len)? };
    let mut owned = room_for(bytes.len())?;
    owned.extend_from_slice(bytes);
    Ok(owned)
}

/// Borrows the caller's output buffer `(pointer, length)`; NULL is allowed
/// only for an empty one.
///
/// # Safety
/// `data` must be NULL or point to `len` writable bytes for the call's life.
pub(crate) unsafe fn output<'a>(data: *mut u8, len: CK_ULONG) -> Result<&'a mut [u8]> {
    let len = count_of::<u8>(len)?;
    if len == 0 {
        return Ok(&mut []);
    }
    if data.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: the caller guarantees `len` writable bytes at `data`; `len` is
    // at most `isize::MAX`.
    Ok(unsafe { std::slice::from_raw_parts_mut(data, len) })
}

/// Borrows the caller's array of `count` `T`s (a template); NULL is allowed
/// only for an empty one.
///
/// # Safety
/// `items` must be NULL or point to `count` `T`s, readable and writable,
/// for the call's life.
pub(crate) unsafe fn items_mut<'a, T>(items: *mut T, count: CK_ULONG) -> Result<&'a mut [T]> {
    let count = count_of::<T>(count)?;
    if count == 0 {
        return Ok(&mut []);
    }
    if items.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: as the caller guarantees; at most `isize::MAX` bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(items, count) })
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
    use p11card::mechanism::{parameters_of, Mechanism, Parameters, RawParams};
    if mechanism.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: non-NULL; the caller guarantees a readable CK_MECHANISM.
    let mechanism = unsafe { mechanism.read_unaligned() };
    let param_len = length(mechanism.ulParameterLen)?;
    // What the mechanism table says the parameter is.
    let takes = parameters_of(mechanism.mechanism);
    let raw = if mechanism.pParameter.is_null() || param_len == 0 {
        if param_len == 0 {
            RawParams::None
        } else {
            RawParams::Invalid
        }
    } else if param_len == std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>()
        && takes == Some(Parameters::Pss)
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
        && takes == Some(Parameters::Oaep)
    {
        // SAFETY: the parameter is as long as the struct it should hold.
        let params =
            unsafe { (mechanism.pParameter as *const CK_RSA_PKCS_OAEP_PARAMS).read_unaligned() };
        // SAFETY: the caller guarantees the label covers its stated length.
        let label = unsafe { owned_input(params.pSourceData as *const u8, params.ulSourceDataLen) }
            .map_err(param_error)?;
        RawParams::Oaep {
            hash: params.hashAlg,
            mgf: params.mgf,
            source: params.source,
            source_data: label,
        }
    } else if param_len == std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>()
        && takes == Some(Parameters::Ecdh1)
    {
        // SAFETY: the parameter is as long as the struct it should hold.
        let params =
            unsafe { (mechanism.pParameter as *const CK_ECDH1_DERIVE_PARAMS).read_unaligned() };
        // SAFETY: the caller guarantees both buffers cover their lengths.
        let (shared, public) = unsafe {
            (
                owned_input(params.pSharedData as *const u8, params.ulSharedDataLen),
                owned_input(params.pPublicData as *const u8, params.ulPublicDataLen),
            )
        };
        RawParams::Ecdh1 {
            kdf: params.kdf,
            shared_data: shared.map_err(param_error)?,
            public_data: public.map_err(param_error)?,
        }
    } else if param_len == std::mem::size_of::<CK_EDDSA_PARAMS>()
        && takes == Some(Parameters::EdDsa)
    {
        // SAFETY: the parameter is as long as the struct it should hold.
        let params = unsafe { (mechanism.pParameter as *const CK_EDDSA_PARAMS).read_unaligned() };
        // SAFETY: the caller guarantees the context covers its length.
        let context =
            unsafe { owned_input(params.pContextData as *const u8, params.ulContextDataLen) }
                .map_err(param_error)?;
        RawParams::EdDsa {
            prehash: params.phFlag != CK_FALSE,
            context,
        }
    } else {
        RawParams::Invalid
    };
    Mechanism::from_raw(mechanism.mechanism, &raw)
}

/// A mechanism parameter that cannot be read is `CKR_MECHANISM_PARAM_INVALID`;
/// one that cannot be copied, `CKR_HOST_MEMORY`.
fn param_error(err: Error) -> Error {
    match err {
        Error::HostMemory => Error::HostMemory,
        _ => Error::MechanismParamInvalid,
    }
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
    let count = count_of::<CK_ATTRIBUTE>(count)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    if template.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let mut pairs = room_for(count)?;
    for index in 0..count {
        // SAFETY: `index < count`, within the caller's array.
        let attribute = unsafe { template.add(index).read_unaligned() };
        // SAFETY: the caller guarantees the value covers its length.
        let value = unsafe { owned_input(attribute.pValue as *const u8, attribute.ulValueLen)? };
        pairs.push((attribute.type_, value));
    }
    Ok(pairs)
}
