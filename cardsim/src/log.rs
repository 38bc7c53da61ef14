//! The card's APDU log, for tests that count APDUs and print transcripts.

use std::fmt;

/// Instructions whose command data is a PIN or PUK, and is never logged:
/// VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER.
const SECRET_INS: [u8; 3] = [0x20, 0x24, 0x2C];

/// PUT DATA of the OpenPGP card's Resetting Code (DO D3): INS P1 P2.
const PUT_RESETTING_CODE: [u8; 3] = [0xDA, 0x00, 0xD3];

/// Whether `command` is MyEID's PUT DATA of a PIN object (`DA 01 01..0E`).
fn is_myeid_pin_object(command: &[u8]) -> bool {
    command[1..3] == [0xDA, 0x01] && (1..=14).contains(&command[3])
}

/// Whether the data of `command` is a secret (PIN, PUK, Resetting Code).
fn is_secret(command: &[u8]) -> bool {
    command.len() > 5
        && (SECRET_INS.contains(&command[1])
            || command[1..4] == PUT_RESETTING_CODE
            || is_myeid_pin_object(command))
}

/// One command the card received, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedApdu {
    /// The command APDU as sent; when `redacted`, only the header and the
    /// Lc field (the data held a PIN, PUK or Resetting Code).
    pub command: Vec<u8>,
    /// Whether secret command data was left out of `command`.
    pub redacted: bool,
    /// The response data (without SW1 SW2).
    pub response: Vec<u8>,
    /// SW1 SW2 as the host saw them (the last two response bytes; `0` if the
    /// response was shorter, e.g. truncated).
    pub sw: u16,
}

impl LoggedApdu {
    pub(crate) fn new(command: &[u8], response: &[u8]) -> Self {
        let secret = is_secret(command);
        let command = if secret {
            // Keep header + Lc: 1 byte short, 3 bytes extended.
            let lc_len = if command[4] == 0 { 3 } else { 1 };
            command[..(4 + lc_len).min(command.len())].to_vec()
        } else {
            command.to_vec()
        };
        let (response, sw) = match response {
            [data @ .., sw1, sw2] => (data.to_vec(), u16::from_be_bytes([*sw1, *sw2])),
            short => (short.to_vec(), 0),
        };
        LoggedApdu {
            command,
            redacted: secret,
            response,
            sw,
        }
    }

    /// The command's INS byte (0 if the command was shorter than 2 bytes).
    pub fn ins(&self) -> u8 {
        self.command.get(1).copied().unwrap_or(0)
    }
}

fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{b:02X}")?;
    }
    Ok(())
}

/// One transcript line: `00 CB 3F FF 05 5C 03 5F C1 02 00 -> 53 3B 30 19 … (61 bytes) 9000`.
/// Responses longer than 16 bytes are abbreviated.
impl fmt::Display for LoggedApdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(f, &self.command)?;
        if self.redacted {
            f.write_str(" <redacted>")?;
        }
        f.write_str(" ->")?;
        if !self.response.is_empty() {
            f.write_str(" ")?;
            hex(f, &self.response[..self.response.len().min(16)])?;
            if self.response.len() > 16 {
                write!(f, " … ({} bytes)", self.response.len())?;
            }
        }
        write!(f, " {:04X}", self.sw)
    }
}
