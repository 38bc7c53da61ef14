//! The ISO/IEC 7816-4 and 7816-8 commands the engines send, built in one
//! place (class `00`). Engines use these and build only what their card
//! does differently (with [`Command::iso`] and a named [`Instruction`]).

use super::{Command, Instruction};
use zeroize::Zeroizing;

/// P1-P2 of PERFORM SECURITY OPERATION: COMPUTE DIGITAL SIGNATURE
/// (ISO/IEC 7816-8 §11.7: the digital signature in the response, the data
/// to be signed in the command).
const PSO_COMPUTE_DIGITAL_SIGNATURE: [u8; 2] = [0x9E, 0x9A];
/// P1-P2 of PERFORM SECURITY OPERATION: DECIPHER (ISO/IEC 7816-8 §11.12:
/// plain value in the response, padding indicator and cryptogram in the
/// command).
const PSO_DECIPHER: [u8; 2] = [0x80, 0x86];
/// SELECT P1: select by DF name (application identifier).
const SELECT_BY_DF_NAME: u8 = 0x04;
/// SELECT P1: select by path from the MF (without the MF's identifier).
const SELECT_BY_PATH_FROM_MF: u8 = 0x08;
/// SELECT P2: no response data (no FCI).
const SELECT_NO_RESPONSE: u8 = 0x0C;
/// The MF's file identifier.
const MF: [u8; 2] = [0x3F, 0x00];
/// The highest offset READ BINARY takes in P1-P2 (bit 8 of P1 clear).
pub const READ_BINARY_MAX_OFFSET: usize = 0x7FFF;
/// VERIFY P1 that resets the verification status (ISO/IEC 7816-4 §11.5.6,
/// SP 800-73-4 Part 2 §3.2.1, OpenPGP card v3.4 §7.2.2).
const VERIFY_RESET: u8 = 0xFF;

impl Command {
    /// A class-`00` command with this instruction, no data, no response.
    pub fn iso(instruction: Instruction, p1: u8, p2: u8) -> Self {
        Command::new(0x00, instruction.code(), p1, p2)
    }
}

/// SELECT of an application by its AID (DF name), first or only
/// occurrence, FCI wanted.
pub fn select_application(aid: &[u8]) -> Command {
    Command::iso(Instruction::Select, SELECT_BY_DF_NAME, 0x00)
        .data(aid.to_vec())
        .expect_response()
}

/// SELECT of the file at `path` (file identifiers, 2 bytes each) from the
/// MF, no FCI wanted. A leading `3F00` is dropped (P1 `08` starts at the
/// MF); a path that is only the MF selects it by its identifier.
pub fn select_path(path: &[u8]) -> Command {
    let below_mf = path.strip_prefix(&MF[..]).unwrap_or(path);
    if below_mf.is_empty() {
        return Command::iso(Instruction::Select, 0x00, SELECT_NO_RESPONSE).data(MF.to_vec());
    }
    Command::iso(
        Instruction::Select,
        SELECT_BY_PATH_FROM_MF,
        SELECT_NO_RESPONSE,
    )
    .data(below_mf.to_vec())
}

/// READ BINARY of up to `le` bytes (1 to 256) of the current EF from
/// `offset` (at most [`READ_BINARY_MAX_OFFSET`]).
pub fn read_binary(offset: u16, le: usize) -> Command {
    let [p1, p2] = (offset & 0x7FFF).to_be_bytes();
    let mut command = Command::iso(Instruction::ReadBinary, p1, p2);
    command.le = Some(le.clamp(1, 256));
    command
}

/// MANAGE SECURITY ENVIRONMENT: SET (P1 `41`: for computation,
/// decipherment, internal authentication and key agreement) of the
/// control reference template `template` (`B6` DST, `B8` CT, `A4` AT)
/// with the data objects in `data`.
pub fn mse_set(template: u8, data: Vec<u8>) -> Command {
    Command::iso(Instruction::ManageSecurityEnvironment, 0x41, template).data(data)
}

/// VERIFY `pin` against the password `reference`.
pub fn verify(reference: u8, pin: Zeroizing<Vec<u8>>) -> Command {
    Command::iso(Instruction::Verify, 0x00, reference).secret_data(pin)
}

