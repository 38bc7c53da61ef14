//! Reading a PKCS#15 card's files with as few APDUs as the data allows:
//! directory files stop at the first `00`/`FF` filler (or the end of the
//! file), a single DER element (TokenInfo, a certificate) is read as far
//! as its own header says, a data object's file to its end.

use super::cache::{self, FileMemo};
use crate::card::Transaction;
use crate::iso7816::{commands, CardError, StatusWord};
use crate::pkcs15::Path;
use std::sync::{Mutex, MutexGuard};

/// The largest file this engine reads (a certificate chain is far less).
const MAX_FILE: usize = commands::READ_BINARY_MAX_OFFSET + 1;
/// `6282`: end of file reached before Le bytes (ISO/IEC 7816-4 §5.6).
const END_OF_FILE: StatusWord = StatusWord(0x6282);
/// `6B00`: offset outside the file.
const WRONG_OFFSET: StatusWord = StatusWord(0x6B00);

/// How much of a file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// A directory file: elements up to the first filler byte.
    Objects,
    /// One DER element, as long as its header says.
    Element,
    /// The whole file (a data object's value).
    Whole,
}

/// Reads files of the application DF in chunks of `max_read` bytes.
#[derive(Debug, Clone)]
pub struct FileReader<'a> {
    /// Bytes per READ BINARY (1 to 256).
    pub max_read: usize,
    /// The application DF's path from the MF (relative paths start there).
    pub application: Vec<u8>,
    /// The file (path from the MF) the card has selected now, if the
    /// reader's first read may skip its SELECT.
    pub selected: Option<Vec<u8>>,
    /// The files of the card read under way: served from the disk cache
    /// where the card proved them unchanged, and recorded for it.
    pub memo: Option<&'a Mutex<FileMemo>>,
}

impl FileReader<'_> {
    /// Selects the file at `path` (absolute from `3F00`, or relative to the
    /// application DF) and reads what `extent` asks for; a path with a
    /// length reads exactly that part. `Ok(None)`: the card keeps the file
    /// from us (security status), has no such file, or (for one element)
    /// holds no whole DER element there. During a card read under a change
    /// counter ([`FileMemo`]), a file the cache entry holds comes from there.
    pub fn read(
        &self,
        card: &mut Transaction,
        path: &Path,
        extent: Extent,
    ) -> Result<Option<Vec<u8>>, CardError> {
        let file = absolute(&self.application, &path.efid_or_path);
        let memo = self.memo.zip(cache::file_name(&file, path, extent));
        if let Some((memo, name)) = &memo {
            if let Some(answer) = lock(memo).lookup(name) {
                return Ok(answer);
            }
        }
        let answer = self.read_from_card(card, &file, path, extent)?;
        if let Some((memo, name)) = &memo {
            lock(memo).note(name, &answer);
        }
        Ok(answer)
    }

    /// [`FileReader::read`] from the card, `file` the path from the MF.
    fn read_from_card(
        &self,
        card: &mut Transaction,
        file: &[u8],
        path: &Path,
        extent: Extent,
    ) -> Result<Option<Vec<u8>>, CardError> {
        if self.selected.as_deref() != Some(file) {
            let select = card.execute(&commands::select_path(file))?;
            match select.sw {
                StatusWord::SUCCESS => {}
                StatusWord::NOT_FOUND => return Ok(None),
                other => return Err(CardError::Status(other)),
            }
        }
        let start = path.index.map_or(0, |i| i as usize);
        let wanted = path.length.map(|l| l as usize);
        let mut data = Vec::new();
        loop {
            let limit = match (wanted, extent) {
                (Some(length), _) => Some(length),
                (None, Extent::Element) => match element_length(&data) {
                    Ok(length) => length,
                    Err(_) => break,
                },
                (None, Extent::Objects) => objects_end(&data).map(|_| data.len()),
                (None, Extent::Whole) => None,
            };
            let remaining = limit.map_or(self.max_read, |l| l.saturating_sub(data.len()));
            if remaining == 0 || data.len() >= MAX_FILE {
                break;
            }
            let offset = start + data.len();
            let offset = u16::try_from(offset)
                .ok()
                .filter(|o| usize::from(*o) <= commands::READ_BINARY_MAX_OFFSET)
                .ok_or(CardError::Malformed("PKCS#15 file too large"))?;
            let asked = remaining.min(self.max_read);
            let response = card.execute(&commands::read_binary(offset, asked))?;
            match response.sw {
                StatusWord::SUCCESS | END_OF_FILE => {}
                WRONG_OFFSET if !data.is_empty() => break,
                StatusWord::SECURITY_STATUS_NOT_SATISFIED => return Ok(None),
                other => return Err(CardError::Status(other)),
            }
            if response.data.len() > asked {
                return Err(CardError::Malformed("READ BINARY answered more than asked"));
            }
            data.extend_from_slice(&response.data);
            if response.data.len() < asked || response.sw == END_OF_FILE {
                break;
            }
        }
        if let (Extent::Element, None) = (extent, wanted) {
            match element_length(&data) {
                Ok(Some(length)) if length <= data.len() => data.truncate(length),
                _ => {
                    log::warn!("PKCS#15 file is not one whole DER element");
                    return Ok(None);
                }
            }
        }
        Ok(Some(data))
    }
}

