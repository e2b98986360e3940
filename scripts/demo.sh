#!/usr/bin/env bash
# `make demo`: CaseBridge with two sandbox partner systems (proGres v4 and Primero), the
# gateway API, the outbox relay, a delivery worker, the poller and the deadline scheduler, on
# an SQLite store under var/. A referral is walked from a caseworker app to proGres and back. Ctrl-C stops all.
# CASEBRIDGE_DEMO_EXIT=1 stops after the walk-through (used by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export CASEBRIDGE_DATABASE_URL="${CASEBRIDGE_DATABASE_URL:-sqlite:///$PWD/var/demo.db}"
export CASEBRIDGE_PORT="${CASEBRIDGE_PORT:-8000}"
export CASEBRIDGE_LOG_JSON="${CASEBRIDGE_LOG_JSON:-false}"
export CASEBRIDGE_POLL_INTERVAL="${CASEBRIDGE_POLL_INTERVAL:-2}"
export CASEBRIDGE_RETRY_DELAYS="${CASEBRIDGE_RETRY_DELAYS:-[2, 5, 15]}"
export CASEBRIDGE_SCHEDULER_INTERVAL="${CASEBRIDGE_SCHEDULER_INTERVAL:-5}"
export CASEBRIDGE_SCHEDULER_PORT="${CASEBRIDGE_SCHEDULER_PORT:-$((CASEBRIDGE_PORT + 1))}"
export CASEBRIDGE_OPERATOR_KEY="${CASEBRIDGE_OPERATOR_KEY:-demo-operator-key-not-for-production}"
# Personal data is stored encrypted: the demo makes itself a key (kept under var/, never in git).
export CASEBRIDGE_KEY_FILE="${CASEBRIDGE_KEY_FILE:-$PWD/var/demo.keys}"
PROGRES_PORT="${CASEBRIDGE_DEMO_PROGRES_PORT:-9101}"
PRIMERO_PORT="${CASEBRIDGE_DEMO_PRIMERO_PORT:-9102}"
BIN=.venv/bin
URL="http://127.0.0.1:$CASEBRIDGE_PORT"

mkdir -p var
rm -f var/demo.db var/demo.db-* var/demo-*.db var/demo-*.db-*  # a fresh demo each time
[ -s "$CASEBRIDGE_KEY_FILE" ] || $BIN/casebridge keys new --id demo >/dev/null
$BIN/casebridge db upgrade >/dev/null
$BIN/casebridge agreements check >/dev/null
$BIN/casebridge directory check >/dev/null
# Demo-only keys: never use fixed keys for a real partner.
$BIN/casebridge partners add caseworker-app --name "Caseworker app (demo)" --system other \
  --api-key demo-caseworker-key-not-for-production >/dev/null
$BIN/casebridge partners add progres-eth --name "proGres v4 Ethiopia (sandbox)" \
  --country ETH --system progres --api-key demo-progres-key-not-for-production >/dev/null
$BIN/casebridge partners add primero-ssd --name "Primero South Sudan (sandbox)" \
  --country SSD --system primero --api-key demo-primero-key-not-for-production >/dev/null
$BIN/casebridge partners connect progres-eth --base-url "http://127.0.0.1:$PROGRES_PORT" \
  --credential client_id=casebridge --credential client_secret=sandbox-secret >/dev/null
$BIN/casebridge partners connect primero-ssd --base-url "http://127.0.0.1:$PRIMERO_PORT" \
  --credential user=casebridge --credential password=sandbox-passw0rd >/dev/null
# Demo-only console accounts, one a role (the console runs on http://127.0.0.1 here).
export CASEBRIDGE_CONSOLE_SECURE_COOKIE=false
for role in operator im_officer auditor; do
  echo "demo-$role-password" | $BIN/casebridge users add "$role" --role "$role" \
    --password-stdin >/dev/null
done

pids=()
start() {  # name, command…
  local name=$1; shift
  "$@" >"var/demo-$name.log" 2>&1 &
  pids+=($!)
}
stop_all() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop_all EXIT
start progres $BIN/casebridge sandbox progres --port "$PROGRES_PORT" --database var/demo-progres.db
start primero $BIN/casebridge sandbox primero --port "$PRIMERO_PORT" --database var/demo-primero.db
start gateway $BIN/casebridge serve
start relay $BIN/casebridge relay
start worker $BIN/casebridge worker
start poller $BIN/casebridge poll
start scheduler $BIN/casebridge scheduler

for port in "$CASEBRIDGE_PORT" "$PROGRES_PORT" "$PRIMERO_PORT"; do
  for _ in $(seq 1 150); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break  # any HTTP answer will do
    sleep 0.1
  done
done

$BIN/python scripts/demo_walkthrough.py "$URL" "http://127.0.0.1:$PROGRES_PORT"
echo
echo "Audit trail (every create, read, delivery and status change, hash-chained):"
$BIN/casebridge audit verify | sed 's/^/  /'
cat <<TXT

CaseBridge is running:
  Gateway API docs:   $URL/docs   (readiness: $URL/readyz)
  Console:            $URL/console   (users operator, im_officer, auditor;
                      password demo-<user>-password; referral pathways at /console/pathways)
  Directory search:   $URL/v1/directory/services?service_type=probation_supervision&postcode=CF10%201AA
                      (with the caseworker-app key below; README "Finding a service")
  proGres sandbox:    http://127.0.0.1:$PROGRES_PORT/api/data/v9.2/
  Primero sandbox:    http://127.0.0.1:$PRIMERO_PORT/api/v2/
  Deadline scheduler: http://127.0.0.1:$CASEBRIDGE_SCHEDULER_PORT/healthz   (and /metrics);
                      overdue alerts: $URL/v1/alerts (as a partner)
  Logs:               var/demo-{gateway,relay,worker,poller,scheduler,progres,primero}.log
  Demo keys:          caseworker-app = demo-caseworker-key-not-for-production
                      operator API   = $CASEBRIDGE_OPERATOR_KEY
  Dead letters:       .venv/bin/casebridge dead-letters   (CASEBRIDGE_DATABASE_URL as above)
Press Ctrl-C to stop.
TXT
if [ "${CASEBRIDGE_DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
wait
