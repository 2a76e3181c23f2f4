#!/usr/bin/env bash
# Runs a command against a throwaway moto server (DynamoDB + SQS emulator):
#
#   scripts/with-moto.sh cargo test --workspace --all-targets
#
# Starts .venv/bin/moto_server on 127.0.0.1 on a free port, waits until it answers, exports
# MOTO_ENDPOINT=http://127.0.0.1:PORT plus dummy AWS credentials and region, runs the command,
# and stops the server (by its PID) when the command ends, fails or is interrupted.
# The exit code is the command's. Needs `scripts/venv.sh moto` first (the Makefile does that).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: scripts/with-moto.sh CMD [ARGS...]" >&2
    exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
MOTO="$VENV/bin/moto_server"
PY="$VENV/bin/python"
if [ ! -x "$MOTO" ]; then
    echo "with-moto: $MOTO not found; run scripts/venv.sh moto first" >&2
    exit 2
fi

PORT="${MOTO_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')}"
LOG="${MOTO_LOG:-$(mktemp "${TMPDIR:-/tmp}/moto-server.XXXXXX")}"

MOTO_PID=""

# shellcheck disable=SC2317 # trap handlers: called indirectly
stop_moto() {
    [ -n "$MOTO_PID" ] || return 0
    if kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null || true
        # Give it a moment to exit, then make sure.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$MOTO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$MOTO_PID" 2>/dev/null || true
    fi
    wait "$MOTO_PID" 2>/dev/null || true
}
# shellcheck disable=SC2317 # trap handler: called indirectly
on_exit() {
    local status=$?
    stop_moto
    # Keep the server's log only when something failed.
    if [ "$status" -eq 0 ] && [ -z "${MOTO_LOG:-}" ]; then
        rm -f "$LOG"
    elif [ "$status" -ne 0 ]; then
        echo "with-moto: exit $status; moto_server log kept at $LOG" >&2
    fi
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Traps first, then the server, so no interruption can leave it running.
"$MOTO" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
MOTO_PID=$!

export MOTO_ENDPOINT="http://127.0.0.1:$PORT"

# Wait (up to ~15 s) until the server answers HTTP.
ready=0
for _ in $(seq 1 150); do
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
        echo "with-moto: moto_server exited early; its log ($LOG):" >&2
        cat "$LOG" >&2
        exit 1
    fi
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/moto-api/data.json", timeout=1)' "$MOTO_ENDPOINT" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
if [ "$ready" -ne 1 ]; then
    echo "with-moto: moto_server did not answer on $MOTO_ENDPOINT; its log ($LOG):" >&2
    cat "$LOG" >&2
    exit 1
fi
echo "with-moto: moto_server (pid $MOTO_PID) on $MOTO_ENDPOINT, log $LOG" >&2

export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export MOTO_PID

# Not `exec`: the EXIT trap must run after the command to stop the server.
set +e
"$@"
status=$?
set -e
exit "$status"
