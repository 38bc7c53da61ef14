//! Which key and mechanism serve which purpose: the checks every
//! cryptographic operation's `Init` makes, and the token's mechanism list.

use super::{find_object, key_of, Module, SlotState};
use crate::error::{Error, Result};
use crate::mechanism::{self, host, Mechanism, Purpose};
use crate::token::Object;
use crate::token::ObjectKind;
use cryptoki_sys::*;

/// The key object behind `handle` for an operation's `Init`: a handle that
/// names no visible object is `CKR_KEY_HANDLE_INVALID`, an object of
/// another kind than `kinds` `CKR_KEY_TYPE_INCONSISTENT`.
pub(super) fn key_object<'a>(
    state: &'a SlotState,
    handle: CK_OBJECT_HANDLE,
    kinds: &[ObjectKind],
) -> Result<&'a Object> {
    let object = find_object(state, handle).map_err(|_| Error::KeyHandleInvalid)?;
    if !kinds.contains(&object.kind) {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(object)
}

/// The index of the private key behind `handle`, if it may serve `purpose`
/// with `mechanism` in the current login state (checks in the order
/// PKCS#11 §5.x lists their return codes).
pub(super) fn private_key_for(
    state: &SlotState,
    handle: CK_OBJECT_HANDLE,
    mechanism: &Mechanism,
    purpose: Purpose,
) -> Result<usize> {
    let object = key_object(state, handle, &[ObjectKind::PrivateKey])?;
    let info = key_of(state, object.key_index)?;
    let permitted = match purpose {
        Purpose::Sign => info.can_sign,
        Purpose::Decrypt => info.can_decrypt,
        Purpose::Derive => info.can_derive,
        Purpose::Verify | Purpose::Encrypt => false,
    };
    if !permitted {
        return Err(Error::KeyFunctionNotPermitted);
    }
    host::check_fits(mechanism, info, purpose)?;
    // A key wanting the PIN right before each use gets it through the
    // context-specific login instead.
    let context_login = info.always_authenticate && purpose != Purpose::Derive;
    if !info.no_pin && !context_login && !state.logged_in() {
        return Err(Error::UserNotLoggedIn);
    }
    Ok(object.key_index)
}

/// Whether the mechanism is one for `purpose` at all.
pub(super) fn serves(mechanism: &Mechanism, purpose: Purpose) -> bool {
    mechanism.spec().is_some_and(|spec| spec.serves(purpose))
}

impl Module {
    /// The mechanisms of the token in `slot`: those its keys allow, and the
    /// digests. An empty slot is `CKR_TOKEN_NOT_PRESENT`, a card no profile
    /// knows `CKR_TOKEN_NOT_RECOGNIZED` (PKCS#11 3.0 §5.5).
    pub(super) fn token_mechanisms(
        &self,
        slot: &super::Slot,
    ) -> Result<Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)>> {
        let mut state = self.token_state(slot)?;
        super::ensure_all_keys(&mut state)?;
        let token = state.token.as_ref().ok_or(Error::TokenNotPresent)?;
        Ok(mechanism::for_keys(&token.info.keys))
    }
}
