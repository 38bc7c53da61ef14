# card-families: pkcs15
# OpenSC's own PKCS#11 module (opensc-pkcs11.so) on the simulated MyEID card
# that OpenSC's pkcs15-init personalised (tests/realstack/pkcs15): the check
# that the simulated card behaves like a real MyEID card for OpenSC's myeid
# driver and PKCS#15 layer. Lists slots and objects, counts the APDUs of a
# cold `-O`, signs with both keys (RSA PKCS#1 v1.5 and PSS, ECDSA) and
# verifies with openssl against the public keys pkcs15-tool read, deciphers,
# spends and restores one PIN try, and runs `--test --login`; then the
# second PIN: OpenSC shows a token per PIN, p11card one token whose key 03
# is always-authenticate (its signature PIN through the context-specific
# login: pkcs11-tool and a PyKCS11 script sign with it); the DODF's data
# objects (pkcs11-tool --read-object).
# (sourced by run.sh: MODULE, PROV, WORK, APDU_LOG, PIN, CARD_NAME, HERE are set)
#
# The card: user PIN 123456 (auth ID 01, PIN reference 1), PUK 12345678;
# signature PIN 654321 (auth ID 02, reference 2), PUK 11223344; key 01
# RSA-2048 (sign, decrypt), key 02 EC P-256 (sign), key 03 EC P-256
# (nonRepudiation, signature PIN), each with a certificate from a
# throw-away test CA, whose certificate is on the card too (authority);
# key 04 RSA-2048 (sign) without a certificate;
# data objects "p11card public data" and "p11card private data" (auth ID 01).
SIG_PIN=654321

OPENSC_SO="${OPENSC_SO:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}"
OSC=(pkcs11-tool --module "$OPENSC_SO")
head -c 32 /dev/urandom >"$WORK/p15-in32.bin"

# apdus_of COMMAND...: runs it; prints how many APDUs the card saw.
apdus_of() {
    local before after
    before=$(grep -c ' APDU ' "$APDU_LOG" 2>/dev/null || true)
    timeout "$T" "$@" >/dev/null 2>&1
    after=$(grep -c ' APDU ' "$APDU_LOG" 2>/dev/null || true)
    echo $((after - before))
}

# p15_sign_verify ID MECH PUBKEY: OpenSC's module signs, openssl verifies.
p15_sign_verify() {
    local id="$1" mech="$2" pub="$3" sig="$WORK/p15-sig-$1-$2"
    timeout "$T" "${OSC[@]}" --login --pin "$PIN" --sign --id "$id" -m "$mech" \
        -i "$WORK/p15-in32.bin" -o "$sig" || return 1
    case "$mech" in
        SHA256-RSA-PKCS) openssl dgst -sha256 -verify "$pub" -signature "$sig" "$WORK/p15-in32.bin" ;;
        SHA256-RSA-PKCS-PSS) openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1 \
            -verify "$pub" -signature "$sig" "$WORK/p15-in32.bin" ;;
        ECDSA-SHA256) raw_to_der "$sig" "$sig.der"
            openssl dgst -sha256 -verify "$pub" -signature "$sig.der" "$WORK/p15-in32.bin" ;;
    esac
}

# p15_decrypt: openssl encrypts to key 01, OpenSC's module deciphers.
p15_decrypt() {
    printf 'MyEID decipher test' >"$WORK/p15-plain"
    openssl pkeyutl -encrypt -pubin -inkey "$PROV/pub01.pem" -in "$WORK/p15-plain" -out "$WORK/p15-crypt" || return 1
    timeout "$T" "${OSC[@]}" --login --pin "$PIN" --decrypt --id 01 -m RSA-PKCS \
        -i "$WORK/p15-crypt" -o "$WORK/p15-dec" || return 1
    cmp "$WORK/p15-plain" "$WORK/p15-dec"
}

# p15_pin_status: the card's answer to VERIFY without data for PIN 1
# ("63C3" = 3 tries left, not verified).
p15_pin_status() {
    timeout "$T" opensc-tool -s 00:20:00:01 2>/dev/null |
        sed -n 's/.*SW1=0x\([0-9A-Fa-f]*\), SW2=0x\([0-9A-Fa-f]*\).*/\1\2/p' | tr 'a-f' 'A-F'
}

