//! MyEID PIN objects (reference manual, "PIN codes" and PUT DATA "Initialise
//! PIN"): PIN references 1..=14, each a PIN with its PUK and retry
//! counters, 8 bytes padded with `FF`.

use crate::apdu::sw;

/// The highest PIN reference.
pub(crate) const MAX_PIN_REF: u8 = 14;

/// One PIN object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PinRecord {
    pub pin: [u8; 8],
    pub puk: [u8; 8],
    pub pin_tries: u8,
    pub pin_max: u8,
    pub puk_tries: u8,
    pub puk_max: u8,
}

impl PinRecord {
    /// PUT DATA `01 ref` data: PIN (8), PUK (8), PIN tries, PUK tries, and a
    /// byte this card ignores (OpenSC sends `00`).
    pub fn from_put_data(data: &[u8]) -> Result<Self, u16> {
        let (Some(pin), Some(puk), Some(&[pin_max, puk_max])) =
            (data.get(..8), data.get(8..16), data.get(16..18))
        else {
            return Err(sw::WRONG_LENGTH);
        };
        if !(1..=15).contains(&pin_max) || !(1..=15).contains(&puk_max) || data.len() > 19 {
            return Err(sw::WRONG_DATA);
        }
        let mut record = PinRecord {
            pin: [0; 8],
            puk: [0; 8],
            pin_tries: pin_max,
            pin_max,
            puk_tries: puk_max,
            puk_max,
        };
        record.pin.copy_from_slice(pin);
        record.puk.copy_from_slice(puk);
        Ok(record)
    }

    /// VERIFY: a wrong PIN costs one try; `6983` once none is left.
    pub fn verify(&mut self, attempt: &[u8]) -> Result<(), u16> {
        check(&self.pin, &mut self.pin_tries, self.pin_max, attempt)
    }

    /// Checks the PUK (RESET RETRY COUNTER), with its own counter.
    pub fn verify_puk(&mut self, attempt: &[u8]) -> Result<(), u16> {
        check(&self.puk, &mut self.puk_tries, self.puk_max, attempt)
    }

    /// VERIFY without data: `63Cx` tries left, `6983` blocked.
    pub fn status(&self) -> u16 {
        match self.pin_tries {
            0 => sw::AUTH_BLOCKED,
            n => sw::tries_left(n),
        }
    }
}

fn check(secret: &[u8; 8], tries: &mut u8, max: u8, attempt: &[u8]) -> Result<(), u16> {
    if *tries == 0 {
        return Err(sw::AUTH_BLOCKED);
    }
    if attempt.len() != 8 {
        return Err(sw::WRONG_LENGTH);
    }
    if attempt == secret {
        *tries = max;
        Ok(())
    } else {
        *tries -= 1;
        // `63C0` for the try that blocks it, `6983` after that.
        Err(sw::tries_left(*tries))
    }
}
