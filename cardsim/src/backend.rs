//! Transport glue: simulated readers ([`SimBackend`]) holding simulated
//! cards ([`SimCard`]), reached through p11card's transport traits.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use p11card::transport::{
    CardTransport, PinPadChange, PinPadVerify, ReaderBackend, ReaderStatus, Transmit,
    TransportError,
};

use crate::applet::SimApplet;
use crate::card::SimPivCard;
use crate::log::LoggedApdu;
use crate::misbehave::Misbehaviour;
use crate::myeid::SimMyEidCard;
use crate::openpgp::SimOpenPgpCard;

/// The first reader of [`SimBackend::new`].
pub const DEFAULT_READER: &str = "Sim Reader 0";

#[derive(Debug)]
struct Shared {
    card: SimApplet,
    present: bool,
    /// Bumped on every insertion: transports from an earlier one stay dead.
    insertion: u64,
    /// Bumped on every reset by "another process".
    resets: u64,
    transactions_begun: usize,
    transactions_ended: usize,
    /// The reader has a PIN pad, and this is what the user types on it.
    pin_pad: Option<Vec<u8>>,
    /// The new PIN the user types for a PIN-pad PIN change (`None`: the
    /// reader's PIN pad cannot change PINs).
    pin_pad_new_pin: Option<Vec<u8>>,
}

/// A handle on one simulated card (PIV or OpenPGP), shared by the test, the
/// readers and every transport connected to it. Cloning it clones the
/// handle, not the card.
#[derive(Debug, Clone)]
pub struct SimCard {
    shared: Arc<Mutex<Shared>>,
}

impl From<SimPivCard> for SimCard {
    fn from(card: SimPivCard) -> Self {
        SimCard::new(card)
    }
}

impl From<SimOpenPgpCard> for SimCard {
    fn from(card: SimOpenPgpCard) -> Self {
        SimCard::new(card)
    }
}

impl From<SimMyEidCard> for SimCard {
    fn from(card: SimMyEidCard) -> Self {
        SimCard::new(card)
    }
}

impl From<SimApplet> for SimCard {
    fn from(card: SimApplet) -> Self {
        SimCard::new(card)
    }
}

