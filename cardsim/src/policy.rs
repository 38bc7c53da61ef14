//! Per-key PIN and touch policies of the simulated PIV card, as Yubico's
//! GET METADATA reports them (tag `02`: PIN policy byte, touch policy byte)
//! and as GENERAL AUTHENTICATE enforces them.

/// When a key wants the PIN (Yubico PIV: `01` never, `02` once, `03` always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinPolicy {
    /// No PIN (the card-authentication key's default).
    Never,
    /// The PIN once per session (9A, 9D and the retired keys by default).
    Once,
    /// The PIN right before every use (9C's default).
    Always,
}

impl PinPolicy {
    /// The GET METADATA byte.
    pub fn byte(self) -> u8 {
        match self {
            PinPolicy::Never => 0x01,
            PinPolicy::Once => 0x02,
            PinPolicy::Always => 0x03,
        }
    }
}

/// When a key wants a touch (Yubico PIV: `01` never, `02` always, `03`
/// cached for 15 seconds). The simulated card only reports it: it cannot
/// be touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchPolicy {
    /// No touch.
    Never,
    /// A touch for every use.
    Always,
    /// A touch, then none for 15 seconds.
    Cached,
}

impl TouchPolicy {
    /// The GET METADATA byte.
    pub fn byte(self) -> u8 {
        match self {
            TouchPolicy::Never => 0x01,
            TouchPolicy::Always => 0x02,
            TouchPolicy::Cached => 0x03,
        }
    }
}

/// The PIN policy a key reference has unless configured otherwise: SP
/// 800-73-4 Part 1 §3.1 (9E none, 9C right before each use, the others once).
pub(crate) fn default_pin_policy(reference: u8) -> PinPolicy {
    match reference {
        0x9E => PinPolicy::Never,
        0x9C => PinPolicy::Always,
        _ => PinPolicy::Once,
    }
}