/// The memo, locked. A poisoned one only means a panic elsewhere: its data
/// stays consistent (each change is one push).
fn lock(memo: &Mutex<FileMemo>) -> MutexGuard<'_, FileMemo> {
    memo.lock().unwrap_or_else(|e| e.into_inner())
}

/// `path` from the MF: one that does not start at `3F00` is relative to
/// the application DF (ISO/IEC 7816-15 §8.2: a path in the application's
/// files is relative to its DF unless it starts at the MF).
pub fn absolute(application: &[u8], path: &[u8]) -> Vec<u8> {
    if path.starts_with(&[0x3F, 0x00]) {
        return path.to_vec();
    }
    [application, path].concat()
}

/// The whole length (header and value) of the DER element at the start of
/// `data`, once its header has arrived.
fn element_length(data: &[u8]) -> Result<Option<usize>, CardError> {
    let mut pos = 1;
    if data.is_empty() {
        return Ok(None);
    }
    if data[0] & 0x1F == 0x1F {
        // A multi-byte tag: continuation bytes have bit 8 set (at most 4).
        loop {
            let Some(&byte) = data.get(pos) else {
                return Ok(None);
            };
            pos += 1;
            if byte & 0x80 == 0 {
                break;
            }
            if pos > 4 {
                return Err(CardError::Malformed("PKCS#15 tag too long"));
            }
        }
    }
    let Some(&first) = data.get(pos) else {
        return Ok(None);
    };
    pos += 1;
    let length = match first {
        0..=0x7F => usize::from(first),
        0x81..=0x83 => {
            let count = usize::from(first & 0x7F);
            let Some(bytes) = data.get(pos..pos + count) else {
                return Ok(None);
            };
            pos += count;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        }
        _ => return Err(CardError::Malformed("PKCS#15 length not definite")),
    };
    Ok(Some(pos + length))
}

/// Where the objects of a directory file in `data` end: at a `00`/`FF`
/// filler byte where an element would start. `None` while an element is
/// incomplete or none has ended the list yet.
fn objects_end(data: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while pos < data.len() {
        if matches!(data[pos], 0x00 | 0xFF) {
            return Some(pos);
        }
        match element_length(&data[pos..]) {
            Ok(Some(length)) if pos + length <= data.len() => pos += length,
            Ok(_) => return None,
            // Malformed: the parser reports it; nothing more to read.
            Err(_) => return Some(pos),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_lengths_come_from_the_header() {
        assert_eq!(element_length(&[]).unwrap(), None);
        assert_eq!(element_length(&[0x30]).unwrap(), None);
        assert_eq!(element_length(&[0x30, 0x03]).unwrap(), Some(5));
        assert_eq!(element_length(&[0x30, 0x82, 0x03]).unwrap(), None);
        assert_eq!(
            element_length(&[0x30, 0x82, 0x03, 0x10]).unwrap(),
            Some(0x314)
        );
        assert_eq!(element_length(&[0xBF, 0x81, 0x01, 0x00]).unwrap(), Some(4));
        assert!(element_length(&[0x30, 0x80]).is_err());
        assert!(element_length(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
    }

    #[test]
    fn directory_files_end_at_filler() {
        assert_eq!(objects_end(&[0x30, 0x01, 0xAA, 0x00, 0x00]), Some(3));
        assert_eq!(objects_end(&[0x30, 0x01, 0xAA, 0xFF]), Some(3));
        assert_eq!(objects_end(&[0x30, 0x01, 0xAA]), None);
        assert_eq!(objects_end(&[0x30, 0x05, 0xAA]), None);
        assert_eq!(objects_end(&[0x00]), Some(0));
    }

    #[test]
    fn relative_paths_are_below_the_application() {
        let application = [0x3F, 0, 0x50, 0x15];
        assert_eq!(
            absolute(&application, &[0x44, 0x01]),
            [0x3F, 0, 0x50, 0x15, 0x44, 0x01]
        );
        assert_eq!(
            absolute(&application, &[0x3F, 0, 0x2F, 0]),
            [0x3F, 0, 0x2F, 0]
        );
    }
}
