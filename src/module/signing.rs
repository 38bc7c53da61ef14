//! Signatures (PKCS#11 §5.12–5.13): made by the card and checked with the
//! key's public key before the caller sees them; verification in software.

use super::key_use::{key_object, private_key_for};
use super::{
    audit_key, audit_result, card_operation, key_of, note_lost_login, private_key_operation,
    Module, Slot, SlotState,
};
use crate::card::Entry;
use crate::cert::PublicKey;
use crate::crypto;
use crate::error::{Error, Result};
use crate::mechanism::{host, Mechanism, Purpose};
use crate::profile::{AppError, KeyInfo, NoRecall, SignInput};
use crate::session::{Fed, OpInput, OperationKind, Output, Session, SignOp, Stage, VerifyOp};
use crate::token::{self, ObjectKind};
use cryptoki_sys::*;
use std::cell::Cell;
use zeroize::Zeroizing;

impl Module {
    // ----- signing -------------------------------------------------------

    /// `C_SignInit`.
    pub fn sign_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            if session.sign.as_ref().is_some_and(|op| {
                !awaits_context_login(state, op.key_index, op.stage, &op.context_pin)
            }) {
                return Err(Error::OperationActive);
            }
            let key_index = private_key_for(state, key, &mechanism, Purpose::Sign)?;
            session.sign = Some(SignOp {
                key_index,
                input: OpInput::for_mechanism(&mechanism),
                mechanism,
                stage: Stage::Fresh,
                context_pin: None,
            });
            Ok(())
        })
    }

    /// `C_Sign` (single part) with `capacity` bytes of output room (`None` =
    /// length query). Ends the operation unless it answers a length query
    /// or `CKR_BUFFER_TOO_SMALL`, a refusal for want of the context login
    /// included (PKCS#11 3.0 §5.13).
    pub fn sign(
        &self,
        handle: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        self.with_session(handle, |session, state, slot| {
            session.step(OperationKind::Sign, |session| {
                let op = session
                    .sign
                    .as_mut()
                    .ok_or(Error::OperationNotInitialized)?;
                if op.stage != Stage::Fresh {
                    return Err(Error::OperationActive);
                }
                let key = key_of(state, op.key_index)?;
                if let Some(early) = Output::check(key.public_key.signature_len(), capacity) {
                    return Ok(early);
                }
                if !op.input.update(data) {
                    return Err(Error::DataLenRange);
                }
                self.finish_sign(session, state, slot)
            })
        })
    }

    /// `C_SignUpdate`; an error ends the operation.
    pub fn sign_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            session.step(OperationKind::Sign, |session| {
                let op = session
                    .sign
                    .as_mut()
                    .ok_or(Error::OperationNotInitialized)?;
                op.stage = Stage::MultiPart;
                if !op.input.update(data) {
                    return Err(Error::DataLenRange);
                }
                Ok(Fed)
            })
        })
        .map(|Fed| ())
    }

    /// `C_SignFinal`: ends the operation as `C_Sign` does.
    pub fn sign_final(&self, handle: CK_SESSION_HANDLE, capacity: Option<usize>) -> Result<Output> {
        self.with_session(handle, |session, state, slot| {
            session.step(OperationKind::Sign, |session| {
                let op = session
                    .sign
                    .as_ref()
                    .ok_or(Error::OperationNotInitialized)?;
                let needed = key_of(state, op.key_index)?.public_key.signature_len();
                if let Some(early) = Output::check(needed, capacity) {
                    return Ok(early);
                }
                self.finish_sign(session, state, slot)
            })
        })
    }

    // ----- verification (software) ---------------------------------------

    /// `C_VerifyInit`: with the public key (or the private key's public part).
    pub fn verify_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            if session.verify.is_some() {
                return Err(Error::OperationActive);
            }
            let object = key_object(state, key, &[ObjectKind::PublicKey, ObjectKind::PrivateKey])?;
            let key_index = object.key_index;
            host::check_fits(&mechanism, key_of(state, key_index)?, Purpose::Verify)?;
            session.verify = Some(VerifyOp {
                key_index,
                input: OpInput::for_mechanism(&mechanism),
                mechanism,
                stage: Stage::Fresh,
            });
            Ok(())
        })
    }

    /// `C_Verify`: the verdict ends the operation.
    pub fn verify(&self, handle: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            session.step(OperationKind::Verify, |session| {
                let op = session
                    .verify
                    .as_mut()
                    .ok_or(Error::OperationNotInitialized)?;
                if op.stage != Stage::Fresh {
                    return Err(Error::OperationActive);
                }
                if !op.input.update(data) {
                    return Err(Error::DataLenRange);
                }
                let op = session
                    .verify
                    .take()
                    .ok_or(Error::OperationNotInitialized)?;
                check_signature(state, op, signature)
            })
        })
    }

    /// `C_VerifyUpdate`; an error ends the operation.
    pub fn verify_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            session.step(OperationKind::Verify, |session| {
                let op = session
                    .verify
                    .as_mut()
                    .ok_or(Error::OperationNotInitialized)?;
                op.stage = Stage::MultiPart;
                if !op.input.update(data) {
                    return Err(Error::DataLenRange);
                }
                Ok(Fed)
            })
        })
        .map(|Fed| ())
    }

    /// `C_VerifyFinal`: the verdict ends the operation.
    pub fn verify_final(&self, handle: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            session.step(OperationKind::Verify, |session| {
                let op = session
                    .verify
                    .take()
                    .ok_or(Error::OperationNotInitialized)?;
                check_signature(state, op, signature)
            })
        })
    }

    /// Makes the signature the session's operation asks for (the operation
    /// ends here, whatever the outcome).
    fn finish_sign(
        &self,
        session: &mut Session,
        state: &mut SlotState,
        slot: &Slot,
    ) -> Result<Output> {
        let op = session.sign.take().ok_or(Error::OperationNotInitialized)?;
        let key = key_of(state, op.key_index)?.clone();
        let SignOp {
            key_index,
            mechanism,
            input,
            context_pin,
            ..
        } = op;
        let signed = self
            .context_pin(&key, context_pin, state)
            .and_then(|pin| sign_on_card(state, key_index, &key, &mechanism, input, pin));
        self.audit(slot, state, "sign", || {
            let mut fields = audit_key(&key);
            fields.push(("mechanism", format!("{:#x}", mechanism.kind())));
            fields.push(("result", audit_result(&signed)));
            fields
        });
        signed
    }
}

