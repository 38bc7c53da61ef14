//! The disk cache of a PKCS#15 card: the files [`FileReader`] read (ODF,
//! TokenInfo, the directory files, the certificates), remembered under the
//! card's serial number and used while the profile's change counter
//! ([`ChangeCounter`]), read in the same transaction, is the one they were
//! read under. A card without such a counter is never cached: nothing else
//! a PKCS#15 card shows cheaply covers keys, certificates and PIN objects.
//!
//! [`FileReader`]: super::files::FileReader

use super::files::Extent;
use crate::card::Transaction;
use crate::iso7816::{CardError, Command, StatusWord};
use crate::pkcs15::Path;
use crate::profile::schema::ChangeCounter;
use crate::profile::{Record, RecordKind};
use std::sync::Mutex;

/// Longest name of a remembered file (the cache's limit).
const MAX_NAME: usize = 32;
/// A remembered answer: the card had no file there (or kept it from us).
const ABSENT: u8 = 0x00;
/// A remembered answer: the file's bytes follow.
const PRESENT: u8 = 0x01;

/// The card's change counter, read at the start of a card read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeProof {
    /// The card's serial number: what names its cache entry.
    pub serial: Vec<u8>,
    /// The counter.
    pub counter: Vec<u8>,
}

/// Sends the profile's change-counter command; `None` when the card does
/// not answer it with enough bytes (then nothing is cached).
pub fn read_proof(
    card: &mut Transaction,
    counter: &ChangeCounter,
) -> Result<Option<ChangeProof>, CardError> {
    let Ok(([cla, ins, p1, p2], le)) = counter.header() else {
        return Ok(None);
    };
    let mut command = Command::new(cla, ins, p1, p2);
    command.le = Some(le);
    let response = card.execute(&command)?;
    if response.sw != StatusWord::SUCCESS {
        log::debug!(
            "no change counter ({}): the card is not cached",
            response.sw
        );
        return Ok(None);
    }
    let part = |[start, end]: [usize; 2]| response.data.get(start..end).map(<[u8]>::to_vec);
    Ok(match (part(counter.serial), part(counter.counter)) {
        (Some(serial), Some(counter)) => Some(ChangeProof { serial, counter }),
        _ => None,
    })
}

/// Ends a card read's use of the memo when dropped (a read that fails
/// half-way leaves no file to be served later).
pub struct Reading<'a>(pub &'a Mutex<FileMemo>);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).end();
    }
}

/// A file read's answer: the bytes, or `None` (no such file, or kept from
/// us).
type Answer = Option<Vec<u8>>;

/// The files of one card read: served from a cache entry the proof
/// vouches for, and recorded (so that the module can store them).
#[derive(Debug, Default)]
pub struct FileMemo {
    /// A read is under way with a proof: reads are recorded.
    active: bool,
    /// The proof of this read.
    proof: Option<ChangeProof>,
    /// The remembered files, by name (from an entry the proof vouches for).
    remembered: Vec<(Vec<u8>, Answer)>,
    /// The files this read used, by name, in order.
    used: Vec<(Vec<u8>, Answer)>,
    /// A file came from `remembered`.
    served: bool,
    /// A file was not in `remembered` and came from the card.
    missed: bool,
}

impl FileMemo {
    /// Starts a card read under `proof` (none: nothing is recorded), with
    /// what `records` (the cache entry for the card's serial) remember when
    /// they were read under the same counter.
    pub fn begin(&mut self, proof: Option<ChangeProof>, records: Option<Vec<Record>>) {
        let remembered = match (&proof, records) {
            (Some(proof), Some(records)) => remembered_files(proof, records),
            _ => None,
        };
        *self = FileMemo {
            active: proof.is_some(),
            proof,
            remembered: remembered.unwrap_or_default(),
            ..FileMemo::default()
        };
    }

    /// Ends the read: later reads (outside a card read) go to the card and
    /// are not recorded. Returns (files came from the cache, the cache
    /// missed a file).
    pub fn end(&mut self) -> (bool, bool) {
        self.active = false;
        self.remembered.clear();
        (self.served, self.missed)
    }

    /// The card's serial number under this read's proof.
    pub fn serial(&self) -> Option<&[u8]> {
        self.proof.as_ref().map(|proof| proof.serial.as_slice())
    }

    /// The remembered answer for the file `name`, if the entry has it.
    pub fn lookup(&mut self, name: &[u8]) -> Option<Answer> {
        if !self.active {
            return None;
        }
        let answer = self
            .remembered
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, answer)| answer.clone());
        match &answer {
            Some(answer) => {
                self.served = true;
                self.record(name, answer.clone());
            }
            None => self.missed = true,
        }
        answer
    }

    /// Records what the card answered for the file `name`.
    pub fn note(&mut self, name: &[u8], answer: &Answer) {
        if self.active {
            self.record(name, answer.clone());
        }
    }

    fn record(&mut self, name: &[u8], answer: Answer) {
        self.used.retain(|(known, _)| known != name);
        self.used.push((name.to_vec(), answer));
    }

    /// What the cache keeps: the proof's counter and every file the last
    /// read used (nothing without a proof).
    pub fn records(&self) -> Vec<Record> {
        let Some(proof) = &self.proof else {
            return Vec::new();
        };
        let mut records = vec![Record::new(RecordKind::Proof, &[], proof.counter.clone())];
        records.extend(self.used.iter().map(|(name, answer)| {
            let data = match answer {
                Some(bytes) => [&[PRESENT][..], bytes].concat(),
                None => vec![ABSENT],
            };
            Record::new(RecordKind::File, name, data)
        }));
        records
    }
}

