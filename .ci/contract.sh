#!/usr/bin/env bash
# Contract check: every `leapcraft` invocation listed below runs against `leapcraft-fake`
# through Prism's validating proxy (`prism proxy --errors`) loaded with spec/leapcraft.yaml.
# Prism checks each request the CLI sends and each response the fake serves against the spec;
# with --errors a violation replaces the response with an error. The check passes when every
# invocation ends as listed and Prism's log holds no violation.
#
# Run from anywhere: `bash .ci/contract.sh` (.ci/run runs it). Needs Rust, Node.js 20+ with npm
# and Python 3; installs Prism, pinned, under target/ci-tools/prism.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# 5.14.2 is the last release that runs on Node.js 20 (5.15 needs Node.js 24).
PRISM_CLI_VERSION=5.14.2

# The invocations, one per line: the arguments after `leapcraft` (the base URL and the key are
# added). `@DEVICE` stands for a device the fake serves (one with colons in its id); a line with
# `@GATEWAY` runs once for each topology the fake serves (their timestamps come in different
# shapes); `@OUT` stands for a scratch directory. A line may start with an expectation:
#   =N  the command exits with code N (an error the API answers, checked against the spec too);
#   ~S  the command runs until stopped: it gets Ctrl-C after S seconds and must exit 0 (a
#       daemon's clean stop) or, with =130 in front, 130 (an interrupted command).
# Every subcommand of `leapcraft --help` must appear in at least one line (but `completions` and
# `man`, which send no request).
INVOCATIONS='
devices
devices --limit 5 --page 2
devices --all
devices --all --page-size 7
devices --format json
devices --all --format csv
device @DEVICE
device @DEVICE --format json
device @DEVICE --format csv
telemetry @DEVICE
telemetry @DEVICE --format json
telemetry @DEVICE --averages daily
telemetry @DEVICE --averages weekly --format json
telemetry @DEVICE --averages monthly --format csv
telemetry @DEVICE --averages daily --from 2026-03-01 --to 2026-03-08
telemetry @DEVICE --averages daily --from "2026-03-01 00:00:00" --to 2026-03-08T12:30:00+02:00
telemetry @DEVICE --chart @OUT/week.svg
latest @DEVICE
latest @DEVICE @GATEWAY --format json
latest --all
latest --all --concurrency 3 --format csv
latest --all --max-rps 200
topologies
topologies --format json
topologies --format csv
topology @GATEWAY
topology @GATEWAY --format json
topology @GATEWAY --format csv
notifications
notifications --limit 10 --offset 20
notifications --limit 50 --format json
notifications --all --format csv
notifications --device @DEVICE
notifications --device @DEVICE --limit 5 --offset 1 --format json
notifications --device @DEVICE --all
=130 ~3 notifications --follow --interval 1
=130 ~3 notifications --follow --device @DEVICE --interval 1 --format json
~4 serve --listen 127.0.0.1:0 --interval 1s --devices-every 2s
~3 serve --listen 127.0.0.1:0 --concurrency 2
~3 mqtt --broker mqtt://127.0.0.1:9 --interval 1s
export --averages daily --from 2026-03-01 --to 2026-03-08 --out @OUT/export.csv
export --averages weekly --from 2026-03-01 --to 2026-03-29 --device @DEVICE --concurrency 2 --out @OUT/export.jsonl
things
things --limit 3 --format json
things --all
things --all --format csv
=4 device no-such-device
=4 topology no-such-gateway
=3 --api-key not-the-key devices
'

TOOLS="$PWD/target/ci-tools"
scratch="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT

prism="$TOOLS/prism/node_modules/.bin/prism"
if [ "$("$prism" --version 2>/dev/null | tail -n 1)" != "$PRISM_CLI_VERSION" ]; then
    npm install --prefix "$TOOLS/prism" --no-audit --no-fund --loglevel=error \
        "@stoplight/prism-cli@$PRISM_CLI_VERSION"
fi
echo "prism $("$prism" --version | tail -n 1)"

cargo build --quiet -p leapcraft-fake -p leapcraft-cli
bin="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug"

