#!/usr/bin/env bash
# The Debian package, installed the way a user installs it:
#
#   tests/package/run.sh            # as root (or a user with sudo)
#
# Builds the package (scripts/build-deb.sh, as the caller), then, as root in
# private mount, PID and network namespaces (their own pcscd socket
# directory and loopback, as tests/realstack/run.sh), but with the machine's
# real filesystem: `dpkg -i` it into /, checks its files (`dpkg -L`), its
# dependencies, the manual pages, `p11-kit list-modules`; starts pcscd with
# the independent virtual PIV card (../shared/virtpiv, or $P11CARD_VIRTPIV)
# and checks `pkcs11-tool` on the installed module path (token, a signature
# verified by openssl), `p11card status`, p11-kit's view of the token and the
# installed card profiles as a profile directory; then `dpkg -r` and
# `dpkg -P`: no file of the package left, p11-kit no longer lists it, no
# registration left behind. Whatever happens, the package is purged and what
# was started is stopped (by PID) on exit. Every command runs under a
# timeout. The programs run with HOME in a scratch directory, so that root's
# own caches and configuration stay untouched.
#
# It installs into the machine's real /, so it must not run while another
# test uses the p11card module through p11-kit (scripts/test-all.sh runs it
# after the real stack).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PACKAGE=p11card

# purge_if_installed: `dpkg -P` the package if dpkg knows it in any state.
purge_if_installed() {
    local state
    state="$(timeout 60 dpkg-query -W -f '${db:Status-Status}' "$PACKAGE" 2>/dev/null || true)"
    if [ -n "$state" ] && [ "$state" != not-installed ]; then
        echo "package: purging $PACKAGE (left $state)" >&2
        timeout 300 dpkg -P "$PACKAGE" >/dev/null 2>&1 || true
    fi
}

# ---- outside the namespaces: build the package, then run this script as root
# inside them.
if [ "${P11CARD_PACKAGE_IN_NS:-}" = "" ]; then
    # The test installs, removes and purges the package on this machine:
    # not where p11card is installed already (it would be replaced, then
    # purged).
    preinstalled="$(timeout 60 dpkg-query -W -f '${db:Status-Status}' "$PACKAGE" 2>/dev/null || true)"
    if [ -n "$preinstalled" ] && [ "$preinstalled" != not-installed ]; then
        echo "package: $PACKAGE is installed on this machine ($preinstalled); the test would replace and purge it" >&2
        exit 1
    fi
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    WORK_OUT="$(mktemp -d "${TMPDIR:-/tmp}/p11card-package.XXXXXX")"
    cleanup_outer() {
        # The inner run purges on its exit; this catches an inner run that
        # was killed (its timeout) before its trap could.
        "${as_root[@]}" bash -c "$(declare -p PACKAGE; declare -f purge_if_installed); purge_if_installed" || true
        rm -rf -- "$WORK_OUT"
    }
    trap cleanup_outer EXIT
    started=$SECONDS
    echo "package: building the .deb (scripts/build-deb.sh)"
    timeout 3600 "$REPO/scripts/build-deb.sh" "$WORK_OUT/" >"$WORK_OUT/build.out" 2>"$WORK_OUT/build.log" ||
        { tail -30 "$WORK_OUT/build.log"; exit 1; }
    DEB="$(tail -n 1 "$WORK_OUT/build.out")"
    [ -f "$DEB" ] || { echo "package: build-deb.sh printed no package path"; cat "$WORK_OUT/build.out"; exit 1; }
    echo "package: built $(basename "$DEB") ($(stat -c %s "$DEB") bytes) in $((SECONDS - started)) s"
    chmod -R a+rX "$WORK_OUT"
    isolate=(timeout 1200 unshare --mount --pid --fork --mount-proc --net --)
    [ "${P11CARD_REALSTACK_ISOLATE:-1}" != 0 ] || isolate=(timeout 1200)
    rc=0
    "${as_root[@]}" env P11CARD_PACKAGE_IN_NS=1 P11CARD_PACKAGE_DEB="$DEB" \
        P11CARD_VIRTPIV="${P11CARD_VIRTPIV:-$REPO/../shared/virtpiv}" \
        "${isolate[@]}" "${BASH_SOURCE[0]}" || rc=$?
    echo "package: whole test $((SECONDS - started)) s"
    exit "$rc"
fi

