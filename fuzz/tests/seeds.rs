//! The committed seeds still reach what their targets are about: the
//! recorded cards enumerate, and every answer a seed holds for the
//! commands a target fuzzes is taken by such a command (a seed whose
//! answers nothing asks for would fuzz nothing).

use p11card_fuzz::{
    commands, enumerate, enumerate_fresh, openpgp_card, piv_card, Fixture, Remembered, ReplayCard,
    ScriptedCard,
};
use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

/// The first seed of `target` (recorded from the fixture's own card)
/// enumerates the card with all its answers used; the others (other cards'
/// answers) run.
fn check(target: &str, fixture: &Fixture, fuzzed: fn(&[u8]) -> bool, remembered: bool) {
    for (index, (path, seed)) in seeds(target).into_iter().enumerate() {
        let mut link = ReplayCard::new(fixture, fuzzed, &seed);
        let recall = Remembered(fixture.certificates.clone());
        let info = if remembered {
            enumerate(&fixture.atr, &mut link, &recall)
        } else {
            enumerate_fresh(&fixture.atr, &mut link)
        };
        if index > 0 {
            continue;
        }
        let info = info.unwrap_or_else(|| panic!("{} does not enumerate", path.display()));
        assert!(!info.keys.is_empty(), "{}: no keys", path.display());
        assert_eq!(
            link.unused_answers(),
            0,
            "{}: answers unused",
            path.display()
        );
    }
}

#[test]
fn the_recorded_cards_enumerate_with_every_key() {
    let piv = enumerate_fresh(
        &piv_card().atr,
        &mut ReplayCard::new(piv_card(), |_| false, &[]),
    )
    .expect("PIV enumerates");
    assert_eq!(piv.keys.len(), 4);
    assert_eq!(piv_card().certificates.len(), 4);
    let openpgp = enumerate_fresh(
        &openpgp_card().atr,
        &mut ReplayCard::new(openpgp_card(), |_| false, &[]),
    )
    .expect("OpenPGP enumerates");
    assert_eq!(openpgp.keys.len(), 3);
    let certified = openpgp.keys.iter().filter(|k| k.certificate.is_some());
    assert_eq!(certified.count(), 2);
}

#[test]
fn piv_seeds_reach_their_commands() {
    let card = piv_card();
    check(
        "piv_certificate",
        card,
        commands::piv_authentication_certificate,
        false,
    );
    check("piv_chuid", card, commands::piv_chuid, true);
    check("piv_metadata", card, commands::piv_metadata, true);
}

#[test]
fn openpgp_seeds_reach_their_commands() {
    let card = openpgp_card();
    check(
        "openpgp_application_data",
        card,
        commands::openpgp_application_data,
        false,
    );
    check(
        "openpgp_pw_status",
        card,
        commands::openpgp_pw_status,
        false,
    );
    check(
        "openpgp_public_key",
        card,
        commands::openpgp_public_key,
        false,
    );
    check(
        "openpgp_cardholder_certificate",
        card,
        commands::openpgp_cardholder_certificate,
        false,
    );
}

#[test]
fn enumeration_seeds_replay_whole_conversations() {
    for (path, seed) in seeds("card_enumeration") {
        let selector = seed[0];
        let atr = match selector & 3 {
            0 => piv_card().atr.clone(),
            1 => openpgp_card().atr.clone(),
            _ => vec![
                0x3B, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xFF, 0x01, 0x00, 0x0B,
            ],
        };
        let recall = Remembered(piv_card().certificates.clone());
        let mut card = ScriptedCard::new(&seed[1..]);
        let info = if selector & 4 != 0 {
            enumerate(&atr, &mut card, &recall)
        } else {
            enumerate_fresh(&atr, &mut card)
        };
        let info = info.unwrap_or_else(|| panic!("{} does not enumerate", path.display()));
        assert!(!info.keys.is_empty(), "{}", path.display());
    }
}
