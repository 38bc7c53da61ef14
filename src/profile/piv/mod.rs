//! The PIV card application (NIST SP 800-73-4 Part 2): one function per card
//! command, each a few lines. Beyond the four standard key slots: retired
//! key management keys (from the Key History object), keys without a
//! certificate and per-key PIN rules (from GET METADATA), and the global
//! PIN (from the Discovery object).

mod certificates;
mod keys;
mod metadata;
mod objects;

use super::{
    certificate_records, AppError, CardApp, CardInfo, KeyInfo, KeyRole, KeySlot, PinStatus,
    Profile, Recall, Record, RecordKind, SignInput,
};
use crate::card::{EngineState, Transaction, Verified};
use crate::cert::{parse_certificate, Curve, PublicKey};
use crate::crypto;
use crate::iso7816::commands::{self, RetryReset};
use crate::iso7816::{tlv, CardError, Command, StatusWord};
use metadata::SlotAnswer;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Data object tags (SP 800-73-4 Part 1 Table 3).
const TAG_CHUID: u32 = 0x5FC102;

/// BER-TLV tags of SP 800-73-4 (Part 2 §3.1.2 GET DATA, §3.2.4 GENERAL
/// AUTHENTICATE; Part 1 Appendix A containers, §3.1.2 CHUID).
mod tag {
    /// GET DATA: the tag list naming the object.
    pub const TAG_LIST: u32 = 0x5C;
    /// GET DATA: the wrapper of an object's value.
    pub const DATA_OBJECT: u32 = 0x53;
    /// Certificate container: the certificate.
    pub const CERTIFICATE: u32 = 0x70;
    /// Certificate container: CertInfo (bit 0: compressed).
    pub const CERT_INFO: u32 = 0x71;
    /// GENERAL AUTHENTICATE: the dynamic authentication template.
    pub const DYNAMIC_AUTHENTICATION: u32 = 0x7C;
    /// Dynamic authentication template: the challenge.
    pub const CHALLENGE: u32 = 0x81;
    /// Dynamic authentication template: the response.
    pub const RESPONSE: u32 = 0x82;
    /// Dynamic authentication template: exponentiation (ECDH peer point).
    pub const EXPONENTIATION: u32 = 0x85;
    /// CHUID: the FASC-N.
    pub const FASC_N: u32 = 0x30;
    /// CHUID: the GUID.
    pub const GUID: u32 = 0x34;
    /// CHUID: the issuer's asymmetric signature.
    pub const ISSUER_SIGNATURE: u32 = 0x3E;
}

/// Cryptographic mechanism identifiers (SP 800-78-4 Table 6-2; 0x16 is the
/// RSA-4096 value, 0xE0 Ed25519 and 0xE1 X25519 the values YubiKey 5.7
/// firmware uses).
fn algorithm_id(key: &PublicKey) -> Result<u8, AppError> {
    match key {
        PublicKey::Rsa { .. } => match key.bits() {
            1024 => Ok(0x06),
            2048 => Ok(0x07),
            3072 => Ok(0x05),
            4096 => Ok(0x16),
            _ => Err(AppError::Unsupported("RSA key size")),
        },
        PublicKey::Ec {
            curve: Curve::P256, ..
        } => Ok(0x11),
        PublicKey::Ec {
            curve: Curve::P384, ..
        } => Ok(0x14),
        PublicKey::Ed25519 { .. } => Ok(0xE0),
        PublicKey::X25519 { .. } => Ok(0xE1),
    }
}

/// The PIV engine for one profile (what it learned about a card is kept
/// with the card, in its `EngineState`).
#[derive(Debug)]
pub struct PivApp {
    profile: Arc<Profile>,
}

/// What the engine learned about a card, kept in the card's
/// [`EngineState`](crate::card::EngineState).
#[derive(Debug)]
struct PivState {
    /// GET METADATA: `None` untried, `Some(false)` the card lacks it (it
    /// answered `6D00`/`6A81`; never asked again).
    metadata: Option<bool>,
    /// The PIN that VERIFY, the PIN state and PIN changes use: the
    /// profile's (PIV PIN `80`), or `00` when the Discovery object names
    /// the global PIN primary.
    pin_reference: u8,
    /// The PIN's maximum tries, when the card reported them.
    pin_max_tries: Option<u8>,
    /// GET METADATA of the PIN was sent once.
    pin_metadata_asked: bool,
    /// The Discovery object was read (or the profile says there is no
    /// global PIN): `pin_reference` is the card's.
    pin_reference_known: bool,
    /// The GET METADATA answers the card gave, by key reference: what the
    /// disk cache keeps with the certificates.
    answers: Answers,
}

