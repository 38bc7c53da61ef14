# OpenSC's pkcs11-tool against the module and the card in the reader.
# card-families: piv pkcs15
# (sourced by run.sh: MODULE, PROV, WORK, APDU_LOG, PIN are set)

P11=(pkcs11-tool --module "$MODULE")
head -c 32 /dev/urandom >"$WORK/in32.bin"

check_output "pkcs11-tool -I shows the module" "Manufacturer +p11card" "${P11[@]}" -I
check_output "pkcs11-tool -L shows the card's token" "token label +: $TOKEN_LABEL" "${P11[@]}" -L
check_output "pkcs11-tool -O lists $CARD_KEY_COUNT certificates" "(Certificate Object.*){$CARD_KEY_COUNT}" bash -c "$(printf '%q ' "${P11[@]}") -O | tr '\n' ' '"
check_output "pkcs11-tool -M lists ECDSA and RSA-PSS" "RSA-PKCS-PSS.*ECDSA-SHA256" bash -c "$(printf '%q ' "${P11[@]}") -M | tr '\n' ' '"

# Sign with one key and mechanism; openssl verifies with the card's public key.
sign_and_verify() { # slot mechanism
    local slot="$1" mech="$2" sig="$WORK/sig-$1-$2"
    timeout "$T" "${P11[@]}" --login --pin "$PIN" --sign --id "$(slot_id "$slot")" -m "$mech" \
        -i "$WORK/in32.bin" -o "$sig" || return 1
    local pub="$PROV/pub$slot.pem"
    case "$mech" in
        RSA-PKCS) openssl pkeyutl -verify -pubin -inkey "$pub" -in "$WORK/in32.bin" -sigfile "$sig" ;;
        SHA*-RSA-PKCS) local h="${mech%%-*}"; openssl dgst "-${h,,}" -verify "$pub" -signature "$sig" "$WORK/in32.bin" ;;
        SHA*-RSA-PKCS-PSS) local h="${mech%%-*}"
            openssl dgst "-${h,,}" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1 -verify "$pub" -signature "$sig" "$WORK/in32.bin" ;;
        ECDSA) raw_to_der "$sig" "$sig.der"; openssl pkeyutl -verify -pubin -inkey "$pub" -in "$WORK/in32.bin" -sigfile "$sig.der" ;;
        ECDSA-SHA*) local h="${mech#ECDSA-}"; raw_to_der "$sig" "$sig.der"
            openssl dgst "-${h,,}" -verify "$pub" -signature "$sig.der" "$WORK/in32.bin" ;;
    esac
}
RSA_MECHS=(RSA-PKCS SHA1-RSA-PKCS SHA224-RSA-PKCS SHA256-RSA-PKCS SHA384-RSA-PKCS SHA512-RSA-PKCS
    SHA1-RSA-PKCS-PSS SHA224-RSA-PKCS-PSS SHA256-RSA-PKCS-PSS SHA384-RSA-PKCS-PSS SHA512-RSA-PKCS-PSS)
EC_MECHS=(ECDSA ECDSA-SHA1 ECDSA-SHA224 ECDSA-SHA256 ECDSA-SHA384 ECDSA-SHA512)
for slot in $SIGN_KEYS; do
    [ -f "$PROV/pub$slot.pem" ] || continue
    if [ "$(key_kind "$slot")" = rsa ]; then mechs=("${RSA_MECHS[@]}"); else mechs=("${EC_MECHS[@]}"); fi
    for mech in "${mechs[@]}"; do
        check_fn "sign with key $(slot_id "$slot") ($slot, $(key_kind "$slot") $(key_bits "$slot")) $mech, openssl verifies" \
            sign_and_verify "$slot" "$mech"
    done
done

# Decryption with every RSA key.
echo "hello p11card" >"$WORK/plain.txt"
for slot in $DECRYPT_KEYS; do
    [ "$(key_kind "$slot")" = rsa ] || continue
    id="$(slot_id "$slot")"
    openssl pkeyutl -encrypt -pubin -inkey "$PROV/pub$slot.pem" -in "$WORK/plain.txt" -out "$WORK/enc-$slot.bin"
    check_output "decrypt RSA-PKCS with key $id" "hello p11card" \
        "${P11[@]}" --login --pin "$PIN" --decrypt --id "$id" -m RSA-PKCS -i "$WORK/enc-$slot.bin"
    openssl pkeyutl -encrypt -pubin -inkey "$PROV/pub$slot.pem" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
        -pkeyopt rsa_mgf1_md:sha256 -in "$WORK/plain.txt" -out "$WORK/enc-oaep-$slot.bin"
    check_output "decrypt RSA-PKCS-OAEP (SHA-256) with key $id" "hello p11card" \
        "${P11[@]}" --login --pin "$PIN" --decrypt --id "$id" -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 \
        -i "$WORK/enc-oaep-$slot.bin"
