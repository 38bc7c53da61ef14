//! The PC/SC backend (pcsc-lite on Linux and macOS, WinSCard on Windows).
//!
//! Cards are always connected in shared mode and every card operation runs in
//! one PC/SC transaction, so other processes (a second browser, gpg's
//! scdaemon) keep working with the same card.

use super::{
    CardTransport, PinPadChange, PinPadVerify, ReaderBackend, ReaderStatus, Transmit,
    TransportError,
};
use pcsc::{Context, Disposition, Protocols, Scope, ShareMode, State};
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use zeroize::{Zeroize, Zeroizing};

/// Largest response an extended-length APDU can return, plus SW1 SW2.
const MAX_RESPONSE: usize = 65_536 + 2;

/// Readers and cards through the platform's PC/SC service.
#[derive(Default)]
pub struct PcscBackend {
    context: Mutex<Option<Context>>,
    /// A second context for `SCardGetStatusChange` waits, so a blocked wait
    /// never holds up other calls; kept here so `SCardCancel` can wake it.
    wait_context: Mutex<Option<Context>>,
    /// Counts PC/SC contexts established: a new one means the service
    /// restarted, and every card may have changed.
    epoch: AtomicU64,
}

impl std::fmt::Debug for PcscBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcscBackend")
    }
}

fn map_error(err: pcsc::Error) -> TransportError {
    use pcsc::Error as E;
    match err {
        E::NoService
        | E::ServiceStopped
        | E::InvalidHandle
        | E::NoReadersAvailable
        | E::CommError
        | E::Shutdown => TransportError::NoService,
        E::UnknownReader | E::ReaderUnavailable => TransportError::ReaderGone,
        E::NoSmartcard | E::RemovedCard | E::UnpoweredCard | E::UnresponsiveCard => {
            TransportError::CardRemoved
        }
        E::ResetCard => TransportError::CardReset,
        other => TransportError::Io(other.to_string()),
    }
}

impl PcscBackend {
    /// A backend that establishes its PC/SC context on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with a valid context, re-establishing it when the service
    /// went away and came back.
    fn with_context<R>(
        &self,
        f: impl Fn(&Context) -> Result<R, pcsc::Error>,
    ) -> Result<R, TransportError> {
        let mut guard = self
            .context
            .lock()
            .map_err(|_| TransportError::Io("PC/SC context lock poisoned".into()))?;
        for _attempt in 0..2 {
            if guard.is_none() {
                *guard = Some(Context::establish(Scope::User).map_err(map_error)?);
                self.epoch.fetch_add(1, Ordering::SeqCst);
            }
            let Some(context) = guard.as_ref() else {
                continue;
            };
            match f(context) {
                Err(
                    pcsc::Error::InvalidHandle
                    | pcsc::Error::NoService
                    | pcsc::Error::ServiceStopped,
                ) => {
                    *guard = None;
                }
                other => return other.map_err(map_error),
            }
        }
        Err(TransportError::NoService)
    }
}

impl PcscBackend {
    /// Whether the PC/SC service answers: establishes a context (which
    /// starts a socket-activated `pcscd`) and checks it. `Err` with why not
    /// (for `p11card doctor`; [`ReaderBackend::readers`] shows a missing
    /// service as no readers).
    pub fn check_service(&self) -> Result<(), TransportError> {
        self.with_context(|context| context.is_valid())
    }

    /// Card presence and event counters of `names`, without waiting.
    fn statuses(
        &self,
        context: &Context,
        names: &[CString],
    ) -> Result<Vec<ReaderStatus>, pcsc::Error> {
        let mut states: Vec<pcsc::ReaderState> = names
            .iter()
            .map(|name| pcsc::ReaderState::new(name.clone(), State::UNAWARE))
            .collect();
        context.get_status_change(Duration::ZERO, &mut states)?;
        let epoch = self.epoch.load(Ordering::SeqCst);
        Ok(states
            .iter()
            .map(|state| ReaderStatus {
                name: state.name().to_string_lossy().into_owned(),
                card_present: state.event_state().contains(State::PRESENT)
                    && !state.event_state().contains(State::MUTE),
                card_events: (epoch << 32) | u64::from(state.event_count()),
            })
            .collect())
    }

