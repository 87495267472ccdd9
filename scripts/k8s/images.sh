#!/usr/bin/env bash
# Images for the local cluster of scripts/local-k8s.sh, whose containerd cannot pull: built with
# podman here and copied into containerd under the names the manifests ask for.
#
#   scripts/k8s/images.sh stand-ins        build (once) and load what the cluster itself and the
#                                          brokers' manifests need: the pause image, CoreDNS, and
#                                          stand-ins for apache/kafka, rabbitmq and apicurio made
#                                          of the same jars and packages the brokers run here
#   scripts/k8s/images.sh load-built NAME...   the images skaffold built for these artifacts
#                                          (its `NAME:<image id>` tags) that containerd lacks: the
#                                          local-k8s profile's pre-deploy hook
#
# The stand-ins keep the official images' contracts that deploy/k8s relies on (users, paths,
# variables); they are not the official images, and a cluster that can pull uses those.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="$PATH:/usr/sbin:/sbin"
K8S="$ROOT/.local/k8s"
WORK="$K8S/images"
CONTAINERD_SOCK="${K8S_CONTAINERD_SOCK:-/run/containerd-k8s/containerd.sock}"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"

PAUSE_IMAGE=localhost/k8s-local/pause:3.10.1
COREDNS_IMAGE=localhost/k8s-local/coredns:1.13.2
KAFKA_COMPAT_IMAGE=localhost/k8s-local/apache-kafka:4.1.1
# podman name = the name the manifests (or containerd's sandbox setting) use
STAND_INS=(
  "$PAUSE_IMAGE=registry.k8s.io/pause:3.10.1"
  "$COREDNS_IMAGE=$COREDNS_IMAGE"
  "$KAFKA_COMPAT_IMAGE=docker.io/apache/kafka:4.1.1"
  "localhost/clickstream-rabbitmq:3.10=docker.io/library/rabbitmq:3.13-management"
  "localhost/clickstream-schema-registry:3.3.3=quay.io/apicurio/apicurio-registry:3.3.3"
)

log() { echo "[k8s-images] $*" >&2; }
die() { echo "[k8s-images] ERROR: $*" >&2; exit 1; }

ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

build() { # image context
  log "building $1"
  podman build --layers -q -t "$1" "$2" >/dev/null || die "building $1 failed"
}

build_pause() {
  local ctx="$WORK/pause" src
  src="$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
  [[ -f "$src" ]] || GOFLAGS=-mod=mod go mod download "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
  mkdir -p "$ctx"
  cp "$ROOT/deploy/images/pause/Dockerfile" "$ctx/"
  gcc -Os -static -DVERSION="3.10.1-local" -o "$ctx/pause" "$src" || die "compiling pause.c failed"
  build "$PAUSE_IMAGE" "$ctx"
}

build_coredns() {
  local ctx="$WORK/coredns"
  [[ -x "$K8S/bin/coredns" ]] || die "no $K8S/bin/coredns: run scripts/local-k8s.sh install"
  mkdir -p "$ctx"
  cp "$ROOT/deploy/images/coredns/Dockerfile" "$K8S/bin/coredns" "$ctx/"
  build "$COREDNS_IMAGE" "$ctx"
}

cmd_build() {
  # podman's Docker API too: skaffold builds the services' images through it
  "$ROOT/scripts/container-engine.sh" start || die "the container engine did not start"
  # the broker images the stand-ins start from (and retag) come from the container engine script
  local missing=0 image
  for image in localhost/clickstream-kafka:4.1.1 localhost/clickstream-rabbitmq:3.10 \
    localhost/clickstream-schema-registry:3.3.3; do
    podman image exists "$image" || missing=1
  done
  ((missing)) && { "$ROOT/scripts/container-engine.sh" all || die "building the broker images failed"; }
  podman image exists "$PAUSE_IMAGE" || build_pause
  podman image exists "$COREDNS_IMAGE" || build_coredns
  podman image exists "$KAFKA_COMPAT_IMAGE" || build "$KAFKA_COMPAT_IMAGE" "$ROOT/deploy/images/apache-kafka-compat"
}

in_containerd() { ctr_ images ls -q "name==$1" 2>/dev/null | grep -q .; }

import() { # podman image...: one archive, so layers the images share are written once
  local tar="$WORK/import.tar" t0=$SECONDS
  mkdir -p "$WORK"
  podman save -m --format docker-archive -o "$tar" "$@" >/dev/null || die "podman save $* failed"
  ctr_ images import --no-unpack=false "$tar" >/dev/null || die "importing $* into containerd failed"
  rm -f "$tar"
  log "loaded $* ($((SECONDS - t0))s)"
}

cmd_stand_ins() {
  local pair src dst todo=()
  cmd_build
  for pair in "${STAND_INS[@]}"; do
    dst="${pair#*=}"
    in_containerd "$dst" || todo+=("${pair%%=*}")
  done
  ((${#todo[@]})) || { log "stand-in images already in containerd"; return 0; }
  import "${todo[@]}"
  for pair in "${STAND_INS[@]}"; do
    src="${pair%%=*}"; dst="${pair#*=}"
    [[ "$src" == "$dst" ]] && continue
    in_containerd "$dst" || ctr_ images tag --force "$src" "$dst" >/dev/null
  done
}

# podman's Docker API names `docker build -t enricher:<id>` docker.io/library/enricher:<id>, and
# the kubelet normalises the manifests' `enricher:<id>` to that same name.
cmd_load_built() {
  local name ref todo=()
  for name in "$@"; do
    while read -r ref; do
      [[ "$ref" =~ :[0-9a-f]{64}$ ]] || continue
      in_containerd "$ref" || todo+=("$ref")
    done < <(podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=docker.io/library/$name")
  done
  ((${#todo[@]})) || { log "built images already in containerd"; return 0; }
  import "${todo[@]}"
}

case "${1:-}" in
  build) cmd_build ;;
  stand-ins) cmd_stand_ins ;;
  load-built) shift; cmd_load_built "$@" ;;
  *) echo "usage: $0 build|stand-ins|load-built NAME..." >&2; exit 2 ;;
esac
