//! The card layer: one [`Card`] per card in a reader, and the
//! [`Transaction`]s the engines run their commands in.
//!
//! A `Card` owns the connection to the card and what this process knows
//! about the card's state between transactions: whether its application is
//! still selected and whether the last command was a context-specific
//! VERIFY for a key. A `Transaction` owns one PC/SC transaction's APDU
//! channel. Each operation runs in one transaction that SELECTs the
//! application first (so a PIN never reaches another application), and
//! restores a login the card lost to another process or a reset by
//! presenting the kept PIN once.
//!
//! A private-key operation takes a [`Verified`], which only a successful
//! VERIFY, a login this process holds, or a key that needs no PIN yields:
//! the wrong order cannot be written. Two savings live here, once for
//! every engine: a signature is first tried without SELECT when this
//! process's last transaction left the application selected, and a key
//! that wants the PIN before every use signs right after the context
//! VERIFY without a second one.

mod state;

pub use state::EngineState;

use crate::error::{Error, Result};
use crate::iso7816::{CardError, Channel, ChannelOptions, Command, Response};
use crate::profile::{AppError, CardApp, KeyInfo};
use crate::transport::{CardTransport, PinPadChange, PinPadVerify, Transmit, TransportError};
use zeroize::{Zeroize, Zeroizing};

/// Proof that the card accepts a private-key operation with the key it was
/// made for: made only by a successful VERIFY in this transaction, by this
/// process's login, or for a key that needs no PIN.
///
/// Code outside the card layer cannot make one:
///
/// ```compile_fail
/// let proof = p11card::card::Verified { _private: () };
/// ```
#[derive(Debug)]
pub struct Verified {
    _private: (),
}

/// This process's user login on a card: the PIN kept (zeroizing) to restore
/// a login the card lost. Wiped at logout, removal and finalisation.
#[derive(Debug, Default)]
pub struct SessionLogin {
    active: bool,
    pin: Option<Zeroizing<Vec<u8>>>,
}

impl SessionLogin {
    /// Whether this process is logged in.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Begins the login, keeping `pin` (`None`: entered on a PIN pad).
    pub fn begin(&mut self, pin: Option<&[u8]>) {
        self.active = true;
        self.pin = pin.map(|pin| Zeroizing::new(pin.to_vec()));
    }

    /// The kept PIN, while logged in.
    pub fn pin(&self) -> Option<&Zeroizing<Vec<u8>>> {
        self.pin.as_ref().filter(|_| self.active)
    }

    /// The card's PIN changed to `new`: the kept copy follows (the old one
    /// would spend a try at the next restore); `None` (changed on a PIN
    /// pad, the new PIN unknown here): the copy is dropped.
    pub fn pin_changed(&mut self, new: Option<&[u8]>) {
        if self.active && self.pin.is_some() {
            self.pin = new.map(|new| Zeroizing::new(new.to_vec()));
        }
    }

    /// Ends the login; the PIN copy is zeroized.
    pub fn end(&mut self) {
        self.active = false;
        self.pin = None;
    }

    /// Ends the login and zeroizes the kept PIN in place, keeping its (now
    /// empty) buffer: for a child process after `fork()`.
    pub fn wipe(&mut self) {
        self.active = false;
        if let Some(pin) = &mut self.pin {
            pin.zeroize();
        }
    }

    /// Whether a PIN with content is kept.
    pub fn holds_pin(&self) -> bool {
        self.pin.as_ref().is_some_and(|pin| !pin.is_empty())
    }
}

/// One transaction with the card: the engines send their commands through
/// it.
pub struct Transaction<'a> {
    channel: Channel<'a>,
    engine_state: Lent<'a>,
    logged_in: bool,
    /// The last command sent was a successful context-specific VERIFY for
    /// this key reference.
    context_verified: Option<u8>,
}

/// The engine state a transaction works with: the card's, or (for a card
/// not yet known to be the engine's) one of its own.
enum Lent<'a> {
    Card(&'a mut EngineState),
    Own(EngineState),
}

impl<'a> Transaction<'a> {
    /// A transaction over `link` (one open PC/SC transaction), not logged
    /// in, nothing verified, with an engine state of its own.
    pub fn new(link: &'a mut dyn Transmit, options: ChannelOptions) -> Self {
        Transaction {
            channel: Channel::new(link, options),
            engine_state: Lent::Own(EngineState::default()),
            logged_in: false,
            context_verified: None,
        }
    }

    /// A transaction as [`Transaction::new`], lending the engine the card's
    /// `engine_state`.
    pub fn with_engine_state(
        link: &'a mut dyn Transmit,
        options: ChannelOptions,
        engine_state: &'a mut EngineState,
    ) -> Self {
        Transaction {
            engine_state: Lent::Card(engine_state),
            ..Transaction::new(link, options)
        }
    }

