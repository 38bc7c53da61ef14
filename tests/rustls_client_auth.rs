//! The TLS example's card key (`examples/tls_client_auth/card_key.rs`) in
//! a rustls handshake, in process: a simulated PIV card logs in, and a
//! rustls server that requires a client certificate from the card's CA
//! accepts the card's certificate, with ECDSA P-256 and RSA (PSS in TLS 1.3,
//! PKCS#1 v1.5 or PSS in TLS 1.2) keys.

#[path = "../examples/tls_client_auth/card_key.rs"]
mod card_key;

use card_key::CardClientCert;
use p11card::profile::ProfileSet;
use p11card::{Context, Key};
use p11card_cardsim::{ca_certificate_der, KeyType, SimBackend, SimPivCard, Slot};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConnection, Connection, RootCertStore, ServerConnection};
use std::io::{Read, Write};
use std::sync::Arc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The card's PIV authentication key (9A), after the login.
fn card_key(key_type: KeyType) -> Key {
    let card = SimPivCard::new().with_key(Slot::Authentication, key_type);
    let (backend, _card) = SimBackend::with_card(card);
    let card = Context::with_backend(Box::new(backend), ProfileSet::embedded())
        .first_card()
        .unwrap();
    card.login(b"123456").unwrap();
    card.keys()
        .unwrap()
        .into_iter()
        .find(|key| key.id() == [1])
        .unwrap()
}

/// Moves what `from` has to send into `to`.
fn pump(from: &mut Connection, to: &mut Connection) {
    let mut wire = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut wire).unwrap();
    }
    let mut incoming = wire.as_slice();
    while !incoming.is_empty() {
        to.read_tls(&mut incoming).unwrap();
        to.process_new_packets().unwrap();
    }
}

/// Runs a handshake with `key` as the client certificate and `version`,
/// then sends a line; returns the client certificate the server saw.
fn handshake(key: &Key, version: &'static rustls::SupportedProtocolVersion) -> Vec<u8> {
    let server_cert = rcgen::generate_simple_self_signed(["localhost".to_string()]).unwrap();
    let server_der = CertificateDer::from(server_cert.cert.der().to_vec());
    let server_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        server_cert.key_pair.serialize_der(),
    ));

    let mut client_roots = RootCertStore::empty();
    client_roots
        .add(CertificateDer::from(ca_certificate_der()))
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(client_roots.into(), provider())
        .build()
        .unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_der.clone()], server_key)
        .unwrap();

    let mut server_roots = RootCertStore::empty();
    server_roots.add(server_der).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(server_roots)
        .with_client_cert_resolver(Arc::new(CardClientCert::new(key).unwrap()));

    let name = ServerName::try_from("localhost").unwrap();
    let mut client: Connection = ClientConnection::new(Arc::new(client_config), name)
        .unwrap()
        .into();
    let mut server: Connection = ServerConnection::new(Arc::new(server_config))
        .unwrap()
        .into();
    // A TLS 1.2 or 1.3 handshake with client authentication takes at most
    // four flights each way.
    for _ in 0..8 {
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
        pump(&mut client, &mut server);
        pump(&mut server, &mut client);
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    assert_eq!(server.protocol_version(), Some(version.version));

    client.writer().write_all(b"hello from the card").unwrap();
    pump(&mut client, &mut server);
    let mut received = [0u8; 19];
    server.reader().read_exact(&mut received).unwrap();
    assert_eq!(&received, b"hello from the card");

    let seen = server
        .peer_certificates()
        .expect("the client sent a certificate");
    seen[0].to_vec()
}

#[test]
fn an_ecdsa_p256_card_key_authenticates_the_client_in_tls_1_3_and_1_2() {
    let key = card_key(KeyType::EccP256);
    let certificate = key.certificate().unwrap().der().to_vec();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        assert_eq!(handshake(&key, version), certificate);
    }
}

#[test]
fn an_rsa_card_key_authenticates_the_client_in_tls_1_3_and_1_2() {
    let key = card_key(KeyType::Rsa2048);
    let certificate = key.certificate().unwrap().der().to_vec();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        assert_eq!(handshake(&key, version), certificate);
    }
}

#[test]
fn an_ecdsa_p384_card_key_authenticates_the_client() {
    let key = card_key(KeyType::EccP384);
    let certificate = key.certificate().unwrap().der().to_vec();
    assert_eq!(handshake(&key, &rustls::version::TLS13), certificate);
}
