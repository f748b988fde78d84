"""build.py: the extension zip holds the add-on, its manifest and only the runtime backend, and passes Blender's
own validator; the add-on loads in Blender without torch."""
import shutil
import subprocess
import sys
import zipfile

import pytest

import blender_util
import build

pytestmark = pytest.mark.blender  # uses the validator inside the bpy wheel


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory):
    return blender_util.build_extension(tmp_path_factory.mktemp("dist"))


def test_zip_layout(zip_path):
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {"blender_manifest.toml", "__init__.py", "bake.py", "backend/__init__.py"} <= names
    assert {f"backend/{m}.py" for m in build.NUMPY_MODULES} <= names
    for forbidden in build.FORBIDDEN_MODULES:
        assert f"backend/{forbidden}.py" not in names
    assert {f"backend/{m}.py" for m in build.backend_imports(build.BACKEND_DIR, build.RUNTIME_ENTRY_POINTS)} <= names
    shipped_model = f"backend/{build.DEFAULT_MODEL}/"
    assert not [n for n in names if n.startswith("tests/") or n.endswith(".pyc")
                or n.endswith((".npz", ".bvh", ".npy", ".pt")) and not n.startswith(shipped_model)]
    if (build.BACKEND_DIR / build.DEFAULT_MODEL).is_dir():
        assert f"{shipped_model}config.json" in names


def test_a_server_import_left_out_of_the_build_fails_it(tmp_path):
    backend = tmp_path / "backend"
    shutil.copytree(build.BACKEND_DIR, backend, ignore=shutil.ignore_patterns("__pycache__", build.DEFAULT_MODEL))
    (backend / "extra_runtime.py").write_text("X = 1\n")
    (backend / "pipeline.py").write_text((backend / "pipeline.py").read_text() + "\nfrom . import extra_runtime\n")
    stage = tmp_path / "stage"
    stage.mkdir()
    with pytest.raises(SystemExit, match="extra_runtime"):
        build.stage_backend(stage, backend)


def test_a_build_without_the_default_model_fails(tmp_path):
    backend = tmp_path / "backend"
    shutil.copytree(build.BACKEND_DIR, backend, ignore=shutil.ignore_patterns("__pycache__", build.DEFAULT_MODEL))
    stage = tmp_path / "stage"
    stage.mkdir()
    with pytest.raises(SystemExit, match="default_model/ is missing"):
        build.stage_backend(stage, backend)


def test_zip_passes_blenders_validator(zip_path):
    result = subprocess.run([sys.executable, str(build.find_blender_ext()), "validate", str(zip_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_numpy_module_importing_scipy_fails_the_build(tmp_path):
    backend = tmp_path / "backend"
    shutil.copytree(build.BACKEND_DIR, backend)
    (backend / "rotations.py").write_text((backend / "rotations.py").read_text() + "\nimport scipy.spatial\n")
    stage = tmp_path / "stage"
    stage.mkdir()
    with pytest.raises(SystemExit, match="rotations.py must stay numpy-only but imports scipy"):
        build.stage_backend(stage, backend)


def test_enabled_addon_never_imports_torch(zip_path, tmp_path):
    """In a fresh process (pytest's may already hold torch): install the zip, enable it, look at sys.modules."""
    script = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(blender_util.REPO / 'tests')!r})
import blender_util
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
blender_util.install_zip(Path({str(zip_path)!r}), Path({str(tmp_path)!r}))
blender_util.enable_addon(Path({str(tmp_path)!r}))
print("TORCH_LOADED", "torch" in sys.modules)
blender_util.disable_addon()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "TORCH_LOADED False" in result.stdout, result.stdout + result.stderr
