//! Response APDUs and status words (src/iso7816/apdu.rs, status.rs), the
//! PIN errors every profile reads from a status word, and the framing of
//! command APDUs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card::iso7816::{Command, Response};
use p11card_fuzz::profiles;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = Response::parse(data) {
        assert_eq!(response.data.len() + 2, data.len());
        let sw = response.sw;
        assert_eq!(sw.to_string().len(), 4);
        if let Some(remaining) = sw.bytes_remaining() {
            assert!((1..=256).contains(&remaining));
        }
        if let Some(le) = sw.correct_le() {
            assert!((1..=256).contains(&le));
        }
        if let Some(tries) = sw.tries_left() {
            assert!(tries <= 15);
        }
        for profile in profiles().profiles() {
            let _ = profile.tries_left(sw);
            let _ = profile.pin_error(sw);
        }
        assert_eq!(response.clone().success().is_ok(), sw.is_success());
    }

    // A command built from the input: the encoding keeps the header and
    // says how much data follows.
    let [cla, ins, p1, p2, le, body @ ..] = data else {
        return;
    };
    let mut command = Command::new(*cla, *ins, *p1, *p2).data(body.to_vec());
    command.le = match le {
        0 => None,
        1 => Some(65_536),
        n => Some(usize::from(*n) * 5),
    };
    for extended in [false, true] {
        let Ok(encoded) = command.encode(extended) else {
            assert!(!extended || body.len() > 65_535);
            assert!(extended || body.len() > 255);
            continue;
        };
        assert_eq!(&encoded[..4], &[*cla, *ins, *p1, *p2]);
        let lc_len = match (body.is_empty(), extended) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 3,
        };
        let le_len = match (command.le, extended) {
            (None, _) => 0,
            (Some(_), false) => 1,
            (Some(_), true) if body.is_empty() => 3,
            (Some(_), true) => 2,
        };
        assert_eq!(encoded.len(), 4 + lc_len + body.len() + le_len);
    }
});
