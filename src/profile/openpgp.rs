//! The OpenPGP card application ("Functional Specification of the OpenPGP
//! application on ISO Smart Card Operating Systems", v3.4; v2.x cards
//! too): one function per card command, each a few lines.
//!
//! What the token shows:
//! - the three keys (signature `B6`, decryption `B8`, authentication `A4`)
//!   with their algorithm attributes (`C1`–`C3`): RSA, ECDSA/ECDH on
//!   P-256/P-384, Ed25519 (EdDSA) and X25519 (ECDH); public keys from
//!   GENERATE ASYMMETRIC KEY PAIR in read mode (`47 81`);
//! - the cardholder certificates (`7F21`, one occurrence per key on v3
//!   cards, reached with SELECT DATA / GET NEXT DATA), each attached to the
//!   key whose public key it certifies;
//! - PW1 (`81` for signing, `82` for the others) as the user PIN, with the
//!   tries from the PW status bytes (`C4`); the signature key wants the PIN
//!   before every signature when `C4` says PW1 is valid for one signature;
//! - the digital signature counter (`93` in `7A`).

use super::{
    AppError, CardApp, CardInfo, KeyInfo, KeyRole, OpenPgpRole, PinStatus, Profile, Recall,
    SignInput,
};
use crate::card::{EngineState, Transaction, Verified};
use crate::cert::{parse_certificate, Curve, PublicKey};
use crate::crypto;
use crate::iso7816::commands::{self, RetryReset};
use crate::iso7816::{tlv, CardError, ChannelOptions, Command, StatusWord};
use std::sync::Arc;
use zeroize::Zeroizing;

mod data;
mod public_data;
use data::*;

/// GENERATE ASYMMETRIC KEY PAIR P1: read the existing public key (spec
/// v3.4 §7.2.14).
const READ_PUBLIC_KEY: u8 = 0x81;

/// Data objects (spec v3.4 §4.4.1).
const DO_APPLICATION_RELATED_DATA: u16 = 0x006E;
const DO_DISCRETIONARY_DATA: u32 = 0x73;
const DO_AID: u32 = 0x4F;
const DO_HISTORICAL_BYTES: u32 = 0x5F52;
const DO_EXTENDED_CAPABILITIES: u32 = 0xC0;
const DO_FINGERPRINTS: u32 = 0xC5;
const DO_GENERATION_TIMES: u32 = 0xCD;
const DO_KEY_INFORMATION: u32 = 0xDE;
const DO_SIGNATURE_COUNTER: u32 = 0x93;
/// Public key template and its fields (spec v3.4 §7.2.14, Table "Public
/// key template"): RSA modulus `81` and exponent `82`, EC point `86`.
const DO_PUBLIC_KEY: u32 = 0x7F49;
const DO_RSA_MODULUS: u32 = 0x81;
const DO_RSA_EXPONENT: u32 = 0x82;
const DO_EC_POINT: u32 = 0x86;
/// The cipher DO of PSO:DECIPHER for ECDH (spec v3.4 §7.2.11).
const DO_CIPHER: u32 = 0xA6;
/// Algorithm attributes of the signature (`C1`), decryption (`C2`) and
/// authentication (`C3`) keys.
const DO_ALGORITHM_ATTRIBUTES_FIRST: u32 = 0xC1;
const DO_ALGORITHM_ATTRIBUTES_LAST: u32 = 0xC3;
const DO_NAME: u16 = 0x005B;
const DO_SECURITY_SUPPORT_TEMPLATE: u16 = 0x007A;
const DO_PW_STATUS: u16 = 0x00C4;
const DO_CARDHOLDER_CERTIFICATE: u16 = 0x7F21;

/// Password references (spec v3.4 §7.2.2).
const PW1_SIGN: u8 = 0x81;
const PW1: u8 = 0x82;
const PW3: u8 = 0x83;

/// The three keys: their role in the profile, control reference template,
/// and index in `C1`–`C3`, `C5`, `CD` and `DE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRef {
    Signature,
    Decryption,
    Authentication,
}

impl KeyRef {
    fn from_role(role: &KeyRole) -> Option<KeyRef> {
        match role {
            KeyRole::OpenPgp(OpenPgpRole::Signature) => Some(KeyRef::Signature),
            KeyRole::OpenPgp(OpenPgpRole::Decryption) => Some(KeyRef::Decryption),
            KeyRole::OpenPgp(OpenPgpRole::Authentication) => Some(KeyRef::Authentication),
            _ => None,
        }
    }

