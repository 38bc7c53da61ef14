//! The PKCS#15 (ISO/IEC 7816-15) engine: a card that describes its own
//! keys, certificates and PINs in directory files.
//!
//! Reading: SELECT of the PKCS#15 application (by AID, or by the profile's
//! path; when the AID selects nothing, the path EF.DIR gives), EF.ODF
//! (`5031`), EF.TokenInfo (`5032`), then the AODF, PrKDF, CDF and DODF the
//! ODF names; each certificate a key has is read as far as its own DER
//! header says. A key's public key comes from its certificate; the PuKDF
//! is read only for a key without one. A data object's value is read when
//! the module first needs it ([`CardApp::read_data_object`]).
//!
//! Certificates that belong to no listed key (a CA's certificate, any in a
//! trusted-certificates CDF) are shown on their own: `authority` from the
//! CDF entry, trusted when the ODF lists their CDF as trusted.
//!
//! PINs: the user PIN (`C_Login`) is the PIN the first key for everyday
//! use names. A key whose `authId` names another PIN (a signature PIN for
//! a non-repudiation key) wants that PIN before every use: its
//! context-specific login verifies that PIN as the AODF describes it, and
//! the card forgets it again after the operation.
//!
//! Using keys (ISO/IEC 7816-8): MSE:SET of a DST (`B6`, signing) or CT
//! (`B8`, deciphering) with the algorithm reference (`80`) and the key
//! (`84` key reference or `81` key file, per profile), then PSO: COMPUTE
//! DIGITAL SIGNATURE or PSO: DECIPHER. What differs between card operating
//! systems is in the profile's `[pkcs15]` table ([`Pkcs15Options`]).

mod application;
mod cache;
mod files;
mod objects;
mod pin;

use super::schema::{KeyAgreement, LogoutCommand, MseKey, Pkcs15Options, SelectApplication};
use super::{
    AppError, CardApp, CardCertificate, CardInfo, DataObjectInfo, KeyInfo, PinStatus, Profile,
    Recall, Record, SignInput,
};
use crate::card::{EngineState, Transaction, Verified};
use crate::cert::{parse_certificate, Curve, PublicKey};
use crate::crypto;
use crate::iso7816::{commands, tlv, CardError, Command, StatusWord};
use crate::pkcs15::{self as p15, DirectoryKind, Path};
use cache::FileMemo;
use files::{Extent, FileReader};
use objects::hex;
use pin::PinFormat;
use std::sync::{Arc, Mutex, MutexGuard};
use zeroize::Zeroizing;

/// EF.ODF in the application DF (ISO/IEC 7816-15 §8.2).
const ODF: [u8; 2] = [0x50, 0x31];
/// EF.TokenInfo in the application DF.
const TOKEN_INFO: [u8; 2] = [0x50, 0x32];
/// Control reference templates of MSE:SET (ISO/IEC 7816-4 §11.5.11).
const DIGITAL_SIGNATURE_TEMPLATE: u8 = 0xB6;
const CONFIDENTIALITY_TEMPLATE: u8 = 0xB8;
const AUTHENTICATION_TEMPLATE: u8 = 0xA4;
/// GENERAL AUTHENTICATE data objects (ISO/IEC 7816-4 §11.5.10): the
/// dynamic authentication template and the peer's public point in it.
const DYNAMIC_AUTHENTICATION: u32 = 0x7C;
const EXPONENTIATION: u32 = 0x85;
/// PSO: DECIPHER padding indicator: no further indication.
const NO_PADDING_INDICATION: u8 = 0x00;

/// A key's public key and its certificate (DER), if the card holds one.
type KeyMaterial = (PublicKey, Option<Vec<u8>>);

/// What the engine learned from the card's files and needs afterwards.
#[derive(Debug, Default)]
struct Learned {
    /// The user PIN (the PIN the first key's `authId` names).
    user_pin: Option<PinFormat>,
    /// The PIN that unblocks it, if the AODF has one.
    unblocking_pin: Option<PinFormat>,
    /// Each key's reference and the path of its key file.
    key_files: Vec<(u8, Vec<u8>)>,
    /// The keys guarded by a PIN other than the user PIN: key reference
    /// and that PIN.
    key_pins: Vec<(u8, PinFormat)>,
    /// Where each data object's value is, in [`CardInfo::data_objects`]'
    /// order.
    data_values: Vec<p15::ObjectValue>,
    /// The application DF's path as EF.DIR gave it, when the profile's AID
    /// did not select the application.
    application_from_dir: Option<Vec<u8>>,
    /// The transaction's SELECT of the application selected EF.ODF (a
    /// profile selecting by path): the first read of the ODF needs no
    /// SELECT of its own. Taken by the next file read, whatever its file.
    odf_selected: bool,
}

