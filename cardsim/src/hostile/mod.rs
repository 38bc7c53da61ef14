//! A hostile card: seeded, reproducible mischief between the module and an
//! honest simulated PIV card, for whole-module fuzzing through the C ABI.
//!
//! [`HostileCard`] sits in front of one reader of a [`SimBackend`]. Its
//! [`backend`](HostileCard::backend) is what the module gets. While a
//! [`HostilePlan`] is active, each APDU (and each transaction) may, with
//! the plan's odds, meet one of the plan's [`Mischief`] kinds; otherwise it
//! reaches the honest card. A second PIV application with other keys (the
//! *impostor*) stands in for "another application on the same card".
//!
//! The card also watches the module: it reports a registered secret (a PIN)
//! found in any command but VERIFY, CHANGE REFERENCE DATA and RESET RETRY
//! COUNTER, a PIN command that reaches the impostor, and a call that sends
//! more APDUs than [`HostileCard::APDU_LIMIT`] (a card-driven loop without
//! a bound); it counts the honest card's PIN tries spent, and follows its
//! PIN through CHANGE REFERENCE DATA.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use p11card::transport::{
    CardTransport, PinPadVerify, ReaderBackend, ReaderStatus, Transmit, TransportError,
};

use crate::apdu::Command;
use crate::backend::{SimBackend, SimCard};
use crate::card::SimPivCard;
use crate::keys::{KeyType, SimPublicKey, Slot};

mod plan;

pub use plan::{HostilePlan, HostileRng, Mischief};

/// A response that continues over several commands.
#[derive(Debug, Clone)]
enum Storm {
    /// `61xx` without data to every GET RESPONSE; then the real answer.
    MoreData { sw2: u8, answer: Vec<u8> },
    /// Data and `61xx` to every GET RESPONSE.
    Chain,
    /// `6Cxx` to every command with this INS; then the command goes
    /// through.
    WrongLe { ins: u8 },
}

/// Which application gets the commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Honest,
    Impostor,
}

const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE: u8 = 0x24;
const INS_RESET_RETRY: u8 = 0x2C;
const INS_SELECT: u8 = 0xA4;
const INS_GET_DATA: u8 = 0xCB;
const INS_GET_RESPONSE: u8 = 0xC0;
const KEY_REF_PIN: u8 = 0x80;
/// The SELECT of the PIV application (SP 800-73-4 Part 2 §3.1.1).
const SELECT_PIV: [u8; 14] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
];
/// Events kept for a failure report.
const JOURNAL_LEN: usize = 24;

#[derive(Debug)]
struct State {
    rng: HostileRng,
    plan: Option<HostilePlan>,
    backend: SimBackend,
    reader: String,
    honest: SimCard,
    impostor: SimPivCard,
    route: Route,
    /// The storm on now, and how many more pieces (`None`: for ever).
    storm: Option<(Storm, Option<u64>)>,
    /// GET DATA answered by the impostor for this many more APDUs.
    swapped_reads: u64,
    /// The card is out; put back after this many more reader listings.
    out_for: Option<u64>,
    secrets: Vec<Vec<u8>>,
    card_pin: Vec<u8>,
    tries_spent: u64,
    /// Tries spent on PIN commands whose real answer the module never saw.
    tries_masked: u64,
    call_apdus: u64,
    violations: Vec<String>,
    journal: Vec<String>,
}

impl State {
    fn note(&mut self, event: String) {
        if self.journal.len() == JOURNAL_LEN {
            self.journal.remove(0);
        }
        self.journal.push(event);
    }

    /// Picks a mischief for this moment (APDU or transaction start), if the
    /// plan's odds say so.
    fn roll(&mut self, at_transaction: bool) -> Option<Mischief> {
        let plan = self.plan.as_ref()?;
        let kinds: Vec<Mischief> = plan
            .kinds
            .iter()
            .copied()
            .filter(|kind| kind.at_transaction() == at_transaction || *kind == Mischief::Reset)
            .collect();
        let one_in = plan.one_in.max(1);
        if kinds.is_empty() || !self.rng.one_in(one_in) {
            return None;
        }
        Some(*self.rng.pick(&kinds))
    }

