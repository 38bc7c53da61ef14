//! `p11card status`: each reader, its card, the card profile, the token and
//! the PIN's tries.

use crate::messages::{explain, tries_left, NO_READER};
use crate::{exit, failure, reader_matches, Failure, Io};
use p11card::api::{Error, PinTries};
use p11card::{Context, Reader};
use std::io::Write;

/// What one reader's card amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    /// No card, or one p11card cannot use.
    NoCard,
    /// A card p11card knows, but its PIN is blocked.
    Blocked,
    /// A card p11card knows, PIN usable.
    Usable,
}

/// Shows each reader; exit status 0 if a usable card is present, 4 if the
/// only known cards have their PIN blocked, 3 otherwise.
pub(crate) fn status(
    context: &Context,
    wanted: Option<&str>,
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
    let mut best = Verdict::NoCard;
    for reader in readers {
        best = best.max(show_reader(reader, io.out)?);
    }
    let summary = match best {
        Verdict::Usable => "A usable card is present.",
        Verdict::Blocked => {
            "No usable card: the PIN is blocked; unblock it with `p11card pin unblock`."
        }
        Verdict::NoCard => "No usable card.",
    };
    writeln!(io.out, "{summary}")?;
    Ok(match best {
        Verdict::Usable => exit::OK,
        Verdict::Blocked => exit::PIN_BLOCKED,
        Verdict::NoCard => exit::NO_CARD,
    })
}

/// Hex bytes separated by spaces.
fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints one reader and its card.
fn show_reader(reader: &Reader, out: &mut dyn Write) -> Result<Verdict, Failure> {
    writeln!(out, "Reader: {}", reader.name())?;
    if !reader.has_card() {
        writeln!(out, "  Card:    none")?;
        return Ok(Verdict::NoCard);
    }
    match reader.atr() {
        Ok(atr) => writeln!(out, "  Card:    present, ATR {}", spaced_hex(&atr))?,
        Err(err) => {
            writeln!(out, "  Card:    {}", explain(&err, None))?;
            return Ok(Verdict::NoCard);
        }
    }
    let card = match reader.card() {
        Ok(card) => card,
        Err(Error::UnknownCard) => {
            writeln!(
                out,
                "  Profile: no profile fits this card (p11card does not know it)"
            )?;
            return Ok(Verdict::NoCard);
        }
        Err(err) => {
            writeln!(out, "  Card:    {}", explain(&err, None))?;
            return Ok(Verdict::NoCard);
        }
    };
    let (profile, info) = match card.profile().and_then(|p| Ok((p, card.token_info()?))) {
        Ok(both) => both,
        Err(err) => {
            writeln!(out, "  Card:    {}", explain(&err, None))?;
            return Ok(Verdict::NoCard);
        }
    };
    writeln!(out, "  Profile: {profile}")?;
    writeln!(out, "  Token:   {}", info.label)?;
    writeln!(out, "  Serial:  {}", info.serial)?;
    writeln!(out, "  Maker:   {} {}", info.manufacturer, info.model)?;
    let blocked = info.pin_tries == PinTries::Blocked;
    let pin = if blocked {
        "blocked; unblock it with `p11card pin unblock`".to_string()
    } else {
        tries_left(info.pin_tries, info.pin_tries_left)
    };
    let pad = if info.pin_pad {
        ", entered on the reader's keypad"
    } else {
        ""
    };
    writeln!(
        out,
        "  PIN:     {pin} ({} to {} characters{pad})",
        info.min_pin_length, info.max_pin_length
    )?;
    Ok(if blocked {
        Verdict::Blocked
    } else {
        Verdict::Usable
    })
}
