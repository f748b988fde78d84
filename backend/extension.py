"""Build the extension zip and install it into a headless Blender (the `bpy` module), as a user would: the demo,
the tests and the benches share these steps. Never shipped; `bpy` is imported inside the functions only."""
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST = tomllib.loads((REPO / "blender_manifest.toml").read_text())


def build_zip(output_dir: Path) -> Path:
    """Run build.py in a real subprocess (it builds and validates the zip); return the zip. RuntimeError on failure."""
    result = subprocess.run([sys.executable, str(REPO / "build.py"), "--output-dir", str(output_dir)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"build.py failed:\n{result.stdout}{result.stderr}")
    return Path(output_dir) / f"{MANIFEST['id']}-{MANIFEST['version']}.zip"


def register_user_repo(directory: Path, module: str, name: str):
    """The user extension repository `module` in `directory`, registered in the running Blender if it is not yet
    (headless: no remote, no network)."""
    import bpy
    repos = bpy.context.preferences.extensions.repos
    existing = repos.get(module) if hasattr(repos, "get") else None
    if existing is None:
        existing = repos.new(name=name, module=module, custom_directory=str(directory), source='USER')
    return existing


def install_zip(zip_path: Path, directory: Path, module: str, name: str) -> str:
    """Install the zip into the repository `module` at `directory` with Blender's own operator (what "Install from
    Disk" runs); return the add-on's module name, for `addon_utils.enable`."""
    import bpy
    register_user_repo(directory, module, name)
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo=module, enable_on_install=False)
    if result != {'FINISHED'}:
        raise RuntimeError(f"installing {zip_path} failed: {result}")
    return addon_module(module)


def addon_module(repo_module: str) -> str:
    return f"bl_ext.{repo_module}.{MANIFEST['id']}"
