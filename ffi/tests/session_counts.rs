//! `CK_TOKEN_INFO` counts this application's sessions, and among them the
//! read/write ones.

mod common;

use common::*;
use cryptoki_sys::*;

#[test]
fn token_info_counts_sessions_and_read_write_sessions() {
    let (harness, _card) = Harness::new();
    let slot = harness.slot();
    let _ro = open_session(slot, CKF_SERIAL_SESSION);
    let _rw = open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    let info = token_info(slot).expect("token info");
    assert_eq!(info.ulSessionCount, 2);
    assert_eq!(info.ulRwSessionCount, 1);
}
