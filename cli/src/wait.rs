//! `p11card wait`: waits for a card p11card knows.

use crate::{exit, failure, usable_cards, Failure, Io};
use p11card::api::Error;
use p11card::{Card, Context};
use std::time::{Duration, Instant};

/// Says which card arrived.
fn arrived(card: &Card, io: &mut Io<'_>) -> Result<u8, Failure> {
    let info = card.token_info().map_err(|err| failure(&err))?;
    writeln!(
        io.out,
        "Card {:?} (serial {}) is in {}.",
        info.label,
        info.serial,
        card.reader_name()
    )?;
    Ok(exit::OK)
}

/// How often `wait --reader` looks at the reader.
const POLL: Duration = Duration::from_millis(250);

/// Waits for a card in the reader `wanted` (by polling; it may be plugged
/// in meanwhile), at most `timeout`.
fn wait_in_reader(
    context: &Context,
    wanted: &str,
    timeout: Option<Duration>,
) -> Result<Card, Error> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    loop {
        if let Ok(mut cards) = usable_cards(context, Some(wanted)) {
            return Ok(cards.remove(0));
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(Error::NoCard);
        }
        std::thread::sleep(POLL);
    }
}

/// Waits for a card (in the reader `wanted`, if given), at most `timeout`
/// seconds; says what it waits for.
pub(crate) fn wait(
    context: &Context,
    wanted: Option<&str>,
    timeout: Option<u64>,
    io: &mut Io<'_>,
) -> Result<u8, Failure> {
    if let Ok(mut cards) = usable_cards(context, wanted) {
        return arrived(&cards.remove(0), io);
    }
    let readers = context.readers().map_err(|err| failure(&err))?;
    let names: Vec<&str> = readers.iter().map(|reader| reader.name()).collect();
    let place = match (wanted, names.as_slice()) {
        (Some(wanted), _) => format!("a reader called {wanted:?}"),
        (None, []) => "a card reader (or USB token) to be plugged in".to_string(),
        (None, [one]) => format!("the reader {one}"),
        (None, many) => format!("any of {} readers ({})", many.len(), many.join(", ")),
    };
    let limit = match timeout {
        Some(seconds) => format!(", for at most {seconds} seconds"),
        None => String::new(),
    };
    writeln!(
        io.out,
        "Waiting for a card p11card knows in {place}{limit}..."
    )?;
    io.out.flush()?;
    let timeout_duration = timeout.map(Duration::from_secs);
    let waited = match wanted {
        Some(wanted) => wait_in_reader(context, wanted, timeout_duration),
        None => context.wait_for_card(timeout_duration),
    };
    match waited {
        Ok(card) => arrived(&card, io),
        Err(err @ (Error::NoCard | Error::UnknownCard)) => {
            let what = if matches!(err, Error::UnknownCard) {
                "only a card p11card does not know arrived"
            } else {
                "no card arrived"
            };
            Err(Failure {
                message: format!("{what} within {} seconds", timeout.unwrap_or(0)),
                code: exit::NO_CARD,
            })
        }
        Err(err) => Err(failure(&err)),
    }
}
