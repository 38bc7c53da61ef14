//! Random numbers (PKCS#11 §5.15): the operating system's CSPRNG.

use super::*;

impl Module {
    // ----- random ----------------------------------------------------------

    /// `C_GenerateRandom`: the operating system's CSPRNG, straight into
    /// `out` (of any length: no copy is made).
    pub fn generate_random(&self, handle: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.with_session(handle, |_, _, _| Ok(()))?;
        for chunk in out.chunks_mut(RANDOM_CHUNK) {
            getrandom::getrandom(chunk).map_err(|_| Error::FunctionFailed)?;
        }
        Ok(())
    }
}

/// `C_GenerateRandom` fills the caller's buffer in pieces of this size
/// (one `getrandom` call each).
pub(super) const RANDOM_CHUNK: usize = 4096;
