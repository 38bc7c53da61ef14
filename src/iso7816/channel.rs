//! A logical channel to a card application: sends [`Command`]s and collects
//! complete [`Response`]s, hiding transport-level mechanics: command chaining
//! (CLA bit `0x10`, ISO/IEC 7816-4 §5.3.3), GET RESPONSE after `61xx`, and the
//! re-send after `6Cxx`.
//!
//! Every loop here is bounded whatever the card says: GET RESPONSE runs at
//! most [`MAX_GET_RESPONSE_ROUNDS`] times and each round must bring data,
//! the `6Cxx` re-send happens once, and a chain has as many parts as the
//! command data needs. The data and the response data of a sensitive
//! command ([`Command::sensitive`]) stay out of the log at every level, and
//! so do those of the GET RESPONSE, re-send and chain parts it leads to.

use super::{apdu::hex, CardError, Command, Response, StatusWord};
use crate::transport::Transmit;
use zeroize::Zeroizing;

/// The most response data the channel collects for one command; a card that
/// keeps answering `61xx` beyond this is misbehaving.
const MAX_RESPONSE_DATA: usize = 1 << 20;

/// The most GET RESPONSE commands the channel sends for one command: a
/// 64 KiB object in the 256-byte pieces a short APDU carries (no object the
/// module reads comes near that; extended-length answers need far fewer).
const MAX_GET_RESPONSE_ROUNDS: usize = 256;

/// How the channel frames commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelOptions {
    /// Use extended-length APDUs when data or Le do not fit the short form.
    pub extended_length: bool,
}

/// Sends commands over one card transaction.
pub struct Channel<'a> {
    link: &'a mut dyn Transmit,
    options: ChannelOptions,
    apdus_sent: usize,
}

impl<'a> Channel<'a> {
    /// A channel over `link` (one open transaction).
    pub fn new(link: &'a mut dyn Transmit, options: ChannelOptions) -> Self {
        Channel {
            link,
            options,
            apdus_sent: 0,
        }
    }

    /// Changes the framing, for engines that learn from the card whether it
    /// takes extended-length APDUs (OpenPGP historical bytes).
    pub fn set_options(&mut self, options: ChannelOptions) {
        self.options = options;
    }

    /// The framing in use.
    pub fn options(&self) -> ChannelOptions {
        self.options
    }

    /// How many APDUs this channel has sent.
    pub fn apdus_sent(&self) -> usize {
        self.apdus_sent
    }

    fn exchange(&mut self, command: &Command, extended: bool) -> Result<Response, CardError> {
        let encoded = command.encode(extended)?;
        log::debug!("card <- {command:?}");
        self.apdus_sent += 1;
        let raw = Zeroizing::new(self.link.transmit(&encoded)?);
        let response = Response::parse(&raw)?;
        if command.sensitive {
            log::debug!("card -> {} ({} bytes)", response.sw, response.data.len());
        } else {
            log::trace!("card -> {} {}", response.sw, hex(&response.data));
            log::debug!("card -> {} ({} bytes)", response.sw, response.data.len());
        }
        Ok(response)
    }

    /// Sends `command` and returns the complete response (any status word;
    /// use [`Response::success`] to insist on `9000`).
    pub fn execute(&mut self, command: &Command) -> Result<Response, CardError> {
        let try_extended = self.options.extended_length
            && command.needs_extended()
            && self.link.extended_length() != Some(false);
        if try_extended {
            // Extended length saves the chaining and GET RESPONSE round
            // trips; a card or reader that refuses it gets the short form
            // from now on (ISO 7816-4 §5.1: 6700 wrong length, 6D00/6E00).
            match self.exchange(command, true) {
                Ok(response)
                    if response.sw != StatusWord::WRONG_LENGTH
                        && !response.sw.is_unsupported_command() =>
                {
                    self.link.note_extended_length(true);
                    return self.collect_remaining(response, command.sensitive);
                }
                Ok(_) | Err(CardError::Transport(crate::transport::TransportError::Io(_))) => {
                    log::debug!("extended-length APDU refused; using short APDUs");
                    self.link.note_extended_length(false);
                }
                Err(other) => return Err(other),
            }
        }
        let first = if command.data.len() > 255 {
            self.send_chained(command)?
        } else {
            let response = self.exchange(command, false)?;
            match response.sw.correct_le() {
                Some(le) if command.le.is_some() => {
                    let mut again = command.clone();
                    again.le = Some(le);
                    self.exchange(&again, false)?
                }
                _ => response,
            }
        };
        self.collect_remaining(first, command.sensitive)
    }

