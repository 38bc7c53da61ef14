#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12: the PC/SC
# stack (pcscd, the vpcd virtual reader), build headers, and the PKCS#11
# consumers the tests drive (GnuPG provisions the virtual OpenPGP card). Needs root (or sudo) and a package mirror.
set -euo pipefail

packages=(
    build-essential pkg-config libpcsclite-dev libclang-dev iproute2
    pcscd vsmartcard-vpcd pcsc-tools
    opensc opensc-pkcs11 openssl xxd binutils
    gnutls-bin libnss3-tools libengine-pkcs11-openssl p11-kit
    openssh-server libpam-pkcs11 pamtester python3 python3-pykcs11 python3-cryptography
    gnupg scdaemon
    # the browser of the real-stack Firefox suite (headless, via Marionette)
    firefox-esr
    # the Debian package's test opens its manual pages with man
    man-db
    # SSSD smart-card login (pam_sss, p11_child) for tests/realstack/suite-sssd.sh;
    # its packages add pam_sss to /etc/pam.d/common-* and sss to nsswitch.conf,
    # inert while sssd is not running
    sssd-common
)

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    as_root=(sudo)
fi

echo "setup: installing ${packages[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${packages[@]}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) and run again" >&2
    exit 1
fi

# cargo-deb builds the Debian package (scripts/build-deb.sh); about 1.5 min
# to install on 2 cores, once.
CARGO_DEB_VERSION=3.8.0
if ! timeout 30 cargo deb --version >/dev/null 2>&1; then
    echo "setup: installing cargo-deb $CARGO_DEB_VERSION"
    timeout 1800 nice -n 15 cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
