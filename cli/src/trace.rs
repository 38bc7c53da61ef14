//! The APDU trace of `p11card doctor --report`: a [`RecordingBackend`]
//! wraps the readers' backend (PC/SC, or simulated cards in the tests) and,
//! while its [`Trace`] records, notes each command APDU's header, its
//! length, the response's length, status word and time.
//!
//! Nothing secret goes into a trace: command data is shown only for the
//! instructions in [`SHOWN_DATA`] (an allow-list: SELECT, READ BINARY,
//! GET DATA, GET RESPONSE and the like, which carry names, paths, tags and
//! offsets); any other command (VERIFY, CHANGE REFERENCE DATA, RESET RETRY
//! COUNTER, GENERAL AUTHENTICATE, PSO…) shows only its length. Response
//! data is never shown, only its length.

use crate::messages::spaced_hex;
use p11card::transport::{
    CardTransport, PinPadChange, PinPadVerify, ReaderBackend, ReaderStatus, Transmit,
    TransportError,
};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The instructions whose command data the trace shows: SELECT (`A4`: an
/// AID or a path), READ BINARY (`B0`, `B1`: an offset), GET DATA (`CA`,
/// `CB`: a tag or tag list), GET RESPONSE (`C0`), and Yubico's GET
/// METADATA (`F7`), GET SERIAL (`F8`) and GET VERSION (`FD`).
pub const SHOWN_DATA: [u8; 9] = [0xA4, 0xB0, 0xB1, 0xCA, 0xCB, 0xC0, 0xF7, 0xF8, 0xFD];

/// Whether the trace shows the data of a command with instruction `ins`.
fn shows_data(ins: u8) -> bool {
    SHOWN_DATA.contains(&ins)
}

/// What a trace holds.
#[derive(Debug, Default)]
struct TraceState {
    recording: bool,
    lines: Vec<String>,
    apdus: usize,
}

/// A trace of card I/O, shared by the recording backend and whoever reads
/// it. Records only between [`Trace::start`] and [`Trace::stop`].
#[derive(Debug, Clone, Default)]
pub struct Trace {
    state: Arc<Mutex<TraceState>>,
}

impl Trace {
    /// An empty trace, not recording.
    pub fn new() -> Trace {
        Trace::default()
    }

    fn lock(&self) -> MutexGuard<'_, TraceState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts recording.
    pub fn start(&self) {
        self.lock().recording = true;
    }

    /// Stops recording.
    pub fn stop(&self) {
        self.lock().recording = false;
    }

    /// The lines recorded so far.
    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.clone()
    }

    /// Adds an event line (a connection, a transaction) while recording.
    fn event(&self, line: impl FnOnce() -> String) {
        let mut state = self.lock();
        if state.recording {
            let line = line();
            state.lines.push(line);
        }
    }

    /// Adds one APDU exchange while recording.
    fn apdu(&self, command: &[u8], response: &Result<Vec<u8>, TransportError>, took: Duration) {
        let mut state = self.lock();
        if !state.recording {
            return;
        }
        state.apdus += 1;
        let line = format!("{:4} {}", state.apdus, describe(command, response, took));
        state.lines.push(line);
    }
}

/// The command data's length and where it starts, from the APDU's length
/// fields (ISO 7816-4 §5.1): `None` for a command without data.
fn data_span(command: &[u8]) -> Option<(usize, usize)> {
    match command.len() {
        0..=5 => None,
        _ if command[4] != 0 => Some((usize::from(command[4]), 5)),
        // Extended Le only (7), or too short for extended Lc.
        6 | 7 => None,
        _ => {
            let lc = usize::from(u16::from_be_bytes([command[5], command[6]]));
            Some((lc, 7))
        }
    }
}

/// One trace line: header, Lc, data if shown, SW1SW2, response length, time.
fn describe(command: &[u8], response: &Result<Vec<u8>, TransportError>, took: Duration) -> String {
    let Some(header) = command.get(..4) else {
        return format!("(malformed command of {} bytes)", command.len());
    };
    let mut line = spaced_hex(header);
    if let Some((lc, start)) = data_span(command) {
        line.push_str(&format!("  Lc={lc}"));
        if shows_data(header[1]) {
            let end = command.len().min(start + lc);
            let data = command.get(start..end).unwrap_or_default();
            line.push_str(&format!(" data={}", spaced_hex(data)));
        } else {
            line.push_str(" data=(not shown)");
        }
    }
    match response {
        Ok(response) if response.len() >= 2 => {
            let (data, sw) = response.split_at(response.len() - 2);
            line.push_str(&format!(
                "  -> SW {:02X}{:02X}, {} bytes",
                sw[0],
                sw[1],
                data.len()
            ));
        }
        Ok(response) => line.push_str(&format!("  -> {} bytes, no status word", response.len())),
        Err(err) => line.push_str(&format!("  -> error: {err}")),
    }
    line.push_str(&format!("  {:.1} ms", took.as_secs_f64() * 1000.0));
    line
}

/// A reader backend that records the card I/O of the backend it wraps.
pub struct RecordingBackend {
    inner: Box<dyn ReaderBackend>,
    trace: Trace,
}