/// Whether an active operation is one a program gave up on before it
/// began: its key wants the context-specific login, which has not come,
/// and nothing was fed to it. `ssh-agent` (OpenSSH 9.2) calls `C_SignInit`
/// on such a key, cannot ask for the PIN, and goes on to its next key
/// without ending the operation; a new Init takes the place of such an
/// operation instead of failing with `CKR_OPERATION_ACTIVE` (as OpenSC's
/// module also fails), which would leave the program no key at all.
pub(super) fn awaits_context_login(
    state: &SlotState,
    key_index: usize,
    stage: Stage,
    context_pin: &Option<Zeroizing<Vec<u8>>>,
) -> bool {
    stage == Stage::Fresh
        && context_pin.is_none()
        && key_of(state, key_index).is_ok_and(|key| key.always_authenticate)
}

/// Signs `input` (fed to an operation with `mechanism`) with `key` on the
/// card, the key's context PIN first when it has one, and checks the
/// signature before handing it out.
fn sign_on_card(
    state: &mut SlotState,
    op_key_index: usize,
    key: &KeyInfo,
    mechanism: &Mechanism,
    input: OpInput,
    context_pin: Option<Zeroizing<Vec<u8>>>,
) -> Result<Output> {
    let counted = key.counts_signatures;
    let prepared = host::card_sign_input(mechanism, key, input.finish())?;
    let request = prepared.request();
    // Every signature is checked with the key's public key before the
    // caller sees it (a faulty card, another application that answered in
    // this one's place, a stale cache entry). Without a SELECT first (the
    // card layer's saving, also right after the context VERIFY), a
    // signature that does not verify is taken as another application's
    // answer: SELECT and the full sequence follow once, in the same
    // transaction.
    let wrong_signature = Cell::new(false);
    let context_pin = context_pin.as_deref().map(|pin| &pin[..]);
    let signature = private_key_operation(
        state,
        key,
        context_pin,
        Entry::MayResume,
        |app, card, proof| {
            let signature = app.sign(card, key, request, proof)?;
            let fits = signature_fits(&key.public_key, &request, &signature);
            wrong_signature.set(!fits);
            if fits {
                Ok(signature)
            } else {
                Err(AppError::WrongSignature)
            }
        },
    );
    let signature = match signature {
        Ok(signature) => signature,
        // A key whose public data came from the disk cache and whose
        // signature does not verify (or fails otherwise): the card's key
        // changed.
        Err(Error::DeviceError) if key.recalled => return Err(drop_stale_cache(state)),
        Err(Error::DeviceError) if wrong_signature.get() => {
            return Err(recheck_public_key(state, key))
        }
        Err(err) => return Err(note_lost_login(state, err)),
    };
    if key.recalled {
        // The first verified signature proves the cache right for the key.
        mark_proven(state, op_key_index);
    }
    if counted {
        count_signature(state);
    }
    Ok(Output::Done(Zeroizing::new(signature)))
}

