//! Structures real cards carry, parsed whole.
//!
//! The bytes are card answers recorded in OpenSC's fuzzing corpus
//! (github.com/OpenSC/OpenSC, `src/tests/fuzzing/corpus/`, at commit
//! 14c80b0ab932d3743ccfdf0877210bfaee794e9c), taken as data:
//! - `VW_*`: a Volkswagen corporate PKI card (Siemens CardOS on an SLE78),
//!   `fuzz_pkcs15_tool/a1e04ba21b4b54a1fdc048611c4f890405c9885d`;
//! - `MYEID_*`: an Aventra MyEID card personalised by OpenSC's
//!   `pkcs15-init`, `fuzz_pkcs15_tool/ade754cf6e6f55b8873e6d6a12080e7f8b4366ee`;
//! - `INIT_*`: the files OpenSC's `pkcs15-init` (Debian 12's opensc) wrote
//!   onto the simulated MyEID card of this project (branch `i14myeid`,
//!   `tests/realstack/pkcs15/myeid-personalised.image` at d76b09a): user
//!   PIN, SO PIN, an RSA-2048 and an EC P-256 key generated on the card,
//!   their public keys and certificates;
//! - `OPENSC_*`: single directory entries of OpenSC's emulated cards (CAC,
//!   PIV), `fuzz_pkcs15_decode/<name>` as each constant says.
//!
//! Each is the file as READ BINARY returned it (without the status word),
//! the zero filler after the objects cut to eight bytes.

use super::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn path_of(value: &ObjectValue) -> &Path {
    match value {
        ObjectValue::Path(path) => path,
        other => panic!("not a path: {other:?}"),
    }
}

const VW_ODF: &str = "\
a00a300804063f0050154401a40a300804063f0050154441a50a300804063f0050154451a70a300804063f00\
50154471a80a300804063f0050154481";

const VW_TOKEN_INFO: &str = "\
302a020100040507115058000c0d566f6c6b73776167656e204147800b565720504b49204361726403020010\
726403020410";

const VW_DODF: &str = "\
301d300b0c0950726f66696c65496430020c00a10a300804063f005015f001";

const VW_PRKDF: &str = "\
3038301a0c114469676974616c205369676e617475726503020080040101300a04011103020034020101a10e\
300c300604043f00501502020800303a301b0c0f4e6f6e205265707564696174696f6e030200800401020201\
01300b0401330303000040020103a10e300c300604043f00501502020800303c30130c0a456e637279707469\
6f6e03020080040101300f04015a030300440003020000020104a1143012300c04043f005015020100800100\
0202080000000000000000";

const VW_AODF: &str = "\
304630110c08436172642050494e030206c00401123003040101a12c302a0302020c0a010202010602010680\
0101040100180f30303030303030303030303030305a300404023f00303a30160c0d5369676e617475726520\
50494e030206c00401123003040102a11d301b0302024c0a0102020106020108800182040100300404023f00\
00000000000000";

const MYEID_DIR: &str = "\
611b4f0ca000000063504b43532d313550054d7945494451043f0050150000000000000000";

const MYEID_ODF: &str = "\
a00a300804063f0050154402a10a300804063f0050154404a30a300804063f0050154407a40a300804063f00\
50154403a50a300804063f0050154405a70a300804063f0050154406a80a300804063f005015440100000000\
00000000";

const MYEID_TOKEN_INFO: &str = "\
3081b1020100040a000000550030050756580c0c4176656e747261204c74642e80054d7945494403020430a2\
74301b0201010202108105000302020c0609608648016503040101020100301b020102020210820500030202\
0c0609608648016503040102020100301b0201030202108105000302020c0609608648016503040129020100\
301b0201040202108205000302020c060960864801650304012a020100a511180f3230323131323230313134\
3032315a";

const MYEID_DODF: &str = "\
3028300b0c056c6162656c03020640300d0c0b706b637331352d696e6974a10a300804063f00501546010000\
000000000000";

