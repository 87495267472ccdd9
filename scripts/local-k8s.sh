#!/usr/bin/env bash
# A one-node Kubernetes cluster on this machine, as host processes (recipe: ../shared/k8s-local.md):
# Kubernetes, etcd and CoreDNS built from the Go module proxy, Debian's containerd + runc.
#
#   scripts/local-k8s.sh install   apt containerd and ipset; build kube-apiserver,
#                                  kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#                                  kubectl, etcd, coredns and kube-router (NetworkPolicy) into
#                                  .local/k8s/bin (first run only: ~12 min; a stamp per component
#                                  skips it afterwards); the Go build cache is thrown away after
#   scripts/local-k8s.sh up        PKI, configs, then etcd, apiserver, controller-manager,
#                                  scheduler, containerd, kubelet, kube-proxy; waits for the node
#                                  to be Ready; loads the images the cluster and the brokers need
#                                  into containerd (scripts/k8s/images.sh), applies CoreDNS and
#                                  the brokers' volumes (deploy/k8s-local); prints the exports
#   scripts/local-k8s.sh env       the exports for kubectl and skaffold: PATH (this kubectl
#                                  first), KUBECONFIG, and the container engine's (DOCKER_HOST)
#   scripts/local-k8s.sh down      stop all of it and undo its host changes (iptables chains, cni0,
#                                  mounts, state directories)
#   scripts/local-k8s.sh volumes   the brokers' volumes offered again, emptied, once their claims
#                                  were deleted (the local-k8s profile runs it before deploying)
#   scripts/local-k8s.sh status    whether the cluster answers and the node is Ready (exit 1 if not)
#
# What is kept lives under .local/k8s (bin, pki, configs, logs, pid files, containerd's image
# store, which outlives `down` so images load once). What changes while the cluster runs lives
# outside the repo, which `down` removes: /var/lib/k8s-local (etcd's data, the brokers' volumes),
# /var/lib/kubelet-k8s and /run/containerd-k8s. Kafka writing its volume inside the repo would
# keep `skaffold dev`'s file watcher (the whole repo: the images build from its root) busy for
# ever, and it rebuilds only once the workspace has been quiet for a moment.
# Needs root (containerd, kubelet, iptables).
#
# Environment: K8S_VERSION (v1.34.4; staging modules v0.<minor>.<patch>), ETCD_VERSION (v3.6.16),
# COREDNS_VERSION (v1.13.2), KUBE_ROUTER_VERSION (v2.1.0), K8S_NODE_IP (this host's first address), K8S_READY_TIMEOUT (seconds
# `up` waits for Ready, 120).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$PATH:/usr/sbin:/sbin"

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.13.2}"
# the NetworkPolicy enforcer (its firewall only, beside the bridge CNI and kube-proxy). v2.1.0 is
# the version the module proxy here serves, with security flaws reported against it: it runs on
# this throwaway test node only, never in an image or in deploy/.
KUBE_ROUTER_VERSION="${KUBE_ROUTER_VERSION:-v2.1.0}"
READY_TIMEOUT="${K8S_READY_TIMEOUT:-120}"
NODE_NAME=k8s-local

K8S="$ROOT/.local/k8s"
BIN="$K8S/bin"
BUILD="$K8S/build"
PKI="$K8S/pki"
CONF="$K8S/conf"
RUN="$K8S/run"
LOGS="$K8S/log"
KUBECONFIG_FILE="$K8S/admin.kubeconfig"
KUBELET_DIR=/var/lib/kubelet-k8s
CONTAINERD_ROOT="$K8S/containerd"
STATE=/var/lib/k8s-local
ETCD_DIR="$STATE/etcd"
PV_DIR="$STATE/volumes"
# the namespace skaffold.yaml deploys to, whose StatefulSet claims the volumes are bound to
NAMESPACE="${K8S_NAMESPACE:-clickstream-vip}"
CONTAINERD_STATE=/run/containerd-k8s
CONTAINERD_SOCK="$CONTAINERD_STATE/containerd.sock"
# order of start; `down` stops in reverse
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy kube-router)

log() { echo "[local-k8s] $*" >&2; }
die() { echo "[local-k8s] ERROR: $*" >&2; exit 1; }

need_root() { (($(id -u) == 0)) || die "$1 needs root (containerd, kubelet, iptables)"; }

