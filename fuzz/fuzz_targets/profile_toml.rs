//! Card profiles (src/profile/mod.rs `Profile::from_toml`, schema.rs
//! validation) and the configuration file (src/config.rs `Config`): the
//! TOML files the module reads. A profile that validates is matched
//! against ATRs and drives an engine against the recorded simulated cards.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card::config::Config;
use p11card::profile::{NoRecall, Profile, ProfileSet};
use p11card_fuzz::{enumerate_with, openpgp_card, piv_card, ReplayCard};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = toml::from_str::<Config>(text);
    let Ok(profile) = Profile::from_toml(text) else {
        return;
    };
    let set = ProfileSet::from_profiles(vec![profile]);
    for card in [piv_card(), openpgp_card()] {
        let mut link = ReplayCard::new(card, |_| false, &[]);
        enumerate_with(&set, &card.atr, &mut link, &NoRecall);
    }
});
