//! Records the simulated cards (p11card-cardsim) as the fuzz targets'
//! fixtures (`fixtures/*.txt`) and seed corpora (`seeds/<target>/`):
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//! ```
//!
//! Each card is enumerated the way the module does it
//! (`p11card_fuzz::enumerate`) through a link that logs every exchange;
//! the seeds are those exchanges in the form each target reads.

use flate2::write::ZlibEncoder;
use p11card::iso7816::tlv;
use p11card::profile::{NoRecall, Recall};
use p11card::transport::{Transmit, TransportError};
use p11card_cardsim::{
    ca_certificate_der, KeyRole, PgpKeyType, SimApplet, SimOpenPgpCard, SimPivCard,
};
use p11card_fuzz::{commands, encode_frames, enumerate, fixture_text, Remembered};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An ATR no profile names (identification probes the AIDs).
const UNKNOWN_ATR: &[u8] = &[
    0x3B, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xFF, 0x01, 0x00, 0x0B,
];

/// A simulated card behind a link that logs each exchange.
struct Recorder {
    card: SimApplet,
    log: Vec<(Vec<u8>, Vec<u8>)>,
    extended: Option<bool>,
}

impl Transmit for Recorder {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let answer = self.card.process(command);
        self.log.push((command.to_vec(), answer.clone()));
        Ok(answer)
    }

    fn extended_length(&self) -> Option<bool> {
        self.extended
    }

    fn note_extended_length(&mut self, works: bool) {
        self.extended = Some(works);
    }
}

/// One enumeration of a card: its ATR, the exchanges, the certificates
/// the engine found.
struct Recording {
    atr: Vec<u8>,
    log: Vec<(Vec<u8>, Vec<u8>)>,
    certificates: Vec<(u8, Vec<u8>)>,
}

impl Recording {
    fn of(card: impl Into<SimApplet>, atr: Option<&[u8]>, recall: &dyn Recall) -> Recording {
        let card = card.into();
        let atr = atr.map_or_else(|| card.atr().to_vec(), <[u8]>::to_vec);
        let mut recorder = Recorder {
            card,
            log: Vec::new(),
            extended: None,
        };
        let info = enumerate(&atr, &mut recorder, recall).expect("the simulated card enumerates");
        let certificates = info
            .keys
            .iter()
            .filter_map(|key| Some((key.reference, key.certificate.clone()?)))
            .collect();
        Recording {
            atr,
            log: recorder.log,
            certificates,
        }
    }

    /// The exchanges with GET RESPONSE chains joined: each command with
    /// its whole answer.
    fn joined(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (command, answer) in &self.log {
            let is_get_response = matches!(command.as_slice(), [0x00, 0xC0, ..]);
            match out.last_mut() {
                Some((_, previous)) if is_get_response => {
                    previous.truncate(previous.len() - 2);
                    previous.extend_from_slice(answer);
                }
                _ => out.push((command.clone(), answer.clone())),
            }
        }
        out
    }

    /// The whole answers to the commands `pick` accepts, in order.
    fn answers(&self, pick: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        self.joined()
            .into_iter()
            .filter(|(command, _)| pick(command))
            .map(|(_, answer)| answer)
            .collect()
    }

    /// The answers in order, as the card sent them (`card_enumeration`).
    fn raw_answers(&self) -> Vec<&[u8]> {
        self.log
            .iter()
            .map(|(_, answer)| answer.as_slice())
            .collect()
    }
}

/// Writes seed files into `seeds/<target>/`, named by number.
struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn new(root: &Path, target: &str) -> Seeds {
        let dir = root.join("seeds").join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("old seeds removed");
        }
        std::fs::create_dir_all(&dir).expect("seed directory");
        Seeds { dir, count: 0 }
    }

    fn add(&mut self, name: &str, bytes: &[u8]) {
        self.count += 1;
        let path = self.dir.join(format!("{:02}-{name}", self.count));
        std::fs::write(path, bytes).expect("seed written");
    }

    fn frames(&mut self, name: &str, answers: &[Vec<u8>]) {
        self.add(name, &encode_frames(answers.iter().map(Vec::as_slice)));
    }
}

fn with_sw(mut data: Vec<u8>) -> Vec<u8> {
    data.extend_from_slice(&[0x90, 0x00]);
    data
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("compressed");
    encoder.finish().expect("compressed")
}

