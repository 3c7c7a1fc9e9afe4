#!/usr/bin/env bash
# The demo: starts the phoenix sandbox (a local AWS on a loopback address),
# rolls a new AMI onto an Auto Scaling group behind a load balancer, shows
# the result and what is left, and stops the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-$PWD/bin}
SCALE=${DEMO_TIME_SCALE:-0.02}
STATE=$(mktemp -d -t phoenix-demo-XXXXXX)
LOG="$STATE/sandbox.log"
SANDBOX_PID=""

stop_sandbox() {
  if [ -n "$SANDBOX_PID" ] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
    kill -INT "$SANDBOX_PID"
    wait "$SANDBOX_PID" 2>/dev/null || true
  fi
  rm -rf "$STATE"
}
trap stop_sandbox EXIT

echo "==> Starting the sandbox (runtime sim, time scale $SCALE: AWS durations $(awk "BEGIN{print 1/$SCALE}")x faster)"
"$BIN/phoenix" sandbox --listen 127.0.0.1:0 --runtime sim --time-scale "$SCALE" --state-dir "$STATE/sandbox" >"$LOG" 2>&1 &
SANDBOX_PID=$!
for _ in $(seq 100); do
  URL=$(sed -n 's/.*serving \(http:[^ ]*\).*/\1/p' "$LOG" | head -1)
  [ -n "$URL" ] && break
  kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done
[ -n "${URL:-}" ] || { echo "the sandbox did not start:"; cat "$LOG"; exit 1; }
echo "    serving $URL (hooks: $URL/_sandbox/inventory)"

AWS_ENDPOINT_URL="$URL" ./example/sandbox-rollout.sh

echo "==> AWS calls made, by service and action:"
curl -fsS "$URL/_sandbox/calls" | tr -d '\n ' | sed 's/},/},\n/g; s/^/    /'; echo
LEFT=$(curl -fsS "$URL/_sandbox/inventory" | grep -c '"id"' || true)
echo "==> Resources left in the sandbox: $LEFT"
[ "$LEFT" = 0 ]
echo "==> Demo finished; stopping the sandbox"
