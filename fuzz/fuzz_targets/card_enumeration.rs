//! The engines' whole card discovery (what `C_GetTokenInfo` and the first
//! object search run: identification by ATR and SELECT, PIV or OpenPGP
//! read_card, PIN state, the remaining keys, the token's objects) against
//! a card whose every answer comes from the fuzz input, in order.
//!
//! Input: a selector byte (bits 0-1: the simulated PIV card's ATR, the
//! simulated OpenPGP card's ATR, an unknown ATR (probing), or an ATR from
//! the input: a length byte and the ATR; bit 2: the PIV card's
//! certificates are remembered, as the disk cache would), then the card's
//! answers as frames (`p11card_fuzz::frames`); when they run out the card
//! is gone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card::profile::{NoRecall, Recall};
use p11card_fuzz::{enumerate, openpgp_card, piv_card, Remembered, ScriptedCard};

/// An ATR no profile names: identification probes the AIDs.
const UNKNOWN_ATR: &[u8] = &[
    0x3B, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xFF, 0x01, 0x00, 0x0B,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (atr, answers): (&[u8], &[u8]) = match selector & 3 {
        0 => (&piv_card().atr, rest),
        1 => (&openpgp_card().atr, rest),
        2 => (UNKNOWN_ATR, rest),
        _ => {
            let Some((&len, rest)) = rest.split_first() else {
                return;
            };
            let len = usize::from(len).min(rest.len());
            rest.split_at(len)
        }
    };
    let remembered = Remembered(piv_card().certificates.clone());
    let recall: &dyn Recall = if selector & 4 != 0 {
        &remembered
    } else {
        &NoRecall
    };
    enumerate(atr, &mut ScriptedCard::new(answers), recall);
});