/// Whether `signature` is what the card should have answered to `request`
/// under `key`: the one place where the module checks a card's signature.
fn signature_fits(key: &PublicKey, request: &SignInput<'_>, signature: &[u8]) -> bool {
    match request {
        SignInput::RsaPkcs1(data) => crypto::verify_rsa_pkcs1(key, data, signature),
        // A raw RSA block (CKM_RSA_X_509, host-built PSS): the public
        // operation gives it back exactly.
        SignInput::RsaRaw(block) => {
            crypto::rsa_public_raw(key, signature).is_some_and(|recovered| recovered == *block)
        }
        SignInput::Ecdsa(hash) => crypto::verify_ecdsa(key, hash, signature),
        SignInput::EdDsa(message) => crypto::verify_eddsa(key, message, signature),
    }
}

/// A signature that does not verify even after a SELECT: the card erred,
/// or the public key this process read from it earlier is not the card's
/// (another application answered that read, or the card's contents changed
/// since). The key's public data is read from the card once more: when it
/// differs, the token ends as if the card had been pulled, so the next call
/// reads the card afresh; when it is the same, the card erred.
fn recheck_public_key(state: &mut SlotState, key: &KeyInfo) -> Error {
    let on_card = card_operation(state, |app, card| {
        let mut info = app.read_card(card, &NoRecall)?;
        if !info.keys_complete {
            info.keys = app.read_remaining_keys(card, &info.keys, info.key_slots_read)?;
        }
        Ok(info
            .keys
            .into_iter()
            .find(|found| found.reference == key.reference)
            .map(|found| found.public_key))
    });
    match on_card {
        Ok(Some(public_key)) if public_key == key.public_key => Error::DeviceError,
        Ok(_) => {
            log::warn!(
                "the card's public key differs from the one read before; reading the card again"
            );
            state.drop_token();
            Error::DeviceRemoved
        }
        Err(err) => err,
    }
}

/// A key whose public data came from the disk cache signed and the
/// signature verified: the cache was right for that key.
fn mark_proven(state: &mut SlotState, key_index: usize) {
    if let Some(key) = state
        .token
        .as_mut()
        .and_then(|token| token.info.keys.get_mut(key_index))
    {
        key.recalled = false;
    }
}

/// The card does not hold the key its cache entry describes: the entry is
/// removed and the token ends as if the card had been pulled, so the next
/// call reads the card afresh.
fn drop_stale_cache(state: &mut SlotState) -> Error {
    log::warn!("the card's keys differ from its cache entry; reading the card again");
    if let Some(token) = state.token.as_ref() {
        token.forget_cached();
    }
    state.drop_token();
    Error::DeviceRemoved
}

/// The card counted a signature with its signature key: so does the
/// read-only counter object (OpenPGP DO `93`).
fn count_signature(state: &mut SlotState) {
    if let Some(token) = state.token.as_mut() {
        if let Some(counter) = token.info.signature_counter.as_mut() {
            *counter = counter.saturating_add(1);
            let value = *counter;
            token::set_signature_counter(&mut token.objects, value);
        }
    }
}

fn check_signature(state: &SlotState, op: VerifyOp, signature: &[u8]) -> Result<()> {
    let key = &key_of(state, op.key_index)?.public_key;
    if signature.len() != key.signature_len() {
        return Err(Error::SignatureLenRange);
    }
    let data = op.input.finish();
    let valid = host::verify(&op.mechanism, key, &data, signature)?;
    if valid {
        Ok(())
    } else {
        Err(Error::SignatureInvalid)
    }
}