    /// Sends data longer than 255 bytes as a chain of short commands.
    fn send_chained(&mut self, command: &Command) -> Result<Response, CardError> {
        let chunks: Vec<&[u8]> = command.data.chunks(255).collect();
        let last = chunks.len() - 1;
        for (index, chunk) in chunks.iter().enumerate() {
            let mut part = Command::new(command.cla, command.ins, command.p1, command.p2);
            part.data = Zeroizing::new(chunk.to_vec());
            part.sensitive = command.sensitive;
            if index == last {
                part.le = command.le;
                return self.exchange(&part, false);
            }
            part.cla |= 0x10;
            let response = self.exchange(&part, false)?;
            if !response.sw.is_success() {
                return Ok(response);
            }
        }
        Err(CardError::Malformed("empty command chain"))
    }

    /// Follows `61xx` with GET RESPONSE until the card has sent everything;
    /// the GET RESPONSE commands are as `sensitive` as the command they
    /// continue. A card that announces more data without sending any, or
    /// keeps announcing more for longer than any card object, is an error.
    fn collect_remaining(
        &mut self,
        first: Response,
        sensitive: bool,
    ) -> Result<Response, CardError> {
        if first.sw.bytes_remaining().is_none() {
            return Ok(first);
        }
        let mut sw = first.sw;
        let mut total = first.data.len();
        // The pieces stay apart until the total is known, so the response
        // data is never copied by a growing buffer that leaves the old
        // allocation behind unwiped.
        let mut pieces = vec![first.data];
        let mut rounds = 0;
        while let Some(remaining) = sw.bytes_remaining() {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS {
                return Err(CardError::Malformed(
                    "card keeps announcing more response data",
                ));
            }
            let mut get_response = super::commands::get_response(remaining);
            get_response.sensitive = sensitive;
            let next = self.exchange(&get_response, false)?;
            if !matches!(next.sw.sw1(), 0x90 | 0x61 | 0x62 | 0x63) {
                // The status of a refused GET RESPONSE is not the status of
                // the command it continues (a SELECT answered `61xx` and
                // then `6D00` did not find the application absent): the
                // exchange broke.
                return Err(CardError::Malformed(
                    "card refuses GET RESPONSE after announcing data",
                ));
            }
            if next.data.is_empty() && next.sw.bytes_remaining().is_some() {
                return Err(CardError::Malformed(
                    "card announces more response data but sends none",
                ));
            }
            total += next.data.len();
            if total > MAX_RESPONSE_DATA {
                return Err(CardError::Malformed("response longer than any card object"));
            }
            sw = next.sw;
            pieces.push(next.data);
        }
        let mut data = Zeroizing::new(Vec::with_capacity(total));
        for piece in &pieces {
            data.extend_from_slice(piece);
        }
        Ok(Response { data, sw })
    }

    /// Has the reader's PIN pad collect the PIN and send the VERIFY
    /// described by `request`; returns the card's response.
    pub fn verify_pin_pad(
        &mut self,
        request: &crate::transport::PinPadVerify,
    ) -> Result<Response, CardError> {
        log::debug!("card <- VERIFY through the reader's PIN pad");
        self.apdus_sent += 1;
        let raw = self.link.verify_pin_pad(request)?;
        Response::parse(&raw)
    }

    /// Has the reader's PIN pad collect the current and the new PIN and
    /// send the change command described by `request`; returns the card's
    /// response.
    pub fn change_pin_pad(
        &mut self,
        request: &crate::transport::PinPadChange,
    ) -> Result<Response, CardError> {
        log::debug!("card <- PIN change through the reader's PIN pad");
        self.apdus_sent += 1;
        let raw = self.link.change_pin_pad(request)?;
        Response::parse(&raw)
    }

