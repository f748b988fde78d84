#!/usr/bin/env bash
# The full test run (what CI runs): every test in .venv (Blender 5.0.1 as the bpy module, torch), then the Blender
# tests again in .venv42 (Blender 4.2 LTS). Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -m "slow or not slow" "$@"
echo "== the Blender tests on Blender 4.2 LTS (.venv42) =="
PYTHONPATH=. .venv42/bin/python -m pytest -p no:cacheprovider -m blender "$@" $(grep -l "pytest.mark.blender\|pytestmark = pytest.mark.blender" tests/test_*.py)
