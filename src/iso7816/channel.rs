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

use super::{apdu::hex, CardError, Command, Response};
use crate::transport::Transmit;
use zeroize::Zeroizing;

/// The most response data the channel collects for one command; a card that
/// keeps answering `61xx` beyond this is misbehaving.
const MAX_RESPONSE_DATA: usize = 1 << 20;

/// The most GET RESPONSE commands the channel sends for one command: a
/// 64 KiB certificate in pieces of 64 bytes, when cards send up to 256.
const MAX_GET_RESPONSE_ROUNDS: usize = 1024;

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
                Ok(response) if !matches!(response.sw.0, 0x6700 | 0x6D00 | 0x6E00 | 0x6A81) => {
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
    fn collect_remaining(&mut self, first: Response, sensitive: bool) -> Result<Response, CardError> {
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
                return Err(CardError::Malformed("card keeps announcing more response data"));
            }
            let mut get_response = Command::new(0x00, 0xC0, 0x00, 0x00);
            get_response.le = Some(remaining);
            get_response.sensitive = sensitive;
            let next = self.exchange(&get_response, false)?;
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

    /// Sends `command` and insists on `9000`.
    pub fn transmit_ok(&mut self, command: &Command) -> Result<Zeroizing<Vec<u8>>, CardError> {
        self.execute(command)?.success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso7816::StatusWord;
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

    #[test]
    fn rejects_responses_without_status() {
        let mut script = Script::new(&[("00A40400 00", "90")]);
        let mut channel = Channel::new(&mut script, ChannelOptions::default());
        let result = channel.execute(&Command::new(0, 0xA4, 4, 0).expect_response());
        assert!(matches!(result, Err(CardError::Malformed(_))));
    }
}
