//! Card applications: which card a reader holds (matched by
//! `cardprofiles/*.toml`), and the engines that speak to it.
//!
//! Nothing here sees a PKCS#11 type: the token layer above turns
//! [`CardInfo`] into objects and PKCS#11 requests into [`SignInput`]s.

mod app;
pub mod openpgp;
pub mod piv;
pub mod pkcs15;
pub mod schema;

pub use app::{
    certificate_records, AppError, CardApp, CardCertificate, CardInfo, DataObjectInfo, KeyInfo,
    NoRecall, PinStatus, Recall, Record, RecordKind, SignInput,
};

use crate::card::Transaction;
use crate::iso7816::{CardError, ChannelOptions, Command, Status, StatusWord};
use schema::{parse_hex, ProfileFile, Quirks};
pub use schema::{Engine, KeyRole, OpenPgpRole, PivRole, Pkcs15Role};
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/profiles.rs"));
}

/// An ATR pattern with its mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtrMatch {
    value: Vec<u8>,
    mask: Vec<u8>,
}

impl AtrMatch {
    /// Whether `atr` matches the pattern under the mask.
    pub fn matches(&self, atr: &[u8]) -> bool {
        atr.len() == self.value.len()
            && atr
                .iter()
                .zip(&self.value)
                .zip(&self.mask)
                .all(|((a, v), m)| a & m == v & m)
    }

    /// How many bytes of `atr` differ from the pattern under the mask (a
    /// missing or extra byte counts as one).
    pub fn distance(&self, atr: &[u8]) -> usize {
        let differing = atr
            .iter()
            .zip(&self.value)
            .zip(&self.mask)
            .filter(|((a, v), m)| *a & *m != *v & *m)
            .count();
        differing + atr.len().abs_diff(self.value.len())
    }
}

/// A key slot as the profile describes it.
#[derive(Debug, Clone)]
pub struct KeySlot {
    /// The card's key reference.
    pub reference: u8,
    /// The key's role.
    pub role: KeyRole,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// `CKA_LABEL`.
    pub label: String,
    /// PIV: the data object holding the certificate.
    pub certificate_tag: Option<u32>,
    /// The PIN reference that guards the key.
    pub pin_reference: u8,
    /// PIN needed right before each use (`None`: the engine decides).
    pub always_authenticate: Option<bool>,
    /// No PIN needed.
    pub no_pin: bool,
}

/// A validated card profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Unique name.
    pub name: String,
    /// Human description (also the token model).
    pub description: String,
    /// The engine.
    pub engine: Engine,
    /// Matching order: lower first.
    pub priority: u32,
    /// ATR patterns.
    pub atr: Vec<AtrMatch>,
    /// Whether AID probing may pick this profile for a card whose ATR
    /// matched no pattern.
    pub probe: bool,
    /// AID to select.
    pub aid: Vec<u8>,
    /// Manufacturer for the token info.
    pub manufacturer: String,
    /// Model for the token info.
    pub model: String,
    /// Channel framing (the OpenPGP engine refines it from the card).
    pub channel: ChannelOptions,
    /// Card behaviour that differs from the engine's defaults.
    pub quirks: Quirks,
    /// The user PIN's rules.
    pub pin: schema::PinRule,
    /// Key slots.
    pub keys: Vec<KeySlot>,
    /// PKCS#15 engine: the card operating system's ways.
    pub pkcs15: Option<schema::Pkcs15Options>,
}

