//! A PKCS#15 application that the profile's AID does not select is found
//! through EF.DIR: the simulated MyEID card (personalised by OpenSC's
//! `pkcs15-init`, whose EF.DIR lists the application and its path) under a
//! generic profile that probes another issuer's PKCS#15 AID, as national
//! eID cards carry (RID `A0 00 00 01 77`, PIX "PKCS-15").

use p11card::profile::{Profile, ProfileSet};
use p11card::Context;
use p11card_cardsim::{SimBackend, SimCard, SimMyEidCard};

const IMAGE: &str = include_str!("realstack/pkcs15/myeid-personalised.image");
const GENERIC: &str = include_str!("../cardprofiles/pkcs15.toml");
/// A PKCS#15 AID under another issuer's RID.
const BELGIAN_STYLE_AID: &str = "A0 00 00 01 77 50 4B 43 53 2D 31 35";

/// The generic profile, probing `aid` instead of ISO/IEC 7816-15's.
fn generic_profile(aid: &str) -> ProfileSet {
    let generic = GENERIC.replace(
        "aid = \"A0 00 00 00 63 50 4B 43 53 2D 31 35\"",
        &format!("aid = \"{aid}\""),
    );
    assert_ne!(generic, GENERIC, "the generic profile names its AID");
    let profile = Profile::from_toml(&generic).expect("the changed profile is valid");
    ProfileSet::from_profiles(vec![profile])
}

/// The card from `image` under an ATR no profile lists, with `profiles`.
fn context(image: &str, profiles: ProfileSet) -> (Context, SimCard) {
    let card = SimMyEidCard::from_image(image)
        .expect("the image loads")
        .with_atr([0x3B, 0x80, 0x80, 0x01, 0x01]);
    let (backend, card) = SimBackend::with_card(card);
    (Context::with_backend(Box::new(backend), profiles), card)
}

#[test]
fn ef_dir_gives_the_application_another_aid_does_not_select() {
    let (context, card) = context(IMAGE, generic_profile(BELGIAN_STYLE_AID));
    let found = context.first_card().expect("the card is recognised");
    assert_eq!(found.token_info().unwrap().label, "p11card MyEID");
    assert_eq!(found.keys().unwrap().len(), 6);
    let transcript = card.transcript();
    // SELECT by path from the MF (P1 08: the path without 3F00).
    let select_ef_dir = "00 A4 08 0C 02 2F 00";
    assert!(transcript.contains(select_ef_dir), "{transcript}");

    // Later transactions select the path EF.DIR gave, without EF.DIR.
    card.clear_log();
    found.login(b"123456").expect("the PIN the AODF describes");
    let transcript = card.transcript();
    assert!(!transcript.contains(select_ef_dir), "{transcript}");
    assert!(!transcript.contains("A0 00 00 01 77"), "{transcript}");
}

#[test]
fn a_card_whose_ef_dir_lists_no_pkcs15_application_is_not_recognised() {
    // The image's EF.DIR entry under a non-PKCS#15 AID (PIX "PKCS-16").
    let image = IMAGE.replace("504B43532D3135500D", "504B43532D3136500D");
    assert_ne!(image, IMAGE);
    let (context, _card) = context(&image, generic_profile(BELGIAN_STYLE_AID));
    assert!(context.first_card().is_err());
}