    /// A failed wait: drop the wait context when the service went away (a
    /// later wait makes a new one), and pace the caller's loop.
    fn wait_failed(&self, err: pcsc::Error, timeout: Duration) -> Result<(), TransportError> {
        if matches!(
            err,
            pcsc::Error::NoService
                | pcsc::Error::ServiceStopped
                | pcsc::Error::InvalidHandle
                | pcsc::Error::CommError
        ) {
            *self.wait_context.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        std::thread::sleep(timeout.min(Duration::from_millis(200)));
        Ok(())
    }
}

impl ReaderBackend for PcscBackend {
    fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError> {
        let listed = self.with_context(|context| match context.list_readers_owned() {
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            other => other,
        });
        let names = match listed {
            Ok(names) => names,
            Err(TransportError::NoService) => return Ok(Vec::new()),
            Err(other) => return Err(other),
        };
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let states = self.with_context(|context| self.statuses(context, &names));
        match states {
            Ok(states) => Ok(states),
            // A reader vanished between the two calls: report what we know.
            Err(_) => Ok(names
                .iter()
                .map(|name| ReaderStatus {
                    name: name.to_string_lossy().into_owned(),
                    card_present: false,
                    card_events: 0,
                })
                .collect()),
        }
    }

    fn status_reuse(&self) -> Duration {
        // One IPC round trip to pcscd per PKCS#11 call adds up in a burst
        // (C_FindObjects…, C_SignInit, C_Sign); no one swaps a card faster.
        Duration::from_millis(50)
    }

    fn reader_status(&self, reader: &str) -> Result<Option<ReaderStatus>, TransportError> {
        let Ok(name) = CString::new(reader) else {
            return Ok(None);
        };
        let names = [name];
        match self.with_context(|context| self.statuses(context, &names)) {
            Ok(mut states) => Ok(states.pop()),
            Err(TransportError::NoService) => Ok(None),
            Err(TransportError::ReaderGone) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn wait_for_change(
        &self,
        known: &[ReaderStatus],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let context = {
            let mut guard = self.wait_context.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Context::establish(Scope::User).ok();
            }
            match guard.as_ref() {
                Some(context) => context.clone(),
                None => {
                    // No service: come back after the timeout.
                    drop(guard);
                    std::thread::sleep(timeout.min(Duration::from_secs(1)));
                    return Ok(());
                }
            }
        };
        let mut states: Vec<pcsc::ReaderState> = known
            .iter()
            .filter_map(|reader| {
                CString::new(reader.name.as_str())
                    .ok()
                    .map(|name| (name, reader.card_present))
            })
            .map(|(name, present)| {
                let state = if present {
                    State::PRESENT
                } else {
                    State::EMPTY
                };
                pcsc::ReaderState::new(name, state)
            })
            .collect();
        // Reader arrivals and departures (pcsc-lite, WinSCard).
        states.push(pcsc::ReaderState::new(
            pcsc::PNP_NOTIFICATION(),
            State::UNAWARE,
        ));
        // The PnP pseudo-reader answers at once when asked UNAWARE; learn its
        // state first, then wait for real changes.
        match context.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(err) => return self.wait_failed(err, timeout),
        }
        for state in &mut states {
            state.sync_current_state();
        }
        match context.get_status_change(timeout, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) | Err(pcsc::Error::Cancelled) => Ok(()),
            Err(err) => self.wait_failed(err, timeout),
        }
    }

    fn cancel_wait(&self) {
        if let Some(context) = self
            .wait_context
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = context.cancel();
        }
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, TransportError> {
        let name = CString::new(reader).map_err(|_| TransportError::ReaderGone)?;
        let card = self.with_context(|context| {
            context.connect(&name, ShareMode::Shared, Protocols::T0 | Protocols::T1)
        })?;
        let atr = card
            .status2_owned()
            .map(|status| status.atr().to_vec())
            .map_err(map_error)?;
        let pin_pad = pin_pad_features(&card);
        Ok(Box::new(PcscCard {
            card,
            atr,
            pin_pad,
            extended: None,
        }))
    }
}

/// PC/SC's `DWORD`, as the `pcsc` crate's control codes use it.
#[cfg(not(target_os = "macos"))]
type Dword = std::os::raw::c_ulong;
/// PC/SC's `DWORD`, as the `pcsc` crate's control codes use it.
#[cfg(target_os = "macos")]
type Dword = u32;

/// PC/SC part 10 §2.2: `CM_IOCTL_GET_FEATURE_REQUEST`.
const GET_FEATURE_REQUEST: Dword = pcsc::ctl_code(3400);
/// PC/SC part 10 §2.3: the feature tag of `FEATURE_VERIFY_PIN_DIRECT`.
const FEATURE_VERIFY_PIN_DIRECT: u8 = 0x06;
/// PC/SC part 10 §2.3: the feature tag of `FEATURE_MODIFY_PIN_DIRECT`.
const FEATURE_MODIFY_PIN_DIRECT: u8 = 0x07;

