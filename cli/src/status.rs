//! `p11card status`: each reader, its card, the card profile, the token,
//! the PIN's and the PUK's tries and the cache state; `--json` for scripts
//! (the same facts).

use crate::messages::{explain, tries_left, NO_READER};
use crate::{exit, failure, reader_matches, Failure, Io};
use p11card::api::{CacheUse, Error, PinTries, TokenInfo};
use p11card::{Context, Reader};
use serde::Serialize;
use std::io::Write;

/// What one reader's card amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    /// No card, or one p11card cannot use.
    NoCard,
    /// A card p11card knows, but its PIN is blocked.
    PinBlocked,
    /// A card p11card knows, PIN usable.
    Usable,
}

/// What `status --json` prints.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    readers: &'a [ReaderFacts],
    /// The best of the readers' verdicts.
    verdict: Verdict,
}

/// One reader, as `status` shows it.
#[derive(Debug, Serialize)]
struct ReaderFacts {
    reader: String,
    card_present: bool,
    /// The ATR, hex bytes separated by spaces.
    atr: Option<String>,
    /// The card profile that recognised the card.
    profile: Option<String>,
    /// Why the card cannot be used, in words.
    problem: Option<String>,
    token: Option<TokenFacts>,
    verdict: Verdict,
}

/// A recognised card's token.
#[derive(Debug, Serialize)]
struct TokenFacts {
    label: String,
    serial: String,
    manufacturer: String,
    model: String,
    pin: PinFacts,
    puk: PukFacts,
    /// `off`, `not-cached`, `read-from-card` or `used`.
    cache: &'static str,
    #[serde(skip)]
    cache_use: CacheUse,
}

/// The PIN's state.
#[derive(Debug, Serialize)]
struct PinFacts {
    /// `plenty`, `low`, `final-try` or `blocked` (the token flags).
    state: &'static str,
    #[serde(skip)]
    tries: PinTries,
    tries_left: Option<u8>,
    blocked: bool,
    min_length: usize,
    max_length: usize,
    pin_pad: bool,
}

/// The unblocking code's state (`null`s: the card does not say).
#[derive(Debug, Serialize)]
struct PukFacts {
    tries_left: Option<u8>,
    blocked: Option<bool>,
}

/// Shows each reader; exit status 0 if a usable card is present, 4 if the
/// only known cards have their PIN blocked, 3 otherwise.
pub(crate) fn status(
    context: &Context,
    wanted: Option<&str>,
    json: bool,
    io: &mut Io<'_>,
) -> Result<u8, Failure> {
    let readers = context.readers().map_err(|err| failure(&err))?;
    let readers: Vec<&Reader> = readers
        .iter()
        .filter(|reader| reader_matches(reader.name(), wanted))
        .collect();
    if readers.is_empty() {
        return Err(Failure {
            message: match wanted {
                Some(wanted) => format!("no reader called {wanted:?}"),
                None => NO_READER.to_string(),
            },
            code: exit::NO_CARD,
        });
    }
    let facts: Vec<ReaderFacts> = readers.into_iter().map(reader_facts).collect();
    let best = facts
        .iter()
        .map(|facts| facts.verdict)
        .max()
        .unwrap_or(Verdict::NoCard);
    if json {
        serde_json::to_writer_pretty(
            &mut *io.out,
            &StatusJson {
                readers: &facts,
                verdict: best,
            },
        )
        .map_err(|err| Failure::new(format!("cannot write the output: {err}")))?;
        writeln!(io.out)?;
    } else {
        for reader in &facts {
            show(reader, io.out)?;
        }
        let summary = match best {
            Verdict::Usable => "A usable card is present.",
            Verdict::PinBlocked => {
                "No usable card: the PIN is blocked; unblock it with `p11card pin unblock`."
            }
            Verdict::NoCard => "No usable card.",
        };
        writeln!(io.out, "{summary}")?;
    }
    Ok(match best {
        Verdict::Usable => exit::OK,
        Verdict::PinBlocked => exit::PIN_BLOCKED,
        Verdict::NoCard => exit::NO_CARD,
    })
}

/// What `status` knows of one reader (reads the card the first time).
fn reader_facts(reader: &Reader) -> ReaderFacts {
    let mut facts = ReaderFacts {
        reader: reader.name().to_string(),
        card_present: reader.has_card(),
        atr: None,
        profile: None,
        problem: None,
        token: None,
        verdict: Verdict::NoCard,
    };
    if !reader.has_card() {
        return facts;
    }
    match reader.atr() {
        Ok(atr) => facts.atr = Some(crate::messages::spaced_hex(&atr)),
        Err(err) => {
            facts.problem = Some(explain(&err, None));
            return facts;
        }
    }
    let card = match reader.card() {
        Ok(card) => card,
        Err(Error::UnknownCard) => {
            facts.problem = Some(unknown_card(reader));
            return facts;
        }
        Err(err) => {
            facts.problem = Some(explain(&err, None));
            return facts;
        }
    };
    let (profile, info) = match card.profile().and_then(|p| Ok((p, card.token_info()?))) {
        Ok(both) => both,
        Err(err) => {
            facts.problem = Some(explain(&err, None));
            return facts;
        }
    };
    // A card that cannot tell the PUK's tries without a try: unknown.
    let puk = card.puk_tries_left().ok().flatten();
    facts.verdict = if info.pin_tries == PinTries::Blocked {
        Verdict::PinBlocked
    } else {
        Verdict::Usable
    };
    facts.profile = Some(profile);
    facts.token = Some(token_facts(info, puk));
    facts
}

