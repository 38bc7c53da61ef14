# A Rust program on the crate's Rust API (examples/tls_client_auth: rustls,
# no PKCS#11, no C) logs in to the card and authenticates to
# openssl s_server -Verify with the card's certificate and key.
# (sourced by run.sh)
# card-families: piv

source "$(dirname "${BASH_SOURCE[0]}")/tls-server.sh"
RUST_TLS_CLIENT="$REPO_ROOT/target/release/examples/tls_client_auth"

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
    start_tls_server
    check_fn "rustls client (Rust API): a wrong PIN is refused with WrongPin, no connection" rust_tls_wrong_pin
    for slot in 9a 9e; do
        for version in 1.3 1.2; do
            check_fn "rustls client (Rust API) TLS $version client auth with key $(slot_id "$slot") ($(key_kind "$slot"))" \
                rust_tls_login "$slot" "$version"
        done
    done
fi