# ---------------------------------------------------------------- install

# one stamp per built component, holding the version it was built at: a second run, or a new
# version of one of them, builds only what is missing
built() { [[ -x "$BIN/$1" && "$(cat "$BIN/.stamp-$1" 2>/dev/null)" == "$2" ]]; }

install_containerd() {
  if command -v containerd >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 \
    && command -v ipset >/dev/null 2>&1; then return 0; fi
  log "apt-get install containerd runc containernetworking-plugins ipset"
  DEBIAN_FRONTEND=noninteractive apt-get install -y containerd runc containernetworking-plugins ipset >&2 \
    || die "apt-get install containerd failed"
}

# Kubernetes: a wrapper module requiring k8s.io/kubernetes and replacing each of its ./staging
# modules by the published k8s.io/<name> v0.<minor>.<patch> (k8s.io/kubernetes is not meant to be
# required, so `go install ...@version` cannot build it).
build_kubernetes() {
  local dir="$BUILD/kubernetes" staging minor ld p mod
  staging="v0.${K8S_VERSION#v1.}"
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  mkdir -p "$dir"
  GOFLAGS=-mod=mod go mod download k8s.io/kubernetes@"$K8S_VERSION" >&2
  mod="$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION/go.mod"
  {
    printf 'module local/k8sbuild\n\ngo 1.24.0\n\ngodebug default=go1.24\n\nreplace (\n'
    sed -n '/^replace (/,/^)/p' "$mod" | grep '=>' | awk -v v="$staging" '{print "\t"$1" => "$1" "v}'
    printf ')\n'
  } >"$dir/go.mod"
  # not `go mod tidy`: with no imports it drops the requirement, and the build then resolves latest
  (cd "$dir" && GOFLAGS=-mod=mod go get k8s.io/kubernetes@"$K8S_VERSION") >&2
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld+=" -X $p.buildDate=2026-01-01T00:00:00Z"
  done
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl) >&2
}

# etcd's server module has relative replaces, which `go install pkg@version` refuses: a wrapper
build_etcd() {
  local dir="$BUILD/etcd"
  mkdir -p "$dir"
  printf 'module local/etcdbuild\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
  (cd "$dir" && GOFLAGS=-mod=mod go get go.etcd.io/etcd/server/v3@"$ETCD_VERSION" \
    && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3) >&2
}

# CoreDNS with only the plugins cluster DNS needs (its root package drags in the cloud SDKs)
build_coredns() {
  local dir="$BUILD/coredns" p
  mkdir -p "$dir"
  printf 'module local/corednsbuild\n\ngo 1.24.0\n\nrequire github.com/coredns/coredns %s\n' "$COREDNS_VERSION" >"$dir/go.mod"
  {
    printf 'package main\n\nimport (\n\t"github.com/coredns/coredns/coremain"\n'
    for p in cache errors health kubernetes loadbalance log loop metrics ready reload template; do
      printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$p"
    done
    printf ')\n\nfunc main() { coremain.Run() }\n'
  } >"$dir/main.go"
  (cd "$dir" && GOFLAGS=-mod=mod go get github.com/coredns/coredns@"$COREDNS_VERSION" \
    && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$BIN/coredns" .) >&2
}

# kube-router's go.mod has no replace directives: `go install module@version` builds it
build_kube_router() {
  GOBIN="$BIN" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@"$KUBE_ROUTER_VERSION" >&2
}

cmd_install() {
  install_containerd
  local todo=() t0=$SECONDS c
  built etcd "$ETCD_VERSION" || todo+=("etcd $ETCD_VERSION")
  built coredns "$COREDNS_VERSION" || todo+=("coredns $COREDNS_VERSION")
  built kubelet "$K8S_VERSION" || todo+=("kubernetes $K8S_VERSION")
  built kube-router "$KUBE_ROUTER_VERSION" || todo+=("kube-router $KUBE_ROUTER_VERSION")
  if ((${#todo[@]} == 0)); then
    log "binaries up to date in ${BIN#"$ROOT"/} (kubernetes $K8S_VERSION, etcd $ETCD_VERSION, coredns $COREDNS_VERSION, kube-router $KUBE_ROUTER_VERSION)"
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "the go command builds the cluster; install Go (1.24 or newer)"
  mkdir -p "$BIN" "$BUILD"
  # a throwaway build cache (~3 GB for a cold build), deleted afterwards
  export GOCACHE="$BUILD/gocache"
  trap 'rm -rf "$GOCACHE"' EXIT
  log "building ${todo[*]} from the Go module proxy into ${BIN#"$ROOT"/} (Kubernetes: ~10 min)"
  for c in "${todo[@]}"; do
    case "$c" in
      etcd*) build_etcd && echo "$ETCD_VERSION" >"$BIN/.stamp-etcd" ;;
      coredns*) build_coredns && echo "$COREDNS_VERSION" >"$BIN/.stamp-coredns" ;;
      kubernetes*) build_kubernetes && echo "$K8S_VERSION" >"$BIN/.stamp-kubelet" ;;
      kube-router*) build_kube_router && echo "$KUBE_ROUTER_VERSION" >"$BIN/.stamp-kube-router" ;;
    esac || die "building $c failed"
    log "$c built ($((SECONDS - t0))s)"
  done
  rm -rf "$GOCACHE"
}

