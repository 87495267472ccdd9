#!/usr/bin/env bash
# `make run`: brokers, the four services, and VIP actions arriving live in this terminal.
# Ctrl-C stops everything this script started (brokers too, unless they were already running).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

stop_brokers=false
if ! scripts/brokers.sh status >/dev/null 2>&1; then
  stop_brokers=true
fi
scripts/brokers.sh start
eval "$(scripts/brokers.sh env)"

logs=.local/logs
mkdir -p "$logs"
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "[run] stopping the services"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if $stop_brokers; then scripts/brokers.sh stop; fi
  echo "[run] stopped; service logs are in $logs/"
}
trap cleanup INT TERM EXIT

start() { # name, then VAR=value settings
  local name="$1"; shift
  env LOG_FORMAT=json "$@" "$name" >"$logs/$name.log" 2>&1 &
  pids+=("$!")
  echo "[run] $name started (pid $!, log $logs/$name.log)"
}

start user-state HTTP_PORT=8080
start enricher HTTP_PORT=8081 USER_STATE_URL=http://127.0.0.1:8080
start rabbit-bridge HTTP_PORT=8082
start generator HTTP_PORT=8083 GENERATOR_RATE="${GENERATOR_RATE:-20}" GENERATOR_CLICKS=0

cat <<INFO
[run] user-state API:   curl -s 'http://127.0.0.1:8080/v1/users?level=PLATINUM&limit=5'
[run] metrics:          curl -s http://127.0.0.1:8081/metrics   (8080..8083, one per service)
[run] RabbitMQ UI:      http://127.0.0.1:15672  (guest / guest)
INFO
vip-watch
