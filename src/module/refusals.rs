//! What a card token refuses: new objects, changed attributes, copies, and
//! key generation, wrapping and unwrapping, recovering signatures. Each
//! call still answers the code PKCS#11 gives for the first check that
//! fails, in the spec's order: the session handle, then the object handle,
//! then a read-only session asked for a token object
//! (`CKR_SESSION_READ_ONLY`), then the mechanism or the object's own
//! attributes; only then "the token does not do this"
//! (`CKR_FUNCTION_NOT_SUPPORTED`, as OpenSC answers on the same card).

use super::{objects::any_object, Module};
use crate::error::{Error, Result};
use crate::token::{AttrValue, Object};
use cryptoki_sys::*;

/// A caller's template as `(type, value)` pairs.
type Template = [(CK_ATTRIBUTE_TYPE, Vec<u8>)];

/// A `CK_BBOOL` value is true (any byte not zero).
fn is_true(value: &[u8]) -> bool {
    value.iter().any(|&b| b != 0)
}

/// The template asks for a token object (`CKA_TOKEN` true).
fn wants_token_object(template: &Template) -> bool {
    template
        .iter()
        .any(|(kind, value)| *kind == CKA_TOKEN && is_true(value))
}

/// The object is a token object (the card's), not a session object.
fn on_token(object: &Object) -> bool {
    matches!(object.attribute(CKA_TOKEN), Some(AttrValue::Bytes(value)) if is_true(value))
}

impl Module {
    /// Refuses a call that would write a token object in a read-only
    /// session; `Ok` otherwise (the session exists).
    fn writable_for(&self, handle: CK_SESSION_HANDLE, token_object: bool) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            if token_object && !session.read_write {
                return Err(Error::SessionReadOnly);
            }
            Ok(())
        })
    }

    /// `C_CreateObject`: the card takes no new objects.
    pub fn create_object(
        &self,
        handle: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<()> {
        self.writable_for(handle, wants_token_object(template))?;
        Err(Error::FunctionNotSupported)
    }

    /// `C_SetAttributeValue`: every object is `CKA_MODIFIABLE` false
    /// (`CKR_ACTION_PROHIBITED`, PKCS#11 3.0 §4.4).
    pub fn set_attributes(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            let object = any_object(session, state, object)?;
            if on_token(object) && !session.read_write {
                return Err(Error::SessionReadOnly);
            }
            Err(Error::ActionProhibited)
        })
    }

    /// `C_CopyObject`: every object is `CKA_COPYABLE` false
    /// (`CKR_ACTION_PROHIBITED`).
    pub fn copy_object(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            let object = any_object(session, state, object)?;
            let token_copy = match template.iter().find(|(kind, _)| *kind == CKA_TOKEN) {
                Some((_, value)) => is_true(value),
                None => on_token(object),
            };
            if token_copy && !session.read_write {
                return Err(Error::SessionReadOnly);
            }
            Err(Error::ActionProhibited)
        })
    }

    /// `C_GenerateKey`, `C_GenerateKeyPair`, `C_UnwrapKey`: no mechanism
    /// of this token makes or imports keys (`CKR_MECHANISM_INVALID`, after
    /// a read-only session asked for a token key).
    pub fn make_key(
        &self,
        handle: CK_SESSION_HANDLE,
        templates: &[&[(CK_ATTRIBUTE_TYPE, Vec<u8>)]],
    ) -> Result<()> {
        let token_object = templates
            .iter()
            .any(|template| wants_token_object(template));
        self.writable_for(handle, token_object)?;
        Err(Error::MechanismInvalid)
    }

    /// `C_WrapKey`, `C_SignRecoverInit`, `C_VerifyRecoverInit`: no
    /// mechanism of this token does these (`CKR_MECHANISM_INVALID`).
    pub fn no_such_mechanism(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.writable_for(handle, false)?;
        Err(Error::MechanismInvalid)
    }

    /// `C_SignRecover`, `C_VerifyRecover`: since their Init never succeeds,
    /// no such operation is ever active.
    pub fn no_such_operation(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.writable_for(handle, false)?;
        Err(Error::OperationNotInitialized)
    }
}