# ---------------------------------------------------------------- up

node_ip() { echo "${K8S_NODE_IP:-$(hostname -I | awk '{print $1}')}"; }

cert() { # name CN [O] [SANs]: a key and a certificate signed by the cluster CA
  local name="$1" cn="$2" org="${3:-}" sans="${4:-}" subj="/CN=$2"
  [[ -f "$PKI/$name.crt" ]] && return 0
  [[ -n "$org" ]] && subj="/O=$org/CN=$cn"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n%s' \
    "${sans:+subjectAltName=$sans}" >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

kubeconfig() { # name cert: a kubeconfig for that client certificate, context k8s-local
  local k=("$BIN/kubectl" --kubeconfig "$CONF/$1.kubeconfig")
  "${k[@]}" config set-cluster "$NODE_NAME" --server "https://$(node_ip):6443" \
    --certificate-authority "$PKI/ca.crt" --embed-certs >/dev/null
  "${k[@]}" config set-credentials "$2" --client-certificate "$PKI/$2.crt" \
    --client-key "$PKI/$2.key" --embed-certs >/dev/null
  "${k[@]}" config set-context "$NODE_NAME" --cluster "$NODE_NAME" --user "$2" >/dev/null
  "${k[@]}" config use-context "$NODE_NAME" >/dev/null
}

write_pki() {
  local ip; ip="$(node_ip)"
  mkdir -p "$PKI" "$CONF"
  if [[ ! -f "$PKI/ca.crt" ]]; then
    openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=k8s-local-ca" -days 3650 -out "$PKI/ca.crt" 2>/dev/null
  fi
  [[ -f "$PKI/sa.key" ]] || { openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null; openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
  cert apiserver kube-apiserver "" \
    "IP:10.96.0.1,IP:127.0.0.1,IP:$ip,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert admin kubernetes-admin system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert kube-proxy system:kube-proxy
  cert kubelet "system:node:$NODE_NAME" system:nodes
  cert kubelet-serving "$NODE_NAME" "" "IP:$ip,IP:127.0.0.1,DNS:$NODE_NAME"
  local c
  for c in admin controller-manager scheduler kube-proxy kubelet; do kubeconfig "$c" "$c"; done
  cp "$CONF/admin.kubeconfig" "$KUBECONFIG_FILE"
}

# kube-proxy exits when its configuration file changes, even to the same bytes: a second `up`
# must leave the files of running components alone
write_if_changed() { # file: stdin into it, unless it already holds exactly that
  local new; new="$(cat)"
  [[ -f "$1" && "$(cat "$1")" == "$new" ]] || printf '%s\n' "$new" >"$1"
}

write_configs() {
  mkdir -p "$CONF/cni" "$RUN" "$LOGS"
  write_if_changed "$CONF/containerd.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  # this VM lacks CAP_SYS_RESOURCE: the kubelet's oom_score_adj -998 for sandboxes fails in runc
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CONF/cni"
EOF
  write_if_changed "$CONF/cni/10-k8s-local.conflist" <<'EOF'
{"cniVersion": "0.4.0", "name": "k8s-local", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}]}
EOF
  echo "nameserver 127.0.0.1" | write_if_changed "$CONF/resolv.conf"
  write_if_changed "$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
failSwapOn: false
failCgroupV1: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
resolvConf: $CONF/resolv.conf
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF
  write_if_changed "$CONF/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: 10.244.0.0/16
clientConnection: {kubeconfig: $CONF/kube-proxy.kubeconfig}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

component_args() { # name: its command line
  local ip; ip="$(node_ip)"
  case "$1" in
    etcd) echo "$BIN/etcd --data-dir $ETCD_DIR --listen-client-urls http://127.0.0.1:2379
      --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380
      --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster default=http://127.0.0.1:2380
      --listen-metrics-urls http://127.0.0.1:2381" ;;
    kube-apiserver) echo "$BIN/kube-apiserver --etcd-servers http://127.0.0.1:2379 --advertise-address $ip
      --bind-address 0.0.0.0 --secure-port 6443 --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true
      --kubelet-preferred-address-types InternalIP,Hostname --authorization-mode Node,RBAC
      --enable-admission-plugins NodeRestriction --client-ca-file $PKI/ca.crt
      --tls-cert-file $PKI/apiserver.crt --tls-private-key-file $PKI/apiserver.key
      --kubelet-client-certificate $PKI/apiserver-kubelet-client.crt --kubelet-client-key $PKI/apiserver-kubelet-client.key
      --service-account-issuer https://kubernetes.default.svc.cluster.local
      --service-account-key-file $PKI/sa.pub --service-account-signing-key-file $PKI/sa.key" ;;
    kube-controller-manager) echo "$BIN/kube-controller-manager --kubeconfig $CONF/controller-manager.kubeconfig
      --authentication-kubeconfig $CONF/controller-manager.kubeconfig --authorization-kubeconfig $CONF/controller-manager.kubeconfig
      --bind-address 127.0.0.1 --service-account-private-key-file $PKI/sa.key --root-ca-file $PKI/ca.crt
      --cluster-signing-cert-file $PKI/ca.crt --cluster-signing-key-file $PKI/ca.key --use-service-account-credentials
      --allocate-node-cidrs --cluster-cidr 10.244.0.0/16 --service-cluster-ip-range 10.96.0.0/16 --leader-elect=false" ;;
    kube-scheduler) echo "$BIN/kube-scheduler --kubeconfig $CONF/scheduler.kubeconfig
      --authentication-kubeconfig $CONF/scheduler.kubeconfig --authorization-kubeconfig $CONF/scheduler.kubeconfig
      --bind-address 127.0.0.1 --leader-elect=false" ;;
    containerd) echo "containerd --config $CONF/containerd.toml" ;;
    kubelet) echo "$BIN/kubelet --config $CONF/kubelet.yaml --kubeconfig $CONF/kubelet.kubeconfig
      --hostname-override $NODE_NAME --node-ip $ip --root-dir $KUBELET_DIR" ;;
    kube-proxy) echo "$BIN/kube-proxy --config $CONF/kube-proxy.yaml --hostname-override $NODE_NAME" ;;
    # NetworkPolicy only: pod networking stays the bridge plugin's, Services kube-proxy's
    kube-router) echo "$BIN/kube-router --kubeconfig $CONF/admin.kubeconfig --hostname-override $NODE_NAME
      --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false
      --health-port 20244" ;;
  esac
}

