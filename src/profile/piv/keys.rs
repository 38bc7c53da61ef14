//! Reading a PIV card's keys: the standard key slots' certificates, then
//! what completes them (GET METADATA for keys without a certificate and for
//! the card's PIN rules; the retired keys the Key History object counts),
//! and the proof that remembered certificates are still the card's.

use super::certificates::key_from_certificate;
use super::metadata::{self, public_key_matches, KeyMetadata, SlotAnswer};
use super::objects::{self, TAG_DISCOVERY, TAG_KEY_HISTORY};
use super::{chuid_is_signed, slot_key, tag, Answers, PivApp, Proof};
use crate::card::Transaction;
use crate::iso7816::{commands, tlv, CardError, Command, Instruction, StatusWord};
use crate::profile::{AppError, KeyInfo, KeySlot, Record, RecordKind};

/// What the disk cache remembers of a PIV card.
pub(super) struct Remembered {
    /// The keys of the remembered certificates.
    pub keys: Vec<KeyInfo>,
    /// The card's GET METADATA answers, by key reference.
    pub answers: Answers,
    /// The PIN's maximum tries.
    pub pin_tries: Option<u8>,
}

/// Key reference of the global PIN (SP 800-73-4 Part 2 Table 4a).
const GLOBAL_PIN: u8 = 0x00;

/// Key reference of the PUK (SP 800-73-4 Part 2 Table 4a).
const PUK: u8 = 0x81;

/// GET METADATA (Yubico's PIV extension) of key or PIN `reference`.
fn get_metadata(reference: u8) -> Command {
    Command::iso(Instruction::YubicoGetMetadata, 0x00, reference).expect_long_response()
}

impl PivApp {
    /// Reads the keys of the profile's slots from `from` on, after `keys`
    /// (what an earlier, stopped read found); with `stop_at_first`, stops
    /// after the first key with a certificate. A read that reaches the end
    /// completes the keys ([`PivApp::complete`]). Returns the keys and how
    /// many slots were looked at in all.
    pub(super) fn read_keys(
        &self,
        card: &mut Transaction,
        mut keys: Vec<KeyInfo>,
        from: usize,
        stop_at_first: bool,
    ) -> Result<(Vec<KeyInfo>, usize), AppError> {
        for (index, slot) in self.profile.keys.iter().enumerate().skip(from) {
            let Some(tag) = slot.certificate_tag else {
                continue;
            };
            let Some(der) = self.read_certificate(card, tag)? else {
                continue;
            };
            // A container this module cannot parse is skipped, not fatal: the
            // other keys stay usable.
            let Some(key) = key_from_certificate(slot, der) else {
                log::warn!("certificate for key {:02X} is not usable", slot.reference);
                continue;
            };
            keys.push(key);
            if stop_at_first {
                return Ok((keys, index + 1));
            }
        }
        self.complete(card, &mut keys, &mut Answers::new(), true)?;
        // The PIN's maximum tries go into the disk cache with the keys
        // (asked once per card: the token info does not ask again).
        if self.learned(card).pin_reference_known {
            self.read_pin_tries(card)?;
        }
        Ok((keys, self.profile.keys.len()))
    }

    /// Completes the keys of the standard slots: a slot without a
    /// certificate whose key GET METADATA describes gets that key; on cards
    /// whose profile promises GET METADATA every key follows the card's
    /// PIN policy for it. With `read_retired`, the retired keys with an
    /// on-card certificate are added (one GET DATA of the Key History
    /// object, then their containers). `answers` holds the GET METADATA
    /// answers already known in this read.
    pub(super) fn complete(
        &self,
        card: &mut Transaction,
        keys: &mut Vec<KeyInfo>,
        answers: &mut Answers,
        read_retired: bool,
    ) -> Result<(), AppError> {
        let every_key = self.profile.quirks.key_metadata;
        for slot in self
            .profile
            .keys
            .iter()
            .filter(|s| s.certificate_tag.is_some())
        {
            let known = keys.iter().position(|key| key.reference == slot.reference);
            if known.is_some() && !every_key {
                continue;
            }
            let SlotAnswer::Key(found) = self.slot_metadata(card, answers, slot.reference)? else {
                continue;
            };
            match known {
                Some(index) => found.apply(&mut keys[index]),
                None => keys.extend(key_without_certificate(slot, &found)),
            }
        }
        if read_retired {
            keys.extend(self.read_retired(card)?);
        }
        if every_key {
            for key in keys.iter_mut().filter(|k| objects::is_retired(k.reference)) {
                if let SlotAnswer::Key(found) = self.slot_metadata(card, answers, key.reference)? {
                    found.apply(key);
                }
            }
        }
        Ok(())
    }

