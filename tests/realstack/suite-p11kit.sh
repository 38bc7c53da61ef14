# p11-kit: the module registered through a module config file (derived from
# the shipped p11card.module), seen by p11-kit list-modules, p11tool and
# through p11-kit-proxy.so. As root p11-kit ignores per-user configs, so the
# test registers /etc/pkcs11/modules/p11card-realstack-test.module and
# removes it afterwards. (sourced by run.sh: MODULE, PROV, WORK, PIN are set)

# card-families: piv pkcs15
P11KIT_SHIPPED="$REPO_ROOT/p11card.module"
P11KIT_NAME=p11card-realstack-test
P11KIT_CONF_DIR=/etc/pkcs11/modules
P11KIT_CONF="$P11KIT_CONF_DIR/$P11KIT_NAME.module"
P11KIT_PROXY=/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so
[ -f "$P11KIT_PROXY" ] || P11KIT_PROXY="$(pkg-config --variable=proxy_module p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/p11-kit-proxy.so)"

# The shipped module file names the library by its installed file name
# (looked up in p11-kit's module directory; the Debian package installs it
# there as p11card-pkcs11.so) and is not critical.
check_output "p11card.module names the module p11card-pkcs11.so" "^module: *p11card-pkcs11\.so\$" cat "$P11KIT_SHIPPED"
check_output "p11card.module: critical: no" "^critical: *no\$" cat "$P11KIT_SHIPPED"

# Register it for the test: the shipped file with the built module's
# absolute path.
for d in /etc/pkcs11 "$P11KIT_CONF_DIR"; do
    if [ ! -d "$d" ]; then mkdir "$d" && on_exit rmdir "$d" || true; fi
done
on_exit rm -f -- "$P11KIT_CONF"
sed "s|^module:.*|module: $MODULE|" "$P11KIT_SHIPPED" >"$P11KIT_CONF" || true

# What the module itself reports for the card's token (to find it among the
# other modules' tokens: OpenSC, also registered with p11-kit, shows the same
# card with the same label and serial).
P11KIT_DIRECT="$(timeout "$T" pkcs11-tool --module "$MODULE" -L 2>/dev/null || true)"
p11kit_re() { sed 's/[][\.*^$(){}+?|]/\\&/g' <<<"$1"; }
p11kit_field() { sed -n "0,/^ *$1 *:/s/^ *$1 *: //p" <<<"$2" | sed 's/ *$//'; }
P11KIT_TOKEN="$(p11kit_field "token label" "$P11KIT_DIRECT")"
P11KIT_MANUF="$(p11kit_field "token manufacturer" "$P11KIT_DIRECT")"
P11KIT_MODEL="$(p11kit_field "token model" "$P11KIT_DIRECT")"
P11KIT_SERIAL="$(p11kit_field "serial num" "$P11KIT_DIRECT")"

# p11-kit list-modules: our entry, its library info and the card's token.
P11KIT_LIST="$(timeout "$T" p11-kit list-modules 2>&1 || true)"
P11KIT_ENTRY="$(awk -v name="$P11KIT_NAME:" '$1 == name {on = 1; print; next} /^[^ \t]/ {on = 0} on' <<<"$P11KIT_LIST")"
check_output "p11-kit list-modules shows $P11KIT_NAME with the module's path" "^$P11KIT_NAME: $MODULE\$" printf '%s\n' "$P11KIT_ENTRY"
check_output "p11-kit list-modules shows the module's library manufacturer p11card" "^ +library-manufacturer: p11card\$" \
    printf '%s\n' "$P11KIT_ENTRY"
check_output "p11-kit list-modules shows the card's token '$P11KIT_TOKEN' under the module" \
    "^ +token: $(p11kit_re "$P11KIT_TOKEN")\$" printf '%s\n' "$P11KIT_ENTRY"
check_output "p11-kit list-modules shows the token's serial $P11KIT_SERIAL" "^ +serial-number: $(p11kit_re "$P11KIT_SERIAL")\$" \
    printf '%s\n' "$P11KIT_ENTRY"

