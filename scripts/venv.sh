#!/usr/bin/env bash
# Creates the project-local Python virtualenv at .venv/ and installs pinned tools into it.
#
#   scripts/venv.sh moto            # moto server (DynamoDB + SQS emulator) for tests / `make run`
#   scripts/venv.sh cfn-lint        # CloudFormation / SAM linter
#   scripts/venv.sh cargo-lambda    # cargo-lambda (brings zig) for `make zips`
#   scripts/venv.sh moto cfn-lint   # several at once; no argument = moto + cfn-lint
#
# Idempotent: each tool writes a stamp file .venv/.stamp-<tool> holding its pinned requirement
# spec; a tool whose stamp matches is skipped without touching the network, so a second run takes
# well under a second. Bumping a pin below changes the spec, which reinstalls that tool.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

# Pinned versions. Measured install times on this project's 2-core machine (PyPI, warm pip cache):
#   moto ~30 s (it pulls cfn-lint too, pinned here so the cfn-lint step then takes ~0 s);
#   cargo-lambda + ziglang ~5-8 s; any tool already at its pin: ~0.01 s.
MOTO_SPEC='moto[dynamodb,sqs,server]==5.2.5 flask==3.1.3 flask-cors==6.0.5 cfn-lint==1.58.0'
CFN_LINT_SPEC='cfn-lint==1.58.0'
CARGO_LAMBDA_SPEC='cargo-lambda==1.9.2 ziglang==0.17.1'

spec_for() {
    case "$1" in
        moto) echo "$MOTO_SPEC" ;;
        cfn-lint) echo "$CFN_LINT_SPEC" ;;
        cargo-lambda) echo "$CARGO_LAMBDA_SPEC" ;;
        *) echo "scripts/venv.sh: unknown tool '$1' (known: moto cfn-lint cargo-lambda)" >&2; return 1 ;;
    esac
}

tools=("$@")
if [ "${#tools[@]}" -eq 0 ]; then
    tools=(moto cfn-lint)
fi

# Validate all names before doing anything.
for tool in "${tools[@]}"; do
    spec_for "$tool" >/dev/null
done

# (Re)create the venv when it is missing or its interpreter no longer runs (e.g. the base Python
# it was made from went away); stamps go with it, so everything requested is reinstalled.
if ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$VENV"
    echo "venv: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

for tool in "${tools[@]}"; do
    spec="$(spec_for "$tool")"
    stamp="$VENV/.stamp-$tool"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$spec" ]; then
        continue
    fi
    echo "venv: installing $tool: $spec"
    start=$(date +%s)
    # shellcheck disable=SC2086 # the spec is a word list on purpose
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $spec
    echo "$spec" > "$stamp"
    echo "venv: $tool installed in $(( $(date +%s) - start ))s"
done
