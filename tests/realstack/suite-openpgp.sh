# card-families: openpgp
# The module with an OpenPGP card in vpcd's second reader ("Virtual PCD 00
# 01") under real consumers: pkcs11-tool (list, objects, mechanisms, sign
# with every key that signs, decrypt, PIN change and unblock), openssl
# checking every signature, p11tool, and a TLS client-certificate login with
# the authentication key through gnutls-cli.
# (sourced by run.sh: MODULE, PROV, WORK, APDU_LOG, PIN, CARD_NAME are set)
#
# The card: ../shared/virtpgp (Nitrokey's opcard, spec 3.4), provisioned
# with a signature key RSA-2048 (PW1 valid for one signature: the key is
# always-authenticate), a decryption key RSA-2048, an authentication key
# P-256 with an X.509 certificate; PW1 123456, PW3 12345678, no Resetting
# Code; serial 56504750, manufacturer 0000 ("test card"), cardholder
# "Tester<<Virtpgp". Or the project's simulated OpenPGP card (owncard with
# OWNCARD_APP=openpgp). The checks follow the keys the card holds.

source "$(dirname "${BASH_SOURCE[0]}")/tls-server.sh"

PGP_READER="${VIRTPGP_READER:-Virtual PCD 00 01}"
PGP_ADMIN_PIN=12345678
head -c 32 /dev/urandom >"$WORK/in32.bin"

# pgp_token FIELD: a field of the token in the OpenPGP reader, from
# `pkcs11-tool -L` ("token label", "serial num", ...).
pgp_token() {
    timeout "$T" pkcs11-tool --module "$MODULE" -L 2>/dev/null | awk -v reader="$PGP_READER" -v field="$1" '
        /^Slot / { mine = index($0, reader) > 0 }
        mine && index($0, field) { sub(/^[^:]*: */, ""); sub(/ *$/, ""); print; exit }'
}
PGP_SERIAL="$(pgp_token "serial num")"
PGP_LABEL="$(pgp_token "token label")"
P11=(pkcs11-tool --module "$MODULE" --token-label "$PGP_LABEL")

# pgp_pub ID / pgp_cert ID: the provisioned public key and certificate of
# OpenPGP key 01 (sig), 02 (dec), 03 (aut); virtpgp names them pub-sig.pem,
# owncard pubsig.pem.
pgp_name() { case "$1" in 01) echo sig ;; 02) echo dec ;; 03) echo aut ;; esac; }
pgp_file() {
    local name
    name="$(pgp_name "$2")"
    if [ -f "$PROV/$1-$name.pem" ]; then echo "$PROV/$1-$name.pem"; else echo "$PROV/$1$name.pem"; fi
}
pgp_pub() { pgp_file pub "$1"; }
pgp_cert() { pgp_file cert "$1"; }
# pgp_kind ID: rsa, ec, ed25519, x25519 or none.
pgp_kind() {
    local text
    [ -f "$(pgp_pub "$1")" ] || { echo none; return; }
    text="$(openssl pkey -pubin -in "$(pgp_pub "$1")" -noout -text 2>/dev/null)"
    case "$text" in
        *ED25519*) echo ed25519 ;;
        *X25519*) echo x25519 ;;
        *"ASN1 OID"*) echo ec ;;
        *) echo rsa ;;
    esac
}
AUT_CN="$(openssl x509 -in "$(pgp_cert 03)" -noout -subject -nameopt multiline 2>/dev/null | sed -n 's/^ *commonName *= *//p')"

# apdus_of COMMAND...: runs the command and prints how many APDUs the card
# saw meanwhile (the card's trace, one line per command APDU).
apdus_of() {
    local before after
    before=$(grep -c ' APDU ' "$APDU_LOG" 2>/dev/null || true)
    timeout "$T" "$@" >/dev/null 2>&1 || true
    after=$(grep -c ' APDU ' "$APDU_LOG" 2>/dev/null || true)
    echo $((${after:-0} - ${before:-0}))
}

