# PIV beyond the four standard slots with certificates (issue 12): retired
# key management keys, keys without a certificate, the card's own PIN
# policy per key, the global PIN; each next to what OpenSC's module shows
# on the same card (printed as "opensc:" lines, not judged).
# (sourced by run.sh: MODULE, PROV, WORK, APDU_LOG, PIN, CARD_NAME, HERE are set)
# card-families: piv

P11=(pkcs11-tool --module "$MODULE")
OPENSC_SO="${OPENSC_SO:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}"
OSC=(pkcs11-tool --module "$OPENSC_SO")
head -c 32 /dev/urandom >"$WORK/extras-in32.bin"

# objects MODULE_ARGS...: "pkcs11-tool -O --login" as one line per object:
# "<class>|<id>|<label>|<access>".
objects() {
    timeout "$T" "$@" -O --login --pin "${OBJECTS_PIN:-$PIN}" 2>/dev/null | awk '
        /^[A-Z][a-z]+ Key Object|^Certificate Object/ { if (c) print c "|" id "|" l "|" a; c=$1; id=""; l=""; a="" }
        /^  label:/ { sub(/^  label: */, ""); l=$0 }
        /^  ID:/ { id=$2 }
        /^  Access:/ { sub(/^  Access: */, ""); a=$0 }
        END { if (c) print c "|" id "|" l "|" a }'
}

# opensc_says WHAT: prints what OpenSC's module shows, for the notes.
opensc_says() { printf '        opensc: %s\n' "$*"; }

# sign_verify ID PUBKEY MECH: logs in and signs with the module, openssl verifies.
sign_verify() {
    local id="$1" pub="$2" mech="$3" sig="$WORK/extras-sig-$1"
    timeout "$T" "${P11[@]}" --login --pin "${SIGN_PIN:-$PIN}" --sign --id "$id" -m "$mech" \
        -i "$WORK/extras-in32.bin" -o "$sig" || return 1
    case "$mech" in
        SHA256-RSA-PKCS) openssl dgst -sha256 -verify "$pub" -signature "$sig" "$WORK/extras-in32.bin" ;;
        ECDSA-SHA256) raw_to_der "$sig" "$sig.der"
            openssl dgst -sha256 -verify "$pub" -signature "$sig.der" "$WORK/extras-in32.bin" ;;
    esac
}