    /// The control reference template (spec v3.4 §7.2.14).
    fn crt(self) -> u8 {
        match self {
            KeyRef::Signature => 0xB6,
            KeyRef::Decryption => 0xB8,
            KeyRef::Authentication => 0xA4,
        }
    }

    /// Position in the algorithm attributes (`C1`–`C3`), fingerprint
    /// (`C5`) and timestamp (`CD`) lists.
    fn index(self) -> usize {
        match self {
            KeyRef::Signature => 0,
            KeyRef::Decryption => 1,
            KeyRef::Authentication => 2,
        }
    }
}

/// What the engine learned about a card, for later transactions: kept in
/// the card's [`EngineState`](crate::card::EngineState).
#[derive(Debug, Clone, Copy, Default)]
struct CardState {
    /// Use extended-length APDUs.
    extended: bool,
    /// Application version, major.
    version: u8,
    /// PW1 is valid for one signature only.
    single_signature: bool,
    /// The card holds a signature key.
    has_signature_key: bool,
}

/// The OpenPGP engine for one profile and the ATR of a card.
#[derive(Debug)]
pub struct OpenPgpApp {
    profile: Arc<Profile>,
    /// The ATR's historical bytes announce extended-length APDUs.
    atr_announces_extended: bool,
}

impl OpenPgpApp {
    /// An engine for a card with this ATR matching `profile`. Whether to use
    /// extended-length APDUs comes from the profile's quirks, else from the
    /// card capabilities in the ATR's historical bytes (and later from the
    /// historical bytes DO `5F52`).
    pub fn new(profile: Arc<Profile>, atr: &[u8]) -> Self {
        OpenPgpApp {
            profile,
            atr_announces_extended: atr_historical_bytes(atr)
                .is_some_and(announces_extended_length),
        }
    }

    /// What the engine knows about a card before reading it.
    fn initial_state(&self) -> CardState {
        CardState {
            extended: Self::use_extended(&self.profile, self.atr_announces_extended),
            version: 3,
            ..CardState::default()
        }
    }

    fn use_extended(profile: &Profile, announced: bool) -> bool {
        !profile.quirks.short_apdus_only && (profile.quirks.extended_length || announced)
    }

    /// What the engine learned about the card of this transaction.
    fn state<'t>(&self, card: &'t mut Transaction) -> &'t mut CardState {
        card.engine_state(|| self.initial_state())
    }

    /// Sets the channel's framing to what the card takes.
    fn frame(&self, card: &mut Transaction) {
        let extended_length = self.state(card).extended;
        card.set_options(ChannelOptions { extended_length });
    }

    /// GET DATA (spec v3.4 §7.2.6): the DO's value, or `None` if the card
    /// does not have it.
    fn get_data(&self, card: &mut Transaction, tag: u16) -> Result<Option<Vec<u8>>, AppError> {
        let response = card.execute(&commands::get_data(tag))?;
        match response.sw {
            StatusWord::SUCCESS => Ok(Some(response.data.to_vec())),
            StatusWord::DATA_NOT_FOUND | StatusWord::NOT_FOUND | StatusWord::WRONG_P1P2 => Ok(None),
            other => Err(CardError::Status(other).into()),
        }
    }

    fn pw_status(&self, card: &mut Transaction) -> Result<PwStatus, AppError> {
        let data = self
            .get_data(card, DO_PW_STATUS)?
            .ok_or(CardError::Malformed("no PW status bytes"))?;
        Ok(PwStatus::parse(&data)?)
    }

    fn verify(&self, card: &mut Transaction, reference: u8, pin: &[u8]) -> Result<(), AppError> {
        let command = commands::verify(reference, Zeroizing::new(pin.to_vec()));
        self.profile.pin_command(card, &command)
    }

    /// VERIFY with P1 = FF (spec v3.4 §7.2.2): resets the access status of
    /// one password. Cards before v3 do not know it; that is not an error.
    fn forget(&self, card: &mut Transaction, reference: u8) -> Result<(), AppError> {
        let response = card.execute(&commands::verify_reset(reference))?;
        if !response.sw.is_success() {
            log::debug!("card kept the state of PW {reference:02X}: {}", response.sw);
        }
        Ok(())
    }

    /// Runs a PSO or INTERNAL AUTHENTICATE and maps its failures.
    fn private_key_operation(
        &self,
        card: &mut Transaction,
        command: Command,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let response = card.execute(&command)?;
        match response.sw {
            StatusWord::SUCCESS => Ok(response.data),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED => Err(AppError::NotAuthenticated),
            other => Err(CardError::Status(other).into()),
        }
    }
}

impl CardApp for OpenPgpApp {
    fn profile(&self) -> &Profile {
        &self.profile
    }