/// `fuzz_pkcs15_decode/0204f84aede3986d1add8909124e021cac32bec8`.
const OPENSC_AODF_JJELEN: &str = "\
302d300c0c066a6a656c656e030207803003040101a1183016030203080a0101020104020120020120800100\
0401ff";

/// `fuzz_pkcs15_decode/8989be8baa0b0269c8128729062b31f91b131ba4`.
const OPENSC_AODF_PIN: &str = "\
302a30090c0350494e030207803003040101a11830160302020c0a01010201040201080201088001000401ff";

/// `fuzz_pkcs15_decode/b011d577451c835fd8f6052f0659337994273f3f`.
const OPENSC_PRKDF_CAC: &str = "\
303f30140c0b4341432043657274203136030207800401013010040200100303063040030203b8020110a115\
3013300d04043f00011002010080020fff02020800";

/// `fuzz_pkcs15_decode/6e580d278c33a530284dfef5dd9ffd617597bb68`.
const OPENSC_PUKDF_CAC: &str = "\
3081d730140c12434143204944204365727469666963617465301004020001030306034003020640020101a1\
81ac3081a9a081a2a1819f300d06092a864886f70d010101050003818d0030818902818100a9a331fa76d219\
0389b86a7f3c06eedc50441879f1f68bb1a329e8717a394d25f60d9715c6d9a334ace36b36f6f9500ca9ed99\
8ba90aefec470b4617fe4e710857885d76f1428fb977432fc780acf65758cb1f6f3a72a38c8ae28e635bc665\
5f379a7518393b3235a0196e951d86a8c4afe9fc0f895db098efc757a58ea6a739020301000102020400";

/// `fuzz_pkcs15_decode/0e9c8b959346f4894ea97d7e3f393c2442ee1e3d`.
const OPENSC_DODF_PIV: &str = "\
304f301b0c1943617264204361706162696c69747920436f6e7461696e657230280c19436172642043617061\
62696c69747920436f6e7461696e6572060b6086480165030701815b00a10630040402db00";

/// `3F00/2F00`.
const INIT_DIR: &str = "\
61234F0CA000000063504B43532D3135500D70313163617264204D7945494451043F00501500000000000000\
00";

/// `3F00/5015/5031`.
const INIT_ODF: &str = "\
A00A300804063F0050154402A10A300804063F0050154404A30A300804063F0050154407A40A300804063F00\
50154403A50A300804063F0050154405A70A300804063F0050154406A80A300804063F005015440100000000\
00000000";

/// `3F00/5015/5032`.
const INIT_TOKEN_INFO: &str = "\
3081B9020100040A000000000012345678900C0C4176656E747261204C74642E800D70313163617264204D79\
45494403020430A274301B0201010202108105000302020C0609608648016503040101020100301B02010202\
02108205000302020C0609608648016503040102020100301B0201030202108105000302020C060960864801\
6503040129020100301B0201040202108205000302020C060960864801650304012A020100A511180F323032\
36313230323232303835385A";

/// `3F00/5015/4401`.
const INIT_AODF: &str = "\
303B301A0C145365637572697479204F6666696365722050494E030206C030030401FFA11830160302000D0A\
01010201040201080201088001030401FF302F300E0C08557365722050494E030206C03003040101A1183016\
0302020C0A01010201040201080201088001010401FF0000000000000000";

/// `3F00/5015/4402`.
const INIT_PRKDF: &str = "\
306B30120C094D7945494420525341030206C0040101300E04010103020274030203B8020101A0333031302F\
31153013060355040A0C0C7031316361726420746573743116301406035504030C0D4D794549442052534120\
6B6579A110300E300804063F0050154B0102020800A06930110C084D79454944204543030206C0040101300E\
04010203020430030203B8020102A0323030302E31153013060355040A0C0C70313163617264207465737431\
15301306035504030C0C4D79454944204543206B6579A110300E300804063F0050154B020202010000000000\
000000";