impl PivApp {
    /// An engine for cards matching `profile`.
    pub fn new(profile: Arc<Profile>) -> Self {
        PivApp { profile }
    }

    /// What the engine learned about the card of this transaction.
    fn learned<'t>(&self, card: &'t mut Transaction) -> &'t mut PivState {
        card.engine_state(|| PivState {
            metadata: self.profile.quirks.key_metadata.then_some(true),
            pin_reference: self.profile.pin.reference,
            pin_max_tries: None,
            pin_metadata_asked: false,
            pin_reference_known: self.profile.quirks.no_global_pin,
            answers: Answers::new(),
        })
    }

    fn pin_reference(&self, card: &mut Transaction) -> u8 {
        self.learned(card).pin_reference
    }

    /// GET DATA (SP 800-73-4 Part 2 §3.1.2): the value of the `53` wrapper,
    /// or `None` if the object does not exist.
    fn get_data(&self, card: &mut Transaction, tag: u32) -> Result<Option<Vec<u8>>, AppError> {
        let tag_bytes = &tag.to_be_bytes()[1..];
        let command = commands::get_data_by_tag_list(tlv::encode(tag::TAG_LIST, tag_bytes));
        let response = card.execute(&command)?;
        match response.sw {
            StatusWord::SUCCESS => {}
            StatusWord::NOT_FOUND | StatusWord::DATA_NOT_FOUND => return Ok(None),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED => return Ok(None),
            other => return Err(CardError::Status(other).into()),
        }
        let (outer, _) = tlv::read(&response.data)?;
        if outer.tag != tag::DATA_OBJECT {
            return Err(CardError::Malformed("data object without tag 53").into());
        }
        Ok((!outer.value.is_empty()).then(|| outer.value.to_vec()))
    }

    fn padded_pin(&self, pin: &[u8]) -> Result<Zeroizing<Vec<u8>>, AppError> {
        self.profile.check_pin_length(pin)?;
        Ok(self.pad(pin))
    }

    fn padded_puk(&self, puk: &[u8]) -> Result<Zeroizing<Vec<u8>>, AppError> {
        self.profile.check_puk_length(puk)?;
        Ok(self.pad(puk))
    }

    /// Pads a PIN or PUK as the card wants it (PIV: `FF` to 8 bytes).
    fn pad(&self, secret: &[u8]) -> Zeroizing<Vec<u8>> {
        let padding = match (self.profile.pin.pad_byte, self.profile.pin.pad_length) {
            (Some(byte), Some(length)) => Some((byte, length)),
            _ => None,
        };
        let length = padding.map_or(secret.len(), |(_, length)| length.max(secret.len()));
        // Sized first: a buffer that grows leaves its old copy unwiped.
        let mut padded = Zeroizing::new(Vec::with_capacity(length));
        padded.extend_from_slice(secret);
        if let Some((byte, length)) = padding {
            padded.resize(length, byte);
        }
        padded
    }

    fn verify_command(&self, card: &mut Transaction) -> Command {
        commands::verify_status(self.pin_reference(card))
    }

    /// GENERAL AUTHENTICATE (SP 800-73-4 Part 2 §3.2.4) with a challenge
    /// (tag 81); returns the response (tag 82).
    fn general_authenticate(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        challenge: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        self.general_authenticate_with(card, key, tag::CHALLENGE, challenge)
    }

    /// GENERAL AUTHENTICATE with `data` under `data_tag` (81 challenge, 85
    /// exponentiation: the peer's public point for ECDH, Part 2 §3.2.4 and
    /// SP 800-78-4 §7.2); returns the response (tag 82).
    fn general_authenticate_with(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        data_tag: u32,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let algorithm = algorithm_id(&key.public_key)?;
        let mut template = tlv::encode(tag::RESPONSE, &[]);
        template.extend_from_slice(&tlv::encode(data_tag, data));
        let command = commands::general_authenticate(
            algorithm,
            key.reference,
            tlv::encode(tag::DYNAMIC_AUTHENTICATION, &template),
        );
        let response = card.execute(&command)?;
        match response.sw {
            StatusWord::SUCCESS => {}
            StatusWord::SECURITY_STATUS_NOT_SATISFIED => return Err(AppError::NotAuthenticated),
            other => return Err(CardError::Status(other).into()),
        }
        let dynamic = tlv::find(&response.data, tag::DYNAMIC_AUTHENTICATION)?
            .ok_or(CardError::Malformed("no dynamic authentication template"))?;
        let result = tlv::find(dynamic, tag::RESPONSE)?
            .ok_or(CardError::Malformed("no response in template"))?;
        Ok(Zeroizing::new(result.to_vec()))
    }
}

