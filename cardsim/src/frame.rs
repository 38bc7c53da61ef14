//! What every simulated card application shares below its commands: APDU
//! parsing, the "nothing but SELECT before SELECT" rule, command chaining
//! (ISO/IEC 7816-4 §5.1.1.1), GET RESPONSE after `61xx` (§5.3.4), the
//! [`Misbehaviour`] switches and the APDU log.

use crate::apdu::{sw, Command};
use crate::log::LoggedApdu;
use crate::misbehave::Misbehaviour;

const CLA_CHAIN: u8 = 0x10;
/// The longest command a chain may assemble.
const MAX_CHAIN: usize = 16 * 1024;
pub(crate) const INS_SELECT: u8 = 0xA4;
pub(crate) const INS_GET_RESPONSE: u8 = 0xC0;

/// A command chain in progress: INS P1 P2 and the data so far.
#[derive(Debug, Clone)]
struct Chain {
    header: [u8; 3],
    data: Vec<u8>,
}

/// The framing state of one card: the response waiting for GET RESPONSE,
/// the command chain in progress, the misbehaviour switches and the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct Frame {
    pending: Vec<u8>,
    chain: Option<Chain>,
    pub misbehaviour: Misbehaviour,
    pub log: Vec<LoggedApdu>,
    /// Extended-length APDUs are answered with `6700`.
    pub short_only: bool,
    /// A class byte besides `00`/`10` the application takes (MyEID: `A0`).
    pub proprietary_cla: Option<u8>,
}

impl Frame {
    /// Power-on (or reset): no pending response, no chain. The log and the
    /// switches stay.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.chain = None;
    }

    /// How much response data fits one response.
    fn chunk_size(&self, extended: bool) -> usize {
        let max = if extended { 65536 } else { 256 };
        self.misbehaviour
            .chunk_responses
            .map_or(max, |n| n.clamp(1, max))
    }

    /// Sends up to `chunk` bytes with `9000`, or keeps the rest for GET
    /// RESPONSE and says `61xx`.
    fn send(&mut self, mut data: Vec<u8>, chunk: usize) -> Vec<u8> {
        if data.len() > chunk {
            self.pending = data.split_off(chunk);
            let left = (self.pending.len().min(256) % 256) as u8;
            data.extend([(sw::MORE_DATA >> 8) as u8, left]);
        } else {
            data.extend(sw::OK.to_be_bytes());
        }
        data
    }

    /// Command chaining: `None` while the chain goes on.
    fn chain(&mut self, mut cmd: Command) -> Result<Option<Command>, u16> {
        let header = [cmd.ins, cmd.p1, cmd.p2];
        if let Some(chain) = self.chain.take() {
            if chain.header != header {
                return Err(sw::LAST_COMMAND_EXPECTED);
            }
            let mut data = chain.data;
            data.append(&mut cmd.data);
            cmd.data = data;
        }
        if cmd.data.len() > MAX_CHAIN {
            return Err(sw::WRONG_LENGTH);
        }
        if cmd.cla & CLA_CHAIN == 0 {
            return Ok(Some(cmd));
        }
        let data = std::mem::take(&mut cmd.data);
        self.chain = Some(Chain { header, data });
        Ok(None)
    }
}

/// A card application on top of a [`Frame`]: it sees only complete
/// commands (chains assembled, GET RESPONSE handled) and answers with
/// response data or a status word.
pub(crate) trait Applet {
    /// The GET DATA instruction that [`Misbehaviour::exact_le_get_data`]
    /// applies to.
    const GET_DATA_INS: u8;

    fn frame(&mut self) -> &mut Frame;

    /// Whether the application is selected (before that, only SELECT works).
    fn selected(&self) -> bool;

    /// Executes one complete command.
    fn execute(&mut self, cmd: &Command) -> Result<Vec<u8>, u16>;

    /// Processes one raw command APDU and returns the raw response (data +
    /// SW1 SW2), applying the [`Misbehaviour`] switches, and logs it.
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        let injected = apdu.get(1).and_then(|&ins| {
            let fail_next = &mut self.frame().misbehaviour.fail_next;
            let i = fail_next.iter().position(|&(i, _)| i == ins)?;
            Some(fail_next.remove(i).1)
        });
        let mut response = match injected.map_or_else(|| self.handle(apdu), Err) {
            Ok(response) => response,
            Err(status) => status.to_be_bytes().to_vec(),
        };
        let frame = self.frame();
        if let Some(garbage) = frame.misbehaviour.garbage_next.take() {
            response = garbage;
        } else if let Some(truncation) = frame.misbehaviour.truncate_next.take() {
            truncation.apply(&mut response);
        }
        frame.log.push(LoggedApdu::new(apdu, &response));
        response
    }

    /// Framing: parsing, selection, GET RESPONSE, chaining, response size.
    fn handle(&mut self, apdu: &[u8]) -> Result<Vec<u8>, u16> {
        let pending = std::mem::take(&mut self.frame().pending);
        let cmd = Command::parse(apdu)?;
        if cmd.extended && self.frame().short_only {
            return Err(sw::WRONG_LENGTH);
        }
        if cmd.cla & !CLA_CHAIN != 0 && Some(cmd.cla) != self.frame().proprietary_cla {
            return Err(sw::CLA_NOT_SUPPORTED);
        }
        if !self.selected() && cmd.ins != INS_SELECT {
            return Err(sw::INS_NOT_SUPPORTED);
        }
        if cmd.ins == INS_GET_RESPONSE {
            if (cmd.p1, cmd.p2) != (0, 0) {
                return Err(sw::WRONG_P1P2);
            }
            if pending.is_empty() {
                return Err(sw::CONDITIONS_NOT_SATISFIED);
            }
            let frame = self.frame();
            let chunk = frame.chunk_size(cmd.extended);
            return Ok(frame.send(pending, cmd.ne.unwrap_or(chunk).min(chunk)));
        }
        let Some(cmd) = self.frame().chain(cmd)? else {
            return Ok(sw::OK.to_be_bytes().to_vec());
        };
        let data = self.execute(&cmd)?;
        let frame = self.frame();
        if frame.misbehaviour.exact_le_get_data && cmd.ins == Self::GET_DATA_INS && !cmd.extended {
            let exact = data.len().min(256);
            if cmd.ne != Some(exact) {
                return Err(sw::WRONG_LE | (exact % 256) as u16);
            }
        }
        let chunk = frame.chunk_size(cmd.extended);
        Ok(frame.send(data, chunk))
    }
}