/// A PIV certificate object: 53 { 70 cert, 71 CertInfo, FE }.
fn piv_container(certificate: &[u8], cert_info: u8) -> Vec<u8> {
    let mut body = tlv::encode(0x70, certificate);
    body.extend(tlv::encode(0x71, &[cert_info]));
    body.extend(tlv::encode(0xFE, &[]));
    tlv::encode(0x53, &body)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // PIV: the default card read fresh, then with its certificates
    // remembered (GET METADATA proves them); the fixture holds both.
    let piv = Recording::of(SimPivCard::new(), None, &NoRecall);
    let remembered = Remembered(piv.certificates.clone());
    let piv_recalled = Recording::of(SimPivCard::new(), None, &remembered);
    let piv_signed = Recording::of(
        SimPivCard::new().with_signed_chuid(&[0x5A; 64]),
        None,
        &NoRecall,
    );
    let piv_probed = Recording::of(SimPivCard::new(), Some(UNKNOWN_ATR), &NoRecall);
    let mut apdus = piv.joined();
    apdus.extend(piv_recalled.joined());
    write_fixture(
        root,
        "piv",
        &fixture_text(
            "the simulated PIV card",
            &piv.atr,
            &piv.certificates,
            &apdus,
        ),
    );

    // OpenPGP: the default card with two cardholder certificates for the
    // fixture, and cards with each other algorithm for seeds.
    let openpgp_card = || SimOpenPgpCard::new().with_test_cert(KeyRole::Signature);
    let openpgp = Recording::of(openpgp_card(), None, &NoRecall);
    write_fixture(
        root,
        "openpgp",
        &fixture_text(
            "the simulated OpenPGP card",
            &openpgp.atr,
            &[],
            &openpgp.joined(),
        ),
    );
    let openpgp_variants = vec![
        Recording::of(
            SimOpenPgpCard::new()
                .with_key(KeyRole::Signature, PgpKeyType::Ed25519)
                .with_key(KeyRole::Decryption, PgpKeyType::X25519)
                .with_key(KeyRole::Authentication, PgpKeyType::Ed25519)
                .with_pw1_valid_for_several_signatures(true),
            None,
            &NoRecall,
        ),
        Recording::of(
            SimOpenPgpCard::new()
                .with_key(KeyRole::Signature, PgpKeyType::P384)
                .with_key(KeyRole::Decryption, PgpKeyType::P256)
                .with_test_cert(KeyRole::Signature),
            None,
            &NoRecall,
        ),
        Recording::of(openpgp_card(), Some(UNKNOWN_ATR), &NoRecall),
    ];
    let all_openpgp: Vec<&Recording> = std::iter::once(&openpgp).chain(&openpgp_variants).collect();
    let all_piv = [&piv, &piv_recalled, &piv_signed, &piv_probed];

    let mut seeds = Seeds::new(root, "apdu_response");
    let mut raw: Vec<&[u8]> = all_piv
        .iter()
        .chain(&all_openpgp)
        .flat_map(|r| r.raw_answers())
        .filter(|answer| answer.len() <= 300)
        .collect();
    raw.sort();
    raw.dedup();
    for answer in raw.iter().take(40) {
        seeds.add("answer", answer);
    }

    let mut seeds = Seeds::new(root, "ber_tlv");
    let mut data: Vec<Vec<u8>> = all_piv
        .iter()
        .chain(&all_openpgp)
        .flat_map(|r| r.joined())
        .map(|(_, answer)| answer[..answer.len() - 2].to_vec())
        .filter(|data| !data.is_empty())
        .collect();
    data.sort();
    data.dedup();
    for data in &data {
        seeds.add("data", data);
    }

    let mut seeds = Seeds::new(root, "x509_certificate");
    seeds.add("ca", &ca_certificate_der());
    for recording in all_piv.iter().take(1).chain(&all_openpgp) {
        for (reference, der) in &recording.certificates {
            seeds.add(&format!("key-{reference:02x}"), der);
        }
    }

    let mut seeds = Seeds::new(root, "piv_certificate");
    for answer in piv.answers(commands::piv_certificate) {
        seeds.frames("container", &[answer]);
    }
    for (reference, der) in &piv.certificates {
        seeds.frames(
            &format!("zlib-{reference:02x}"),
            &[with_sw(piv_container(&zlib(der), 0x01))],
        );
        seeds.frames(
            &format!("plain-{reference:02x}"),
            &[with_sw(piv_container(der, 0x00))],
        );
    }

    let mut seeds = Seeds::new(root, "piv_chuid");
    for recording in [&piv, &piv_signed] {
        seeds.frames("chuid", &recording.answers(commands::piv_chuid)[..1]);
    }

    let mut seeds = Seeds::new(root, "piv_metadata");
    let metadata = piv_recalled.answers(commands::piv_metadata);
    assert!(
        !metadata.is_empty(),
        "the remembered read asks GET METADATA"
    );
    seeds.frames("metadata", &metadata);

    let mut seeds = Seeds::new(root, "openpgp_application_data");
    for recording in &all_openpgp {
        seeds.frames(
            "6e-5b-7a",
            &recording.answers(commands::openpgp_application_data),
        );
    }

    let mut seeds = Seeds::new(root, "openpgp_pw_status");
    for recording in &all_openpgp {
        seeds.frames("c4", &recording.answers(commands::openpgp_pw_status));
    }

    let mut seeds = Seeds::new(root, "openpgp_public_key");
    for recording in &all_openpgp {
        seeds.frames("7f49", &recording.answers(commands::openpgp_public_key));
    }

    let mut seeds = Seeds::new(root, "openpgp_cardholder_certificate");
    for recording in &all_openpgp {
        seeds.frames(
            "7f21",
            &recording.answers(commands::openpgp_cardholder_certificate),
        );
    }

    let mut seeds = Seeds::new(root, "atr");
    for recording in all_piv.iter().take(1).chain(&all_openpgp) {
        seeds.add("atr", &recording.atr);
    }
    seeds.add("unknown", UNKNOWN_ATR);

    let mut seeds = Seeds::new(root, "card_enumeration");
    for (selector, recording) in [
        (0u8, &piv),
        (4, &piv_recalled),
        (0, &piv_signed),
        (2, &piv_probed),
        (1, &openpgp),
        (1, &openpgp_variants[0]),
        (1, &openpgp_variants[1]),
        (2, &openpgp_variants[2]),
    ] {
        let mut seed = vec![selector];
        seed.extend(encode_frames(recording.raw_answers()));
        seeds.add("card", &seed);
    }

    channel_seeds(root, &piv);
    cache_seeds(root, &piv);

    let mut seeds = Seeds::new(root, "profile_toml");
    let mut profiles: Vec<PathBuf> = std::fs::read_dir(root.join("../cardprofiles"))
        .expect("cardprofiles/")
        .map(|entry| entry.expect("profile").path())
        .collect();
    profiles.sort();
    for path in profiles {
        let name = path.file_name().expect("file name").to_string_lossy();
        seeds.add(&name, &std::fs::read(&path).expect("profile read"));
    }
    seeds.add(
        "config.toml",
        b"profile_dirs = [\"/etc/p11card/profiles\"]\ndisabled_profiles = [\"piv\"]\n\
          log_level = \"debug\"\ncache = true\ncache_max_age_hours = 12\n",
    );
}