# ---- inside: as root, own pcscd socket directory and loopback.
if [ "${P11CARD_REALSTACK_ISOLATE:-1}" != 0 ]; then
    timeout 10 ip link set lo up
    mkdir -p /run/pcscd
    timeout 10 mount -t tmpfs -o mode=0755 tmpfs /run/pcscd
fi
source "$REPO/tests/realstack/lib.sh"

# check_fn_output NAME PATTERN FUNCTION ARGS...: check_output for a shell
# function (whose commands carry their own timeouts).
check_fn_output() {
    local name="$1" pattern="$2" out; shift 2
    if out=$("$@" 2>&1) && grep -qE -- "$pattern" <<<"$out"; then
        pass "$name"
    else
        fail "$name (wanted /$pattern/)"
        printf '%s\n' "$out" | sed 's/^/        /' | tail -20
    fi
}

DEB="$P11CARD_PACKAGE_DEB"

# The package's removal runs `p11card unregister` as each user in
# /etc/passwd: inside the namespaces, only root is (its home a tmpfs below),
# so the machine's users keep their own registrations.
if [ "${P11CARD_REALSTACK_ISOLATE:-1}" != 0 ]; then
    grep '^root:' /etc/passwd >"${TMPDIR:-/tmp}/p11card-package-passwd.$$"
    timeout 10 mount --bind "${TMPDIR:-/tmp}/p11card-package-passwd.$$" /etc/passwd
    rm -f -- "${TMPDIR:-/tmp}/p11card-package-passwd.$$"
fi
VIRTPIV="$P11CARD_VIRTPIV"
PIN=123456
MULTIARCH="$(timeout "$T" dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)"
MODULE="/usr/lib/$MULTIARCH/pkcs11/p11card-pkcs11.so"
CLI=/usr/bin/p11card
P11KIT_FILE=/usr/share/p11-kit/modules/p11card.module
REGISTRATION=/etc/pkcs11/modules/p11card.module
WORK="$(mktemp -d "${TMPDIR:-/tmp}/p11card-package-ns.XXXXXX")"
export HOME="$WORK/home"
mkdir -p "$HOME"
export VIRTPIV_RUN_DIR="$WORK/run" VIRTPIV_STATE_DIR="$WORK/state"
CARD_STARTED=0

cleanup() {
    run_cleanups
    if [ "$CARD_STARTED" = 1 ]; then
        timeout 60 "$VIRTPIV/stop.sh" >/dev/null 2>&1 || true
    fi
    purge_if_installed
    rm -rf -- "$WORK"
}
trap cleanup EXIT

