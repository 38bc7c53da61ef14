//! PIV certificate containers (src/profile/piv.rs): the recorded simulated
//! PIV card, except that GET DATA of the PIV Authentication certificate
//! object (`5FC105`) is answered by the fuzz input (frames: data and status
//! word): the `53` wrapper, `70` certificate, `71` CertInfo with the
//! compression flag (gzip or zlib), the X.509 inside, and the key and
//! objects the token builds from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card_fuzz::{commands, enumerate_fresh, piv_card, ReplayCard};

fuzz_target!(|data: &[u8]| {
    let card = piv_card();
    let mut link = ReplayCard::new(card, commands::piv_authentication_certificate, data);
    enumerate_fresh(&card.atr, &mut link);
});
