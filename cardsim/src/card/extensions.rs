//! What the simulated PIV card holds beyond the four standard key slots
//! and the PIV PIN: retired key management keys with the Key History
//! object, per-key PIN and touch policies, Yubico's GET METADATA, and a
//! global PIN.

use super::{
    tags, SimPivCard, SlotState, KEY_REF_GLOBAL_PIN, KEY_REF_PIN, KEY_REF_PUK, PIV_AID,
    RETIRED_1_REFERENCE,
};
use crate::apdu::{put_tlv, sw, tlv, Command};
use crate::keys::{retired_certificate_der, KeyType, PrivateKey, SimPublicKey, Slot};
use crate::policy::{default_pin_policy, PinPolicy, TouchPolicy};
use crate::secret::{pad, Secret};

/// GET METADATA key origin (Yubico PIV extension): generated on the card.
const ORIGIN_GENERATED: u8 = 0x01;

impl SimPivCard {
    /// Puts retired key management key `number` (1 to 20; key reference
    /// `0x81 + number`, certificate container `5FC10C + number`) on the
    /// card: the embedded test key of `key_type` for `source`, with a test
    /// certificate `CN=cardsim Retired <number>`. The card then serves a
    /// Key History object counting its retired keys (unless one is set with
    /// [`with_object`](Self::with_object)).
    ///
    /// # Panics
    /// If `number` is not 1 to 20.
    pub fn with_retired_key(mut self, number: u8, key_type: KeyType, source: Slot) -> Self {
        assert!((1..=20).contains(&number), "retired keys are 1 to 20");
        let key = PrivateKey::embedded(key_type, source);
        let state = SlotState {
            cert: Some(retired_certificate_der(number, &key, source)),
            key: Some(key),
            compressed: false,
        };
        self.retired.insert(RETIRED_1_REFERENCE + number - 1, state);
        self
    }

    /// Removes the certificate of retired key `number` (an off-card
    /// certificate, in the Key History's words), keeping its key.
    pub fn without_retired_cert(mut self, number: u8) -> Self {
        if let Some(state) = self.retired.get_mut(&(RETIRED_1_REFERENCE + number - 1)) {
            state.cert = None;
        }
        self
    }

    /// Sets the PIN and touch policy of the key with this key reference (GET
    /// METADATA reports them; GENERAL AUTHENTICATE enforces the PIN policy).
    pub fn with_policy(mut self, reference: u8, pin: PinPolicy, touch: TouchPolicy) -> Self {
        self.policies.insert(reference, (pin, touch));
        self
    }

    /// Gives the card a global PIN (key reference `00`, 6 to 8 bytes, 3
    /// tries) that satisfies the PIV access rules as the PIV PIN does; with
    /// `primary`, the Discovery object's PIN usage policy names it the
    /// primary PIN (SP 800-73-4 Part 1 §3.3.2: `5F2F 60 20`).
    pub fn with_global_pin(mut self, pin: &str, primary: bool) -> Self {
        self.global_pin = Some(Secret::new(pin, 3));
        let mut discovery = tlv(&[0x4F], &PIV_AID);
        let primary_byte = if primary { 0x20 } else { 0x10 };
        put_tlv(&mut discovery, &[0x5F, 0x2F], &[0x60, primary_byte]);
        self.objects
            .insert(tags::DISCOVERY, tlv(&[0x7E], &discovery));
        self
    }

    /// The public key of retired key `number`, if the card holds it.
    pub fn retired_public_key(&self, number: u8) -> Option<SimPublicKey> {
        self.retired
            .get(&(RETIRED_1_REFERENCE + number - 1))?
            .key
            .as_ref()
            .map(PrivateKey::public)
    }

    /// The DER certificate of retired key `number`, if any.
    pub fn retired_certificate_der(&self, number: u8) -> Option<&[u8]> {
        self.retired
            .get(&(RETIRED_1_REFERENCE + number - 1))?
            .cert
            .as_deref()
    }

