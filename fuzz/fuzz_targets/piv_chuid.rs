//! The PIV CHUID (src/profile/piv.rs): the recorded simulated PIV card,
//! except that GET DATA of the CHUID (`5FC102`) is answered by the fuzz
//! input (frames). The card's certificates are remembered (as the disk
//! cache would), so the CHUID decides the serial, whether the card counts
//! as signed, and whether GET METADATA must prove the remembered keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card_fuzz::{commands, enumerate, piv_card, Remembered, ReplayCard};

fuzz_target!(|data: &[u8]| {
    let card = piv_card();
    let mut link = ReplayCard::new(card, commands::piv_chuid, data);
    let recall = Remembered(card.certificates.clone());
    enumerate(&card.atr, &mut link, &recall);
});