/// The PKCS#15 engine for one card.
#[derive(Debug)]
pub struct Pkcs15App {
    profile: Arc<Profile>,
    options: Pkcs15Options,
    application: Vec<u8>,
    learned: Mutex<Learned>,
    /// The files of the last card read, for the disk cache.
    files: Mutex<FileMemo>,
}

impl Pkcs15App {
    /// The engine for a card `profile` matched (a profile of engine
    /// `pkcs15`, whose `[pkcs15]` table build.rs or the loader checked).
    pub fn new(profile: Arc<Profile>) -> Self {
        let options = profile.pkcs15.clone().unwrap_or_else(|| Pkcs15Options {
            application_path: "3F00 5015".into(),
            select: SelectApplication::Aid,
            logout: LogoutCommand::VerifyReset,
            mse_key: MseKey::KeyReference,
            rsa_raw_algorithm: None,
            rsa_pkcs1_algorithm: None,
            rsa_decipher_algorithm: None,
            ecdsa_algorithm: None,
            ecdsa_der: false,
            max_read: 256,
            key_agreement: KeyAgreement::None,
            change_counter: None,
        });
        let application = super::schema::parse_hex(&options.application_path)
            .unwrap_or_else(|_| vec![0x3F, 0x00, 0x50, 0x15]);
        Pkcs15App {
            profile,
            options,
            application,
            learned: Mutex::new(Learned::default()),
            files: Mutex::new(FileMemo::default()),
        }
    }

