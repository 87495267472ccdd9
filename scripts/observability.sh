#!/usr/bin/env bash
# What looks at the running pipeline: Debian's Chromium and chromedriver (the live page's browser
# test drives them; nothing can download a browser here) and Debian's Prometheus (scraping the
# services, for `make run` and its integration test). Data and logs live under .local/prometheus.
#
#   scripts/observability.sh install   apt-get the three packages (first run only; needs root)
#   scripts/observability.sh start     start Prometheus scraping the `make run` ports, wait until ready
#   scripts/observability.sh stop      stop the Prometheus this checkout started
#   scripts/observability.sh env       print CHROMIUM_BINARY, CHROMEDRIVER, PROMETHEUS_BINARY
#
# PROMETHEUS_PORT (9090) and PROMETHEUS_TARGETS (the services' host:port list, comma-separated;
# default the ports `make run` gives them) configure `start`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="$ROOT/.local/prometheus"
PORT="${PROMETHEUS_PORT:-9090}"
TARGETS="${PROMETHEUS_TARGETS:-127.0.0.1:8080,127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083,127.0.0.1:8084,127.0.0.1:8085}"
PACKAGES=(chromium chromium-driver prometheus)

log() { echo "[observability] $*"; }
die() { echo "[observability] ERROR: $*" >&2; exit 1; }

chromium_binary() { command -v chromium || command -v chromium-browser || true; }
chromedriver_binary() { command -v chromedriver || { [[ -x /usr/bin/chromedriver ]] && echo /usr/bin/chromedriver; } || true; }
prometheus_binary() { command -v prometheus || { [[ -x /usr/bin/prometheus ]] && echo /usr/bin/prometheus; } || true; }

install() {
  local missing=()
  [[ -n "$(chromium_binary)" ]] || missing+=(chromium)
  [[ -n "$(chromedriver_binary)" ]] || missing+=(chromium-driver)
  [[ -n "$(prometheus_binary)" ]] || missing+=(prometheus)
  ((${#missing[@]})) || { log "chromium, chromedriver and prometheus present"; return 0; }
  [[ "$(id -u)" == 0 ]] || die "${missing[*]} missing and installing needs root (apt-get install ${missing[*]})"
  log "installing ${missing[*]} from Debian (first run only)"
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$ROOT/.local/logs"
  local alog="$ROOT/.local/logs/observability-apt.log"
  # --no-install-recommends: Prometheus's recommends pull in exporters we never run.
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$alog" 2>&1 || {
    apt-get update -q >>"$alog" 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$alog" 2>&1
  } || { tail -n 30 "$alog" >&2; die "apt-get install ${missing[*]} failed (log $alog)"; }
  # Debian starts the packaged Prometheus as a system service on 9090; ours runs on its own.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  pkill -f '^/usr/bin/prometheus( |$)' 2>/dev/null || true
}

config() {
  mkdir -p "$HOME_DIR/data"
  local list="" t
  IFS=',' read -ra targets <<<"$TARGETS"
  for t in "${targets[@]}"; do list+="'$t', "; done
  cat >"$HOME_DIR/prometheus.yml" <<YAML
# Written by scripts/observability.sh: the services of \`make run\`, every 5 s.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  - job_name: clickstream
    static_configs:
      - targets: [${list%, }]
YAML
}

ready() { curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null 2>&1; }

start() {
  local binary; binary="$(prometheus_binary)"
  [[ -n "$binary" ]] || install
  binary="$(prometheus_binary)"
  if ready; then log "Prometheus already answers on $PORT"; return 0; fi
  config
  log "starting Prometheus on 127.0.0.1:$PORT (targets $TARGETS)"
  nohup "$binary" --config.file="$HOME_DIR/prometheus.yml" --storage.tsdb.path="$HOME_DIR/data" \
    --web.listen-address="127.0.0.1:$PORT" --storage.tsdb.retention.time=1d \
    >"$HOME_DIR/prometheus.log" 2>&1 &
  echo $! >"$HOME_DIR/pid"
  for _ in $(seq 1 120); do ready && { log "Prometheus ready: http://127.0.0.1:$PORT"; return 0; }; sleep 0.5; done
  tail -n 20 "$HOME_DIR/prometheus.log" >&2
  die "Prometheus did not become ready"
}

stop() {
  [[ -f "$HOME_DIR/pid" ]] || return 0
  local pid; pid="$(cat "$HOME_DIR/pid")"
  kill "$pid" 2>/dev/null && for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  rm -f "$HOME_DIR/pid"
  log "Prometheus stopped"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env)
    echo "export CHROMIUM_BINARY=$(chromium_binary)"
    echo "export CHROMEDRIVER=$(chromedriver_binary)"
    echo "export PROMETHEUS_BINARY=$(prometheus_binary)"
    ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
