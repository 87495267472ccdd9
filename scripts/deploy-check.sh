#!/usr/bin/env bash
# Checks the Kubernetes deployment without a cluster, with the real Skaffold:
#
#   scripts/deploy-check.sh [validate]   skaffold diagnose; skaffold render into .local/render.yaml;
#                                        the rendered manifests against the Kubernetes JSON schemas
#                                        (offline: kubernetes-validate from PyPI bundles them)
#   scripts/deploy-check.sh build        skaffold build of the four images on the Docker-API engine
#                                        (DOCKER_HOST; else `scripts/container-engine.sh env`), then
#                                        render and validate again with the tags it built
#   scripts/deploy-check.sh install      only build the skaffold binary
#
# Skaffold is built once from the Go module proxy into .local/go/bin (several minutes the first
# time; skipped while that binary has the pinned version). Outputs stay in .local/deploy-check/.
# Exit codes: 0 passed, 1 a check failed, 3 a prerequisite is missing (Go, uv or python3, the
# container engine), with the reason on stderr.
#
# Environment: SKAFFOLD_VERSION (pinned below), KUBERNETES_VERSIONS (schema versions to validate
# against), DEPLOY_CHECK_ENGINE_WAIT (seconds `build` polls for the engine and the base image;
# default 0: check once), PYTHON_BASE_IMAGE (base of the service images, see skaffold.yaml).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SKAFFOLD_VERSION="${SKAFFOLD_VERSION:-v2.19.0}"
SKAFFOLD_MODULE=github.com/GoogleContainerTools/skaffold/v2
# the go.sum hash of that module version, pinned here (see install_skaffold)
SKAFFOLD_SUMS="v2.19.0=h1:qH0CVdT2qAT3PNCfbBXb8Rhb6H5tuWEyQOwK9VaePsE="
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
KUBERNETES_VERSIONS="${KUBERNETES_VERSIONS:-1.29.0 1.37.0}"
ENGINE_WAIT="${DEPLOY_CHECK_ENGINE_WAIT:-0}"

BIN_DIR="$ROOT/.local/go/bin"
SKAFFOLD="$BIN_DIR/skaffold"
OUT="$ROOT/.local/deploy-check"
RENDERED="$ROOT/.local/render.yaml"
RENDERED_JSON="$ROOT/.local/render.json"
BUILD_JSON="$OUT/build.json"

log() { echo "[deploy-check] $*" >&2; }
fail() { echo "[deploy-check] FAILED: $*" >&2; exit 1; }
missing() { echo "[deploy-check] MISSING: $*" >&2; exit 3; }

mkdir -p "$OUT" "$BIN_DIR"

# Skaffold's own settings for these runs, in a home of their own (its global config and build
# cache): no update check, no survey prompt, no metrics upload (only package registries answer).
SKAFFOLD_HOME="$OUT/home"
mkdir -p "$SKAFFOLD_HOME/.skaffold"
cat >"$SKAFFOLD_HOME/.skaffold/config" <<'EOF'
global:
  update-check: false
  collect-metrics: false
  survey:
    disable-prompt: true
kubeContexts: []
EOF
export SKAFFOLD_UPDATE_CHECK=false SKAFFOLD_INTERACTIVE=false

skaffold() { HOME="$SKAFFOLD_HOME" "$SKAFFOLD" "$@"; }

# ---------------------------------------------------------------- skaffold

installed_version() { [[ -x "$SKAFFOLD" ]] && "$SKAFFOLD" version 2>/dev/null || true; }