    fn learned(&self) -> MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn memo(&self) -> MutexGuard<'_, FileMemo> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a card read for the disk cache: reads the profile's change
    /// counter (none: the card is not cached) and takes the card's files
    /// from `recall` while the counter is the one they were read under.
    fn begin_recall(
        &self,
        card: &mut Transaction,
        recall: &dyn Recall,
    ) -> Result<cache::Reading<'_>, AppError> {
        let proof = match &self.options.change_counter {
            Some(counter) if recall.remembers() => cache::read_proof(card, counter)?,
            _ => None,
        };
        let records = proof
            .as_ref()
            .and_then(|proof| recall.recall(&proof.serial));
        self.memo().begin(proof, records);
        Ok(cache::Reading(&self.files))
    }

    /// Ends the card read: the identity the cache keeps the card under
    /// (its serial, when it has a change counter) and whether the read
    /// came from the cache without missing a file (then the entry is not
    /// written again). Keys read from the cache are marked recalled: their
    /// first signature is checked against the card.
    fn end_recall(&self, keys: &mut [KeyInfo]) -> (Option<Vec<u8>>, bool) {
        let mut memo = self.memo();
        let (served, missed) = memo.end();
        if served {
            for key in keys.iter_mut() {
                key.recalled = true;
            }
        }
        (memo.serial().map(<[u8]>::to_vec), served && !missed)
    }

    fn reader(&self) -> FileReader<'_> {
        let selected = std::mem::take(&mut self.learned().odf_selected);
        let application = self.application_path();
        FileReader {
            max_read: self.options.max_read,
            selected: selected.then(|| files::absolute(&application, &ODF)),
            application,
            memo: Some(&self.files),
        }
    }

    /// The user PIN's format: from the AODF, or the profile's rule before
    /// the card was read.
    fn user_pin(&self) -> PinFormat {
        self.learned()
            .user_pin
            .clone()
            .unwrap_or_else(|| PinFormat::from_profile(&self.profile))
    }

    /// Reads a directory file; a file the card keeps from us, or one that
    /// is not there, is empty.
    fn read_directory<T>(
        &self,
        card: &mut Transaction,
        paths: &[&Path],
        parse: fn(&[u8]) -> Result<p15::Directory<T>, p15::Pkcs15Error>,
    ) -> Result<Vec<T>, AppError> {
        let mut objects = Vec::new();
        for path in paths {
            let Some(data) = self.reader().read(card, path, Extent::Objects)? else {
                continue;
            };
            match parse(&data) {
                Ok(directory) => {
                    for (position, error) in &directory.rejected {
                        log::warn!("PKCS#15 object at {position} not usable: {error}");
                    }
                    objects.extend(directory.objects);
                }
                Err(error) => log::warn!("PKCS#15 directory file not usable: {error}"),
            }
        }
        Ok(objects)
    }

    /// MSE:SET for `key` with `algorithm`, then the PSO `command`.
    fn security_operation(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        template: u8,
        algorithm: Option<u8>,
        command: Command,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let mut data = Vec::new();
        if let Some(algorithm) = algorithm {
            data.extend_from_slice(&[0x80, 0x01, algorithm]);
        }
        match self.options.mse_key {
            MseKey::KeyReference => data.extend_from_slice(&[0x84, 0x01, key.reference]),
            MseKey::FileIdentifier => {
                let learned = self.learned();
                let path = learned
                    .key_files
                    .iter()
                    .find(|(reference, _)| *reference == key.reference)
                    .map(|(_, path)| path.clone())
                    .ok_or(AppError::Unsupported("the key's file is not known"))?;
                drop(learned);
                let [.., high, low] = path[..] else {
                    return Err(AppError::Unsupported("the key has no file"));
                };
                // `81` names a file of the current DF: the key's DF, which
                // SELECT of the application made current when it is that.
                let application = self.application_path();
                let directory = files::absolute(&application, &path[..path.len() - 2]);
                if directory != application || self.options.select != SelectApplication::Path {
                    card.transmit_ok(&commands::select_path(&directory))?;
                }
                data.extend_from_slice(&[0x81, 0x02, high, low]);
            }
        }
        let response = card.execute(&commands::mse_set(template, data))?;
        if !response.sw.is_success() {
            return Err(CardError::Status(response.sw).into());
        }
        let response = card.execute(&command)?;
        if key.own_pin {
            // The key's own PIN allows one operation: the card forgets it
            // now, so that no other process can use the key on it.
            if let Err(err) = card.transmit_ok(&self.logout_command(key.pin_reference)) {
                log::debug!("resetting the key's PIN after its use failed: {err}");
            }
        }
        match response.sw {
            StatusWord::SUCCESS => Ok(response.data),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED => Err(AppError::NotAuthenticated),
            other => Err(CardError::Status(other).into()),
        }
    }

    /// The command that drops PIN `reference`'s verified state.
    fn logout_command(&self, reference: u8) -> Command {
        match self.options.logout {
            LogoutCommand::VerifyReset => commands::verify_reset(reference),
            LogoutCommand::Ins2e => Command::new(0x00, 0x2E, 0x00, reference),
        }
    }

    fn verify(
        &self,
        card: &mut Transaction,
        format: &PinFormat,
        pin: &[u8],
    ) -> Result<(), AppError> {
        let data = format.encode(pin)?;
        self.profile
            .pin_command(card, &commands::verify(format.reference, data))
    }
}

impl CardApp for Pkcs15App {
    fn profile(&self) -> &Profile {
        &self.profile
    }

    fn select(&self, card: &mut Transaction) -> Result<(), AppError> {
        let found_in_dir = self.learned().application_from_dir.clone();
        if let Some(path) = found_in_dir {
            card.transmit_ok(&commands::select_path(&path))?;
            return Ok(());
        }
        if self.options.select == SelectApplication::Path {
            // EF.ODF under the application DF: the DF becomes current (ISO/IEC
            // 7816-4 §7.1.1) and the first file a card read wants is
            // selected with it.
            let odf = files::absolute(&self.application, &ODF);
            card.transmit_ok(&commands::select_path(&odf))?;
            self.learned().odf_selected = true;
            return Ok(());
        }
        let response = card.execute(&commands::select_application(&self.profile.aid))?;
        if response.sw.is_success() {
            return Ok(());
        }
        if !super::is_application_absent(response.sw) {
            return Err(CardError::Status(response.sw).into());
        }
        // Not under the AID: EF.DIR may say where the application is (an
        // application DF without a name, or another issuer's AID). A card
        // that has no EF.DIR, or none that helps, has no application here.
        let absent = || AppError::from(CardError::Status(response.sw));
        let path = match self.application_in_dir(card) {
            Ok(Some(path)) => path,
            Ok(None) | Err(AppError::Card(CardError::Status(_))) => return Err(absent()),
            Err(other) => return Err(other),
        };
        match card.execute(&commands::select_path(&path))?.sw {
            StatusWord::SUCCESS => {}
            _ => return Err(absent()),
        }
        log::debug!("PKCS#15 application found through EF.DIR at {}", hex(&path));
        self.learned().application_from_dir = Some(path);
        Ok(())
    }