if [ "$CARD_NAME" = virtpiv ]; then
    # virtpiv (Nitrokey's applet) serves a fixed Key History (no retired key
    # with an on-card certificate), GET METADATA without public keys or
    # policies, and a Discovery object naming the PIV PIN primary: the module
    # shows what OpenSC shows, and spends one APDU on the Key History.
    objects "${P11[@]}" >"$WORK/extras-p11.txt"
    objects "${OSC[@]}" >"$WORK/extras-osc.txt"
    key_ids() { grep '^Private|' "$1" | cut -d'|' -f2 | sort | tr '\n' ' '; }
    same_key_ids() { [ "$(key_ids "$WORK/extras-p11.txt")" = "$(key_ids "$WORK/extras-osc.txt")" ]; }
    check_fn "virtpiv: the private keys have OpenSC's IDs ($(key_ids "$WORK/extras-osc.txt"))" same_key_ids
    count_apdus() { # command...: how many APDUs the card saw while it ran
        local before after
        before=$(grep -c ' APDU ' "$APDU_LOG")
        timeout "$T" "$@" >/dev/null 2>&1
        after=$(grep -c ' APDU ' "$APDU_LOG")
        echo $((after - before))
    }
    printf '        -O: p11card %s APDUs, opensc %s\n' \
        "$(count_apdus "${P11[@]}" -O)" "$(count_apdus "${OSC[@]}" -O)"
    sign=(--login --pin "$PIN" --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/extras-in32.bin" -o "$WORK/extras-sig")
    printf '        --login --sign (9A): p11card %s APDUs, opensc %s\n' \
        "$(count_apdus "${P11[@]}" "${sign[@]}")" "$(count_apdus "${OSC[@]}" "${sign[@]}")"
    return 0
fi

[ "$CARD_NAME" = owncard ] || return 0

# restart_owncard "CARDSIM-VPCD OPTIONS": the project's simulated card again,
# with these extras (empty: the default card the other suites expect).
restart_owncard() { # options [atr]
    timeout 60 "$HERE/owncard/stop.sh" >/dev/null 2>&1 || true
    OWNCARD_PIV_EXTRAS="$1" OWNCARD_PIV_ATR="${2:-}" timeout 600 "$HERE/owncard/start.sh" \
        >"$WORK/extras-owncard.log" 2>&1
}
on_exit restart_owncard ""

EXTRAS="--retired 1=p256 --retired 2=rsa2048 --no-cert 9e --policy 9c=once --policy 9a=always"
if ! restart_owncard "$EXTRAS"; then
    fail "owncard with retired keys, a key without certificate and PIN policies"
    sed 's/^/        /' "$WORK/extras-owncard.log" | tail -20
    return 0
fi
objects "${P11[@]}" >"$WORK/extras-p11.txt"
objects "${OSC[@]}" >"$WORK/extras-osc.txt"

# 1. Retired keys: OpenSC's IDs and labels, PIN once, sign after one login.
check_output "retired key 1: private key ID 05 \"Retired KEY MAN 1\", PIN once" \
    "^Private\|05\|Retired KEY MAN 1\|" grep -v 'always authenticate' "$WORK/extras-p11.txt"
check_output "retired key 2: private key ID 06 \"Retired KEY MAN 2\"" \
    "^Private\|06\|Retired KEY MAN 2\|" cat "$WORK/extras-p11.txt"
check_output "retired keys: certificates with IDs 05 and 06" \
    "Certificate\|05\|.*Certificate\|06\|" bash -c "tr '\n' ' ' <'$WORK/extras-p11.txt'"
opensc_says "$(grep -E '^Private\|0[56]\|' "$WORK/extras-osc.txt" | tr '\n' ';')"
check_fn "retired key 1 (82, P-256) signs, openssl verifies" sign_verify 05 "$PROV/pub82.pem" ECDSA-SHA256
check_fn "retired key 2 (83, RSA-2048) signs, openssl verifies" sign_verify 06 "$PROV/pub83.pem" SHA256-RSA-PKCS

# 2. 9E without a certificate: private and public key from GET METADATA.
check_output "9E without certificate: private and public key, no certificate" \
    "^Private\|04\|.*Public\|04\|" bash -c "grep '|04|' '$WORK/extras-p11.txt' | tr '\n' ' '"
check_output "9E without certificate: no certificate object" "^0\$" \
    bash -c "grep -c '^Certificate|04|' '$WORK/extras-p11.txt'; true"
check_fn "9E without certificate signs, openssl verifies" \
    sign_verify 04 "$PROV/pub9e.pem" ECDSA-SHA256
opensc_says "9E objects: $(grep -c '|04|' "$WORK/extras-osc.txt")"

# 3. The card's PIN policy: 9C "once" is not always-authenticate, 9A
#    "always" is.
check_output "9C with PIN policy once: not always-authenticate" \
    "^Private\|02\|[^|]*\|" grep -v 'always authenticate' "$WORK/extras-p11.txt"
check_output "9A with PIN policy always: always-authenticate" \
    "^Private\|01\|.*always authenticate" cat "$WORK/extras-p11.txt"
opensc_says "$(grep -E '^Private\|0[12]\|' "$WORK/extras-osc.txt" | tr '\n' ';')"
check_fn "9C (PIN once) signs after one login, openssl verifies" \
    sign_verify 02 "$PROV/pub9c.pem" ECDSA-SHA256
check_fn "9A (PIN always) signs with pkcs11-tool's context login, openssl verifies" \
    sign_verify 01 "$PROV/pub9a.pem" SHA256-RSA-PKCS

# 4. A global PIN the Discovery object names primary, on a card that is not
#    a YubiKey (virtpiv's ATR: the generic PIV profile, which reads the
#    Discovery object; YubiKeys have no global PIN).
GLOBAL_PIN=87654321
if restart_owncard "--global-pin $GLOBAL_PIN" "3b:95:13:81:01:80:73:ff:01:00:0b"; then
    before=$(grep -c ' APDU ' "$APDU_LOG")
    SIGN_PIN=$GLOBAL_PIN check_fn "global PIN primary: login with the global PIN, 9A signs" \
        sign_verify 01 "$PROV/pub9a.pem" SHA256-RSA-PKCS
    after=$(grep -c ' APDU ' "$APDU_LOG")
    check_output "global PIN primary: the module's VERIFY names key reference 00" "INS=20 P1=00 P2=00" \
        bash -c "grep ' APDU ' '$APDU_LOG' | tail -n $((after - before)) | grep 'INS=20 P1=00'"
    if timeout "$T" "${OSC[@]}" --login --pin "$GLOBAL_PIN" --sign --id 01 -m SHA256-RSA-PKCS \
        -i "$WORK/extras-in32.bin" -o "$WORK/extras-osc-sig" >/dev/null 2>&1; then
        opensc_says "global PIN login and 9A signature: ok"
    else
        opensc_says "global PIN login and 9A signature: failed"
    fi
else
    fail "owncard with a global PIN"
fi
restart_owncard "" || fail "owncard back to the default card"
