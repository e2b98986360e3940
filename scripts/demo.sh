#!/usr/bin/env bash
# `make demo`: the gateway on an SQLite store under var/, two demo partners, one
# referral walked through the API. Ctrl-C stops it. CASEBRIDGE_DEMO_EXIT=1 stops
# after the walk-through (used by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export CASEBRIDGE_DATABASE_URL="${CASEBRIDGE_DATABASE_URL:-sqlite:///$PWD/var/demo.db}"
export CASEBRIDGE_PORT="${CASEBRIDGE_PORT:-8000}"
export CASEBRIDGE_LOG_JSON="${CASEBRIDGE_LOG_JSON:-false}"
BIN=.venv/bin
URL="http://127.0.0.1:$CASEBRIDGE_PORT"

mkdir -p var
$BIN/casebridge db upgrade >/dev/null
# Demo-only keys: never use fixed keys for a real partner.
$BIN/casebridge partners add primero-demo --name "Primero (demo)" --system primero \
  --api-key demo-primero-key-not-for-production >/dev/null 2>&1 || true
$BIN/casebridge partners add progres-demo --name "proGres v4 (demo)" --system progres \
  --api-key demo-progres-key-not-for-production >/dev/null 2>&1 || true

$BIN/casebridge serve >var/demo-gateway.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat var/demo-gateway.log; exit 1; }
  sleep 0.1
done

$BIN/python scripts/demo_walkthrough.py "$URL"
cat <<TXT

CaseBridge is running at $URL
  API docs (try it out): $URL/docs
  OpenAPI:               $URL/openapi.json
  Readiness:             $URL/readyz
  Gateway log:           var/demo-gateway.log
  Demo partner keys:     primero-demo = demo-primero-key-not-for-production
                         progres-demo = demo-progres-key-not-for-production
Press Ctrl-C to stop.
TXT
if [ "${CASEBRIDGE_DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
wait $server
