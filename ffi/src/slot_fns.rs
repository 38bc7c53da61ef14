//! Slot and token management (PKCS#11 §5.5).

use crate::abi::{guard, length, module, run, write_out};
use cryptoki_sys::*;
use p11card::Error;

/// Writes `items` with the two-call convention: NULL buffer → count only;
/// short buffer → `CKR_BUFFER_TOO_SMALL` with the count.
///
/// # Safety
/// `count` must be NULL or valid for reading and writing; `buffer` must be
/// NULL or hold `*count` elements.
pub(crate) unsafe fn write_list<T: Copy>(
    items: &[T],
    buffer: *mut T,
    count: *mut CK_ULONG,
) -> p11card::Result<CK_RV> {
    if count.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: checked non-NULL.
    let room = length(unsafe { count.read_unaligned() })?;
    // SAFETY: as above.
    unsafe { count.write_unaligned(items.len() as CK_ULONG) };
    if buffer.is_null() {
        return Ok(CKR_OK);
    }
    if room < items.len() {
        return Ok(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: the caller's buffer holds `room >= items.len()` elements.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), buffer, items.len()) };
    Ok(CKR_OK)
}

/// `C_GetSlotList`.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(
    tokenPresent: CK_BBOOL,
    pSlotList: *mut CK_SLOT_ID,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let module = module()?;
        if pulCount.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let slots = module.slot_list(tokenPresent != CK_FALSE, pSlotList.is_null())?;
        // SAFETY: pointers as PKCS#11 defines them; checked in write_list.
        unsafe { write_list(&slots, pSlotList, pulCount) }
    })
}

/// `C_GetSlotInfo`.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_SLOT_INFO) -> CK_RV {
    run(|| {
        let info = module()?.slot_info(slotID)?;
        // SAFETY: pInfo points to a CK_SLOT_INFO; NULL is checked.
        unsafe { write_out(pInfo, info) }
    })
}

/// `C_GetTokenInfo`.
#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_TOKEN_INFO) -> CK_RV {
    run(|| {
        let module = module()?;
        if pInfo.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let info = module.token_info(slotID)?;
        // SAFETY: pInfo points to a CK_TOKEN_INFO; NULL is checked.
        unsafe { write_out(pInfo, info) }
    })
}

/// `C_GetMechanismList`.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: *mut CK_MECHANISM_TYPE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let mechanisms = module()?.mechanism_list(slotID)?;
        // SAFETY: pointers as PKCS#11 defines them; checked in write_list.
        unsafe { write_list(&mechanisms, pMechanismList, pulCount) }
    })
}

/// `C_GetMechanismInfo`.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    run(|| {
        let info = module()?.mechanism_info(slotID, type_)?;
        // SAFETY: pInfo points to a CK_MECHANISM_INFO; NULL is checked.
        unsafe { write_out(pInfo, info) }
    })
}

/// `C_WaitForSlotEvent`: blocking, or with `CKF_DONT_BLOCK`. A blocked call
/// returns `CKR_CRYPTOKI_NOT_INITIALIZED` when another thread finalises.
#[no_mangle]
pub unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    pSlot: *mut CK_SLOT_ID,
    pReserved: *mut std::ffi::c_void,
) -> CK_RV {
    guard(|| {
        let module = module()?;
        if pSlot.is_null() || !pReserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        match module.wait_for_slot_event(flags & CKF_DONT_BLOCK == 0)? {
            Some(slot) => {
                // SAFETY: pSlot is non-NULL and points to a CK_SLOT_ID.
                unsafe { write_out(pSlot, slot)? };
                Ok(CKR_OK)
            }
            None => Ok(CKR_NO_EVENT),
        }
    })
}
