# A Rust program on the crate's Rust API (examples/tls_client_auth: rustls,
# no PKCS#11, no C) logs in to the card and authenticates to
# openssl s_server -Verify with the card's certificate and key.
# (sourced by run.sh)
# card-families: piv

RUST_TLS_CLIENT="$REPO_ROOT/target/release/examples/tls_client_auth"

# rust_tls_server: like tls-server.sh's start_tls_server (s_server -Verify
# with the card's CA, -www answers with the client certificate), with a
# server certificate rustls takes: webpki refuses a CA certificate as the
# server's own (OpenSSL's `req -x509` default), so CA:FALSE. Sets TLS_PORT
# and SERVER_CA.
rust_tls_server() {
    SERVER_CA="$WORK/rust-tls-server.pem"
    timeout "$T" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$WORK/rust-tls-server.key" -out "$SERVER_CA" -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=serverAuth" >/dev/null 2>&1
    TLS_PORT="$(free_port)"
    timeout 600 openssl s_server -accept "$TLS_PORT" -cert "$SERVER_CA" -key "$WORK/rust-tls-server.key" \
        -CAfile "$PROV/ca.pem" -Verify 1 -verify_return_error -www >"$WORK/rust-tls-s_server.log" 2>&1 &
    local pid=$!
    on_exit stop_pid "$pid"
    wait_port "$TLS_PORT"
}

# rust_tls_login SLOT VERSION [PIN]: the example connects with the key of
# SLOT over TLS VERSION; the server's answer names the client certificate.
rust_tls_login() {
    local slot="$1" version="$2" pin="${3:-$PIN}" out
    out=$(P11CARD_PIN="$pin" timeout "$T" "$RUST_TLS_CLIENT" --connect "127.0.0.1:$TLS_PORT" \
        --server-ca "$SERVER_CA" --key-id "$(slot_id "$slot")" --tls "$version" 2>&1) || { echo "$out"; return 1; }
    grep -q "Subject: .*CN *= *$(cert_cn "$slot")\|Subject: .*CN=$(cert_cn "$slot")" <<<"$out" || { echo "$out"; return 1; }
}

# rust_tls_wrong_pin: a wrong PIN ends the program with the Rust API's
# typed error before any connection (the next check logs in correctly, so
# the card gets its tries back).
rust_tls_wrong_pin() {
    local out
    if out=$(P11CARD_PIN=000000 timeout "$T" "$RUST_TLS_CLIENT" --connect "127.0.0.1:$TLS_PORT" \
        --server-ca "$SERVER_CA" 2>&1); then
        echo "$out"; return 1
    fi
    grep -q "WrongPin" <<<"$out" || { echo "$out"; return 1; }
}

if ! (cd "$REPO_ROOT" && timeout 1200 cargo build --release --locked -p p11card --example tls_client_auth) \
    >"$WORK/rust-tls-build.log" 2>&1; then
    fail "rust-tls: building examples/tls_client_auth"
    tail -20 "$WORK/rust-tls-build.log" | sed 's/^/        /'
else
    rust_tls_server
    check_fn "rustls client (Rust API): a wrong PIN is refused with WrongPin, no connection" rust_tls_wrong_pin
    for slot in 9a 9e; do
        for version in 1.3 1.2; do
            check_fn "rustls client (Rust API) TLS $version client auth with key $(slot_id "$slot") ($(key_kind "$slot"))" \
                rust_tls_login "$slot" "$version"
        done
    done
fi
