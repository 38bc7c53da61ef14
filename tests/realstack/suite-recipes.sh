# The README's recipes ("Use your card"), run as written against the card:
# the module path, example key URI, site and CA file swapped for the test's
# own; the PIN typed on the recipe's terminal when a program asks for it.
# (sourced by run.sh: MODULE, PROV, WORK, PIN are set)

# card-families: piv pkcs15
source "$HERE/tls-server.sh"

recipe_check() {
    local out
    readme_recipe check >"$WORK/recipe-check.sh"
    out=$(run_recipe "$WORK/recipe-check.sh") || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out"
    grep -q "A usable card is present" <<<"$out" && grep -qF "Certificate: " <<<"$out" &&
        grep -qF "$(key_uri "$LOGIN_KEY" cert | sed 's/;type=cert//')" <<<"$out"
}
check_fn "README recipe 'check': p11card status and list show the card and its key URIs" recipe_check

start_tls_server
site_edits=("s|company-ca.pem|$SERVER_CA|g" "s|intranet.example.org -p 443|127.0.0.1 -p $TLS_PORT|g"
    "s|intranet.example.org:443|127.0.0.1:$TLS_PORT|g")

# recipe_login NAME: the recipe logs in to the site (s_server -www names the
# client certificate it verified).
recipe_login() {
    local out
    readme_recipe "$1" "${site_edits[@]}" >"$WORK/recipe-$1.sh"
    out=$(run_recipe "$WORK/recipe-$1.sh") || { printf '%s\n' "$out"; cat "$WORK/recipe-$1.sh"; return 1; }
    printf '%s\n' "$out"
    grep -qF "(type-pin: typed the PIN)" <<<"$out" &&
        { grep -qF "CN=$(cert_cn "$LOGIN_KEY")" <<<"$out" || grep -qF "CN = $(cert_cn "$LOGIN_KEY")" <<<"$out"; }
}
check_fn "README recipe 'gnutls': gnutls-cli logs in to a client-certificate site, PIN typed" recipe_login gnutls
check_fn "README recipe 'openssl': openssl s_client with the pkcs11 engine logs in, PIN typed" recipe_login openssl