    fn select(&self, card: &mut Transaction) -> Result<(), AppError> {
        self.frame(card);
        if self.profile.quirks.loses_login_on_select {
            // GET DATA C4 only works while the OpenPGP application is
            // selected: then a SELECT would drop the PIN state.
            let probe = card.execute(&commands::get_data(DO_PW_STATUS).expect_response())?;
            if probe.sw.is_success() && PwStatus::parse(&probe.data).is_ok() {
                return Ok(());
            }
        }
        card.transmit_ok(&commands::select_application(&self.profile.aid))?;
        Ok(())
    }

    fn read_card(
        &self,
        card: &mut Transaction,
        _recall: &dyn Recall,
    ) -> Result<CardInfo, AppError> {
        self.frame(card);
        let raw = self
            .get_data(card, DO_APPLICATION_RELATED_DATA)?
            .ok_or(CardError::Malformed("no application related data"))?;
        let data = ApplicationData::parse(&raw)?;
        let pw = data
            .pw_status
            .ok_or(CardError::Malformed("no PW status bytes in 6E"))?;
        let (major, minor) = data.version();
        if let Some(historical) = &data.historical {
            let announced = announces_extended_length(historical);
            self.state(card).extended = Self::use_extended(&self.profile, announced);
        }
        let state = self.state(card);
        state.version = major;
        state.single_signature = pw.single_signature;
        self.frame(card);
        log::debug!(
            "OpenPGP card v{major}.{minor}, serial {}, extended length {}",
            data.serial(),
            self.state(card).extended
        );

        let mut keys = Vec::new();
        for slot in &self.profile.keys {
            let Some(key_ref) = KeyRef::from_role(&slot.role) else {
                continue;
            };
            let Some(algorithm) = data.algorithm(key_ref) else {
                log::warn!("{key_ref:?} key: algorithm not supported or not announced");
                continue;
            };
            if data.key_present(key_ref) == Some(false) {
                continue;
            }
            let Some(public_key) = self.read_public_key(card, key_ref, algorithm)? else {
                continue;
            };
            let is_rsa = public_key.is_rsa();
            let signing_key = key_ref != KeyRef::Decryption;
            let always_authenticate = slot
                .always_authenticate
                .unwrap_or(key_ref == KeyRef::Signature && pw.single_signature);
            keys.push(KeyInfo {
                reference: slot.reference,
                id: slot.id.clone(),
                label: slot.label.clone(),
                role: slot.role,
                certificate: None,
                always_authenticate,
                counts_signatures: key_ref == KeyRef::Signature,
                no_pin: false,
                own_pin: false,
                pin_reference: slot.pin_reference,
                can_sign: signing_key,
                can_decrypt: !signing_key && is_rsa,
                can_derive: !signing_key && !is_rsa,
                card_pads: is_rsa,
                recalled: false,
                refusals: Default::default(),
                public_key,
            });
        }
        self.state(card).has_signature_key = keys
            .iter()
            .any(|k| k.role == KeyRole::OpenPgp(OpenPgpRole::Signature));

        if !keys.is_empty() && data.max_certificate_len() > 0 {
            let occurrences = if major >= 3 { 3 } else { 1 };
            for der in self.read_certificates(card, occurrences)? {
                let Ok(certificate) = parse_certificate(&der) else {
                    log::warn!("a cardholder certificate is not usable");
                    continue;
                };
                match keys
                    .iter_mut()
                    .find(|k| k.certificate.is_none() && k.public_key == certificate.public_key)
                {
                    Some(key) => key.certificate = Some(der),
                    None => log::warn!("a cardholder certificate matches no key on the card"),
                }
            }
        }

        let name = self
            .get_data(card, DO_NAME)?
            .and_then(|raw| display_name(&raw));
        let signature_counter = self
            .get_data(card, DO_SECURITY_SUPPORT_TEMPLATE)?
            .and_then(|template| {
                let inner = unwrap_do(&template, u32::from(DO_SECURITY_SUPPORT_TEMPLATE));
                tlv::find(inner, DO_SIGNATURE_COUNTER)
                    .ok()
                    .flatten()
                    .map(<[u8]>::to_vec)
            })
            .filter(|counter| counter.len() <= 4)
            .map(|counter| {
                counter
                    .iter()
                    .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
            });
        // The manufacturer ID in the AID names the maker better than a
        // generic profile can.
        let manufacturer = manufacturer_name(data.manufacturer_id())
            .map_or_else(|| self.profile.manufacturer.clone(), str::to_owned);
        Ok(CardInfo {
            label: name.unwrap_or_else(|| "OpenPGP card".to_owned()),
            serial: data.serial(),
            manufacturer,
            model: self.profile.model.clone(),
            keys,
            pin: Some(pw.pin_status()),
            signature_counter,
            data_objects: Vec::new(),
            certificates: Vec::new(),
            keys_complete: true,
            key_slots_read: 0,
            identity: None,
            recalled: false,
        })
    }

