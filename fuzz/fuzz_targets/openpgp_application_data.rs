//! OpenPGP Application Related Data (src/profile/openpgp.rs): the recorded
//! simulated OpenPGP card, except that GET DATA of `6E` (AID, historical
//! bytes, extended capabilities, algorithm attributes `C1`-`C3`, PW status
//! `C4`, fingerprints, generation times, key information), of the name
//! `5B` and of the security support template `7A` (signature counter) are
//! answered by the fuzz input (frames, in that order).
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card_fuzz::{commands, enumerate_fresh, openpgp_card, ReplayCard};

fuzz_target!(|data: &[u8]| {
    let card = openpgp_card();
    let mut link = ReplayCard::new(card, commands::openpgp_application_data, data);
    enumerate_fresh(&card.atr, &mut link);
});