/// The files of a cache entry, when its counter is the card's and every
/// record is a file this engine wrote; `None` otherwise (the card is read
/// and the entry written anew).
fn remembered_files(proof: &ChangeProof, records: Vec<Record>) -> Option<Vec<(Vec<u8>, Answer)>> {
    let mut counter = None;
    let mut files = Vec::new();
    for record in records {
        match record.kind {
            RecordKind::Proof if record.name.is_empty() && counter.is_none() => {
                counter = Some(record.data);
            }
            RecordKind::File => {
                let answer = match record.data.split_first() {
                    Some((&PRESENT, bytes)) => Some(bytes.to_vec()),
                    Some((&ABSENT, [])) => None,
                    _ => return None,
                };
                files.push((record.name, answer));
            }
            _ => return None,
        }
    }
    if counter.as_deref() != Some(proof.counter.as_slice()) {
        log::debug!("the card's change counter moved: reading the card");
        return None;
    }
    Some(files)
}

/// The name a file read is remembered under: what was asked (the extent,
/// the part of the file) and the file's path from the MF; `None` when that
/// is longer than a cache name may be, or for a data object's value (it
/// may be private: the disk cache holds public data only): the file is
/// then always read.
pub fn file_name(absolute: &[u8], path: &Path, extent: Extent) -> Option<Vec<u8>> {
    let mut name = vec![match extent {
        Extent::Objects => 0x01,
        Extent::Element => 0x02,
        Extent::Whole => return None,
    }];
    for part in [path.index, path.length] {
        match part {
            Some(value) => {
                name.push(0x01);
                name.extend_from_slice(&value.to_be_bytes());
            }
            None => name.push(0x00),
        }
    }
    name.extend_from_slice(absolute);
    (name.len() <= MAX_NAME).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(counter: u8) -> ChangeProof {
        ChangeProof {
            serial: vec![0x12, 0x34],
            counter: vec![0x00, counter],
        }
    }

    fn odf() -> Path {
        Path {
            efid_or_path: vec![0x50, 0x31],
            ..Path::default()
        }
    }

    #[test]
    fn files_come_back_while_the_counter_stands() {
        let name = file_name(&[0x3F, 0, 0x50, 0x15, 0x50, 0x31], &odf(), Extent::Objects).unwrap();
        let mut memo = FileMemo::default();
        memo.begin(Some(proof(7)), None);
        assert_eq!(memo.lookup(&name), None);
        memo.note(&name, &Some(vec![0xA8, 0x00]));
        memo.note(b"gone", &None);
        assert_eq!(memo.end(), (false, true));
        let records = memo.records();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], Record::new(RecordKind::Proof, &[], vec![0, 7]));

        memo.begin(Some(proof(7)), Some(records.clone()));
        assert_eq!(memo.lookup(&name), Some(Some(vec![0xA8, 0x00])));
        assert_eq!(memo.lookup(b"gone"), Some(None));
        assert_eq!(memo.end(), (true, false));
        assert_eq!(memo.records(), records, "the same entry again");
        // Outside a read: nothing served, nothing recorded.
        assert_eq!(memo.lookup(&name), None);

        memo.begin(Some(proof(8)), Some(records.clone()));
        assert_eq!(memo.lookup(&name), None, "the counter moved");
        memo.begin(None, Some(records));
        assert_eq!(memo.lookup(&name), None, "no proof");
        assert!(memo.records().is_empty());
    }

    #[test]
    fn entries_with_foreign_records_are_not_used() {
        let file = |data: Vec<u8>| Record::new(RecordKind::File, b"f", data);
        let counter = Record::new(RecordKind::Proof, &[], vec![0, 7]);
        for records in [
            vec![file(vec![PRESENT])],
            vec![counter.clone(), file(vec![])],
            vec![counter.clone(), file(vec![ABSENT, 0])],
            vec![counter.clone(), file(vec![0x02])],
            vec![counter.clone(), counter.clone()],
            vec![
                counter.clone(),
                Record::new(RecordKind::Certificate, &[1], vec![]),
            ],
        ] {
            assert!(
                remembered_files(&proof(7), records.clone()).is_none(),
                "{records:?}"
            );
        }
        assert!(remembered_files(&proof(7), vec![counter, file(vec![PRESENT, 1])]).is_some());
    }

    #[test]
    fn names_say_what_was_read_and_fit_the_cache() {
        let application = [0x3F, 0, 0x50, 0x15, 0x50, 0x31];
        let whole = file_name(&application, &odf(), Extent::Objects).unwrap();
        let element = file_name(&application, &odf(), Extent::Element).unwrap();
        let part = Path {
            index: Some(4),
            length: Some(10),
            ..odf()
        };
        let part = file_name(&application, &part, Extent::Element).unwrap();
        assert_ne!(whole, element);
        assert_ne!(element, part);
        // Extent, index and length flags (3 bytes) and a 29-byte path fit.
        assert!(file_name(&[0x3F; 29], &odf(), Extent::Objects).is_some());
        assert!(file_name(&[0x3F; 30], &odf(), Extent::Objects).is_none());
    }
}