/// `3F00/5015/4403`.
const INIT_CDF: &str = "\
3024300F0C094D7945494420525341030206403003040101A10C300A300804063F00501543013023300E0C08\
4D79454944204543030206403003040102A10C300A300804063F00501543020000000000000000";

/// `3F00/5015/4404`.
const INIT_PUKDF: &str = "\
3032300F0C094D794549442052534103020640300D0401010302008B010100020100A110300E300804063F00\
5015550102020800A02D300E0C084D7945494420454303020640300D04010203020003010100020100A10C30\
0A300804063F00501555020000000000000000";

#[test]
fn vw_card_odf_and_token_info() {
    let odf = parse_odf(&hex(VW_ODF)).unwrap().objects;
    let kinds: Vec<_> = odf
        .iter()
        .map(|entry| (entry.kind, entry.path.efid_or_path.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (DirectoryKind::PrivateKeys, hex("3F0050154401")),
            (DirectoryKind::Certificates, hex("3F0050154441")),
            (DirectoryKind::TrustedCertificates, hex("3F0050154451")),
            (DirectoryKind::DataObjects, hex("3F0050154471")),
            (DirectoryKind::AuthObjects, hex("3F0050154481")),
        ]
    );
    // The file holds six bytes of an older TokenInfo after this one.
    let info = parse_token_info(&hex(VW_TOKEN_INFO)).unwrap();
    assert_eq!(info.version, 0);
    assert_eq!(info.serial_number, Some(hex("0711505800")));
    assert_eq!(info.manufacturer_id.as_deref(), Some("Volkswagen AG"));
    assert_eq!(info.label.as_deref(), Some("VW PKI Card"));
    assert_eq!(
        info.flags,
        TokenFlags {
            eid_compliant: true,
            ..TokenFlags::default()
        }
    );
    assert!(info.supported_algorithms.is_empty());
    assert_eq!(info.last_update, None);
}

#[test]
fn vw_card_keys_with_a_second_pin_for_non_repudiation() {
    let keys = parse_prkdf(&hex(VW_PRKDF)).unwrap().objects;
    let labels: Vec<_> = keys
        .iter()
        .map(|key| key.object.label.as_deref().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["Digital Signature", "Non Repudiation", "Encryption"]
    );
    for key in &keys {
        assert!(key.object.flags.private);
        assert_eq!(key.algorithm, KeyAlgorithm::Rsa { modulus_bits: 2048 });
        assert_eq!(path_of(&key.value).efid_or_path, hex("3F005015"));
    }
    let (sign, non_repudiation, encryption) = (&keys[0], &keys[1], &keys[2]);
    assert_eq!(sign.object.auth_id, Some(Identifier(vec![0x01])));
    assert_eq!(sign.key.id, Identifier(vec![0x11]));
    assert_eq!(
        sign.key.usage,
        KeyUsage {
            sign: true,
            sign_recover: true,
            unwrap: true,
            ..KeyUsage::default()
        }
    );
    assert_eq!(sign.key.key_reference, Some(1));
    assert_eq!(sign.object.user_consent, None);
    // The qualified-signature key: its own PIN, asked before every use.
    assert_eq!(non_repudiation.object.auth_id, Some(Identifier(vec![0x02])));
    assert_eq!(non_repudiation.object.user_consent, Some(1));
    assert_eq!(non_repudiation.key.id, Identifier(vec![0x33]));
    assert_eq!(
        non_repudiation.key.usage,
        KeyUsage {
            non_repudiation: true,
            ..KeyUsage::default()
        }
    );
    assert_eq!(non_repudiation.key.key_reference, Some(3));
    assert_eq!(
        encryption.key.usage,
        KeyUsage {
            decrypt: true,
            unwrap: true,
            ..KeyUsage::default()
        }
    );
    assert_eq!(encryption.key.access_flags, Some(KeyAccessFlags::default()));
    assert_eq!(encryption.key.key_reference, Some(4));
    let path = path_of(&encryption.value);
    assert_eq!((path.index, path.length), (Some(0), Some(0)));
}