# card_do TAG: the value of a data object straight from the card (SELECT and
# GET DATA through opensc-tool, bypassing the module), as hex. opensc-tool
# prints 16 bytes a line as "XX " and their ASCII; a short last line of n
# bytes is 4n characters long.
card_do() {
    timeout "$T" opensc-tool -r "$PGP_READER" -s 00:A4:04:00:06:D2:76:00:01:24:01:00 \
        -s "00:CA:${1:0:2}:${1:2:2}:00" 2>/dev/null | python3 -c '
import re, sys
lines = sys.stdin.read().splitlines()
start = max(i for i, l in enumerate(lines) if l.startswith("Received"))
out = ""
for line in lines[start + 1:]:
    if not re.match(r"^[0-9A-F]{2} ", line):
        break
    n = 16 if len(line) >= 64 else len(line) // 4
    out += "".join(line[3 * i:3 * i + 2] for i in range(n))
print(out)'
}

check_output "pkcs11-tool -L shows the OpenPGP token (serial from the AID)" "serial num +: [0-9a-f]{12}" \
    pkcs11-tool --module "$MODULE" -L
if [ "$CARD_NAME" = virtpgp ]; then
    check_output "the token's label is the cardholder name, its serial OpenSC's, its maker the AID's" \
        "token label +: Virtpgp Tester.*token manufacturer +: test card.*serial num +: 000056504750" \
        bash -c "$(printf '%q ' pkcs11-tool --module "$MODULE" -L) | tr '\n' ' '"
    check_output "the signature key is always-authenticate (PW1 valid for one signature)" \
        "label: +Signature key.*Access: +always authenticate" \
        bash -c "$(printf '%q ' "${P11[@]}") --login --pin $PIN -O --type privkey --id 01 | tr '\n' ' '"
fi
check_output "pkcs11-tool -O shows the public keys, the AUT certificate and the signature counter" \
    "Public Key Object.*ID: +01.*Public Key Object.*ID: +02.*Public Key Object.*ID: +03.*Certificate Object.*$AUT_CN.*ID: +03.*Data object.*Signature counter" \
    bash -c "$(printf '%q ' "${P11[@]}") -O | tr '\n' ' '"
check_output "pkcs11-tool --login -O shows the private keys with OpenSC's IDs and labels" \
    "Private Key Object.*label: +Signature key.*ID: +01.*Private Key Object.*label: +Encryption key.*ID: +02.*Private Key Object.*label: +Authentication key.*ID: +03" \
    bash -c "$(printf '%q ' "${P11[@]}") --login --pin $PIN -O | tr '\n' ' '"
if [ "$(pgp_kind 01)" = rsa ]; then
    check_fn "pkcs11-tool -M lists PKCS#1 v1.5 but no RSA-PSS (the card pads RSA itself)" \
        bash -c "out=\$($(printf '%q ' "${P11[@]}") -M) && grep -q 'SHA256-RSA-PKCS' <<<\"\$out\" && ! grep -q 'RSA-PKCS-PSS' <<<\"\$out\""
fi

# pgp_sign ID MECHANISM: signs 32 random bytes; openssl verifies.
pgp_sign() {
    local id="$1" mech="$2" sig="$WORK/pgp-sig-$1-$2" pub
    pub="$(pgp_pub "$id")"
    timeout "$T" "${P11[@]}" --login --pin "$PIN" --sign --id "$id" -m "$mech" \
        -i "$WORK/in32.bin" -o "$sig" || return 1
    case "$mech" in
        RSA-PKCS) openssl pkeyutl -verify -pubin -inkey "$pub" -in "$WORK/in32.bin" -sigfile "$sig" ;;
        SHA*-RSA-PKCS) local h="${mech%%-*}"; openssl dgst "-${h,,}" -verify "$pub" -signature "$sig" "$WORK/in32.bin" ;;
        ECDSA) raw_to_der "$sig" "$sig.der"; openssl pkeyutl -verify -pubin -inkey "$pub" -in "$WORK/in32.bin" -sigfile "$sig.der" ;;
        ECDSA-SHA*) local h="${mech#ECDSA-}"; raw_to_der "$sig" "$sig.der"
            openssl dgst "-${h,,}" -verify "$pub" -signature "$sig.der" "$WORK/in32.bin" ;;
        EDDSA) openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$WORK/in32.bin" -sigfile "$sig" ;;
    esac
}
for id in 01 03; do
    case "$(pgp_kind "$id")" in
        rsa) mechs=(RSA-PKCS SHA1-RSA-PKCS SHA224-RSA-PKCS SHA256-RSA-PKCS SHA384-RSA-PKCS SHA512-RSA-PKCS) ;;
        ec) mechs=(ECDSA ECDSA-SHA1 ECDSA-SHA224 ECDSA-SHA256 ECDSA-SHA384 ECDSA-SHA512) ;;
        ed25519) mechs=(EDDSA) ;;
        *) mechs=() ;;
    esac
    for mech in "${mechs[@]}"; do
        check_fn "sign with key $id ($(pgp_name "$id"), $(pgp_kind "$id")) $mech, openssl verifies" pgp_sign "$id" "$mech"
    done
