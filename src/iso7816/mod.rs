//! ISO/IEC 7816-4: command and response APDUs, status words, BER-TLV, and a
//! [`Channel`] that handles chaining, `61xx` and `6Cxx` for the layers above;
//! the instructions ([`Instruction`]) and the commands ([`commands`]) the
//! engines send, and what status words mean ([`Status`]).

mod apdu;
mod channel;
pub mod commands;
mod instruction;
mod status;
pub mod tlv;

pub use apdu::{Command, Response};
pub use channel::{Channel, ChannelOptions};
pub use instruction::Instruction;
pub use status::{Status, StatusWord};

use crate::transport::TransportError;
use thiserror::Error;

/// Errors talking to a card application.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CardError {
    /// The transport failed (card removed, reader gone, service stopped).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card answered with a status word the operation does not accept.
    #[error("card returned status {0}")]
    Status(StatusWord),
    /// The card's answer was malformed.
    #[error("malformed card response: {0}")]
    Malformed(&'static str),
    /// The command cannot be expressed as an APDU the card accepts.
    #[error("command too long for the card: {0} bytes")]
    CommandTooLong(usize),
}

impl CardError {
    /// The status word behind this error, if the card answered at all.
    pub fn status(&self) -> Option<StatusWord> {
        match self {
            CardError::Status(sw) => Some(*sw),
            _ => None,
        }
    }
}