# Waits until `$1` prints a line matching `$2` into its log `$3` (or exits): at most 60 s.
wait_for() {
    local pid=$1 pattern=$2 log=$3
    for _ in $(seq 600); do
        grep -qE "$pattern" "$log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "contract: not started (no \"$pattern\" in $log):" >&2
    cat "$log" >&2
    return 1
}

# The fake, on a port of its choosing.
"$bin/leapcraft-fake" --port 0 >"$scratch/fake.log" 2>&1 &
pids+=($!)
wait_for $! '^Leapcraft fake API: ' "$scratch/fake.log"
upstream="$(sed -n 's/^Leapcraft fake API: //p' "$scratch/fake.log")"
key="$(sed -n 's/^API key: //p' "$scratch/fake.log")"

# Prism in front of it.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$prism" proxy spec/leapcraft.yaml "$upstream" --errors --host 127.0.0.1 --port "$port" \
    >"$scratch/prism.log" 2>&1 &
pids+=($!)
wait_for $! 'Prism is listening' "$scratch/prism.log"
proxy="http://127.0.0.1:$port"

# The CLI's base URL and key come from the environment, so that a line may give its own key.
export LEAPCRAFT_BASE_URL="$proxy" LEAPCRAFT_API_KEY="$key"
leapcraft() {
    "$bin/leapcraft" "$@"
}

# A device whose id needs care in a path (a MAC address, with colons) and a gateway.
device="$(leapcraft --format json devices --all | python3 -c '
import json, sys
ids = [d["physical_id"] for d in json.load(sys.stdin)]
print(next((i for i in ids if ":" in i), ids[0]))')"
gateways="$(leapcraft --format json topologies | python3 -c '
import json, sys
print(" ".join(t["gateway_id"] for t in json.load(sys.stdin)))')"

subcommands="$("$bin/leapcraft" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && $1 != "help" && $1 != "completions" && $1 != "man" {print $1}')"
for subcommand in $subcommands; do
    if ! grep -qE "^([=~][0-9.]+ )*(--[a-z-]+ [^ ]+ )*$subcommand( |$)" <<<"$INVOCATIONS"; then
        echo "contract: the subcommand \`$subcommand\` has no line in INVOCATIONS" >&2
        exit 1
    fi
done

failures=0
count=0
# Runs one invocation: expected exit code, seconds to run for (empty: until it ends), the line
# with `@GATEWAY` as `$4`.
run() {
    local expect=$1 run_for=$2 line=$3 gateway=$4 word status=0
    local -a words args=()
    eval "words=($line)"
    for word in "${words[@]}"; do
        word="${word//@DEVICE/$device}"
        word="${word//@GATEWAY/$gateway}"
        args+=("${word//@OUT/$scratch}")
    done
    count=$((count + 1))
    if [ -n "$run_for" ]; then
        timeout --preserve-status -s INT "$run_for" "$bin/leapcraft" "${args[@]}" \
            >"$scratch/out" 2>&1 || status=$?
    else
        leapcraft "${args[@]}" >"$scratch/out" 2>&1 || status=$?
    fi
    if [ "$status" -ne "$expect" ]; then
        failures=$((failures + 1))
        echo "FAIL (exit $status, expected $expect): leapcraft ${args[*]}"
        head -c 2000 "$scratch/out"
        echo
    else
        echo "ok: leapcraft ${args[*]}"
    fi
}
while IFS= read -r line; do
    [ -z "$line" ] && continue
    expect=0 run_for=""
    while [[ "$line" == [=~]* ]]; do
        case "$line" in
        =*) expect="${line%% *}" expect="${expect#=}" ;;
        ~*) run_for="${line%% *}" run_for="${run_for#\~}" ;;
        esac
        line="${line#* }"
    done
    if [[ "$line" == *@GATEWAY* ]]; then
        for gateway in $gateways; do
            run "$expect" "$run_for" "$line" "$gateway"
        done
    else
        run "$expect" "$run_for" "$line" ""
    fi
done <<<"$INVOCATIONS"

# Every violation Prism saw, whatever the CLI made of it (a retried or followed call).
violations="$(grep -cE '✖|⚠|VIOLATIONS|UNPROCESSABLE' "$scratch/prism.log" || true)"
requests="$(grep -c 'Request received' "$scratch/prism.log" || true)"
if [ "$violations" -ne 0 ]; then
    echo "contract: Prism reported $violations violation(s):" >&2
    grep -E '✖|⚠|VIOLATIONS|UNPROCESSABLE' "$scratch/prism.log" >&2
    echo "contract: with --errors, Prism names each violation in the body of the error it" \
        "answers (its \"validation\" list), not in its log: replay the request with curl" \
        "through the proxy (\`bash -x .ci/contract.sh\` shows the ports) to read it" >&2
fi
echo "contract: $count invocations, $requests requests through Prism, $failures failed, $violations violation(s)"
[ "$failures" -eq 0 ] && [ "$violations" -eq 0 ]
