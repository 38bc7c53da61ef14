//! A simulated Aventra MyEID card (the MyEID PKI JavaCard applet, as its
//! reference manual describes it, version 4.5), so that OpenSC's `myeid`
//! driver and `pkcs15-init` can personalise it: the ISO/IEC 7816-4 file
//! system with MyEID's access conditions, PIN objects 1..=14, on-card RSA
//! and EC key generation, and ISO/IEC 7816-8 security operations.
//!
//! Commands (manual chapter "Commands"; INS):
//! SELECT `A4` (by FID, path from MF or current DF, DF name), READ BINARY
//! `B0`, UPDATE BINARY `D6`, CREATE FILE `E0`, DELETE FILE `E4` (CLA `00`
//! or `A0`), VERIFY `20`, CHANGE REFERENCE DATA `24`, RESET RETRY COUNTER
//! `2C`, LOGOUT `2E`, MSE:SET `22` (DST `41 B6`, CT `41 B8`, AT `41 A4`),
//! PSO `2A` (COMPUTE DIGITAL SIGNATURE `9E 9A`, DECIPHER `80 86` with padding
//! indicator `00` or halves `81`/`82`), GENERAL AUTHENTICATE `86` (ECDH),
//! GENERATE KEY PAIR `46`, GET DATA `CA` (`01 A0` applet info, `01 AA`
//! capabilities, `01 A1` file list, `01 01`/`01 02` RSA modulus/exponent,
//! `01 86` EC point), PUT DATA `DA` (`01 E0` initialise applet, `01 01..0E`
//! PIN object), ACTIVATE APPLET `44`, GET CHALLENGE `84`; GET RESPONSE and
//! command chaining come from [`Frame`].
//!
//! Life cycle: the card starts in the creation state (access conditions
//! not enforced, as on the real card before activation); ACTIVATE APPLET
//! makes every access condition count.

use rand_core::{OsRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;

use crate::apdu::{put_tlv, read_all, sw, Command};
use crate::frame::{Applet, Frame, INS_SELECT};
use crate::keys::{PrivateKey, SimPublicKey};
use crate::log::LoggedApdu;
use crate::misbehave::Misbehaviour;

mod crypto;
mod fs;
mod image;
mod pin;
#[cfg(test)]
mod tests;

use fs::{FilePath, FileSystem, Node, Op, DESC_EC, DESC_RSA, MF};
use pin::{PinRecord, MAX_PIN_REF};

/// The MyEID applet's AID (the PKCS#15 application identifier).
pub const MYEID_AID: [u8; 12] = [
    0xA0, 0x00, 0x00, 0x00, 0x63, 0x50, 0x4B, 0x43, 0x53, 0x2D, 0x31, 0x35,
];

/// The default ATR: T=1, historical bytes "MyEID" (what OpenSC's `myeid`
/// driver matches on).
pub const MYEID_ATR: [u8; 15] = [
    0x3B, 0xF5, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x4D, 0x79, 0x45, 0x49, 0x44, 0x9A,
];

/// The applet version the card reports (4.5.5: command chaining).
pub const MYEID_VERSION: [u8; 3] = [4, 5, 5];

/// The PKCS#15 application DF that INITIALISE APPLET creates.
const APP_DF: u16 = 0x5015;
const CLA_PROPRIETARY: u8 = 0xA0;
const SW_NOT_ALLOWED: u16 = 0x6986;
const SW_INCOMPATIBLE_FILE: u16 = 0x6981;
const SW_WRONG_OFFSET: u16 = 0x6B00;
const SW_FUNCTION_NOT_SUPPORTED: u16 = 0x6A81;

/// What MSE:SET prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SecurityEnv {
    /// P2 of MSE:SET: `B6` signature, `B8` decipher, `A4` key agreement.
    template: u8,
    /// Algorithm reference (tag `80`).
    algorithm: Option<u8>,
    /// The key EF (tag `81`), below the DF current at MSE time.
    key: Option<FilePath>,
}

