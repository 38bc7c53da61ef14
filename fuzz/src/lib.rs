//! What p11card's fuzz targets share: fuzz input cut into card answers, two
//! fake card links, the recorded simulated cards (`fixtures/`), and the
//! enumeration that a token's first use (`C_GetTokenInfo`, object search)
//! runs.
//!
//! A fake link counts the commands it is sent (GET RESPONSE aside: the
//! `channel` target bounds those per command) and panics beyond
//! [`MAX_APDUS`]: a card that can make the module send that many for one
//! operation has found a loop the card drives without a bound.

use p11card::card::Transaction;
use p11card::module::padded;
use p11card::profile::{CardInfo, NoRecall, ProfileSet, Recall, Record, RecordKind};
use p11card::token::objects_for_card;
use p11card::transport::{Transmit, TransportError};
use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

/// Most commands one engine call (or APDUs one channel command) may cost
/// before a fake link calls it an unbounded card-driven loop.
pub const MAX_APDUS: usize = 1000;

/// Panics (a fuzz finding) when `sent` APDUs exceed [`MAX_APDUS`].
pub fn check_apdu_bound(sent: usize, what: &str) {
    assert!(
        sent <= MAX_APDUS,
        "unbounded card-driven loop: the card made the module send more than \
         {MAX_APDUS} APDUs for {what}"
    );
}

/// Counts one command of an enumeration and checks the bound; GET RESPONSE
/// (INS `C0`) is the channel's per-command loop, bounded on its own.
fn count_command(sent: &mut usize, command: &[u8]) {
    if command.get(1) != Some(&0xC0) {
        *sent += 1;
        check_apdu_bound(*sent, "one enumeration");
    }
}

/// Cuts fuzz input into card answers: each a big-endian `u16` length and
/// that many bytes; a last answer shorter than its length takes the rest.
pub fn frames(mut data: &[u8]) -> VecDeque<Vec<u8>> {
    let mut out = VecDeque::new();
    while let [high, low, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*high, *low])).min(rest.len());
        out.push_back(rest[..len].to_vec());
        data = &rest[len..];
    }
    out
}

/// The inverse of [`frames`] (for writing seeds).
pub fn encode_frames<'a>(answers: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for answer in answers {
        let len = u16::try_from(answer.len()).expect("an answer fits a frame");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(answer);
    }
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("fixture hex"))
        .collect()
}

/// A simulated card as `examples/make_seeds.rs` recorded it: its ATR, its
/// certificates by key reference, and for each command the complete
/// answers it gave (GET RESPONSE chains joined), in order.
#[derive(Debug, Default)]
pub struct Fixture {
    /// The card's ATR.
    pub atr: Vec<u8>,
    /// The card's certificates (DER) by key reference.
    pub certificates: Vec<(u8, Vec<u8>)>,
    answers: HashMap<Vec<u8>, Vec<Vec<u8>>>,
}

impl Fixture {
    /// Parses the fixture text format (`atr`, `cert` and `apdu` lines).
    pub fn parse(text: &str) -> Fixture {
        let mut fixture = Fixture::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["atr", atr] => fixture.atr = unhex(atr),
                ["cert", reference, der] => {
                    fixture.certificates.push((unhex(reference)[0], unhex(der)))
                }
                ["apdu", command, answer] => fixture
                    .answers
                    .entry(unhex(command))
                    .or_default()
                    .push(unhex(answer)),
                [] => {}
                _ => panic!("bad fixture line: {line}"),
            }
        }
        fixture
    }
}

/// The fixture text format for a card with this ATR and these
/// certificates that answered `apdus` (whole answers, in order).
pub fn fixture_text(
    title: &str,
    atr: &[u8],
    certificates: &[(u8, Vec<u8>)],
    apdus: &[(Vec<u8>, Vec<u8>)],
) -> String {
    let mut out = format!("# {title}\n# written by examples/make_seeds.rs\n");
    out.push_str(&format!("atr {}\n", hex(atr)));
    for (reference, der) in certificates {
        out.push_str(&format!("cert {reference:02x} {}\n", hex(der)));
    }
    for (command, answer) in apdus {
        out.push_str(&format!("apdu {} {}\n", hex(command), hex(answer)));
    }
    out
}

/// The simulated PIV card (a YubiKey 5 ATR: profile `yubikey-piv`).
pub fn piv_card() -> &'static Fixture {
    static CARD: OnceLock<Fixture> = OnceLock::new();
    CARD.get_or_init(|| Fixture::parse(include_str!("../fixtures/piv.txt")))
}