    fn pin_status(&self, card: &mut Transaction) -> Result<PinStatus, AppError> {
        Ok(self.pw_status(card)?.pin_status())
    }

    fn tells_puk_status(&self, _state: &EngineState) -> bool {
        true
    }

    /// The code `unblock_pin` takes: the Resetting Code when the card has
    /// one (its counter is not zero), else PW3.
    fn puk_status(&self, card: &mut Transaction) -> Result<Option<PinStatus>, AppError> {
        let pw = self.pw_status(card)?;
        let tries = if pw.rc_tries > 0 {
            pw.rc_tries
        } else {
            pw.pw3_tries
        };
        Ok(Some(PinStatus {
            tries_left: Some(tries),
            verified: false,
            blocked: tries == 0,
        }))
    }

    fn verify_pin(&self, card: &mut Transaction, pin: &[u8]) -> Result<(), AppError> {
        self.profile.check_pin_length(pin)?;
        // PW1 in mode 82 unlocks decryption and authentication; mode 81 the
        // signature key, unless the card wants PW1 before each signature
        // (then that key is always-authenticate and verifies 81 itself).
        self.verify(card, PW1, pin)?;
        let state = *self.state(card);
        if state.has_signature_key && !state.single_signature {
            self.verify(card, PW1_SIGN, pin)?;
        }
        Ok(())
    }

    fn verify_pin_for_key(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        pin: &[u8],
    ) -> Result<(), AppError> {
        self.profile.check_pin_length(pin)?;
        self.verify(card, key.pin_reference, pin)
    }

    fn logout(&self, card: &mut Transaction) -> Result<(), AppError> {
        self.forget(card, PW1_SIGN)?;
        self.forget(card, PW1)
    }

    fn change_pin(&self, card: &mut Transaction, old: &[u8], new: &[u8]) -> Result<(), AppError> {
        // Spec v3.4 §7.2.3: CHANGE REFERENCE DATA for PW1 (P2 = 81), old || new.
        self.profile.check_pin_length(old)?;
        self.profile.check_pin_length(new)?;
        let data = super::joined_secret(&[old, new]);
        let command = commands::change_reference_data(PW1_SIGN, data);
        self.profile.pin_command(card, &command)
    }

    /// With a Resetting Code on the card (its retry counter in `C4` is not
    /// zero), `unblock_code` is that code: RESET RETRY COUNTER with P1 = 00.
    /// Otherwise it is PW3 (the Admin PIN): VERIFY 83, then RESET RETRY
    /// COUNTER with P1 = 02, then PW3's state is reset (spec v3.4 §7.2.4).
    fn unblock_pin(
        &self,
        card: &mut Transaction,
        unblock_code: &[u8],
        new: &[u8],
    ) -> Result<(), AppError> {
        self.profile.check_pin_length(new)?;
        self.profile.check_puk_length(unblock_code)?;
        let pw = self.pw_status(card)?;
        let command = if pw.rc_tries > 0 {
            let data = super::joined_secret(&[unblock_code, new]);
            commands::reset_retry_counter(PW1_SIGN, RetryReset::UnblockCodeAndNewPin, data)
        } else {
            if pw.pw3_tries == 0 {
                return Err(AppError::PinLocked);
            }
            self.verify(card, PW3, unblock_code)?;
            commands::reset_retry_counter(
                PW1_SIGN,
                RetryReset::NewPinOnly,
                Zeroizing::new(new.to_vec()),
            )
        };
        let response = card.execute(&command)?;
        if pw.rc_tries == 0 {
            self.forget(card, PW3)?;
        }
        if response.sw.is_success() {
            Ok(())
        } else if pw.rc_tries == 0 && response.sw == StatusWord::WRONG_DATA {
            Err(AppError::PinLength)
        } else {
            Err(self.profile.pin_error(response.sw))
        }
    }

