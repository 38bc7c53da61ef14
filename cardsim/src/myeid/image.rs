//! The MyEID card's persistent state as text (a "card image"), so that a
//! card personalised once by `pkcs15-init` can be started again as it was.
//! One item per line, hex for bytes; the private keys are test keys.
//!
//! ```text
//! myeid-image 1
//! activated yes
//! serial 00000000001234567890
//! change-counter 42
//! pin 1 313233343536FFFF 3132333435363738FFFF… 3/3 10/10
//! file 3F00/5015/4401 desc=01 size=255 acl=003F00 prop=0000 name=- data=A8…
//! key 3F00/5015/4B01 rsa n=… e=010001 d=… p=… q=…
//! key 3F00/5015/4B02 p256 d=…
//! ```

use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey};

use super::fs::{FilePath, FileSystem, Node};
use super::pin::{PinRecord, MAX_PIN_REF};
use super::SimMyEidCard;
use crate::keys::PrivateKey;

const MAGIC: &str = "myeid-image 1";

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if text == "-" {
        return Ok(Vec::new());
    }
    if text.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in {text:.20}"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| format!("bad hex in {text:.20}"))
        })
        .collect()
}

fn path_text(path: &[u16]) -> String {
    path.iter()
        .map(|f| format!("{f:04X}"))
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_path(text: &str) -> Result<FilePath, String> {
    text.split('/')
        .map(|f| u16::from_str_radix(f, 16).map_err(|_| format!("bad path {text}")))
        .collect()
}

/// `name=value` fields of one line.
fn field<'a>(fields: &[&'a str], name: &str) -> Result<&'a str, String> {
    fields
        .iter()
        .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .ok_or_else(|| format!("missing {name}="))
}

fn fixed<const N: usize>(bytes: Vec<u8>) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{} bytes where {N} belong", b.len()))
}

fn tries(text: &str) -> Result<(u8, u8), String> {
    let (left, max) = text.split_once('/').ok_or("tries want LEFT/MAX")?;
    let parse = |t: &str| t.parse::<u8>().map_err(|_| format!("bad tries {text}"));
    Ok((parse(left)?, parse(max)?))
}

fn key_line(path: &[u16], key: &PrivateKey) -> String {
    match key {
        PrivateKey::Rsa(k) => {
            let primes = k.primes();
            let part = |i: usize| {
                primes
                    .get(i)
                    .map(|p| hex(&p.to_bytes_be()))
                    .unwrap_or_default()
            };
            format!(
                "key {} rsa n={} e={} d={} p={} q={}",
                path_text(path),
                hex(&k.n().to_bytes_be()),
                hex(&k.e().to_bytes_be()),
                hex(&k.d().to_bytes_be()),
                part(0),
                part(1)
            )
        }
        PrivateKey::P256(k) => format!("key {} p256 d={}", path_text(path), hex(&k.to_bytes())),
        PrivateKey::P384(k) => format!("key {} p384 d={}", path_text(path), hex(&k.to_bytes())),
    }
}

fn parse_key(kind: &str, fields: &[&str]) -> Result<PrivateKey, String> {
    let num = |name: &str| -> Result<BigUint, String> {
        Ok(BigUint::from_bytes_be(&unhex(field(fields, name)?)?))
    };
    match kind {
        "rsa" => {
            let key = RsaPrivateKey::from_components(
                num("n")?,
                num("e")?,
                num("d")?,
                vec![num("p")?, num("q")?],
            )
            .map_err(|e| format!("RSA key: {e}"))?;
            Ok(PrivateKey::Rsa(Box::new(key)))
        }
        "p256" => p256::ecdsa::SigningKey::from_slice(&unhex(field(fields, "d")?)?)
            .map(PrivateKey::P256)
            .map_err(|_| "bad P-256 key".into()),
        "p384" => p384::ecdsa::SigningKey::from_slice(&unhex(field(fields, "d")?)?)
            .map(PrivateKey::P384)
            .map_err(|_| "bad P-384 key".into()),
        _ => Err(format!("unknown key type {kind}")),
    }
}