# p11tool (GnuTLS, through p11-kit): the token, with our module.
P11KIT_P11TOOL="$(timeout "$T" p11tool --list-tokens 2>&1 </dev/null || true)"
p11kit_p11tool_has_token() {
    awk -v label="$P11KIT_TOKEN" -v mod="$MODULE" '
        /^Token [0-9]+:/ {l = ""; m = ""}
        $1 == "Label:" {sub(/^[ \t]*Label: /, ""); l = $0}
        $1 == "Module:" {sub(/^[ \t]*Module: /, ""); m = $0; if (l == label && m == mod) found = 1}
        END {exit !found}' <<<"$P11KIT_P11TOOL"
}
check_fn "p11tool --list-tokens shows the card's token from the module" p11kit_p11tool_has_token

# p11-kit-proxy.so: one module with every registered module's slots; ours is
# the slot whose token has our manufacturer, model and serial.
P11KIT_PROXY_LIST="$(timeout "$T" pkcs11-tool --module "$P11KIT_PROXY" -L 2>&1 || true)"
P11KIT_SLOT="$(awk -v manuf="$P11KIT_MANUF" -v model="$P11KIT_MODEL" -v serial="$P11KIT_SERIAL" '
    function val(s) {sub(/^[^:]*: /, "", s); sub(/ +$/, "", s); return s}
    /^Slot [0-9]+ \(0x[0-9a-f]+\)/ {slot = $3; gsub(/[():]/, "", slot); ma = mo = ""}
    /^  token manufacturer/ {ma = val($0)}
    /^  token model/ {mo = val($0)}
    /^  serial num/ {if (ma == manuf && mo == model && val($0) == serial && !found) found = slot}
    END {print found}' <<<"$P11KIT_PROXY_LIST")"
check_fn "pkcs11-tool through p11-kit-proxy.so shows the card's token (slot ${P11KIT_SLOT:-none})" test -n "$P11KIT_SLOT"
P11KIT_SLOT_BLOCK="$(awk -v s="(${P11KIT_SLOT:-none}):" '/^Slot /{on = ($3 == s)} on' <<<"$P11KIT_PROXY_LIST")"
check_output "p11-kit-proxy.so slot ${P11KIT_SLOT:-none} has the token label '$P11KIT_TOKEN'" \
    "^  token label +: $(p11kit_re "$P11KIT_TOKEN")\$" printf '%s\n' "$P11KIT_SLOT_BLOCK"

# Signatures through the proxy: the login key (SHA256-RSA-PKCS) and the EC key (ECDSA-SHA256;
# pkcs11-tool logs in anyway since the token says "login required");
# openssl verifies with the card's public keys.
head -c 100 /dev/urandom >"$WORK/p11kit-in.bin"
p11kit_sign_rsa() {
    rm -f "$WORK/p11kit-sig-rsa"
    timeout "$T" pkcs11-tool --module "$P11KIT_PROXY" --slot "$P11KIT_SLOT" --login --pin "$PIN" \
        --sign --id "$(slot_id "$LOGIN_KEY")" -m SHA256-RSA-PKCS -i "$WORK/p11kit-in.bin" -o "$WORK/p11kit-sig-rsa" || return 1
    timeout "$T" openssl dgst -sha256 -verify "$PROV/pub$LOGIN_KEY.pem" -signature "$WORK/p11kit-sig-rsa" "$WORK/p11kit-in.bin"
}
check_fn "sign with key $(slot_id "$LOGIN_KEY") ($LOGIN_KEY) SHA256-RSA-PKCS through p11-kit-proxy.so, openssl verifies" p11kit_sign_rsa
p11kit_sign_ec() {
    rm -f "$WORK/p11kit-sig-ec"
    timeout "$T" pkcs11-tool --module "$P11KIT_PROXY" --slot "$P11KIT_SLOT" --login --pin "$PIN" \
        --sign --id "$(slot_id "$EC_KEY")" -m ECDSA-SHA256 -i "$WORK/p11kit-in.bin" -o "$WORK/p11kit-sig-ec" || return 1
    raw_to_der "$WORK/p11kit-sig-ec" "$WORK/p11kit-sig-ec.der"
    timeout "$T" openssl dgst -sha256 -verify "$PROV/pub$EC_KEY.pem" -signature "$WORK/p11kit-sig-ec.der" "$WORK/p11kit-in.bin"
}
check_fn "sign with key $(slot_id "$EC_KEY") ($EC_KEY) ECDSA-SHA256 through p11-kit-proxy.so, openssl verifies" p11kit_sign_ec