impl SimCard {
    /// Wraps `card`, present and powered (usable through
    /// [`connect`](Self::connect) without a backend).
    pub fn new(card: impl Into<SimApplet>) -> Self {
        let shared = Shared {
            pin_pad: None,
            pin_pad_new_pin: None,
            card: card.into(),
            present: true,
            insertion: 0,
            resets: 0,
            transactions_begun: 0,
            transactions_ended: 0,
        };
        SimCard {
            shared: Arc::new(Mutex::new(shared)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the PIV card (configuration, accessors, direct `process`).
    ///
    /// # Panics
    /// If the card is an OpenPGP card (use [`with_openpgp`](Self::with_openpgp)).
    pub fn with<R>(&self, f: impl FnOnce(&mut SimPivCard) -> R) -> R {
        let mut shared = self.lock();
        let card = shared
            .card
            .as_piv_mut()
            .expect("SimCard::with on an OpenPGP card; use with_openpgp");
        f(card)
    }

    /// Runs `f` on the OpenPGP card (configuration, accessors, direct
    /// `process`).
    ///
    /// # Panics
    /// If the card is a PIV card (use [`with`](Self::with)).
    pub fn with_openpgp<R>(&self, f: impl FnOnce(&mut SimOpenPgpCard) -> R) -> R {
        let mut shared = self.lock();
        let card = shared
            .card
            .as_openpgp_mut()
            .expect("SimCard::with_openpgp on a PIV card; use with");
        f(card)
    }

    /// Runs `f` on the card, whichever kind it is.
    pub fn with_applet<R>(&self, f: impl FnOnce(&mut SimApplet) -> R) -> R {
        f(&mut self.lock().card)
    }

    /// Whether the card is an OpenPGP card (else it is a PIV card).
    pub fn is_openpgp(&self) -> bool {
        self.lock().card.as_openpgp().is_some()
    }

    /// Changes the misbehaviour switches.
    pub fn misbehave(&self, f: impl FnOnce(&mut Misbehaviour)) {
        f(self.lock().card.misbehaviour_mut());
    }

    /// A copy of the APDU log (PINs redacted).
    pub fn log(&self) -> Vec<LoggedApdu> {
        self.lock().card.log().to_vec()
    }

    /// The number of APDUs the card processed.
    pub fn apdu_count(&self) -> usize {
        self.lock().card.apdu_count()
    }

    /// Empties the APDU log.
    pub fn clear_log(&self) {
        self.lock().card.clear_log();
    }

    /// The APDU log as text, one exchange per line.
    pub fn transcript(&self) -> String {
        self.lock().card.transcript()
    }

    /// Transactions begun and ended through transports.
    pub fn transactions(&self) -> (usize, usize) {
        let shared = self.lock();
        (shared.transactions_begun, shared.transactions_ended)
    }

    /// Puts the card in a reader with a PIN pad on which the user will
    /// type `pin` (`None`: a reader without PIN pad). Takes effect for
    /// transports connected afterwards.
    pub fn set_pin_pad(&self, pin: Option<&str>) {
        self.lock().pin_pad = pin.map(|p| p.as_bytes().to_vec());
    }

    /// Lets the PIN pad change PINs: the user types the [`set_pin_pad`]
    /// PIN as the current one and `new` as the new one (twice).
    ///
    /// [`set_pin_pad`]: Self::set_pin_pad
    pub fn set_pin_pad_new_pin(&self, new: Option<&str>) {
        self.lock().pin_pad_new_pin = new.map(|p| p.as_bytes().to_vec());
    }

    /// Whether the card is in its reader.
    pub fn is_present(&self) -> bool {
        self.lock().present
    }

    /// Takes the card out: every transport to it fails with
    /// [`TransportError::CardRemoved`] from now on.
    pub fn remove(&self) {
        self.lock().present = false;
    }

    /// Resets the card as another process would: volatile state is lost and
    /// each connected transport's next transaction fails once with
    /// [`TransportError::CardReset`].
    pub fn reset(&self) {
        let mut shared = self.lock();
        shared.card.power_on();
        shared.resets += 1;
    }

    /// Connects a transport to the card.
    pub fn connect(&self) -> Result<SimTransport, TransportError> {
        let shared = self.lock();
        if !shared.present {
            return Err(TransportError::CardRemoved);
        }
        Ok(SimTransport {
            card: self.clone(),
            atr: shared.card.atr().to_vec(),
            insertion: shared.insertion,
            resets: shared.resets,
            extended: None,
        })
    }

    fn insert(&self) {
        let mut shared = self.lock();
        shared.card.power_on();
        shared.present = true;
        shared.insertion += 1;
    }

    fn transmit(&self, insertion: u64, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut shared = self.lock();
        if !shared.present || shared.insertion != insertion {
            return Err(TransportError::CardRemoved);
        }
        let misbehaviour = shared.card.misbehaviour_mut();
        match misbehaviour.remove_after {
            Some(0) => {
                misbehaviour.remove_after = None;
                shared.present = false;
                return Err(TransportError::CardRemoved);
            }
            Some(n) => misbehaviour.remove_after = Some(n - 1),
            None => {}
        }
        Ok(shared.card.process(command))
    }
}

/// A connection to a [`SimCard`], implementing [`CardTransport`].
#[derive(Debug)]
pub struct SimTransport {
    card: SimCard,
    atr: Vec<u8>,
    insertion: u64,
    resets: u64,
    extended: Option<bool>,
}

struct SimLink<'a> {
    card: &'a SimCard,
    insertion: u64,
    extended: &'a mut Option<bool>,
}

impl Transmit for SimLink<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.card.transmit(self.insertion, command)
    }

    fn extended_length(&self) -> Option<bool> {
        *self.extended
    }

    fn note_extended_length(&mut self, works: bool) {
        *self.extended = Some(works);
    }

    /// The simulated reader writes the typed PIN (ASCII) at the start of the
    /// template's PIN block, as a PC/SC part 10 reader does.
    fn verify_pin_pad(&mut self, request: &PinPadVerify) -> Result<Vec<u8>, TransportError> {
        let typed = self
            .card
            .lock()
            .pin_pad
            .clone()
            .ok_or(TransportError::NoPinPad)?;
        let fits =
            (request.min_length as usize..=request.max_length as usize).contains(&typed.len());
        if !fits || request.apdu.len() < 5 + typed.len() {
            // The reader refuses the entry (PC/SC part 10: 64 03, PIN length).
            return Ok(vec![0x64, 0x03]);
        }
        let mut apdu = request.apdu.clone();
        apdu[5..5 + typed.len()].copy_from_slice(&typed);
        self.card.transmit(self.insertion, &apdu)
    }

    /// The simulated reader writes the typed current and new PINs (ASCII)
    /// at the start of their blocks, as a PC/SC part 10 reader does.
    fn change_pin_pad(&mut self, request: &PinPadChange) -> Result<Vec<u8>, TransportError> {
        let (old, new) = {
            let shared = self.card.lock();
            match (&shared.pin_pad, &shared.pin_pad_new_pin) {
                (Some(old), Some(new)) => (old.clone(), new.clone()),
                _ => return Err(TransportError::NoPinPad),
            }
        };
        let lengths = request.min_length as usize..=request.max_length as usize;
        let block = request.block_length as usize;
        let (old_at, new_at) = (
            5 + request.old_offset as usize,
            5 + request.new_offset as usize,
        );
        let fits = |pin: &[u8]| lengths.contains(&pin.len()) && pin.len() <= block;
        if !fits(&old) || !fits(&new) || request.apdu.len() < old_at.max(new_at) + block {
            return Ok(vec![0x64, 0x03]);
        }
        let mut apdu = request.apdu.clone();
        apdu[old_at..old_at + old.len()].copy_from_slice(&old);
        apdu[new_at..new_at + new.len()].copy_from_slice(&new);
        self.card.transmit(self.insertion, &apdu)
    }
}

