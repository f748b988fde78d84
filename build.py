"""Build the installable Blender extension zip: the add-on, its manifest and the backend runtime as `backend/`.

    python build.py [--output-dir dist] [--blender-ext PATH/TO/blender_ext.py]

The zip is staged in a temporary folder (add-on files at the root, runtime backend modules under `backend/`),
built and then validated by Blender's own extension tool, which ships inside the `bpy` wheel and runs with plain
Python. Any validation error fails the build.
"""
import argparse
import ast
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent
ADDON_DIR = REPO / "mdm_blender_addon"
MANIFEST = REPO / "blender_manifest.toml"
BACKEND_DIR = REPO / "backend"

# numpy-only modules the add-on imports inside Blender (Blender ships numpy, never scipy or torch).
NUMPY_MODULES = (
    "__init__", "skeleton", "rotations", "features", "bvh", "mocap", "retarget", "bone_maps", "errors", "metrics",
    "keyframes", "planting",
)
# torch modules that a backend subprocess runs from the extension folder (it brings its own torch).
TORCH_RUNTIME_MODULES = (
    "device", "model", "diffusion", "samplers", "guidance", "inpainting", "text", "captions", "checkpoints",
    "pipeline", "service", "server",
)
# Never shipped: training/evaluation need datasets, and torch itself is never bundled.
FORBIDDEN_MODULES = ("train", "data", "evaluate")
RUNTIME_ENTRY_POINTS = ("server", "service", "pipeline")  # what the transports run; all they import is bundled
DEFAULT_MODEL = "default_model"  # the embedded model's checkpoint folder: the model used when none is chosen
FORBIDDEN_IMPORTS = ("torch", "scipy")


def find_blender_ext() -> Path:
    """Blender's extension tool inside the installed `bpy` wheel (located without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.origin:
        raise SystemExit("build: the bpy module is not installed; pass --blender-ext PATH/TO/blender_ext.py")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit(f"build: no blender_ext.py under {Path(spec.origin).parent}; pass --blender-ext")
    return found[-1]


def top_level_imports(path: Path) -> set[str]:
    """Absolute top-level package names imported anywhere in a module (relative imports excluded)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def backend_imports(backend_dir: Path, entry_points) -> set[str]:
    """Every backend module the entry points import, directly or not (relative imports, followed recursively)."""
    seen, todo = set(), list(entry_points)
    while todo:
        module = todo.pop()
        if module in seen or not (backend_dir / f"{module}.py").is_file():
            continue
        seen.add(module)
        for node in ast.walk(ast.parse((backend_dir / f"{module}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                todo += [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]
    return seen


def stage_backend(stage: Path, backend_dir: Path = BACKEND_DIR) -> None:
    """Copy the runtime backend modules into `stage/backend`, refusing numpy modules that import torch/scipy."""
    missing = [m for m in NUMPY_MODULES + TORCH_RUNTIME_MODULES if not (backend_dir / f"{m}.py").is_file()]
    if missing:
        raise SystemExit(f"build: backend modules the add-on needs are missing: {', '.join(missing)}")
    target = stage / "backend"
    target.mkdir()
    for module in NUMPY_MODULES:
        source = backend_dir / f"{module}.py"
        bad = top_level_imports(source) & set(FORBIDDEN_IMPORTS)
        if bad:
            raise SystemExit(f"build: {source} must stay numpy-only but imports {', '.join(sorted(bad))}")
        shutil.copy2(source, target / source.name)
    for module in TORCH_RUNTIME_MODULES:
        shutil.copy2(backend_dir / f"{module}.py", target / f"{module}.py")
    unbundled = backend_imports(backend_dir, RUNTIME_ENTRY_POINTS) - set(NUMPY_MODULES) - set(TORCH_RUNTIME_MODULES)
    if unbundled:
        raise SystemExit(f"build: the backend server imports {', '.join(sorted(unbundled))}, which the build does not "
                         "bundle: add them to TORCH_RUNTIME_MODULES")
    if not (backend_dir / DEFAULT_MODEL).is_dir():
        raise SystemExit(f"build: backend/{DEFAULT_MODEL}/ is missing: the add-on's default model would not load")
    shutil.copytree(backend_dir / DEFAULT_MODEL, target / DEFAULT_MODEL)
    assert not any((target / f"{m}.py").exists() for m in FORBIDDEN_MODULES)


def stage_addon(stage: Path) -> None:
    shutil.copy2(MANIFEST, stage / MANIFEST.name)
    for source in ADDON_DIR.iterdir():
        if source.name == "__pycache__" or source.name.startswith("."):
            continue
        if source.is_dir():
            shutil.copytree(source, stage / source.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, stage / source.name)


def run_tool(blender_ext: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, str(blender_ext), *args], capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"build: blender_ext {args[0]} failed (exit {result.returncode}):\n{output}")
    return output


def build(output_dir: Path, blender_ext: Path) -> Path:
    """Stage, build and validate the extension; return the path of the zip."""
    manifest = tomllib.loads(MANIFEST.read_text())
    output_dir.mkdir(parents=True, exist_ok=True)
    zip_path = output_dir / f"{manifest['id']}-{manifest['version']}.zip"
    with tempfile.TemporaryDirectory(prefix="mdm_ext_stage_") as tmp:
        stage = Path(tmp)
        stage_addon(stage)
        stage_backend(stage)
        run_tool(blender_ext, "validate", str(stage))
        run_tool(blender_ext, "build", "--source-dir", str(stage), "--output-filepath", str(zip_path))
    run_tool(blender_ext, "validate", str(zip_path))
    return zip_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO / "dist")
    parser.add_argument("--blender-ext", type=Path, help="Blender's blender_ext.py (default: from the bpy wheel)")
    args = parser.parse_args(argv)
    zip_path = build(args.output_dir.resolve(), args.blender_ext or find_blender_ext())
    print(f"built and validated {zip_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