running() { # name: its pid file names a live process
  local pid
  pid="$(cat "$RUN/$1.pid" 2>/dev/null)" || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

start() { # name
  if running "$1"; then return 0; fi
  local args
  read -r -a args <<<"$(component_args "$1" | tr '\n' ' ')"
  log "starting $1 (log ${LOGS#"$ROOT"/}/$1.log)"
  setsid "${args[@]}" >>"$LOGS/$1.log" 2>&1 </dev/null &
  echo $! >"$RUN/$1.pid"
}

wait_for() { # what seconds command...
  local what="$1" deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what (logs in ${LOGS#"$ROOT"/})"
    sleep 1
  done
}

kubectl_() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

node_ready() {
  [[ "$(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

cmd_up() {
  local t0=$SECONDS
  mkdir -p "$RUN"
  # the nftables tables that exist before the first start: `down` drops empty ones created since
  [[ -f "$RUN/nft-tables.before" ]] || nft list tables >"$RUN/nft-tables.before" 2>/dev/null || true
  modprobe br_netfilter 2>/dev/null || true
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1 >/dev/null 2>&1 || true
  write_pki
  write_configs
  start etcd
  wait_for etcd 30 curl -fsS http://127.0.0.1:2379/health
  start kube-apiserver
  wait_for kube-apiserver 60 kubectl_ get --raw /readyz
  start kube-controller-manager
  start kube-scheduler
  start containerd
  wait_for containerd 30 test -S "$CONTAINERD_SOCK"
  start kubelet
  start kube-proxy
  log "waiting for node $NODE_NAME to be Ready"
  wait_for "node $NODE_NAME Ready" "$READY_TIMEOUT" node_ready
  # kube-router finds its node by name at start: only once the kubelet has registered it
  start kube-router
  wait_for kube-router 60 curl -fsS http://127.0.0.1:20244/healthz
  log "node $NODE_NAME Ready ($((SECONDS - t0))s)"
  "$ROOT/scripts/k8s/images.sh" stand-ins
  apply_addons
  log "cluster up ($((SECONDS - t0))s); for kubectl and skaffold: eval \"\$(scripts/local-k8s.sh env)\""
  cmd_env
}

apply_addons() {
  kubectl_ apply -f "$ROOT/deploy/k8s-local/coredns.yaml" >/dev/null
  cmd_volumes
  wait_for "CoreDNS" 120 kubectl_ -n kube-system rollout status deployment/coredns --timeout 5s
  log "CoreDNS ready, volumes for $NAMESPACE/data-kafka-0 and data-rabbitmq-0 created"
}

# The brokers' volumes, bound ahead to their claims (no dynamic provisioner here). A deleted
# claim (`skaffold delete`, or Ctrl-C ending `skaffold dev`: both delete the namespace) leaves its
# volume Released, and a Released volume never binds again, so the next deploy would hang Pending.
# Such a volume is emptied and made anew, as a provisioner's Delete policy gives a new claim an
# empty volume. Run by `up`, and by the local-k8s profile before each deploy.
cmd_volumes() {
  local pv
  for pv in kafka-0 rabbitmq-0; do
    if [[ "$(kubectl_ get pv "k8s-local-$pv" -o 'jsonpath={.status.phase}' 2>/dev/null)" == Released ]]; then
      kubectl_ delete pv "k8s-local-$pv" >/dev/null
      rm -rf "${PV_DIR:?}/$pv"
      log "volume $pv: its claim was deleted, so it is emptied for the next deploy"
    fi
  done
  mkdir -p "$PV_DIR/kafka-0" "$PV_DIR/rabbitmq-0"
  chown 1000:1000 "$PV_DIR/kafka-0"
  chown 999:999 "$PV_DIR/rabbitmq-0"
  sed -e "s|PV_DIR|$PV_DIR|g" -e "s|NAMESPACE|$NAMESPACE|g" "$ROOT/deploy/k8s-local/volumes.yaml" \
    | kubectl_ apply -f - >/dev/null
}

# SKAFFOLD_TRIGGER=polling: skaffold's default `notify` trigger watches the whole repo and fires
# only after a second with no change anywhere in it, and the brokers of `make run` / `make test`
# keep their data in .local, where Kafka's controller appends to its metadata log every 500 ms:
# an edit would never be picked up. Polling checks only the files the images copy, once a second.
cmd_env() {
  echo "export PATH=$BIN:$ROOT/.local/go/bin:\$PATH SKAFFOLD_UPDATE_CHECK=false SKAFFOLD_TRIGGER=polling"
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  "$ROOT/scripts/container-engine.sh" env
}

# `down`: scripts/k8s/teardown.sh
# shellcheck source=scripts/k8s/teardown.sh
. "$ROOT/scripts/k8s/teardown.sh"

# ---------------------------------------------------------------- status

cmd_status() {
  local c up=0
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then echo "$c: running"; up=$((up + 1)); else echo "$c: stopped"; fi
  done
  if ((up > 0)) && node_ready; then
    echo "node $NODE_NAME: Ready (export KUBECONFIG=$KUBECONFIG_FILE)"
  else
    echo "node $NODE_NAME: not Ready"; return 1
  fi
}

# ---------------------------------------------------------------- main

case "${1:-}" in
  install) cmd_install ;;
  up) need_root up; cmd_install; cmd_up ;;
  down) need_root down; cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  volumes) need_root volumes; cmd_volumes ;;
  *) echo "usage: $0 install|up|down|status|env|volumes" >&2; exit 2 ;;
esac
