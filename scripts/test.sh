#!/usr/bin/env bash
# The full test run (what CI runs): every test in .venv (Blender 5.0.1 as the bpy module, torch), then the Blender
# tests again in .venv42 (Blender 4.2 LTS) and .venv45 (Blender 4.5 LTS). Extra arguments go to every pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -m "slow or not slow" "$@"
blender_tests=$(grep -l "pytest.mark.blender\|pytestmark = pytest.mark.blender" tests/test_*.py)
for venv in .venv42 .venv45; do
  echo "== the Blender tests on $($venv/bin/python -c 'import bpy; print("Blender", bpy.app.version_string)') ($venv) =="
  PYTHONPATH=. $venv/bin/python -m pytest -p no:cacheprovider -m blender "$@" $blender_tests
done