    /// How long a storm lasts: a few rounds, many, or for ever (`None`).
    fn storm_length(&mut self) -> Option<u64> {
        match self.rng.below(20) {
            0..=11 => Some(self.rng.between(1, 8)),
            12..=16 => Some(self.rng.between(9, 300)),
            _ => None,
        }
    }

    fn reset_card(&mut self) {
        self.honest.reset();
        self.impostor.power_on();
        self.route = Route::Honest;
        self.storm = None;
    }

    fn put_card_back(&mut self) {
        if self.out_for.take().is_some() {
            self.backend.insert(&self.reader, self.honest.clone());
            self.route = Route::Honest;
            self.note("card put back".into());
        }
    }

    fn carries_secret(&self, command: &[u8]) -> bool {
        let data = command.get(5..).unwrap_or_default();
        self.secrets
            .iter()
            .any(|secret| !secret.is_empty() && data.windows(secret.len()).any(|w| w == secret))
    }

    /// The PIN checks on a command about to be answered by `route`.
    fn watch(&mut self, command: &[u8], route: Route) {
        if !self.carries_secret(command) {
            return;
        }
        let ins = command[1];
        if ![INS_VERIFY, INS_CHANGE_REFERENCE, INS_RESET_RETRY].contains(&ins) {
            self.violations.push(format!(
                "pin-in-command: a PIN in a command with INS {ins:02X} (header {:02X?})",
                &command[..4]
            ));
        } else if route == Route::Impostor {
            self.violations.push(format!(
                "pin-to-other-application: INS {ins:02X} with a PIN reached the other \
                 application (selected by another process since the module's last SELECT)"
            ));
        }
    }

    /// The storm's answer to `command`, if a storm is on and `command`
    /// continues it.
    fn storm_answer(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        let (storm, left) = self.storm.take()?;
        let ins = command.get(1).copied().unwrap_or(0);
        let continues = match storm {
            Storm::MoreData { .. } | Storm::Chain => ins == INS_GET_RESPONSE,
            Storm::WrongLe { ins: stormy } => ins == stormy,
        };
        if !continues {
            return None;
        }
        match (storm, left) {
            (Storm::MoreData { answer, .. }, Some(0)) => Some(answer),
            (Storm::Chain, Some(0)) => Some(vec![0x01, 0x90, 0x00]),
            (Storm::WrongLe { .. }, Some(0)) => None,
            (storm, left) => {
                let piece = self.storm_piece(&storm);
                self.storm = Some((storm, left.map(|n| n - 1)));
                Some(piece)
            }
        }
    }

    /// Lets a storm end at its next piece.
    fn end_storm(&mut self) {
        if let Some((_, left)) = self.storm.as_mut() {
            *left = Some(0);
        }
    }

    fn storm_piece(&mut self, storm: &Storm) -> Vec<u8> {
        match storm {
            Storm::MoreData { sw2, .. } => vec![0x61, *sw2],
            Storm::Chain => {
                let len = self.rng.between(1, 255) as usize;
                let mut piece = self.rng.bytes(len);
                piece.extend_from_slice(&[0x61, self.rng.next_u64() as u8]);
                piece
            }
            Storm::WrongLe { .. } => vec![0x6C, self.rng.next_u64() as u8],
        }
    }

    /// The honest card's PIN bookkeeping around a command it processes.
    fn before_honest(&mut self, command: &[u8]) -> Option<u8> {
        let is_pin_command = command.len() > 5
            && [INS_VERIFY, INS_CHANGE_REFERENCE].contains(&command[1])
            && command[3] == KEY_REF_PIN;
        is_pin_command.then(|| self.honest.with(|c| c.pin_tries_left()))
    }

    /// Returns whether the command cost a PIN try.
    fn after_honest(&mut self, command: &[u8], tries_before: Option<u8>, response: &[u8]) -> bool {
        let Some(before) = tries_before else {
            return false;
        };
        let after = self.honest.with(|c| c.pin_tries_left());
        if after < before {
            self.tries_spent += u64::from(before - after);
        }
        let changed = command[1] == INS_CHANGE_REFERENCE && response.ends_with(&[0x90, 0x00]);
        if let (true, Ok(parsed)) = (changed, Command::parse(command)) {
            if let Some(new) = parsed.data.get(8..16) {
                self.card_pin = new.iter().copied().take_while(|&b| b != 0xFF).collect();
            }
        }
        after < before
    }
}

