#!/usr/bin/env bash
# Builds the five Lambda functions as deployable zips with cargo-lambda (release, arm64 by
# default, matching infra/template.yaml's Architectures), then prints each zip's size.
#
#   scripts/venv.sh cargo-lambda && scripts/build-zips.sh      # or: make zips
#   ARCH=x86_64 scripts/build-zips.sh                          # x86_64 build (template says arm64)
#
# Output: target/lambda/<binary>/bootstrap.zip (cargo-lambda's default layout, the same place
# `sam build` looks for <binary>/bootstrap). Compilation goes to target/lambda-build so that the
# cross-compiled release artifacts never invalidate or evict the everyday debug build in target/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
ARCH="${ARCH:-arm64}"
BINARIES=(order-intake tier-evaluation price-lookup stock-allocation admin-api)
TARGET_DIR="${LAMBDA_TARGET_DIR:-$ROOT/target/lambda-build}"
LAMBDA_DIR="${LAMBDA_DIR:-$ROOT/target/lambda}"

if [ ! -x "$VENV/bin/cargo-lambda" ]; then
    echo "build-zips: $VENV/bin/cargo-lambda not found; run scripts/venv.sh cargo-lambda first" >&2
    exit 2
fi
# cargo finds the `lambda` subcommand (cargo-lambda) on PATH, and cargo-lambda finds zig through
# the venv's python (the ziglang wheel).
export PATH="$VENV/bin:$PATH"

case "$ARCH" in
    arm64 | aarch64) triple=aarch64-unknown-linux-gnu; arch_flag=--arm64 ;;
    x86_64 | amd64) triple=x86_64-unknown-linux-gnu; arch_flag=--x86-64 ;;
    *) echo "build-zips: ARCH must be arm64 or x86_64, not '$ARCH'" >&2; exit 2 ;;
esac

# The Rust standard library for the target must be installed; zig only provides the C toolchain
# and linker. Try rustup once, and say clearly what is missing if that is not possible (e.g. on a
# machine without access to the Rust toolchain server).
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$triple"; then
        echo "build-zips: installing Rust target $triple with rustup"
        if ! rustup target add "$triple"; then
            echo "build-zips: Rust target $triple is not installed and rustup could not add it." >&2
            echo "  Install it where the toolchain server is reachable, or build for the host with" >&2
            echo "  ARCH=x86_64 (then set Architectures: [x86_64] in infra/template.yaml to deploy it)." >&2
            exit 1
        fi
    fi
fi

bin_args=()
for bin in "${BINARIES[@]}"; do
    bin_args+=(--bin "$bin")
done

echo "build-zips: cargo lambda build --release $arch_flag (${BINARIES[*]})"
start=$(date +%s)
# The target dir goes through CARGO_TARGET_DIR: cargo-lambda 1.9 also hands --target-dir to
# `cargo metadata`, which rejects it.
CARGO_TARGET_DIR="$TARGET_DIR" cargo lambda build \
    --release \
    "$arch_flag" \
    --output-format zip \
    --lambda-dir "$LAMBDA_DIR" \
    "${bin_args[@]}"
echo "build-zips: built in $(( $(date +%s) - start ))s"

printf '%-18s %12s  %s\n' binary bytes zip
status=0
for bin in "${BINARIES[@]}"; do
    zip="$LAMBDA_DIR/$bin/bootstrap.zip"
    if [ -f "$zip" ]; then
        printf '%-18s %12s  %s\n' "$bin" "$(stat -c %s "$zip")" "${zip#"$ROOT"/}"
    else
        printf '%-18s %12s  %s\n' "$bin" missing "${zip#"$ROOT"/}"
        status=1
    fi
done
exit "$status"
