//! OpenPGP PW status bytes (`C4`, src/profile/openpgp.rs) read on their
//! own, as the PIN state and the SELECT probe of cards that lose their
//! login on SELECT read them: the recorded simulated OpenPGP card, except
//! that GET DATA of `C4` is answered by the fuzz input (frames).
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card_fuzz::{commands, enumerate_fresh, openpgp_card, ReplayCard};

fuzz_target!(|data: &[u8]| {
    let card = openpgp_card();
    let mut link = ReplayCard::new(card, commands::openpgp_pw_status, data);
    enumerate_fresh(&card.atr, &mut link);
});
