//! Command and response APDUs (ISO/IEC 7816-4 §5.1), short and extended.

use super::{CardError, StatusWord};
use zeroize::Zeroizing;

/// A command APDU. The data field is zeroized on drop, since it may carry a
/// PIN; `sensitive` commands have their data and their response data
/// redacted from traces.
#[derive(Clone)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (may be empty).
    pub data: Zeroizing<Vec<u8>>,
    /// Expected response length: `None` = no response data expected,
    /// `Some(n)` = up to n bytes (256 encodes as short `00`, 65536 as
    /// extended `0000`).
    pub le: Option<usize>,
    /// Keep the data field and the response data out of traces: PINs and
    /// keys in the command, decrypted data and shared secrets in the
    /// response.
    pub sensitive: bool,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02X} {:02X} {:02X} {:02X}",
            self.cla, self.ins, self.p1, self.p2
        )?;
        if !self.data.is_empty() {
            if self.sensitive {
                write!(f, " Lc={} <redacted>", self.data.len())?;
            } else {
                write!(f, " Lc={} {}", self.data.len(), hex(&self.data))?;
            }
        }
        if let Some(le) = self.le {
            write!(f, " Le={le}")?;
        }
        Ok(())
    }
}

/// Upper-case hex of `bytes`, for traces and serial numbers.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

impl Command {
    /// A command with no data and no response data expected.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Zeroizing::new(Vec::new()),
            le: None,
            sensitive: false,
        }
    }

    /// Sets the data field.
    pub fn data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = Zeroizing::new(data.into());
        self
    }

    /// Sets the data field and marks it secret (redacted in traces).
    pub fn secret_data(mut self, data: Zeroizing<Vec<u8>>) -> Self {
        self.data = data;
        self.sensitive = true;
        self
    }

    /// Marks the command sensitive: its data and its response data (a
    /// decrypted block, a shared secret) stay out of traces.
    pub fn redacted(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Asks for response data, up to 256 bytes per APDU (more follows
    /// through `61xx`).
    pub fn expect_response(mut self) -> Self {
        self.le = Some(256);
        self
    }

    /// Asks for a response that may be long (a certificate): Le = `0000`
    /// where extended length is in use, otherwise `00` and `61xx`.
    pub fn expect_long_response(mut self) -> Self {
        self.le = Some(65_536);
        self
    }

    /// Whether this command needs the extended-length encoding.
    pub fn needs_extended(&self) -> bool {
        self.data.len() > 255 || self.le.is_some_and(|le| le > 256)
    }

    /// Encodes the command. `extended` selects the extended-length form
    /// (3-byte Lc, 2- or 3-byte Le); otherwise data must fit in 255 bytes.
    pub fn encode(&self, extended: bool) -> Result<Zeroizing<Vec<u8>>, CardError> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.data.len() + 9));
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let lc = self.data.len();
        if extended {
            if lc > 65_535 {
                return Err(CardError::CommandTooLong(lc));
            }
            if lc > 0 {
                out.push(0);
                out.extend_from_slice(&(lc as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                let le = if le >= 65_536 { 0 } else { le as u16 };
                if lc == 0 {
                    out.push(0);
                }
                out.extend_from_slice(&le.to_be_bytes());
            }
        } else {
            if lc > 255 {
                return Err(CardError::CommandTooLong(lc));
            }
            if lc > 0 {
                out.push(lc as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                out.push(if le >= 256 { 0 } else { le as u8 });
            }
        }
        Ok(out)
    }
}

/// A response APDU: data and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data (may be empty).
    pub data: Zeroizing<Vec<u8>>,
    /// The status word.
    pub sw: StatusWord,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} bytes)", self.sw, self.data.len())
    }
}

impl Response {
    /// Splits a raw response into data and status word.
    pub fn parse(raw: &[u8]) -> Result<Self, CardError> {
        if raw.len() < 2 {
            return Err(CardError::Malformed("response shorter than a status word"));
        }
        let (data, sw) = raw.split_at(raw.len() - 2);
        Ok(Response {
            data: Zeroizing::new(data.to_vec()),
            sw: StatusWord::new(sw[0], sw[1]),
        })
    }

    /// The data, if the status is `9000`; otherwise the status as an error.
    pub fn success(self) -> Result<Zeroizing<Vec<u8>>, CardError> {
        if self.sw.is_success() {
            Ok(self.data)
        } else {
            Err(CardError::Status(self.sw))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_four_cases_short() {
        let case1 = Command::new(0x00, 0xA4, 0x04, 0x00);
        assert_eq!(&case1.encode(false).unwrap()[..], &[0x00, 0xA4, 0x04, 0x00]);
        let case2 = Command::new(0x00, 0xCB, 0x3F, 0xFF).expect_response();
        assert_eq!(
            &case2.encode(false).unwrap()[..],
            &[0x00, 0xCB, 0x3F, 0xFF, 0x00]
        );
        let case3 = Command::new(0x00, 0x20, 0x00, 0x80).data(vec![1, 2]);
        assert_eq!(
            &case3.encode(false).unwrap()[..],
            &[0x00, 0x20, 0x00, 0x80, 2, 1, 2]
        );
        let case4 = Command::new(0x00, 0x87, 0x11, 0x9A)
            .data(vec![9])
            .expect_response();
        assert_eq!(
            &case4.encode(false).unwrap()[..],
            &[0x00, 0x87, 0x11, 0x9A, 1, 9, 0]
        );
    }

    #[test]
    fn encodes_extended_forms() {
        let case2 = Command::new(0x00, 0xCB, 0x3F, 0xFF).expect_long_response();
        assert_eq!(
            &case2.encode(true).unwrap()[..],
            &[0x00, 0xCB, 0x3F, 0xFF, 0, 0, 0]
        );
        let data = vec![0xAB; 300];
        let case4 = Command::new(0x00, 0x87, 0x07, 0x9A)
            .data(data)
            .expect_long_response();
        let encoded = case4.encode(true).unwrap();
        assert_eq!(&encoded[..7], &[0x00, 0x87, 0x07, 0x9A, 0x00, 0x01, 0x2C]);
        assert_eq!(encoded.len(), 4 + 3 + 300 + 2);
        assert_eq!(&encoded[encoded.len() - 2..], &[0, 0]);
        assert!(case4.needs_extended());
    }

    #[test]
    fn refuses_long_data_in_short_form() {
        let command = Command::new(0, 0x87, 0, 0).data(vec![0; 256]);
        assert!(matches!(
            command.encode(false),
            Err(CardError::CommandTooLong(256))
        ));
    }

    #[test]
    fn parses_responses() {
        let response = Response::parse(&[1, 2, 0x90, 0x00]).unwrap();
        assert_eq!(&response.data[..], &[1, 2]);
        assert!(response.sw.is_success());
        assert!(Response::parse(&[0x90]).is_err());
        assert!(Response::parse(&[]).is_err());
    }

    #[test]
    fn redacts_sensitive_data_in_debug() {
        let command =
            Command::new(0, 0x20, 0, 0x80).secret_data(Zeroizing::new(b"123456".to_vec()));
        let shown = format!("{command:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("313233"));
    }
}
