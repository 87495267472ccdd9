#!/usr/bin/env bash
# Installs what the project needs to run its Python side: uv (from PyPI, if missing) and the
# locked workspace environment in .venv. Prints nothing but progress; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v uv >/dev/null 2>&1; then
  echo "[setup] installing uv" >&2
  python3 -m pip install -q uv || python3 -m pip install -q --break-system-packages uv
fi
uv sync --frozen --quiet
