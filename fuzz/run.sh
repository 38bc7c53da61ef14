#!/usr/bin/env bash
# Runs every fuzz target for SECONDS_PER_TARGET seconds (default 5), one
# after the other, and fails if any of them finds a crash, a hang or a leak.
#
#   fuzz/run.sh          # a few seconds each (CI)
#   fuzz/run.sh 600      # the long run: ten minutes each
#   fuzz/run.sh 60 channel ber_tlv   # only these targets
#
# Needs the nightly toolchain; installs cargo-fuzz if it is missing. The
# corpus grows in fuzz/corpus/<target>/ (not committed), starting from the
# committed seeds in fuzz/seeds/<target>/. A crash is saved in
# fuzz/artifacts/<target>/; fuzz/README.md says how to reproduce it.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-5}
shift || true

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "== installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# As the main tree: the committed lock file, or fail.
if ! cargo +nightly metadata --locked --format-version 1 >/dev/null; then
    echo "fuzz/Cargo.lock is stale: run 'cargo +nightly fuzz build' and commit it" >&2
    exit 1
fi

echo "== building the fuzz targets (nightly)"
cargo +nightly fuzz build

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Scratch files of the targets (cache_file writes its entries here).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch

failed=()
printf '\n%-32s %12s %10s %s\n' target executions exec/s result
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target"
    # Inputs that once found a bug (fuzz/regressions/<target>/) run first.
    corpora=("corpus/$target" "seeds/$target")
    if [ -d "regressions/$target" ]; then
        corpora+=("regressions/$target")
    fi
    log="$scratch/$target.log"
    status=ok
    # -timeout: one input may take at most 10 s; -rss_limit_mb: 2 GiB;
    # -max_len: card answers are short, certificates a few KiB.
    if ! cargo +nightly fuzz run "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 >"$log" 2>&1; then
        status=FAILED
        failed+=("$target")
    fi
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    printf '%-32s %12s %10s %s\n' "$target" "${executions:-?}" "${per_second:-?}" "$status"
    if [ "$status" != ok ]; then
        echo "---- $target: what failed, and the end of its output"
        grep -m 1 -A 1 'panicked at' "$log" || true
        tail -n 40 "$log"
        echo "----"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crashes"