done

# ECDH with every EC key that may derive: pkcs11-tool derives with a fresh
# peer key, openssl derives the same secret from the peer's side.
ecdh_with() { # key
    local key="$1" curve
    curve=$(openssl pkey -pubin -in "$PROV/pub$key.pem" -noout -text | sed -n 's/.*NIST CURVE: *//p')
    openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$curve" -out "$WORK/peer-$key.key" 2>/dev/null || return 1
    openssl pkey -in "$WORK/peer-$key.key" -pubout -outform DER -out "$WORK/peer-$key.der" || return 1
    timeout "$T" "${P11[@]}" --login --pin "$PIN" --derive --id "$(slot_id "$key")" -m ECDH1-DERIVE \
        -i "$WORK/peer-$key.der" -o "$WORK/ecdh-card-$key.bin" || return 1
    openssl pkeyutl -derive -inkey "$WORK/peer-$key.key" -peerkey "$PROV/pub$key.pem" -out "$WORK/ecdh-openssl-$key.bin" || return 1
    cmp "$WORK/ecdh-card-$key.bin" "$WORK/ecdh-openssl-$key.bin"
}
for key in $DERIVE_KEYS; do
    [ "$(key_kind "$key")" = ec ] || continue
    check_fn "ECDH with key $(slot_id "$key") ($(key_bits "$key")-bit EC, CKM_ECDH1_DERIVE): the secret openssl derives" ecdh_with "$key"
done

check_output "pkcs11-tool --test --login passes" "No errors" "${P11[@]}" --test --login --pin "$PIN"

# A wrong PIN costs exactly one try; the right PIN works afterwards (and
# resets the counter, so the next run starts with all tries).
check_output "wrong PIN is refused with CKR_PIN_INCORRECT" "CKR_PIN_INCORRECT" \
    bash -c "$(printf '%q ' "${P11[@]}") --login --pin 654321 -O 2>&1; true"
check_output "right PIN still works afterwards" "Private Key Object" "${P11[@]}" --login --pin "$PIN" -O
check_output "PIN of a length the card cannot take: CKR_PIN_LEN_RANGE" "CKR_PIN_LEN_RANGE" \
    bash -c "$(printf '%q ' "${P11[@]}") --login --pin $BAD_LENGTH_PIN -O 2>&1; true"

# PIN management through pkcs11-tool: C_SetPIN changes the PIN (and back);
# a PIN blocked by wrong tries is unblocked with the PUK (C_Login(CKU_SO)
# + C_InitPIN), after which the PIN works with all its tries.
check "C_SetPIN changes the PIN (pkcs11-tool --change-pin)" \
    "${P11[@]}" --login --pin "$PIN" --change-pin --new-pin 654321
check_output "the new PIN logs in" "Private Key Object" "${P11[@]}" --login --pin 654321 -O
check "C_SetPIN changes it back" "${P11[@]}" --login --pin 654321 --change-pin --new-pin "$PIN"
block_pin() {
    local i out
    for i in 1 2 3 4 5 6 7 8 9 10; do
        out=$(timeout "$T" "${P11[@]}" --login --pin 111111 -O 2>&1 || true)
        grep -q CKR_PIN_LOCKED <<<"$out" && return 0
        grep -q CKR_PIN_INCORRECT <<<"$out" || { printf '%s\n' "$out"; return 1; }
    done
    return 1
}
check_fn "wrong PINs block the PIN (CKR_PIN_LOCKED)" block_pin
check_output "a blocked PIN is refused even when right: CKR_PIN_LOCKED" "CKR_PIN_LOCKED" \
    bash -c "$(printf '%q ' "${P11[@]}") --login --pin $PIN -O 2>&1; true"
check "the PUK unblocks it (C_Login(CKU_SO, PUK) + C_InitPIN)" \
    "${P11[@]}" --login --login-type so --so-pin "$PUK" --init-pin --new-pin "$PIN"
check_output "the PIN logs in again after the unblock" "Private Key Object" "${P11[@]}" --login --pin "$PIN" -O
