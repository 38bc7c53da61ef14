//! Message digests (PKCS#11 §5.10), computed in software; `C_DigestKey`
//! takes the value of a session secret key.

use super::objects::any_object;
use super::Module;
use crate::crypto::Hasher;
use crate::error::{Error, Result};
use crate::mechanism::Mechanism;
use crate::session::{DigestOp, Fed, OperationKind, Output, Stage};
use crate::token::{AttrValue, ObjectKind};
use cryptoki_sys::*;
use zeroize::Zeroizing;

impl Module {
    /// `C_DigestInit`.
    pub fn digest_init(&self, handle: CK_SESSION_HANDLE, mechanism: Mechanism) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            if session.digest.is_some() {
                return Err(Error::OperationActive);
            }
            let Mechanism::Digest(alg) = mechanism else {
                return Err(Error::MechanismInvalid);
            };
            session.digest = Some(DigestOp {
                alg,
                hasher: Hasher::new(alg),
                stage: Stage::Fresh,
            });
            Ok(())
        })
    }

    /// `C_Digest`; ends the operation unless it answers a length query or
    /// `CKR_BUFFER_TOO_SMALL`.
    pub fn digest(
        &self,
        handle: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        self.with_session(handle, |session, _, _| {
            session.step(OperationKind::Digest, |session| {
                let op = session
                    .digest
                    .as_mut()
                    .ok_or(Error::OperationNotInitialized)?;
                if op.stage != Stage::Fresh {
                    return Err(Error::OperationActive);
                }
                if let Some(early) = Output::check(op.alg.output_len(), capacity) {
                    return Ok(early);
                }
                let mut op = session
                    .digest
                    .take()
                    .ok_or(Error::OperationNotInitialized)?;
                op.hasher.update(data);
                Ok(Output::Done(Zeroizing::new(op.hasher.finish())))
            })
        })
    }

    /// `C_DigestUpdate`.
    pub fn digest_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            session.step(OperationKind::Digest, |session| {
                let op = session
                    .digest
                    .as_mut()
                    .ok_or(Error::OperationNotInitialized)?;
                op.stage = Stage::MultiPart;
                op.hasher.update(data);
                Ok(Fed)
            })
        })
        .map(|Fed| ())
    }

    /// `C_DigestKey`: feeds the value of a secret key (a session key from
    /// `C_DeriveKey`) to the digest; other keys are
    /// `CKR_KEY_INDIGESTIBLE`. An error ends the operation.
    pub fn digest_key(&self, handle: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            session.step(OperationKind::Digest, |session| {
                if session.digest.is_none() {
                    return Err(Error::OperationNotInitialized);
                }
                let object =
                    any_object(session, state, key).map_err(|_| Error::KeyHandleInvalid)?;
                let value = match (object.kind, object.attribute(CKA_VALUE)) {
                    (ObjectKind::SecretKey, Some(AttrValue::Bytes(value))) => {
                        Zeroizing::new(value.clone())
                    }
                    _ => return Err(Error::KeyIndigestible),
                };
                let op = session
                    .digest
                    .as_mut()
                    .ok_or(Error::OperationNotInitialized)?;
                op.stage = Stage::MultiPart;
                op.hasher.update(&value);
                Ok(Fed)
            })
        })
        .map(|Fed| ())
    }

    /// `C_DigestFinal`; ends the operation as `C_Digest` does.
    pub fn digest_final(
        &self,
        handle: CK_SESSION_HANDLE,
        capacity: Option<usize>,
    ) -> Result<Output> {
        self.with_session(handle, |session, _, _| {
            session.step(OperationKind::Digest, |session| {
                let op = session
                    .digest
                    .as_ref()
                    .ok_or(Error::OperationNotInitialized)?;
                if let Some(early) = Output::check(op.alg.output_len(), capacity) {
                    return Ok(early);
                }
                let op = session
                    .digest
                    .take()
                    .ok_or(Error::OperationNotInitialized)?;
                Ok(Output::Done(Zeroizing::new(op.hasher.finish())))
            })
        })
    }
}