impl Profile {
    /// Parses and validates a profile's TOML text.
    pub fn from_toml(text: &str) -> Result<Profile, String> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.validate()?;
        let engine = schema::engine_schema(&file.engine)
            .ok_or_else(|| format!("unknown engine {:?}", file.engine))?
            .engine;
        let roles = file.key_roles()?;
        let atr = file
            .atr
            .iter()
            .map(|pattern| {
                let value = parse_hex(&pattern.value)?;
                let mask = match &pattern.mask {
                    Some(mask) => parse_hex(mask)?,
                    None => vec![0xFF; value.len()],
                };
                Ok(AtrMatch { value, mask })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let keys = file
            .keys
            .iter()
            .zip(roles)
            .map(|(key, role)| {
                Ok(KeySlot {
                    reference: key.reference,
                    role,
                    id: parse_hex(&key.id)?,
                    label: key.label.clone(),
                    certificate_tag: key.certificate_tag,
                    pin_reference: key.pin_reference.unwrap_or(file.pin.reference),
                    always_authenticate: key.always_authenticate,
                    no_pin: key.no_pin,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Profile {
            name: file.name.clone(),
            manufacturer: file
                .manufacturer
                .clone()
                .unwrap_or_else(|| file.description.clone()),
            model: file.model.clone().unwrap_or_else(|| file.name.clone()),
            description: file.description,
            engine,
            priority: file.priority,
            atr,
            probe: file.probe,
            aid: parse_hex(&file.aid)?,
            channel: ChannelOptions {
                extended_length: file.quirks.extended_length,
            },
            quirks: file.quirks,
            pin: file.pin,
            keys,
            pkcs15: file.pkcs15,
        })
    }

    /// Checks a PIN against the profile's length rules (before any APDU).
    pub fn check_pin_length(&self, pin: &[u8]) -> Result<(), AppError> {
        if pin.len() < self.pin.min_length || pin.len() > self.pin.max_length {
            return Err(AppError::PinLength);
        }
        Ok(())
    }

    /// Checks an unblocking code (PUK) against the profile's length rules.
    pub fn check_puk_length(&self, puk: &[u8]) -> Result<(), AppError> {
        let min = self.pin.puk_min_length.unwrap_or(1);
        let max = self.pin.puk_max_length.unwrap_or(usize::MAX);
        if puk.len() < min || puk.len() > max {
            return Err(AppError::PinLength);
        }
        Ok(())
    }

    /// The PIN tries a status word reports: `63CX` (ISO 7816-4 §5.6), or
    /// `630X` on cards with the `tries_as_630x` quirk.
    pub fn tries_left(&self, sw: StatusWord) -> Option<u8> {
        sw.tries_left().or_else(|| {
            (self.quirks.tries_as_630x && sw.0 & 0xFFF0 == 0x6300).then_some(sw.sw2() & 0x0F)
        })
    }

    /// The error for a failed PIN command sent through the reader's PIN
    /// pad: PC/SC part 10 readers answer `6400` (timeout), `6401`
    /// (cancelled) and `6402` (the new PINs differ) themselves, `6403` for
    /// a PIN of a length outside the limits; anything else is the card's.
    pub fn pin_pad_error(&self, sw: StatusWord) -> AppError {
        match sw.0 {
            0x6400..=0x6402 => AppError::PinPadCancelled,
            0x6403 => AppError::PinLength,
            _ => self.pin_error(sw),
        }
    }

    /// The error for a failed PIN command (VERIFY, CHANGE REFERENCE DATA,
    /// RESET RETRY COUNTER).
    pub fn pin_error(&self, sw: StatusWord) -> AppError {
        match sw.meaning() {
            Status::AuthBlocked => AppError::PinLocked,
            meaning => match self.tries_left(sw) {
                Some(0) => AppError::PinLocked,
                Some(tries) => AppError::PinIncorrect(Some(tries)),
                // ISO/IEC 7816-4 §5.6: 6300, the comparison failed without a
                // count (the Nitrokey PIV applet answers a wrong old PIN in
                // CHANGE REFERENCE DATA so).
                None if sw == StatusWord(0x6300) => AppError::PinIncorrect(None),
                None if meaning == Status::WrongData => AppError::PinLength,
                None => CardError::Status(sw).into(),
            },
        }
    }

    /// Sends a PIN command (VERIFY, CHANGE REFERENCE DATA, RESET RETRY
    /// COUNTER) and turns a failure into its PIN error.
    pub fn pin_command(&self, card: &mut Transaction, command: &Command) -> Result<(), AppError> {
        let response = card.execute(command)?;
        if response.sw.is_success() {
            Ok(())
        } else {
            Err(self.pin_error(response.sw))
        }
    }

    /// The engine for a card this profile matched: the constructor column
    /// of the engine table ([`schema::ENGINES`]).
    fn open_engine(self: &Arc<Self>, atr: &[u8]) -> Box<dyn CardApp> {
        match self.engine {
            Engine::Piv => Box::new(piv::PivApp::new(Arc::clone(self))),
            Engine::OpenPgp => Box::new(openpgp::OpenPgpApp::new(Arc::clone(self), atr)),
            Engine::Pkcs15 => Box::new(pkcs15::Pkcs15App::new(Arc::clone(self))),
        }
    }
}

/// The profiles a module matches cards against, in matching order.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    profiles: Vec<Arc<Profile>>,
}

impl ProfileSet {
    /// The profiles built into the library.
    pub fn embedded() -> ProfileSet {
        let profiles = embedded::EMBEDDED
            .iter()
            // build.rs validated these; a failure here would be a build bug.
            .filter_map(|(_, text)| Profile::from_toml(text).ok())
            .map(Arc::new)
            .collect();
        let mut set = ProfileSet { profiles };
        set.sort();
        set
    }

    /// A set of exactly these profiles (tests, tools).
    pub fn from_profiles(profiles: Vec<Profile>) -> ProfileSet {
        let mut set = ProfileSet {
            profiles: profiles.into_iter().map(Arc::new).collect(),
        };
        set.sort();
        set
    }

    fn sort(&mut self) {
        self.profiles.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
    }

    /// Adds the `*.toml` profiles of `dir`; a profile with the name of an
    /// existing one replaces it. Returns the files that were not valid.
    pub fn add_dir(&mut self, dir: &Path) -> Vec<(String, String)> {
        self.add_dir_with(dir, &|path| {
            std::fs::read_to_string(path).map_err(|err| err.to_string())
        })
    }

    /// [`ProfileSet::add_dir`], reading each file with `read` (which may
    /// refuse it, e.g. for its owner).
    pub fn add_dir_with(
        &mut self,
        dir: &Path,
        read: &dyn Fn(&Path) -> Result<String, String>,
    ) -> Vec<(String, String)> {
        let mut rejected = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            rejected.push((dir.display().to_string(), "cannot read directory".into()));
            return rejected;
        };
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.extension().is_none_or(|ext| ext != "toml") {
                continue;
            }
            let parsed = read(&path).and_then(|text| Profile::from_toml(&text));
            match parsed {
                Ok(profile) => {
                    self.profiles.retain(|p| p.name != profile.name);
                    self.profiles.push(Arc::new(profile));
                }
                Err(message) => rejected.push((path.display().to_string(), message)),
            }
        }
        self.sort();
        rejected
    }

    /// Keeps only the profiles `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&Profile) -> bool) {
        self.profiles.retain(|p| keep(p));
    }