impl SimMyEidCard {
    /// The card's persistent state as text (see the module documentation):
    /// files, keys, PINs with their counters, life cycle, change counter.
    pub fn to_image(&self) -> String {
        let mut out = format!(
            "{MAGIC}\nactivated {}\nserial {}\nchange-counter {}\n",
            if self.activated { "yes" } else { "no" },
            hex(&self.serial),
            self.change_counter
        );
        for (reference, pin) in self.pins.iter().enumerate() {
            if let Some(p) = pin {
                out += &format!(
                    "pin {reference} {} {} {}/{} {}/{}\n",
                    hex(&p.pin),
                    hex(&p.puk),
                    p.pin_tries,
                    p.pin_max,
                    p.puk_tries,
                    p.puk_max
                );
            }
        }
        for (path, node) in self.fs.iter() {
            out += &format!(
                "file {} desc={:02X} size={} acl={} prop={} name={} data={}\n",
                path_text(path),
                node.descriptor,
                node.size,
                hex(&node.acl),
                hex(&node.prop),
                hex(&node.name),
                hex(&node.data)
            );
        }
        for (path, node) in self.fs.iter() {
            if let Some(key) = &node.key {
                out += &key_line(path, key);
                out.push('\n');
            }
        }
        out
    }

    /// A card with the state of `image` (from [`to_image`](Self::to_image)),
    /// powered on.
    pub fn from_image(image: &str) -> Result<Self, String> {
        let mut lines = image.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(MAGIC) {
            return Err(format!(
                "not a MyEID card image (first line is not {MAGIC:?})"
            ));
        }
        let mut card = SimMyEidCard::new();
        let mut fs = FileSystem::default();
        for (number, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = |e: String| format!("image line {}: {e}", number + 2);
            match fields.as_slice() {
                ["activated", yes] => card.activated = *yes == "yes",
                ["serial", s] => card.serial = fixed(unhex(s).map_err(at)?).map_err(at)?,
                ["change-counter", n] => {
                    card.change_counter = n.parse().map_err(|_| at(format!("bad counter {n}")))?
                }
                ["pin", reference, pin, puk, pin_tries, puk_tries] => {
                    let reference = reference
                        .parse::<u8>()
                        .ok()
                        .filter(|r| (1..=MAX_PIN_REF).contains(r))
                        .ok_or_else(|| at(format!("bad PIN reference {reference}")))?;
                    let (pin_tries, pin_max) = tries(pin_tries).map_err(at)?;
                    let (puk_tries, puk_max) = tries(puk_tries).map_err(at)?;
                    card.pins[usize::from(reference)] = Some(PinRecord {
                        pin: fixed(unhex(pin).map_err(at)?).map_err(at)?,
                        puk: fixed(unhex(puk).map_err(at)?).map_err(at)?,
                        pin_tries,
                        pin_max,
                        puk_tries,
                        puk_max,
                    });
                }
                ["file", path, rest @ ..] => {
                    let get = |name: &str| field(rest, name).map_err(at);
                    let node = Node {
                        descriptor: fixed::<1>(unhex(get("desc")?).map_err(at)?).map_err(at)?[0],
                        size: get("size")?.parse().map_err(|_| at("bad size".into()))?,
                        acl: fixed(unhex(get("acl")?).map_err(at)?).map_err(at)?,
                        prop: fixed(unhex(get("prop")?).map_err(at)?).map_err(at)?,
                        name: unhex(get("name")?).map_err(at)?,
                        data: unhex(get("data")?).map_err(at)?,
                        key: None,
                    };
                    fs.insert_loaded(parse_path(path).map_err(at)?, node)
                        .map_err(at)?;
                }
                ["key", path, kind, rest @ ..] => {
                    let path = parse_path(path).map_err(at)?;
                    let key = parse_key(kind, rest).map_err(at)?;
                    let node = fs
                        .get_mut(&path)
                        .filter(|n| n.is_key())
                        .ok_or_else(|| at(format!("no key EF {}", path_text(&path))))?;
                    node.key = Some(key);
                }
                _ => return Err(at(format!("unknown line {line:.40}"))),
            }
        }
        if fs.get(&[super::fs::MF]).is_none() {
            return Err("the image has no MF".into());
        }
        card.fs = fs;
        Ok(card)
    }
}
