//! What an engine learned about one card, kept with the card.

use std::any::Any;

/// What the card's engine learned about it (PIV: the PIN reference, whether
/// GET METADATA works; OpenPGP: the APDU framing, PW1's rules), owned by
/// the [`Card`](super::Card) and lent to the engine by each
/// [`Transaction`](super::Transaction). The engine chooses the type; the
/// engines themselves keep no state.
#[derive(Default)]
pub struct EngineState {
    state: Option<Box<dyn Any + Send>>,
}

impl std::fmt::Debug for EngineState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineState")
            .field("learned", &self.state.is_some())
            .finish()
    }
}

impl EngineState {
    /// The engine's state, if it has made one of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.state.as_ref()?.downcast_ref()
    }

    /// The engine's state, made by `init` when there is none of type `T`
    /// yet (the first transaction with the card).
    pub fn get_or_insert_with<T: Any + Send>(&mut self, init: impl FnOnce() -> T) -> &mut T {
        if !self.state.as_ref().is_some_and(|state| state.is::<T>()) {
            self.state = Some(Box::new(init()));
        }
        self.state
            .as_mut()
            .and_then(|state| state.downcast_mut())
            .expect("the state was just made a T")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_made_once_and_kept() {
        let mut state = EngineState::default();
        assert_eq!(state.get::<u8>(), None);
        *state.get_or_insert_with(|| 1u8) += 1;
        assert_eq!(*state.get_or_insert_with(|| 7u8), 2);
        assert_eq!(state.get::<u8>(), Some(&2));
        assert_eq!(state.get::<u16>(), None);
    }
}
