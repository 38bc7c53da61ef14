//! Card transport: how APDUs reach a card.
//!
//! [`ReaderBackend`] lists readers and connects to cards; [`CardTransport`] is
//! one connected card. The PC/SC backend lives in [`pcsc`]; tests plug in
//! simulated cards behind the same traits.

pub mod pcsc;

use std::time::{Duration, Instant};
use thiserror::Error;

/// Errors from the transport layer.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The PC/SC service is not running (or went away).
    #[error("the PC/SC service is not available")]
    NoService,
    /// The reader disappeared.
    #[error("the reader is gone")]
    ReaderGone,
    /// No card is in the reader (or it was removed).
    #[error("no card in the reader")]
    CardRemoved,
    /// The card was reset by someone else; its security state is gone.
    #[error("the card was reset")]
    CardReset,
    /// The card did not answer in a usable way.
    #[error("card communication failed: {0}")]
    Io(String),
    /// The reader has no PIN pad for what was asked (no keypad, or one that
    /// cannot do a PIN change).
    #[error("the reader's PIN pad cannot do this")]
    NoPinPad,
}

/// State of one reader, as the backend sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderStatus {
    /// The reader's name (stable key for slot IDs).
    pub name: String,
    /// Whether a card is present.
    pub card_present: bool,
    /// Changes whenever a card is inserted or removed (or the PC/SC service
    /// restarts): a different value means the card may be another one.
    pub card_events: u64,
}

/// A PIN entered on the reader's own keypad (PC/SC part 10,
/// `FEATURE_VERIFY_PIN_DIRECT`): the reader puts the PIN into the VERIFY
/// command, so the host never sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPadVerify {
    /// The VERIFY command with its PIN block as a template (e.g.
    /// `00 20 00 80 08` + 8 × `FF`); the reader writes the PIN, as ASCII
    /// digits, from the start of the block.
    pub apdu: Vec<u8>,
    /// Shortest PIN the reader should accept.
    pub min_length: u8,
    /// Longest PIN the reader should accept.
    pub max_length: u8,
    /// Length of the PIN block in the template.
    pub block_length: u8,
}

/// A PIN change entered on the reader's own keypad (PC/SC part 10,
/// `FEATURE_MODIFY_PIN_DIRECT`): the reader asks for the current PIN and the
/// new one (twice) and puts both into the command, so the host sees neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPadChange {
    /// The command (e.g. CHANGE REFERENCE DATA) with two PIN blocks as a
    /// template; the reader writes each PIN, as ASCII digits, from the start
    /// of its block.
    pub apdu: Vec<u8>,
    /// Offset of the current PIN's block in the command data.
    pub old_offset: u8,
    /// Offset of the new PIN's block in the command data.
    pub new_offset: u8,
    /// Shortest PIN the reader should accept.
    pub min_length: u8,
    /// Longest PIN the reader should accept.
    pub max_length: u8,
    /// Length of each PIN block in the template.
    pub block_length: u8,
}

/// Sends one raw command APDU and returns the raw response (data + SW1 SW2).
pub trait Transmit {
    /// Exchanges one APDU with the card.
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// What this connection learned about extended-length APDUs: `Some(true)`
    /// they worked, `Some(false)` the card or reader refused one, `None`
    /// not tried yet.
    fn extended_length(&self) -> Option<bool> {
        None
    }

    /// Records whether an extended-length APDU worked on this connection.
    fn note_extended_length(&mut self, works: bool) {
        let _ = works;
    }

    /// Has the reader collect the PIN on its keypad and send the VERIFY;
    /// returns the card's raw response. Readers without a PIN pad refuse.
    fn verify_pin_pad(&mut self, request: &PinPadVerify) -> Result<Vec<u8>, TransportError> {
        let _ = request;
        Err(TransportError::NoPinPad)
    }

    /// Has the reader collect the current and the new PIN on its keypad and
    /// send the change command; returns the card's raw response. Readers
    /// without PIN-pad PIN change refuse.
    fn change_pin_pad(&mut self, request: &PinPadChange) -> Result<Vec<u8>, TransportError> {
        let _ = request;
        Err(TransportError::NoPinPad)
    }
}

/// One connected card.
pub trait CardTransport: Send {
    /// The card's answer-to-reset.
    fn atr(&self) -> &[u8];

    /// Whether the reader has a PIN pad ([`Transmit::verify_pin_pad`]).
    fn has_pin_pad(&self) -> bool {
        false
    }

    /// Runs `body` inside one exclusive card transaction (PC/SC
    /// `SCardBeginTransaction`/`SCardEndTransaction`), so that no other
    /// process can interleave APDUs.
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Transmit),
    ) -> Result<(), TransportError>;
}

/// A source of readers and cards (PC/SC, or a simulator in tests).
pub trait ReaderBackend: Send + Sync {
    /// Lists the readers and whether each holds a card.
    fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError>;

    /// Connects (shared mode) to the card in `reader`.
    fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, TransportError>;

    /// How long a reader state from [`ReaderBackend::reader_status`] may
    /// stand for calls that send no APDU (zero: ask every time).
    fn status_reuse(&self) -> Duration {
        Duration::ZERO
    }

    /// The state of one reader (`None` if it is gone); no card I/O.
    fn reader_status(&self, reader: &str) -> Result<Option<ReaderStatus>, TransportError> {
        Ok(self
            .readers()?
            .into_iter()
            .find(|status| status.name == reader))
    }

    /// Blocks until the readers or their cards differ from `known`, until
    /// `timeout` passes, or until [`ReaderBackend::cancel_wait`] is called.
    /// Spurious early returns are allowed. The default polls.
    fn wait_for_change(
        &self,
        known: &[ReaderStatus],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.readers()? != known {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20).min(timeout));
        }
        Ok(())
    }

    /// Wakes a thread blocked in [`ReaderBackend::wait_for_change`].
    fn cancel_wait(&self) {}
}

impl dyn CardTransport + '_ {
    /// Runs `body` inside one card transaction and returns its result.
    pub fn with_transaction<R>(
        &mut self,
        body: impl FnOnce(&mut dyn Transmit) -> R,
    ) -> Result<R, TransportError> {
        let mut body = Some(body);
        let mut result = None;
        self.transaction(&mut |link| {
            if let Some(body) = body.take() {
                result = Some(body(link));
            }
        })?;
        result.ok_or_else(|| TransportError::Io("transaction body did not run".into()))
    }
}