    /// The profiles in matching order.
    pub fn profiles(&self) -> &[Arc<Profile>] {
        &self.profiles
    }

    /// The profiles to try for a card with this ATR, in order: first those
    /// with a matching ATR pattern (by priority), then those that allow
    /// AID probing (by priority). A profile whose AID an earlier one
    /// already selected is left out.
    pub fn candidates(&self, atr: &[u8]) -> Vec<&Arc<Profile>> {
        let matches_atr = |p: &&Arc<Profile>| p.atr.iter().any(|pattern| pattern.matches(atr));
        let by_atr = self.profiles.iter().filter(matches_atr);
        let by_probe = self.profiles.iter().filter(|p| p.probe && !matches_atr(p));
        let mut chosen: Vec<&Arc<Profile>> = Vec::new();
        for profile in by_atr.chain(by_probe) {
            if !chosen.iter().any(|p| p.aid == profile.aid) {
                chosen.push(profile);
            }
        }
        chosen
    }

    /// For a card no profile fits: the profile whose ATR pattern comes
    /// closest to `atr`, and how many bytes differ (ties: the first
    /// profile in the set's order).
    pub fn closest_by_atr(&self, atr: &[u8]) -> Option<(&str, usize)> {
        self.profiles()
            .iter()
            .flat_map(|profile| {
                profile
                    .atr
                    .iter()
                    .map(move |pattern| (profile.name.as_str(), pattern.distance(atr)))
            })
            .min_by_key(|(_, distance)| *distance)
    }

