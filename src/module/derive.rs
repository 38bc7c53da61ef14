//! Key derivation (PKCS#11 §5.18): `C_DeriveKey` has the card compute an
//! ECDH shared secret, kept as a session secret key; `C_DestroyObject`
//! removes such session objects.

use super::key_use::key_object;
use super::{
    audit_key, audit_result, find_object, key_of, note_lost_login, private_key_operation, Module,
};
use crate::card::Entry;
use crate::error::{Error, Result};
use crate::mechanism::{host, Mechanism, Purpose};
use crate::token::{self, ObjectKind, SecretKeyTemplate};
use cryptoki_sys::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// Handles of session objects: a range of their own, never 0, never equal
/// to a token object's handle (those are below `(slots + 1) << 16`).
static NEXT_SESSION_OBJECT: AtomicU64 = AtomicU64::new(0x7F00_0001);

impl Module {
    /// `C_DeriveKey` with `CKM_ECDH1_DERIVE`: the card computes the shared
    /// secret with `base` and the peer's point; the result is a session
    /// secret key (`CKK_GENERIC_SECRET` unless the template says otherwise)
    /// whose `CKA_VALUE` the caller may read unless it asked for a
    /// sensitive or non-extractable key.
    pub fn derive_key(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        base: CK_OBJECT_HANDLE,
        template: SecretKeyTemplate,
    ) -> Result<CK_OBJECT_HANDLE> {
        self.with_session(handle, |session, state, slot| {
            let Mechanism::Ecdh1Derive { public_data } = &mechanism else {
                return Err(Error::MechanismInvalid);
            };
            let object = key_object(state, base, &[ObjectKind::PrivateKey])?;
            let key = key_of(state, object.key_index)?.clone();
            if !mechanism
                .spec()
                .is_some_and(|spec| spec.family.fits(&key.public_key))
            {
                return Err(Error::KeyTypeInconsistent);
            }
            if !key.can_derive {
                return Err(Error::KeyFunctionNotPermitted);
            }
            host::check_fits(&mechanism, &key, Purpose::Derive)?;
            if !key.no_pin && !state.logged_in() {
                return Err(Error::UserNotLoggedIn);
            }
            let derived =
                private_key_operation(state, &key, None, Entry::Select, |app, card, proof| {
                    app.derive(card, &key, public_data, proof)
                })
                .map_err(|err| match err {
                    Error::EncryptedDataInvalid => Error::MechanismParamInvalid,
                    other => note_lost_login(state, other),
                });
            self.audit(slot, state, "derive", || {
                let mut fields = audit_key(&key);
                fields.push(("mechanism", format!("{:#x}", mechanism.kind())));
                fields.push(("result", audit_result(&derived)));
                fields
            });
            let secret = derived?;
            if template
                .value_len
                .is_some_and(|len| len == 0 || len > secret.len())
            {
                return Err(Error::TemplateInconsistent);
            }
            let handle = NEXT_SESSION_OBJECT.fetch_add(1, Ordering::SeqCst) as CK_OBJECT_HANDLE;
            session
                .objects
                .push(token::secret_key_object(handle, &template, &secret));
            Ok(handle)
        })
    }

    /// `C_DestroyObject`: session objects go; token objects cannot
    /// (`CKA_DESTROYABLE` is false on them).
    pub fn destroy_object(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            if let Some(position) = session.objects.iter().position(|o| o.handle == object) {
                session.objects.remove(position);
                return Ok(());
            }
            find_object(state, object)?;
            Err(Error::ActionProhibited)
        })
    }
}