/// VERIFY without data: the password's state (`9000` verified, `63Cx`
/// tries left), spending no try.
pub fn verify_status(reference: u8) -> Command {
    Command::iso(Instruction::Verify, 0x00, reference)
}

/// VERIFY with P1 = `FF`: the card forgets that the password was verified.
pub fn verify_reset(reference: u8) -> Command {
    Command::iso(Instruction::Verify, VERIFY_RESET, reference)
}

/// CHANGE REFERENCE DATA of password `reference`: old || new in `data`.
pub fn change_reference_data(reference: u8, data: Zeroizing<Vec<u8>>) -> Command {
    Command::iso(Instruction::ChangeReferenceData, 0x00, reference).secret_data(data)
}

/// What RESET RETRY COUNTER's data holds (ISO/IEC 7816-4 §11.5.10, P1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReset {
    /// The unblocking code, then the new reference data (P1 = `00`).
    UnblockCodeAndNewPin,
    /// The new reference data only, after another verification (P1 = `02`).
    NewPinOnly,
}

/// RESET RETRY COUNTER of password `reference`.
pub fn reset_retry_counter(reference: u8, form: RetryReset, data: Zeroizing<Vec<u8>>) -> Command {
    let p1 = match form {
        RetryReset::UnblockCodeAndNewPin => 0x00,
        RetryReset::NewPinOnly => 0x02,
    };
    Command::iso(Instruction::ResetRetryCounter, p1, reference).secret_data(data)
}

/// GET DATA of the data object `tag` (P1-P2), a long answer allowed.
pub fn get_data(tag: u16) -> Command {
    let [p1, p2] = tag.to_be_bytes();
    Command::iso(Instruction::GetData, p1, p2).expect_long_response()
}

/// GET DATA (odd INS) of the current DF (`3FFF`) with a tag list in the
/// data field (PIV: `5C` with the object's tag).
pub fn get_data_by_tag_list(tag_list: Vec<u8>) -> Command {
    Command::iso(Instruction::GetDataOdd, 0x3F, 0xFF)
        .data(tag_list)
        .expect_long_response()
}

/// GET NEXT DATA: the next occurrence of the data object `tag`.
pub fn get_next_data(tag: u16) -> Command {
    let [p1, p2] = tag.to_be_bytes();
    Command::iso(Instruction::GetNextData, p1, p2).expect_long_response()
}

/// SELECT DATA of occurrence `occurrence` of the data object that
/// `tag_path` names (P2 = `04`: select the next instance, by tag path).
pub fn select_data(occurrence: u8, tag_path: Vec<u8>) -> Command {
    Command::iso(Instruction::SelectData, occurrence, 0x04).data(tag_path)
}

/// GET RESPONSE for up to `le` bytes.
pub fn get_response(le: usize) -> Command {
    let mut command = Command::iso(Instruction::GetResponse, 0x00, 0x00);
    command.le = Some(le);
    command
}

/// PERFORM SECURITY OPERATION: COMPUTE DIGITAL SIGNATURE over `data`.
pub fn pso_compute_digital_signature(data: Vec<u8>) -> Command {
    let [p1, p2] = PSO_COMPUTE_DIGITAL_SIGNATURE;
    Command::iso(Instruction::PerformSecurityOperation, p1, p2)
        .data(data)
        .expect_long_response()
        .redacted()
}

/// PERFORM SECURITY OPERATION: DECIPHER of `data`; its answer (a message,
/// a shared secret) stays out of traces.
pub fn pso_decipher(data: Vec<u8>) -> Command {
    let [p1, p2] = PSO_DECIPHER;
    Command::iso(Instruction::PerformSecurityOperation, p1, p2)
        .data(data)
        .expect_long_response()
        .redacted()
}

/// INTERNAL AUTHENTICATE with `data` (the key chosen before, P1-P2 `00`).
pub fn internal_authenticate(data: Vec<u8>) -> Command {
    Command::iso(Instruction::InternalAuthenticate, 0x00, 0x00)
        .data(data)
        .expect_long_response()
        .redacted()
}

/// GENERAL AUTHENTICATE with `algorithm` and key `reference`, the dynamic
/// authentication template in `data`; its answer (a signature, a
/// decrypted block, a shared secret) stays out of traces.
pub fn general_authenticate(algorithm: u8, reference: u8, data: Vec<u8>) -> Command {
    Command::iso(Instruction::GeneralAuthenticate, algorithm, reference)
        .data(data)
        .expect_long_response()
        .redacted()
}