    fn sign(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        input: SignInput<'_>,
        _proof: &Verified,
    ) -> Result<Vec<u8>, AppError> {
        let data: Vec<u8> = match (&key.public_key, input) {
            // The card pads (PKCS#1 v1.5 type 1): it takes the DigestInfo,
            // which the module has checked fits the modulus.
            (PublicKey::Rsa { .. }, SignInput::RsaPkcs1(data)) => data.to_vec(),
            (PublicKey::Ec { curve, .. }, SignInput::Ecdsa(input)) => {
                if input.len() != curve.order_len() {
                    return Err(AppError::DataLength);
                }
                input.to_vec()
            }
            (PublicKey::Ed25519 { .. }, SignInput::EdDsa(message)) => message.to_vec(),
            _ => return Err(AppError::Unsupported("mechanism does not fit the key")),
        };
        let command = match KeyRef::from_role(&key.role) {
            // PSO: COMPUTE DIGITAL SIGNATURE (spec v3.4 §7.2.10).
            Some(KeyRef::Signature) => commands::pso_compute_digital_signature(data),
            // INTERNAL AUTHENTICATE (spec v3.4 §7.2.13).
            Some(KeyRef::Authentication) => commands::internal_authenticate(data),
            _ => return Err(AppError::Unsupported("this key does not sign")),
        };
        let result = self.private_key_operation(card, command)?;
        match &key.public_key {
            PublicKey::Rsa { modulus, .. } => {
                if result.len() > modulus.len() {
                    return Err(
                        CardError::Malformed("RSA signature longer than the modulus").into(),
                    );
                }
                let mut signature = vec![0u8; modulus.len() - result.len()];
                signature.extend_from_slice(&result);
                Ok(signature)
            }
            PublicKey::Ec { curve, .. } => {
                let len = curve.field_len();
                // The card answers r || s; some answer DER.
                if result.len() == 2 * len {
                    Ok(result.to_vec())
                } else {
                    crypto::ecdsa_der_to_raw(&result, len)
                        .ok_or(CardError::Malformed("ECDSA signature of the wrong form").into())
                }
            }
            _ => {
                if result.len() != 64 {
                    return Err(CardError::Malformed("Ed25519 signature is not 64 bytes").into());
                }
                Ok(result.to_vec())
            }
        }
    }

    fn decrypt_raw(
        &self,
        _card: &mut Transaction,
        _key: &KeyInfo,
        _ciphertext: &[u8],
        _proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        Err(AppError::Unsupported(
            "OpenPGP cards remove the padding themselves",
        ))
    }

    fn decrypt_pkcs1(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        ciphertext: &[u8],
        _proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let PublicKey::Rsa { modulus, .. } = &key.public_key else {
            return Err(AppError::Unsupported("RSA decryption with a non-RSA key"));
        };
        if KeyRef::from_role(&key.role) != Some(KeyRef::Decryption) {
            return Err(AppError::Unsupported("this key does not decrypt"));
        }
        if ciphertext.len() != modulus.len() {
            return Err(AppError::DataLength);
        }
        // PSO: DECIPHER (spec v3.4 §7.2.11): padding indicator 00, then the
        // cryptogram; the card answers the message without its padding.
        let mut data = Vec::with_capacity(ciphertext.len() + 1);
        data.push(0x00);
        data.extend_from_slice(ciphertext);
        match self.private_key_operation(card, commands::pso_decipher(data)) {
            Err(AppError::Card(CardError::Status(StatusWord::WRONG_DATA))) => {
                Err(AppError::BadCiphertext)
            }
            other => other,
        }
    }

    fn derive(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        peer_point: &[u8],
        _proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let secret_len = match &key.public_key {
            PublicKey::Ec { curve, .. } => {
                if peer_point.len() != 1 + 2 * curve.field_len() || peer_point[0] != 0x04 {
                    return Err(AppError::BadCiphertext);
                }
                curve.field_len()
            }
            PublicKey::X25519 { .. } => {
                if peer_point.len() != 32 {
                    return Err(AppError::BadCiphertext);
                }
                32
            }
            _ => return Err(AppError::Unsupported("ECDH with a non-ECDH key")),
        };
        // PSO: DECIPHER with the cipher DO: A6 { 7F49 { 86 <point> } }.
        let point = tlv::encode(DO_EC_POINT, peer_point);
        let data = tlv::encode(DO_CIPHER, &tlv::encode(DO_PUBLIC_KEY, &point));
        let result = match self.private_key_operation(card, commands::pso_decipher(data)) {
            Err(AppError::Card(CardError::Status(StatusWord::WRONG_DATA))) => {
                return Err(AppError::BadCiphertext)
            }
            other => other?,
        };
        // The shared secret is the x-coordinate; some cards answer the
        // whole point 04 || x || y.
        match result.len() {
            len if len == secret_len => Ok(result),
            len if len == 1 + 2 * secret_len && result[0] == 0x04 => {
                Ok(Zeroizing::new(result[1..=secret_len].to_vec()))
            }
            _ => Err(CardError::Malformed("shared secret of the wrong length").into()),
        }
    }
}

#[cfg(test)]
mod tests;
