//! The whole channel (src/iso7816/channel.rs): one command, framed short or
//! extended, chained, answered by a card whose answers are the fuzz input
//! and which repeats its last answer for ever (a card stuck in `61xx`,
//! `6Cxx` or chaining). More than `MAX_APDUS` APDUs for the one command is
//! a finding: a loop the card drives without a bound.
//!
//! Input: flags (bit 0: channel may use extended length; bits 1-2: what the
//! link knows about extended length), CLA INS P1 P2, an Le selector, a
//! big-endian u16 data length (the data is filler), then the card's
//! answers as frames (`p11card_fuzz::frames`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card::iso7816::{Channel, ChannelOptions, Command};
use p11card::transport::{Transmit, TransportError};
use p11card_fuzz::{check_apdu_bound, frames};
use std::collections::VecDeque;

/// A card that answers with the next frame, then repeats the last one.
struct StuckCard {
    answers: VecDeque<Vec<u8>>,
    last: Vec<u8>,
    sent: usize,
    extended: Option<bool>,
}

impl Transmit for StuckCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        assert!(command.len() >= 4, "a command APDU has a header");
        self.sent += 1;
        check_apdu_bound(self.sent, "one command (Channel::execute)");
        if let Some(next) = self.answers.pop_front() {
            self.last = next;
        }
        Ok(self.last.clone())
    }

    fn extended_length(&self) -> Option<bool> {
        self.extended
    }

    fn note_extended_length(&mut self, works: bool) {
        self.extended = Some(works);
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, cla, ins, p1, p2, le, len_high, len_low, answers @ ..] = data else {
        return;
    };
    let mut card = StuckCard {
        answers: frames(answers),
        last: vec![0x90, 0x00],
        sent: 0,
        extended: match (flags >> 1) & 3 {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        },
    };
    let length = usize::from(u16::from_be_bytes([*len_high, *len_low]));
    let mut command = Command::new(*cla, *ins, *p1, *p2).data(vec![0xA5; length]);
    command.le = match le {
        0 => None,
        1 => Some(256),
        2 => Some(65_536),
        n => Some(usize::from(*n)),
    };
    let options = ChannelOptions {
        extended_length: flags & 1 != 0,
    };
    let mut channel = Channel::new(&mut card, options);
    if let Ok(response) = channel.execute(&command) {
        let _ = response.success();
    }
    // The channel counts what it sent.
    let counted = channel.apdus_sent();
    assert_eq!(counted, card.sent);
});
