# OpenSSL 3 with the pkcs11 engine (libp11, Debian libengine-pkcs11-openssl):
# signatures, and s_client client-certificate TLS against s_server -Verify.
# card-families: piv pkcs15
# (sourced by run.sh)

source "$(dirname "${BASH_SOURCE[0]}")/tls-server.sh"
export PKCS11_MODULE_PATH="$MODULE"
on_exit unset PKCS11_MODULE_PATH

printf 'data signed through the OpenSSL engine' >"$WORK/engine-in.txt"
engine_sign() { # slot
    local slot="$1" key
    key="$(key_uri "$slot" private);pin-value=$PIN"
    timeout "$T" openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$key" \
        -out "$WORK/engine-$slot.sig" "$WORK/engine-in.txt" || return 1
    openssl dgst -sha256 -verify "$PROV/pub$slot.pem" -signature "$WORK/engine-$slot.sig" "$WORK/engine-in.txt"
}
for slot in $ENGINE_KEYS; do
    check_fn "openssl dgst -engine pkcs11 signs with key $(slot_id "$slot") ($(key_kind "$slot")), openssl verifies" engine_sign "$slot"
done

start_tls_server
s_client_login() { # slot version
    local slot="$1" version="$2" out
    out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout "$T" openssl s_client -engine pkcs11 -keyform engine \
        -key "$(key_uri "$slot" private);pin-value=$PIN" -cert "$PROV/cert$slot.pem" \
        -CAfile "$SERVER_CA" "-$version" -connect "127.0.0.1:$TLS_PORT" -quiet 2>&1) || { echo "$out"; return 1; }
    grep -q "Subject: .*CN *= *$(cert_cn "$slot")\|Subject: .*CN=$(cert_cn "$slot")" <<<"$out" || { echo "$out"; return 1; }
}
for slot in $ENGINE_KEYS; do
    for version in tls1_3 tls1_2; do
        check_fn "openssl s_client -$version client auth with key $(slot_id "$slot") ($(key_kind "$slot"))" s_client_login "$slot" "$version"
    done
done
