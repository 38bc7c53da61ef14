//! Where the PKCS#15 application is: the profile's path, or the one EF.DIR
//! gives when the profile's AID selects nothing.

use super::*;

/// EF.DIR, the card's list of applications (ISO/IEC 7816-4 §8.2.1.1).
const EF_DIR: [u8; 4] = [0x3F, 0x00, 0x2F, 0x00];
/// The PIX every PKCS#15 application identifier ends with ("PKCS-15"),
/// whatever the issuer's RID.
const PKCS15_PIX: &[u8] = b"PKCS-15";

impl Pkcs15App {
    /// The application DF's path from the MF: EF.DIR's, if that is how the
    /// application was found, else the profile's.
    pub(super) fn application_path(&self) -> Vec<u8> {
        self.learned()
            .application_from_dir
            .clone()
            .unwrap_or_else(|| self.application.clone())
    }

    /// The PKCS#15 application's path from EF.DIR (`3F00 2F00`, ISO/IEC
    /// 7816-15 §8.2, a transparent file): the first application template
    /// whose AID is PKCS#15's (or ends in the PIX "PKCS-15" under another
    /// RID) and that gives a path. `None`: no EF.DIR, or no such entry.
    pub(super) fn application_in_dir(
        &self,
        card: &mut Transaction,
    ) -> Result<Option<Vec<u8>>, AppError> {
        let dir = Path {
            efid_or_path: EF_DIR.to_vec(),
            ..Path::default()
        };
        let Some(data) = self.reader().read(card, &dir, Extent::Objects)? else {
            return Ok(None);
        };
        let Ok(directory) = p15::parse_dir(&data) else {
            return Ok(None);
        };
        Ok(directory
            .objects
            .into_iter()
            .filter(|a| a.is_pkcs15() || a.aid.ends_with(PKCS15_PIX))
            .find_map(|a| a.path.filter(|p| p.len() >= 2 && p.len() % 2 == 0)))
    }
}
