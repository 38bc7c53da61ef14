//! `p11card pin change` and `p11card pin unblock`.

use crate::messages::{exit_code, explain};
use crate::{exit, failure, the_card, Failure, Io};
use p11card::api::{Error, PinTries, TokenInfo};
use p11card::{Card, Context};
use zeroize::Zeroizing;

/// Reads one secret, or says why there is none.
fn read(io: &mut Io<'_>, prompt: &str, fd: Option<i32>) -> Result<Zeroizing<Vec<u8>>, Failure> {
    io.secrets
        .read(prompt, fd)
        .map_err(|why| Failure::new(format!("nothing was changed: {why}")))
}

/// The new PIN: asked twice on the terminal (once from a descriptor), and
/// checked against the card's lengths before the card sees it.
fn new_pin(
    io: &mut Io<'_>,
    fd: Option<i32>,
    info: &TokenInfo,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let new = read(io, "New PIN: ", fd)?;
    if fd.is_none() {
        let again = read(io, "New PIN again: ", None)?;
        if *again != *new {
            return Err(Failure::new("the two new PINs differ; nothing was changed"));
        }
    }
    if !(info.min_pin_length..=info.max_pin_length).contains(&new.len()) {
        return Err(Failure::new(format!(
            "{}; nothing was changed",
            explain(&Error::PinLength, Some(info))
        )));
    }
    Ok(new)
}

/// The failure for `err` from a PIN operation on `card`, with the tries
/// the card has left now.
fn pin_failure(card: &Card, err: &Error) -> Failure {
    let info = card.token_info().ok();
    let blocked = info
        .as_ref()
        .is_some_and(|info| info.pin_tries == PinTries::Blocked);
    Failure {
        message: explain(err, info.as_ref()),
        code: if blocked && matches!(err, Error::WrongPin { .. } | Error::PinBlocked) {
            exit::PIN_BLOCKED
        } else {
            exit_code(err)
        },
    }
}

/// The card's token information, and a line saying which card it is.
fn introduce(card: &Card, action: &str, io: &mut Io<'_>) -> Result<TokenInfo, Failure> {
    let info = card.token_info().map_err(|err| failure(&err))?;
    writeln!(
        io.out,
        "{action} the PIN of {:?} (serial {}) in {}.",
        info.label,
        info.serial,
        card.reader_name()
    )?;
    io.out.flush()?;
    Ok(info)
}

/// Changes the PIN: the current PIN, then the new one.
pub(crate) fn change(
    context: &Context,
    wanted: Option<&str>,
    pin_fd: Option<i32>,
    io: &mut Io<'_>,
) -> Result<u8, Failure> {
    let card = the_card(context, wanted)?;
    let info = introduce(&card, "Changing", io)?;
    if info.pin_tries == PinTries::Blocked {
        return Err(Failure {
            message: explain(&Error::PinBlocked, None),
            code: exit::PIN_BLOCKED,
        });
    }
    if info.pin_pad && pin_fd.is_none() {
        writeln!(
            io.out,
            "Type the current PIN, then the new PIN twice, on the reader's PIN pad."
        )?;
        io.out.flush()?;
        match card.change_pin_on_pin_pad() {
            Ok(()) => {
                writeln!(io.out, "The PIN was changed.")?;
                return Ok(exit::OK);
            }
            // A PIN pad that only verifies: the PINs come from the terminal.
            Err(Error::Unsupported(why)) => writeln!(io.out, "({why}: asking here instead.)")?,
            Err(err) => return Err(pin_failure(&card, &err)),
        }
    }
    let old = read(io, "Current PIN: ", pin_fd)?;
    let new = new_pin(io, pin_fd, &info)?;
    card.change_pin(&old, &new)
        .map_err(|err| pin_failure(&card, &err))?;
    writeln!(io.out, "The PIN was changed.")?;
    Ok(exit::OK)
}

/// Sets a new PIN with the unblocking code (PUK).
pub(crate) fn unblock(
    context: &Context,
    wanted: Option<&str>,
    puk_fd: Option<i32>,
    pin_fd: Option<i32>,
    io: &mut Io<'_>,
) -> Result<u8, Failure> {
    let card = the_card(context, wanted)?;
    let info = introduce(&card, "Unblocking", io)?;
    let puk = read(io, "PUK (unblocking code): ", puk_fd)?;
    let new = new_pin(io, pin_fd, &info)?;
    card.unblock_pin(&puk, &new)
        .map_err(|err| pin_failure(&card, &err))?;
    writeln!(io.out, "The PIN is unblocked and set to the new PIN.")?;
    Ok(exit::OK)
}
