//! Login and logout (PKCS#11 §5.6): user, context-specific and SO logins.

use super::*;

impl Module {
    // ----- login ---------------------------------------------------------

    /// `C_Login`. `pin` is `None` only for a protected authentication path.
    pub fn login(
        &self,
        handle: CK_SESSION_HANDLE,
        user: CK_USER_TYPE,
        pin: Option<&[u8]>,
    ) -> Result<()> {
        self.with_session(handle, |session, state, slot| match user {
            CKU_USER => {
                if state.logged_in() {
                    return Err(Error::UserAlreadyLoggedIn);
                }
                if state.so_unblock_code.is_some() {
                    return Err(Error::UserAnotherAlreadyLoggedIn);
                }
                let verified = match pin {
                    Some(pin) => verify_user_pin(state, pin),
                    // PKCS#11 §5.6: a NULL PIN means the protected
                    // authentication path, here the reader's PIN pad.
                    None => {
                        let pin_pad = state.token.as_ref().is_some_and(|t| t.pin_pad);
                        if !pin_pad {
                            return Err(Error::ArgumentsBad);
                        }
                        verify_user_pin_on_pad(state)
                    }
                };
                self.audit_login(slot, state, "user", &verified, Vec::new());
                verified?;
                state.login.begin(pin);
                Ok(())
            }
            CKU_CONTEXT_SPECIFIC => {
                let pin = pin.ok_or(Error::ArgumentsBad)?;
                let key_index = match (&session.sign, &session.decrypt) {
                    (Some(op), _) => op.key_index,
                    (None, Some(op)) => op.key_index,
                    (None, None) => return Err(Error::OperationNotInitialized),
                };
                let key = key_of(state, key_index)?.clone();
                let verified = verify_context_pin(state, &key, pin);
                self.audit_login(slot, state, "context-specific", &verified, audit_key(&key));
                verified?;
                let pin = Some(Zeroizing::new(pin.to_vec()));
                let always = key.always_authenticate;
                if let Some(op) = session.sign.as_mut().filter(|op| op.key_index == key_index) {
                    op.context_pin = pin.filter(|_| always);
                } else if let Some(op) = session.decrypt.as_mut() {
                    op.context_pin = pin.filter(|_| always);
                }
                Ok(())
            }
            CKU_SO => {
                let code = pin.ok_or(Error::ArgumentsBad)?;
                let read_only_exists = self
                    .sessions_read()
                    .values()
                    .any(|entry| entry.slot == session.slot && !entry.read_write);
                if read_only_exists {
                    return Err(Error::SessionReadOnlyExists);
                }
                self.login_so(state, code)
            }
            _ => Err(Error::UserTypeInvalid),
        })
    }

    /// `C_Logout`: the token's login state ends and the card forgets the PIN.
    pub fn logout(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.with_session(handle, |_, state, _| {
            if state.so_unblock_code.take().is_some() {
                return Ok(());
            }
            if !state.logged_in() {
                return Err(Error::UserNotLoggedIn);
            }
            state.end_login();
            card_operation(state, |app, card| app.logout(card))
        })
    }
}

impl Module {
    /// Records a login in the audit trail: its result, and the tries the
    /// card says are left after a failure.
    fn audit_login(
        &self,
        slot: &Slot,
        state: &SlotState,
        user: &str,
        result: &Result<()>,
        mut fields: Vec<(&'static str, String)>,
    ) {
        self.audit(slot, state, "login", || {
            let mut all = vec![("user", user.to_string()), ("result", audit_result(result))];
            if result.is_err() {
                if let Some(tries) = state.token.as_ref().and_then(|t| t.pin.tries_left) {
                    all.push(("tries_left", tries.to_string()));
                }
            }
            all.append(&mut fields);
            all
        });
    }
}
