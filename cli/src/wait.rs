//! `p11card wait`: waits for a card p11card knows.

use crate::{exit, failure, Failure, Io};
use p11card::api::Error;
use p11card::{Card, Context};
use std::time::Duration;

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

/// Waits for a card, at most `timeout` seconds; says what it waits for.
pub(crate) fn wait(
    context: &Context,
    timeout: Option<u64>,
    io: &mut Io<'_>,
) -> Result<u8, Failure> {
    if let Ok(card) = context.first_card() {
        return arrived(&card, io);
    }
    let readers = context.readers().map_err(|err| failure(&err))?;
    let names: Vec<&str> = readers.iter().map(|reader| reader.name()).collect();
    let place = match names.as_slice() {
        [] => "a card reader (or USB token) to be plugged in".to_string(),
        [one] => format!("the reader {one}"),
        many => format!("any of {} readers ({})", many.len(), many.join(", ")),
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
    match context.wait_for_card(timeout.map(Duration::from_secs)) {
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
