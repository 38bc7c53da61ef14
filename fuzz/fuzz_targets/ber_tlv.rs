//! BER-TLV (src/iso7816/tlv.rs): reading one element, whole sequences,
//! nested values, and that what was read encodes back to the same element.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card::iso7816::tlv;

fuzz_target!(|data: &[u8]| {
    if let Ok((element, rest)) = tlv::read(data) {
        let consumed = data.len() - rest.len();
        assert!(element.value.len() < consumed);
        let encoded = tlv::encode(element.tag, element.value);
        let (again, tail) = tlv::read(&encoded).expect("an encoded element reads back");
        assert_eq!(again, element);
        assert!(tail.is_empty());
        // The encoding is the shortest form: never longer than the input's.
        assert!(encoded.len() <= consumed);
    }
    if let Ok(elements) = tlv::parse_all(data) {
        for element in elements {
            if let Ok(inner) = tlv::parse_all(element.value) {
                for nested in inner {
                    let _ = tlv::find(nested.value, 0x86);
                }
            }
        }
    }
    let _ = tlv::find(data, 0x7F49);
});
