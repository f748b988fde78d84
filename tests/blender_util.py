"""Helpers for tests that drive real Blender (the `bpy` module): build and install the extension, make rigs.

Import `bpy` only inside these functions (it loads once per process and takes seconds), never at module level.
"""
import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPO_MODULE = "mdm_test_repo"  # the headless user extension repository the tests install into
MANIFEST = tomllib.loads((REPO / "blender_manifest.toml").read_text())
ADDON_MODULE = f"bl_ext.{REPO_MODULE}.{MANIFEST['id']}"

# Mixamo's names for the 22 HumanML3D joints (with the "mixamorig:" namespace of its FBX exports).
MIXAMO_NAMES = (
    "Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftLeg", "RightLeg", "Spine1", "LeftFoot", "RightFoot", "Spine2",
    "LeftToeBase", "RightToeBase", "Neck", "LeftShoulder", "RightShoulder", "Head", "LeftArm", "RightArm",
    "LeftForeArm", "RightForeArm", "LeftHand", "RightHand",
)


def build_extension(output_dir: Path) -> Path:
    """Run build.py (a real subprocess, as a user would) and return the zip it made."""
    result = subprocess.run([sys.executable, str(REPO / "build.py"), "--output-dir", str(output_dir)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return output_dir / f"{MANIFEST['id']}-{MANIFEST['version']}.zip"


def add_test_repo(directory: Path):
    """A user extension repository in `directory`, usable headless (no remote, no network)."""
    import bpy
    repos = bpy.context.preferences.extensions.repos
    existing = repos.get(REPO_MODULE) if hasattr(repos, "get") else None
    if existing is None:
        existing = repos.new(name="MDM tests", module=REPO_MODULE, custom_directory=str(directory), source='USER')
    return existing


def install_zip(zip_path: Path, repo_dir: Path) -> Path:
    """Install the built zip with Blender's own operator; return the installed package folder."""
    import bpy
    add_test_repo(repo_dir)
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo=REPO_MODULE,
                                                       enable_on_install=False)
    assert result == {'FINISHED'}, result
    return repo_dir / MANIFEST["id"]


def enable_addon(repo_dir: Path):
    """Reset Blender to an empty factory state, register the test repo and enable the installed add-on."""
    import addon_utils
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    add_test_repo(repo_dir)
    module = addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=_raise)
    assert module is not None, f"could not enable {ADDON_MODULE}"
    return importlib.import_module(ADDON_MODULE)


def disable_addon() -> None:
    import addon_utils
    addon_utils.disable(ADDON_MODULE, default_set=True, handle_error=_raise)


def _raise(err):
    raise err


def add_rigify_metarig():
    """Rigify's human metarig (Blender's bundled add-on), as a real production skeleton."""
    import addon_utils
    import bpy
    addon_utils.enable("rigify", default_set=True, handle_error=_raise)
    bpy.ops.object.armature_human_metarig_add()
    return bpy.context.active_object


def add_armature(name: str, bones, scale: float = 1.0, rotation_mode: str = 'QUATERNION'):
    """An armature object from (bone name, head, tail, parent index) rows in metres, object scaled by `scale`
    (its bones are stored in 1/scale units, like a centimetre FBX import)."""
    import bpy
    ob = bpy.data.objects.new(name, bpy.data.armatures.new(name))
    bpy.context.collection.objects.link(ob)
    ob.scale = (scale,) * 3
    bpy.context.view_layer.objects.active = ob
    bpy.ops.object.mode_set(mode='EDIT')
    edit_bones = []
    for bone_name, head, tail, parent in bones:
        bone = ob.data.edit_bones.new(bone_name)
        bone.head = [c / scale for c in head]
        bone.tail = [c / scale for c in tail]
        if parent >= 0:
            bone.parent = edit_bones[parent]
        edit_bones.append(bone)
    bpy.ops.object.mode_set(mode='OBJECT')
    for pose_bone in ob.pose.bones:
        pose_bone.rotation_mode = rotation_mode
    return ob