/// The token serial: the last 8 bytes of the CHUID's GUID (SP 800-73-4
/// Part 1 §3.1.2), else of its FASC-N, as hex: the value OpenSC shows, so
/// `pkcs11:serial=` URIs written for OpenSC keep matching.
fn serial_from_chuid(chuid: &[u8]) -> Option<String> {
    let guid = tlv::find(chuid, tag::GUID)
        .ok()
        .flatten()
        .filter(|g| g.iter().any(|&b| b != 0));
    let fascn = tlv::find(chuid, tag::FASC_N)
        .ok()
        .flatten()
        .filter(|f| f.iter().any(|&b| b != 0));
    guid.or(fascn).map(|id| {
        id[id.len().saturating_sub(8)..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// What the card says about remembered public data.
enum Proof {
    /// The card vouches for it; with the GET METADATA answers the proof
    /// collected, by key reference.
    Current(Answers),
    /// A key slot differs: read the card.
    Changed,
    /// The card cannot tell: read it, and do not cache it.
    Impossible,
}

/// GET METADATA answers of one card read, by key reference (each slot is
/// asked at most once per read).
type Answers = Vec<(u8, SlotAnswer)>;

/// A CHUID with an issuer signature (tag `3E`, the asymmetric signature).
fn chuid_is_signed(chuid: &[u8]) -> bool {
    tlv::find(chuid, tag::ISSUER_SIGNATURE)
        .ok()
        .flatten()
        .is_some_and(|signature| !signature.is_empty())
}

/// The key in `slot` with this public key (and certificate, if any), with
/// the slot's rules. Every key signs (X25519 aside); RSA keys decrypt; EC
/// keys of the key management slots (9D and the retired ones) do ECDH.
fn slot_key(slot: &KeySlot, public_key: PublicKey, certificate: Option<Vec<u8>>) -> KeyInfo {
    let is_rsa = public_key.is_rsa();
    let is_x25519 = matches!(public_key, PublicKey::X25519 { .. });
    let key_agreement = matches!(public_key, PublicKey::Ec { .. } | PublicKey::X25519 { .. });
    KeyInfo {
        reference: slot.reference,
        id: slot.id.clone(),
        label: slot.label.clone(),
        role: slot.role,
        public_key,
        certificate,
        always_authenticate: slot.always_authenticate.unwrap_or(false),
        // PIV cards keep no signature counter.
        counts_signatures: false,
        no_pin: slot.no_pin,
        own_pin: false,
        pin_reference: slot.pin_reference,
        can_sign: !is_x25519,
        can_decrypt: is_rsa,
        // SP 800-73-4 Part 1 §3.3.3: the key management key is the one for
        // key establishment (ECDH on EC cards).
        can_derive: key_agreement
            && matches!(slot.role, KeyRole::Piv(role) if role.establishes_keys()),
        card_pads: false,
        recalled: false,
        refusals: Default::default(),
    }
}

impl CardApp for PivApp {
    fn profile(&self) -> &Profile {
        &self.profile
    }

    fn select(&self, card: &mut Transaction) -> Result<(), AppError> {
        if self.profile.quirks.loses_login_on_select {
            // VERIFY without data answers 9000/63Cx/6983 only from the PIV
            // application: then it is still selected and a SELECT would
            // drop the PIN state.
            let verify = self.verify_command(card);
            let probe = card.execute(&verify)?;
            if probe.sw == StatusWord::SUCCESS
                || probe.sw == StatusWord::AUTH_METHOD_BLOCKED
                || self.profile.tries_left(probe.sw).is_some()
            {
                return Ok(());
            }
        }
        card.transmit_ok(&commands::select_application(&self.profile.aid))?;
        Ok(())
    }

    fn read_card(&self, card: &mut Transaction, recall: &dyn Recall) -> Result<CardInfo, AppError> {
        let chuid = self.get_data(card, TAG_CHUID)?;
        let serial = chuid.as_deref().and_then(serial_from_chuid);
        let mut identity = chuid.filter(|chuid| serial.is_some() && self.cacheable(chuid));
        let pin_reference = self.pin_reference(card);
        let remembered = identity
            .as_deref()
            .and_then(|id| recall.recall(id))
            .and_then(|records| self.remembered(&records, pin_reference));
        let remembered = match (remembered, identity.as_deref()) {
            (Some(remembered), Some(id)) => match self.still_on_card(card, id, &remembered.keys)? {
                Proof::Current(answers) => Some(self.trust(card, id, remembered, answers)),
                Proof::Changed => None,
                // The card lacks what the profile promised (a YubiKey 4
                // has no GET METADATA): the entry goes, and none is written
                // from this read.
                Proof::Impossible => {
                    recall.forget(id);
                    identity = None;
                    None
                }
            },
            _ => None,
        };
        let recalled = remembered.is_some();
        let (keys, key_slots_read) = match remembered {
            Some((mut keys, mut answers)) => {
                // The remembered retired keys stand with the rest.
                self.complete(card, &mut keys, &mut answers, false)?;
                if identity.as_deref().is_some_and(chuid_is_signed) {
                    // Nothing came from the card, keys without a
                    // certificate included: each waits for its first
                    // verified signature.
                    for key in &mut keys {
                        key.recalled = true;
                    }
                }
                (keys, self.profile.keys.len())
            }
            // The token's label is the first certificate's CN (as OpenSC
            // shows it): read key slots up to the first certificate, the
            // rest only when objects are needed.
            None => self.read_keys(card, Vec::new(), 0, true)?,
        };
        let label = keys
            .iter()
            .find_map(|key| key.certificate.as_deref())
            .and_then(|der| parse_certificate(der).ok())
            .and_then(|cert| cert.common_name);
        Ok(CardInfo {
            label: label.unwrap_or_else(|| self.profile.description.clone()),
            serial: serial.unwrap_or_else(|| "0".into()),
            manufacturer: self.profile.manufacturer.clone(),
            model: self.profile.model.clone(),
            keys_complete: key_slots_read >= self.profile.keys.len(),
            key_slots_read,
            keys,
            pin: None,
            signature_counter: None,
            data_objects: Vec::new(),
            certificates: Vec::new(),
            identity,
            recalled,
        })
    }

    fn read_remaining_keys(
        &self,
        card: &mut Transaction,
        known: &[KeyInfo],
        from_slot: usize,
    ) -> Result<Vec<KeyInfo>, AppError> {
        Ok(self.read_keys(card, known.to_vec(), from_slot, false)?.0)
    }

    fn pin_max_tries(&self, state: &EngineState) -> Option<u8> {
        state.get::<PivState>()?.pin_max_tries
    }

    /// The certificates, the card's GET METADATA answers (each key's PIN
    /// and touch policy, keys without a certificate, empty slots) and the
    /// PIN's maximum tries: with a signed CHUID a warm read needs nothing
    /// else from the card.
    fn to_remember(&self, info: &CardInfo, state: &EngineState) -> Vec<Record> {
        let mut records = certificate_records(&info.keys);
        let Some(learned) = state.get::<PivState>() else {
            return records;
        };
        records.extend(learned.answers.iter().map(|(reference, answer)| {
            Record::new(RecordKind::KeyMetadata, &[*reference], answer.to_record())
        }));
        if let (Some(tries), true) = (learned.pin_max_tries, learned.pin_reference_known) {
            records.push(Record::new(
                RecordKind::PinTries,
                &[learned.pin_reference],
                vec![tries],
            ));
        }
        records
    }

    fn pin_status(&self, card: &mut Transaction) -> Result<PinStatus, AppError> {
        self.learn_pin_reference(card)?;
        self.read_pin_tries(card)?;
        // VERIFY without data reports the state and spends no try.
        let verify = self.verify_command(card);
        let response = card.execute(&verify)?;
        Ok(match response.sw {
            StatusWord::SUCCESS => PinStatus {
                tries_left: None,
                verified: true,
                blocked: false,
            },
            StatusWord::AUTH_METHOD_BLOCKED => PinStatus {
                tries_left: Some(0),
                verified: false,
                blocked: true,
            },
            sw => match self.profile.tries_left(sw) {
                Some(tries) => PinStatus {
                    tries_left: Some(tries),
                    verified: false,
                    blocked: tries == 0,
                },
                None => PinStatus::default(),
            },
        })
    }

    fn tells_puk_status(&self, state: &EngineState) -> bool {
        match state.get::<PivState>() {
            Some(learned) => learned.metadata == Some(true),
            None => self.profile.quirks.key_metadata,
        }
    }

    fn puk_status(&self, card: &mut Transaction) -> Result<Option<PinStatus>, AppError> {
        Ok(self
            .read_puk_tries(card)?
            .map(|(_total, remaining)| PinStatus {
                tries_left: Some(remaining),
                verified: false,
                blocked: remaining == 0,
            }))
    }

    fn verify_pin(&self, card: &mut Transaction, pin: &[u8]) -> Result<(), AppError> {
        self.learn_pin_reference(card)?;
        let command = self.verify_command(card).secret_data(self.padded_pin(pin)?);
        self.profile.pin_command(card, &command)
    }

    fn change_pin(&self, card: &mut Transaction, old: &[u8], new: &[u8]) -> Result<(), AppError> {
        self.learn_pin_reference(card)?;
        // SP 800-73-4 Part 2 §3.2.2: CHANGE REFERENCE DATA, old || new.
        let data = super::joined_secret(&[&self.padded_pin(old)?, &self.padded_pin(new)?]);
        let command = commands::change_reference_data(self.pin_reference(card), data);
        self.profile.pin_command(card, &command)
    }

    fn unblock_pin(
        &self,
        card: &mut Transaction,
        unblock_code: &[u8],
        new: &[u8],
    ) -> Result<(), AppError> {
        // SP 800-73-4 Part 2 §3.2.3: RESET RETRY COUNTER, PUK || new PIN,
        // for the PIV PIN only: the PUK does not reset a global PIN.
        self.learn_pin_reference(card)?;
        if self.pin_reference(card) != self.profile.pin.reference {
            return Err(AppError::Unsupported(
                "resetting the global PIN with the PUK",
            ));
        }
        let data = super::joined_secret(&[&self.padded_puk(unblock_code)?, &self.padded_pin(new)?]);
        let command = commands::reset_retry_counter(
            self.profile.pin.reference,
            RetryReset::UnblockCodeAndNewPin,
            data,
        );
        self.profile.pin_command(card, &command)
    }

    fn change_pin_pad(&self, card: &mut Transaction) -> Result<(), AppError> {
        // CHANGE REFERENCE DATA with two padded PIN blocks (old, new) that
        // the reader fills in.
        self.learn_pin_reference(card)?;
        let pin = &self.profile.pin;
        let block = pin.pad_length.unwrap_or(pin.max_length);
        let change = commands::change_reference_data(
            self.pin_reference(card),
            Zeroizing::new(vec![pin.pad_byte.unwrap_or(0xFF); 2 * block]),
        );
        let mut apdu = vec![
            change.cla,
            change.ins,
            change.p1,
            change.p2,
            (2 * block) as u8,
        ];
        apdu.extend_from_slice(&change.data);
        let request = crate::transport::PinPadChange {
            apdu,
            old_offset: 0,
            new_offset: block as u8,
            min_length: pin.min_length as u8,
            max_length: pin.max_length as u8,
            block_length: block as u8,
        };
        let response = card.change_pin_pad(&request)?;
        if response.sw.is_success() {
            Ok(())
        } else {
            Err(self.profile.pin_pad_error(response.sw))
        }
    }

    fn verify_pin_pad(&self, card: &mut Transaction) -> Result<(), AppError> {
        self.learn_pin_reference(card)?;
        let pin = &self.profile.pin;
        let block = pin.pad_length.unwrap_or(pin.max_length);
        let verify = commands::verify_status(self.pin_reference(card));
        let mut apdu = vec![verify.cla, verify.ins, verify.p1, verify.p2, block as u8];
        apdu.resize(5 + block, pin.pad_byte.unwrap_or(0xFF));
        let request = crate::transport::PinPadVerify {
            apdu,
            min_length: pin.min_length as u8,
            max_length: pin.max_length as u8,
            block_length: block as u8,
        };
        let response = card.verify_pin_pad(&request)?;
        if response.sw.is_success() {
            Ok(())
        } else {
            Err(self.profile.pin_pad_error(response.sw))
        }
    }

    fn logout(&self, card: &mut Transaction) -> Result<(), AppError> {
        // SP 800-73-4 Part 2 §3.2.1: VERIFY with P1 = FF resets the PIN status.
        let reset = commands::verify_reset(self.pin_reference(card));
        let response = card.execute(&reset)?;
        if !response.sw.is_success() {
            log::debug!("card did not reset its PIN state: {}", response.sw);
        }
        Ok(())
    }

    fn sign(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        input: SignInput<'_>,
        _proof: &Verified,
    ) -> Result<Vec<u8>, AppError> {
        // The card does raw RSA: the module pads (KeyInfo::card_pads false).
        match (&key.public_key, input) {
            (PublicKey::Rsa { .. }, SignInput::RsaRaw(block)) => {
                Ok(self.raw_rsa(card, key, block)?.to_vec())
            }
            (PublicKey::Ec { curve, .. }, SignInput::Ecdsa(input)) => {
                if input.len() != curve.order_len() {
                    return Err(AppError::DataLength);
                }
                let der = self.general_authenticate(card, key, input)?;
                crypto::ecdsa_der_to_raw(&der, curve.field_len())
                    .ok_or(CardError::Malformed("ECDSA signature is not DER").into())
            }
            (PublicKey::Ed25519 { .. }, SignInput::EdDsa(message)) => {
                let signature = self.general_authenticate(card, key, message)?;
                if signature.len() != 64 {
                    return Err(CardError::Malformed("Ed25519 signature is not 64 bytes").into());
                }
                Ok(signature.to_vec())
            }
            _ => Err(AppError::Unsupported("mechanism does not fit the key")),
        }
    }

    fn decrypt_raw(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        ciphertext: &[u8],
        _proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        self.raw_rsa(card, key, ciphertext)
    }

    fn derive(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        peer_point: &[u8],
        _proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        // SP 800-73-4 Part 2 §3.2.4, key establishment: 7C { 82 00, 85 <point> }.
        let expected = match &key.public_key {
            PublicKey::Ec { curve, .. } => curve.field_len(),
            PublicKey::X25519 { .. } => 32,
            _ => return Err(AppError::Unsupported("ECDH with a non-EC key")),
        };
        let secret = self.general_authenticate_with(card, key, tag::EXPONENTIATION, peer_point)?;
        if secret.len() != expected {
            return Err(CardError::Malformed("shared secret of the wrong length").into());
        }
        Ok(secret)
    }
}

impl PivApp {
    /// The card's raw RSA private-key operation on a block as long as the
    /// modulus; the result is left-padded back to that length.
    fn raw_rsa(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        block: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let PublicKey::Rsa { modulus, .. } = &key.public_key else {
            return Err(AppError::Unsupported("raw RSA on a non-RSA key"));
        };
        if block.len() != modulus.len() || block > modulus.as_slice() {
            return Err(AppError::DataLength);
        }
        let result = self.general_authenticate(card, key, block)?;
        if result.len() > modulus.len() {
            return Err(CardError::Malformed("RSA result longer than the modulus").into());
        }
        let mut out = Zeroizing::new(Vec::with_capacity(modulus.len()));
        out.resize(modulus.len() - result.len(), 0);
        out.extend_from_slice(&result);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso7816::Instruction;

    fn profile(quirk: &str) -> Profile {
        let text = include_str!("../../../cardprofiles/piv.toml")
            .replace("[quirks]", &format!("[quirks]\n{quirk}"));
        Profile::from_toml(&text).unwrap()
    }

    /// A card answering from a list, recording what it was sent.
    struct Answers(Vec<Vec<u8>>, Vec<Vec<u8>>);

    impl crate::transport::Transmit for Answers {
        fn transmit(
            &mut self,
            command: &[u8],
        ) -> Result<Vec<u8>, crate::transport::TransportError> {
            self.1.push(command.to_vec());
            Ok(self.0.remove(0))
        }
    }

    #[test]
    fn a_card_that_loses_its_login_on_select_is_selected_only_when_needed() {
        let app = PivApp::new(Arc::new(profile("loses_login_on_select = true")));
        let options = crate::iso7816::ChannelOptions::default();
        // VERIFY without data answers 63C3: PIV is selected, no SELECT.
        let mut card = Answers(vec![vec![0x63, 0xC3]], Vec::new());
        app.select(&mut Transaction::new(&mut card, options))
            .unwrap();
        assert_eq!(card.1, [vec![0x00, 0x20, 0x00, 0x80]]);
        // 6D00: another application is selected; SELECT PIV follows.
        let mut card = Answers(vec![vec![0x6D, 0x00], vec![0x90, 0x00]], Vec::new());
        app.select(&mut Transaction::new(&mut card, options))
            .unwrap();
        assert_eq!(card.1.len(), 2);
        assert_eq!(card.1[1][1], Instruction::Select.code());
        // Without the quirk: SELECT only.
        let plain = PivApp::new(Arc::new(profile("")));
        let mut card = Answers(vec![vec![0x90, 0x00]], Vec::new());
        plain
            .select(&mut Transaction::new(&mut card, options))
            .unwrap();
        assert_eq!(card.1.len(), 1);
        assert_eq!(card.1[0][1], Instruction::Select.code());
    }

    #[test]
    fn only_a_chuid_with_an_issuer_signature_counts_as_signed() {
        let chuid = |signature: &[u8]| {
            let mut body = tlv::encode(0x34, &[0x11; 16]);
            body.extend(tlv::encode(0x3E, signature));
            body
        };
        assert!(chuid_is_signed(&chuid(&[0x5A; 64])));
        assert!(!chuid_is_signed(&chuid(&[])));
        assert!(!chuid_is_signed(&tlv::encode(0x34, &[0x11; 16])));
    }

    /// The 9A certificates of two simulated cards with different keys.
    fn two_9a_certificates() -> (Vec<u8>, Vec<u8>) {
        use p11card_cardsim::{KeyType, SimPivCard, Slot};
        let genuine = SimPivCard::new();
        let planted = SimPivCard::new().with_key(Slot::Authentication, KeyType::EccP256);
        let der = |card: &SimPivCard| card.certificate_der(Slot::Authentication).unwrap().to_vec();
        (der(&genuine), der(&planted))
    }

    #[test]
    fn remembered_certificates_naming_a_key_slot_twice_are_not_used() {
        let app = PivApp::new(Arc::new(profile("key_metadata = true")));
        let (genuine, planted) = two_9a_certificates();
        assert!(app
            .keys_from_certificates(&[(0x9A, genuine.clone())], 0x80)
            .is_some());
        assert!(app
            .keys_from_certificates(&[(0x9A, genuine), (0x9A, planted)], 0x80)
            .is_none());
    }

    #[test]
    fn the_metadata_proof_refuses_a_key_slot_remembered_twice() {
        let app = PivApp::new(Arc::new(profile("key_metadata = true")));
        let (genuine, planted) = two_9a_certificates();
        let mut keys = app
            .keys_from_certificates(&[(0x9A, genuine)], 0x80)
            .unwrap();
        keys.extend(
            app.keys_from_certificates(&[(0x9A, planted)], 0x80)
                .unwrap(),
        );
        // Decided before any GET METADATA: the card is not asked.
        let mut card = Answers(Vec::new(), Vec::new());
        let options = crate::iso7816::ChannelOptions::default();
        let proof = app
            .still_on_card(&mut Transaction::new(&mut card, options), &[], &keys)
            .unwrap();
        assert!(matches!(proof, Proof::Changed));
        assert!(card.1.is_empty());
    }

    #[test]
    fn maps_pin_status_words() {
        let piv = profile("");
        assert_eq!(
            piv.pin_error(StatusWord(0x63C2)),
            AppError::PinIncorrect(Some(2))
        );
        assert_eq!(piv.pin_error(StatusWord(0x63C0)), AppError::PinLocked);
        assert_eq!(piv.pin_error(StatusWord(0x6983)), AppError::PinLocked);
        assert_eq!(
            piv.pin_error(StatusWord(0x6300)),
            AppError::PinIncorrect(None)
        );
        assert!(matches!(
            piv.pin_error(StatusWord(0x6302)),
            AppError::Card(CardError::Status(_))
        ));
        // YubiKey NEO (OpenSC CI_VERIFY_630X): tries as 630X.
        let neo = profile("tries_as_630x = true");
        assert_eq!(
            neo.pin_error(StatusWord(0x6302)),
            AppError::PinIncorrect(Some(2))
        );
        assert_eq!(neo.pin_error(StatusWord(0x6300)), AppError::PinLocked);
    }
}