impl CardTransport for SimTransport {
    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn has_pin_pad(&self) -> bool {
        self.card.lock().pin_pad.is_some()
    }

    /// Runs `body`, counting the transaction. Fails like PC/SC: the card is
    /// gone (before or after `body`), or it was reset since the last
    /// transaction (once).
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Transmit),
    ) -> Result<(), TransportError> {
        {
            let mut shared = self.card.lock();
            if !shared.present || shared.insertion != self.insertion {
                return Err(TransportError::CardRemoved);
            }
            if shared.resets != self.resets {
                self.resets = shared.resets;
                return Err(TransportError::CardReset);
            }
            shared.transactions_begun += 1;
        }
        body(&mut SimLink {
            card: &self.card,
            insertion: self.insertion,
            extended: &mut self.extended,
        });
        let mut shared = self.card.lock();
        shared.transactions_ended += 1;
        if !shared.present || shared.insertion != self.insertion {
            return Err(TransportError::CardRemoved);
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Reader {
    name: String,
    card: Option<SimCard>,
    /// Cards inserted so far (PC/SC's event counter, in spirit).
    inserts: u64,
}

/// Simulated PC/SC readers, each holding zero or one [`SimCard`]. Cloning
/// it clones the handle: a test keeps one while the module owns another.
#[derive(Debug, Clone)]
pub struct SimBackend {
    readers: Arc<Mutex<Vec<Reader>>>,
}

impl Default for SimBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl SimBackend {
    /// One empty reader, [`DEFAULT_READER`].
    pub fn new() -> Self {
        Self::with_readers([DEFAULT_READER])
    }

    /// Empty readers with these names.
    pub fn with_readers<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        let readers = names
            .into_iter()
            .map(|name| Reader {
                name: name.into(),
                card: None,
                inserts: 0,
            })
            .collect();
        SimBackend {
            readers: Arc::new(Mutex::new(readers)),
        }
    }

    /// [`DEFAULT_READER`] holding `card`; returns the backend and the card's
    /// handle.
    pub fn with_card(card: impl Into<SimCard>) -> (Self, SimCard) {
        let backend = Self::new();
        let card = backend.insert(DEFAULT_READER, card);
        (backend, card)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Reader>> {
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plugs in a new empty reader (no-op if the name exists).
    pub fn add_reader(&self, name: &str) {
        let mut readers = self.lock();
        if !readers.iter().any(|r| r.name == name) {
            readers.push(Reader {
                name: name.to_owned(),
                card: None,
                inserts: 0,
            });
        }
    }

    /// Unplugs a reader (its card counts as removed).
    pub fn remove_reader(&self, name: &str) {
        let mut readers = self.lock();
        for reader in readers.iter().filter(|r| r.name == name) {
            if let Some(card) = &reader.card {
                card.remove();
            }
        }
        readers.retain(|r| r.name != name);
    }

    /// Inserts `card` into `reader` (removing any card there), powered on
    /// with nothing selected; returns its handle. Re-inserting a removed
    /// [`SimCard`] keeps its contents and counters; old transports stay dead.
    ///
    /// # Panics
    /// If there is no reader called `reader`.
    pub fn insert(&self, reader: &str, card: impl Into<SimCard>) -> SimCard {
        let card = card.into();
        let mut readers = self.lock();
        let slot = readers
            .iter_mut()
            .find(|r| r.name == reader)
            .unwrap_or_else(|| panic!("no simulated reader called {reader:?}"));
        if let Some(old) = slot.card.take() {
            old.remove();
        }
        card.insert();
        slot.inserts += 1;
        slot.card = Some(card.clone());
        card
    }

    /// Takes the card out of `reader`; returns it, if there was one.
    pub fn remove(&self, reader: &str) -> Option<SimCard> {
        let mut readers = self.lock();
        let card = readers.iter_mut().find(|r| r.name == reader)?.card.take()?;
        card.remove();
        Some(card)
    }

    /// The card in `reader`, if one is present.
    pub fn card(&self, reader: &str) -> Option<SimCard> {
        let readers = self.lock();
        let card = readers.iter().find(|r| r.name == reader)?.card.as_ref()?;
        card.is_present().then(|| card.clone())
    }
}

impl ReaderBackend for SimBackend {
    fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError> {
        Ok(self
            .lock()
            .iter()
            .map(|r| ReaderStatus {
                name: r.name.clone(),
                card_present: r.card.as_ref().is_some_and(SimCard::is_present),
                card_events: r.inserts,
            })
            .collect())
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, TransportError> {
        let card = {
            let readers = self.lock();
            let reader = readers
                .iter()
                .find(|r| r.name == reader)
                .ok_or(TransportError::ReaderGone)?;
            reader.card.clone().ok_or(TransportError::CardRemoved)?
        };
        Ok(Box::new(card.connect()?))
    }
}
