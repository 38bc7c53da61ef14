//! The readers, the cards in them, their tokens, PINs and certificates.

use super::{Findings, START_PCSCD};
use crate::messages::{explain, tries_left};
use crate::reader_matches;
use p11card::api::{CacheUse, Error, Key, PinTries, TokenInfo};
use p11card::Context;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// How long before a certificate's end the doctor warns.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// A time as `2025-01-31`.
fn day(time: SystemTime) -> String {
    match der::DateTime::from_system_time(time) {
        Ok(at) => format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day()),
        Err(_) => "(out of range)".to_string(),
    }
}

pub(super) fn check_cards(
    context: &Context,
    wanted: Option<&str>,
    now: SystemTime,
    findings: &mut Findings,
) {
    let readers = match context.readers() {
        Ok(readers) => readers,
        Err(err) => {
            findings.problem(
                format!("the readers cannot be listed: {}", explain(&err, None)),
                START_PCSCD,
            );
            return;
        }
    };
    let readers: Vec<_> = readers
        .into_iter()
        .filter(|reader| reader_matches(reader.name(), wanted))
        .collect();
    if readers.is_empty() {
        match wanted {
            Some(wanted) => findings.problem(
                format!("no reader called {wanted:?}"),
                "check the name with `p11card status` (without --reader)",
            ),
            None => findings.problem(
                "no card reader found",
                "plug in the reader (or the USB token); if it is plugged in, \
                 check that pcscd sees it (sudo systemctl restart pcscd)",
            ),
        }
        return;
    }
    let names: Vec<&str> = readers.iter().map(|reader| reader.name()).collect();
    findings.ok(format!(
        "{} reader{}: {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    ));
    let mut cards = 0;
    for reader in &readers {
        let _ = writeln!(findings.cards, "Reader: {}", reader.name());
        if !reader.has_card() {
            let _ = writeln!(findings.cards, "  Card: none");
            continue;
        }
        cards += 1;
        let name = reader.name();
        let atr = match reader.atr() {
            Ok(atr) => crate::messages::spaced_hex(&atr),
            Err(err) => {
                findings.problem(
                    format!(
                        "the card in {name} does not answer: {}",
                        explain(&err, None)
                    ),
                    "take it out, put it back in, and run `p11card doctor` again",
                );
                continue;
            }
        };
        let _ = writeln!(findings.cards, "  ATR: {atr}");
        let card = match reader.card() {
            Ok(card) => card,
            Err(Error::UnknownCard) => {
                let _ = writeln!(findings.cards, "  Profile: none fits");
                let nearest = match crate::status::nearest_profile(reader) {
                    Some(nearest) => {
                        let _ = writeln!(findings.cards, "  {nearest}");
                        format!(" ({nearest})")
                    }
                    None => String::new(),
                };
                findings.problem(
                    format!(
                        "the card in {name} (ATR {atr}) is not one p11card knows: \
                         no card profile fits it{nearest}"
                    ),
                    "check it is a PIV, OpenPGP or PKCS#15 (MyEID) card; otherwise \
                     send the report (`p11card doctor --report FILE`) to whoever supports p11card",
                );
                continue;
            }
            Err(err) => {
                findings.problem(
                    format!("the card in {name} cannot be read: {}", explain(&err, None)),
                    "take it out, put it back in, and run `p11card doctor` again",
                );
                continue;
            }
        };
        let profile = card.profile().unwrap_or_else(|_| "?".to_string());
        findings.ok(format!(
            "the card in {name} is recognised: profile {profile}"
        ));
        let _ = writeln!(findings.cards, "  Profile: {profile}");
        let info = match card.token_info() {
            Ok(info) => info,
            Err(err) => {
                findings.problem(
                    format!(
                        "the token in {name} cannot be read: {}",
                        explain(&err, None)
                    ),
                    "take the card out, put it back in, and run `p11card doctor` again",
                );
                continue;
            }
        };
        describe_token(&info, &mut findings.cards);
        let keys = match card.keys() {
            Ok(keys) => keys,
            Err(err) => {
                findings.problem(
                    format!(
                        "the keys of {:?} cannot be read: {}",
                        info.label,
                        explain(&err, None)
                    ),
                    "take the card out, put it back in, and run `p11card doctor` again",
                );
                continue;
            }
        };
        let with_cert = keys
            .iter()
            .filter(|key| key.certificate().is_some())
            .count();
        findings.ok(format!(
            "token {:?} (serial {}) is readable: {} key{}, {with_cert} with a certificate",
            info.label,
            info.serial,
            keys.len(),
            if keys.len() == 1 { "" } else { "s" },
        ));
        check_pin(&info, findings);
        match card.puk_tries_left() {
            Ok(Some(0)) => findings.problem(
                "the PUK (unblocking code) is blocked: a blocked PIN can no longer be unblocked",
                "ask whoever issued the card to reset or replace it",
            ),
            Ok(Some(left)) => {
                let _ = writeln!(findings.cards, "  PUK: {left} tries left");
                findings.ok(format!("PUK: {}", tries_left(PinTries::Plenty, Some(left))));
            }
            Ok(None) => {
                let _ = writeln!(findings.cards, "  PUK: unknown");
            }
            Err(err) => findings.note(
                format!("the PUK's tries could not be read: {}", explain(&err, None)),
                None::<&str>,
            ),
        }
        for key in &keys {
            describe_key(key, &mut findings.cards);
            check_certificate(key, now, findings);
        }
    }
    if cards == 0 {
        findings.problem("no card in any reader", "insert the card");
    }
}

/// The token's facts for the report.
fn describe_token(info: &TokenInfo, out: &mut String) {
    let _ = writeln!(out, "  Token: {}", info.label);
    let _ = writeln!(out, "  Serial: {}", info.serial);
    let _ = writeln!(out, "  Maker: {} {}", info.manufacturer, info.model);
    let _ = writeln!(
        out,
        "  PIN: {} ({} to {} characters{})",
        tries_left(info.pin_tries, info.pin_tries_left),
        info.min_pin_length,
        info.max_pin_length,
        if info.pin_pad { ", PIN pad" } else { "" }
    );
    let cache = match info.cache {
        CacheUse::Off => "off",
        CacheUse::NotCached => "on, this card not cached",
        CacheUse::ReadFromCard => "on, read from the card",
        CacheUse::Used => "used",
    };
    let _ = writeln!(out, "  Cache: {cache}");
}

/// A key's public facts for the report.
fn describe_key(key: &Key, out: &mut String) {
    let id: String = key.id().iter().map(|byte| format!("{byte:02x}")).collect();
    let kind = match crate::list::kind(key.kind()) {
        (name, _, Some(curve)) => format!("{name} {curve}"),
        (name, bits, None) => format!("{name} {bits}"),
    };
    let _ = writeln!(out, "  Key {:?} id {id}: {kind}", key.label());
    if let Some(cert) = key.certificate() {
        let _ = writeln!(out, "    Certificate: {}", cert.subject());
        let _ = writeln!(out, "    Issuer: {}", cert.issuer());
        let _ = writeln!(
            out,
            "    Valid: {} to {}",
            cert.not_before().map_or("?".to_string(), day),
            cert.not_after().map_or("?".to_string(), day)
        );
    }
}

fn check_pin(info: &TokenInfo, findings: &mut Findings) {
    match (info.pin_tries, info.pin_tries_left) {
        (PinTries::Blocked, _) => findings.problem(
            "the PIN is blocked",
            "unblock it with `p11card pin unblock` (you need the card's PUK)",
        ),
        (PinTries::FinalTry, _) | (_, Some(1)) => findings.problem(
            "the PIN has 1 try left: one more wrong PIN blocks it",
            "enter it carefully; if you do not know it, set a new one with \
             `p11card pin unblock`",
        ),
        (tries, left) => findings.ok(format!("PIN: {}", tries_left(tries, left))),
    }
}

fn check_certificate(key: &Key, now: SystemTime, findings: &mut Findings) {
    let Some(cert) = key.certificate() else {
        return;
    };
    let what = format!(
        "the certificate {:?} (key {:?})",
        cert.subject(),
        key.label()
    );
    let renew = "ask whoever issued the card for a new certificate";
    match (cert.not_before(), cert.not_after()) {
        (_, Some(until)) if now > until => {
            findings.problem(format!("{what} expired on {}", day(until)), renew)
        }
        (Some(from), _) if now < from => findings.problem(
            format!("{what} is not valid before {}", day(from)),
            "check the computer's date and time; if they are right, wait or ask \
             whoever issued the card",
        ),
        (_, Some(until)) if until.duration_since(now).unwrap_or_default() < EXPIRY_WARNING => {
            findings.note(
                format!("{what} expires on {}, within 30 days", day(until)),
                Some(renew),
            )
        }
        (_, until) => findings.ok(format!(
            "{what} is valid until {}",
            until.map_or("?".to_string(), day)
        )),
    }
}
