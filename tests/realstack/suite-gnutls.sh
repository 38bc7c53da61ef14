# GnuTLS: p11tool, and TLS 1.3 / 1.2 handshakes with client-certificate
# authentication through pkcs11: URIs, against a server that requires and
# verifies the client certificate. TLS 1.3 with an RSA key needs RSA-PSS.
# card-families: piv pkcs15
# (sourced by run.sh)

source "$(dirname "${BASH_SOURCE[0]}")/tls-server.sh"

# p11tool exits non-zero when it cannot ask for a PIN; the listing is what counts.
TOKEN_URI="$(key_uri "$LOGIN_KEY" cert | sed 's/;id=.*//')"
check_output "p11tool --list-all-certs lists the card's certificates" "(Type: X.509 Certificate.*){$CARD_KEY_COUNT}" \
    bash -c "p11tool --provider $(printf '%q' "$MODULE") --list-all-certs '$TOKEN_URI' </dev/null 2>&1 | tr '\n' ' '; true"
check_output "p11tool --list-all (with the PIN) lists every object" "(Type: X.509 Certificate.*){$CARD_KEY_COUNT}.*(Type: Private key.*){$CARD_KEY_COUNT}|(Type: Private key.*){$CARD_KEY_COUNT}" \
    bash -c "GNUTLS_PIN=$PIN p11tool --provider $(printf '%q' "$MODULE") --login --list-all '$TOKEN_URI' 2>&1 | tr '\n' ' '"
check_output "p11tool --login --list-privkeys shows the PIN-protected keys" "(Type: Private key.*){$CARD_KEY_COUNT}" \
    bash -c "GNUTLS_PIN=$PIN p11tool --provider $(printf '%q' "$MODULE") --login --list-privkeys '$TOKEN_URI' 2>&1 | tr '\n' ' '"

start_tls_server

# gnutls_login SLOT VERSION: a TLS handshake with the card's key; the server's
# answer must name the card certificate's subject.
gnutls_login() {
    local slot="$1" version="$2"
    printf 'GET / HTTP/1.0\r\n\r\n' | GNUTLS_PIN="$PIN" timeout "$T" gnutls-cli --provider "$MODULE" \
        --x509certfile "$(key_uri "$slot" cert)" --x509keyfile "$(key_uri "$slot" private)" \
        --x509cafile "$SERVER_CA" --priority "NORMAL:-VERS-ALL:+VERS-$version" \
        -p "$TLS_PORT" localhost >"$WORK/gnutls-$slot-$version.log" 2>&1 || { cat "$WORK/gnutls-$slot-$version.log"; return 1; }
    grep -q "Description: (${version/TLS/TLS}" "$WORK/gnutls-$slot-$version.log" \
        && grep -q "Subject: .*CN=$(cert_cn "$slot")" "$WORK/gnutls-$slot-$version.log" \
        || { cat "$WORK/gnutls-$slot-$version.log"; return 1; }
}
for slot in $TLS_KEYS; do
    for version in TLS1.3 TLS1.2; do
        check_fn "gnutls-cli $version client auth with key $(slot_id "$slot") ($(key_kind "$slot") $(key_bits "$slot"))" \
            gnutls_login "$slot" "$version"
    done
done

wrong_pin_refused() {
    local out
    out=$(printf 'GET / HTTP/1.0\r\n\r\n' | GNUTLS_PIN=654321 timeout "$T" gnutls-cli --provider "$MODULE" \
        --x509certfile "$(key_uri "$LOGIN_KEY" cert)" --x509keyfile "$(key_uri "$LOGIN_KEY" private)" \
        --x509cafile "$SERVER_CA" -p "$TLS_PORT" localhost 2>&1) && return 1
    ! grep -q "Subject: .*CN=$(cert_cn "$LOGIN_KEY")" <<<"$out"
}
check_fn "gnutls-cli with a wrong PIN does not log in" wrong_pin_refused
# Restore the retry counter spent above.
check "right PIN afterwards" pkcs11-tool --module "$MODULE" --login --pin "$PIN" -O