/// GENERAL AUTHENTICATE with the even INS (`86`, P1-P2 `00 00`: the key
/// and algorithm chosen by MSE:SET before) and `data`.
pub fn general_authenticate_even(data: Vec<u8>) -> Command {
    Command::iso(Instruction::GeneralAuthenticateEven, 0x00, 0x00)
        .data(data)
        .expect_long_response()
        .redacted()
}

/// GENERATE ASYMMETRIC KEY PAIR with `p1` (OpenPGP: `81` reads the
/// existing public key) and the control reference template in `data`.
pub fn generate_asymmetric_key_pair(p1: u8, data: Vec<u8>) -> Command {
    Command::iso(Instruction::GenerateAsymmetricKeyPair, p1, 0x00)
        .data(data)
        .expect_long_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(command: &Command) -> String {
        super::super::apdu::hex(&command.encode(false).unwrap())
    }

    #[test]
    fn builds_the_iso_7816_4_commands() {
        assert_eq!(
            bytes(&select_application(&[0xA0, 0x01])),
            "00A4040002A00100"
        );
        let pin = Zeroizing::new(b"1234".to_vec());
        let verify = verify(0x81, pin);
        assert!(verify.sensitive);
        assert_eq!(bytes(&verify), "002000810431323334");
        assert_eq!(bytes(&verify_status(0x80)), "00200080");
        assert_eq!(bytes(&verify_reset(0x80)), "0020FF80");
        let change = change_reference_data(0x81, Zeroizing::new(vec![1, 2]));
        assert!(change.sensitive);
        assert_eq!(bytes(&change), "00240081020102");
        let reset = reset_retry_counter(
            0x80,
            RetryReset::UnblockCodeAndNewPin,
            Zeroizing::new(vec![9]),
        );
        assert_eq!(bytes(&reset), "002C00800109");
        let reset = reset_retry_counter(0x81, RetryReset::NewPinOnly, Zeroizing::new(vec![9]));
        assert_eq!(bytes(&reset), "002C02810109");
        assert_eq!(bytes(&get_data(0x006E)), "00CA006E00");
        assert_eq!(
            bytes(&get_data_by_tag_list(vec![0x5C, 0x01, 0x7E])),
            "00CB3FFF035C017E00"
        );
        assert_eq!(bytes(&get_next_data(0x7F21)), "00CC7F2100");
        assert_eq!(bytes(&select_data(1, vec![0x60, 0x00])), "00A50104026000");
        assert_eq!(bytes(&get_response(0x10)), "00C0000010");
        assert_eq!(
            bytes(&select_path(&[0x3F, 0, 0x50, 0x15])),
            "00A4080C025015"
        );
        assert_eq!(bytes(&select_path(&[0x3F, 0])), "00A4000C023F00");
        assert_eq!(bytes(&read_binary(0x0102, 256)), "00B0010200");
        assert_eq!(bytes(&read_binary(0, 4)), "00B0000004");
        assert_eq!(
            bytes(&mse_set(0xB6, vec![0x80, 0x01, 0x00])),
            "002241B603800100"
        );
    }

    #[test]
    fn builds_the_iso_7816_8_commands_with_secret_answers() {
        let cds = pso_compute_digital_signature(vec![0xAB]);
        assert!(cds.sensitive);
        assert_eq!(bytes(&cds), "002A9E9A01AB00");
        let decipher = pso_decipher(vec![0x00, 0xCD]);
        assert!(decipher.sensitive);
        assert_eq!(bytes(&decipher), "002A80860200CD00");
        let internal = internal_authenticate(vec![0xEF]);
        assert!(internal.sensitive);
        assert_eq!(bytes(&internal), "0088000001EF00");
        let general = general_authenticate(0x11, 0x9A, vec![0x7C, 0x00]);
        assert!(general.sensitive);
        assert_eq!(bytes(&general), "0087119A027C0000");
        assert_eq!(
            bytes(&generate_asymmetric_key_pair(0x81, vec![0xB6, 0x00])),
            "0047810002B60000"
        );
    }
}