/// The other application: a PIV card with keys of the default card's
/// types, but other keys (built once: test keys are slow to load).
fn impostor_template() -> &'static SimPivCard {
    static TEMPLATE: OnceLock<SimPivCard> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        SimPivCard::new()
            .with_serial(87_654_321)
            .with_key_from(Slot::Authentication, KeyType::Rsa2048, Slot::Signature)
            .with_key_from(Slot::Signature, KeyType::EccP256, Slot::CardAuthentication)
            .with_key_from(Slot::KeyManagement, KeyType::EccP384, Slot::Authentication)
            .with_key_from(Slot::CardAuthentication, KeyType::EccP256, Slot::Signature)
    })
}

/// A hostile card in front of an honest one: see the [module](self) docs.
/// Cloning it clones the handle.
#[derive(Debug, Clone)]
pub struct HostileCard {
    state: Arc<Mutex<State>>,
}

impl HostileCard {
    /// More APDUs than this in one call is a card-driven loop without a
    /// bound; the card then turns calm so that the call can end.
    pub const APDU_LIMIT: u64 = 5000;

    /// A hostile card in front of `honest` (a PIV card in `reader` of
    /// `backend`, whose PIN is `pin`), with its mischief seeded by `seed`.
    /// It starts calm. The other application holds keys of the same types
    /// as the default card's, but other ones.
    ///
    /// # Panics
    /// If `honest` is not a PIV card.
    pub fn new(backend: SimBackend, reader: &str, honest: SimCard, pin: &str, seed: u64) -> Self {
        honest.with(|_| ());
        let mut impostor = impostor_template().clone();
        impostor.process(&SELECT_PIV);
        let state = State {
            rng: HostileRng::new(seed),
            plan: None,
            backend,
            reader: reader.to_owned(),
            honest,
            impostor,
            route: Route::Honest,
            storm: None,
            swapped_reads: 0,
            out_for: None,
            secrets: Vec::new(),
            card_pin: pin.as_bytes().to_vec(),
            tries_spent: 0,
            tries_masked: 0,
            call_apdus: 0,
            violations: Vec::new(),
            journal: Vec::new(),
        };
        HostileCard {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The readers, as the module should see them.
    pub fn backend(&self) -> HostileBackend {
        HostileBackend { card: self.clone() }
    }

    /// The other application's public key in `slot` (a signature under it
    /// is a signature by the wrong key).
    pub fn impostor_public_key(&self, slot: Slot) -> Option<SimPublicKey> {
        self.lock().impostor.public_key(slot)
    }

    /// Starts misbehaving as `plan` says.
    pub fn set_plan(&self, plan: HostilePlan) {
        let mut state = self.lock();
        state.note(format!("plan {plan:?}"));
        state.plan = Some(plan);
    }

    /// Stops all mischief: storms end, the card is back in its reader, the
    /// honest application answers.
    pub fn calm(&self) {
        let mut state = self.lock();
        state.plan = None;
        state.end_storm();
        state.swapped_reads = 0;
        state.put_card_back();
    }

    /// Takes the card out of its reader and puts it back, as a person
    /// would.
    pub fn reinsert(&self) {
        let state = self.lock();
        state.backend.remove(&state.reader);
        state.backend.insert(&state.reader, state.honest.clone());
    }

    /// Registers a secret (a PIN) to look for in every command.
    pub fn watch_secret(&self, secret: &[u8]) {
        let mut state = self.lock();
        if !state.secrets.iter().any(|s| s == secret) {
            state.secrets.push(secret.to_vec());
        }
    }

    /// The honest card's PIN now, followed through CHANGE REFERENCE DATA.
    pub fn card_pin(&self) -> Vec<u8> {
        self.lock().card_pin.clone()
    }

    /// PIN tries the honest card counted down so far.
    pub fn tries_spent(&self) -> u64 {
        self.lock().tries_spent
    }

    /// PIN tries the honest card counted down on commands whose answer the
    /// module did not see as the card gave it (so it could not know the PIN
    /// was wrong, and may use it once more).
    pub fn tries_masked(&self) -> u64 {
        self.lock().tries_masked
    }

    /// Starts counting the APDUs of a new call.
    pub fn begin_call(&self) {
        self.lock().call_apdus = 0;
    }

    /// The APDUs sent since [`begin_call`](Self::begin_call).
    pub fn call_apdus(&self) -> u64 {
        self.lock().call_apdus
    }

    /// The violations seen since the last call of this method.
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().violations)
    }