/// The simulated OpenPGP card (profile `openpgp`).
pub fn openpgp_card() -> &'static Fixture {
    static CARD: OnceLock<Fixture> = OnceLock::new();
    CARD.get_or_init(|| Fixture::parse(include_str!("../fixtures/openpgp.txt")))
}

/// The profiles built into the library.
pub fn profiles() -> &'static ProfileSet {
    static PROFILES: OnceLock<ProfileSet> = OnceLock::new();
    PROFILES.get_or_init(ProfileSet::embedded)
}

/// A recorded card whose answers to the commands `fuzzed` picks come from
/// the fuzz input, in order; every other command (and those past the fuzz
/// input's answers) gets the recorded answer, or `6A82` if there is none.
pub struct ReplayCard<'a> {
    fixture: &'a Fixture,
    fuzzed: fn(&[u8]) -> bool,
    fuzz_answers: VecDeque<Vec<u8>>,
    served: HashMap<Vec<u8>, usize>,
    sent: usize,
    extended: Option<bool>,
}

impl<'a> ReplayCard<'a> {
    /// How many of the fuzz input's answers no command took.
    pub fn unused_answers(&self) -> usize {
        self.fuzz_answers.len()
    }

    /// `fixture` answering, except for commands `fuzzed` accepts, which
    /// take the frames of `data` ([`frames`]).
    pub fn new(fixture: &'a Fixture, fuzzed: fn(&[u8]) -> bool, data: &[u8]) -> Self {
        ReplayCard {
            fixture,
            fuzzed,
            fuzz_answers: frames(data),
            served: HashMap::new(),
            sent: 0,
            extended: None,
        }
    }
}

impl Transmit for ReplayCard<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        count_command(&mut self.sent, command);
        if (self.fuzzed)(command) {
            if let Some(answer) = self.fuzz_answers.pop_front() {
                return Ok(answer);
            }
        }
        let Some(answers) = self.fixture.answers.get(command) else {
            return Ok(vec![0x6A, 0x82]);
        };
        let served = self.served.entry(command.to_vec()).or_default();
        let answer = &answers[(*served).min(answers.len() - 1)];
        *served += 1;
        Ok(answer.clone())
    }

    fn extended_length(&self) -> Option<bool> {
        self.extended
    }

    fn note_extended_length(&mut self, works: bool) {
        self.extended = Some(works);
    }
}

/// A card that answers every command with the next frame of the fuzz
/// input; when they run out, the card is gone.
pub struct ScriptedCard {
    answers: VecDeque<Vec<u8>>,
    sent: usize,
    extended: Option<bool>,
}

impl ScriptedCard {
    /// A card answering with the frames of `data` ([`frames`]).
    pub fn new(data: &[u8]) -> Self {
        ScriptedCard {
            answers: frames(data),
            sent: 0,
            extended: None,
        }
    }
}

impl Transmit for ScriptedCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        count_command(&mut self.sent, command);
        self.answers.pop_front().ok_or(TransportError::CardRemoved)
    }

    fn extended_length(&self) -> Option<bool> {
        self.extended
    }

    fn note_extended_length(&mut self, works: bool) {
        self.extended = Some(works);
    }
}

/// Hands out remembered certificates (by key reference), as the module's
/// disk cache does.
pub struct Remembered(pub Vec<(u8, Vec<u8>)>);

impl Recall for Remembered {
    fn recall(&self, _identity: &[u8]) -> Option<Vec<Record>> {
        Some(
            self.0
                .iter()
                .map(|(reference, der)| {
                    Record::new(RecordKind::Certificate, &[*reference], der.clone())
                })
                .collect(),
        )
    }

    fn forget(&self, _identity: &[u8]) {}
}

/// Hands out remembered records of any kind, as the module's disk cache
/// does.
pub struct RememberedRecords(pub Vec<Record>);

impl Recall for RememberedRecords {
    fn recall(&self, _identity: &[u8]) -> Option<Vec<Record>> {
        Some(self.0.clone())
    }

    fn forget(&self, _identity: &[u8]) {}
}

/// What the module does with a card on first use, as far as card data
/// reaches: identify the application (SELECTs by the ATR's profiles), read
/// the card (`C_GetTokenInfo`), the PIN state, the rest of the keys (object
/// search), and the token's objects and info fields built from all that.
/// `None` when the card is not recognised or an engine call fails.
pub fn enumerate(atr: &[u8], link: &mut dyn Transmit, recall: &dyn Recall) -> Option<CardInfo> {
    enumerate_with(profiles(), atr, link, recall)
}

