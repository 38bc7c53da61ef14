//! PKCS#15 files (src/pkcs15/): the input is one file as a card would
//! return it, read by every parser (EF.DIR, ODF, TokenInfo, AODF, PrKDF,
//! PuKDF, CDF, DODF). Nothing may panic, and what is read stays within
//! the parsers' bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p11card::pkcs15::{self, Directory, ObjectValue, MAX_OBJECTS};

fn bounded<T>(directory: &Directory<T>) {
    assert!(directory.objects.len() + directory.rejected.len() <= MAX_OBJECTS);
}

fn value_bounded(value: &ObjectValue) {
    if let ObjectValue::Path(path) = value {
        assert!(path.efid_or_path.len() <= 16);
        assert!(path.aid.as_ref().is_none_or(|aid| aid.len() <= 16));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(apps) = pkcs15::parse_dir(data) {
        bounded(&apps);
        for app in &apps.objects {
            assert!(app.aid.len() <= 16);
            let _ = app.is_pkcs15();
        }
    }
    if let Ok(odf) = pkcs15::parse_odf(data) {
        bounded(&odf);
    }
    if let Ok(info) = pkcs15::parse_token_info(data) {
        assert!(info.supported_algorithms.len() <= 64);
        assert!(info.serial_number.is_none_or(|serial| serial.len() <= 255));
    }
    if let Ok(pins) = pkcs15::parse_aodf(data) {
        bounded(&pins);
        for pin in &pins.objects {
            assert!(pin.auth_id.as_ref().is_none_or(|id| id.0.len() <= 255));
        }
    }
    if let Ok(keys) = pkcs15::parse_prkdf(data) {
        bounded(&keys);
        for key in &keys.objects {
            assert!(key.key.id.0.len() <= 255);
            value_bounded(&key.value);
        }
    }
    if let Ok(keys) = pkcs15::parse_pukdf(data) {
        bounded(&keys);
        for key in &keys.objects {
            value_bounded(&key.value);
        }
    }
    if let Ok(certificates) = pkcs15::parse_cdf(data) {
        bounded(&certificates);
        for certificate in &certificates.objects {
            value_bounded(&certificate.value);
        }
    }
    if let Ok(objects) = pkcs15::parse_dodf(data) {
        bounded(&objects);
    }
});
