//! Object management (PKCS#11 §5.7): search and attributes. The token's
//! objects are read-only; session objects (derived keys) can be destroyed.

use crate::abi::{guard, items_mut, length, module, run, template, write_out};
use cryptoki_sys::*;
use p11card::token::{AttrValue, UNAVAILABLE};
use p11card::Error;

/// `C_FindObjectsInit`.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        // SAFETY: pTemplate holds ulCount attributes, per PKCS#11.
        let wanted = unsafe { template(pTemplate, ulCount)? };
        module.find_init(hSession, wanted)
    })
}

/// `C_FindObjects`.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: *mut CK_OBJECT_HANDLE,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: *mut CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        if pulObjectCount.is_null() || (phObject.is_null() && ulMaxObjectCount > 0) {
            return Err(Error::ArgumentsBad);
        }
        let found = module.find_next(hSession, length(ulMaxObjectCount)?)?;
        if !found.is_empty() {
            // SAFETY: phObject holds ulMaxObjectCount >= found.len() handles.
            unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), phObject, found.len()) };
        }
        // SAFETY: checked non-NULL above.
        unsafe { write_out(pulObjectCount, found.len() as CK_ULONG) }
    })
}

/// `C_FindObjectsFinal`.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    run(|| module()?.find_final(hSession))
}

/// `C_GetAttributeValue`, with the per-attribute rules of §5.7: every
/// attribute is processed; sensitive, unknown and too-small ones get
/// `CK_UNAVAILABLE_INFORMATION` and set the return code.
#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let module = module()?;
        // SAFETY: pTemplate holds ulCount attributes, per PKCS#11.
        let template = unsafe { items_mut(pTemplate, ulCount)? };
        // The template is answered in place, one attribute after the other:
        // nothing as long as the caller's count is allocated.
        let wants_value = template
            .iter()
            .any(|attribute| attribute.type_ == CKA_VALUE);
        module.with_object(hSession, hObject, wants_value, |object| {
            let mut rv = CKR_OK;
            for attribute in template.iter_mut() {
                if let Some(code) = answer_attribute(attribute, object.attribute(attribute.type_))?
                {
                    rv = code;
                }
            }
            Ok(rv)
        })?
    })
}

/// Fills one attribute of a `C_GetAttributeValue` template; the code it
/// sets for the whole call, if any (§5.7: every attribute is processed).
fn answer_attribute(
    attribute: &mut CK_ATTRIBUTE,
    value: Option<&AttrValue>,
) -> p11card::Result<Option<CK_RV>> {
    match value {
        None => {
            attribute.ulValueLen = UNAVAILABLE;
            Ok(Some(CKR_ATTRIBUTE_TYPE_INVALID))
        }
        Some(AttrValue::Sensitive) => {
            attribute.ulValueLen = UNAVAILABLE;
            Ok(Some(CKR_ATTRIBUTE_SENSITIVE))
        }
        Some(AttrValue::Bytes(bytes)) => {
            if attribute.pValue.is_null() {
                attribute.ulValueLen = bytes.len() as CK_ULONG;
                Ok(None)
            } else if length(attribute.ulValueLen)? >= bytes.len() {
                // SAFETY: pValue has room for ulValueLen >= len bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        attribute.pValue as *mut u8,
                        bytes.len(),
                    )
                };
                attribute.ulValueLen = bytes.len() as CK_ULONG;
                Ok(None)
            } else {
                attribute.ulValueLen = UNAVAILABLE;
                Ok(Some(CKR_BUFFER_TOO_SMALL))
            }
        }
    }
}

/// `C_GetObjectSize`.
#[no_mangle]
pub unsafe extern "C" fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: *mut CK_ULONG,
) -> CK_RV {
    run(|| {
        let module = module()?;
        if pulSize.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let size = module.object_size(hSession, hObject)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(pulSize, size as CK_ULONG) }
    })
}

/// `C_DestroyObject`: destroys a session object (a derived key); token
/// objects are not destroyable (`CKR_ACTION_PROHIBITED`).
#[no_mangle]
pub unsafe extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    run(|| module()?.destroy_object(hSession, hObject))
}