    /// The retired keys whose certificate is on the card: as many as the
    /// Key History object says (none without the object), from the
    /// containers in order, at most twenty GET DATA.
    fn read_retired(&self, card: &mut Transaction) -> Result<Vec<KeyInfo>, AppError> {
        let wanted = match self.optional_object(card, TAG_KEY_HISTORY)? {
            Some(history) => objects::keys_with_on_card_certs(&history),
            None => 0,
        };
        let mut keys = Vec::new();
        let mut found = 0;
        let pin_reference = self.pin_reference(card);
        for index in 0..objects::RETIRED_KEYS {
            if found == wanted {
                break;
            }
            let slot = objects::retired_slot(index, pin_reference);
            let Some(tag) = slot.certificate_tag else {
                continue;
            };
            let der = match self.read_certificate(card, tag) {
                Ok(Some(der)) => der,
                Ok(None) => continue,
                // A container the card refuses or garbles hides one key, not
                // the token.
                Err(AppError::Card(CardError::Status(_) | CardError::Malformed(_))) => continue,
                Err(other) => return Err(other),
            };
            found += 1;
            match key_from_certificate(&slot, der) {
                Some(key) => keys.push(key),
                None => log::warn!("certificate for key {:02X} is not usable", slot.reference),
            }
        }
        Ok(keys)
    }

    /// A data object the card may lack or refuse (the Key History): its
    /// value, or `None`.
    fn optional_object(
        &self,
        card: &mut Transaction,
        tag: u32,
    ) -> Result<Option<Vec<u8>>, AppError> {
        match self.get_data(card, tag) {
            Err(AppError::Card(CardError::Status(_) | CardError::Malformed(_))) => Ok(None),
            other => other,
        }
    }

    /// GET METADATA of a key slot, once per read (`answers`), and never
    /// on a card that answered it with "not supported".
    fn slot_metadata(
        &self,
        card: &mut Transaction,
        answers: &mut Answers,
        reference: u8,
    ) -> Result<SlotAnswer, AppError> {
        if let Some((_, answer)) = answers.iter().find(|(r, _)| *r == reference) {
            return Ok(answer.clone());
        }
        // Not in the `match`: its guard would live through `ask_metadata`.
        let supported = self.learned(card).metadata;
        let answer = match supported {
            Some(false) => SlotAnswer::Unknown,
            _ => self.ask_metadata(card, reference)?,
        };
        answers.push((reference, answer.clone()));
        if supported != Some(false) {
            // The card's own answer: the disk cache keeps it.
            let learned = &mut self.learned(card).answers;
            learned.retain(|(r, _)| *r != reference);
            learned.push((reference, answer.clone()));
        }
        Ok(answer)
    }

    fn ask_metadata(&self, card: &mut Transaction, reference: u8) -> Result<SlotAnswer, AppError> {
        let response = card.execute(&get_metadata(reference))?;
        Ok(match response.sw {
            StatusWord::SUCCESS => {
                self.learned(card).metadata = Some(true);
                metadata::parse_key_metadata(&response.data)
                    .map_or(SlotAnswer::Unknown, SlotAnswer::Key)
            }
            StatusWord::NOT_FOUND | StatusWord::DATA_NOT_FOUND => SlotAnswer::Empty,
            StatusWord::INS_NOT_SUPPORTED | StatusWord::FUNCTION_NOT_SUPPORTED => {
                self.learned(card).metadata = Some(false);
                SlotAnswer::Unknown
            }
            _ => SlotAnswer::Unknown,
        })
    }

    /// The PUK's total and remaining tries from GET METADATA of the PUK
    /// (tag `06`; spends no try), on cards known to answer GET METADATA.
    pub(super) fn read_puk_tries(
        &self,
        card: &mut Transaction,
    ) -> Result<Option<(u8, u8)>, AppError> {
        if self.learned(card).metadata != Some(true) {
            return Ok(None);
        }
        let response = card.execute(&get_metadata(PUK))?;
        Ok(match response.sw {
            StatusWord::SUCCESS => metadata::pin_tries(&response.data),
            _ => None,
        })
    }