def add_mixamo_rig(addon, root_bone=False):
    """A Mixamo-named rig ("mixamorig:" names, centimetre bones under a 0.01 object scale, Euler ZXY bones):
    the HumanML3D proportions with other names, units and rotation modes than our own skeleton. With
    `root_bone`, a "Root" bone on the floor parents the hips (as in game rigs)."""
    from backend import skeleton
    joints = addon.rig.smpl_rest_joints()
    tails = addon.rig.smpl_bone_tails(joints)
    shift = 1 if root_bone else 0
    bones = [("Root", (0, 0, 0), (0, 0.2, 0), -1)] if root_bone else []
    bones += [(f"mixamorig:{MIXAMO_NAMES[j]}", joints[j], tails[j], skeleton.PARENTS[j] + shift if j else shift - 1)
              for j in range(skeleton.NUM_JOINTS)]
    return add_armature("Mixamo", bones, scale=0.01, rotation_mode='ZXY')


def import_bvh_armature(path: Path, scale: float):
    """An armature with its own action, made by Blender's bundled BVH importer."""
    import bpy
    bpy.ops.import_anim.bvh(filepath=str(path), global_scale=scale, update_scene_fps=False,
                            update_scene_duration=False)
    return bpy.context.active_object


def keyed_bones(action, ob) -> set[str]:
    """Names of the bones an action keys (slot-aware on 4.4+, `Action.fcurves` before)."""
    return {fc.data_path.split('"')[1] for fc in action_fcurves(action, ob)}


def action_fcurves(action, ob):
    """The F-curves `ob` plays from `action`: its slot's channelbag on 4.4+, `Action.fcurves` before."""
    if not hasattr(action, "slots"):
        return list(action.fcurves)
    slot = ob.animation_data.action_slot
    return [fc for layer in action.layers for strip in layer.strips
            if strip.channelbag(slot) is not None for fc in strip.channelbag(slot).fcurves]


def install_built_extension(tmp_path_factory) -> Path:
    """Build the zip with build.py and install it with Blender's extension operator; return the repo folder."""
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    zip_path = build_extension(tmp_path_factory.mktemp("dist"))
    repo_dir = tmp_path_factory.mktemp("extensions")
    install_zip(zip_path, repo_dir)
    return repo_dir


# A Python with torch for the subprocess backend (the bpy test process may have none: the 4.2 venv).
TORCH_PYTHON = Path(os.environ.get("MDM_TORCH_PYTHON", REPO / ".venv" / "bin" / "python"))


def small_checkpoint(directory: Path, diffusion_steps=100, text_encoder="minilm") -> Path:
    """A real, tiny, untrained keyframe-conditioned MDM checkpoint folder (statistics from a CMU walk), written by
    TORCH_PYTHON in a subprocess, so that test processes without torch can make one too."""
    script = f"""
import sys
sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]
import numpy as np, torch
from backend import checkpoints, features, keyframes, mocap
from backend.model import MDM, MDMConfig
from conftest import MOCAP_DIR
walk = features.joints_to_features(mocap.load_clip(MOCAP_DIR / "mb_misc" / "02_01.bvh").joints)
torch.manual_seed(0)
config = MDMConfig(latent_dim=32, num_layers=1, ff_size=64, diffusion_steps={diffusion_steps},
                   text_encoder={text_encoder!r}, cond_dim={384 if text_encoder == "minilm" else 512},
                   mask_frames=True, keyframe_dim=keyframes.KEY_DIM)
checkpoints.save_folder({str(directory)!r}, MDM(config), config, walk.mean(0), np.maximum(walk.std(0), 1e-2),
                        {{"frames": {{"fps": 20, "min_frames": 20, "max_frames": 120}},
                         "action_prompts": {{"walk": "a person walks forward."}}}})
"""
    result = subprocess.run([str(TORCH_PYTHON), "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return directory