fn token_facts(info: TokenInfo, puk: Option<u8>) -> TokenFacts {
    TokenFacts {
        pin: PinFacts {
            state: match info.pin_tries {
                PinTries::Plenty => "plenty",
                PinTries::Low => "low",
                PinTries::FinalTry => "final-try",
                PinTries::Blocked => "blocked",
            },
            tries: info.pin_tries,
            tries_left: info.pin_tries_left,
            blocked: info.pin_tries == PinTries::Blocked,
            min_length: info.min_pin_length,
            max_length: info.max_pin_length,
            pin_pad: info.pin_pad,
        },
        puk: PukFacts {
            tries_left: puk,
            blocked: puk.map(|left| left == 0),
        },
        cache_use: info.cache,
        cache: match info.cache {
            CacheUse::Off => "off",
            CacheUse::NotCached => "not-cached",
            CacheUse::ReadFromCard => "read-from-card",
            CacheUse::Used => "used",
        },
        label: info.label,
        serial: info.serial,
        manufacturer: info.manufacturer,
        model: info.model,
    }
}

/// A profile whose ATR pattern differs from the card's in at most this many
/// bytes is named as the nearest (a card of the same family, another
/// version); further off, a name would mislead.
const NEAR_ATR_BYTES: usize = 3;

/// For a card no profile fits: "nearest: profile X, whose ATR differs in
/// N bytes", when a profile's ATR pattern is near.
pub(crate) fn nearest_profile(reader: &Reader) -> Option<String> {
    match reader.closest_profile() {
        // The ATR is the profile's, but its application did not answer.
        Ok(Some((name, 0))) => Some(format!(
            "its ATR is profile {name}'s, but the card application it names did not answer"
        )),
        Ok(Some((name, differing))) if differing <= NEAR_ATR_BYTES => Some(format!(
            "nearest: profile {name}, whose ATR differs in {differing} byte{}",
            if differing == 1 { "" } else { "s" }
        )),
        _ => None,
    }
}

/// Why a card is not known, naming the nearest profile when one is near.
fn unknown_card(reader: &Reader) -> String {
    match nearest_profile(reader) {
        Some(nearest) => format!("no profile fits this card (p11card does not know it; {nearest})"),
        None => "no profile fits this card (p11card does not know it)".to_string(),
    }
}

/// Prints one reader and its card.
fn show(facts: &ReaderFacts, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "Reader: {}", facts.reader)?;
    if !facts.card_present {
        return writeln!(out, "  Card:    none");
    }
    if let Some(atr) = &facts.atr {
        writeln!(out, "  Card:    present, ATR {atr}")?;
    }
    let Some(token) = &facts.token else {
        let problem = facts.problem.as_deref().unwrap_or("unknown");
        return match facts.atr {
            Some(_) if problem.starts_with("no profile fits") => {
                writeln!(out, "  Profile: {problem}")
            }
            _ => writeln!(out, "  Card:    {problem}"),
        };
    };
    writeln!(
        out,
        "  Profile: {}",
        facts.profile.as_deref().unwrap_or("?")
    )?;
    writeln!(out, "  Token:   {}", token.label)?;
    writeln!(out, "  Serial:  {}", token.serial)?;
    writeln!(out, "  Maker:   {} {}", token.manufacturer, token.model)?;
    let pin = if token.pin.blocked {
        "blocked; unblock it with `p11card pin unblock`".to_string()
    } else {
        tries_left(token.pin.tries, token.pin.tries_left)
    };
    let pad = if token.pin.pin_pad {
        ", entered on the reader's keypad"
    } else {
        ""
    };
    writeln!(
        out,
        "  PIN:     {pin} ({} to {} characters{pad})",
        token.pin.min_length, token.pin.max_length
    )?;
    let puk = match token.puk.tries_left {
        Some(0) => "blocked: the PIN can no longer be unblocked".to_string(),
        Some(1) => "1 try left".to_string(),
        Some(left) => format!("{left} tries left"),
        None => "unknown (the card does not tell without spending a try)".to_string(),
    };
    writeln!(out, "  PUK:     {puk}")?;
    let cache = match token.cache_use {
        CacheUse::Off => "off",
        CacheUse::NotCached => "on (this card's data is read from the card each time)",
        CacheUse::ReadFromCard => "on (read from the card)",
        CacheUse::Used => "used (keys and certificates from the disk cache)",
    };
    writeln!(out, "  Cache:   {cache}")
}