#[test]
fn vw_card_pins_and_data_object() {
    let aodf = parse_aodf(&hex(VW_AODF)).unwrap();
    // The card's second PIN object, "Signature PIN", is 58 bytes long
    // (30 3A), but its type attributes say 31 (A1 1D 30 1B): two bytes
    // more than the object holds. It is rejected; the first PIN is read.
    // (OpenSC refuses it too: "too long ASN.1 object".)
    assert_eq!(aodf.rejected, [(1, Pkcs15Error::Malformed("PIN object"))]);
    let pins = aodf.objects;
    assert_eq!(pins.len(), 1);
    let card = &pins[0];
    assert_eq!(card.object.label.as_deref(), Some("Card PIN"));
    assert!(card.object.flags.private && card.object.flags.modifiable);
    assert_eq!(card.object.auth_id, Some(Identifier(vec![0x12])));
    assert_eq!(card.auth_id, Some(Identifier(vec![0x01])));
    assert_eq!(
        card.flags,
        PinFlags {
            initialized: true,
            needs_padding: true,
            ..PinFlags::default()
        }
    );
    assert_eq!(card.pin_type, PinType::Utf8);
    assert_eq!(
        (card.min_length, card.stored_length, card.max_length),
        (6, 6, None)
    );
    assert_eq!((card.reference, card.pad_char), (1, Some(0x00)));
    assert_eq!(card.path.as_ref().unwrap().efid_or_path, hex("3F00"));

    // The Signature PIN with its type attributes' lengths cut to what the
    // object holds: local, 6 to 8 UTF-8 bytes, and a reference written as
    // 80 01 82, a negative INTEGER read as the byte (OpenSC too).
    let mut fixed = hex(VW_AODF);
    let at = fixed
        .windows(4)
        .position(|w| w == [0xA1, 0x1D, 0x30, 0x1B])
        .unwrap();
    fixed[at + 1] = 0x1B;
    fixed[at + 3] = 0x19;
    let pins = parse_aodf(&fixed).unwrap().objects;
    let signature = &pins[1];
    assert_eq!(signature.object.label.as_deref(), Some("Signature PIN"));
    assert_eq!(signature.auth_id, Some(Identifier(vec![0x02])));
    assert!(signature.flags.local && signature.flags.initialized && signature.flags.needs_padding);
    assert_eq!((signature.min_length, signature.stored_length), (6, 8));
    assert_eq!(signature.reference, 0x82);

    let objects = parse_dodf(&hex(VW_DODF)).unwrap().objects;
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].object.label.as_deref(), Some("ProfileId"));
    assert_eq!(objects[0].application_name.as_deref(), Some(""));
    assert_eq!(path_of(&objects[0].value).efid_or_path, hex("3F005015F001"));
}

