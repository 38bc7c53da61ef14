//! `p11card list`: the keys of each card, with their certificates and the
//! `pkcs11:` URIs programs can use; `--json` for scripts.

use crate::messages::explain;
use crate::{failure, pkcs11_uri, usable_cards, Failure, Io};
use p11card::api::{Certificate, EcCurve, Error, Key, KeyKind};
use p11card::{Card, Context};
use serde::Serialize;
use std::io::Write;
use std::time::SystemTime;

/// `p11card list`'s options.
pub(crate) struct Options {
    pub(crate) json: bool,
    pub(crate) login: bool,
    pub(crate) pin_fd: Option<i32>,
}

/// What `list --json` prints.
#[derive(Debug, Serialize)]
struct Listing<'a> {
    cards: &'a [CardEntry],
}

/// One card, as listed.
#[derive(Debug, Serialize)]
struct CardEntry {
    reader: String,
    token: String,
    serial: String,
    keys: Vec<KeyEntry>,
}

/// One key, as listed.
#[derive(Debug, Serialize)]
struct KeyEntry {
    label: String,
    /// `CKA_ID`, hex.
    id: String,
    /// `RSA`, `EC`, `Ed25519`, `X25519`.
    key_type: &'static str,
    /// The RSA modulus or the curve's size, in bits.
    bits: usize,
    /// The curve of an EC key (`P-256`, `P-384`).
    curve: Option<&'static str>,
    /// What the key may do; `null` entries are known only after a login.
    usage: Usage,
    /// The key wants the PIN right before each use (`null`: known after a
    /// login).
    pin_every_use: Option<bool>,
    certificate: Option<CertificateEntry>,
    uri: String,
}

/// What a key may do.
#[derive(Debug, Serialize)]
struct Usage {
    sign: bool,
    decrypt: Option<bool>,
    derive: Option<bool>,
}

/// A key's certificate.
#[derive(Debug, Serialize)]
struct CertificateEntry {
    subject: String,
    issuer: String,
    not_before: Option<String>,
    not_after: Option<String>,
    expired: bool,
    not_yet_valid: bool,
}

/// The key type, its size in bits and its curve.
pub(crate) fn kind(kind: KeyKind) -> (&'static str, usize, Option<&'static str>) {
    match kind {
        KeyKind::Rsa { bits } => ("RSA", bits, None),
        KeyKind::Ec(EcCurve::P256) => ("EC", 256, Some("P-256")),
        KeyKind::Ec(EcCurve::P384) => ("EC", 384, Some("P-384")),
        KeyKind::Ed25519 => ("Ed25519", 256, None),
        KeyKind::X25519 => ("X25519", 256, None),
        _ => ("unknown", 0, None),
    }
}

/// A time as `2025-01-31 12:00:00 UTC`.
fn date(time: SystemTime) -> String {
    match der::DateTime::from_system_time(time) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minutes(),
            at.seconds()
        ),
        Err(_) => "(out of range)".to_string(),
    }
}

/// Whether a certificate valid from `not_before` to `not_after` has
/// expired, or is not valid yet, at `now`.
pub(crate) fn validity_flags(
    not_before: Option<SystemTime>,
    not_after: Option<SystemTime>,
    now: SystemTime,
) -> (bool, bool) {
    (
        not_after.is_some_and(|until| now > until),
        not_before.is_some_and(|from| now < from),
    )
}

fn certificate(cert: &Certificate, now: SystemTime) -> CertificateEntry {
    let (expired, not_yet_valid) = validity_flags(cert.not_before(), cert.not_after(), now);
    CertificateEntry {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: cert.not_before().map(date),
        not_after: cert.not_after().map(date),
        expired,
        not_yet_valid,
    }
}

fn key(token: &str, key: &Key, now: SystemTime) -> KeyEntry {
    let (key_type, bits, curve) = kind(key.kind());
    let capabilities = key.capabilities();
    KeyEntry {
        label: key.label().to_string(),
        id: key.id().iter().map(|byte| format!("{byte:02x}")).collect(),
        key_type,
        bits,
        curve,
        usage: Usage {
            sign: capabilities.map_or(key.can_sign(), |c| c.sign),
            decrypt: capabilities.map(|c| c.decrypt),
            derive: capabilities.map(|c| c.derive),
        },
        pin_every_use: capabilities.map(|c| c.pin_every_use),
        certificate: key.certificate().map(|cert| certificate(cert, now)),
        uri: pkcs11_uri(token, key.id()),
    }
}