/// A simulated MyEID card (see the module documentation).
///
/// [`SimMyEidCard::new`] is a factory card: MF only, creation state, no
/// PINs. [`SimMyEidCard::from_image`] loads one saved by
/// [`SimMyEidCard::to_image`] (e.g. after `pkcs15-init` personalised it).
#[derive(Debug, Clone)]
pub struct SimMyEidCard {
    fs: FileSystem,
    cur_df: FilePath,
    cur_ef: Option<FilePath>,
    pins: [Option<PinRecord>; MAX_PIN_REF as usize + 1],
    verified: [bool; MAX_PIN_REF as usize + 1],
    activated: bool,
    serial: [u8; 10],
    change_counter: u16,
    env: Option<SecurityEnv>,
    /// The first half of a two-part DECIPHER (padding indicator `81`).
    first_half: Option<Vec<u8>>,
    /// Set by every change of the card's persistent state.
    changed: bool,
    frame: Frame,
    /// The answer-to-reset (MyEID's unless a test gives another).
    atr: Vec<u8>,
}

impl Default for SimMyEidCard {
    fn default() -> Self {
        Self::new()
    }
}

impl SimMyEidCard {
    /// A factory card: MF `3F00` (no access restrictions), no PINs, creation
    /// state, serial `00 00 00 00 00 12 34 56 78 90`. Its change counter
    /// starts anywhere, as a real card's has counted its life so far: two
    /// factory cards personalised alike (same serial, same writes) do not
    /// end with the same counter, which would make a disk cache take one
    /// for the other.
    pub fn new() -> Self {
        let mut frame = Frame::default();
        frame.proprietary_cla = Some(CLA_PROPRIETARY);
        let mut counter = [0u8; 2];
        OsRng.fill_bytes(&mut counter);
        SimMyEidCard {
            fs: FileSystem::with_mf([0x00, 0x0F, 0xFF]),
            cur_df: vec![MF],
            cur_ef: None,
            pins: Default::default(),
            verified: [false; MAX_PIN_REF as usize + 1],
            activated: false,
            serial: [0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x90],
            change_counter: u16::from_be_bytes(counter),
            env: None,
            first_half: None,
            changed: false,
            frame,
            atr: MYEID_ATR.to_vec(),
        }
    }

    /// Sets the answer-to-reset: the same card as one no profile names by
    /// its ATR.
    pub fn with_atr(mut self, atr: impl Into<Vec<u8>>) -> Self {
        self.atr = atr.into();
        self
    }