# The files the package must install (man pages: the command's, a
# subcommand's, the configuration's; every card profile of the source tree).
EXPECTED=(
    "$MODULE" "$P11KIT_FILE" "$CLI"
    /usr/share/man/man1/p11card.1.gz /usr/share/man/man1/p11card-status.1.gz
    /usr/share/man/man1/p11card-pin-unblock.1.gz /usr/share/man/man5/p11card.toml.5.gz
    /usr/share/doc/p11card/examples/p11card.toml /usr/share/doc/p11card/copyright
)
for profile in "$REPO"/cardprofiles/*.toml; do
    EXPECTED+=("/usr/share/p11card/cardprofiles/$(basename "$profile")")
done

printf '\n-- the package file\n'
check_output "dpkg-deb: package $PACKAGE, Depends has pcscd" "^pcscd$" \
    bash -c "dpkg-deb -f '$DEB' Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//'"
check_output "dpkg-deb: Depends has libpcsclite1 and libc6 (shlibs)" "libpcsclite1 .*libc6|libc6 .*libpcsclite1" \
    bash -c "dpkg-deb -f '$DEB' Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//' | sort | tr '\n' ' '"
check_output "dpkg-deb: the package is named $PACKAGE" "^$PACKAGE\$" dpkg-deb -f "$DEB" Package

printf '\n-- before installing\n'
check_fn "no p11card registration exists before the test ($REGISTRATION)" test ! -e "$REGISTRATION"

# The prerm's unregistering, with a stand-in for /usr/bin/p11card that
# records who ran it, with which HOME and arguments (the real unregister
# command is on branch i15reg): on "remove" once --system as root, then
# once as each user with UID 0 or >= 1000 whose home exists; on "upgrade"
# not at all. Run by sh (dash): the script is POSIX sh.
PRERM_DIR="$WORK/prerm"
mkdir -p "$PRERM_DIR/log"
chmod 755 "$WORK" "$PRERM_DIR"
chmod 1777 "$PRERM_DIR/log"
printf '#!/bin/sh\ncase "$*" in *--help*) exit 0 ;; esac\necho "$(id -un) $HOME $*" >>"%s/log/calls"\n' \
    "$PRERM_DIR" >"$PRERM_DIR/p11card"
chmod 755 "$PRERM_DIR/p11card"
sed "s|^P11CARD=/usr/bin/p11card\$|P11CARD=$PRERM_DIR/p11card|" "$REPO/packaging/debian/prerm" >"$PRERM_DIR/prerm"
prerm_unregisters() {
    local expected
    : >"$PRERM_DIR/log/calls"
    chmod 666 "$PRERM_DIR/log/calls"
    grep -q "^P11CARD=$PRERM_DIR/p11card\$" "$PRERM_DIR/prerm" || { echo "prerm names no P11CARD"; return 1; }
    timeout 120 sh "$PRERM_DIR/prerm" upgrade || return 1
    [ ! -s "$PRERM_DIR/log/calls" ] || { echo "upgrade unregistered:"; cat "$PRERM_DIR/log/calls"; return 1; }
    timeout 300 sh "$PRERM_DIR/prerm" remove || return 1
    expected="$(
        echo "root $HOME unregister --system --quiet --module $MODULE"
        awk -F: '($3 == 0 || $3 >= 1000) && $6 != "" {print $1, $6}' /etc/passwd |
            while read -r user home; do [ -d "$home" ] && echo "$user $home unregister --quiet --module $MODULE"; done
    )"
    diff <(echo "$expected") "$PRERM_DIR/log/calls"
}
check_fn "prerm remove: p11card unregister --system, then as each user (UID 0 or >= 1000, home present) with HOME; upgrade: nothing" \
    prerm_unregisters
sed 's/^/        /' "$PRERM_DIR/log/calls" 2>/dev/null || true

printf '\n-- dpkg -i\n'
started=$SECONDS
# (A Docker-style dpkg configuration excludes manual pages and docs; these
# options take ours back in. Without such an exclusion they change nothing.)
if out=$(timeout 300 dpkg --path-include='/usr/share/man/*' --path-include="/usr/share/doc/$PACKAGE/*" \
    -i "$DEB" 2>&1); then
    pass "dpkg -i $(basename "$DEB") ($((SECONDS - started)) s)"
else
    fail "dpkg -i $(basename "$DEB")"
    printf '%s\n' "$out" | sed 's/^/        /' | tail -20
    summary
    exit 1
fi

LISTED="$(timeout "$T" dpkg -L "$PACKAGE")"
echo "  dpkg -L $PACKAGE (files):"
while IFS= read -r path; do
    [ -f "$path" ] && printf '        %s\n' "$path"
done <<<"$LISTED"
listed_and_present() {
    local file missing=0
    for file in "${EXPECTED[@]}"; do
        grep -qxF "$file" <<<"$LISTED" && [ -f "$file" ] || { echo "missing: $file"; missing=1; }
    done
    return "$missing"
}
check_fn "dpkg -L lists the module, p11card.module, /usr/bin/p11card, man pages, ${#EXPECTED[@]} files in all, each installed" \
    listed_and_present

profiles_same() {
    local file installed
    for file in "$REPO"/cardprofiles/*.toml; do
        cmp -- "$file" "/usr/share/p11card/cardprofiles/$(basename "$file")" || return 1
    done
    for installed in /usr/share/p11card/cardprofiles/*.toml; do
        [ -f "$REPO/cardprofiles/$(basename "$installed")" ] || { echo "extra: $installed"; return 1; }
    done
}
check_fn "the installed card profiles are the source tree's (the ones built into the module)" profiles_same
check "the example configuration is packaging/p11card.toml" \
    cmp "$REPO/packaging/p11card.toml" /usr/share/doc/p11card/examples/p11card.toml
check_output "$P11KIT_FILE names the module p11card-pkcs11.so" "^module: p11card-pkcs11\.so\$" cat "$P11KIT_FILE"
check_output "$P11KIT_FILE: critical: no" "^critical: no\$" cat "$P11KIT_FILE"
check_output "p11-kit's module directory is $(dirname "$MODULE")" "^$(dirname "$MODULE")\$" \
    pkg-config --variable=p11_module_path p11-kit-1
check_output "$CLI --version" "^p11card [0-9]+\.[0-9]+\.[0-9]+" "$CLI" --version
check_output "dpkg-query: $PACKAGE installed" "^install ok installed\$" dpkg-query -W -f '${Status}\n' "$PACKAGE"

# Manual pages, as `man` finds them by name.
man_page() { MANPAGER=cat MANWIDTH=100 timeout "$T" man "$@" 2>&1; }
check_fn_output "man p11card: the command's page, naming its subcommands" "p11card-status\(1\)" man_page p11card
check_fn_output "man p11card-pin-unblock: the subcommand's options" "--puk-fd" man_page p11card-pin-unblock
check_fn_output "man 5 p11card.toml: the configuration's page" "/usr/share/p11card/cardprofiles" man_page 5 p11card.toml

# p11-kit list-modules: the entry named after the module file, with the
# bare file name it was given, loaded (its library information shows) from
# p11-kit's module directory, the only place that file is (no card yet:
# pcscd is not running in these namespaces).
p11kit_entry() {
    timeout "$T" p11-kit list-modules 2>&1 |
        awk '$1 == "p11card:" {on = 1; print; next} /^[^ \t]/ {on = 0} on'
}
check_fn_output "p11-kit list-modules: p11card: p11card-pkcs11.so" "^p11card: p11card-pkcs11\.so\$" p11kit_entry
check_fn_output "p11-kit list-modules: p11card loaded from $(dirname "$MODULE") (library-manufacturer p11card)" \
    "^ +library-manufacturer: p11card\$" p11kit_entry

printf '\n-- with pcscd and the virtual PIV card (%s)\n' "$VIRTPIV"
if ! [ -x "$VIRTPIV/start.sh" ]; then
    fail "no virtual PIV card at $VIRTPIV (set P11CARD_VIRTPIV)"
else
    CARD_STARTED=1
    if ! timeout 600 "$VIRTPIV/start.sh" --fresh >"$WORK/start.log" 2>&1 ||
        ! timeout 120 "$VIRTPIV/provision.sh" >"$WORK/provision.log" 2>&1; then
        fail "starting the virtual PIV card"
        tail -20 "$WORK/start.log" "$WORK/provision.log" | sed 's/^/        /'
    else
        PROV="$VIRTPIV_STATE_DIR/provisioned"
        CARD_FAMILY=piv
        card_manifest
        check_output "pkcs11-tool --module $MODULE -L: the token \"$TOKEN_LABEL\"" \
            "token label +: $(sed 's/[][\.*^$(){}+?|]/\\&/g' <<<"$TOKEN_LABEL")\$" pkcs11-tool --module "$MODULE" -L

        head -c 100 /dev/urandom >"$WORK/in.bin"
        sign_verify() {
            timeout "$T" pkcs11-tool --module "$MODULE" --login --pin "$PIN" --sign --id "$(slot_id "$LOGIN_KEY")" \
                -m SHA256-RSA-PKCS -i "$WORK/in.bin" -o "$WORK/sig.bin" || return 1
            timeout "$T" openssl dgst -sha256 -verify "$PROV/pub$LOGIN_KEY.pem" -signature "$WORK/sig.bin" "$WORK/in.bin"
        }
        check_fn "pkcs11-tool --module $MODULE --login --sign (key $(slot_id "$LOGIN_KEY"), SHA256-RSA-PKCS); openssl verifies" \
            sign_verify

        status_rc=0
        timeout "$T" "$CLI" status >"$WORK/status.out" 2>"$WORK/status.err" || status_rc=$?
        echo "  $CLI status (exit $status_rc):"
        sed 's/^/        /' "$WORK/status.out" "$WORK/status.err"
        status_ok() {
            [ "$status_rc" = 0 ] && grep -qxF "  Token:   $TOKEN_LABEL" "$WORK/status.out" &&
                grep -qxF "  Profile: piv" "$WORK/status.out" &&
                grep -qxF "A usable card is present." "$WORK/status.out"
        }
        check_fn "$CLI status: exit 0, the token \"$TOKEN_LABEL\", profile piv, a usable card" status_ok

        # The installed profiles as a profile directory: each loads (a
        # profile the module refuses is logged as "ignored") and the card is
        # recognised the same.
        printf 'profile_dirs = ["/usr/share/p11card/cardprofiles"]\nlog_level = "warn"\n' >"$WORK/profiles.toml"
        profiles_as_dir() {
            local rc=0
            P11CARD_CONFIG="$WORK/profiles.toml" timeout "$T" "$CLI" status >"$WORK/dir.out" 2>"$WORK/dir.err" || rc=$?
            [ "$rc" = 0 ] && grep -qxF "  Profile: piv" "$WORK/dir.out" && ! grep -q "ignored" "$WORK/dir.err" ||
                { echo "exit $rc"; cat "$WORK/dir.out" "$WORK/dir.err"; return 1; }
        }
        check_fn "profile_dirs = [\"/usr/share/p11card/cardprofiles\"]: every installed profile loads, the card is recognised" \
            profiles_as_dir

        P11KIT_ENTRY="$(p11kit_entry)"
        echo "  p11-kit list-modules (the p11card entry):"
        sed 's/^/        /' <<<"$P11KIT_ENTRY"
        check_output "p11-kit list-modules: the token \"$TOKEN_LABEL\" under p11card" \
            "^ +token: $(sed 's/[][\.*^$(){}+?|]/\\&/g' <<<"$TOKEN_LABEL")\$" printf '%s\n' "$P11KIT_ENTRY"

        # A newcomer's next steps with the installed package: the README's
        # `p11card register`, then Firefox logs in to a client-certificate
        # site with the card (the real-stack Firefox suite, run with the
        # installed command and module). Root's home is a tmpfs of this
        # namespace, so the registration lands where the package's prerm
        # looks (root's home in /etc/passwd) without touching the host's.
        if [ "${P11CARD_REALSTACK_ISOLATE:-1}" != 0 ] && timeout 10 mount -t tmpfs -o mode=0700 tmpfs /root; then
            printf '\n-- p11card register and Firefox, as root (home: a tmpfs)\n'
            export HOME=/root
            FF_HOME=/root CLI_BIN="$CLI"
            # shellcheck source=../realstack/suite-firefox.sh
            source "$REPO/tests/realstack/suite-firefox.sh"
            REGISTERED_HOME=/root
        else
            echo "  (not isolated: p11card register and Firefox skipped)"
        fi
    fi
fi

printf '\n-- dpkg -r, dpkg -P\n'
# The files (not directories: /usr/share/man/man1 is everyone's) dpkg put in.
mapfile -t FILES < <(while IFS= read -r path; do [ -f "$path" ] || [ -L "$path" ] && echo "$path"; done <<<"$LISTED")
started=$SECONDS
check_fn "dpkg -r $PACKAGE" timeout 300 dpkg -r "$PACKAGE"
echo "  (removed in $((SECONDS - started)) s)"
nothing_left() {
    local file left=0
    for file in "${FILES[@]}" /usr/share/p11card /usr/share/doc/p11card; do
        [ ! -e "$file" ] && [ ! -L "$file" ] || { echo "left: $file"; left=1; }
    done
    return "$left"
}
check_fn "no file of the package left (${#FILES[@]} files, /usr/share/p11card, /usr/share/doc/p11card)" nothing_left
not_in_p11kit() {
    local list
    list="$(timeout "$T" p11-kit list-modules 2>&1)"
    ! grep -qE '^p11card:|p11card-pkcs11\.so' <<<"$list" || { printf '%s\n' "$list"; return 1; }
}
check_fn "p11-kit list-modules no longer lists p11card" not_in_p11kit
check_fn "no registration left behind ($REGISTRATION absent)" test ! -e "$REGISTRATION"
# The prerm ran each user's `p11card unregister`: root's Firefox profile
# and Chrome database name p11card no more.
if [ -n "${REGISTERED_HOME:-}" ]; then
    no_user_registration() {
        local db left=0
        for db in "$REGISTERED_HOME/.mozilla/firefox/p11card.test" "$REGISTERED_HOME/.pki/nssdb"; do
            if grep -qx "name=p11card" "$db/pkcs11.txt" 2>/dev/null; then
                echo "still registered in $db/pkcs11.txt"
                left=1
            fi
        done
        [ ! -e "$REGISTERED_HOME/.config/pkcs11/modules/p11card.module" ] || { echo "left: p11-kit user module file"; left=1; }
        return "$left"
    }
    check_fn "no registration left in $REGISTERED_HOME (Firefox profile, ~/.pki/nssdb, p11-kit)" no_user_registration
fi
check_fn "dpkg -P $PACKAGE" timeout 300 dpkg -P "$PACKAGE"
check_output "dpkg-query: $PACKAGE not installed" "^(not-installed)?\$" \
    bash -c "dpkg-query -W -f '\${db:Status-Status}' '$PACKAGE' 2>/dev/null; true"

summary
