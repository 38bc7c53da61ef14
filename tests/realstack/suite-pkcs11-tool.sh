# OpenSC's pkcs11-tool against the module and the virtual PIV card.
# (sourced by run.sh: MODULE, PROV, WORK, APDU_LOG are set)

P11=(pkcs11-tool --module "$MODULE")
head -c 32 /dev/urandom >"$WORK/in32.bin"

check_output "pkcs11-tool -I shows the module" "Manufacturer +p11card" "${P11[@]}" -I
check_output "pkcs11-tool -L shows the card's token" "token label +: virtpiv 9A PIV-Authentication" "${P11[@]}" -L
check_output "pkcs11-tool -O lists four certificates" "(Certificate Object.*){4}" bash -c "$(printf '%q ' "${P11[@]}") -O | tr '\n' ' '"
check_output "pkcs11-tool -M lists ECDSA and RSA-PSS" "RSA-PKCS-PSS.*ECDSA-SHA256" bash -c "$(printf '%q ' "${P11[@]}") -M | tr '\n' ' '"

# Every mechanism each key allows, verified by openssl.
sign_and_verify() { # id slot mechanism
    local id="$1" slot="$2" mech="$3" sig="$WORK/sig-$1-$3"
    timeout "$T" "${P11[@]}" --login --pin 123456 --sign --id "$id" -m "$mech" -i "$WORK/in32.bin" -o "$sig" || return 1
    local pub="$PROV/pub$slot.pem"
    case "$mech" in
        RSA-PKCS) openssl pkeyutl -verify -pubin -inkey "$pub" -in "$WORK/in32.bin" -sigfile "$sig" ;;
        SHA*-RSA-PKCS) local h="${mech%%-*}"; openssl dgst "-${h,,}" -verify "$pub" -signature "$sig" "$WORK/in32.bin" ;;
        SHA*-RSA-PKCS-PSS) local h="${mech%%-*}"; openssl dgst "-${h,,}" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1 -verify "$pub" -signature "$sig" "$WORK/in32.bin" ;;
        ECDSA) raw_to_der "$sig" "$sig.der"; openssl pkeyutl -verify -pubin -inkey "$pub" -in "$WORK/in32.bin" -sigfile "$sig.der" ;;
        ECDSA-SHA*) local h="${mech#ECDSA-}"; raw_to_der "$sig" "$sig.der"; openssl dgst "-${h,,}" -verify "$pub" -signature "$sig.der" "$WORK/in32.bin" ;;
    esac
}
for spec in "01 9a RSA-PKCS" "01 9a SHA1-RSA-PKCS" "01 9a SHA256-RSA-PKCS" "01 9a SHA384-RSA-PKCS" "01 9a SHA512-RSA-PKCS" \
            "01 9a SHA256-RSA-PKCS-PSS" "01 9a SHA384-RSA-PKCS-PSS" "01 9a SHA512-RSA-PKCS-PSS" \
            "02 9c ECDSA" "02 9c ECDSA-SHA256" "02 9c ECDSA-SHA384" \
            "03 9d SHA256-RSA-PKCS" "03 9d SHA256-RSA-PKCS-PSS" \
            "04 9e ECDSA" "04 9e ECDSA-SHA256" "04 9e ECDSA-SHA512"; do
    set -- $spec
    check_fn "sign with key $1 ($2) $3, openssl verifies" sign_and_verify "$1" "$2" "$3"
done

# Decryption with the key-management key.
echo "hello p11card" >"$WORK/plain.txt"
openssl pkeyutl -encrypt -pubin -inkey "$PROV/pub9d.pem" -in "$WORK/plain.txt" -out "$WORK/enc.bin"
check_output "decrypt RSA-PKCS with key 03" "hello p11card" "${P11[@]}" --login --pin 123456 --decrypt --id 03 -m RSA-PKCS -i "$WORK/enc.bin"
openssl pkeyutl -encrypt -pubin -inkey "$PROV/pub9d.pem" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$WORK/plain.txt" -out "$WORK/enc-oaep.bin"
check_output "decrypt RSA-PKCS-OAEP (SHA-256) with key 03" "hello p11card" "${P11[@]}" --login --pin 123456 --decrypt --id 03 -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 -i "$WORK/enc-oaep.bin"

check_output "pkcs11-tool --test --login passes" "No errors" "${P11[@]}" --test --login --pin 123456

# A wrong PIN costs exactly one try, then the right PIN works (and resets the counter).
check_output "wrong PIN is refused with CKR_PIN_INCORRECT" "CKR_PIN_INCORRECT" bash -c "$(printf '%q ' "${P11[@]}") --login --pin 654321 -O 2>&1; true"
check_output "right PIN still works afterwards" "Private Key Object" "${P11[@]}" --login --pin 123456 -O
check_output "PIN of a length the card cannot take: CKR_PIN_LEN_RANGE" "CKR_PIN_LEN_RANGE" bash -c "$(printf '%q ' "${P11[@]}") --login --pin 12345 -O 2>&1; true"
