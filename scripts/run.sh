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
  scripts/observability.sh stop || true
  if $stop_brokers; then scripts/brokers.sh stop; fi
  echo "[run] stopped; service logs are in $logs/"
}
trap cleanup INT TERM EXIT

start() { # label, command, then VAR=value settings
  local label="$1" command="$2"; shift 2
  env LOG_FORMAT=json "$@" "$command" >"$logs/$label.log" 2>&1 &
  pids+=("$!")
  echo "[run] $label started (pid $!, log $logs/$label.log)"
}

# VALUE_FORMAT=avro make run: every topic in Avro, registered in the schema registry. A topic
# holds one format, so Avro runs on topics (and groups) of its own, suffixed `.avro`.
export VALUE_FORMAT="${VALUE_FORMAT:-json}"
case "$VALUE_FORMAT" in
  json) x="" ;;
  avro) x=".avro" ;;
  *) echo "[run] VALUE_FORMAT must be json or avro, not $VALUE_FORMAT" >&2; exit 2 ;;
esac
topics=(USERS_TOPIC="user$x" CLICKS_TOPIC="click$x" VIP_ACTIONS_TOPIC="vip-action$x"
  VIP_SESSIONS_TOPIC="vip-session$x" VIP_DAYS_TOPIC="vip-day$x")

# The seed's join, then two windowed queries over the VipActions it writes (queries/). All
# exactly once: a VipAction written twice by an at-least-once join would count twice in a session.
sessions=("${topics[@]}" ENRICHER_DELIVERY=exactly_once CLICKS_STREAM=VipActions
  CLICKS_TOPIC="vip-action$x")
start user-state user-state HTTP_PORT=8080 "${topics[@]}"
start enricher enricher HTTP_PORT=8081 USER_STATE_URL=http://127.0.0.1:8080 "${topics[@]}" \
  ENRICHER_QUERY_FILE=queries/vip-actions.sql ENRICHER_DELIVERY=exactly_once \
  CONSUMER_GROUP="enricher$x"
start vip-sessions enricher HTTP_PORT=8084 "${sessions[@]}" CONSUMER_GROUP="vip-sessions$x" \
  ENRICHER_QUERY_FILE=queries/vip-sessions.sql OUTPUT_STREAM=VipSessions \
  OUTPUT_TOPIC="vip-session$x"
start vip-days enricher HTTP_PORT=8085 "${sessions[@]}" CONSUMER_GROUP="vip-days$x" \
  ENRICHER_QUERY_FILE=queries/vip-days.sql OUTPUT_STREAM=VipDays OUTPUT_TOPIC="vip-day$x"
start rabbit-bridge rabbit-bridge HTTP_PORT=8082 "${topics[@]}" CONSUMER_GROUP="rabbit-bridge$x"
# Visits on a clock 60 times the wall clock: a 30-minute session gap passes in 30 s, a day in 24
# minutes (GENERATOR_TIME_SCALE=0 for the plain paced stream at GENERATOR_RATE).
start generator generator HTTP_PORT=8083 GENERATOR_TIME_SCALE="${GENERATOR_TIME_SCALE:-60}" \
  GENERATOR_RATE="${GENERATOR_RATE:-20}" GENERATOR_CLICKS=0 "${topics[@]}"

# Prometheus scraping the six processes above (Debian's package, installed on first use).
scripts/observability.sh start

cat <<INFO
[run] live page:        http://127.0.0.1:8080/   (VIPs on the site now, for the business)
[run] Prometheus:       http://127.0.0.1:9090/   (every service scraped every 5 s)
[run] VIPs on the site: curl -s http://127.0.0.1:8080/v1/vips/active
[run] user-state API:   curl -s 'http://127.0.0.1:8080/v1/users?level=PLATINUM&limit=5'
[run] metrics:          curl -s http://127.0.0.1:8081/metrics   (8080..8085, one per service)
[run] VIP sessions:     topic vip-session (a line below per closed session), per day: vip-day
[run] RabbitMQ UI:      http://127.0.0.1:15672  (guest / guest)
[run] value format:     $VALUE_FORMAT on Kafka (topics user$x, click$x, ...), JSON on RabbitMQ
INFO
if [[ "$VALUE_FORMAT" == avro ]]; then
  echo "[run] schemas:          curl -s $SCHEMA_REGISTRY_URL/subjects"
fi
VIP_SESSIONS_TOPIC="vip-session$x" vip-watch
