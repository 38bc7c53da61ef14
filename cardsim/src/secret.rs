//! The simulated PIV card's PINs and PUK: padded values with retry
//! counters (SP 800-73-4 Part 2 §3.2).

use crate::apdu::sw;

/// A PIN or PUK with its retry counter.
#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub padded: [u8; 8],
    pub tries: u8,
    pub max: u8,
}

impl Secret {
    pub fn new(value: &str, max: u8) -> Self {
        let padded = pad(value.as_bytes())
            .unwrap_or_else(|| panic!("a PIN or PUK has 6 to 8 bytes, not {value:?}"));
        let max = max.clamp(1, 15);
        Secret {
            padded,
            tries: max,
            max,
        }
    }

    /// Checks an attempt with retry-counter semantics (Part 2 §3.2.1).
    pub fn check(&mut self, attempt: &[u8]) -> Result<(), u16> {
        if self.tries == 0 {
            return Err(sw::AUTH_BLOCKED);
        }
        if attempt == self.padded {
            self.tries = self.max;
            Ok(())
        } else {
            self.tries -= 1;
            Err(sw::tries_left(self.tries))
        }
    }

    /// `63Cx`, or `6983` when blocked.
    pub fn status(&self) -> u16 {
        match self.tries {
            0 => sw::AUTH_BLOCKED,
            n => sw::tries_left(n),
        }
    }
}

/// Pads a 6..=8-byte PIN with `FF` to 8 bytes.
pub(crate) fn pad(value: &[u8]) -> Option<[u8; 8]> {
    let mut out = [0xFF; 8];
    if !(6..=8).contains(&value.len()) || value.contains(&0xFF) {
        return None;
    }
    out[..value.len()].copy_from_slice(value);
    Some(out)
}

/// Checks that `padded` is a 6..=8-byte value followed by `FF` padding.
fn check_padded(padded: &[u8]) -> Option<[u8; 8]> {
    let len = padded
        .iter()
        .position(|&b| b == 0xFF)
        .unwrap_or(padded.len());
    let out = pad(padded.get(..len)?)?;
    (padded == out).then_some(out)
}

/// Splits 16 bytes into the current 8-byte value and a well-formed new one.
pub(crate) fn split_old_new(data: &[u8]) -> Result<(&[u8], [u8; 8]), u16> {
    if data.len() != 16 {
        return Err(sw::WRONG_DATA);
    }
    let (old, new) = data.split_at(8);
    Ok((old, check_padded(new).ok_or(sw::WRONG_DATA)?))
}
