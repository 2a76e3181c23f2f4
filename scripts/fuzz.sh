#!/usr/bin/env bash
# Fuzzes the platform delivery parsers (shared/platforms/fuzz) with cargo-fuzz, one target after
# another, and prints how many inputs each ran.
#
#   scripts/fuzz.sh                     # every target, FUZZ_RUNS inputs each (or: make fuzz)
#   scripts/fuzz.sh shopify youzan      # only these
#   FUZZ_RUNS=100000 scripts/fuzz.sh    # a quick pass (default 10000000 per target)
#
# cargo-fuzz is installed pinned into the project-local .tools/ on first use: cargo-fuzz builds
# through nightly-only flags, which RUSTC_BOOTSTRAP=1 lets the stable toolchain accept, and with
# `--sanitizer none` no sanitizer runtime (a nightly component) is linked. Builds go to the fuzz
# project's own target/ and run niced, so the everyday build in target/ is neither invalidated nor
# starved. A target that finds a crash stops, leaves the input in
# shared/platforms/fuzz/artifacts/<target>/ and makes this script exit non-zero once the other
# targets have run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TOOLS="${TOOLS:-.tools}"
FUZZ_DIR=shared/platforms/fuzz
RUNS="${FUZZ_RUNS:-10000000}"
TARGETS=(shopify doudian youzan exact)

# Pinned version. Measured install time on this project's 2-core machine: ~2 min 10 s (a
# release build of it); already at the pin: ~0.01 s.
CARGO_FUZZ_VERSION=0.13.2

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=("${TARGETS[@]}")
fi
for target in "${targets[@]}"; do
    if [ ! -f "$FUZZ_DIR/fuzz_targets/$target.rs" ]; then
        echo "fuzz: unknown target '$target' (known: ${TARGETS[*]})" >&2
        exit 2
    fi
done

# The binary reports its own version, so it is the stamp: a bumped pin reinstalls.
cargo_fuzz="$TOOLS/bin/cargo-fuzz"
if [ "$("$cargo_fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
    start=$(date +%s)
    cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$TOOLS"
    echo "fuzz: cargo-fuzz installed in $(( $(date +%s) - start ))s"
fi

export RUSTC_BOOTSTRAP=1
log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
failed=()
summary=()
for target in "${targets[@]}"; do
    echo "fuzz: $target, $RUNS runs"
    log="$log_dir/$target.log"
    start=$(date +%s)
    status=0
    # libFuzzer reports on stderr; it is shown as it comes and kept for the summary.
    nice -n 10 "$cargo_fuzz" run --fuzz-dir "$FUZZ_DIR" --sanitizer none "$target" -- \
        -runs="$RUNS" 2>&1 | tee "$log" || status=$?
    took=$(( $(date +%s) - start ))
    done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        summary+=("$target: FAILED (exit $status) after ${took}s; see $FUZZ_DIR/artifacts/$target/")
    elif [ -z "$done_line" ]; then
        failed+=("$target")
        summary+=("$target: FAILED: libFuzzer printed no 'Done N runs' line")
    else
        summary+=("$target: ${done_line#Done } (${took}s with the build)")
    fi
done

echo
echo "fuzz: summary"
for line in "${summary[@]}"; do
    echo "  $line"
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