    /// The last mischief done, oldest first (for a failure report).
    pub fn journal(&self) -> Vec<String> {
        self.lock().journal.clone()
    }

    /// One command through the hostile card.
    fn transmit(&self, link: &mut dyn Transmit, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut state = self.lock();
        state.call_apdus += 1;
        if state.call_apdus == Self::APDU_LIMIT + 1 {
            let event = state.journal.last().cloned().unwrap_or_default();
            state.violations.push(format!(
                "bounded-loop: more than {} APDUs in one call (last mischief: {event})",
                Self::APDU_LIMIT
            ));
            state.plan = None;
            state.end_storm();
        }
        let ins = command.get(1).copied().unwrap_or(0);
        if ins == INS_SELECT {
            state.route = Route::Honest;
        }
        if let Some(answer) = state.storm_answer(command) {
            return Ok(answer);
        }
        let route = if state.swapped_reads > 0 {
            state.swapped_reads -= 1;
            if ins == INS_GET_DATA {
                Route::Impostor
            } else {
                state.route
            }
        } else {
            state.route
        };
        let mischief = state.roll(false);
        if let Some(kind) = mischief {
            state.note(format!("{} at INS {ins:02X}", kind.name()));
        }
        match mischief {
            Some(Mischief::EndlessChaining) => {
                let length = state.storm_length();
                state.storm = Some((Storm::Chain, length));
                return Ok(state.storm_piece(&Storm::Chain));
            }
            Some(Mischief::Storm6C) => {
                let length = state.storm_length();
                let storm = Storm::WrongLe { ins };
                let piece = state.storm_piece(&storm);
                state.storm = Some((storm, length));
                return Ok(piece);
            }
            Some(Mischief::Removal) => {
                state.backend.remove(&state.reader);
                state.out_for = Some(state.rng.below(4));
                state.storm = None;
                return Err(TransportError::CardRemoved);
            }
            Some(Mischief::Reset) => state.reset_card(),
            Some(Mischief::ChangingContents) => {
                state.swapped_reads = state.rng.between(1, 8);
            }
            _ => {}
        }
        let route = if mischief == Some(Mischief::ForeignAnswer) {
            Route::Impostor
        } else {
            route
        };
        // A PIN command the other application "answers" at random is not
        // handed to it: it accepts any PIN.
        if mischief == Some(Mischief::ForeignAnswer) && state.carries_secret(command) {
            return Ok(vec![0x90, 0x00]);
        }
        state.watch(command, route);
        let mut cost_a_try = false;
        let mut response = match route {
            Route::Impostor => state.impostor.process(command),
            Route::Honest => {
                let tries_before = state.before_honest(command);
                let response = link.transmit(command)?;
                cost_a_try = state.after_honest(command, tries_before, &response);
                response
            }
        };
        let honest_answer = cost_a_try.then(|| response.clone());
        if mischief == Some(Mischief::Storm61) {
            let sw2 = if state.rng.one_in(3) {
                0
            } else {
                state.rng.next_u64() as u8
            };
            let length = state.storm_length();
            let storm = Storm::MoreData {
                sw2,
                answer: response,
            };
            let piece = state.storm_piece(&storm);
            state.storm = Some((storm, length));
            state.tries_masked += u64::from(cost_a_try);
            return Ok(piece);
        }
        let rng = &mut state.rng;
        match mischief {
            Some(Mischief::RandomData) => {
                let len = rng.below(300) as usize;
                response = rng.bytes(len);
                if rng.one_in(2) {
                    response.extend_from_slice(&[0x90, 0x00]);
                }
            }
            Some(Mischief::Truncated) => {
                let keep = rng.below(response.len() as u64) as usize;
                response.truncate(keep);
            }
            Some(Mischief::WrongLength) => {
                let data_len = response.len().saturating_sub(2);
                let mut data = response[..data_len].to_vec();
                if rng.one_in(2) && data_len > 0 {
                    data.truncate(rng.below(data_len as u64) as usize);
                } else {
                    let extra = rng.between(1, 64) as usize;
                    data.extend(rng.bytes(extra));
                }
                data.extend_from_slice(&[0x90, 0x00]);
                response = data;
            }
            Some(Mischief::RandomStatus) => {
                if rng.one_in(2) {
                    response.clear();
                }
                let len = response.len().saturating_sub(2);
                response.truncate(len);
                response.extend_from_slice(&(rng.next_u64() as u16).to_be_bytes());
            }
            _ => {}
        }
        if honest_answer.is_some_and(|answer| answer != response) {
            state.tries_masked += 1;
        }
        Ok(response)
    }

