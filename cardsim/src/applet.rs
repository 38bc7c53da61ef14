//! [`SimApplet`]: either kind of simulated card, for the places that hold
//! "a card" ([`SimCard`](crate::SimCard), the vpcd bridge).

use crate::card::SimPivCard;
use crate::log::LoggedApdu;
use crate::misbehave::Misbehaviour;
use crate::myeid::SimMyEidCard;
use crate::openpgp::SimOpenPgpCard;

/// A simulated card of either kind. [`SimCard`](crate::SimCard) holds one;
/// both card types convert into it with `From`.
// Both variants are large (about 1 KiB); there is one per simulated card and
// it is moved only when a card is built, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SimApplet {
    /// A PIV card (SP 800-73-4).
    Piv(SimPivCard),
    /// An OpenPGP card (OpenPGP card spec 3.4).
    OpenPgp(SimOpenPgpCard),
    /// An Aventra MyEID card (PKCS#15).
    MyEid(SimMyEidCard),
}

impl From<SimPivCard> for SimApplet {
    fn from(card: SimPivCard) -> Self {
        SimApplet::Piv(card)
    }
}

impl From<SimOpenPgpCard> for SimApplet {
    fn from(card: SimOpenPgpCard) -> Self {
        SimApplet::OpenPgp(card)
    }
}

impl From<SimMyEidCard> for SimApplet {
    fn from(card: SimMyEidCard) -> Self {
        SimApplet::MyEid(card)
    }
}

/// Calls the same method on whichever card it is.
macro_rules! either {
    ($self:expr, $card:ident => $body:expr) => {
        match $self {
            SimApplet::Piv($card) => $body,
            SimApplet::OpenPgp($card) => $body,
            SimApplet::MyEid($card) => $body,
        }
    };
}

impl SimApplet {
    /// The PIV card, if it is one.
    pub fn as_piv(&self) -> Option<&SimPivCard> {
        match self {
            SimApplet::Piv(card) => Some(card),
            _ => None,
        }
    }

    /// The PIV card, if it is one (mutable).
    pub fn as_piv_mut(&mut self) -> Option<&mut SimPivCard> {
        match self {
            SimApplet::Piv(card) => Some(card),
            _ => None,
        }
    }

    /// The OpenPGP card, if it is one.
    pub fn as_openpgp(&self) -> Option<&SimOpenPgpCard> {
        match self {
            SimApplet::OpenPgp(card) => Some(card),
            _ => None,
        }
    }

    /// The OpenPGP card, if it is one (mutable).
    pub fn as_openpgp_mut(&mut self) -> Option<&mut SimOpenPgpCard> {
        match self {
            SimApplet::OpenPgp(card) => Some(card),
            _ => None,
        }
    }

    /// The MyEID card, if it is one (mutable).
    pub fn as_myeid_mut(&mut self) -> Option<&mut SimMyEidCard> {
        match self {
            SimApplet::MyEid(card) => Some(card),
            _ => None,
        }
    }

    /// Processes one raw command APDU (see [`SimPivCard::process`]).
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        either!(self, card => card.process(apdu))
    }

    /// Power-on or reset: nothing selected, no PIN verified.
    pub fn power_on(&mut self) {
        either!(self, card => card.power_on())
    }

    /// The answer-to-reset.
    pub fn atr(&self) -> &[u8] {
        either!(self, card => card.atr())
    }

    /// The misbehaviour switches.
    pub fn misbehaviour_mut(&mut self) -> &mut Misbehaviour {
        either!(self, card => card.misbehaviour_mut())
    }

    /// The APDU log (PINs redacted).
    pub fn log(&self) -> &[LoggedApdu] {
        either!(self, card => card.log())
    }

    /// The number of APDUs processed.
    pub fn apdu_count(&self) -> usize {
        either!(self, card => card.apdu_count())
    }

    /// Empties the log.
    pub fn clear_log(&mut self) {
        either!(self, card => card.clear_log())
    }

    /// The log as text, one exchange per line.
    pub fn transcript(&self) -> String {
        either!(self, card => card.transcript())
    }
}
