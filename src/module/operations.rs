//! Cryptographic operations of a session: decryption and key agreement on
//! the card; encryption and digests in software; the session objects
//! `C_DeriveKey` makes; which key and mechanism serve which purpose
//! (signatures are in `signing`).

use super::{find_object, key_of, note_lost_login, private_key_operation, Module, SlotState};
use crate::card::Entry;
use crate::crypto::Hasher;
use crate::error::{Error, Result};
use crate::mechanism::{self, host, Mechanism, Purpose};
use crate::session::{DecryptOp, DigestOp, EncryptOp, Fed, OperationKind, Output, Session, Stage};
use crate::token::{self, AttrValue, Object, ObjectKind, SecretKeyTemplate};
use cryptoki_sys::*;
use std::sync::atomic::{AtomicU64, Ordering};
use zeroize::Zeroizing;

/// Handles of session objects: a range of their own, never 0, never equal
/// to a token object's handle (those are below `(slots + 1) << 16`).
static NEXT_SESSION_OBJECT: AtomicU64 = AtomicU64::new(0x7F00_0001);

/// A token object this process may see, or one of the session's objects.
pub(super) fn any_object<'a>(
    session: &'a Session,
    state: &'a SlotState,
    handle: CK_OBJECT_HANDLE,
) -> Result<&'a Object> {
    find_object(state, handle).or_else(|_| {
        session
            .objects
            .iter()
            .find(|object| object.handle == handle)
            .ok_or(Error::ObjectHandleInvalid)
    })
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
    let object = find_object(state, handle).map_err(|_| Error::KeyHandleInvalid)?;
    if object.kind != ObjectKind::PrivateKey {
        return Err(Error::KeyTypeInconsistent);
    }
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

    // ----- decryption (card) and encryption (software) ---------------------

    /// `C_DecryptInit`.
    pub fn decrypt_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            let abandoned = |op: &DecryptOp| {
                op.result.is_none()
                    && super::signing::awaits_context_login(
                        state,
                        op.key_index,
                        Stage::Fresh,
                        &op.context_pin,
                    )
            };
            if session.decrypt.as_ref().is_some_and(|op| !abandoned(op)) {
                return Err(Error::OperationActive);
            }
            if !serves(&mechanism, Purpose::Decrypt) {
                return Err(Error::MechanismInvalid);
            }
            let key_index = private_key_for(state, key, &mechanism, Purpose::Decrypt)?;
            session.decrypt = Some(DecryptOp {
                key_index,
                mechanism,
                context_pin: None,
                result: None,
            });
            Ok(())
        })
    }

    /// `C_Decrypt` (single part). The card decrypts once per operation: a
    /// length query answers the modulus length without it, and a result
    /// too long for the caller's room is kept for the next call. The
    /// padding is removed in constant time and checked before the room, and
    /// every bad padding (PKCS #1 v1.5 here or in the engine, OAEP) ends as
    /// the same `CKR_ENCRYPTED_DATA_INVALID`: `CKR_BUFFER_TOO_SMALL` comes
    /// only for a valid block. Any other outcome ends the operation.
    pub fn decrypt(
        &self,
        handle: CK_SESSION_HANDLE,
        ciphertext: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        self.with_session(handle, |session, state, _| {
            session.step(OperationKind::Decrypt, |session| {
                self.decrypt_step(session, state, ciphertext, capacity)
            })
        })
    }

    fn decrypt_step(
        &self,
        session: &mut Session,
        state: &mut SlotState,
        ciphertext: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        let op = session
            .decrypt
            .as_mut()
            .ok_or(Error::OperationNotInitialized)?;
        let key = key_of(state, op.key_index)?.clone();
        let k = key.public_key.signature_len();
        if op.result.is_none() {
            if capacity.is_none() {
                // Length query before the card has done anything: the
                // plaintext is at most the modulus length.
                return Ok(Output::Length(k));
            }
            if ciphertext.len() != k {
                return Err(Error::EncryptedDataLenRange);
            }
            let pin = self.context_pin(&key, op.context_pin.take(), state)?;
            let card_unpads = host::card_unpads(&op.mechanism, &key);
            let pin = pin.as_deref().map(|pin| &pin[..]);
            let raw = private_key_operation(state, &key, pin, Entry::Select, |app, card, proof| {
                if card_unpads {
                    app.decrypt_pkcs1(card, &key, ciphertext, proof)
                } else {
                    app.decrypt_raw(card, &key, ciphertext, proof)
                }
            })
            .map_err(|err| note_lost_login(state, err))?;
            let plain = host::decrypted_message(&op.mechanism, &key, raw);
            op.result = Some(plain.ok_or(Error::EncryptedDataInvalid)?);
        }
        let needed = op.result.as_ref().map_or(0, |r| r.len());
        if let Some(early) = Output::check(needed, capacity) {
            return Ok(early);
        }
        Ok(Output::Done(op.result.take().unwrap_or_default()))
    }

    /// `C_DecryptUpdate` and `C_DecryptFinal`: the module's decryption
    /// mechanisms (RSA) are single-part only, so an active decryption ends
    /// with `CKR_FUNCTION_NOT_SUPPORTED`.
    pub fn decrypt_multi_part(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.single_part_only(handle, OperationKind::Decrypt)
    }

    /// `C_EncryptUpdate` and `C_EncryptFinal`: as for decryption.
    pub fn encrypt_multi_part(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.single_part_only(handle, OperationKind::Encrypt)
    }

    fn single_part_only(&self, handle: CK_SESSION_HANDLE, kind: OperationKind) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            session.step(kind, |session| {
                let active = match kind {
                    OperationKind::Decrypt => session.decrypt.is_some(),
                    OperationKind::Encrypt => session.encrypt.is_some(),
                    _ => false,
                };
                if !active {
                    return Err(Error::OperationNotInitialized);
                }
                Err(Error::FunctionNotSupported)
            })
        })
    }

    /// Ends the session's operation of this kind, if one is active: for a
    /// call the C ABI refused before it reached the module (a bad pointer),
    /// which ends the operation like any other error.
    pub fn end_operation(&self, handle: CK_SESSION_HANDLE, kind: OperationKind) {
        let _ = self.with_session(handle, |session, _, _| {
            session.end(kind);
            Ok(())
        });
    }

    /// `C_EncryptInit` (RSA public key, software).
    pub fn encrypt_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            if session.encrypt.is_some() {
                return Err(Error::OperationActive);
            }
            let object = find_object(state, key).map_err(|_| Error::KeyHandleInvalid)?;
            if object.kind != ObjectKind::PublicKey {
                return Err(Error::KeyTypeInconsistent);
            }
            let key_index = object.key_index;
            if !serves(&mechanism, Purpose::Encrypt) {
                return Err(Error::MechanismInvalid);
            }
            host::check_fits(&mechanism, key_of(state, key_index)?, Purpose::Encrypt)?;
            session.encrypt = Some(EncryptOp {
                key_index,
                mechanism,
            });
            Ok(())
        })
    }

    /// `C_Encrypt` (single part); ends the operation unless it answers a
    /// length query or `CKR_BUFFER_TOO_SMALL`.
    pub fn encrypt(
        &self,
        handle: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        self.with_session(handle, |session, state, _| {
            session.step(OperationKind::Encrypt, |session| {
                let op = session
                    .encrypt
                    .as_ref()
                    .ok_or(Error::OperationNotInitialized)?;
                let key = &key_of(state, op.key_index)?.public_key;
                let k = key.signature_len();
                if let Some(early) = Output::check(k, capacity) {
                    return Ok(early);
                }
                host::encrypt(&op.mechanism, key, data)
                    .map(|r| Output::Done(Zeroizing::new(r)))
                    .ok_or(Error::DataLenRange)
            })
        })
    }

    // ----- key agreement (card) -------------------------------------------

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
        self.with_session(handle, |session, state, _| {
            let Mechanism::Ecdh1Derive { public_data } = &mechanism else {
                return Err(Error::MechanismInvalid);
            };
            let object = find_object(state, base).map_err(|_| Error::KeyHandleInvalid)?;
            if object.kind != ObjectKind::PrivateKey {
                return Err(Error::KeyTypeInconsistent);
            }
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
            let secret =
                private_key_operation(state, &key, None, Entry::Select, |app, card, proof| {
                    app.derive(card, &key, public_data, proof)
                })
                .map_err(|err| match err {
                    Error::EncryptedDataInvalid => Error::MechanismParamInvalid,
                    other => note_lost_login(state, other),
                })?;
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

    // ----- digests -------------------------------------------------------

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

/// Whether the mechanism is one for `purpose` at all.
fn serves(mechanism: &Mechanism, purpose: Purpose) -> bool {
    mechanism.spec().is_some_and(|spec| spec.serves(purpose))
}
