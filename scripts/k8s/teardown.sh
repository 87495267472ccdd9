# Sourced by scripts/local-k8s.sh: `down`, which stops the cluster and undoes its host changes
# (processes, the pods' containers, iptables chains, the cni0 bridge, mounts, state directories).
# shellcheck shell=bash

stop() { # name: TERM, then KILL after 15 s
  local pid i
  pid="$(cat "$RUN/$1.pid" 2>/dev/null)" || return 0
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 ($pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 15; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$1.pid"
}

shims() { # pids of containerd-shim processes serving our containerd
  pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true
}

drop_chains() { # tool table regex: the chains matching, the rules jumping to them, all gone
  local t="$1" tbl="$2" re="$3" chains c rule
  chains="$("$t" -t "$tbl" -S 2>/dev/null | awk -v re="$re" '$1 == "-N" && $2 ~ re {print $2}')"
  [[ -n "$chains" ]] || return 0
  for c in $chains; do "$t" -t "$tbl" -F "$c" 2>/dev/null || true; done
  # what is left jumping to them is in other chains (the built-in ones); rules quote comments
  while read -r rule; do
    eval "\"\$t\" -t \"\$tbl\" ${rule/#-A/-D}" 2>/dev/null || true
  done < <("$t" -t "$tbl" -S | awk -v re="$re" '$1 == "-A" { for (i = 1; i < NF; i++) if ($i == "-j" && $(i + 1) ~ re) { print; break } }')
  for c in $chains; do "$t" -t "$tbl" -X "$c" 2>/dev/null || true; done
}

cmd_down() {
  local i pid t tbl m ns
  # the kubelet first (else it restarts what we kill), then the pods' containers and the rest
  stop kube-router
  stop kube-proxy
  stop kubelet
  if running containerd && [[ -S "$CONTAINERD_SOCK" ]]; then
    local ctr=(ctr --address "$CONTAINERD_SOCK" -n k8s.io)
    for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
    sleep 1
    for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks delete -f "$t" >/dev/null 2>&1 || true; done
    for t in $("${ctr[@]}" containers ls -q 2>/dev/null); do "${ctr[@]}" containers rm "$t" >/dev/null 2>&1 || true; done
    # the services' images skaffold loaded (one per build): the store keeps only the stand-ins,
    # which the next `up` would otherwise load again
    for t in $("${ctr[@]}" images ls -q 2>/dev/null | grep -E '^docker.io/library/(user-state|enricher|rabbit-bridge|generator):'); do
      "${ctr[@]}" images rm "$t" >/dev/null 2>&1 || true
    done
  fi
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop "${COMPONENTS[i]}"; done
  for pid in $(shims); do kill -9 "$pid" 2>/dev/null || true; done
  # host changes of kube-router (its --cleanup-config leaves its chains here: it panics on the
  # missing IPVS first), kube-proxy and the kubelet
  for t in iptables ip6tables; do drop_chains "$t" filter '^KUBE-(ROUTER-|POD-FW-|NWPLCY-)'; done
  for t in $(ipset list -n 2>/dev/null | grep -E '^(inet6:)?KUBE-(DST|SRC)-'); do ipset destroy "$t" 2>/dev/null || true; done
  [[ -x "$BIN/kube-proxy" ]] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  for t in iptables ip6tables; do
    for tbl in filter nat mangle; do
      drop_chains "$t" "$tbl" '^KUBE-(FIREWALL|KUBELET-CANARY|IPTABLES-HINT|PROXY-CANARY)$'
    done
  done
  # CNI: the bridge, its veths die with the netns; masquerade chains of the bridge plugin
  ip link del cni0 2>/dev/null || true
  drop_chains iptables nat '^CNI-'
  # mounts under the kubelet's and containerd's directories, deepest first
  for m in $(findmnt -rn -o TARGET | sort -r); do
    [[ "$m" =~ ^($KUBELET_DIR|$CONTAINERD_ROOT|$CONTAINERD_STATE|/var/lib/kubelet|/run/netns/cni-) ]] \
      && { umount -l "$m" 2>/dev/null || true; }
  done
  rm -rf "$KUBELET_DIR" /var/lib/kubelet "$CONTAINERD_STATE" /usr/libexec/kubernetes \
    /var/lib/cni/networks/k8s-local /var/lib/cni/results/k8s-local-*
  rmdir /var/lib/cni/networks /var/lib/cni/results /var/lib/cni 2>/dev/null || true # only when empty
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done
  # empty tables the kubelet and kube-proxy instantiated (iptables-nft), e.g. ip6 filter/nat/mangle
  if [[ -f "$RUN/nft-tables.before" ]]; then
    local fam name
    while read -r _ fam name; do
      grep -qx "table $fam $name" "$RUN/nft-tables.before" && continue
      nft list table "$fam" "$name" | grep -vE '^[[:space:]]*(table|chain|type|\}|$)' | grep -q . \
        || nft delete table "$fam" "$name" 2>/dev/null || true
    done < <(nft list tables 2>/dev/null)
    rm -f "$RUN/nft-tables.before"
  fi
  # etcd's data and the brokers' volumes: the next `up` starts a fresh cluster (the PKI and
  # containerd's image store stay)
  rm -rf "$STATE" "$K8S/etcd" "$K8S/volumes" # (the last two: where earlier versions kept them)
  log "down"
}

