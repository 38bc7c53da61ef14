#!/usr/bin/env bash
# Builds the Debian package p11card with cargo-deb (see
# [package.metadata.deb] in Cargo.toml):
#
#   scripts/build-deb.sh [OUTPUT.deb|DIR]      # default: target/debian/
#
# The module, the p11card command (release builds; nothing is rebuilt when
# they are current), their manual pages (p11card(1) and one page per
# subcommand from the clap definition, by cli/examples/manpages.rs, plus
# packaging/p11card.toml.5), the p11-kit module file, the card profiles, an
# example configuration and the maintainer scripts (packaging/debian/).
# cargo-deb comes from scripts/setup-debian.sh. Prints the package's path.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
OUTPUT="${1:-$TARGET_DIR/debian/}"

# The module's place in Cargo.toml is p11-kit's module directory for amd64.
multiarch="$(timeout 30 dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)"
if ! grep -qF "\"usr/lib/${multiarch:-?}/pkcs11/p11card-pkcs11.so\"" Cargo.toml; then
    echo "build-deb: the package puts the module in /usr/lib/x86_64-linux-gnu/pkcs11; this machine's multiarch directory is /usr/lib/${multiarch:-(unknown)}" >&2
    exit 1
fi
if ! timeout 30 cargo deb --version >/dev/null 2>&1; then
    echo "build-deb: cargo-deb is missing; scripts/setup-debian.sh installs it" >&2
    exit 1
fi

echo "build-deb: release builds of the module and the p11card command" >&2
timeout 3600 nice -n 15 cargo build --release --locked -p p11card-pkcs11 -p p11card-cli >&2

# The manual pages (the example is built in the debug profile, which
# `cargo test` has built already).
man_dir="$TARGET_DIR/release/man"
rm -rf -- "$man_dir"
timeout 1800 nice -n 15 cargo run --locked -q -p p11card-cli --example manpages -- "$man_dir" >&2
[ -s "$man_dir/p11card.1" ] || { echo "build-deb: no $man_dir/p11card.1" >&2; exit 1; }
timeout 60 gzip -9n -- "$man_dir"/*.1

timeout 600 cargo deb -p p11card --no-build --output "$OUTPUT"