/// `channel`: flags, CLA INS P1 P2, Le selector, data length, answers.
fn channel_seeds(root: &Path, piv: &Recording) {
    let mut seeds = Seeds::new(root, "channel");
    let mut seed = |name: &str, header: [u8; 8], answers: &[&[u8]]| {
        let mut bytes = header.to_vec();
        bytes.extend(encode_frames(answers.iter().copied()));
        seeds.add(name, &bytes);
    };
    // A certificate read in short APDUs: 61xx and GET RESPONSE.
    let start = piv
        .log
        .iter()
        .position(|(command, _)| commands::piv_authentication_certificate(command))
        .expect("the 9A certificate was read");
    let chain: Vec<&[u8]> = std::iter::once(&piv.log[start])
        .chain(
            piv.log[start + 1..]
                .iter()
                .take_while(|(command, _)| command[1] == 0xC0),
        )
        .map(|(_, answer)| answer.as_slice())
        .collect();
    seed("get-response", [0, 0x00, 0xCB, 0x3F, 0xFF, 1, 0, 5], &chain);
    seed(
        "wrong-le",
        [0, 0x00, 0xCA, 0x00, 0x6E, 1, 0, 0],
        &[&[0x6C, 0x04], &[1, 2, 3, 4, 0x90, 0x00]],
    );
    seed(
        "chained",
        [0, 0x00, 0x87, 0x07, 0x9A, 2, 2, 0x58],
        &[
            &[0x90, 0x00],
            &[0x90, 0x00],
            &[0xAA, 0x61, 0x02],
            &[1, 2, 0x90, 0x00],
        ],
    );
    seed(
        "extended",
        [1, 0x00, 0x87, 0x07, 0x9A, 2, 1, 0x2C],
        &[&[0xBB, 0x90, 0x00]],
    );
    seed(
        "extended-refused",
        [1, 0x00, 0xCB, 0x3F, 0xFF, 2, 0, 5],
        &[&[0x67, 0x00], &[0x01, 0x61, 0x01], &[0x02, 0x90, 0x00]],
    );
}

/// `cache_file`: flags, then a well-formed entry after the magic and key
/// (stored_at, count, objects: kind, name length, name, length, data) with
/// the PIV card's certificates (kind 1) and an empty 9C slot's GET
/// METADATA answer (kind 2).
fn cache_seeds(root: &Path, piv: &Recording) {
    let mut seeds = Seeds::new(root, "cache_file");
    let mut body = vec![7u8];
    body.extend_from_slice(&0u64.to_be_bytes());
    body.extend_from_slice(&(piv.certificates.len() as u16 + 1).to_be_bytes());
    for (reference, der) in &piv.certificates {
        body.extend_from_slice(&[1, 1, *reference]);
        body.extend_from_slice(&(der.len() as u32).to_be_bytes());
        body.extend_from_slice(der);
    }
    body.extend_from_slice(&[2, 1, 0x9C, 0, 0, 0, 1, 0x00]);
    seeds.add("entry", &body);
    let mut one = vec![7u8];
    one.extend_from_slice(&0u64.to_be_bytes());
    one.extend_from_slice(&1u16.to_be_bytes());
    one.extend_from_slice(&[1, 1, 0x9A]);
    one.extend_from_slice(&3u32.to_be_bytes());
    one.extend_from_slice(&[0x30, 0x01, 0x00]);
    seeds.add("bad-certificate", &one);
}

fn write_fixture(root: &Path, name: &str, text: &str) {
    let path = root.join("fixtures").join(format!("{name}.txt"));
    std::fs::write(&path, text).expect("fixture written");
    println!("wrote {}", path.display());
}