    /// The PIN's maximum tries from GET METADATA of the PIN (tag `06`),
    /// once per card, on cards whose profile promises GET METADATA.
    pub(super) fn read_pin_tries(&self, card: &mut Transaction) -> Result<(), AppError> {
        let reference = {
            let learned = self.learned(card);
            if learned.pin_metadata_asked
                || !self.profile.quirks.key_metadata
                || learned.metadata == Some(false)
            {
                return Ok(());
            }
            learned.pin_metadata_asked = true;
            learned.pin_reference
        };
        let response = card.execute(&get_metadata(reference))?;
        let learned = self.learned(card);
        match response.sw {
            StatusWord::SUCCESS => {
                learned.pin_max_tries = metadata::pin_tries(&response.data).map(|(total, _)| total);
            }
            StatusWord::INS_NOT_SUPPORTED | StatusWord::FUNCTION_NOT_SUPPORTED => {
                learned.metadata = Some(false)
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads the Discovery object before the first PIN command (once per
    /// card; not on profiles without a global PIN): when its PIN usage
    /// policy names the global PIN primary, VERIFY, the PIN state and PIN
    /// changes use it. A card without the object keeps the profile's PIN.
    pub(super) fn learn_pin_reference(&self, card: &mut Transaction) -> Result<(), AppError> {
        if self.learned(card).pin_reference_known {
            return Ok(());
        }
        let command = commands::get_data_by_tag_list(tlv::encode(tag::TAG_LIST, &[TAG_DISCOVERY]));
        let response = card.execute(&command)?;
        self.learned(card).pin_reference_known = true;
        if !response.sw.is_success() {
            return Ok(());
        }
        let Ok((discovery, _)) = tlv::read(&response.data) else {
            return Ok(());
        };
        if discovery.tag == u32::from(TAG_DISCOVERY) && objects::global_pin_primary(discovery.value)
        {
            log::debug!("the card's global PIN is primary");
            self.learned(card).pin_reference = GLOBAL_PIN;
        }
        Ok(())
    }

    /// Whether the card's public data may be cached under its CHUID. The
    /// CHUID alone tells cards apart only when an issuer signed it (FIPS
    /// 201: a unique GUID per card, re-signed at every re-issue); unsigned
    /// CHUIDs are often the same on every card of a model (two fresh
    /// Nitrokey PIV cards answer byte-identical ones), so those cards are
    /// cached only where the card can prove each slot's key unchanged
    /// (GET METADATA). Cards with neither are always read.
    pub(super) fn cacheable(&self, chuid: &[u8]) -> bool {
        chuid_is_signed(chuid) || self.profile.quirks.key_metadata
    }

    /// Whether remembered keys are still the card's: a signed CHUID vouches
    /// for all of them; otherwise every key slot's public key from GET
    /// METADATA must match (empty slots must still be empty, a key without
    /// a certificate must still have none), the Key History must count as
    /// many retired keys as remembered and each must match, and each
    /// remembered key must be the only one of its slot, so that no key
    /// escapes the comparison.
    pub(super) fn still_on_card(
        &self,
        card: &mut Transaction,
        chuid: &[u8],
        keys: &[KeyInfo],
    ) -> Result<Proof, AppError> {
        if chuid_is_signed(chuid) {
            return Ok(Proof::Current(Answers::new()));
        }
        let slots: Vec<&KeySlot> = self
            .profile
            .keys
            .iter()
            .filter(|s| s.certificate_tag.is_some())
            .collect();
        let unchecked = |key: &KeyInfo| {
            let of_slot = keys.iter().filter(|k| k.reference == key.reference).count();
            let known = objects::is_retired(key.reference)
                || slots.iter().any(|slot| slot.reference == key.reference);
            of_slot != 1 || !known
        };
        if let Some(key) = keys.iter().find(|key| unchecked(key)) {
            log::debug!("cached key {:02X} twice or in no key slot", key.reference);
            return Ok(Proof::Changed);
        }
        let mut answers = Answers::new();
        for slot in slots {
            let remembered = keys.iter().find(|key| key.reference == slot.reference);
            let same = match (
                remembered,
                self.slot_metadata(card, &mut answers, slot.reference)?,
            ) {
                (_, SlotAnswer::Unknown)
                | (
                    _,
                    SlotAnswer::Key(KeyMetadata {
                        key_value: None, ..
                    }),
                ) => return Ok(Proof::Impossible),
                (None, SlotAnswer::Empty) => true,
                (Some(key), SlotAnswer::Key(found)) => found
                    .key_value
                    .is_some_and(|value| public_key_matches(&key.public_key, &value)),
                // A key without a certificate: is it still without one?
                (None, SlotAnswer::Key(_)) => match slot.certificate_tag {
                    Some(tag) => self.read_certificate(card, tag)?.is_none(),
                    None => false,
                },
                (Some(_), SlotAnswer::Empty) => false,
            };
            if !same {
                log::debug!("key {:02X} differs from the cache", slot.reference);
                return Ok(Proof::Changed);
            }
        }
        let retired: Vec<&KeyInfo> = keys
            .iter()
            .filter(|key| objects::is_retired(key.reference))
            .collect();
        let on_card = match self.optional_object(card, TAG_KEY_HISTORY)? {
            Some(history) => objects::keys_with_on_card_certs(&history),
            None => 0,
        };
        if usize::from(on_card) != retired.len() {
            log::debug!("the Key History differs from the cache");
            return Ok(Proof::Changed);
        }
        for key in retired {
            match self.slot_metadata(card, &mut answers, key.reference)? {
                SlotAnswer::Key(KeyMetadata {
                    key_value: Some(value),
                    ..
                }) if public_key_matches(&key.public_key, &value) => {}
                SlotAnswer::Unknown => return Ok(Proof::Impossible),
                _ => return Ok(Proof::Changed),
            }
        }
        Ok(Proof::Current(answers))
    }

    /// What a cache entry holds for the card: the keys of its certificates
    /// ([`PivApp::keys_from_certificates`]), the card's GET METADATA
    /// answers and the PIN's maximum tries. `None` (read the card) when a
    /// record is not one this engine wrote.
    pub(super) fn remembered(&self, records: &[Record], pin_reference: u8) -> Option<Remembered> {
        let mut certificates = Vec::new();
        let mut answers = Answers::new();
        let mut pin_tries = None;
        for record in records {
            let &[reference] = record.name.as_slice() else {
                return None;
            };
            match record.kind {
                RecordKind::Certificate => certificates.push((reference, record.data.clone())),
                RecordKind::KeyMetadata => {
                    answers.push((reference, SlotAnswer::from_record(&record.data)?));
                }
                RecordKind::PinTries => match record.data.as_slice() {
                    [tries] if *tries > 0 => {
                        if reference == pin_reference {
                            pin_tries = Some(*tries);
                        }
                    }
                    _ => return None,
                },
                RecordKind::File | RecordKind::Proof => return None,
            }
        }
        Some(Remembered {
            keys: self.keys_from_certificates(&certificates, pin_reference)?,
            answers,
            pin_tries,
        })
    }

    /// The remembered keys once [`PivApp::still_on_card`] vouched for them,
    /// with the GET METADATA answers that complete them: the card's own
    /// where the proof asked for them (`fresh`), the remembered ones where a
    /// signed CHUID is the proof (the card was asked nothing). The PIN's
    /// maximum tries come from the entry either way (they only decide
    /// `CKF_USER_PIN_COUNT_LOW`).
    pub(super) fn trust(
        &self,
        card: &mut Transaction,
        chuid: &[u8],
        remembered: Remembered,
        fresh: Answers,
    ) -> (Vec<KeyInfo>, Answers) {
        let learned = self.learned(card);
        if let (Some(tries), true) = (remembered.pin_tries, learned.pin_reference_known) {
            learned.pin_max_tries = Some(tries);
            learned.pin_metadata_asked = true;
        }
        if !chuid_is_signed(chuid) {
            return (remembered.keys, fresh);
        }
        (remembered.keys, remembered.answers)
    }

    /// The keys of the profile's slots (and retired slots) from remembered
    /// certificates; None when one of them does not fit the profile, does
    /// not parse or names a key slot already named (then the card is read
    /// instead).
    pub(super) fn keys_from_certificates(
        &self,
        certificates: &[(u8, Vec<u8>)],
        pin_reference: u8,
    ) -> Option<Vec<KeyInfo>> {
        let mut keys: Vec<KeyInfo> = Vec::new();
        for (reference, der) in certificates {
            if keys.iter().any(|key| key.reference == *reference) {
                return None;
            }
            let standard = self
                .profile
                .keys
                .iter()
                .find(|slot| slot.reference == *reference && slot.certificate_tag.is_some());
            let slot = match (standard, objects::retired_index(*reference)) {
                (Some(slot), _) => slot.clone(),
                (None, Some(index)) => objects::retired_slot(index, pin_reference),
                (None, None) => return None,
            };
            let mut key = key_from_certificate(&slot, der.clone())?;
            key.recalled = true;
            keys.push(key);
        }
        // Profile order, then the retired keys, as a read from the card
        // gives them.
        keys.sort_by_key(|key| {
            let position = self
                .profile
                .keys
                .iter()
                .position(|slot| slot.reference == key.reference);
            (position.unwrap_or(usize::MAX), key.reference)
        });
        Some(keys)
    }
}

/// The key GET METADATA describes for a slot without a certificate, when it
/// gave the whole public key; with the card's PIN rule for it.
fn key_without_certificate(slot: &KeySlot, found: &KeyMetadata) -> Option<KeyInfo> {
    let mut key = slot_key(slot, found.public_key.clone()?, None);
    found.apply(&mut key);
    Some(key)
}
