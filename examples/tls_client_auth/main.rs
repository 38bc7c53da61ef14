//! A Rust TLS client (rustls) that authenticates to the server with the
//! certificate and key on a smart card, through the `p11card` crate's Rust
//! API (no PKCS#11, no C): finds the card, logs in with the PIN from
//! `P11CARD_PIN`, sends `GET /` and prints the server's answer.
//!
//! ```sh
//! P11CARD_PIN=123456 cargo run --example tls_client_auth -- \
//!     --connect 127.0.0.1:4433 --server-ca server.pem [--server-name localhost] [--key-id 01] [--tls 1.2|1.3]
//! ```
//!
//! Without `--key-id`, the first key with a certificate that can sign
//! without asking for the PIN again (not PIV 9C) is used.

mod card_key;

use card_key::CardClientCert;
use p11card::{Context, Key};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

type Failure = Box<dyn std::error::Error>;

struct Options {
    connect: String,
    server_ca: String,
    server_name: String,
    key_id: Option<Vec<u8>>,
    /// The TLS versions to offer (default: 1.3 and 1.2).
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
}

fn options() -> Result<Options, Failure> {
    let mut args = std::env::args().skip(1);
    let (mut connect, mut server_ca, mut server_name, mut key_id) =
        (None, None, "localhost".to_string(), None);
    let mut versions = rustls::DEFAULT_VERSIONS.to_vec();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} wants a value"));
        match flag.as_str() {
            "--connect" => connect = Some(value()?),
            "--server-ca" => server_ca = Some(value()?),
            "--server-name" => server_name = value()?,
            "--key-id" => key_id = Some(hex(&value()?)?),
            "--tls" => {
                versions = match value()?.as_str() {
                    "1.2" => vec![&rustls::version::TLS12],
                    "1.3" => vec![&rustls::version::TLS13],
                    other => return Err(format!("--tls 1.2 or 1.3, not {other}").into()),
                }
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(Options {
        connect: connect.ok_or("--connect HOST:PORT is required")?,
        server_ca: server_ca.ok_or("--server-ca FILE.pem is required")?,
        server_name,
        key_id,
        versions,
    })
}

fn hex(text: &str) -> Result<Vec<u8>, Failure> {
    if text.len() % 2 != 0 {
        return Err("a key ID is an even number of hex digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|at| Ok(u8::from_str_radix(&text[at..at + 2], 16)?))
        .collect()
}

/// The key to authenticate with: the one asked for, or the first that has a
/// certificate and signs without a fresh PIN.
fn pick_key(keys: Vec<Key>, id: Option<&[u8]>) -> Option<Key> {
    keys.into_iter().find(|key| match id {
        Some(id) => key.id() == id,
        None => {
            key.certificate().is_some()
                && key
                    .capabilities()
                    .is_some_and(|caps| caps.sign && !caps.pin_every_use)
        }
    })
}

fn main() -> Result<(), Failure> {
    let options = options()?;
    let pin = Zeroizing::new(
        std::env::var("P11CARD_PIN").map_err(|_| "set P11CARD_PIN to the card's PIN")?,
    );

    let card = Context::new().first_card()?;
    let info = card.token_info()?;
    println!(
        "card {:?} (serial {}) in {}",
        info.label,
        info.serial,
        card.reader_name()
    );
    card.login(pin.as_bytes())?;
    drop(pin);
    let key = pick_key(card.keys()?, options.key_id.as_deref()).ok_or("no usable key")?;
    let subject = key.certificate().map_or("", |cert| cert.subject());
    println!(
        "key {:?} ({:?}), certificate {subject}",
        key.label(),
        key.kind()
    );

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&options.server_ca)? {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&options.versions)?
    .with_root_certificates(roots)
    .with_client_cert_resolver(Arc::new(CardClientCert::new(&key)?));
    let server_name = ServerName::try_from(options.server_name)?;
    let connection = rustls::ClientConnection::new(Arc::new(config), server_name)?;
    let socket = TcpStream::connect(&options.connect)?;
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    tls.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut answer = Vec::new();
    // A server that closes without close_notify (openssl s_server -www)
    // ends the answer with an error after the data: keep what came.
    if let Err(err) = tls.read_to_end(&mut answer) {
        if answer.is_empty() {
            return Err(err.into());
        }
    }
    let version = tls.conn.protocol_version();
    println!("connected with {version:?}; the server answered:");
    std::io::stdout().write_all(&answer)?;
    Ok(())
}
