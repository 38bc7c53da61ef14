//! A long-lived PKCS#11 application for the real-stack suite
//! `tests/realstack/suite-real-life.sh` (issue 5): it loads the module once
//! and keeps it while the script pulls the card, puts it back, or restarts
//! pcscd, the way a browser holds its modules.
//!
//! ```sh
//! cargo build --release -p p11card-pkcs11 --example real_life_client
//! target/release/examples/real_life_client MODULE.so SCENARIO [ARGS]
//! ```
//!
//! Scenarios:
//! - `removal`: log in and sign; block in `C_WaitForSlotEvent` while the
//!   card is pulled; check the module's view of the removal; block again
//!   until the card is back; log in and sign again.
//! - `restart`: log in and sign; wait (without calling the module) until
//!   the file `$P11CARD_SYNC/restarted` appears (pcscd was restarted); log
//!   in and sign in a new session; report what the old session says.
//! - `restart-waiting`: log in and sign; block in `C_WaitForSlotEvent` while
//!   pcscd restarts, until the token is back; log in and sign.
//! - `reset`: log in and sign; wait for `$P11CARD_SYNC/reset-done` (another
//!   process reset the card); sign in the same session: the lost login must
//!   show as `CKR_USER_NOT_LOGGED_IN` (or the signature work), then `C_Login`
//!   and a signature must work.
//! - `threads N ROUNDS`: one session logs in; N threads, each with its own
//!   session, sign ROUNDS messages of their own (the login key and the
//!   second key in turn), each verified.
//! - `sign-loop N [--start-when FILE] [--pause-ms MS] [--linger-until FILE]`:
//!   log in, sign N times (each signature verified), log out.
//! - `poll N`: read the token once, print `poll-ready`, wait for
//!   `$P11CARD_SYNC/poll-go`, call `C_GetInfo`, `C_GetSlotList`,
//!   `C_GetSlotInfo`, `C_GetTokenInfo` and `C_GetSessionInfo` N times,
//!   print `poll-done`, wait for `$P11CARD_SYNC/poll-exit`.
//! - `always-auth`: with the always-authenticate key (default 02, PIV 9C):
//!   `C_SignInit`, `C_GetSessionInfo`, `C_Login(CKU_CONTEXT_SPECIFIC)` with
//!   its PIN, `C_GetSessionInfo`, then sign.
//!
//! Environment: `P11CARD_PIN` (default 123456), `P11CARD_TOKEN_LABEL` (the
//! token to use; default: the first one found), `P11CARD_SYNC` (directory of
//! the files the script and the client exchange), `P11CARD_SIG_OUT` (the last
//! signature is written there, its data to `$P11CARD_SIG_OUT.data`), and the
//! keys by their CKA_ID (one byte, hex): `P11CARD_KEY_ID` (the key that
//! signs after `C_Login`; default 01, PIV 9A), `P11CARD_SECOND_KEY_ID` (the
//! threads' other key; default 04, PIV 9E), `P11CARD_AA_KEY_ID` (the
//! always-authenticate key; default 02, PIV 9C) and `P11CARD_AA_PIN` (its
//! PIN; default `P11CARD_PIN`). The mechanism follows the key type:
//! `CKM_SHA256_RSA_PKCS` or `CKM_ECDSA_SHA256`.
//!
//! Output: one line per step on stdout; the script waits for the `ready-…`
//! lines. The exit status is 0 only if every step went as issue 5 says.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const DATA: &[u8] = b"p11card real life";

fn say(line: impl AsRef<str>) {
    println!("{}", line.as_ref());
}

