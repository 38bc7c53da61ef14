//! The API's errors in words a person understands, with what to do next.

use crate::exit;
use p11card::api::{Error, PinTries, TokenInfo};

/// What `p11card` says when PC/SC lists no reader.
pub(crate) const NO_READER: &str = "no card reader found: plug in the reader (or the USB token), \
     and check that the PC/SC service (pcscd) is installed and running";

/// The PIN tries left, as a sentence part ("2 tries left").
pub(crate) fn tries_left(tries: PinTries, left: Option<u8>) -> String {
    match (tries, left) {
        (PinTries::Blocked, _) => "blocked".to_string(),
        (_, Some(1)) | (PinTries::FinalTry, _) => "1 try left".to_string(),
        (_, Some(left)) => format!("{left} tries left"),
        (PinTries::Low, None) => "fewer tries left than the card started with".to_string(),
        (PinTries::Plenty, None) => "no wrong PIN known since the last right one".to_string(),
    }
}

/// The message for `err`; `info` (the card's token information, read
/// after the error) makes PIN messages exact.
pub fn explain(err: &Error, info: Option<&TokenInfo>) -> String {
    match err {
        Error::NoCard => "no card in the reader; insert the card".to_string(),
        Error::UnknownCard => "the card is not one p11card knows (no card profile fits it); \
             `p11card status` shows its ATR"
            .to_string(),
        Error::CardRemoved => {
            "the card was removed (or the PC/SC service stopped); put it back and try again"
                .to_string()
        }
        Error::WrongPin { tries } => {
            let left = info.and_then(|info| info.pin_tries_left);
            match (tries, left) {
                (PinTries::Blocked, _) | (_, Some(0)) => format!(
                    "wrong PIN, and that was the last try: {}",
                    explain(&Error::PinBlocked, None)
                ),
                (PinTries::FinalTry, _) | (_, Some(1)) => {
                    "wrong PIN; 1 try left: one more wrong PIN blocks it".to_string()
                }
                _ => format!("wrong PIN; {}", tries_left(*tries, left)),
            }
        }
        Error::PinBlocked => "the PIN is blocked; unblock it with `p11card pin unblock` \
                              (you need the card's PUK)"
            .to_string(),
        Error::PinLength => match info {
            Some(info) => format!(
                "this card takes PINs of {} to {} characters",
                info.min_pin_length, info.max_pin_length
            ),
            None => "the PIN is too short or too long for this card".to_string(),
        },
        Error::WrongPuk => {
            "wrong PUK (unblocking code); the PIN is unchanged. Each wrong PUK spends \
             one of the PUK's tries"
                .to_string()
        }
        Error::PukBlocked => {
            "the PUK (unblocking code) is blocked too: the PIN cannot be unblocked; \
             the card has to be reset or replaced (ask whoever issued it)"
                .to_string()
        }
        Error::PukLength => {
            "the PUK is too short or too long for this card (a PIV PUK has 8 characters)"
                .to_string()
        }
        Error::AlreadyLoggedIn => "another login to the card is in progress".to_string(),
        Error::NotLoggedIn => "this needs the PIN first".to_string(),
        Error::PinEveryUse => "the key wants the PIN right before each use".to_string(),
        Error::Unsupported(why) => format!("the card cannot do this: {why}"),
        Error::Module(p11card::Error::FunctionCanceled) => {
            "the PIN entry on the reader was cancelled or timed out (or the two new PINs \
             differed); nothing was changed"
                .to_string()
        }
        Error::BadCard => {
            "the card gave an answer p11card could not use; take it out, put it back \
             and try again"
                .to_string()
        }
        other => format!("the card or the PC/SC service failed ({other})"),
    }
}

/// Hex bytes separated by spaces (ATRs, APDU headers).
pub(crate) fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The exit status for `err`.
pub(crate) fn exit_code(err: &Error) -> u8 {
    match err {
        Error::NoCard | Error::UnknownCard | Error::CardRemoved => exit::NO_CARD,
        Error::PinBlocked => exit::PIN_BLOCKED,
        _ => exit::FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_read_as_words() {
        assert_eq!(tries_left(PinTries::Plenty, Some(3)), "3 tries left");
        assert_eq!(tries_left(PinTries::FinalTry, Some(1)), "1 try left");
        assert_eq!(tries_left(PinTries::Blocked, Some(0)), "blocked");
        assert_eq!(
            tries_left(PinTries::Low, None),
            "fewer tries left than the card started with"
        );
    }

    #[test]
    fn a_blocked_pin_says_how_to_unblock_it() {
        let message = explain(&Error::PinBlocked, None);
        assert!(message.contains("`p11card pin unblock`"), "{message}");
        assert_eq!(exit_code(&Error::PinBlocked), exit::PIN_BLOCKED);
        let message = explain(
            &Error::WrongPin {
                tries: PinTries::Blocked,
            },
            None,
        );
        assert!(message.contains("last try"), "{message}");
    }
}