    /// What the engine learned about the card: its state of type `T`, made
    /// by `init` in the card's first transaction.
    pub fn engine_state<T: std::any::Any + Send>(&mut self, init: impl FnOnce() -> T) -> &mut T {
        match &mut self.engine_state {
            Lent::Card(state) => state.get_or_insert_with(init),
            Lent::Own(state) => state.get_or_insert_with(init),
        }
    }

    /// Sends `command` and returns the complete response.
    pub fn execute(&mut self, command: &Command) -> std::result::Result<Response, CardError> {
        self.context_verified = None;
        self.channel.execute(command)
    }

    /// Sends `command` and insists on `9000`.
    pub fn transmit_ok(
        &mut self,
        command: &Command,
    ) -> std::result::Result<Zeroizing<Vec<u8>>, CardError> {
        self.execute(command)?.success()
    }

    /// Has the reader's PIN pad collect the PIN for the VERIFY `request`
    /// describes.
    pub fn verify_pin_pad(
        &mut self,
        request: &PinPadVerify,
    ) -> std::result::Result<Response, CardError> {
        self.context_verified = None;
        self.channel.verify_pin_pad(request)
    }

    /// Has the reader's PIN pad collect the current and the new PIN for the
    /// change `request` describes.
    pub fn change_pin_pad(
        &mut self,
        request: &PinPadChange,
    ) -> std::result::Result<Response, CardError> {
        self.context_verified = None;
        self.channel.change_pin_pad(request)
    }

    /// Changes the framing (engines that learn it from the card).
    pub fn set_options(&mut self, options: ChannelOptions) {
        self.channel.set_options(options);
    }

    /// How many APDUs this transaction has sent.
    pub fn apdus_sent(&self) -> usize {
        self.channel.apdus_sent()
    }

    /// VERIFY of the user PIN (a login).
    pub fn verify_pin(
        &mut self,
        app: &dyn CardApp,
        pin: &[u8],
    ) -> std::result::Result<Verified, AppError> {
        app.verify_pin(self, pin)?;
        Ok(Verified { _private: () })
    }

    /// VERIFY of the user PIN on the reader's PIN pad (a login).
    pub fn verify_pin_pad_login(
        &mut self,
        app: &dyn CardApp,
    ) -> std::result::Result<Verified, AppError> {
        app.verify_pin_pad(self)?;
        Ok(Verified { _private: () })
    }

    /// VERIFY of the PIN right before one use of `key` (a context-specific
    /// login).
    pub fn verify_pin_for_key(
        &mut self,
        app: &dyn CardApp,
        key: &KeyInfo,
        pin: &[u8],
    ) -> std::result::Result<Verified, AppError> {
        app.verify_pin_for_key(self, key, pin)?;
        self.context_verified = Some(key.reference);
        Ok(Verified { _private: () })
    }

    /// The proof for `key` without a VERIFY now: the key needs no PIN, this
    /// process is logged in, or the last command was the context VERIFY
    /// for the key.
    pub fn proof_without_verify(&self, key: &KeyInfo) -> std::result::Result<Verified, AppError> {
        if key.no_pin || self.logged_in || self.context_verified == Some(key.reference) {
            Ok(Verified { _private: () })
        } else {
            Err(AppError::NotAuthenticated)
        }
    }
}

#[cfg(test)]
impl Verified {
    /// A proof for engine unit tests, which drive an engine without the
    /// card layer.
    pub(crate) fn for_engine_tests() -> Verified {
        Verified { _private: () }
    }
}

/// How a private-key operation may begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Without SELECT: the module checks the answer (a signature against
    /// the public key), so another application's answer is caught.
    MayResume,
    /// Always with SELECT (an answer the module cannot check).
    Select,
}

/// The commands of one operation inside a transaction; the flag is `true`
/// when they run without SELECT.
type Step<'a, R> =
    dyn FnMut(&dyn CardApp, &mut Transaction, bool) -> std::result::Result<R, AppError> + 'a;

/// One card in a reader.
pub struct Card {
    transport: Box<dyn CardTransport>,
    /// This process's last transaction ended with the application
    /// selected (a reset or reconnect clears it).
    app_selected: bool,
    /// The last command this process sent was a successful context-specific
    /// VERIFY for this key reference.
    context_verified: Option<u8>,
    /// What the engine learned about the card.
    engine_state: EngineState,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("app_selected", &self.app_selected)
            .finish_non_exhaustive()
    }
}

impl Card {
    /// The card behind `transport`; `app_selected` when the transaction that
    /// read it left its application selected; `engine_state` what the
    /// engine learned while reading it.
    pub fn new(
        transport: Box<dyn CardTransport>,
        app_selected: bool,
        engine_state: EngineState,
    ) -> Card {
        Card {
            transport,
            app_selected,
            context_verified: None,
            engine_state,
        }
    }

    /// What the engine learned about the card.
    pub fn engine_state(&self) -> &EngineState {
        &self.engine_state
    }

    /// The card's answer-to-reset.
    pub fn atr(&self) -> &[u8] {
        self.transport.atr()
    }

    /// The reader has a PIN pad.
    pub fn has_pin_pad(&self) -> bool {
        self.transport.has_pin_pad()
    }