    /// Mischief at the start of a transaction; `Err` fails the transaction.
    fn begin_transaction(&self) {
        let mut state = self.lock();
        match state.roll(true) {
            Some(Mischief::ForeignSelect) => {
                state.note("foreign_select between transactions".into());
                state.impostor.process(&SELECT_PIV);
                state.route = Route::Impostor;
            }
            Some(Mischief::Reset) => {
                state.note("reset between transactions".into());
                state.reset_card();
            }
            _ => {}
        }
    }

    /// A reader listing: a pulled card comes back after a few.
    fn count_listing(&self) {
        let mut state = self.lock();
        match state.out_for {
            Some(0) => state.put_card_back(),
            Some(n) => state.out_for = Some(n - 1),
            None => {}
        }
    }

    fn inner_backend(&self) -> SimBackend {
        self.lock().backend.clone()
    }
}

/// The readers of a [`HostileCard`]'s backend, with the hostile card in its
/// reader (a [`ReaderBackend`] for the module).
#[derive(Debug, Clone)]
pub struct HostileBackend {
    card: HostileCard,
}

impl ReaderBackend for HostileBackend {
    fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError> {
        self.card.count_listing();
        self.card.inner_backend().readers()
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, TransportError> {
        let inner = self.card.inner_backend().connect(reader)?;
        Ok(Box::new(HostileTransport {
            inner,
            card: self.card.clone(),
        }))
    }
}

struct HostileTransport {
    inner: Box<dyn CardTransport>,
    card: HostileCard,
}

impl CardTransport for HostileTransport {
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }

    fn has_pin_pad(&self) -> bool {
        self.inner.has_pin_pad()
    }

    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Transmit),
    ) -> Result<(), TransportError> {
        self.card.begin_transaction();
        let card = self.card.clone();
        self.inner.transaction(&mut |link| {
            body(&mut HostileLink { link, card: &card });
        })
    }
}

struct HostileLink<'a> {
    link: &'a mut dyn Transmit,
    card: &'a HostileCard,
}

