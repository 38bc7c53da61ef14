//! PIV data objects that shape what the engine reads (SP 800-73-4 Part 1
//! §3.3.2): the Key History object, which says how many retired key
//! management keys (key references `82`–`95`) have a certificate on the
//! card, and the Discovery object, whose PIN usage policy says which PIN is
//! primary.

use crate::iso7816::tlv;
use crate::profile::{KeySlot, PivRole};

/// The Key History object.
pub(super) const TAG_KEY_HISTORY: u32 = 0x5FC10C;
/// The Discovery object (GET DATA with `5C 01 7E`; answered as `7E`).
pub(super) const TAG_DISCOVERY: u8 = 0x7E;
/// How many retired key management keys a PIV card can hold.
pub(super) const RETIRED_KEYS: u8 = 20;
/// The key reference of retired key 1 (SP 800-73-4 Part 1 Table 4b).
const RETIRED_FIRST_REFERENCE: u8 = 0x82;
/// The certificate container of retired key 1 (Part 1 Table 3).
const RETIRED_FIRST_CONTAINER: u32 = 0x5FC10D;

/// The key slot of retired key `index` (0 for key reference `82`, up to
/// 19 for `95`), with the `CKA_ID` and label OpenSC's PIV emulation gives
/// it (IDs `05`…`09`, `10`…`24`: its decimal numbers read as hex bytes;
/// labels "Retired KEY MAN 1"…"20"), so URIs written for OpenSC match.
pub(super) fn retired_slot(index: u8, pin_reference: u8) -> KeySlot {
    let number = index + 5;
    KeySlot {
        reference: RETIRED_FIRST_REFERENCE + index,
        // Key management as 9D, PIN once.
        role: PivRole::RetiredKeyManagement.into(),
        id: vec![(number / 10) << 4 | (number % 10)],
        label: format!("Retired KEY MAN {}", index + 1),
        certificate_tag: Some(RETIRED_FIRST_CONTAINER + u32::from(index)),
        pin_reference,
        always_authenticate: Some(false),
        no_pin: false,
    }
}

/// Which retired key (0 to 19) a key reference names, if it names one.
pub(super) fn retired_index(reference: u8) -> Option<u8> {
    reference
        .checked_sub(RETIRED_FIRST_REFERENCE)
        .filter(|index| *index < RETIRED_KEYS)
}

/// Whether a key reference is a retired key management key's.
pub(super) fn is_retired(reference: u8) -> bool {
    retired_index(reference).is_some()
}

/// `keysWithOnCardCerts` (tag `C1`) of a Key History object's value: how
/// many retired keys have their certificate on the card (at most 20; an
/// object without the tag has none).
pub(super) fn keys_with_on_card_certs(history: &[u8]) -> u8 {
    let count = tlv::find(history, 0xC1)
        .ok()
        .flatten()
        .and_then(|value| match value {
            [count] => Some(*count),
            _ => None,
        })
        .unwrap_or(0);
    count.min(RETIRED_KEYS)
}

/// Whether a Discovery object (`7E` template's value) names the global PIN
/// (key reference `00`) the primary PIN: PIN usage policy `5F2F`, first
/// byte bit `20` (the global PIN satisfies the PIV access rules) and second
/// byte `20` (global PIN primary; `10` would be the PIV PIN).
pub(super) fn global_pin_primary(discovery: &[u8]) -> bool {
    match tlv::find(discovery, 0x5F2F).ok().flatten() {
        Some([first, second, ..]) => first & 0x20 != 0 && second & 0x20 != 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_keys_get_opensc_ids_and_labels() {
        let first = retired_slot(0, 0x80);
        assert_eq!((first.reference, first.id.as_slice()), (0x82, &[0x05][..]));
        assert_eq!(first.label, "Retired KEY MAN 1");
        assert_eq!(first.certificate_tag, Some(0x5FC10D));
        assert_eq!(retired_slot(4, 0x80).id, [0x09]);
        assert_eq!(retired_slot(5, 0x80).id, [0x10]);
        let last = retired_slot(19, 0x80);
        assert_eq!((last.reference, last.id.as_slice()), (0x95, &[0x24][..]));
        assert_eq!(last.label, "Retired KEY MAN 20");
        assert_eq!(last.certificate_tag, Some(0x5FC120));
        assert!(is_retired(0x82) && is_retired(0x95));
        assert_eq!(retired_index(0x83), Some(1));
        assert!(!is_retired(0x81) && !is_retired(0x96) && !is_retired(0x9D));
    }

    #[test]
    fn key_history_counts_on_card_certificates() {
        let history = [0xC1, 0x01, 0x03, 0xC2, 0x01, 0x02, 0xFE, 0x00];
        assert_eq!(keys_with_on_card_certs(&history), 3);
        assert_eq!(keys_with_on_card_certs(&[0xC1, 0x01, 0xFF]), 20);
        assert_eq!(keys_with_on_card_certs(&[0xC2, 0x01, 0x02]), 0);
        assert_eq!(keys_with_on_card_certs(&[0xC1, 0x02, 0x00, 0x01]), 0);
        assert_eq!(keys_with_on_card_certs(&[0xC1, 0x05]), 0, "truncated");
    }

    #[test]
    fn discovery_names_the_primary_pin() {
        let discovery = |policy: &[u8]| {
            let mut value = tlv::encode(0x4F, &[0xA0, 0x00, 0x00, 0x03, 0x08]);
            value.extend(tlv::encode(0x5F2F, policy));
            value
        };
        assert!(global_pin_primary(&discovery(&[0x60, 0x20])));
        assert!(!global_pin_primary(&discovery(&[0x60, 0x10])));
        assert!(
            !global_pin_primary(&discovery(&[0x40, 0x20])),
            "global PIN unusable"
        );
        assert!(!global_pin_primary(&discovery(&[0x40, 0x00])));
        assert!(!global_pin_primary(&discovery(&[0x60])));
        assert!(!global_pin_primary(&[]));
    }
}