    /// Sends `command` and insists on `9000`.
    pub fn transmit_ok(&mut self, command: &Command) -> Result<Zeroizing<Vec<u8>>, CardError> {
        self.execute(command)?.success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportError;
    use std::collections::VecDeque;

    /// A scripted link: checks each command against the expected bytes and
    /// answers with the scripted response.
    struct Script {
        steps: VecDeque<(Vec<u8>, Vec<u8>)>,
    }

    impl Script {
        fn new(steps: &[(&str, &str)]) -> Self {
            let decode = |s: &str| {
                let s: String = s.split_whitespace().collect();
                (0..s.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                    .collect::<Vec<u8>>()
            };
            Script {
                steps: steps.iter().map(|(c, r)| (decode(c), decode(r))).collect(),
            }
        }
    }

    impl Transmit for Script {
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
            let (expected, response) = self.steps.pop_front().expect("unexpected extra APDU");
            assert_eq!(
                hex(command),
                hex(&expected),
                "command differs from transcript"
            );
            Ok(response)
        }
    }

    #[test]
    fn follows_61xx_with_get_response() {
        let mut script = Script::new(&[
            ("00CB3FFF 03 5C0102 00", "0102 6103"),
            ("00C00000 03", "030405 9000"),
        ]);
        let mut channel = Channel::new(&mut script, ChannelOptions::default());
        let command = Command::new(0, 0xCB, 0x3F, 0xFF)
            .data(vec![0x5C, 0x01, 0x02])
            .expect_response();
        let data = channel.transmit_ok(&command).unwrap();
        assert_eq!(&data[..], &[1, 2, 3, 4, 5]);
        assert_eq!(channel.apdus_sent(), 2);
        assert!(script.steps.is_empty());
    }

    #[test]
    fn resends_with_the_le_the_card_asks_for() {
        let mut script = Script::new(&[("00CA0000 00", "6C02"), ("00CA0000 02", "ABCD 9000")]);
        let mut channel = Channel::new(&mut script, ChannelOptions::default());
        let data = channel
            .transmit_ok(&Command::new(0, 0xCA, 0, 0).expect_response())
            .unwrap();
        assert_eq!(&data[..], &[0xAB, 0xCD]);
    }

    #[test]
    fn chains_long_commands_in_short_mode() {
        let data = vec![0x11; 300];
        let first = format!("10870711 FF {}", "11".repeat(255));
        let second = format!("00870711 2D {} 00", "11".repeat(45));
        let mut script = Script::new(&[(&first, "9000"), (&second, "AA 9000")]);
        let mut channel = Channel::new(&mut script, ChannelOptions::default());
        let command = Command::new(0, 0x87, 0x07, 0x11)
            .data(data)
            .expect_response();
        assert_eq!(&channel.transmit_ok(&command).unwrap()[..], &[0xAA]);
    }

    #[test]
    fn stops_a_chain_on_error() {
        let data = vec![0x11; 300];
        let first = format!("10870711 FF {}", "11".repeat(255));
        let mut script = Script::new(&[(&first, "6A80")]);
        let mut channel = Channel::new(&mut script, ChannelOptions::default());
        let command = Command::new(0, 0x87, 0x07, 0x11)
            .data(data)
            .expect_response();
        assert!(matches!(
            channel.transmit_ok(&command),
            Err(CardError::Status(StatusWord(0x6A80)))
        ));
    }

    #[test]
    fn uses_extended_length_when_allowed() {
        let data = vec![0x22; 300];
        let command_hex = format!("00870711 00012C {} 0000", "22".repeat(300));
        let mut script = Script::new(&[(&command_hex, "BB 9000")]);
        let mut channel = Channel::new(
            &mut script,
            ChannelOptions {
                extended_length: true,
            },
        );
        let command = Command::new(0, 0x87, 0x07, 0x11)
            .data(data)
            .expect_long_response();
        assert_eq!(&channel.transmit_ok(&command).unwrap()[..], &[0xBB]);
    }

    /// A card that answers every command with what `answer` says, and
    /// counts the commands.
    struct Card<F: FnMut(&[u8]) -> Vec<u8>> {
        answer: F,
        commands: usize,
    }

    impl<F: FnMut(&[u8]) -> Vec<u8>> Transmit for Card<F> {
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.commands += 1;
            // A hang would show as a test that never ends: stop well past
            // any bound the channel is meant to keep.
            assert!(self.commands <= 10 * MAX_GET_RESPONSE_ROUNDS, "no bound");
            Ok((self.answer)(command))
        }
    }

    fn card<F: FnMut(&[u8]) -> Vec<u8>>(answer: F) -> Card<F> {
        Card {
            answer,
            commands: 0,
        }
    }