impl Transmit for HostileLink<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.card.transmit(self.link, command)
    }

    fn extended_length(&self) -> Option<bool> {
        self.link.extended_length()
    }

    fn note_extended_length(&mut self, works: bool) {
        self.link.note_extended_length(works);
    }

    fn verify_pin_pad(&mut self, request: &PinPadVerify) -> Result<Vec<u8>, TransportError> {
        self.link.verify_pin_pad(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_READER;

    const PIN: &str = "123456";

    fn hostile(plan: Option<HostilePlan>) -> (HostileCard, SimCard) {
        let (backend, honest) = SimBackend::with_card(SimPivCard::new());
        let card = HostileCard::new(backend, DEFAULT_READER, honest.clone(), PIN, 7);
        if let Some(plan) = plan {
            card.set_plan(plan);
        }
        (card, honest)
    }

    fn always(kind: Mischief) -> Option<HostilePlan> {
        Some(HostilePlan {
            kinds: vec![kind],
            one_in: 1,
        })
    }

    /// Sends `commands` in one transaction through the hostile backend.
    fn exchange(card: &HostileCard, commands: &[&[u8]]) -> Vec<Result<Vec<u8>, TransportError>> {
        let mut transport = card.backend().connect(DEFAULT_READER).unwrap();
        let mut answers = Vec::new();
        let outcome = transport.transaction(&mut |link| {
            answers = commands.iter().map(|c| link.transmit(c)).collect();
        });
        assert!(matches!(outcome, Ok(()) | Err(TransportError::CardRemoved)));
        answers
    }

    fn sw(answer: &Result<Vec<u8>, TransportError>) -> u16 {
        let bytes = answer.as_ref().expect("an answer");
        u16::from_be_bytes([bytes[bytes.len() - 2], bytes[bytes.len() - 1]])
    }

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let (mut a, mut b) = (HostileRng::new(42), HostileRng::new(42));
        let first: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(first, (0..8).map(|_| a.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn a_calm_hostile_card_is_the_honest_card() {
        let (card, honest) = hostile(None);
        assert_eq!(sw(&exchange(&card, &[&SELECT_PIV])[0]), 0x9000);
        assert_eq!(honest.apdu_count(), 1);
    }

    #[test]
    fn a_61xx_storm_ends_with_the_real_answer_once_calm() {
        let (card, _) = hostile(always(Mischief::Storm61));
        let get_response: &[u8] = &[0x00, 0xC0, 0x00, 0x00, 0x00];
        let answers = exchange(&card, &[&SELECT_PIV]);
        assert_eq!(answers[0].as_ref().unwrap().len(), 2, "61xx without data");
        assert_eq!(answers[0].as_ref().unwrap()[0], 0x61);
        card.calm();
        let answers = exchange(&card, &[get_response]);
        assert_eq!(sw(&answers[0]), 0x9000);
        assert_eq!(
            answers[0].as_ref().unwrap()[0],
            0x61,
            "the application template"
        );
    }

    #[test]
    fn a_pin_outside_verify_and_a_pin_to_the_other_application_are_reported() {
        let (card, _) = hostile(None);
        card.watch_secret(PIN.as_bytes());
        let mut get_data = vec![0x00, 0xCB, 0x3F, 0xFF, 0x08];
        get_data.extend_from_slice(b"123456\xFF\xFF");
        exchange(&card, &[&get_data]);
        let found = card.take_violations();
        assert!(found[0].starts_with("pin-in-command"), "{found:?}");
        let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
        verify.extend_from_slice(b"123456\xFF\xFF");
        // Another process selected the other application.
        card.lock().route = Route::Impostor;
        exchange(&card, &[&verify]);
        let found = card.take_violations();
        assert!(
            found[0].starts_with("pin-to-other-application"),
            "{found:?}"
        );
    }

    #[test]
    fn the_card_pin_and_tries_are_followed() {
        let (card, honest) = hostile(None);
        let mut change = vec![0x00, 0x24, 0x00, 0x80, 0x10];
        change.extend_from_slice(b"123456\xFF\xFF654321\xFF\xFF");
        let mut wrong = vec![0x00, 0x20, 0x00, 0x80, 0x08];
        wrong.extend_from_slice(b"999999\xFF\xFF");
        let answers = exchange(&card, &[&SELECT_PIV, &change, &wrong]);
        assert_eq!(sw(&answers[1]), 0x9000);
        assert_eq!(card.card_pin(), b"654321");
        assert_eq!(card.tries_spent(), 1);
        assert_eq!(honest.with(|c| c.pin_tries_left()), 2);
    }

    #[test]
    fn a_pulled_card_comes_back_when_calm() {
        let (card, honest) = hostile(always(Mischief::Removal));
        let answers = exchange(&card, &[&SELECT_PIV]);
        assert!(matches!(answers[0], Err(TransportError::CardRemoved)));
        assert!(!honest.is_present());
        card.calm();
        assert!(honest.is_present());
        assert_eq!(sw(&exchange(&card, &[&SELECT_PIV])[0]), 0x9000);
    }
}