    /// Finds the application on a card, in the order of [`candidates`]:
    /// profiles whose ATR pattern matches first (no APDU is spent on any
    /// other application of a card its ATR identifies), then AID probing.
    /// Each candidate costs one SELECT; the application found is left
    /// selected. `Ok(None)` means no profile fits the card.
    ///
    /// [`candidates`]: ProfileSet::candidates
    pub fn identify(
        &self,
        atr: &[u8],
        link: &mut dyn crate::transport::Transmit,
    ) -> Result<Option<Box<dyn CardApp>>, AppError> {
        for profile in self.candidates(atr) {
            let app = profile.open_engine(atr);
            let mut card = Transaction::new(link, profile.channel);
            match app.select(&mut card) {
                Ok(()) => return Ok(Some(app)),
                // Only a definite "no such application" moves on; any other
                // answer is a card problem, not an unknown card.
                Err(AppError::Card(CardError::Status(sw))) if is_application_absent(sw) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(None)
    }
}

/// Status words with which a card says it has no application with this AID
/// (ISO/IEC 7816-4 §5.6: file not found, function or instruction or class
/// not supported, wrong parameters for SELECT by name).
pub(crate) fn is_application_absent(sw: StatusWord) -> bool {
    /// `6999`: applet selection failed (Java Card).
    const APPLET_SELECT_FAILED: StatusWord = StatusWord(0x6999);
    sw.is_unsupported_command()
        || matches!(
            sw,
            StatusWord::NOT_FOUND
                | StatusWord::WRONG_P1P2
                | StatusWord::LC_INCONSISTENT_WITH_P1P2
                | APPLET_SELECT_FAILED
        )
}

/// The secrets in `parts` one after the other (old PIN || new PIN), in a
/// buffer sized first: one that grows leaves its old copy unwiped.
fn joined_secret(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut joined = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for part in parts {
        joined.extend_from_slice(part);
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Transmit, TransportError};

    fn profile(set: &ProfileSet, name: &str) -> Arc<Profile> {
        Arc::clone(
            set.profiles()
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("no profile {name}")),
        )
    }

    fn hex(text: &str) -> Vec<u8> {
        parse_hex(text).unwrap()
    }

    #[test]
    fn embedded_profiles_load() {
        let set = ProfileSet::embedded();
        let names: Vec<&str> = set.profiles().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "myeid",
                "yubikey-neo-piv",
                "yubikey-piv",
                "yubikey-openpgp",
                "nitrokey3-openpgp",
                "piv",
                "openpgp",
                "pkcs15"
            ]
        );
        let piv = profile(&set, "piv");
        assert_eq!(piv.engine, Engine::Piv);
        assert_eq!(piv.aid, [0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0]);
        assert_eq!(piv.keys.len(), 4);
        assert_eq!(piv.keys[0].id, [1]);
        assert_eq!(piv.keys[1].always_authenticate, Some(true));
        assert_eq!(piv.keys[0].certificate_tag, Some(0x5FC105));
        let openpgp = profile(&set, "openpgp");
        assert_eq!(openpgp.engine, Engine::OpenPgp);
        assert_eq!(openpgp.aid, [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01]);
        let references: Vec<(u8, u8)> = openpgp
            .keys
            .iter()
            .map(|k| (k.reference, k.pin_reference))
            .collect();
        assert_eq!(references, [(0xB6, 0x81), (0xB8, 0x82), (0xA4, 0x82)]);
        assert!(openpgp.keys.iter().all(|k| k.certificate_tag.is_none()));
        assert!(profile(&set, "yubikey-neo-piv").quirks.tries_as_630x);
        assert!(profile(&set, "nitrokey3-openpgp").quirks.extended_length);
        assert!(!profile(&set, "yubikey-piv").probe);
    }

    #[test]
    fn atr_masks_match() {
        let pattern = AtrMatch {
            value: vec![0x3B, 0xF8, 0x13],
            mask: vec![0xFF, 0xF0, 0xFF],
        };
        assert!(pattern.matches(&[0x3B, 0xFA, 0x13]));
        assert!(!pattern.matches(&[0x3B, 0xE8, 0x13]));
        assert!(!pattern.matches(&[0x3B, 0xF8]));
        assert_eq!(pattern.distance(&[0x3B, 0xFA, 0x13]), 0);
        assert_eq!(pattern.distance(&[0x3B, 0xE8, 0x14]), 2);
        assert_eq!(pattern.distance(&[0x3B, 0xF8]), 1);
    }

    #[test]
    fn pin_pad_answers_of_the_reader_are_told_apart_from_the_cards() {
        let set = ProfileSet::embedded();
        let piv = profile(&set, "piv");
        for sw in [0x6400, 0x6401, 0x6402] {
            assert!(matches!(
                piv.pin_pad_error(StatusWord(sw)),
                AppError::PinPadCancelled
            ));
        }
        assert!(matches!(
            piv.pin_pad_error(StatusWord(0x6403)),
            AppError::PinLength
        ));
        assert!(matches!(
            piv.pin_pad_error(StatusWord(0x63C2)),
            AppError::PinIncorrect(Some(2))
        ));
        // Not through a PIN pad, 6401 is the card's own error.
        assert!(!matches!(
            piv.pin_error(StatusWord(0x6401)),
            AppError::PinPadCancelled
        ));
    }

    #[test]
    fn the_closest_profile_of_an_unknown_atr_is_the_nearest_pattern() {
        let set = ProfileSet::embedded();
        // A YubiKey 4/5 ATR with one byte changed.
        let atr = hex("3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 35 D4");
        assert_eq!(set.closest_by_atr(&atr), Some(("yubikey-piv", 1)));
    }

    #[test]
    fn invalid_profiles_are_rejected_with_a_reason() {
        let base = include_str!("../../cardprofiles/piv.toml");
        let bad_engine = base.replace("engine = \"piv\"", "engine = \"nope\"");
        assert!(Profile::from_toml(&bad_engine)
            .unwrap_err()
            .contains("engine"));
        let bad_aid = base.replace("aid = \"A0 00", "aid = \"Z0 00");
        assert!(Profile::from_toml(&bad_aid).unwrap_err().contains("aid"));
        let unknown_field = format!("{base}\nsurprise = 1\n");
        assert!(Profile::from_toml(&unknown_field).is_err());
        let bad_pin = base.replace("min_length = 6", "min_length = 9");
        assert!(Profile::from_toml(&bad_pin).unwrap_err().contains("pin"));
        let no_tag = base.replace("certificate_tag = 0x5FC105\n", "");
        assert!(Profile::from_toml(&no_tag)
            .unwrap_err()
            .contains("certificate_tag"));
        let unknown_quirk = base.replace("[quirks]", "[quirks]\nmagic = true");
        assert!(Profile::from_toml(&unknown_quirk).is_err());
        let both = base.replace(
            "extended_length = true",
            "extended_length = true\nshort_apdus_only = true",
        );
        assert!(Profile::from_toml(&both).unwrap_err().contains("quirks"));
        let no_atr = base.replace("priority = 1000", "priority = 1000\nprobe = false");
        assert!(Profile::from_toml(&no_atr).unwrap_err().contains("probe"));

        let pgp = include_str!("../../cardprofiles/openpgp.toml");
        let with_tag = pgp.replace(
            "label = \"Signature key\"",
            "label = \"Signature key\"\ncertificate_tag = 0x5FC105",
        );
        assert!(Profile::from_toml(&with_tag)
            .unwrap_err()
            .contains("PIV-only"));
        let wrong_reference = pgp.replace("reference = 0xB6", "reference = 0x9C");
        assert!(Profile::from_toml(&wrong_reference)
            .unwrap_err()
            .contains("0xB6"));
        let piv_role = pgp.replace("role = \"decryption\"", "role = \"key-management\"");
        assert!(Profile::from_toml(&piv_role).unwrap_err().contains("role"));
        let padded = pgp.replace("reference = 0x82\n", "reference = 0x82\npad_byte = 0xFF\n");
        assert!(Profile::from_toml(&padded).unwrap_err().contains("padded"));
        let masked = pgp.replace(
            "value = \"3B FA 13",
            "mask = \"00 FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF\"\nvalue = \"3B FA 13",
        );
        assert!(Profile::from_toml(&masked).unwrap_err().contains("mask"));
    }

    #[test]
    fn key_roles_are_typed_by_the_engine() {
        let set = ProfileSet::embedded();
        let roles: Vec<KeyRole> = profile(&set, "piv").keys.iter().map(|k| k.role).collect();
        assert_eq!(
            roles,
            [
                PivRole::Authentication.into(),
                PivRole::Signature.into(),
                PivRole::KeyManagement.into(),
                PivRole::CardAuthentication.into()
            ]
        );
        let base = include_str!("../../cardprofiles/piv.toml");
        // A retired key's role is the engine's to give, not a profile's.
        let retired = base.replace(
            "role = \"card-authentication\"",
            "role = \"retired-key-management\"",
        );
        let message = Profile::from_toml(&retired).unwrap_err();
        assert!(message.contains("role"), "{message}");
        assert!(message.contains("card-authentication"), "{message}");
        assert!(!PivRole::Authentication.establishes_keys());
        assert!(PivRole::RetiredKeyManagement.establishes_keys());
        let names: Vec<&str> = schema::ENGINES.iter().map(|e| e.name).collect();
        assert_eq!(names, ["piv", "openpgp", "pkcs15"]);
    }

    #[test]
    fn pin_length_is_checked() {
        let set = ProfileSet::embedded();
        let piv = profile(&set, "piv");
        assert_eq!(piv.check_pin_length(b"12345"), Err(AppError::PinLength));
        assert_eq!(piv.check_pin_length(b"123456789"), Err(AppError::PinLength));
        assert_eq!(piv.check_pin_length(b"123456"), Ok(()));
        let openpgp = profile(&set, "openpgp");
        assert_eq!(openpgp.check_pin_length(&[b'1'; 127]), Ok(()));
        assert_eq!(
            openpgp.check_puk_length(b"1234567"),
            Err(AppError::PinLength)
        );
    }

    #[test]
    fn matching_tries_atr_matches_first_then_probes_in_priority_order() {
        let set = ProfileSet::embedded();
        let names = |atr: &str| -> Vec<String> {
            set.candidates(&hex(atr))
                .iter()
                .map(|p| p.name.clone())
                .collect()
        };
        // A YubiKey 5: its PIV application, then its OpenPGP application;
        // the generic profiles share those AIDs and add nothing.
        assert_eq!(
            names("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40"),
            ["yubikey-piv", "yubikey-openpgp", "pkcs15"]
        );
        // An OpenPGP card v3 (../virtpgp's ATR): OpenPGP first.
        assert_eq!(
            names("3B DA 18 FF 81 B1 FE 75 1F 03 00 31 F5 73 C0 01 60 00 90 00 1C"),
            ["openpgp", "piv", "pkcs15"]
        );
        assert_eq!(
            names("3B 8F 01 80 5D 4E 69 74 72 6F 6B 65 79 00 00 00 00 00 6A"),
            ["nitrokey3-openpgp", "piv", "pkcs15"]
        );
        // Unknown: generic PIV, then generic OpenPGP, then PKCS#15.
        assert_eq!(
            names("3B 95 13 81 01 80 73 FF 01 00 0B"),
            ["piv", "openpgp", "pkcs15"]
        );
        // A MyEID card: its own profile first.
        assert_eq!(
            names("3B F5 18 00 00 81 31 FE 45 4D 79 45 49 44 9A"),
            ["myeid", "piv", "openpgp"]
        );
    }

    /// Answers SELECT of one AID with 9000, any other with 6A82; counts.
    struct OneApplication {
        aid: Vec<u8>,
        selects: Vec<Vec<u8>>,
    }

    impl Transmit for OneApplication {
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
            assert_eq!(command[1], 0xA4, "only SELECTs during identification");
            let aid = command[5..5 + usize::from(command[4])].to_vec();
            self.selects.push(aid.clone());
            Ok(if aid == self.aid {
                vec![0x90, 0x00]
            } else {
                vec![0x6A, 0x82]
            })
        }
    }

    #[test]
    fn identification_spends_one_select_on_a_card_its_atr_names() {
        let set = ProfileSet::embedded();
        let openpgp_aid = hex("D2 76 00 01 24 01");
        let mut card = OneApplication {
            aid: openpgp_aid.clone(),
            selects: Vec::new(),
        };
        let atr = hex("3B DA 18 FF 81 B1 FE 75 1F 03 00 31 F5 73 C0 01 60 00 90 00 1C");
        let app = set.identify(&atr, &mut card).unwrap().unwrap();
        assert_eq!(app.profile().name, "openpgp");
        assert_eq!(card.selects, vec![openpgp_aid]);

        // An OpenPGP card with an unknown ATR: probed after PIV.
        card.selects.clear();
        let app = set
            .identify(&hex("3B 95 13 81 01 80 73 FF 01 00 0B"), &mut card)
            .unwrap()
            .unwrap();
        assert_eq!(app.profile().name, "openpgp");
        assert_eq!(card.selects.len(), 2);

        // A card with neither application: no profile, no error; the
        // three AIDs, then EF.DIR (where a PKCS#15 application may be
        // listed under another name).
        let mut nothing = OneApplication {
            aid: vec![1, 2, 3, 4, 5],
            selects: Vec::new(),
        };
        assert!(set.identify(&atr, &mut nothing).unwrap().is_none());
        assert_eq!(nothing.selects.len(), 4);
        assert_eq!(nothing.selects[3], [0x2F, 0x00]);
    }

    #[test]
    fn profiles_from_a_directory_replace_or_add_and_bad_ones_are_reported() {
        let dir = std::env::temp_dir().join(format!("p11card-profiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let renamed = include_str!("../../cardprofiles/openpgp.toml")
            .replace("name = \"openpgp\"", "name = \"my-card\"")
            .replace("priority = 1100", "priority = 5");
        std::fs::write(dir.join("my-card.toml"), renamed).unwrap();
        std::fs::write(dir.join("broken.toml"), "name = \"broken\"").unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let mut set = ProfileSet::embedded();
        let rejected = set.add_dir(&dir);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(rejected.len(), 1);
        assert!(rejected[0].0.ends_with("broken.toml"));
        assert_eq!(set.profiles()[0].name, "my-card");
        assert_eq!(set.profiles().len(), 9);
    }
}