    fn read_card(&self, card: &mut Transaction, recall: &dyn Recall) -> Result<CardInfo, AppError> {
        // The disk cache: the card's files, while its change counter stands
        // (until `end_recall`, or the guard's end if the read fails).
        let _reading = self.begin_recall(card, recall)?;
        let odf_path = Path {
            efid_or_path: ODF.to_vec(),
            ..Path::default()
        };
        let odf = self.read_directory(card, &[&odf_path], p15::parse_odf)?;
        let token_path = Path {
            efid_or_path: TOKEN_INFO.to_vec(),
            ..Path::default()
        };
        let token_info = match self.reader().read(card, &token_path, Extent::Element)? {
            Some(data) => p15::parse_token_info(&data)
                .map_err(|e| log::warn!("PKCS#15 TokenInfo not usable: {e}"))
                .ok(),
            None => None,
        };
        let paths = |kind: DirectoryKind| -> Vec<&Path> {
            odf.iter()
                .filter(|e| e.kind == kind)
                .map(|e| &e.path)
                .collect()
        };
        let pins =
            self.read_directory(card, &paths(DirectoryKind::AuthObjects), p15::parse_aodf)?;
        let private_keys =
            self.read_directory(card, &paths(DirectoryKind::PrivateKeys), p15::parse_prkdf)?;
        let mut certificate_paths = paths(DirectoryKind::Certificates);
        certificate_paths.extend(paths(DirectoryKind::UsefulCertificates));
        let mut certificates = self.read_directory(card, &certificate_paths, p15::parse_cdf)?;
        let trusted_certificates = self.read_directory(
            card,
            &paths(DirectoryKind::TrustedCertificates),
            p15::parse_cdf,
        )?;
        let untrusted = certificates.len();
        certificates.extend(trusted_certificates);

        let data_objects =
            self.read_directory(card, &paths(DirectoryKind::DataObjects), p15::parse_dodf)?;

        // The user PIN: the one the first key for everyday use names (not
        // a non-repudiation key alone, which may have a PIN of its own),
        // else the first key's, else the first PIN that is neither an
        // unblocking nor an SO PIN.
        let everyday = |k: &&p15::PrivateKey| {
            let usage = &k.key.usage;
            usage.sign || usage.sign_recover || usage.decrypt || usage.unwrap
        };
        let key_auth = private_keys
            .iter()
            .filter(everyday)
            .find_map(|k| k.object.auth_id.clone())
            .or_else(|| private_keys.iter().find_map(|k| k.object.auth_id.clone()));
        let user = pins
            .iter()
            .find(|p| key_auth.is_some() && p.auth_id == key_auth)
            .or_else(|| {
                pins.iter()
                    .find(|p| !p.flags.unblocking_pin && !p.flags.so_pin)
            });
        let unblocking = user.and_then(|user| {
            pins.iter().find(|p| {
                p.flags.unblocking_pin
                    && user.object.auth_id.is_some()
                    && p.auth_id == user.object.auth_id
            })
        });
        {
            let mut learned = self.learned();
            learned.user_pin = user.and_then(PinFormat::from_aodf);
            learned.unblocking_pin = unblocking.and_then(PinFormat::from_aodf);
        }
        let user_auth = user.and_then(|p| p.auth_id.clone());
        let mut keys = self.keys(
            card,
            private_keys,
            &certificates,
            &paths(DirectoryKind::PublicKeys),
            &pins,
            user_auth.as_ref(),
        )?;
        let data_objects = self.data_objects(data_objects);
        let mut other_certificates = Vec::new();
        for (index, certificate) in certificates.iter().enumerate() {
            let for_a_key = !certificate.authority && keys.iter().any(|k| k.id == certificate.id.0);
            if for_a_key {
                continue;
            }
            let der = match &certificate.value {
                p15::ObjectValue::Path(path) => self.reader().read(card, path, Extent::Element)?,
                p15::ObjectValue::Direct(der) => Some(der.clone()),
                p15::ObjectValue::Unsupported => None,
            };
            let Some(der) = der else {
                continue;
            };
            other_certificates.push(CardCertificate {
                id: certificate.id.0.clone(),
                label: certificate
                    .object
                    .label
                    .clone()
                    .unwrap_or_else(|| format!("Certificate {}", hex(&certificate.id.0))),
                der,
                authority: certificate.authority,
                trusted: index >= untrusted,
            });
        }
        // (after the last file read_card reads: the cache records them all)
        let (identity, recalled) = self.end_recall(&mut keys);
        let (label, serial, manufacturer) = match token_info {
            Some(info) => (
                info.label,
                info.serial_number.map(|s| hex(&s)),
                info.manufacturer_id,
            ),
            None => (None, None, None),
        };
        Ok(CardInfo {
            label: label.unwrap_or_else(|| self.profile.description.clone()),
            serial: serial.unwrap_or_default(),
            manufacturer: manufacturer.unwrap_or_else(|| self.profile.manufacturer.clone()),
            model: self.profile.model.clone(),
            keys,
            pin: None,
            signature_counter: None,
            data_objects,
            certificates: other_certificates,
            keys_complete: true,
            key_slots_read: 0,
            identity,
            recalled,
        })
    }