#[test]
fn myeid_card_written_by_pkcs15_init() {
    let apps = parse_dir(&hex(MYEID_DIR)).unwrap().objects;
    assert_eq!(apps.len(), 1);
    assert!(apps[0].is_pkcs15());
    assert_eq!(apps[0].label.as_deref(), Some("MyEID"));
    assert_eq!(apps[0].path, Some(hex("3F005015")));
    assert_eq!(apps[0].ddo, None);

    let odf = parse_odf(&hex(MYEID_ODF)).unwrap().objects;
    let kinds: Vec<_> = odf.iter().map(|entry| entry.kind).collect();
    assert_eq!(
        kinds,
        [
            DirectoryKind::PrivateKeys,
            DirectoryKind::PublicKeys,
            DirectoryKind::SecretKeys,
            DirectoryKind::Certificates,
            DirectoryKind::TrustedCertificates,
            DirectoryKind::DataObjects,
            DirectoryKind::AuthObjects,
        ]
    );
    assert_eq!(odf[6].path.efid_or_path, hex("3F0050154401"));

    let info = parse_token_info(&hex(MYEID_TOKEN_INFO)).unwrap();
    assert_eq!(info.serial_number, Some(hex("00000055003005075658")));
    assert_eq!(info.manufacturer_id.as_deref(), Some("Aventra Ltd."));
    assert_eq!(info.label.as_deref(), Some("MyEID"));
    assert!(info.flags.prn_generation && info.flags.eid_compliant && !info.flags.readonly);
    assert_eq!(info.last_update.as_deref(), Some("20211220114021Z"));
    let references: Vec<_> = info
        .supported_algorithms
        .iter()
        .map(|a| a.reference)
        .collect();
    assert_eq!(references, [1, 2, 3, 4]);
    let aes = &info.supported_algorithms[0];
    assert_eq!(aes.algorithm, 0x1081); // CKM_AES_ECB
    assert!(aes.operations.encipher && aes.operations.decipher);
    assert_eq!(aes.object_id.unwrap().to_string(), "2.16.840.1.101.3.4.1.1");
    assert_eq!(aes.algorithm_reference, Some(0));

    let objects = parse_dodf(&hex(MYEID_DODF)).unwrap().objects;
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].object.label.as_deref(), Some("label"));
    assert!(objects[0].object.flags.modifiable);
    assert_eq!(objects[0].application_name.as_deref(), Some("pkcs15-init"));
    assert_eq!(path_of(&objects[0].value).efid_or_path, hex("3F0050154601"));
}

#[test]
fn opensc_directory_entries() {
    let pins = parse_aodf(&hex(OPENSC_AODF_JJELEN)).unwrap().objects;
    assert_eq!(pins[0].object.label.as_deref(), Some("jjelen"));
    assert!(pins[0].object.flags.private);
    assert_eq!(
        pins[0].flags,
        PinFlags {
            initialized: true,
            ..PinFlags::default()
        }
    );
    assert_eq!(pins[0].pin_type, PinType::AsciiNumeric);
    assert_eq!(
        (
            pins[0].min_length,
            pins[0].stored_length,
            pins[0].max_length
        ),
        (4, 32, Some(32))
    );
    assert_eq!((pins[0].reference, pins[0].pad_char), (0, Some(0xFF)));
    let pins = parse_aodf(&hex(OPENSC_AODF_PIN)).unwrap().objects;
    assert!(pins[0].flags.initialized && pins[0].flags.needs_padding);
    assert_eq!(pins[0].stored_length, 8);

    let keys = parse_prkdf(&hex(OPENSC_PRKDF_CAC)).unwrap().objects;
    let key = &keys[0];
    assert_eq!(key.object.label.as_deref(), Some("CAC Cert 16"));
    assert_eq!(key.key.id, Identifier(vec![0x00, 0x10]));
    assert_eq!(
        key.key.usage,
        KeyUsage {
            sign: true,
            sign_recover: true,
            non_repudiation: true,
            ..KeyUsage::default()
        }
    );
    assert_eq!(
        key.key.access_flags,
        Some(KeyAccessFlags {
            sensitive: true,
            always_sensitive: true,
            never_extractable: true,
            local: true,
            ..KeyAccessFlags::default()
        })
    );
    assert_eq!(key.key.key_reference, Some(0x10));
    let path = path_of(&key.value);
    assert_eq!(path.efid_or_path, hex("3F000110"));
    assert_eq!((path.index, path.length), (Some(0), Some(0x0FFF)));
    assert_eq!(key.algorithm, KeyAlgorithm::Rsa { modulus_bits: 2048 });

    let public = parse_pukdf(&hex(OPENSC_PUKDF_CAC)).unwrap().objects;
    assert_eq!(
        public[0].object.label.as_deref(),
        Some("CAC ID Certificate")
    );
    assert_eq!(public[0].key.id, Identifier(vec![0x00, 0x01]));
    assert_eq!(
        public[0].algorithm,
        KeyAlgorithm::Rsa { modulus_bits: 1024 }
    );
    // By value: an [1] SubjectPublicKeyInfo (RSAPublicKeyChoice).
    let ObjectValue::Direct(spki) = &public[0].value else {
        panic!()
    };
    assert_eq!(spki[..3], [0xA1, 0x81, 0x9F]);

    let objects = parse_dodf(&hex(OPENSC_DODF_PIV)).unwrap().objects;
    assert_eq!(
        objects[0].application_name.as_deref(),
        Some("Card Capability Container")
    );
    assert_eq!(
        objects[0].application_oid.unwrap().to_string(),
        "2.16.840.1.101.3.7.1.219.0"
    );
    assert_eq!(path_of(&objects[0].value).efid_or_path, hex("DB00"));
}