# p15_wrong_pin_costs_one_try: a wrong PIN fails and leaves 2 of 3 tries,
# the right PIN restores them.
p15_wrong_pin_costs_one_try() {
    local status
    status="$(p15_pin_status)"
    [ "$status" = 63C3 ] || { echo "before: $status, not 63C3"; return 1; }
    ! timeout "$T" "${OSC[@]}" --login --pin 000000 -O >/dev/null 2>&1 || return 1
    status="$(p15_pin_status)"
    [ "$status" = 63C2 ] || { echo "after a wrong PIN: $status, not 63C2"; return 1; }
    timeout "$T" "${OSC[@]}" --login --pin "$PIN" -O >/dev/null || return 1
    status="$(p15_pin_status)"
    [ "$status" = 63C3 ] || { echo "after the right PIN: $status, not 63C3"; return 1; }
}

check_output "opensc: -L shows the MyEID token" "token label *: *p11card MyEID" "${OSC[@]}" -L
cold="$(apdus_of "${OSC[@]}" -O)"
printf '        opensc -O cold: %s APDUs (p11card target: at most %s)\n' "$cold" "$((cold / 2))"
timeout "$T" "${OSC[@]}" -O --login --pin "$PIN" >"$WORK/p15-objects.txt" 2>&1
check_output "opensc: the User PIN token lists 5 private keys: 01, 02, 04, 05, 06 (6 public keys, 4 certificates)" "^5 6 4\$" \
    bash -c "printf '%s %s %s\n' \$(grep -c '^Private Key Object' '$WORK/p15-objects.txt') \
        \$(grep -c '^Public Key Object' '$WORK/p15-objects.txt') \$(grep -c '^Certificate Object' '$WORK/p15-objects.txt')"
# object_line HEADER LABEL: the object of `-O` with that header and label,
# on one line, fields separated by "; " (spaces squeezed).
object_line() {
    awk -v header="$1" -v label="$2" '
        /^[A-Z][a-z]+ (Key )?Object/ { if (o && index(o, header) == 1 && index(o, "label: " label ";")) print o; o = "" }
        { sub(/^ +/, ""); gsub(/ +/, " "); o = o $0 "; " }
        END { if (index(o, header) == 1 && index(o, "label: " label ";")) print o }' "$WORK/p15-objects.txt"
}
check_output "opensc: private key 01 \"MyEID RSA\" is RSA, decrypt + sign" \
    "ID: 01;.*Usage: decrypt, sign" echo "$(object_line "Private Key Object; RSA" "MyEID RSA")"
check_output "opensc: public key 01 is RSA 2048 bits" "RSA 2048 bits.*ID: 01" \
    echo "$(object_line "Public Key Object; RSA" "MyEID RSA")"
check_output "opensc: private key 02 \"MyEID EC\" is EC, sign" "ID: 02;.*Usage: sign" \
    echo "$(object_line "Private Key Object; EC" "MyEID EC")"
check_output "opensc: public key 02 is on P-256" "EC_POINT 256 bits.*EC_PARAMS: 06082a8648ce3d030107" \
    echo "$(object_line "Public Key Object; EC" "MyEID EC")"
check_fn "opensc: RSA key 01 signs SHA256-RSA-PKCS, openssl verifies" \
    p15_sign_verify 01 SHA256-RSA-PKCS "$PROV/pub01.pem"
check_fn "opensc: RSA key 01 signs SHA256-RSA-PKCS-PSS (raw RSA on the card), openssl verifies" \
    p15_sign_verify 01 SHA256-RSA-PKCS-PSS "$PROV/pub01.pem"
check_fn "opensc: EC key 02 signs ECDSA-SHA256, openssl verifies" \
    p15_sign_verify 02 ECDSA-SHA256 "$PROV/pub02.pem"
check_fn "opensc: RSA key 01 deciphers RSA-PKCS" p15_decrypt
check_fn "opensc: RSA key 04 (no certificate) signs SHA256-RSA-PKCS, openssl verifies" \
    p15_sign_verify 04 SHA256-RSA-PKCS "$PROV/pub04.pem"
