//! GET METADATA (Yubico `F7`, src/profile/piv.rs): the recorded simulated
//! PIV card (unsigned CHUID, profile `yubikey-piv` with `key_metadata`),
//! with its certificates remembered, so every key slot's metadata must
//! match; the metadata answers come from the fuzz input (frames, one per
//! GET METADATA in order).
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card_fuzz::{commands, enumerate, piv_card, Remembered, ReplayCard};

fuzz_target!(|data: &[u8]| {
    let card = piv_card();
    let mut link = ReplayCard::new(card, commands::piv_metadata, data);
    let recall = Remembered(card.certificates.clone());
    enumerate(&card.atr, &mut link, &recall);
});
