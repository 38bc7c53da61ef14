//! OpenPGP cardholder certificates (`7F21`, src/profile/openpgp.rs): the
//! recorded simulated OpenPGP card, except that SELECT DATA, GET DATA and
//! GET NEXT DATA of `7F21` are answered by the fuzz input (frames, in
//! order): the occurrences, their wrapping, the X.509 inside and which
//! key each one is attached to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card_fuzz::{commands, enumerate_fresh, openpgp_card, ReplayCard};

fuzz_target!(|data: &[u8]| {
    let card = openpgp_card();
    let mut link = ReplayCard::new(card, commands::openpgp_cardholder_certificate, data);
    enumerate_fresh(&card.atr, &mut link);
});