    fn read_object(link: &mut dyn Transmit) -> Result<Zeroizing<Vec<u8>>, CardError> {
        let command = Command::new(0, 0xCB, 0x3F, 0xFF)
            .data(vec![0x5C, 0x01, 0x7E])
            .expect_long_response();
        Channel::new(link, ChannelOptions::default()).transmit_ok(&command)
    }

    #[test]
    fn a_card_answering_6100_without_data_for_ever_is_an_error_after_one_get_response() {
        let mut card = card(|_| vec![0x61, 0x00]);
        assert!(matches!(
            read_object(&mut card),
            Err(CardError::Malformed(_))
        ));
        assert_eq!(card.commands, 2);
    }

    #[test]
    fn a_card_sending_a_byte_at_a_time_for_ever_is_cut_off_after_the_most_rounds() {
        let mut card = card(|_| vec![0xAA, 0x61, 0x01]);
        assert!(matches!(
            read_object(&mut card),
            Err(CardError::Malformed(_))
        ));
        assert_eq!(card.commands, 1 + MAX_GET_RESPONSE_ROUNDS);
    }

    #[test]
    fn a_card_sending_more_than_any_object_is_cut_off_at_the_data_bound() {
        // More per piece than Le asks for, and more announced for ever.
        let mut card = card(|_| {
            let mut answer = vec![0xBB; 8192];
            answer.extend([0x61, 0x00]);
            answer
        });
        assert!(matches!(
            read_object(&mut card),
            Err(CardError::Malformed(_))
        ));
        assert_eq!(card.commands, MAX_RESPONSE_DATA / 8192 + 1);
    }

    #[test]
    fn a_card_answering_6cxx_for_ever_gets_one_resend() {
        let mut card = card(|_| vec![0x6C, 0x10]);
        let mut channel = Channel::new(&mut card, ChannelOptions::default());
        let result = channel.transmit_ok(&Command::new(0, 0xCA, 0, 0x6E).expect_response());
        assert!(matches!(result, Err(CardError::Status(StatusWord(0x6C10)))));
        assert_eq!(card.commands, 2);
    }

    #[test]
    fn a_get_response_without_data_ends_a_response_that_is_complete() {
        let mut script = Script::new(&[
            ("00CB3FFF 03 5C0102 00", "0102 6102"),
            ("00C00000 02", "9000"),
        ]);
        assert_eq!(&read_le_256(&mut script)[..], &[1, 2]);
    }

    #[test]
    fn a_refused_get_response_is_a_broken_exchange_not_the_commands_status() {
        let mut script = Script::new(&[("00A40400 00", "6F 6110"), ("00C00000 10", "6D00")]);
        let mut channel = Channel::new(&mut script, ChannelOptions::default());
        let result = channel.execute(&Command::new(0, 0xA4, 4, 0).expect_response());
        assert!(matches!(result, Err(CardError::Malformed(_))), "{result:?}");
    }

    fn read_le_256(link: &mut dyn Transmit) -> Zeroizing<Vec<u8>> {
        let command = Command::new(0, 0xCB, 0x3F, 0xFF)
            .data(vec![0x5C, 0x01, 0x02])
            .expect_response();
        Channel::new(link, ChannelOptions::default())
            .transmit_ok(&command)
            .unwrap()
    }

    /// A logger that keeps each thread's records apart, so that tests
    /// running side by side see only their own.
    mod capture {
        use std::cell::RefCell;
        use std::sync::Once;

        thread_local! {
            static RECORDS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
        }

        struct Capture;

        impl log::Log for Capture {
            fn enabled(&self, _: &log::Metadata<'_>) -> bool {
                true
            }

            fn log(&self, record: &log::Record<'_>) {
                RECORDS.with(|records| records.borrow_mut().push(record.args().to_string()));
            }

            fn flush(&self) {}
        }

        static CAPTURE: Capture = Capture;

        /// Captures this thread's records at trace level from now on.
        pub fn start() {
            static INSTALL: Once = Once::new();
            INSTALL.call_once(|| {
                log::set_logger(&CAPTURE).expect("no other logger in the unit tests");
                log::set_max_level(log::LevelFilter::Trace);
            });
            RECORDS.with(|records| records.borrow_mut().clear());
        }