# OpenSC (create_slots_for_pins default): one token per PIN on the reader.
check_output "opensc: -L shows a token per PIN, \"(User PIN)\" and \"(Signature PIN)\"" \
    "^p11card MyEID \(User PIN\)\|p11card MyEID \(Signature PIN\)\$" \
    bash -c "timeout $T ${OSC[*]} -L | sed -n 's/^ *token label *: *//p' | paste -sd'|'"
timeout "$T" "${OSC[@]}" --slot-index 1 -O --login --pin "$SIG_PIN" >"$WORK/p15-objects-sig.txt" 2>&1
check_output "opensc: the Signature PIN token lists private key 03 \"MyEID signature\" (sign, non-repudiation)" \
    "label: MyEID signature; ID: 03; Usage: sign, non-repudiation" \
    bash -c "grep -A3 '^Private Key Object' '$WORK/p15-objects-sig.txt' | tr -s ' ' | paste -sd';' | sed 's/; /;/g; s/;/; /g'"
p15_sign_03_opensc() {
    local sig="$WORK/p15-sig-03-opensc"
    timeout "$T" "${OSC[@]}" --slot-index 1 --login --pin "$SIG_PIN" --sign --id 03 -m ECDSA-SHA256 \
        -i "$WORK/p15-in32.bin" -o "$sig" || return 1
    raw_to_der "$sig" "$sig.der"
    openssl dgst -sha256 -verify "$PROV/pub03.pem" -signature "$sig.der" "$WORK/p15-in32.bin"
}
check_fn "opensc: key 03 signs on the Signature PIN token (its PIN as the token's user PIN), openssl verifies" \
    p15_sign_03_opensc
check_fn "opensc: a wrong PIN costs exactly one try, the right one restores them" p15_wrong_pin_costs_one_try
check_output "opensc: --test --login" "No errors" "${OSC[@]}" --test --login --pin "$PIN"
sign=(--login --pin "$PIN" --sign --id 02 -m ECDSA-SHA256 -i "$WORK/p15-in32.bin" -o "$WORK/p15-sig-count")
printf '        opensc --login --sign (EC key 02): %s APDUs\n' "$(apdus_of "${OSC[@]}" "${sign[@]}")"

# ---- p11card's module on the same card, with the same checks ----
P11=(pkcs11-tool --module "$MODULE")
check_output "p11card: -L shows the MyEID token" "token label *: *p11card MyEID" "${P11[@]}" -L
# Cold: without the disk cache (the user's cache may hold this card from
# the -L above or an earlier run).
cold_p11="$(apdus_of env P11CARD_CACHE=off "${P11[@]}" -O)"
printf '        p11card -O cold: %s APDUs (opensc: %s)\n' "$cold_p11" "$cold"
check_fn "p11card: -O cold costs at most half of OpenSC's APDUs" test "$cold_p11" -le "$((cold / 2))"
# Warm: the disk cache, proved current by the card's change counter
# (cardprofiles/myeid.toml): SELECT and GET DATA only.
timeout "$T" "${P11[@]}" -O >/dev/null 2>&1
warm_p11="$(apdus_of "${P11[@]}" -O)"
printf '        p11card -O warm (disk cache): %s APDUs\n' "$warm_p11"
check_fn "p11card: -O warm costs 2 APDUs (the change counter proves the cache)" test "$warm_p11" -le 2
timeout "$T" "${P11[@]}" -O --login --pin "$PIN" >"$WORK/p15-objects.txt" 2>&1
check_output "p11card: -O --login lists 6 private keys, 6 public keys, 5 certificates (the CA's too), 2 data objects" "^6 6 5 2\$" \
    bash -c "printf '%s %s %s %s\n' \$(grep -c '^Private Key Object' '$WORK/p15-objects.txt') \
        \$(grep -c '^Public Key Object' '$WORK/p15-objects.txt') \$(grep -c '^Certificate Object' '$WORK/p15-objects.txt') \
        \$(grep -c '^Data object' '$WORK/p15-objects.txt')"
check_output "p11card: one token for the card (both PINs)" "^1\$" \
    bash -c "timeout $T ${P11[*]} -L | grep -c 'token label *: *p11card MyEID'"
check_output "p11card: private key 03 \"MyEID signature\" is EC, sign, always authenticate" \
    "ID: 03;.*Usage: sign;.*Access: always authenticate" \
    echo "$(object_line "Private Key Object; EC" "MyEID signature")"
