#!/usr/bin/env bash
# Create .venv at the repository root and install everything the backend, the tests and the add-on build need.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}  # bpy wheels exist for Python 3.11 only

# Blender-as-a-module needs a few X/GL client libraries even headless (blender.md); install them if absent.
if ! ldconfig -p | grep -q libXrender.so.1 || ! ldconfig -p | grep -q libxkbcommon.so.0; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq libgl1 libglx0 libglvnd0 libx11-6 libxext6 libxfixes3 libxi6 \
      libxrender1 libsm6 libice6 libxcb1 libxau6 libxdmcp6 libxkbcommon0 libxt6 libxxf86vm1 libgomp1 >/dev/null
  else
    echo "setup: please install the X/GL client libraries listed in README.md (bpy needs them)" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch/torchvision are pinned to the builds that install from local files; see pyproject.toml.
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[backend,text,dev]"
.venv/bin/python -c "import bpy, torch, clip, numpy; print(f'setup ok: bpy {bpy.app.version_string}, torch {torch.__version__}, numpy {numpy.__version__}')"

# The LTS releases as further modules (one bpy per environment) for the add-on tests: 4.2, the oldest supported
# Blender, and 4.5.
for lts in 42:4.2.23 45:4.5.15; do
  venv=.venv${lts%%:*} version=${lts#*:}
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "bpy==$version" "numpy>=1.24,<2" "pytest>=8" \
    "pillow>=10"
  "$venv/bin/python" -c "import bpy; print(f'setup ok: bpy {bpy.app.version_string} ($venv)')"
done