        /// This thread's records since [`start`], one string.
        pub fn text() -> String {
            RECORDS.with(|records| records.borrow().join("\n"))
        }
    }

    /// Runs `command` against `script` with trace logging and returns the
    /// response data and the log.
    fn traced(script: &mut Script, command: &Command, extended: bool) -> (Vec<u8>, String) {
        capture::start();
        let options = ChannelOptions {
            extended_length: extended,
        };
        let data = Channel::new(script, options).transmit_ok(command).unwrap();
        assert!(script.steps.is_empty());
        (data.to_vec(), capture::text())
    }

    #[test]
    fn the_trace_shows_response_data_of_ordinary_commands() {
        let mut script =
            Script::new(&[("00CA006E 00", "C0FFEE 6102"), ("00C00000 02", "F00D 9000")]);
        let command = Command::new(0, 0xCA, 0x00, 0x6E).expect_response();
        let (data, log) = traced(&mut script, &command, false);
        assert_eq!(data, [0xC0, 0xFF, 0xEE, 0xF0, 0x0D]);
        assert!(log.contains("C0FFEE") && log.contains("F00D"), "{log}");
    }

    #[test]
    fn sensitive_responses_stay_out_of_the_trace_through_get_response() {
        let mut script = Script::new(&[
            ("002A8086 02 0A0B 00", "C0FFEE 6102"),
            ("00C00000 02", "F00D 9000"),
        ]);
        let command = Command::new(0, 0x2A, 0x80, 0x86)
            .data(vec![0x0A, 0x0B])
            .expect_response()
            .redacted();
        let (data, log) = traced(&mut script, &command, false);
        assert_eq!(data, [0xC0, 0xFF, 0xEE, 0xF0, 0x0D]);
        assert!(!log.contains("C0FFEE") && !log.contains("F00D"), "{log}");
        assert!(!log.contains("0A0B"), "command data in the trace: {log}");
        assert!(
            log.contains("00 C0 00 00"),
            "GET RESPONSE not traced: {log}"
        );
    }

    #[test]
    fn sensitive_responses_stay_out_of_the_trace_through_a_resend_after_6cxx() {
        let mut script = Script::new(&[("00CA0000 00", "6C02"), ("00CA0000 02", "ABCD 9000")]);
        let command = Command::new(0, 0xCA, 0, 0).expect_response().redacted();
        let (data, log) = traced(&mut script, &command, false);
        assert_eq!(data, [0xAB, 0xCD]);
        assert!(!log.contains("ABCD"), "{log}");
    }

    #[test]
    fn sensitive_chains_stay_out_of_the_trace() {
        let first = format!("10200080 FF {}", "5A".repeat(255));
        let second = format!("00200080 2D {} 00", "5A".repeat(45));
        let mut script = Script::new(&[
            (&first, "9000"),
            (&second, "BEEF 6101"),
            ("00C00000 01", "42 9000"),
        ]);
        let command = Command::new(0, 0x20, 0x00, 0x80)
            .secret_data(Zeroizing::new(vec![0x5A; 300]))
            .expect_response();
        let (data, log) = traced(&mut script, &command, false);
        assert_eq!(data, [0xBE, 0xEF, 0x42]);
        assert!(!log.contains("5A5A") && !log.contains("BEEF"), "{log}");
    }

    #[test]
    fn sensitive_extended_length_responses_stay_out_of_the_trace() {
        let command_hex = format!("002A8086 00012C {} 0000", "5A".repeat(300));
        let mut script = Script::new(&[(&command_hex, "CAFE 6101"), ("00C00000 01", "77 9000")]);
        let command = Command::new(0, 0x2A, 0x80, 0x86)
            .data(vec![0x5A; 300])
            .expect_long_response()
            .redacted();
        let (data, log) = traced(&mut script, &command, true);
        assert_eq!(data, [0xCA, 0xFE, 0x77]);
        assert!(!log.contains("CAFE") && !log.contains("5A5A"), "{log}");
    }

    #[test]
    fn rejects_responses_without_status() {
        let mut script = Script::new(&[("00A40400 00", "90")]);
        let mut channel = Channel::new(&mut script, ChannelOptions::default());
        let result = channel.execute(&Command::new(0, 0xA4, 4, 0).expect_response());
        assert!(matches!(result, Err(CardError::Malformed(_))));
    }
}