/// [`enumerate`] with the profiles of `set`.
pub fn enumerate_with(
    set: &ProfileSet,
    atr: &[u8],
    link: &mut dyn Transmit,
    recall: &dyn Recall,
) -> Option<CardInfo> {
    let app = set.identify(atr, link).ok()??;
    let mut channel = Transaction::new(link, app.profile().channel);
    let mut info = app.read_card(&mut channel, recall).ok()?;
    if let Ok(pin) = app.pin_status(&mut channel) {
        info.pin.get_or_insert(pin);
    }
    if !info.keys_complete {
        // A later transaction: SELECT again, then the remaining key slots.
        app.select(&mut channel).ok()?;
        info.keys = app
            .read_remaining_keys(&mut channel, &info.keys, info.key_slots_read)
            .ok()?;
        info.keys_complete = true;
    }
    let objects = objects_for_card(1, &info);
    // Three objects per key at most (private, public, certificate), and
    // the signature counter.
    assert!(objects.len() <= 3 * info.keys.len() + 1);
    let _: [u8; 32] = padded(&info.label);
    let _: [u8; 32] = padded(&info.manufacturer);
    let _: [u8; 16] = padded(&info.model);
    let _: [u8; 16] = padded(&info.serial);
    Some(info)
}

/// [`enumerate`] without remembered data.
pub fn enumerate_fresh(atr: &[u8], link: &mut dyn Transmit) -> Option<CardInfo> {
    enumerate(atr, link, &NoRecall)
}

/// The commands whose answers a target takes from the fuzz input.
pub mod commands {
    use super::is_get_data;

    /// PIV GET DATA of the PIV Authentication certificate (`5FC105`).
    pub fn piv_authentication_certificate(command: &[u8]) -> bool {
        is_get_data(command, 0xCB, &[0x5F, 0xC1, 0x05])
    }

    /// PIV GET DATA of any of the four key slots' certificates.
    pub fn piv_certificate(command: &[u8]) -> bool {
        [0x01, 0x05, 0x0A, 0x0B]
            .iter()
            .any(|&last| is_get_data(command, 0xCB, &[0x5F, 0xC1, last]))
    }

    /// PIV GET DATA of the CHUID (`5FC102`).
    pub fn piv_chuid(command: &[u8]) -> bool {
        is_get_data(command, 0xCB, &[0x5F, 0xC1, 0x02])
    }

    /// GET METADATA (Yubico's PIV extension, INS `F7`).
    pub fn piv_metadata(command: &[u8]) -> bool {
        command.get(1) == Some(&0xF7)
    }

    /// OpenPGP GET DATA of `6E` (application related data), `5B` (name)
    /// and `7A` (security support template).
    pub fn openpgp_application_data(command: &[u8]) -> bool {
        [[0x00, 0x6E], [0x00, 0x5B], [0x00, 0x7A]]
            .iter()
            .any(|tag| is_get_data(command, 0xCA, tag))
    }

    /// OpenPGP GET DATA of the PW status bytes (`C4`).
    pub fn openpgp_pw_status(command: &[u8]) -> bool {
        is_get_data(command, 0xCA, &[0x00, 0xC4])
    }

    /// OpenPGP GENERATE ASYMMETRIC KEY PAIR in read mode (`47 81`).
    pub fn openpgp_public_key(command: &[u8]) -> bool {
        matches!(command, [_, 0x47, 0x81, ..])
    }

    /// OpenPGP SELECT DATA, GET DATA and GET NEXT DATA of `7F21`.
    pub fn openpgp_cardholder_certificate(command: &[u8]) -> bool {
        is_get_data(command, 0xCA, &[0x7F, 0x21])
            || matches!(command, [_, 0xCC, 0x7F, 0x21, ..] | [_, 0xA5, ..])
    }
}

/// Whether `command` is GET DATA (`INS`) of `tag` as the engines send it:
/// PIV `CB 3F FF` with `5C` and the tag in the data, OpenPGP `CA` with the
/// tag in P1 P2.
pub fn is_get_data(command: &[u8], ins: u8, tag: &[u8]) -> bool {
    match (ins, command) {
        (0xCB, [_, 0xCB, 0x3F, 0xFF, rest @ ..]) => rest
            .windows(tag.len() + 2)
            .any(|w| w[0] == 0x5C && usize::from(w[1]) == tag.len() && &w[2..] == tag),
        (0xCA, [_, 0xCA, p1, p2, ..]) => [*p1, *p2] == tag,
        _ => false,
    }
}
