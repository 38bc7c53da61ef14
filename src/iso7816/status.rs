//! Status words (ISO/IEC 7816-4 §5.6) and what they mean.

use std::fmt;

/// The two status bytes SW1 SW2 that end every response APDU.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `9000`: normal processing.
    pub const SUCCESS: StatusWord = StatusWord(0x9000);
    /// `6982`: security status not satisfied (PIN not verified).
    pub const SECURITY_STATUS_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    /// `6983`: authentication method blocked (PIN locked).
    pub const AUTH_METHOD_BLOCKED: StatusWord = StatusWord(0x6983);
    /// `6A80`: incorrect data in the command.
    pub const WRONG_DATA: StatusWord = StatusWord(0x6A80);
    /// `6A82`: file or application not found.
    pub const NOT_FOUND: StatusWord = StatusWord(0x6A82);
    /// `6A86`: incorrect P1/P2.
    pub const WRONG_P1P2: StatusWord = StatusWord(0x6A86);
    /// `6A88`: referenced data not found.
    pub const DATA_NOT_FOUND: StatusWord = StatusWord(0x6A88);
    /// `6D00`: instruction not supported.
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    /// `6A81`: function not supported.
    pub const FUNCTION_NOT_SUPPORTED: StatusWord = StatusWord(0x6A81);
    /// `6700`: wrong length (Lc or Le).
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    /// `6E00`: class not supported.
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);
    /// `6A87`: Nc inconsistent with P1-P2.
    pub const LC_INCONSISTENT_WITH_P1P2: StatusWord = StatusWord(0x6A87);

    /// Builds a status word from SW1 and SW2.
    pub fn new(sw1: u8, sw2: u8) -> Self {
        StatusWord(u16::from_be_bytes([sw1, sw2]))
    }

    /// SW1.
    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// SW2.
    pub fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// `9000`.
    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }

    /// `61xx`: more response bytes wait for GET RESPONSE (`0` means 256).
    pub fn bytes_remaining(self) -> Option<usize> {
        (self.sw1() == 0x61).then(|| match self.sw2() {
            0 => 256,
            n => usize::from(n),
        })
    }

    /// `6Cxx`: wrong Le; re-send with Le = xx (`0` means 256).
    pub fn correct_le(self) -> Option<usize> {
        (self.sw1() == 0x6C).then(|| match self.sw2() {
            0 => 256,
            n => usize::from(n),
        })
    }

    /// `63Cx`: verification failed (or, for an empty VERIFY, not yet
    /// verified), x tries left.
    pub fn tries_left(self) -> Option<u8> {
        (self.0 & 0xFFF0 == 0x63C0).then(|| self.sw2() & 0x0F)
    }

    /// What the status word means (ISO/IEC 7816-4 §5.6).
    pub fn meaning(self) -> Status {
        if let Some(n) = self.bytes_remaining() {
            return Status::BytesRemaining(n);
        }
        if let Some(n) = self.correct_le() {
            return Status::WrongLe(n);
        }
        if let Some(tries_left) = self.tries_left() {
            return Status::WrongPin { tries_left };
        }
        match self {
            Self::SUCCESS => Status::Success,
            Self::SECURITY_STATUS_NOT_SATISFIED => Status::SecurityNotSatisfied,
            Self::AUTH_METHOD_BLOCKED => Status::AuthBlocked,
            Self::WRONG_DATA => Status::WrongData,
            Self::NOT_FOUND => Status::FileNotFound,
            Self::WRONG_P1P2 => Status::WrongParameters,
            Self::DATA_NOT_FOUND => Status::DataNotFound,
            Self::INS_NOT_SUPPORTED => Status::InstructionNotSupported,
            Self::FUNCTION_NOT_SUPPORTED => Status::FunctionNotSupported,
            Self::WRONG_LENGTH => Status::WrongLength,
            Self::CLA_NOT_SUPPORTED => Status::ClassNotSupported,
            other => Status::Other(other.0),
        }
    }

    /// The card does not know the command (`6D00`, `6E00`, `6A81`): a
    /// feature the card lacks rather than a refusal.
    pub fn is_unsupported_command(self) -> bool {
        matches!(
            self.meaning(),
            Status::InstructionNotSupported
                | Status::ClassNotSupported
                | Status::FunctionNotSupported
        )
    }
}

/// The meaning of a status word (ISO/IEC 7816-4 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `9000`.
    Success,
    /// `61xx`: this many more bytes wait for GET RESPONSE.
    BytesRemaining(usize),
    /// `6Cxx`: wrong Le; the card has this many bytes.
    WrongLe(usize),
    /// `63Cx`: the PIN was wrong (or, for an empty VERIFY, is not
    /// verified); x tries left.
    WrongPin {
        /// Tries left before the PIN blocks.
        tries_left: u8,
    },
    /// `6982`: security status not satisfied (the PIN is not verified).
    SecurityNotSatisfied,
    /// `6983`: authentication method blocked.
    AuthBlocked,
    /// `6A80`: incorrect data in the command.
    WrongData,
    /// `6A82`: file or application not found.
    FileNotFound,
    /// `6A86`: incorrect P1-P2.
    WrongParameters,
    /// `6A88`: referenced data not found.
    DataNotFound,
    /// `6D00`: instruction not supported.
    InstructionNotSupported,
    /// `6A81`: function not supported.
    FunctionNotSupported,
    /// `6700`: wrong length.
    WrongLength,
    /// `6E00`: class not supported.
    ClassNotSupported,
    /// Any other status word.
    Other(u16),
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SW {:04X}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_status_words() {
        assert!(StatusWord::new(0x90, 0x00).is_success());
        assert_eq!(StatusWord(0x6110).bytes_remaining(), Some(0x10));
        assert_eq!(StatusWord(0x6100).bytes_remaining(), Some(256));
        assert_eq!(StatusWord(0x6C20).correct_le(), Some(0x20));
        assert_eq!(StatusWord(0x63C2).tries_left(), Some(2));
        assert_eq!(StatusWord(0x63C0).tries_left(), Some(0));
        assert_eq!(StatusWord(0x6300).tries_left(), None);
        assert_eq!(StatusWord(0x9000).tries_left(), None);
        assert_eq!(StatusWord(0x6982).to_string(), "6982");
    }

    #[test]
    fn status_words_carry_their_meaning() {
        assert_eq!(StatusWord(0x9000).meaning(), Status::Success);
        assert_eq!(StatusWord(0x6110).meaning(), Status::BytesRemaining(0x10));
        assert_eq!(StatusWord(0x6C00).meaning(), Status::WrongLe(256));
        assert_eq!(
            StatusWord(0x63C1).meaning(),
            Status::WrongPin { tries_left: 1 }
        );
        assert_eq!(StatusWord(0x6982).meaning(), Status::SecurityNotSatisfied);
        assert_eq!(StatusWord(0x6983).meaning(), Status::AuthBlocked);
        assert_eq!(StatusWord(0x6A82).meaning(), Status::FileNotFound);
        assert_eq!(StatusWord(0x6A88).meaning(), Status::DataNotFound);
        assert_eq!(StatusWord(0x6F00).meaning(), Status::Other(0x6F00));
        assert!(StatusWord(0x6D00).is_unsupported_command());
        assert!(StatusWord(0x6A81).is_unsupported_command());
        assert!(!StatusWord(0x6A82).is_unsupported_command());
    }
}