#[test]
fn every_parser_survives_every_truncation_and_bit_flip() {
    let all = [
        VW_ODF,
        VW_TOKEN_INFO,
        VW_DODF,
        VW_PRKDF,
        VW_AODF,
        MYEID_DIR,
        MYEID_ODF,
        MYEID_TOKEN_INFO,
        MYEID_DODF,
        OPENSC_AODF_JJELEN,
        OPENSC_AODF_PIN,
        OPENSC_PRKDF_CAC,
        OPENSC_PUKDF_CAC,
        OPENSC_DODF_PIV,
    ];
    let parse_all = |data: &[u8]| {
        let _ = parse_dir(data);
        let _ = parse_odf(data);
        let _ = parse_token_info(data);
        let _ = parse_aodf(data);
        let _ = parse_prkdf(data);
        let _ = parse_pukdf(data);
        let _ = parse_cdf(data);
        let _ = parse_dodf(data);
    };
    for vector in all {
        let data = hex(vector);
        for end in 0..data.len() {
            parse_all(&data[..end]);
        }
        for at in 0..data.len().min(64) {
            for bit in 0..8 {
                let mut flipped = data.clone();
                flipped[at] ^= 1 << bit;
                parse_all(&flipped);
            }
        }
    }
}

#[test]
fn myeid_card_personalised_by_pkcs15_init_here() {
    let apps = parse_dir(&hex(INIT_DIR)).unwrap().objects;
    assert!(apps[0].is_pkcs15());
    assert_eq!(apps[0].label.as_deref(), Some("p11card MyEID"));
    assert_eq!(apps[0].path, Some(hex("3F005015")));

    let odf = parse_odf(&hex(INIT_ODF)).unwrap();
    assert!(odf.rejected.is_empty());
    let files: Vec<_> = odf
        .objects
        .iter()
        .map(|entry| (entry.kind, entry.path.efid_or_path.clone()))
        .collect();
    assert_eq!(files[0], (DirectoryKind::PrivateKeys, hex("3F0050154402")));
    assert_eq!(files[1], (DirectoryKind::PublicKeys, hex("3F0050154404")));
    assert_eq!(files[3], (DirectoryKind::Certificates, hex("3F0050154403")));
    assert_eq!(files[6], (DirectoryKind::AuthObjects, hex("3F0050154401")));

    let info = parse_token_info(&hex(INIT_TOKEN_INFO)).unwrap();
    assert_eq!(info.serial_number, Some(hex("00000000001234567890")));
    assert_eq!(info.manufacturer_id.as_deref(), Some("Aventra Ltd."));
    assert_eq!(info.label.as_deref(), Some("p11card MyEID"));
    assert!(!info.supported_algorithms.is_empty());

    let aodf = parse_aodf(&hex(INIT_AODF)).unwrap();
    assert!(aodf.rejected.is_empty());
    let [so, user] = aodf.objects.as_slice() else {
        panic!("{aodf:?}")
    };
    assert_eq!(so.object.label.as_deref(), Some("Security Officer PIN"));
    assert_eq!(so.auth_id, Some(Identifier(vec![0xFF])));
    // 03 02 00 0D: initialized, needs-padding, soPin.
    assert_eq!(
        so.flags,
        PinFlags {
            initialized: true,
            needs_padding: true,
            so_pin: true,
            ..PinFlags::default()
        }
    );
    assert_eq!(so.reference, 3);
    assert_eq!(user.object.label.as_deref(), Some("User PIN"));
    assert_eq!(user.auth_id, Some(Identifier(vec![0x01])));
    assert_eq!(
        user.flags,
        PinFlags {
            initialized: true,
            needs_padding: true,
            ..PinFlags::default()
        }
    );
    assert_eq!(user.pin_type, PinType::AsciiNumeric);
    assert_eq!(
        (user.min_length, user.stored_length, user.max_length),
        (4, 8, Some(8))
    );
    assert_eq!((user.reference, user.pad_char), (1, Some(0xFF)));

    let prkdf = parse_prkdf(&hex(INIT_PRKDF)).unwrap();
    assert!(prkdf.rejected.is_empty());
    let [rsa, ec] = prkdf.objects.as_slice() else {
        panic!("{prkdf:?}")
    };
    assert_eq!(rsa.object.label.as_deref(), Some("MyEID RSA"));
    assert_eq!(rsa.object.auth_id, Some(Identifier(vec![0x01])));
    assert_eq!(rsa.key.id, Identifier(vec![0x01]));
    assert_eq!(
        rsa.key.usage,
        KeyUsage {
            decrypt: true,
            sign: true,
            sign_recover: true,
            unwrap: true,
            ..KeyUsage::default()
        }
    );
    assert!(rsa.key.access_flags.unwrap().local);
    assert_eq!(rsa.key.key_reference, Some(1));
    assert_eq!(path_of(&rsa.value).efid_or_path, hex("3F0050154B01"));
    assert_eq!(rsa.algorithm, KeyAlgorithm::Rsa { modulus_bits: 2048 });
    assert_eq!(ec.key.id, Identifier(vec![0x02]));
    assert_eq!(
        ec.key.usage,
        KeyUsage {
            sign: true,
            sign_recover: true,
            ..KeyUsage::default()
        }
    );
    assert_eq!(ec.key.key_reference, Some(2));
    assert_eq!(path_of(&ec.value).efid_or_path, hex("3F0050154B02"));
    // pkcs15-init writes the field size (OpenSC's extension), not the curve.
    assert_eq!(
        ec.algorithm,
        KeyAlgorithm::Ec {
            field_bits: Some(256),
            curve: None
        }
    );

    let pukdf = parse_pukdf(&hex(INIT_PUKDF)).unwrap();
    assert!(pukdf.rejected.is_empty());
    let [rsa, ec] = pukdf.objects.as_slice() else {
        panic!("{pukdf:?}")
    };
    assert_eq!(rsa.key.id, Identifier(vec![0x01]));
    assert!(rsa.key.usage.verify && !rsa.key.native);
    assert_eq!(path_of(&rsa.value).efid_or_path, hex("3F0050155501"));
    assert_eq!(rsa.algorithm, KeyAlgorithm::Rsa { modulus_bits: 2048 });
    assert_eq!(ec.key.id, Identifier(vec![0x02]));
    assert_eq!(path_of(&ec.value).efid_or_path, hex("3F0050155502"));
    assert_eq!(
        ec.algorithm,
        KeyAlgorithm::Ec {
            field_bits: None,
            curve: None
        }
    );

    let cdf = parse_cdf(&hex(INIT_CDF)).unwrap();
    assert!(cdf.rejected.is_empty());
    let ids: Vec<_> = cdf
        .objects
        .iter()
        .map(|c| (c.id.clone(), c.authority))
        .collect();
    assert_eq!(
        ids,
        [
            (Identifier(vec![0x01]), false),
            (Identifier(vec![0x02]), false)
        ]
    );
    assert_eq!(
        path_of(&cdf.objects[1].value).efid_or_path,
        hex("3F0050154302")
    );
}