install_skaffold() {
  if [[ "$(installed_version)" == "$SKAFFOLD_VERSION" ]]; then return 0; fi
  command -v go >/dev/null 2>&1 || missing "the go command builds skaffold; install Go (1.25.5 or newer)"
  local t0=$SECONDS info dir sum want commit
  log "building skaffold $SKAFFOLD_VERSION from the Go module proxy into $BIN_DIR (first run only: minutes)"
  # Not `go install $SKAFFOLD_MODULE/cmd/skaffold@$SKAFFOLD_VERSION`: skaffold's go.mod has replace
  # and exclude directives, which `go install pkg@version` refuses. So: fetch the module, then build
  # it as the main module, where its go.mod and go.sum pin every dependency. The module itself is
  # checked against the hash pinned above rather than the checksum database, which this
  # machine's network does not serve for it.
  if ! info="$(GONOSUMDB=github.com/GoogleContainerTools/skaffold GOFLAGS=-mod=mod \
    go mod download -json "$SKAFFOLD_MODULE@$SKAFFOLD_VERSION" 2>"$OUT/go-download.log")"; then
    cat "$OUT/go-download.log" >&2; echo "$info" >&2
    missing "cannot download $SKAFFOLD_MODULE@$SKAFFOLD_VERSION from the Go module proxy"
  fi
  dir="$(json_field Dir <<<"$info")"
  sum="$(json_field Sum <<<"$info")"
  commit="$(json_field Origin.Hash <<<"$info")"
  want="$(tr ' ' '\n' <<<"$SKAFFOLD_SUMS" | sed -n "s/^$SKAFFOLD_VERSION=//p")"
  if [[ -n "$want" && "$sum" != "$want" ]]; then
    fail "$SKAFFOLD_MODULE@$SKAFFOLD_VERSION has hash $sum, pinned $want"
  fi
  [[ -n "$want" ]] || log "no pinned hash for $SKAFFOLD_VERSION (module hash $sum)"
  # the tags and ldflags of skaffold's own release build, without cgo
  if ! (cd "$dir" && CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
    -tags "timetzdata osusergo netgo" \
    -ldflags "-s -w -X $SKAFFOLD_MODULE/pkg/skaffold/version.version=$SKAFFOLD_VERSION -X $SKAFFOLD_MODULE/pkg/skaffold/version.gitCommit=$commit" \
    -o "$SKAFFOLD.tmp" ./cmd/skaffold) >"$OUT/go-build.log" 2>&1; then
    tail -n 30 "$OUT/go-build.log" >&2
    rm -f "$SKAFFOLD.tmp"
    if grep -qiE 'dial tcp|lookup .*no such host|403 Forbidden|404 Not Found|i/o timeout|TLS handshake' "$OUT/go-build.log"; then
      missing "the Go module proxy did not serve skaffold's dependencies (log $OUT/go-build.log)"
    fi
    fail "building skaffold failed (log $OUT/go-build.log)"
  fi
  mv "$SKAFFOLD.tmp" "$SKAFFOLD"
  log "built $("$SKAFFOLD" version) in $((SECONDS - t0))s"
}

json_field() { # dotted.key: a field of the JSON object on stdin, "" when absent
  python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value.get(key, "") if isinstance(value, dict) else ""
print(value)
' "$1"
}

# ---------------------------------------------------------------- schema validation

# kubernetes-validate (and PyYAML with it) in a throwaway environment: uv's cache, or a venv.
validator() {
  if command -v uv >/dev/null 2>&1; then
    uv run --quiet --no-project --with "$KUBERNETES_VALIDATE" -- "$@"
  elif command -v python3 >/dev/null 2>&1; then
    local venv="$OUT/venv"
    if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
      if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "$KUBERNETES_VALIDATE"; } >&2; then
        missing "cannot install $KUBERNETES_VALIDATE from PyPI"
      fi
    fi
    PATH="$venv/bin:$PATH" "$@"
  else
    missing "uv or python3 is needed for $KUBERNETES_VALIDATE"
  fi
}

validate_schemas() { # file
  local file="$1" version
  for version in $KUBERNETES_VERSIONS; do
    log "schemas: $file against Kubernetes $version (strict)"
    validator kubernetes-validate --strict --quiet -k "$version" "$file" \
      || fail "$file does not validate against the Kubernetes $version schemas"
  done
}

to_json() { # yaml json: every document, for checks that have no YAML parser
  validator python -c '
import json, sys, yaml
with open(sys.argv[1]) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
with open(sys.argv[2], "w") as f:
    json.dump(docs, f, indent=1)
print(f"{len(docs)} documents", file=sys.stderr)
' "$1" "$2" || fail "cannot parse $1"
}

# ---------------------------------------------------------------- steps

diagnose() { # full|yaml-only
  if [[ "$1" == full ]]; then
    log "skaffold diagnose"
    skaffold diagnose >"$OUT/diagnose.txt" 2>&1 || { cat "$OUT/diagnose.txt" >&2; fail "skaffold diagnose"; }
  fi
  # the effective configuration: skaffold.yaml parsed and checked against skaffold's own schema
  skaffold diagnose --yaml-only >"$OUT/skaffold-effective.yaml" 2>"$OUT/diagnose-yaml.log" \
    || { cat "$OUT/diagnose-yaml.log" >&2; fail "skaffold diagnose --yaml-only"; }
}

