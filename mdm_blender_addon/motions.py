"""The scene's motion list: read motion files into plain `Motion`s, store them in the scene, read them back."""
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .backend import mocap, skeleton
from .backend.errors import UserError


@dataclass
class Motion:
    name: str
    joints: np.ndarray  # (T, 22, 3) float32, metres, HumanML3D Y-up
    fps: float
    origin: str = "FILE"  # "FILE" | "GENERATED"
    source_path: str = ""
    prompt: str = ""
    seed: int = 0
    sample: int = 0
    meta: dict = field(default_factory=dict)  # the source's own description (JSON-able scalars)


def checked_joints(joints, where: str) -> np.ndarray:
    """`joints` as (T, 22, 3) float32, or a UserError naming `where` and what is wrong."""
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.NUM_JOINTS, 3):
        raise UserError(f"{where}: joints must have shape (frames, {skeleton.NUM_JOINTS}, 3), got {joints.shape}")
    if len(joints) < 2:
        raise UserError(f"{where}: a motion needs at least 2 frames, got {len(joints)}")
    bad = ~np.isfinite(joints)
    if bad.any():
        frame, joint, _ = np.argwhere(bad)[0]
        raise UserError(f"{where}: joint positions contain NaN/inf (first at frame {frame}, joint "
                        f"{skeleton.JOINT_NAMES[joint]}); fix or re-export the motion")
    return joints.astype(np.float32)


def scalar_meta(meta: dict) -> dict:
    """The plain, non-empty entries of a result's metadata: what a motion stores and an action carries."""
    return {key: value for key, value in meta.items() if isinstance(value, (str, int, float)) and value != ""}


def read_npz(path: Path) -> list[Motion]:
    """A backend .npz (`convert`, `generate`): `joints` (T, 22, 3) or (S, T, 22, 3), one Motion per sample, and
    an optional `meta` JSON text (fps, prompt, seed, ...)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise UserError(f"{path}: not a readable .npz file ({err})") from err
    if "joints" not in arrays:
        raise UserError(f"{path}: no 'joints' array (found: {', '.join(arrays) or 'nothing'})")
    fps = float(meta.get("fps", skeleton.FPS))
    if not fps > 0:
        raise UserError(f"{path}: frame rate must be positive, got {fps}")
    samples = arrays["joints"] if arrays["joints"].ndim == 4 else arrays["joints"][None]
    prompt = meta.get("prompt") or ""
    meta = scalar_meta(meta)
    return [
        Motion(name=path.stem if len(samples) == 1 else f"{path.stem} #{s}",
               joints=checked_joints(sample, f"{path} sample {s}"), fps=fps,
               origin="GENERATED" if prompt else "FILE", source_path=str(path), prompt=prompt,
               seed=int(meta.get("seed", 0)), sample=s, meta=meta)
        for s, sample in enumerate(samples)
    ]


def read_bvh(path: Path, fps: float | None = None, skip: int = 0) -> list[Motion]:
    """Any BVH family `backend.mocap` knows, on the 22 joints at skeleton.FPS (`fps` overrides the header's)."""
    clip = mocap.load_clip(path, fps=fps, skip=skip)
    return [Motion(name=path.stem, joints=checked_joints(clip.joints, str(path)), fps=float(skeleton.FPS),
                   source_path=str(path))]


def read_motion_file(path, bvh_fps: float | None = None, bvh_skip: int = 0) -> list[Motion]:
    """The motions in a .bvh or .npz file; UserError for anything unreadable."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".bvh", ".npz"):
        raise UserError(f"{path}: unsupported motion file type (use .bvh or .npz)")
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    return read_bvh(path, bvh_fps, bvh_skip) if suffix == ".bvh" else read_npz(path)


# --- Blender side -----------------------------------------------------------------------------------------------

def add_to_scene(scene, motion: Motion):
    """Append `motion` to the scene's list (and make it the active one); return the new item."""
    motions = scene.mdm.motions
    item = motions.add()
    item.name = motion.name
    item.frames = len(motion.joints)
    item.fps = motion.fps
    item.origin = motion.origin
    item.source_path = motion.source_path
    item.prompt = motion.prompt
    item.seed = motion.seed
    item.sample = motion.sample
    item.meta = json.dumps(motion.meta)
    item["joints"] = motion.joints.ravel()
    scene.mdm.motion_index = len(motions) - 1
    return item


def motion_from_item(item) -> Motion:
    joints = np.asarray(item["joints"], dtype=np.float32).reshape(item.frames, skeleton.NUM_JOINTS, 3)
    return Motion(name=item.name, joints=joints, fps=item.fps, origin=item.origin, source_path=item.source_path,
                  prompt=item.prompt, seed=item.seed, sample=item.sample, meta=json.loads(item.meta or "{}"))


def motion_metadata(motion: Motion) -> dict:
    """What an action baked from `motion` records about its source (custom properties on the action)."""
    meta = {f"mdm_{key}": value for key, value in motion.meta.items()}
    meta.update(mdm_origin=motion.origin, mdm_fps=motion.fps, mdm_frames=len(motion.joints), mdm_sample=motion.sample)
    if motion.origin == "GENERATED":
        meta.update(mdm_prompt=motion.prompt, mdm_seed=motion.seed)
    if motion.source_path:
        meta["mdm_source_path"] = motion.source_path
    return meta


def prompt_reading(prompt: str, meta: dict) -> str | None:
    """The training caption a prompt was read as (meta's `prompt_read_as`), or None when it was read as typed."""
    read_as = meta.get("prompt_read_as")
    return read_as if read_as and read_as != prompt else None


def action_name(motion: Motion) -> str:
    """A new action's name from its source: the prompt and seed, or the file's motion name."""
    if motion.origin == "GENERATED" and motion.prompt:
        return f"{motion.prompt[:40]} (seed {motion.seed})"
    return motion.name
