//! Objects (PKCS#11 §5.7): searching and reading the token's objects.

use super::*;

impl Module {
    // ----- objects -------------------------------------------------------

    /// `C_FindObjectsInit`.
    pub fn find_init(
        &self,
        handle: CK_SESSION_HANDLE,
        template: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
    ) -> Result<()> {
        self.with_session(handle, |session, state, _| {
            if session.find.is_some() {
                return Err(Error::OperationActive);
            }
            ensure_all_keys(state)?;
            let results = visible_objects(state)
                .chain(session.objects.iter())
                .filter(|object| object.matches(&template))
                .map(|object| object.handle)
                .collect();
            session.find = Some(FindOp {
                results,
                position: 0,
            });
            Ok(())
        })
    }

    /// `C_FindObjects`: up to `max` more handles.
    pub fn find_next(
        &self,
        handle: CK_SESSION_HANDLE,
        max: usize,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        self.with_session(handle, |session, _, _| {
            let find = session
                .find
                .as_mut()
                .ok_or(Error::OperationNotInitialized)?;
            let end = find.results.len().min(find.position.saturating_add(max));
            let batch = find.results[find.position..end].to_vec();
            find.position = end;
            Ok(batch)
        })
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.with_session(handle, |session, _, _| {
            session
                .find
                .take()
                .map(|_| ())
                .ok_or(Error::OperationNotInitialized)
        })
    }

    /// `C_GetAttributeValue`: for each type, its value, or `None` if the
    /// object has no such attribute.
    pub fn attributes(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<Option<AttrValue>>> {
        self.with_object(handle, object, types.contains(&CKA_VALUE), |object| {
            types
                .iter()
                .map(|kind| object.attribute(*kind).cloned())
                .collect()
        })
    }

    /// Lets `read` look at an object this session may see (for
    /// `C_GetAttributeValue` over a template of any length, without a copy
    /// as long as the template). With `wants_value`, a card data object's
    /// value is read from the card first if it was not yet.
    pub fn with_object<R>(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        wants_value: bool,
        read: impl FnOnce(&Object) -> R,
    ) -> Result<R> {
        self.with_session(handle, |session, state, _| {
            if wants_value {
                load_data_value(state, object)?;
            }
            any_object(session, state, object).map(read)
        })
    }

    /// `C_GetObjectSize`: the size of the object's readable attributes.
    pub fn object_size(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<usize> {
        self.with_session(handle, |session, state, _| {
            load_data_value(state, object)?;
            let object = any_object(session, state, object)?;
            let value_len = match object.attribute(CKA_VALUE) {
                Some(AttrValue::Bytes(bytes)) => bytes.len(),
                _ => 0,
            };
            Ok(value_len)
        })
    }
}

/// Reads the value of the card data object behind `handle` from the card
/// the first time it is asked for (a private one only once it is
/// visible). A card that does not give it is `CKR_DEVICE_ERROR`.
fn load_data_value(state: &mut SlotState, handle: CK_OBJECT_HANDLE) -> Result<()> {
    if find_object(state, handle).is_err() {
        return Ok(());
    }
    let Some(index) = state
        .token
        .as_ref()
        .and_then(|token| token::pending_data_value(&token.objects, &token.info, handle))
    else {
        return Ok(());
    };
    let value =
        card_operation(state, |app, card| app.read_data_object(card, index)).map_err(|err| {
            match err {
                Error::DeviceRemoved => err,
                _ => Error::DeviceError,
            }
        })?;
    if let Some(token) = state.token.as_mut() {
        token::set_data_value(&mut token.objects, handle, &value);
        if let Some(data) = token.info.data_objects.get_mut(index) {
            data.value = Some(value);
        }
    }
    Ok(())
}

/// The objects this process may see: private ones only after `C_Login`.
pub(super) fn visible_objects(state: &SlotState) -> impl Iterator<Item = &Object> {
    let logged_in = state.logged_in();
    state
        .token
        .iter()
        .flat_map(|token| token.objects.iter())
        .filter(move |object| logged_in || !object.private)
}

pub(super) fn find_object(state: &SlotState, handle: CK_OBJECT_HANDLE) -> Result<&Object> {
    visible_objects(state)
        .find(|object| object.handle == handle)
        .ok_or(Error::ObjectHandleInvalid)
}

pub(super) fn key_of(state: &SlotState, index: usize) -> Result<&crate::profile::KeyInfo> {
    state
        .token
        .as_ref()
        .and_then(|token| token.info.keys.get(index))
        .ok_or(Error::KeyHandleInvalid)
}

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