    /// Global PIN tries left (`None` without a global PIN).
    pub fn global_pin_tries_left(&self) -> Option<u8> {
        self.global_pin.as_ref().map(|pin| pin.tries)
    }

    /// The Key History object (SP 800-73-4 Part 1 §3.3.2) for the retired
    /// keys: `C1` keys with an on-card certificate, `C2` keys without.
    pub(super) fn key_history(&self) -> Option<Vec<u8>> {
        if self.retired.is_empty() {
            return None;
        }
        let on_card = self.retired.values().filter(|s| s.cert.is_some()).count() as u8;
        let off_card = self.retired.len() as u8 - on_card;
        let mut history = tlv(&[0xC1], &[on_card]);
        put_tlv(&mut history, &[0xC2], &[off_card]);
        put_tlv(&mut history, &[0xFE], &[]);
        Some(tlv(&[0x53], &history))
    }

    /// The key slot (standard or retired) with this key reference.
    pub(super) fn key_slot(&self, reference: u8) -> Option<&SlotState> {
        match Slot::from_key_ref(reference) {
            Some(slot) => Some(&self.slots[slot.index()]),
            None => self.retired.get(&reference),
        }
    }

    pub(super) fn policy(&self, reference: u8) -> (PinPolicy, TouchPolicy) {
        self.policies
            .get(&reference)
            .copied()
            .unwrap_or((default_pin_policy(reference), TouchPolicy::Never))
    }

    /// Yubico GET METADATA (INS `F7`, P2 the key reference; Yubico PIV
    /// extension, firmware 5.3+). A key slot: `01` algorithm, `02` PIN and
    /// touch policy, `03` origin, `04` public key; an empty slot answers
    /// `6A82`. The PIN and PUK: `01` `FF`, `05` whether the value is the
    /// default, `06` total and remaining tries. The management key is not
    /// simulated.
    pub(super) fn get_metadata(&self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if cmd.p1 != 0x00 {
            return Err(sw::WRONG_P1P2);
        }
        if let Some((secret, default)) = match cmd.p2 {
            KEY_REF_PIN => Some((&self.pin, "123456")),
            KEY_REF_PUK => Some((&self.puk, "12345678")),
            _ => None,
        } {
            let mut metadata = tlv(&[0x01], &[0xFF]);
            let is_default = pad(default.as_bytes()) == Some(secret.padded);
            put_tlv(&mut metadata, &[0x05], &[u8::from(is_default)]);
            put_tlv(&mut metadata, &[0x06], &[secret.max, secret.tries]);
            return Ok(metadata);
        }
        let retired_range = RETIRED_1_REFERENCE..RETIRED_1_REFERENCE + 20;
        let state = match self.key_slot(cmd.p2) {
            Some(state) => state,
            None if retired_range.contains(&cmd.p2) => return Err(sw::NOT_FOUND),
            None => return Err(sw::WRONG_P1P2),
        };
        let key = state.key.as_ref().ok_or(sw::NOT_FOUND)?;
        let (pin, touch) = self.policy(cmd.p2);
        let mut metadata = tlv(&[0x01], &[key.key_type().algorithm_id()]);
        put_tlv(&mut metadata, &[0x02], &[pin.byte(), touch.byte()]);
        put_tlv(&mut metadata, &[0x03], &[ORIGIN_GENERATED]);
        put_tlv(&mut metadata, &[0x04], &key.metadata_public_key());
        Ok(metadata)
    }

    /// The PIN a VERIFY or CHANGE REFERENCE DATA names: the PIV PIN (`80`)
    /// or, on cards with one, the global PIN (`00`).
    pub(super) fn pin_mut(&mut self, reference: u8) -> Result<&mut Secret, u16> {
        match reference {
            KEY_REF_PIN => Ok(&mut self.pin),
            KEY_REF_GLOBAL_PIN => self.global_pin.as_mut().ok_or(sw::REF_NOT_FOUND),
            _ => Err(sw::WRONG_P1P2),
        }
    }
}