/// The control codes of a reader's PIN pad (PC/SC part 10 features).
#[derive(Debug, Clone, Copy, Default)]
struct PinPadFeatures {
    /// `FEATURE_VERIFY_PIN_DIRECT`.
    verify: Option<Dword>,
    /// `FEATURE_MODIFY_PIN_DIRECT`.
    modify: Option<Dword>,
}

/// The reader's PIN-pad features (none when it has no PIN pad).
fn pin_pad_features(card: &pcsc::Card) -> PinPadFeatures {
    let mut buffer = [0u8; 256];
    let Ok(features) = card.control(GET_FEATURE_REQUEST, &[], &mut buffer) else {
        return PinPadFeatures::default();
    };
    feature_codes(features)
}

/// Parses the GET_FEATURE_REQUEST answer: a list of TLVs (tag, length 4,
/// big-endian control code).
fn feature_codes(features: &[u8]) -> PinPadFeatures {
    let code = |tag: u8| {
        features
            .chunks_exact(6)
            .find(|tlv| tlv[0] == tag && tlv[1] == 4)
            .map(|tlv| u32::from_be_bytes([tlv[2], tlv[3], tlv[4], tlv[5]]) as Dword)
    };
    PinPadFeatures {
        verify: code(FEATURE_VERIFY_PIN_DIRECT),
        modify: code(FEATURE_MODIFY_PIN_DIRECT),
    }
}

/// PC/SC part 10 §2.5.2 `PIN_VERIFY_STRUCTURE` for an ASCII PIN written
/// left-justified at the start of the template's PIN block.
fn pin_verify_structure(request: &PinPadVerify) -> Vec<u8> {
    let mut out = vec![
        0x00,                        // bTimerOut: reader default
        0x00,                        // bTimerOut2
        0x82,                        // bmFormatString: byte units, PIN at offset 0, left, ASCII
        request.block_length & 0x0F, // bmPINBlockString: block size, no length field
        0x00,                        // bmPINLengthFormat
        request.max_length,          // wPINMaxExtraDigit (little-endian: max, then min)
        request.min_length,
        0x02, // bEntryValidationCondition: validation key
        0x01, // bNumberMessage
        0x09, // wLangId 0x0409
        0x04,
        0x00, // bMsgIndex
        0x00, // bTeoPrologue
        0x00,
        0x00,
    ];
    out.extend_from_slice(&(request.apdu.len() as u32).to_le_bytes());
    out.extend_from_slice(&request.apdu);
    out
}

/// PC/SC part 10 §2.5.3 `PIN_MODIFY_STRUCTURE`: the current PIN and the new
/// one (asked twice), each ASCII and left-justified in its block of the
/// template.
fn pin_modify_structure(request: &PinPadChange) -> Vec<u8> {
    let mut out = vec![
        0x00,                        // bTimerOut: reader default
        0x00,                        // bTimerOut2
        0x82,                        // bmFormatString: byte units, offset 0, left, ASCII
        request.block_length & 0x0F, // bmPINBlockString: block size, no length field
        0x00,                        // bmPINLengthFormat
        request.old_offset,          // bInsertionOffsetOld
        request.new_offset,          // bInsertionOffsetNew
        request.max_length,          // wPINMaxExtraDigit (little-endian: max, then min)
        request.min_length,
        0x03, // bConfirmPIN: ask the current PIN, and the new one twice
        0x02, // bEntryValidationCondition: validation key
        0x03, // bNumberMessage: current, new, confirmation
        0x09, // wLangId 0x0409
        0x04,
        0x00, // bMsgIndex1
        0x01, // bMsgIndex2
        0x02, // bMsgIndex3
        0x00, // bTeoPrologue
        0x00,
        0x00,
    ];
    out.extend_from_slice(&(request.apdu.len() as u32).to_le_bytes());
    out.extend_from_slice(&request.apdu);
    out
}

/// A card connected through PC/SC in shared mode.
struct PcscCard {
    card: pcsc::Card,
    atr: Vec<u8>,
    pin_pad: PinPadFeatures,
    /// Whether extended-length APDUs worked on this connection.
    extended: Option<bool>,
}

struct PcscLink<'a> {
    card: &'a pcsc::Card,
    /// Receives every response, decrypted data included: wiped after each
    /// exchange and when the transaction ends.
    buffer: Zeroizing<Vec<u8>>,
    saw_reset: bool,
    pin_pad: PinPadFeatures,
    extended: Option<bool>,
}