    /// Processes one raw command APDU; returns data + SW1 SW2.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.process_apdu(apdu)
    }

    /// Power-on or reset: MF selected, no PIN verified, no security
    /// environment (files, keys, PINs and counters stay).
    pub fn power_on(&mut self) {
        self.cur_df = vec![MF];
        self.cur_ef = None;
        self.verified = [false; MAX_PIN_REF as usize + 1];
        self.env = None;
        self.first_half = None;
        self.frame.reset();
    }

    /// The answer-to-reset.
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }

    /// Whether ACTIVATE APPLET has run (access conditions enforced).
    pub fn activated(&self) -> bool {
        self.activated
    }

    /// Whether PIN `reference` is verified.
    pub fn pin_verified(&self, reference: u8) -> bool {
        self.verified
            .get(usize::from(reference))
            .copied()
            .unwrap_or(false)
    }

    /// Tries left for PIN `reference`, if it exists.
    pub fn pin_tries_left(&self, reference: u8) -> Option<u8> {
        self.pin(reference).map(|p| p.pin_tries)
    }

    /// The public keys of the key EFs that hold a key, by full path (hex FIDs
    /// joined, e.g. `3F0050154B01`).
    pub fn public_keys(&self) -> Vec<(String, SimPublicKey)> {
        self.fs
            .iter()
            .filter_map(|(path, node)| {
                let key = node.key.as_ref()?;
                Some((
                    path.iter().map(|f| format!("{f:04X}")).collect(),
                    key.public(),
                ))
            })
            .collect()
    }

    /// True once if the persistent state (files, keys, PINs, life cycle)
    /// changed since the last call: time to save the image.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The misbehaviour switches.
    pub fn misbehaviour_mut(&mut self) -> &mut Misbehaviour {
        &mut self.frame.misbehaviour
    }

    /// Every APDU processed (PINs redacted).
    pub fn log(&self) -> &[LoggedApdu] {
        &self.frame.log
    }

    /// The number of APDUs processed.
    pub fn apdu_count(&self) -> usize {
        self.frame.log.len()
    }

    /// Empties the log.
    pub fn clear_log(&mut self) {
        self.frame.log.clear();
    }

    /// The log as text, one exchange per line.
    pub fn transcript(&self) -> String {
        self.frame.log.iter().map(|e| format!("{e}\n")).collect()
    }

    fn pin(&self, reference: u8) -> Option<&PinRecord> {
        self.pins.get(usize::from(reference))?.as_ref()
    }

    fn touch(&mut self) {
        self.change_counter = self.change_counter.wrapping_add(1);
        self.changed = true;
    }

    fn life_cycle(&self) -> u8 {
        if self.activated {
            0x05
        } else {
            0x01
        }
    }

    /// Checks one access-condition nibble (only once activated).
    fn check_condition(&self, condition: u8) -> Result<(), u16> {
        if !self.activated {
            return Ok(());
        }
        match condition {
            0 => Ok(()),
            0xF => Err(SW_NOT_ALLOWED),
            r if self.pin_verified(r) => Ok(()),
            _ => Err(sw::SECURITY_STATUS),
        }
    }

    fn check(&self, path: &[u16], op: Op) -> Result<(), u16> {
        let node = self.fs.get(path).ok_or(sw::NOT_FOUND)?;
        self.check_condition(node.condition(op))
    }

    /// The selected file: the current EF, else the current DF.
    fn selected_path(&self) -> FilePath {
        self.cur_ef.clone().unwrap_or_else(|| self.cur_df.clone())
    }

    fn selected_key_ef(&self) -> Result<FilePath, u16> {
        let path = self.cur_ef.clone().ok_or(SW_INCOMPATIBLE_FILE)?;
        match self.fs.get(&path) {
            Some(node) if node.is_key() => Ok(path),
            _ => Err(SW_INCOMPATIBLE_FILE),
        }
    }

    // -----------------------------------------------------------------------
    // File commands
    // -----------------------------------------------------------------------

    fn parent_of(path: &[u16]) -> FilePath {
        path.split_last().map_or_else(
            || vec![MF],
            |(_, p)| if p.is_empty() { vec![MF] } else { p.to_vec() },
        )
    }

    fn fids(data: &[u8]) -> Result<Vec<u16>, u16> {
        if data.len() % 2 != 0 {
            return Err(sw::WRONG_LENGTH);
        }
        Ok(data
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect())
    }

    fn resolve(&self, cmd: &Command) -> Result<Option<FilePath>, u16> {
        let found = match cmd.p1 {
            0x00 => match Self::fids(&cmd.data)?.as_slice() {
                [] | [MF] => Some(vec![MF]),
                [fid] => {
                    let parent = Self::parent_of(&self.cur_df);
                    [self.cur_df.clone(), parent.clone()]
                        .iter()
                        .find_map(|df| self.fs.walk(df, &[*fid]))
                        .or_else(|| (self.cur_df.last() == Some(fid)).then(|| self.cur_df.clone()))
                        .or_else(|| (parent.last() == Some(fid)).then_some(parent))
                }
                _ => return Err(sw::WRONG_LENGTH),
            },
            0x03 => Some(Self::parent_of(&self.cur_df)),
            0x04 => {
                if let Some(path) = self.fs.find_df_name(&cmd.data) {
                    Some(path)
                } else if MYEID_AID.starts_with(&cmd.data) && !cmd.data.is_empty() {
                    return Ok(None);
                } else {
                    None
                }
            }
            0x08 | 0x09 => {
                let fids = Self::fids(&cmd.data)?;
                match (cmd.p1, fids.split_first()) {
                    (_, None) => return Err(sw::WRONG_LENGTH),
                    (_, Some((&MF, rest))) => self.fs.walk(&[MF], rest),
                    (0x08, _) => self.fs.walk(&[MF], &fids),
                    (_, Some((first, rest))) if self.cur_df.last() == Some(first) => {
                        self.fs.walk(&self.cur_df, rest)
                    }
                    _ => self.fs.walk(&self.cur_df, &fids),
                }
            }
            _ => return Err(sw::WRONG_P1P2),
        };
        found.map(Some).ok_or(sw::NOT_FOUND)
    }

    fn select(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if !matches!(cmd.p2 & !0x03, 0x00 | 0x04 | 0x0C) {
            return Err(sw::WRONG_P1P2);
        }
        let Some(path) = self.resolve(cmd)? else {
            // The applet itself (its AID, not a DF's name): the MF.
            self.cur_df = vec![MF];
            self.cur_ef = None;
            return Ok(Vec::new());
        };
        let node = self.fs.get(&path).ok_or(sw::NOT_FOUND)?;
        let fcp = node.fcp(*path.last().unwrap_or(&MF), self.life_cycle());
        if node.is_df() {
            self.cur_df = path;
            self.cur_ef = None;
        } else {
            self.cur_df = Self::parent_of(&path);
            self.cur_ef = Some(path);
        }
        Ok(if cmd.p2 & 0x0C == 0x0C {
            Vec::new()
        } else {
            fcp
        })
    }

    fn binary_target(&self, cmd: &Command, op: Op) -> Result<(FilePath, usize), u16> {
        if cmd.p1 & 0x80 != 0 {
            return Err(SW_FUNCTION_NOT_SUPPORTED);
        }
        let path = self.cur_ef.clone().ok_or(SW_INCOMPATIBLE_FILE)?;
        let node = self.fs.get(&path).ok_or(sw::NOT_FOUND)?;
        if node.is_key() || node.is_df() {
            return Err(SW_INCOMPATIBLE_FILE);
        }
        self.check_condition(node.condition(op))?;
        Ok((path, usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]))))
    }

    fn read_binary(&self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let (path, offset) = self.binary_target(cmd, Op::ReadOrUse)?;
        let data = &self.fs.get(&path).ok_or(sw::NOT_FOUND)?.data;
        if offset >= data.len() {
            return Err(SW_WRONG_OFFSET);
        }
        let end = data.len().min(offset + cmd.ne.unwrap_or(256));
        Ok(data[offset..end].to_vec())
    }

    fn update_binary(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let (path, offset) = self.binary_target(cmd, Op::UpdateOrCreate)?;
        let node = self.fs.get_mut(&path).ok_or(sw::NOT_FOUND)?;
        let end = offset + cmd.data.len();
        if cmd.data.is_empty() || end > node.data.len() {
            return Err(sw::WRONG_LENGTH);
        }
        node.data[offset..end].copy_from_slice(&cmd.data);
        self.touch();
        Ok(Vec::new())
    }

    fn create_file(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let (fid, node) = Node::from_fcp(&cmd.data)?;
        let op = if node.is_df() {
            Op::ReadOrUse
        } else {
            Op::UpdateOrCreate
        };
        self.check(&self.cur_df, op)?;
        let parent = self.cur_df.clone();
        let is_df = node.is_df();
        let path = self.fs.create(&parent, fid, node)?;
        if is_df {
            self.cur_df = path;
            self.cur_ef = None;
        } else {
            self.cur_ef = Some(path);
        }
        self.touch();
        Ok(Vec::new())
    }

    fn delete_file(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let path = match Self::fids(&cmd.data)?.as_slice() {
            [] => self.selected_path(),
            [fid] => self.fs.walk(&self.cur_df, &[*fid]).ok_or(sw::NOT_FOUND)?,
            _ => return Err(sw::WRONG_LENGTH),
        };
        if path == [MF] {
            return Err(SW_NOT_ALLOWED);
        }
        self.check(&path, Op::Delete)?;
        self.fs.delete(&path);
        if !self.fs.get(&self.cur_df).is_some_and(Node::is_df) {
            self.cur_df = Self::parent_of(&path);
        }
        self.cur_ef = None;
        self.touch();
        Ok(Vec::new())
    }

    // -----------------------------------------------------------------------
    // PINs
    // -----------------------------------------------------------------------

    fn pin_ref(cmd: &Command) -> Result<u8, u16> {
        if cmd.p1 != 0x00 && cmd.ins != 0x2C {
            return Err(sw::WRONG_P1P2);
        }
        match cmd.p2 {
            r @ 1..=MAX_PIN_REF => Ok(r),
            _ => Err(sw::REF_NOT_FOUND),
        }
    }

    fn pin_mut(&mut self, reference: u8) -> Result<&mut PinRecord, u16> {
        self.pins[usize::from(reference)]
            .as_mut()
            .ok_or(sw::REF_NOT_FOUND)
    }

    fn verify(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let r = Self::pin_ref(cmd)?;
        let index = usize::from(r);
        if cmd.data.is_empty() {
            let pin = self.pin_mut(r)?;
            let status = pin.status();
            return if self.verified[index] {
                Ok(Vec::new())
            } else {
                Err(status)
            };
        }
        let result = self.pin_mut(r)?.verify(&cmd.data);
        self.verified[index] = result.is_ok();
        self.changed = true;
        result.map(|()| Vec::new())
    }

    fn change_reference(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let r = Self::pin_ref(cmd)?;
        if cmd.data.len() != 16 {
            return Err(sw::WRONG_LENGTH);
        }
        let (old, new) = cmd.data.split_at(8);
        let pin = self.pin_mut(r)?;
        let result = pin.verify(old);
        if result.is_ok() {
            pin.pin.copy_from_slice(new);
        }
        self.verified[usize::from(r)] = result.is_ok();
        self.touch();
        result.map(|()| Vec::new())
    }

    fn reset_retry_counter(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        let r = Self::pin_ref(cmd)?;
        let want = match cmd.p1 {
            0x00 => 16,
            0x01 => 8,
            _ => return Err(sw::WRONG_P1P2),
        };
        if cmd.data.len() != want {
            return Err(sw::WRONG_LENGTH);
        }
        let pin = self.pin_mut(r)?;
        let result = pin.verify_puk(&cmd.data[..8]);
        if result.is_ok() {
            pin.pin_tries = pin.pin_max;
            if want == 16 {
                pin.pin.copy_from_slice(&cmd.data[8..]);
            }
        }
        self.touch();
        result.map(|()| Vec::new())
    }

    fn logout(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        match cmd.p2 {
            0 => self.verified = [false; MAX_PIN_REF as usize + 1],
            r @ 1..=MAX_PIN_REF => self.verified[usize::from(r)] = false,
            _ => return Err(sw::REF_NOT_FOUND),
        }
        Ok(Vec::new())
    }

    // -----------------------------------------------------------------------
    // Data objects, life cycle, key generation
    // -----------------------------------------------------------------------

    fn get_data(&self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if cmd.p1 != 0x01 {
            return Err(sw::WRONG_P1P2);
        }
        match cmd.p2 {
            0xA0 => {
                let mut info = vec![0u8; 20];
                info[5..8].copy_from_slice(&MYEID_VERSION);
                info[8..18].copy_from_slice(&self.serial);
                info[18..20].copy_from_slice(&self.change_counter.to_be_bytes());
                Ok(info)
            }
            // Capabilities: version 1; RSA + EC; RSA 2048, DES 0, AES 0, EC 256 bits.
            0xAA => Ok(vec![0x01, 0x00, 0x09, 0x08, 0x00, 0, 0, 0, 0, 0x01, 0x00]),
            0xA1 => Ok(self
                .fs
                .iter()
                .filter(|(p, _)| p.len() == self.cur_df.len() + 1 && p.starts_with(&self.cur_df))
                .flat_map(|(p, _)| p.last().copied().unwrap_or(0).to_be_bytes())
                .collect()),
            0x01 | 0x02 | 0x86 => {
                let path = self.selected_key_ef()?;
                let key = self.fs.get(&path).and_then(|n| n.key.as_ref());
                match (cmd.p2, key) {
                    (0x01, Some(PrivateKey::Rsa(k))) => Ok(k.n().to_bytes_be()),
                    (0x02, Some(PrivateKey::Rsa(k))) => Ok(k.e().to_bytes_be()),
                    (0x86, Some(PrivateKey::P256(k))) => {
                        let mut out = Vec::new();
                        let point = k.verifying_key().to_encoded_point(false);
                        put_tlv(&mut out, &[0x86], point.as_bytes());
                        Ok(out)
                    }
                    _ => Err(sw::REF_NOT_FOUND),
                }
            }
            _ => Err(sw::REF_NOT_FOUND),
        }
    }

    fn put_data(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if cmd.p1 != 0x01 {
            return Err(sw::WRONG_P1P2);
        }
        match cmd.p2 {
            0xE0 => self.initialise_applet(&cmd.data),
            r @ 1..=MAX_PIN_REF => {
                self.check(&[MF], Op::UpdateOrCreate)?;
                let record = PinRecord::from_put_data(&cmd.data)?;
                self.pins[usize::from(r)] = Some(record);
                self.verified[usize::from(r)] = false;
                self.touch();
                Ok(Vec::new())
            }
            // Key component import (`80`..`8B`, `A0`): not simulated.
            _ => Err(SW_FUNCTION_NOT_SUPPORTED),
        }
    }

    /// PUT DATA `01 E0`: erase everything; a new MF (access conditions
    /// bytes 2..5) and application DF `5015` (bytes 5..8); creation state.
    fn initialise_applet(&mut self, data: &[u8]) -> Result<Vec<u8>, u16> {
        let &[_, _, m0, m1, m2, d0, d1, d2] = data else {
            return Err(sw::WRONG_LENGTH);
        };
        if self.activated {
            // Byte 3's high nibble of the MF guards re-initialisation.
            self.check(&[MF], Op::Delete)?;
        }
        let mut fs = FileSystem::with_mf([m0, m1, m2]);
        fs.create(&[MF], APP_DF, Node::df([d0, d1, d2], Vec::new()))?;
        self.fs = fs;
        self.pins = Default::default();
        self.verified = [false; MAX_PIN_REF as usize + 1];
        self.activated = false;
        self.cur_df = vec![MF];
        self.cur_ef = None;
        self.env = None;
        self.touch();
        Ok(Vec::new())
    }

    fn activate(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if (cmd.p1, cmd.p2) != (0x04, 0x00) || cmd.data != MYEID_AID {
            return Err(sw::WRONG_DATA);
        }
        if !self.activated {
            self.activated = true;
            self.touch();
        }
        Ok(Vec::new())
    }

    fn generate_key(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if (cmd.p1, cmd.p2) != (0, 0) {
            return Err(sw::WRONG_P1P2);
        }
        let path = self.selected_key_ef()?;
        self.check(&path, Op::Generate)?;
        let node = self.fs.get(&path).ok_or(sw::NOT_FOUND)?;
        let key = match node.descriptor {
            DESC_RSA => {
                // Optional `30 05 81 03 <exponent>`: only 65537.
                if !cmd.data.is_empty() {
                    let items = read_all(&cmd.data).ok_or(sw::WRONG_DATA)?;
                    let [(&[0x30], inner)] = items.as_slice() else {
                        return Err(sw::WRONG_DATA);
                    };
                    if *inner != [0x81, 0x03, 0x01, 0x00, 0x01] {
                        return Err(sw::WRONG_DATA);
                    }
                }
                let bits = usize::from(node.size);
                let key = RsaPrivateKey::new(&mut OsRng, bits).map_err(|_| sw::WRONG_DATA)?;
                PrivateKey::Rsa(Box::new(key))
            }
            DESC_EC if cmd.data.is_empty() => {
                PrivateKey::P256(p256::ecdsa::SigningKey::random(&mut OsRng))
            }
            _ => return Err(sw::WRONG_DATA),
        };
        if let Some(node) = self.fs.get_mut(&path) {
            node.key = Some(key);
        }
        self.touch();
        Ok(Vec::new())
    }

    fn get_challenge(cmd: &Command) -> Result<Vec<u8>, u16> {
        let n = cmd.ne.ok_or(sw::WRONG_LENGTH)?.min(256);
        let mut out = vec![0; n];
        OsRng.fill_bytes(&mut out);
        Ok(out)
    }
}

