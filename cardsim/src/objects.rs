//! The data objects a simulated PIV card holds from the start: CHUID, CCC
//! and Discovery (SP 800-73-4 Part 1 §3.1).

use crate::apdu::{put_tlv, tlv};
use crate::card::{CHUID_GUID, PIV_AID};

/// The CHUID's FASC-N (tag 30): the SP 800-73 sample, agency 9999.
const FASC_N: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08,
    0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

pub(crate) fn default_chuid() -> Vec<u8> {
    chuid_signed_with(&[])
}

/// The default CHUID with `signature` as its issuer asymmetric signature
/// (tag 3E; empty = unsigned).
pub(crate) fn chuid_signed_with(signature: &[u8]) -> Vec<u8> {
    let mut chuid = Vec::new();
    put_tlv(&mut chuid, &[0x30], &FASC_N);
    put_tlv(&mut chuid, &[0x34], &CHUID_GUID);
    put_tlv(&mut chuid, &[0x35], b"20301231");
    put_tlv(&mut chuid, &[0x3E], signature);
    put_tlv(&mut chuid, &[0xFE], &[]);
    tlv(&[0x53], &chuid)
}

pub(crate) fn default_ccc() -> Vec<u8> {
    let mut ccc = Vec::new();
    // Card identifier: GSC-RID, manufacturer FF, card type 02, 14-byte ID.
    let mut card_id = vec![0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
    card_id.extend_from_slice(&CHUID_GUID[..14]);
    put_tlv(&mut ccc, &[0xF0], &card_id);
    put_tlv(&mut ccc, &[0xF1], &[0x21]);
    put_tlv(&mut ccc, &[0xF2], &[0x21]);
    put_tlv(&mut ccc, &[0xF3], &[]);
    put_tlv(&mut ccc, &[0xF4], &[0x00]);
    put_tlv(&mut ccc, &[0xF5], &[0x10]);
    for tag in [0xF6, 0xF7, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE] {
        put_tlv(&mut ccc, &[tag], &[]);
    }
    tlv(&[0x53], &ccc)
}

pub(crate) fn default_discovery() -> Vec<u8> {
    let mut discovery = tlv(&[0x4F], &PIV_AID);
    // PIN usage policy: PIV PIN only, global PIN not supported.
    put_tlv(&mut discovery, &[0x5F, 0x2F], &[0x40, 0x00]);
    tlv(&[0x7E], &discovery)
}