impl Transmit for PcscLink<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.card.transmit(command, &mut self.buffer) {
            Ok(response) => {
                let (copy, used) = (response.to_vec(), response.len());
                self.buffer[..used].zeroize();
                Ok(copy)
            }
            Err(err) => {
                self.saw_reset |= err == pcsc::Error::ResetCard;
                Err(map_error(err))
            }
        }
    }

    fn extended_length(&self) -> Option<bool> {
        self.extended
    }

    fn note_extended_length(&mut self, works: bool) {
        self.extended = Some(works);
    }

    fn verify_pin_pad(&mut self, request: &PinPadVerify) -> Result<Vec<u8>, TransportError> {
        let code = self.pin_pad.verify.ok_or(TransportError::NoPinPad)?;
        self.control(code, &pin_verify_structure(request))
    }

    fn change_pin_pad(&mut self, request: &PinPadChange) -> Result<Vec<u8>, TransportError> {
        let code = self.pin_pad.modify.ok_or(TransportError::NoPinPad)?;
        self.control(code, &pin_modify_structure(request))
    }
}

impl PcscLink<'_> {
    /// One `SCardControl` exchange; the response buffer is wiped after it.
    fn control(&mut self, code: Dword, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = self
            .card
            .control(code, input, &mut self.buffer)
            .map_err(map_error)?;
        let (copy, used) = (response.to_vec(), response.len());
        self.buffer[..used].zeroize();
        Ok(copy)
    }
}

impl CardTransport for PcscCard {
    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn has_pin_pad(&self) -> bool {
        self.pin_pad.verify.is_some()
    }

    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Transmit),
    ) -> Result<(), TransportError> {
        let transaction = match self.card.transaction2() {
            Ok(transaction) => transaction,
            Err((card, pcsc::Error::ResetCard)) => {
                // Someone reset the card: reconnect, and tell the caller its
                // security state is gone.
                card.reconnect(
                    ShareMode::Shared,
                    Protocols::T0 | Protocols::T1,
                    Disposition::LeaveCard,
                )
                .map_err(map_error)?;
                return Err(TransportError::CardReset);
            }
            Err((_, other)) => return Err(map_error(other)),
        };
        let mut link = PcscLink {
            card: &transaction,
            buffer: Zeroizing::new(vec![0; MAX_RESPONSE]),
            saw_reset: false,
            pin_pad: self.pin_pad,
            extended: self.extended,
        };
        body(&mut link);
        let saw_reset = link.saw_reset;
        self.extended = link.extended;
        let ended = transaction
            .end(Disposition::LeaveCard)
            .map_err(|(_, err)| map_error(err));
        if saw_reset {
            // The card was reset under us: reconnect so the next transaction
            // starts on a fresh handle.
            self.card
                .reconnect(
                    ShareMode::Shared,
                    Protocols::T0 | Protocols::T1,
                    Disposition::LeaveCard,
                )
                .map_err(map_error)?;
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_codes_find_verify_and_modify_among_other_features() {
        let answer = [
            0x12, 0x04, 0x42, 0x33, 0x00, 0x12, // FEATURE_IFD_PIN_PROPERTIES
            0x06, 0x04, 0x42, 0x33, 0x00, 0x06, // VERIFY_PIN_DIRECT
            0x07, 0x04, 0x42, 0x33, 0x00, 0x07, // MODIFY_PIN_DIRECT
        ];
        let features = feature_codes(&answer);
        assert_eq!(features.verify, Some(0x4233_0006));
        assert_eq!(features.modify, Some(0x4233_0007));
        let verify_only = feature_codes(&answer[..12]);
        assert_eq!(verify_only.modify, None);
        assert_eq!(feature_codes(&[0x06, 0x04, 0x42]).verify, None);
    }

    #[test]
    fn the_modify_structure_asks_the_current_pin_and_the_new_one_twice() {
        let mut apdu = vec![0x00, 0x24, 0x00, 0x80, 0x10];
        apdu.resize(5 + 16, 0xFF);
        let request = PinPadChange {
            apdu: apdu.clone(),
            old_offset: 0,
            new_offset: 8,
            min_length: 6,
            max_length: 8,
            block_length: 8,
        };
        let structure = pin_modify_structure(&request);
        // bInsertionOffsetOld/New, wPINMaxExtraDigit, bConfirmPIN,
        // bNumberMessage and the little-endian data length before the APDU.
        assert_eq!(&structure[..5], &[0x00, 0x00, 0x82, 0x08, 0x00]);
        assert_eq!(&structure[5..7], &[0, 8]);
        assert_eq!(&structure[7..9], &[8, 6]);
        assert_eq!(structure[9], 0x03);
        assert_eq!(structure[11], 0x03);
        assert_eq!(&structure[20..24], &(apdu.len() as u32).to_le_bytes());
        assert_eq!(&structure[24..], &apdu[..]);
    }
}