impl RecordingBackend {
    /// Wraps `inner`; its card I/O goes into `trace` while it records.
    pub fn new(inner: Box<dyn ReaderBackend>, trace: Trace) -> RecordingBackend {
        RecordingBackend { inner, trace }
    }
}

impl ReaderBackend for RecordingBackend {
    fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError> {
        self.inner.readers()
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, TransportError> {
        let connected = self.inner.connect(reader);
        match &connected {
            Ok(card) => self
                .trace
                .event(|| format!("connect {reader:?}: ATR {}", spaced_hex(card.atr()))),
            Err(err) => self.trace.event(|| format!("connect {reader:?}: {err}")),
        }
        Ok(Box::new(RecordingTransport {
            inner: connected?,
            trace: self.trace.clone(),
        }))
    }

    fn status_reuse(&self) -> Duration {
        self.inner.status_reuse()
    }

    fn reader_status(&self, reader: &str) -> Result<Option<ReaderStatus>, TransportError> {
        self.inner.reader_status(reader)
    }

    fn wait_for_change(
        &self,
        known: &[ReaderStatus],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        self.inner.wait_for_change(known, timeout)
    }

    fn cancel_wait(&self) {
        self.inner.cancel_wait();
    }
}

/// A connected card whose APDUs are recorded.
struct RecordingTransport {
    inner: Box<dyn CardTransport>,
    trace: Trace,
}

impl CardTransport for RecordingTransport {
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
        let trace = &self.trace;
        trace.event(|| "transaction".to_string());
        self.inner.transaction(&mut |link| {
            let mut recording = RecordingLink { inner: link, trace };
            body(&mut recording);
        })
    }
}

/// One transaction's link to the card, recorded.
struct RecordingLink<'a> {
    inner: &'a mut dyn Transmit,
    trace: &'a Trace,
}

impl Transmit for RecordingLink<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let started = Instant::now();
        let response = self.inner.transmit(command);
        self.trace.apdu(command, &response, started.elapsed());
        response
    }

    fn extended_length(&self) -> Option<bool> {
        self.inner.extended_length()
    }

    fn note_extended_length(&mut self, works: bool) {
        self.inner.note_extended_length(works);
    }

    fn verify_pin_pad(&mut self, request: &PinPadVerify) -> Result<Vec<u8>, TransportError> {
        let started = Instant::now();
        let response = self.inner.verify_pin_pad(request);
        // The template's header only: the reader fills in the PIN.
        let header = request.apdu.get(..4).unwrap_or_default();
        self.trace.apdu(header, &response, started.elapsed());
        response
    }

    fn change_pin_pad(&mut self, request: &PinPadChange) -> Result<Vec<u8>, TransportError> {
        let started = Instant::now();
        let response = self.inner.change_pin_pad(request);
        // The template's header only: the reader fills in both PINs.
        let header = request.apdu.get(..4).unwrap_or_default();
        self.trace.apdu(header, &response, started.elapsed());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(command: &[u8], response: &[u8]) -> String {
        describe(command, &Ok(response.to_vec()), Duration::from_micros(1500))
    }

    #[test]
    fn short_commands_have_no_data_span() {
        assert_eq!(data_span(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x01]), None);
        assert_eq!(data_span(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00]), None);
        assert_eq!(
            data_span(&[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00]),
            Some((2, 5))
        );
    }

    #[test]
    fn select_and_read_show_their_data_secrets_do_not() {
        assert_eq!(
            line(
                &[0x00, 0xA4, 0x04, 0x00, 0x03, 0xA0, 0x00, 0x01, 0x00],
                &[1, 2, 0x90, 0]
            ),
            "00 A4 04 00  Lc=3 data=A0 00 01  -> SW 9000, 2 bytes  1.5 ms"
        );
        assert_eq!(
            line(&[0x00, 0xB0, 0x01, 0x00, 0x00], &[0x90, 0]),
            "00 B0 01 00  -> SW 9000, 0 bytes  1.5 ms"
        );
        let verify = [
            0x00, 0x20, 0x00, 0x80, 0x06, b'1', b'2', b'3', b'4', b'5', b'6',
        ];
        let shown = line(&verify, &[0x90, 0x00]);
        assert_eq!(
            shown,
            "00 20 00 80  Lc=6 data=(not shown)  -> SW 9000, 0 bytes  1.5 ms"
        );
        // Extended length: Lc in three bytes.
        let mut extended = vec![
            0x00, 0x87, 0x07, 0x9A, 0x00, 0x00, 0x02, 0x31, 0x32, 0x00, 0x00,
        ];
        assert!(line(&extended, &[0x61, 0x10]).contains("Lc=2 data=(not shown)"));
        extended[1] = 0xCB;
        assert!(line(&extended, &[0x61, 0x10]).contains("Lc=2 data=31 32"));
        assert_eq!(
            line(&[0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C], &[0x6A, 0x82]),
            "00 CB 3F FF  Lc=5 data=5C  -> SW 6A82, 0 bytes  1.5 ms"
        );
        assert!(line(&[0x00, 0x20], &[]).starts_with("(malformed"));
    }
}
