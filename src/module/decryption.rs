//! Encryption and decryption (PKCS#11 §5.8–5.9): decryption by the card,
//! encryption with the public key in software; both single-part only.

use super::key_use::{key_object, private_key_for, serves};
use super::{
    audit_key, audit_result, key_of, note_lost_login, private_key_operation, Module, Slot,
    SlotState,
};
use crate::card::Entry;
use crate::error::{Error, Result};
use crate::mechanism::{host, Mechanism, Purpose};
use crate::session::{DecryptOp, EncryptOp, OperationKind, Output, Session, Stage};
use crate::token::ObjectKind;
use cryptoki_sys::*;
use zeroize::Zeroizing;

impl Module {
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
        self.with_session(handle, |session, state, slot| {
            session.step(OperationKind::Decrypt, |session| {
                self.decrypt_step(session, state, slot, ciphertext, capacity)
            })
        })
    }

    fn decrypt_step(
        &self,
        session: &mut Session,
        state: &mut SlotState,
        slot: &Slot,
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
            let mechanism = op.mechanism.kind();
            let context_pin = op.context_pin.take();
            let card_unpads = host::card_unpads(&op.mechanism, &key);
            let decrypted = self.context_pin(&key, context_pin, state).and_then(|pin| {
                let pin = pin.as_deref().map(|pin| &pin[..]);
                private_key_operation(state, &key, pin, Entry::Select, |app, card, proof| {
                    if card_unpads {
                        app.decrypt_pkcs1(card, &key, ciphertext, proof)
                    } else {
                        app.decrypt_raw(card, &key, ciphertext, proof)
                    }
                })
                .map_err(|err| note_lost_login(state, err))
            });
            self.audit(slot, state, "decrypt", || {
                let mut fields = audit_key(&key);
                fields.push(("mechanism", format!("{mechanism:#x}")));
                fields.push(("result", audit_result(&decrypted)));
                fields
            });
            let plain = host::decrypted_message(&op.mechanism, &key, decrypted?);
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
            let object = key_object(state, key, &[ObjectKind::PublicKey])?;
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
}