/// Logs in to `card` with the PIN from `--pin-fd` or the terminal.
fn login(card: &Card, pin_fd: Option<i32>, io: &mut Io<'_>) -> Result<(), Failure> {
    let info = card.token_info().map_err(|err| failure(&err))?;
    let prompt = format!("PIN for {}: ", info.label);
    let pin = io
        .secrets
        .read(&prompt, pin_fd)
        .map_err(|why| Failure::new(format!("no PIN: {why}")))?;
    match card.login(&pin) {
        Ok(()) | Err(Error::AlreadyLoggedIn) => Ok(()),
        Err(err) => {
            let info = card.token_info().ok();
            Err(Failure {
                message: explain(&err, info.as_ref()),
                code: crate::messages::exit_code(&err),
            })
        }
    }
}

/// Lists the keys of each usable card.
pub(crate) fn list(
    context: &Context,
    wanted: Option<&str>,
    options: Options,
    io: &mut Io<'_>,
) -> Result<u8, Failure> {
    let now = SystemTime::now();
    let mut entries = Vec::new();
    for card in usable_cards(context, wanted)? {
        if options.login {
            login(&card, options.pin_fd, io)?;
        }
        let info = card.token_info().map_err(|err| failure(&err))?;
        let keys = card.keys().map_err(|err| failure(&err))?;
        entries.push(CardEntry {
            reader: card.reader_name().to_string(),
            serial: info.serial.clone(),
            keys: keys.iter().map(|k| key(&info.label, k, now)).collect(),
            token: info.label,
        });
        if options.login {
            let _ = card.logout();
        }
    }
    if options.json {
        serde_json::to_writer_pretty(&mut *io.out, &Listing { cards: &entries })
            .map_err(|err| Failure::new(format!("cannot write the output: {err}")))?;
        writeln!(io.out)?;
    } else {
        for entry in &entries {
            show(entry, io.out)?;
        }
    }
    Ok(crate::exit::OK)
}

/// Prints one card's keys for people.
fn show(card: &CardEntry, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Token {:?} (serial {}) in {}: {} keys",
        card.token,
        card.serial,
        card.reader,
        card.keys.len()
    )?;
    for key in &card.keys {
        writeln!(out)?;
        writeln!(out, "  Key {:?}", key.label)?;
        writeln!(out, "    ID:          {}", key.id)?;
        let size = match key.curve {
            Some(curve) => curve.to_string(),
            None => format!("{} bits", key.bits),
        };
        writeln!(out, "    Type:        {} {size}", key.key_type)?;
        let mut may = Vec::new();
        if key.usage.sign {
            may.push("sign");
        }
        if key.usage.decrypt == Some(true) {
            may.push("decrypt");
        }
        if key.usage.derive == Some(true) {
            may.push("derive");
        }
        let mut usage = if may.is_empty() {
            "nothing".to_string()
        } else {
            may.join(", ")
        };
        if key.usage.decrypt.is_none() {
            usage.push_str(" (decrypt and derive: shown with --login)");
        }
        if key.pin_every_use == Some(true) {
            usage.push_str("; asks for the PIN before each use");
        }
        writeln!(out, "    May:         {usage}")?;
        match &key.certificate {
            Some(cert) => {
                writeln!(out, "    Certificate: {}", cert.subject)?;
                writeln!(out, "    Issuer:      {}", cert.issuer)?;
                let flag = if cert.expired {
                    "  EXPIRED"
                } else if cert.not_yet_valid {
                    "  NOT YET VALID"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "    Valid:       {} to {}{flag}",
                    cert.not_before.as_deref().unwrap_or("?"),
                    cert.not_after.as_deref().unwrap_or("?")
                )?;
            }
            None => writeln!(out, "    Certificate: none")?,
        }
        writeln!(out, "    URI:         {}", key.uri)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expired_and_not_yet_valid_are_flagged() {
        let day = Duration::from_secs(86_400);
        let now = SystemTime::UNIX_EPOCH + 1000 * day;
        let past = SystemTime::UNIX_EPOCH + 10 * day;
        let future = now + day;
        assert_eq!(
            validity_flags(Some(past), Some(future), now),
            (false, false)
        );
        assert_eq!(validity_flags(Some(past), Some(past), now), (true, false));
        assert_eq!(
            validity_flags(Some(future), Some(future), now),
            (false, true)
        );
        assert_eq!(validity_flags(None, None, now), (false, false));
        assert_eq!(
            date(SystemTime::UNIX_EPOCH + day),
            "1970-01-02 00:00:00 UTC"
        );
    }
}