done
if [ "$(pgp_kind 01)" = rsa ]; then
    check_output "RSA-PSS with the OpenPGP signature key: CKR_MECHANISM_INVALID" "CKR_MECHANISM_INVALID" \
        bash -c "$(printf '%q ' "${P11[@]}") --login --pin $PIN --sign --id 01 -m SHA256-RSA-PKCS-PSS -i $(printf '%q' "$WORK/in32.bin") 2>&1; true"
fi

# The signature counter: the module's data object against the card's DO 93.
pgp_counter() {
    timeout "$T" "${P11[@]}" --read-object --type data --label "Signature counter" 2>/dev/null
}
counter_follows_signatures() {
    local before after card mech
    case "$(pgp_kind 01)" in rsa) mech=SHA256-RSA-PKCS ;; ec) mech=ECDSA-SHA256 ;; *) mech=EDDSA ;; esac
    before=$(pgp_counter) || return 1
    pgp_sign 01 "$mech" || return 1
    after=$(pgp_counter) || return 1
    card=$(card_do 007A)
    echo "module: $before -> $after; card 7A: $card"
    [ "$after" -eq $((before + 1)) ] && [ "$((16#${card: -6}))" -eq "$after" ]
}
check_fn "the signature counter object counts PSO:CDS and equals the card's DO 93" counter_follows_signatures

if [ "$(pgp_kind 02)" = rsa ]; then
    echo "hello openpgp" >"$WORK/pgp-plain.txt"
    openssl pkeyutl -encrypt -pubin -inkey "$(pgp_pub 02)" -in "$WORK/pgp-plain.txt" -out "$WORK/pgp-enc.bin"
    check_output "decrypt with key 02 (decryption, RSA, PSO:DECIPHER) RSA-PKCS" "hello openpgp" \
        "${P11[@]}" --login --pin "$PIN" --decrypt --id 02 -m RSA-PKCS -i "$WORK/pgp-enc.bin"
    check_output "RSA-OAEP with the OpenPGP decryption key: CKR_MECHANISM_INVALID (the card unpads PKCS#1 v1.5)" \
        "CKR_MECHANISM_INVALID" \
        bash -c "$(printf '%q ' "${P11[@]}") --login --pin $PIN --decrypt --id 02 -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 -i $(printf '%q' "$WORK/pgp-enc.bin") 2>&1; true"
    check_output "the decryption key does not sign: CKR_KEY_FUNCTION_NOT_PERMITTED" "CKR_KEY_FUNCTION_NOT_PERMITTED" \
        bash -c "$(printf '%q ' "${P11[@]}") --login --pin $PIN --sign --id 02 -m SHA256-RSA-PKCS -i $(printf '%q' "$WORK/in32.bin") 2>&1; true"
fi
if [ "$(pgp_kind 02)" = ec ]; then
    # ECDH (PSO:DECIPHER with A6 { 7F49 { 86 point } }): pkcs11-tool derives
    # with a fresh peer key; openssl derives the same secret from the peer side.
    pgp_ecdh() {
        local curve
        curve=$(openssl pkey -pubin -in "$(pgp_pub 02)" -noout -text | sed -n 's/.*NIST CURVE: *//p')
        openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$curve" -out "$WORK/peer.key" 2>/dev/null || return 1
        openssl pkey -in "$WORK/peer.key" -pubout -outform DER -out "$WORK/peer.der" || return 1
        timeout "$T" "${P11[@]}" --login --pin "$PIN" --derive --id 02 -m ECDH1-DERIVE \
            -i "$WORK/peer.der" -o "$WORK/ecdh-card.bin" || return 1
        openssl pkeyutl -derive -inkey "$WORK/peer.key" -peerkey "$(pgp_pub 02)" -out "$WORK/ecdh-openssl.bin" || return 1
        cmp "$WORK/ecdh-card.bin" "$WORK/ecdh-openssl.bin"
    }
    check_fn "ECDH with key 02 (C_DeriveKey, CKM_ECDH1_DERIVE): the same secret as openssl's" pgp_ecdh
fi

