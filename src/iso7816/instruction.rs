//! Instruction bytes (INS) of the commands the engines send, named after
//! the standard that defines them.

/// An instruction byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Instruction {
    /// SELECT (ISO/IEC 7816-4 §11.2.2).
    Select,
    /// READ BINARY with the offset in P1-P2 (ISO/IEC 7816-4 §11.3.3).
    ReadBinary,
    /// MANAGE SECURITY ENVIRONMENT (ISO/IEC 7816-4 §11.5.11).
    ManageSecurityEnvironment,
    /// VERIFY (ISO/IEC 7816-4 §11.5.6).
    Verify,
    /// CHANGE REFERENCE DATA (ISO/IEC 7816-4 §11.5.7).
    ChangeReferenceData,
    /// RESET RETRY COUNTER (ISO/IEC 7816-4 §11.5.10).
    ResetRetryCounter,
    /// GET DATA with a tag in P1-P2 (ISO/IEC 7816-4 §11.4.3, even INS).
    GetData,
    /// GET DATA with a tag list in the data field (ISO/IEC 7816-4 §11.4.3,
    /// odd INS; PIV's GET DATA, SP 800-73-4 Part 2 §3.1.2).
    GetDataOdd,
    /// GET NEXT DATA (ISO/IEC 7816-4 §11.4.5).
    GetNextData,
    /// SELECT DATA (ISO/IEC 7816-4 §11.4.6).
    SelectData,
    /// GET RESPONSE (ISO/IEC 7816-4 §11.6.2).
    GetResponse,
    /// PERFORM SECURITY OPERATION (ISO/IEC 7816-8 §11).
    PerformSecurityOperation,
    /// INTERNAL AUTHENTICATE (ISO/IEC 7816-4 §11.5.2).
    InternalAuthenticate,
    /// GENERAL AUTHENTICATE (ISO/IEC 7816-4 §11.5.5, odd INS as PIV uses
    /// it, SP 800-73-4 Part 2 §3.2.4).
    GeneralAuthenticate,
    /// GENERAL AUTHENTICATE, even INS (ISO/IEC 7816-4 §11.5.5; the form
    /// PKCS#15 card operating systems such as MyEID take).
    GeneralAuthenticateEven,
    /// GENERATE ASYMMETRIC KEY PAIR (ISO/IEC 7816-8 §5.1).
    GenerateAsymmetricKeyPair,
    /// GET METADATA: Yubico's PIV extension (also in Nitrokey's applet).
    YubicoGetMetadata,
}

impl Instruction {
    /// The INS byte.
    pub const fn code(self) -> u8 {
        match self {
            Instruction::Select => 0xA4,
            Instruction::ReadBinary => 0xB0,
            Instruction::ManageSecurityEnvironment => 0x22,
            Instruction::Verify => 0x20,
            Instruction::ChangeReferenceData => 0x24,
            Instruction::ResetRetryCounter => 0x2C,
            Instruction::GetData => 0xCA,
            Instruction::GetDataOdd => 0xCB,
            Instruction::GetNextData => 0xCC,
            Instruction::SelectData => 0xA5,
            Instruction::GetResponse => 0xC0,
            Instruction::PerformSecurityOperation => 0x2A,
            Instruction::InternalAuthenticate => 0x88,
            Instruction::GeneralAuthenticate => 0x87,
            Instruction::GeneralAuthenticateEven => 0x86,
            Instruction::GenerateAsymmetricKeyPair => 0x47,
            Instruction::YubicoGetMetadata => 0xF7,
        }
    }
}