    /// Runs `op` in one transaction, with the application selected first;
    /// while `login` is active, a login the card lost is restored once.
    /// `Error::DeviceRemoved`: the card is gone.
    pub fn run<R>(
        &mut self,
        app: &dyn CardApp,
        login: &mut SessionLogin,
        mut op: impl FnMut(&dyn CardApp, &mut Transaction) -> std::result::Result<R, AppError>,
    ) -> Result<R> {
        self.run_entered(app, login, Entry::Select, &mut |app, tx, _| op(app, tx))
    }

    /// Runs the private-key operation `op` with `key`: after the context
    /// VERIFY with `context_pin` when the key wants the PIN before every
    /// use, else on this process's login (or none, for a key without PIN).
    /// With [`Entry::MayResume`], first without SELECT when this process
    /// left the application selected (and, for a context key, right after
    /// its own context VERIFY); a refusal falls back to SELECT and the full
    /// sequence in the same transaction.
    pub fn private_key_operation<R>(
        &mut self,
        app: &dyn CardApp,
        login: &mut SessionLogin,
        key: &KeyInfo,
        context_pin: Option<&[u8]>,
        entry: Entry,
        mut op: impl FnMut(
            &dyn CardApp,
            &mut Transaction,
            &Verified,
        ) -> std::result::Result<R, AppError>,
    ) -> Result<R> {
        let fresh = context_pin.is_none() || self.context_verified == Some(key.reference);
        let entry = if fresh { entry } else { Entry::Select };
        self.run_entered(app, login, entry, &mut |app, tx, resumed| {
            let proof = match context_pin.filter(|_| !resumed) {
                Some(pin) => tx.verify_pin_for_key(app, key, pin)?,
                None => tx.proof_without_verify(key)?,
            };
            op(app, tx, &proof)
        })
    }

    /// The transaction loop: `step` gets `true` when it runs without SELECT.
    fn run_entered<R>(
        &mut self,
        app: &dyn CardApp,
        login: &mut SessionLogin,
        entry: Entry,
        step: &mut Step<'_, R>,
    ) -> Result<R> {
        let restore_pin = login.pin().cloned();
        let logged_in = login.is_active();
        let mut restore_failed = false;
        let mut context_verified = self.context_verified.take();
        for _attempt in 0..2 {
            let selected = std::mem::replace(&mut self.app_selected, false);
            let mut ends_selected = false;
            let mut ends_verified = None;
            let engine_state = &mut self.engine_state;
            let outcome = self.transport.with_transaction(|link| {
                let mut tx =
                    Transaction::with_engine_state(link, app.profile().channel, engine_state);
                tx.logged_in = logged_in;
                tx.context_verified = context_verified.take();
                if selected && entry == Entry::MayResume {
                    match step(app, &mut tx, true) {
                        Ok(value) => {
                            ends_selected = true;
                            ends_verified = tx.context_verified;
                            return Ok(value);
                        }
                        // A refusal or a signature under another key
                        // (another application may be selected, or the card
                        // wants the PIN again): SELECT and the full
                        // sequence. A malformed answer stays an error.
                        Err(
                            err @ (AppError::Card(CardError::Status(_))
                            | AppError::NotAuthenticated
                            | AppError::WrongSignature),
                        ) => {
                            log::debug!("resuming without SELECT failed ({err}); selecting");
                        }
                        Err(err) => return Err(err),
                    }
                }
                tx.context_verified = None;
                app.select(&mut tx)?;
                ends_selected = true;
                let result = match (step(app, &mut tx, false), &restore_pin) {
                    (Err(AppError::NotAuthenticated), Some(pin)) => match tx.verify_pin(app, pin) {
                        Ok(_) => step(app, &mut tx, false),
                        Err(AppError::PinIncorrect(_) | AppError::PinLocked) => {
                            restore_failed = true;
                            Err(AppError::NotAuthenticated)
                        }
                        Err(other) => Err(other),
                    },
                    (result, _) => result,
                };
                ends_verified = tx.context_verified;
                result
            });
            if restore_failed {
                // The PIN changed elsewhere: stop using the stale copy at
                // once, so it costs the user no more than that one try.
                login.end();
            }
            let transport_error = match outcome {
                Ok(Ok(value)) => {
                    self.app_selected = ends_selected;
                    self.context_verified = ends_verified;
                    return Ok(value);
                }
                Ok(Err(AppError::Card(CardError::Transport(err)))) => err,
                Ok(Err(err)) => {
                    self.app_selected = ends_selected;
                    return Err(err.into());
                }
                Err(err) => err,
            };
            match transport_error {
                // Another process reset the card; the transport has
                // reconnected: try once more (the login is restored above).
                TransportError::CardReset => {}
                TransportError::CardRemoved
                | TransportError::ReaderGone
                | TransportError::NoService => return Err(Error::DeviceRemoved),
                other => return Err(other.into()),
            }
        }
        Err(Error::DeviceError)
    }
}