    /// The card's files the last read used, under its change counter.
    fn to_remember(&self, _info: &CardInfo, _state: &EngineState) -> Vec<Record> {
        self.memo().records()
    }

    fn pin_status(&self, card: &mut Transaction) -> Result<PinStatus, AppError> {
        let reference = self.user_pin().reference;
        let response = card.execute(&commands::verify_status(reference))?;
        Ok(match response.sw {
            StatusWord::SUCCESS => PinStatus {
                verified: true,
                ..PinStatus::default()
            },
            StatusWord::AUTH_METHOD_BLOCKED => PinStatus {
                blocked: true,
                tries_left: Some(0),
                ..PinStatus::default()
            },
            sw => {
                let tries_left = self.profile.tries_left(sw);
                PinStatus {
                    tries_left,
                    blocked: tries_left == Some(0),
                    verified: false,
                }
            }
        })
    }

    fn verify_pin(&self, card: &mut Transaction, pin: &[u8]) -> Result<(), AppError> {
        let format = self.user_pin();
        self.verify(card, &format, pin)
    }

    fn verify_pin_for_key(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        pin: &[u8],
    ) -> Result<(), AppError> {
        let own = self
            .learned()
            .key_pins
            .iter()
            .find(|(reference, _)| *reference == key.reference)
            .map(|(_, format)| format.clone());
        let format = own.unwrap_or_else(|| self.user_pin());
        self.verify(card, &format, pin)
    }

    fn read_data_object(&self, card: &mut Transaction, index: usize) -> Result<Vec<u8>, AppError> {
        let value = self.learned().data_values.get(index).cloned();
        let path = match value {
            Some(p15::ObjectValue::Path(path)) => path,
            Some(p15::ObjectValue::Direct(bytes)) => return Ok(bytes),
            _ => return Err(AppError::Unsupported("no such data object")),
        };
        // A file the card keeps from us: the PIN is not verified.
        self.reader()
            .read(card, &path, Extent::Whole)?
            .ok_or(AppError::NotAuthenticated)
    }

    fn logout(&self, card: &mut Transaction) -> Result<(), AppError> {
        let reference = self.user_pin().reference;
        card.transmit_ok(&self.logout_command(reference))?;
        Ok(())
    }

    fn change_pin(&self, card: &mut Transaction, old: &[u8], new: &[u8]) -> Result<(), AppError> {
        let format = self.user_pin();
        let (old, new) = (format.encode(old)?, format.encode(new)?);
        let data = super::joined_secret(&[&old, &new]);
        let command = commands::change_reference_data(format.reference, data);
        self.profile.pin_command(card, &command)
    }

    fn unblock_pin(
        &self,
        card: &mut Transaction,
        unblock_code: &[u8],
        new: &[u8],
    ) -> Result<(), AppError> {
        let format = self.user_pin();
        let puk_format = self.learned().unblocking_pin.clone();
        let puk = match &puk_format {
            Some(puk_format) => puk_format.encode(unblock_code)?,
            None => {
                self.profile.check_puk_length(unblock_code)?;
                Zeroizing::new(unblock_code.to_vec())
            }
        };
        let new = format.encode(new)?;
        let data = super::joined_secret(&[&puk, &new]);
        let command = commands::reset_retry_counter(
            format.reference,
            commands::RetryReset::UnblockCodeAndNewPin,
            data,
        );
        self.profile.pin_command(card, &command)
    }

