//! OpenPGP public keys (`7F49` from GENERATE ASYMMETRIC KEY PAIR in read
//! mode, src/profile/openpgp.rs): the recorded simulated OpenPGP card,
//! except that every `47 81` is answered by the fuzz input (frames, one
//! per key in order: signature, decryption, authentication).
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card_fuzz::{commands, enumerate_fresh, openpgp_card, ReplayCard};

fuzz_target!(|data: &[u8]| {
    let card = openpgp_card();
    let mut link = ReplayCard::new(card, commands::openpgp_public_key, data);
    enumerate_fresh(&card.atr, &mut link);
});