impl Applet for SimMyEidCard {
    const GET_DATA_INS: u8 = 0xCA;

    fn frame(&mut self) -> &mut Frame {
        &mut self.frame
    }

    /// The applet is the card's default application: selected from reset.
    fn selected(&self) -> bool {
        true
    }

    fn execute(&mut self, cmd: &Command) -> Result<Vec<u8>, u16> {
        if cmd.cla == CLA_PROPRIETARY && cmd.ins != 0xE4 {
            return Err(sw::CLA_NOT_SUPPORTED);
        }
        if cmd.ins != 0x2A {
            self.first_half = None;
        }
        match cmd.ins {
            INS_SELECT => self.select(cmd),
            0xB0 => self.read_binary(cmd),
            0xD6 => self.update_binary(cmd),
            0xE0 => self.create_file(cmd),
            0xE4 => self.delete_file(cmd),
            0x20 => self.verify(cmd),
            0x24 => self.change_reference(cmd),
            0x2C => self.reset_retry_counter(cmd),
            0x2E => self.logout(cmd),
            0x22 => self.manage_security_env(cmd),
            0x2A => self.perform_security_operation(cmd),
            0x86 => self.general_authenticate(cmd),
            0x46 => self.generate_key(cmd),
            0xCA => self.get_data(cmd),
            0xDA => self.put_data(cmd),
            0x44 => self.activate(cmd),
            0x84 => Self::get_challenge(cmd),
            _ => Err(sw::INS_NOT_SUPPORTED),
        }
    }
}