    fn sign(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        input: SignInput<'_>,
        _proof: &Verified,
    ) -> Result<Vec<u8>, AppError> {
        if !key.can_sign {
            return Err(AppError::Unsupported("this key does not sign"));
        }
        let (algorithm, data) = match (&key.public_key, input) {
            (PublicKey::Rsa { .. }, SignInput::RsaRaw(block)) if !key.card_pads => {
                (self.options.rsa_raw_algorithm, block)
            }
            (PublicKey::Rsa { .. }, SignInput::RsaPkcs1(data)) if key.card_pads => {
                (self.options.rsa_pkcs1_algorithm, data)
            }
            (PublicKey::Ec { curve, .. }, SignInput::Ecdsa(hash)) => {
                if hash.len() != curve.order_len() {
                    return Err(AppError::DataLength);
                }
                (self.options.ecdsa_algorithm, hash)
            }
            _ => return Err(AppError::Unsupported("mechanism does not fit the key")),
        };
        let command = commands::pso_compute_digital_signature(data.to_vec());
        let result =
            self.security_operation(card, key, DIGITAL_SIGNATURE_TEMPLATE, algorithm, command)?;
        match &key.public_key {
            PublicKey::Rsa { modulus, .. } => left_pad(&result, modulus.len()).map(|s| s.to_vec()),
            PublicKey::Ec { curve, .. } => ecdsa_raw(&result, *curve, self.options.ecdsa_der),
            _ => Err(AppError::Unsupported("key type")),
        }
    }

    fn decrypt_raw(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        ciphertext: &[u8],
        _proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let PublicKey::Rsa { modulus, .. } = &key.public_key else {
            return Err(AppError::Unsupported("RSA decryption with a non-RSA key"));
        };
        if !key.can_decrypt {
            return Err(AppError::Unsupported("this key does not decrypt"));
        }
        if ciphertext.len() != modulus.len() {
            return Err(AppError::DataLength);
        }
        let mut data = Vec::with_capacity(ciphertext.len() + 1);
        data.push(NO_PADDING_INDICATION);
        data.extend_from_slice(ciphertext);
        let result = match self.security_operation(
            card,
            key,
            CONFIDENTIALITY_TEMPLATE,
            self.options.rsa_decipher_algorithm,
            commands::pso_decipher(data),
        ) {
            Err(AppError::Card(CardError::Status(StatusWord::WRONG_DATA))) => {
                return Err(AppError::BadCiphertext)
            }
            other => other?,
        };
        left_pad(&result, modulus.len())
    }

    fn derive(
        &self,
        card: &mut Transaction,
        key: &KeyInfo,
        peer_point: &[u8],
        _proof: &Verified,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        // ECDH as the profile's `key_agreement` says.
        let PublicKey::Ec { curve, .. } = &key.public_key else {
            return Err(AppError::Unsupported("ECDH with a non-EC key"));
        };
        if !key.can_derive {
            return Err(AppError::Unsupported("this key does not derive"));
        }
        let data = tlv::encode(
            DYNAMIC_AUTHENTICATION,
            &tlv::encode(EXPONENTIATION, peer_point),
        );
        let command = commands::general_authenticate_even(data);
        let secret = self.security_operation(card, key, AUTHENTICATION_TEMPLATE, None, command)?;
        if secret.len() != curve.field_len() {
            return Err(CardError::Malformed("shared secret of the wrong length").into());
        }
        Ok(secret)
    }
}

/// `value` left-padded with zeros to `len` bytes (a card may drop leading
/// zero bytes of an RSA result); longer is malformed.
fn left_pad(value: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, AppError> {
    if value.len() > len {
        return Err(CardError::Malformed("RSA result longer than the modulus").into());
    }
    let mut padded = Zeroizing::new(vec![0u8; len]);
    padded[len - value.len()..].copy_from_slice(value);
    Ok(padded)
}

/// The card's ECDSA signature as `r || s`.
fn ecdsa_raw(result: &[u8], curve: Curve, der: bool) -> Result<Vec<u8>, AppError> {
    let len = curve.field_len();
    if !der && result.len() == 2 * len {
        return Ok(result.to_vec());
    }
    crypto::ecdsa_der_to_raw(result, len)
        .ok_or_else(|| CardError::Malformed("ECDSA signature of the wrong form").into())
}
