//! Certificates in PIV containers (SP 800-73-4 Part 1 Appendix A): read,
//! decompressed within a bound, and turned into the key they describe.

use super::{slot_key, tag, PivApp};
use crate::card::Transaction;
use crate::cert::parse_certificate;
use crate::iso7816::{tlv, CardError};
use crate::profile::{AppError, KeyInfo, KeySlot};
use std::io::Read;

/// Largest certificate the engine accepts after decompression.
pub(super) const MAX_CERTIFICATE: usize = 64 * 1024;

impl PivApp {
    /// A certificate container (SP 800-73-4 Part 1 Appendix A, tags 70/71):
    /// the DER certificate, decompressed when CertInfo says so.
    pub(super) fn read_certificate(
        &self,
        card: &mut Transaction,
        tag: u32,
    ) -> Result<Option<Vec<u8>>, AppError> {
        let Some(object) = self.get_data(card, tag)? else {
            return Ok(None);
        };
        let cert = tlv::find(&object, tag::CERTIFICATE)?
            .ok_or(CardError::Malformed("no certificate in container"))?;
        let cert_info = tlv::find(&object, tag::CERT_INFO)?
            .and_then(|v| v.first().copied())
            .unwrap_or(0);
        if cert.is_empty() {
            return Ok(None);
        }
        if cert_info & 0x01 == 0 {
            return Ok(Some(cert.to_vec()));
        }
        decompress(cert).map(Some)
    }
}

/// The key a certificate container describes, with the slot's rules.
pub(super) fn key_from_certificate(slot: &KeySlot, der: Vec<u8>) -> Option<KeyInfo> {
    let cert = parse_certificate(&der).ok()?;
    Some(slot_key(slot, cert.public_key, Some(der)))
}

/// Inflates a compressed certificate (gzip, or zlib as some cards write it),
/// refusing anything that grows past [`MAX_CERTIFICATE`].
pub(super) fn decompress(data: &[u8]) -> Result<Vec<u8>, AppError> {
    let mut out = Vec::new();
    let limit = MAX_CERTIFICATE as u64 + 1;
    let read = if data.starts_with(&[0x1F, 0x8B]) {
        flate2::read::GzDecoder::new(data)
            .take(limit)
            .read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(data)
            .take(limit)
            .read_to_end(&mut out)
    };
    match read {
        Ok(len) if len <= MAX_CERTIFICATE => Ok(out),
        _ => Err(CardError::Malformed("compressed certificate does not inflate").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompresses_gzip_and_zlib() {
        use flate2::write::{GzEncoder, ZlibEncoder};
        use std::io::Write;
        let data = b"certificate bytes".repeat(10);
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        assert_eq!(decompress(&gz.finish().unwrap()).unwrap(), data);
        let mut zl = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(&data).unwrap();
        assert_eq!(decompress(&zl.finish().unwrap()).unwrap(), data);
        assert!(decompress(&[0x1F, 0x8B, 0x08, 0, 1, 2]).is_err());
    }

    #[test]
    fn refuses_a_decompression_bomb() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; MAX_CERTIFICATE + 10]).unwrap();
        assert!(decompress(&gz.finish().unwrap()).is_err());
    }
}
