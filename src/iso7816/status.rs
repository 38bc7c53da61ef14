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
}