check_output "p11card: private key 01 \"MyEID RSA\" is RSA, decrypt + sign" \
    "ID: 01;.*Usage: decrypt, sign" echo "$(object_line "Private Key Object; RSA" "MyEID RSA")"
check_output "p11card: private key 02 \"MyEID EC\" is EC, sign" "ID: 02;.*Usage: sign" \
    echo "$(object_line "Private Key Object; EC" "MyEID EC")"
# The sign and decrypt helpers above use OSC: point it at p11card.
OSC=("${P11[@]}")
check_fn "p11card: RSA key 01 signs SHA256-RSA-PKCS, openssl verifies" \
    p15_sign_verify 01 SHA256-RSA-PKCS "$PROV/pub01.pem"
check_fn "p11card: RSA key 01 signs SHA256-RSA-PKCS-PSS, openssl verifies" \
    p15_sign_verify 01 SHA256-RSA-PKCS-PSS "$PROV/pub01.pem"
check_fn "p11card: EC key 02 signs ECDSA-SHA256, openssl verifies" \
    p15_sign_verify 02 ECDSA-SHA256 "$PROV/pub02.pem"
check_fn "p11card: RSA key 01 deciphers RSA-PKCS" p15_decrypt
check_fn "p11card: RSA key 04 (no certificate, public key from the PuKDF) signs SHA256-RSA-PKCS, openssl verifies" \
    p15_sign_verify 04 SHA256-RSA-PKCS "$PROV/pub04.pem"
check_fn "p11card: a wrong PIN costs exactly one try, the right one restores them" p15_wrong_pin_costs_one_try
printf '        p11card --login --sign (EC key 02): %s APDUs\n' "$(apdus_of "${OSC[@]}" "${sign[@]}")"
# pkcs11-tool does the context login for an always-authenticate key with
# --pin (also its user login), else --puk: so the user PIN is typed at its
# prompt (it reads a PIN only from a terminal: script(1) gives it one; the
# PIN arrives after the prompt), the signature PIN is --puk.
p15_sign_03_p11card() {
    local sig="$WORK/p15-sig-03-p11card"
    (sleep 2; printf '%s\n' "$PIN") | timeout "$T" script -qec "${P11[*]} --login --puk $SIG_PIN --sign --id 03 \
        -m ECDSA-SHA256 -i $WORK/p15-in32.bin -o $sig" /dev/null || return 1
    raw_to_der "$sig" "$sig.der"
    openssl dgst -sha256 -verify "$PROV/pub03.pem" -signature "$sig.der" "$WORK/p15-in32.bin"
}
check_fn "p11card: pkcs11-tool signs with key 03 (user PIN, then the signature PIN as context login), openssl verifies" \
    p15_sign_03_p11card
check_output "p11card: pkcs11-tool --read-object reads the public data object" "^p11card public data object\$" \
    "${P11[@]}" --read-object --type data --label "p11card public data"
check_output "p11card: pkcs11-tool --read-object --login reads the private data object" "^p11card private data object\$" \
    "${P11[@]}" --login --pin "$PIN" --read-object --type data --label "p11card private data"
check_fn "p11card: the private data object is not there without login" \
    bash -c "! timeout $T ${P11[*]} --read-object --type data --label 'p11card private data' >/dev/null 2>&1"
p15_reader="$(timeout "$T" opensc-tool -l 2>/dev/null | grep -F 'Virtual PCD MyEID' | head -n 1 | sed -E 's/^[0-9]+ +[A-Za-z]+ +//')"
P15_PY_OUT="$(timeout 120 /usr/bin/python3 "$HERE/pkcs15/pykcs11-sigpin.py" "$MODULE" "$PIN" "$SIG_PIN" "$PROV" \
    "$p15_reader" 2>&1)" && rc=0 || rc=$?
while IFS= read -r line; do
    case "$line" in
        "ok   "*) pass "p11card PyKCS11: ${line#ok   }" ;;
        "FAIL "*) fail "p11card PyKCS11: ${line#FAIL }" ;;
        *) printf '        %s\n' "$line" ;;
    esac
done <<<"$P15_PY_OUT"
check_fn "p11card PyKCS11 script ran to its end (exit $rc)" test "$rc" -eq 0