/// Waits for a file to exist (polling, no module call).
fn wait_file(path: &Path, limit: Duration) -> Res<()> {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        if Instant::now() > deadline {
            return Err(format!("{} did not appear within {limit:?}", path.display()).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The return value inside a cryptoki error, if it is one.
fn rv(err: &P11Error) -> Option<RvError> {
    match err {
        P11Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// A one-byte CKA_ID from the environment variable `name` (hex), or `default`.
fn key_id(name: &str, default: u8) -> Res<u8> {
    match std::env::var(name) {
        Ok(hex) if !hex.is_empty() => {
            Ok(u8::from_str_radix(&hex, 16).map_err(|err| format!("{name}={hex}: {err}"))?)
        }
        _ => Ok(default),
    }
}

struct Client {
    p11: Pkcs11,
    pin: String,
    /// The key that signs after `C_Login` (CKA_ID).
    key: u8,
    /// The threads' second key.
    second_key: u8,
    /// The always-authenticate key and its PIN.
    aa_key: u8,
    aa_pin: String,
    label: Option<String>,
    sync: PathBuf,
    sig_out: Option<PathBuf>,
}

impl Client {
    fn new(module: &str) -> Res<Client> {
        let p11 = Pkcs11::new(module)?;
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        let pin = std::env::var("P11CARD_PIN").unwrap_or_else(|_| "123456".into());
        Ok(Client {
            p11,
            key: key_id("P11CARD_KEY_ID", 0x01)?,
            second_key: key_id("P11CARD_SECOND_KEY_ID", 0x04)?,
            aa_key: key_id("P11CARD_AA_KEY_ID", 0x02)?,
            aa_pin: std::env::var("P11CARD_AA_PIN")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| pin.clone()),
            pin,
            label: std::env::var("P11CARD_TOKEN_LABEL")
                .ok()
                .filter(|l| !l.is_empty()),
            sync: std::env::var("P11CARD_SYNC")
                .map(PathBuf::from)
                .unwrap_or_else(|_| std::env::temp_dir()),
            sig_out: std::env::var("P11CARD_SIG_OUT").ok().map(PathBuf::from),
        })
    }

    /// The slot holding our token now, if any.
    fn token_slot(&self) -> Res<Option<Slot>> {
        for slot in self.p11.get_slots_with_token()? {
            let Ok(info) = self.p11.get_token_info(slot) else {
                continue;
            };
            let label = info.label().trim_end();
            if self.label.as_deref().is_none_or(|wanted| wanted == label) {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// Polls `C_GetSlotList` until our token is there.
    fn wait_token(&self, limit: Duration) -> Res<Slot> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(slot) = self.token_slot()? {
                return Ok(slot);
            }
            if Instant::now() > deadline {
                return Err(format!("no token {:?} within {limit:?}", self.label).into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn token_present(&self, slot: Slot) -> Res<bool> {
        Ok(self.p11.get_slot_info(slot)?.token_present())
    }

    /// Blocks in `C_WaitForSlotEvent` until `slot`'s token presence is
    /// `present`; reports every event.
    fn wait_event_until(&self, slot: Slot, present: bool) -> Res<()> {
        loop {
            let started = Instant::now();
            let event = self.p11.wait_for_slot_event()?;
            let now_present = self.token_present(event)?;
            say(format!(
                "event: slot {} token {} (after {:?})",
                event.id(),
                if now_present { "present" } else { "absent" },
                started.elapsed()
            ));
            if event == slot && now_present == present {
                return Ok(());
            }
            if event != slot && self.token_present(slot)? == present {
                // Our slot changed too, but another slot's event came first.
                return Ok(());
            }
        }
    }

    fn object(&self, session: &Session, class: ObjectClass, id: u8) -> Res<ObjectHandle> {
        let found = session.find_objects(&[Attribute::Class(class), Attribute::Id(vec![id])])?;
        found
            .first()
            .copied()
            .ok_or_else(|| format!("no object of class {class} with CKA_ID {id:02x}").into())
    }

    fn mechanism(&self, session: &Session, key: ObjectHandle) -> Res<Mechanism<'static>> {
        let kind = session.get_attributes(key, &[AttributeType::KeyType])?;
        Ok(match kind.first() {
            Some(Attribute::KeyType(kind)) if *kind == KeyType::EC => Mechanism::EcdsaSha256,
            _ => Mechanism::Sha256RsaPkcs,
        })
    }

    fn keep(&self, signature: &[u8]) -> Res<()> {
        if let Some(out) = &self.sig_out {
            std::fs::write(out, signature)?;
            let mut data = out.clone().into_os_string();
            data.push(".data");
            std::fs::write(data, DATA)?;
        }
        Ok(())
    }

    /// Signs `DATA` with key `id`, verifies it with the module's public key
    /// and keeps it.
    fn sign(&self, session: &Session, id: u8) -> Res<Vec<u8>> {
        let signature = self.sign_data(session, id, DATA)?;
        self.keep(&signature)?;
        Ok(signature)
    }

    /// Signs `data` with key `id` and verifies it with the public key.
    fn sign_data(&self, session: &Session, id: u8, data: &[u8]) -> Res<Vec<u8>> {
        let key = self.object(session, ObjectClass::PRIVATE_KEY, id)?;
        let mechanism = self.mechanism(session, key)?;
        let signature = session.sign(&mechanism, key, data)?;
        let public = self.object(session, ObjectClass::PUBLIC_KEY, id)?;
        session.verify(&mechanism, public, data, &signature)?;
        Ok(signature)
    }

    fn login(&self, session: &Session) -> Res<()> {
        session.login(UserType::User, Some(&AuthPin::new(self.pin.clone().into())))?;
        Ok(())
    }

    /// A new session: log in, sign with the login key.
    fn login_and_sign(&self, slot: Slot) -> Res<Session> {
        let session = self.p11.open_ro_session(slot)?;
        self.login(&session)
            .map_err(|err| format!("C_Login: {err}"))?;
        self.sign(&session, self.key)
            .map_err(|err| format!("signing: {err}"))?;
        Ok(session)
    }

    fn sync_file(&self, name: &str) -> PathBuf {
        self.sync.join(name)
    }
}

fn removal(client: &Client) -> Res<()> {
    let slot = client.wait_token(Duration::from_secs(30))?;
    let session = client.login_and_sign(slot)?;
    say(format!("signed before removal (slot {})", slot.id()));
    say("ready-to-pull");
    client.wait_event_until(slot, false)?;
    let mut wrong = Vec::new();
    match client.p11.get_token_info(slot) {
        Err(err) if rv(&err) == Some(RvError::TokenNotPresent) => {}
        other => wrong.push(format!(
            "C_GetTokenInfo: {:?}, not CKR_TOKEN_NOT_PRESENT",
            other.map(|i| i.label().to_owned())
        )),
    }
    match session.get_session_info() {
        Err(err)
            if matches!(
                rv(&err),
                Some(RvError::DeviceRemoved | RvError::SessionHandleInvalid)
            ) => {}
        other => wrong.push(format!(
            "C_GetSessionInfo on the old session: {:?}",
            other.map(|i| i.session_state())
        )),
    }
    match client.sign(&session, client.key) {
        Err(_) => {}
        Ok(_) => wrong.push("the old session signed with the card pulled".into()),
    }
    say("removed: token not present, old session closed");
    say("ready-to-insert");
    client.wait_event_until(slot, true)?;
    let again = client
        .login_and_sign(slot)
        .map_err(|err| format!("after the card came back: {err}"))?;
    say("signed after reinsertion");
    again.logout()?;
    if !wrong.is_empty() {
        return Err(wrong.join("; ").into());
    }
    Ok(())
}

fn restart(client: &Client) -> Res<()> {
    let slot = client.wait_token(Duration::from_secs(30))?;
    let session = client.login_and_sign(slot)?;
    say(format!("signed before restart (slot {})", slot.id()));
    say("ready-to-restart");
    wait_file(&client.sync_file("restarted"), Duration::from_secs(120))?;
    say("pcscd restarted; carrying on");
    let slot = client.wait_token(Duration::from_secs(30))?;
    let first = client.login_and_sign(slot);
    let result = match first {
        Ok(new_session) => {
            say("signed after restart in a new session, first try");
            new_session.logout()?;
            Ok(())
        }
        Err(err) => {
            say(format!("FAIL first try after restart: {err}"));
            match client.login_and_sign(slot) {
                Ok(_) => say("(a second try worked)"),
                Err(err) => say(format!("(a second try failed too: {err})")),
            }
            Err(format!("first try after the pcscd restart: {err}").into())
        }
    };
    let old = match session.get_session_info() {
        Ok(info) => format!("open, {:?}", info.session_state()),
        Err(err) => format!("{err}"),
    };
    say(format!("the session from before the restart: {old}"));
    result
}

fn restart_waiting(client: &Client) -> Res<()> {
    let slot = client.wait_token(Duration::from_secs(30))?;
    let _session = client.login_and_sign(slot)?;
    say(format!("signed before restart (slot {})", slot.id()));
    say("ready-to-restart");
    // pcscd goes away: the token with it, then it comes back.
    client.wait_event_until(slot, false)?;
    say("token gone with pcscd");
    client.wait_event_until(slot, true)?;
    say("token back");
    let session = client
        .login_and_sign(slot)
        .map_err(|err| format!("after pcscd came back: {err}"))?;
    say("signed after restart");
    session.logout()?;
    Ok(())
}

fn reset(client: &Client) -> Res<()> {
    let slot = client.wait_token(Duration::from_secs(30))?;
    let session = client.login_and_sign(slot)?;
    say("signed before the reset");
    say("ready-to-reset");
    wait_file(&client.sync_file("reset-done"), Duration::from_secs(60))?;
    match client.sign(&session, client.key) {
        Ok(_) => {
            say("after the reset: signed (the login was restored)");
            return Ok(());
        }
        Err(err) => match err.downcast_ref::<P11Error>().and_then(rv) {
            Some(RvError::UserNotLoggedIn) => say("after the reset: CKR_USER_NOT_LOGGED_IN"),
            _ => return Err(format!("the first signature after the reset: {err}").into()),
        },
    }
    client
        .login(&session)
        .map_err(|err| format!("C_Login after the reset: {err}"))?;
    client
        .sign(&session, client.key)
        .map_err(|err| format!("signing after logging in again: {err}"))?;
    say("logged in again and signed");
    session.logout()?;
    Ok(())
}

fn threads(client: &Client, args: &[String]) -> Res<()> {
    let count: usize = args.first().ok_or("threads N ROUNDS")?.parse()?;
    let rounds: usize = args.get(1).ok_or("threads N ROUNDS")?.parse()?;
    let slot = client.wait_token(Duration::from_secs(30))?;
    let keeper = client.p11.open_ro_session(slot)?;
    client.login(&keeper)?;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..count)
            .map(|index| {
                scope.spawn(move || -> Result<(), String> {
                    let session = client
                        .p11
                        .open_ro_session(slot)
                        .map_err(|err| format!("thread {index}: C_OpenSession: {err}"))?;
                    for round in 0..rounds {
                        let data = format!("thread {index} round {round}");
                        let id = if (index + round) % 2 == 0 {
                            client.key
                        } else {
                            client.second_key
                        };
                        client
                            .sign_data(&session, id, data.as_bytes())
                            .map_err(|err| format!("thread {index} round {round}: {err}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|worker| match worker.join() {
                Ok(Ok(())) => None,
                Ok(Err(failure)) => Some(failure),
                Err(_) => Some("a thread panicked".into()),
            })
            .collect()
    });
    if !failures.is_empty() {
        return Err(failures.join("; ").into());
    }
    say(format!("{count} threads signed {rounds} times each"));
    client.sign(&keeper, client.key)?;
    keeper.logout()?;
    Ok(())
}

fn sign_loop(client: &Client, args: &[String]) -> Res<()> {
    let count: usize = args.first().ok_or("sign-loop N")?.parse()?;
    let mut start_when = None;
    let mut linger_until = None;
    let mut pause = Duration::ZERO;
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().ok_or("option without value")?;
        match arg.as_str() {
            "--start-when" => start_when = Some(PathBuf::from(value)),
            "--linger-until" => linger_until = Some(PathBuf::from(value)),
            "--pause-ms" => pause = Duration::from_millis(value.parse()?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let slot = client.wait_token(Duration::from_secs(30))?;
    let session = client.p11.open_ro_session(slot)?;
    client.login(&session)?;
    say("logged in");
    if let Some(file) = start_when {
        say("ready-to-start");
        wait_file(&file, Duration::from_secs(60))?;
    }
    for round in 1..=count {
        client
            .sign(&session, client.key)
            .map_err(|err| format!("signature {round} of {count}: {err}"))?;
        say(format!("signed {round}"));
        std::thread::sleep(pause);
    }
    say("loop-done");
    if let Some(file) = linger_until {
        wait_file(&file, Duration::from_secs(60))?;
    }
    session.logout()?;
    Ok(())
}

fn poll(client: &Client, args: &[String]) -> Res<()> {
    let count: usize = args.first().ok_or("poll N")?.parse()?;
    let slot = client.wait_token(Duration::from_secs(30))?;
    let session = client.p11.open_ro_session(slot)?;
    client.p11.get_token_info(slot)?;
    say("poll-ready");
    wait_file(&client.sync_file("poll-go"), Duration::from_secs(60))?;
    for _ in 0..count {
        client.p11.get_library_info()?;
        client.p11.get_slots_with_token()?;
        client.p11.get_slot_info(slot)?;
        client.p11.get_token_info(slot)?;
        session.get_session_info()?;
    }
    say("poll-done");
    wait_file(&client.sync_file("poll-exit"), Duration::from_secs(60))?;
    Ok(())
}

fn always_auth(client: &Client) -> Res<()> {
    let slot = client.wait_token(Duration::from_secs(30))?;
    let session = client.p11.open_ro_session(slot)?;
    client.login(&session)?;
    let key = client.object(&session, ObjectClass::PRIVATE_KEY, client.aa_key)?;
    let always = session.get_attributes(key, &[AttributeType::AlwaysAuthenticate])?;
    say(format!("key {:02x}: {always:?}", client.aa_key));
    let mechanism = client.mechanism(&session, key)?;
    session.sign_init(&mechanism, key)?;
    say(format!(
        "after C_SignInit: {:?}",
        session.get_session_info()?.session_state()
    ));
    session.login(
        UserType::ContextSpecific,
        Some(&AuthPin::new(client.aa_pin.clone().into())),
    )?;
    say(format!(
        "after the context login: {:?}",
        session.get_session_info()?.session_state()
    ));
    session.sign_update(DATA)?;
    let signature = session.sign_final()?;
    client.keep(&signature)?;
    say(format!(
        "signed with key {:02x} ({} bytes)",
        client.aa_key,
        signature.len()
    ));
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: real_life_client MODULE SCENARIO [ARGS]");
        std::process::exit(2);
    }
    let outcome = Client::new(&args[1]).and_then(|client| match args[2].as_str() {
        "removal" => removal(&client),
        "restart" => restart(&client),
        "restart-waiting" => restart_waiting(&client),
        "reset" => reset(&client),
        "threads" => threads(&client, &args[3..]),
        "sign-loop" => sign_loop(&client, &args[3..]),
        "poll" => poll(&client, &args[3..]),
        "always-auth" => always_auth(&client),
        other => Err(format!("unknown scenario {other}").into()),
    });
    match outcome {
        Ok(()) => say("PASS"),
        Err(err) => {
            say(format!("FAIL {err}"));
            std::process::exit(1);
        }
    }
}
