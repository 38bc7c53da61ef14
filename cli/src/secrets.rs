//! PINs and PUKs: asked on the terminal without echo, or read from a file
//! descriptor for automation; never from the command line. Each lives in a
//! zeroizing buffer.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use zeroize::Zeroizing;

/// The longest secret line taken (PINs and PUKs are far shorter).
const MAX_SECRET: usize = 256;

/// A source of PINs and PUKs.
pub trait Secrets {
    /// The next secret: the next line of file descriptor `fd` when given,
    /// else asked on the terminal with `prompt`, without echo. The error
    /// says, in words, why there is none.
    fn read(&mut self, prompt: &str, fd: Option<i32>) -> Result<Zeroizing<Vec<u8>>, String>;
}

/// The `p11card` command's secrets: lines of the file descriptors given
/// with `--pin-fd`/`--puk-fd` (each read once, to its end), else the
/// controlling terminal (`/dev/tty`) with echo off.
#[derive(Default)]
pub struct FdOrTerminal {
    lines: HashMap<i32, VecDeque<Zeroizing<Vec<u8>>>>,
}

impl Secrets for FdOrTerminal {
    fn read(&mut self, prompt: &str, fd: Option<i32>) -> Result<Zeroizing<Vec<u8>>, String> {
        match fd {
            Some(fd) => {
                let lines = match self.lines.entry(fd) {
                    Entry::Occupied(lines) => lines.into_mut(),
                    Entry::Vacant(entry) => entry.insert(read_lines(fd)?),
                };
                lines
                    .pop_front()
                    .ok_or_else(|| format!("file descriptor {fd} has no more lines"))
            }
            None => ask_on_terminal(prompt),
        }
    }
}

/// The lines of file descriptor `fd`, read to its end (through
/// `/proc/self/fd`, so no raw descriptor is adopted).
fn read_lines(fd: i32) -> Result<VecDeque<Zeroizing<Vec<u8>>>, String> {
    if fd < 0 {
        return Err(format!("{fd} is not a file descriptor"));
    }
    let mut file = File::open(format!("/proc/self/fd/{fd}"))
        .map_err(|err| format!("cannot read file descriptor {fd}: {err}"))?;
    let mut all = Zeroizing::new(Vec::with_capacity(4 * MAX_SECRET));
    // Read in steps into the zeroizing buffer (no reallocation leaves a copy
    // behind while it stays within its capacity).
    let mut chunk = Zeroizing::new([0u8; 64]);
    loop {
        let n = file
            .read(&mut chunk[..])
            .map_err(|err| format!("cannot read file descriptor {fd}: {err}"))?;
        if n == 0 {
            break;
        }
        if all.len() + n > all.capacity() {
            return Err(format!("file descriptor {fd} holds too much for PINs"));
        }
        all.extend_from_slice(&chunk[..n]);
    }
    let mut lines: VecDeque<Zeroizing<Vec<u8>>> = all
        .split(|&byte| byte == b'\n')
        .map(|line| Zeroizing::new(line.strip_suffix(b"\r").unwrap_or(line).to_vec()))
        .collect();
    while lines.back().is_some_and(|line| line.is_empty()) {
        lines.pop_back();
    }
    Ok(lines)
}

/// Asks for a secret on the controlling terminal with echo off; typing is
/// read key by key (backspace erases, Ctrl-C or Ctrl-D cancels), and the
/// terminal's settings are restored before returning.
fn ask_on_terminal(prompt: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions, SpecialCodeIndex};
    let no_terminal = |_| {
        "no terminal to ask for the PIN on; give it through a file descriptor \
         (--pin-fd N / --puk-fd N)"
            .to_string()
    };
    let mut tty = File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(no_terminal)?;
    let saved = tcgetattr(&tty).map_err(|err| no_terminal(std::io::Error::from(err)))?;
    let mut quiet = saved.clone();
    quiet
        .local_modes
        .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
    quiet.special_codes[SpecialCodeIndex::VMIN] = 1;
    quiet.special_codes[SpecialCodeIndex::VTIME] = 0;
    write!(tty, "{prompt}").map_err(|err| err.to_string())?;
    tty.flush().map_err(|err| err.to_string())?;
    tcsetattr(&tty, OptionalActions::Flush, &quiet).map_err(|err| err.to_string())?;
    let typed = read_keys(&mut tty);
    let restored = tcsetattr(&tty, OptionalActions::Now, &saved);
    let _ = writeln!(tty);
    restored.map_err(|err| format!("cannot restore the terminal: {err}"))?;
    typed
}

/// Reads keys up to Enter into a zeroizing buffer.
fn read_keys(tty: &mut File) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut typed = Zeroizing::new(Vec::with_capacity(MAX_SECRET));
    let mut key = Zeroizing::new([0u8; 1]);
    loop {
        let n = tty.read(&mut key[..]).map_err(|err| err.to_string())?;
        match (n, key[0]) {
            (0, _) | (_, 0x03) | (_, 0x04) => return Err("cancelled".to_string()),
            (_, b'\r' | b'\n') => return Ok(typed),
            (_, 0x7f | 0x08) => {
                typed.pop();
            }
            (_, byte) if typed.len() < MAX_SECRET => typed.push(byte),
            _ => return Err("that is too long for a PIN".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn lines_of_a_descriptor_are_handed_out_in_order() {
        let path = std::env::temp_dir().join(format!("p11card-cli-fd-{}", std::process::id()));
        std::fs::write(&path, b"123456\r\n654321\n\n").unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let fd = file.as_raw_fd();
        let mut secrets = FdOrTerminal::default();
        assert_eq!(secrets.read("", Some(fd)).unwrap().as_slice(), b"123456");
        assert_eq!(secrets.read("", Some(fd)).unwrap().as_slice(), b"654321");
        let none = secrets.read("", Some(fd)).unwrap_err();
        assert!(none.contains("no more lines"), "{none}");
        assert!(secrets.read("", Some(-1)).is_err());
    }
}
