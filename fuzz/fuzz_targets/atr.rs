//! The ATR (src/profile/mod.rs matching, src/profile/openpgp.rs historical
//! bytes): which profiles a card's ATR picks, and what the engines make of
//! it, with the recorded simulated PIV and OpenPGP cards answering.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card_fuzz::{enumerate_fresh, openpgp_card, piv_card, profiles, ReplayCard};

fuzz_target!(|atr: &[u8]| {
    let candidates = profiles().candidates(atr);
    let mut names: Vec<&str> = candidates.iter().map(|p| p.name.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), candidates.len(), "a profile is tried twice");
    for card in [piv_card(), openpgp_card()] {
        let mut link = ReplayCard::new(card, |_| false, &[]);
        enumerate_fresh(atr, &mut link);
    }
});