# GnuTLS: the certificate through p11tool, then a TLS client-certificate
# login with the authentication key (INTERNAL AUTHENTICATE signs the
# handshake). TLS 1.3 needs RSA-PSS, which an OpenPGP card cannot do: with
# an RSA authentication key only TLS 1.2 is tried.
PGP_TOKEN_URI="pkcs11:serial=$PGP_SERIAL"
check_output "p11tool --list-all-certs shows the AUT certificate" "Type: X.509 Certificate.*ID: 03" \
    bash -c "p11tool --provider $(printf '%q' "$MODULE") --list-all-certs '$PGP_TOKEN_URI' </dev/null 2>&1 | tr '\n' ' '; true"
start_tls_server
pgp_tls_login() {
    local version="$1" log="$WORK/gnutls-pgp-$1.log"
    printf 'GET / HTTP/1.0\r\n\r\n' | GNUTLS_PIN="$PIN" timeout "$T" gnutls-cli --provider "$MODULE" \
        --x509certfile "$PGP_TOKEN_URI;id=%03;type=cert" --x509keyfile "$PGP_TOKEN_URI;id=%03;type=private" \
        --x509cafile "$SERVER_CA" --priority "NORMAL:-VERS-ALL:+VERS-$version" \
        -p "$TLS_PORT" localhost >"$log" 2>&1 || { cat "$log"; return 1; }
    grep -q "Description: ($version" "$log" && grep -q "Subject: .*CN=$AUT_CN" "$log" \
        || { cat "$log"; return 1; }
}
versions=(TLS1.3 TLS1.2)
[ "$(pgp_kind 03)" = rsa ] && versions=(TLS1.2)
for version in "${versions[@]}"; do
    check_fn "gnutls-cli $version client auth with the OpenPGP authentication key ($(pgp_kind 03))" pgp_tls_login "$version"
done

# PINs through the same PKCS#11 calls as PIV: C_SetPIN changes PW1;
# C_Login(CKU_SO, PW3) + C_InitPIN unblocks it (no Resetting Code here).
check_output "wrong PIN is refused with CKR_PIN_INCORRECT" "CKR_PIN_INCORRECT" \
    bash -c "$(printf '%q ' "${P11[@]}") --login --pin 654321 -O 2>&1; true"
# pw1_tries_are N: the card's PW status bytes (C4, byte 5) say N tries.
pw1_tries_are() {
    local c4
    c4=$(card_do 00C4)
    echo "C4: $c4"
    [ "${#c4}" -ge 14 ] && [ "$((16#${c4:8:2}))" -eq "$1" ]
}
check_fn "the card counted it (C4: PW1 tries 2)" pw1_tries_are 2
check "C_Login(CKU_SO, PW3) + C_InitPIN resets PW1 (pkcs11-tool --init-pin)" \
    "${P11[@]}" --login --login-type so --so-pin "$PGP_ADMIN_PIN" --init-pin --new-pin "$PIN"
check_fn "PW1 has all its tries back (C4: 3)" pw1_tries_are 3
check "C_SetPIN changes PW1 (pkcs11-tool --change-pin)" \
    "${P11[@]}" --login --pin "$PIN" --change-pin --new-pin 654321
check "the new PIN works, and changing it back too" \
    "${P11[@]}" --login --pin 654321 --change-pin --new-pin "$PIN"
check_output "right PIN works afterwards" "Private Key Object" "${P11[@]}" --login --pin "$PIN" -O

# APDUs per operation on this card (its trace), for the README.
sign_mech() { case "$(pgp_kind "$1")" in rsa) echo SHA256-RSA-PKCS ;; ec) echo ECDSA-SHA256 ;; *) echo EDDSA ;; esac; }
printf '  info  APDUs on %s: -L %s, -O %s, login + sign with 01 %s, login + sign with 03 %s\n' "$CARD_NAME" \
    "$(apdus_of pkcs11-tool --module "$MODULE" -L)" \
    "$(apdus_of "${P11[@]}" -O)" \
    "$(apdus_of "${P11[@]}" --login --pin "$PIN" --sign --id 01 -m "$(sign_mech 01)" -i "$WORK/in32.bin" -o "$WORK/apdu-sig")" \
    "$(apdus_of "${P11[@]}" --login --pin "$PIN" --sign --id 03 -m "$(sign_mech 03)" -i "$WORK/in32.bin" -o "$WORK/apdu-sig")"