render() { # output [extra skaffold render flags...]
  local output="$1"; shift
  log "skaffold render --offline $* -> ${output#"$ROOT"/}"
  skaffold render --offline=true --output "$output" "$@" >"$OUT/render.log" 2>&1 \
    || { cat "$OUT/render.log" >&2; fail "skaffold render"; }
  [[ -s "$output" ]] || fail "skaffold render wrote nothing to $output"
}

cmd_validate() {
  install_skaffold
  log "using skaffold $(installed_version)"
  # The full diagnose reads each Dockerfile's base image (for ONBUILD triggers): from the engine,
  # else from its registry. Without either only the configuration itself can be checked.
  engine_env
  local problem
  problem="$(engine_problem)"
  if [[ -z "$problem" ]]; then
    diagnose full
  else
    log "skaffold diagnose --yaml-only: the full diagnose needs the base image ($problem)"
    diagnose yaml-only
  fi
  # no cluster and no build: the image names get the tags the tagger would give them
  render "$RENDERED" --digest-source=tag
  validate_schemas "$RENDERED"
  to_json "$RENDERED" "$RENDERED_JSON"
  log "passed: diagnose${problem:+ (configuration only)}, render (.local/render.yaml)," \
    "schemas (Kubernetes $KUBERNETES_VERSIONS)"
}

PODMAN_SOCKET=/run/podman/podman.sock

engine_env() { # the local podman engine's variables, unless another engine is configured
  if [[ -x "$ROOT/scripts/container-engine.sh" ]] \
    && { [[ -z "${DOCKER_HOST:-}" && -S "$PODMAN_SOCKET" ]] || [[ "${DOCKER_HOST:-}" == "unix://$PODMAN_SOCKET" ]]; }; then
    eval "$("$ROOT/scripts/container-engine.sh" env)" # sets only what is unset
  fi
}

engine_problem() { # prints what is missing, if anything
  command -v docker >/dev/null 2>&1 || { echo "no docker CLI (skaffold builds with it)"; return; }
  if ! timeout 20 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "no Docker-compatible engine answers at ${DOCKER_HOST:-the default socket}"; return
  fi
  if [[ -n "${PYTHON_BASE_IMAGE:-}" ]] && ! docker image inspect "$PYTHON_BASE_IMAGE" >/dev/null 2>&1; then
    echo "the base image $PYTHON_BASE_IMAGE does not exist on the engine"; return
  fi
}

cmd_build() {
  install_skaffold
  engine_env
  local problem deadline=$((SECONDS + ENGINE_WAIT))
  while problem="$(engine_problem)"; [[ -n "$problem" ]]; do
    if ((SECONDS >= deadline)); then
      missing "$problem (scripts/container-engine.sh start && scripts/container-engine.sh base)"
    fi
    log "waiting for the engine: $problem"
    sleep 10
    engine_env
  done
  log "engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) at ${DOCKER_HOST:-default};" \
    "base image ${PYTHON_BASE_IMAGE:-python:3.11-slim-bookworm (official)}"
  diagnose full
  local t0=$SECONDS
  log "skaffold build (log $OUT/build.log)"
  if ! skaffold build --file-output "$BUILD_JSON" >"$OUT/build.log" 2>&1; then
    tail -n 60 "$OUT/build.log" >&2
    fail "skaffold build (log $OUT/build.log)"
  fi
  log "built in $((SECONDS - t0))s:"
  local tags tag
  tags="$(python3 -c '
import json, sys
for build in json.load(open(sys.argv[1]))["builds"]:
    print(build["tag"])
' "$BUILD_JSON")"
  for tag in $tags; do
    log "  $tag"
    docker image inspect "$tag" >/dev/null 2>&1 || fail "skaffold reported $tag, but the engine has no such image"
  done
  # the manifests as `skaffold run` would apply them with these images
  render "$OUT/render-built.yaml" --build-artifacts "$BUILD_JSON" --digest-source=tag
  validate_schemas "$OUT/render-built.yaml"
  log "passed: skaffold build, render with the built tags, schemas"
}

case "${1:-validate}" in
  validate) cmd_validate ;;
  build) cmd_build ;;
  install) install_skaffold; log "skaffold $(installed_version) at $SKAFFOLD" ;;
  *) echo "usage: $0 [validate|build|install]" >&2; exit 2 ;;
esac
