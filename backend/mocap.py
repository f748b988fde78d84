"""Motion-capture BVH skeletons onto the 22 HumanML3D joints: family tables, auto-detection, loading at 20 fps."""
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import skeleton
from .bvh import END_SITE, forward_kinematics, read_bvh
from .errors import UserError

ASF_METRES = 0.056444  # one CMU ASF length unit in metres: (1.0 / 0.45) * 2.54 / 100 (CMU FAQ)
CM_METRES = 0.01
MIN_FRAMES = 2  # at 20 fps: the 263 features are per transition, so one frame makes none
# The CMU folder of the shared data (index.csv and its BVH files), ../shared beside the repository: the default of
# prepare-data and of the benchmarks.
DEFAULT_MOCAP_DIR = Path(__file__).resolve().parents[2] / "shared" / "mocap" / "cmu"


@dataclass(frozen=True)
class Family:
    """How one skeleton family's joints give the 22 HumanML3D joints.

    `joints` lists the centre and left joints (README table); a right joint uses the mirrored source names, made
    by swapping `left_prefix` for `right_prefix`. A source is a joint name, or (a, b, t) for the point
    a + t·(b - a) between two joint positions. End Sites are named "<joint> End Site".
    """

    metres_per_unit: float
    left_prefix: str
    right_prefix: str
    joints: dict


FAMILIES = {
    "cmu_mb": Family(ASF_METRES, "Left", "Right", {
        "pelvis": "Hips", "left_hip": "LeftUpLeg", "spine1": "Spine", "left_knee": "LeftLeg", "spine2": "Spine1",
        "left_ankle": "LeftFoot", "spine3": ("Spine1", "Neck1", 0.5), "left_foot": "LeftToeBase", "neck": "Neck1",
        "left_collar": ("Spine1", "LeftArm", 0.5), "head": "Head", "left_shoulder": "LeftArm",
        "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
    }),
    "cmu_asf": Family(ASF_METRES, "l", "r", {
        "pelvis": "hip", "left_hip": "lfemur", "spine1": "upperback", "left_knee": "ltibia", "spine2": "thorax",
        "left_ankle": "lfoot", "spine3": ("thorax", "upperneck", 0.5), "left_foot": "ltoes", "neck": "upperneck",
        "left_collar": ("thorax", "lhumerus", 0.5), "head": "head", "left_shoulder": "lhumerus",
        "left_elbow": "lradius", "left_wrist": "lwrist",
    }),
    "cmu_daz": Family(CM_METRES, "l", "r", {
        "pelvis": ("hip", "abdomen", 0.45), "left_hip": "lThigh", "spine1": "abdomen", "left_knee": "lShin",
        "spine2": "chest", "left_ankle": "lFoot", "spine3": ("chest", "neck", 0.25),
        "left_foot": ("lFoot", "lFoot" + END_SITE, 0.6), "neck": "neck", "left_collar": "lCollar", "head": "head",
        "left_shoulder": "lShldr", "left_elbow": "lForeArm", "left_wrist": "lHand",
    }),
    "cmu_max": Family(ASF_METRES, "Left", "Right", {
        "pelvis": "Hips", "left_hip": "LeftHip", "spine1": "Chest", "left_knee": "LeftKnee", "spine2": "Chest2",
        "left_ankle": "LeftAnkle", "spine3": ("Chest2", "Neck", 0.5), "left_foot": "LeftToe", "neck": "Neck",
        "left_collar": ("Chest2", "LeftShoulder", 0.5), "head": "Head", "left_shoulder": "LeftShoulder",
        "left_elbow": "LeftElbow", "left_wrist": "LeftWrist",
    }),
    "cmu_cc": Family(CM_METRES, "CC_Base_L_", "CC_Base_R_", {
        "pelvis": "CC_Base_Pelvis", "left_hip": "CC_Base_L_Thigh", "spine1": "CC_Base_Spine01",
        "left_knee": "CC_Base_L_Calf", "spine2": "CC_Base_Spine02", "left_ankle": "CC_Base_L_Foot",
        "spine3": ("CC_Base_Spine02", "CC_Base_NeckTwist01", 0.2), "left_foot": "CC_Base_L_ToeBase",
        "neck": "CC_Base_NeckTwist01", "left_collar": "CC_Base_L_Clavicle", "head": "CC_Base_Head",
        "left_shoulder": "CC_Base_L_Upperarm", "left_elbow": "CC_Base_L_Forearm", "left_wrist": "CC_Base_L_Hand",
    }),
    # Our own export (`bvh.joints_to_bvh`): the 22 joints by name, in metres.
    "humanml3d": Family(1.0, "left_", "right_", {n: n for n in skeleton.JOINT_NAMES if not n.startswith("right_")}),
}


@dataclass
class Clip:
    """A mocap clip on the 22 HumanML3D joints."""

    joints: np.ndarray  # (T, 22, 3) metres, Y-up, at skeleton.FPS
    family: str
    source_fps: float  # the frame rate the source frames were read at
    source_frames: int  # frames in the file, skipped T-pose frames included
    skipped_frames: int


def family_sources(family):
    """{HumanML3D joint: source} for all 22 joints of a `Family`, the right side mirrored from the left."""
    def mirror(name):
        return family.right_prefix + name[len(family.left_prefix):] if name.startswith(family.left_prefix) else name

    sources = {}
    for joint in skeleton.JOINT_NAMES:
        left = joint.replace("right_", "left_")
        source = family.joints[left]
        if joint != left:
            source = (mirror(source[0]), mirror(source[1]), source[2]) if isinstance(source, tuple) else mirror(source)
        sources[joint] = source
    return sources


def source_names(source):
    """The joint names a source reads: (name,) or the two ends of a lerp."""
    return source[:2] if isinstance(source, tuple) else (source,)


def bare_name(name):
    """A joint name without an exporter's namespace ("mixamorig:Hips" -> "Hips")."""
    return name.rsplit(":", 1)[-1]


def _missing_joints(sources, names):
    """The HumanML3D joints whose source names are not all in `names`, with the missing source names."""
    missing = {}
    for joint, source in sources.items():
        absent = [n for n in source_names(source) if n not in names]
        if absent:
            missing[joint] = absent
    return missing


def detect_family(names, source="BVH"):
    """The family whose joints all exist in `names` (namespace prefixes ignored), else UserError naming the gaps."""
    gaps = {family: _missing_joints(family_sources(FAMILIES[family]), {bare_name(n) for n in names})
            for family in FAMILIES}
    for family, missing in gaps.items():
        if not missing:
            return family
    closest = min(gaps, key=lambda family: len(gaps[family]))
    raise UserError(f"{source}: unknown skeleton. Closest known family is {_describe_gaps(closest, gaps[closest])}. "
                    f"Known families: {', '.join(FAMILIES)}.")


def check_family(names, family, source="BVH"):
    """UserError unless `family` is known and all its source joints exist in `names`."""
    if family not in FAMILIES:
        raise UserError(f"unknown skeleton family {family!r}; known: {', '.join(FAMILIES)}")
    missing = _missing_joints(family_sources(FAMILIES[family]), {bare_name(n) for n in names})
    if missing:
        raise UserError(f"{source}: not a {_describe_gaps(family, missing)}")


def _describe_gaps(family, missing):
    listed = ", ".join(f"{joint} (needs {' and '.join(absent)})" for joint, absent in missing.items())
    return f"{family} skeleton: {len(missing)} of the {skeleton.NUM_JOINTS} joints cannot be mapped: {listed}"


def map_joints(bvh, family_name):
    """(F, 22, 3) HumanML3D joint positions in metres from every frame of a parsed BVH."""
    family = FAMILIES[family_name]
    index = {bare_name(n): i for i, n in enumerate(bvh.names)}
    sources = family_sources(family)
    used = sorted({index[n] for source in sources.values() for n in source_names(source)})
    positions, _ = forward_kinematics(bvh, used)  # (F, J, 3) file units
    joints = np.empty((bvh.num_frames, skeleton.NUM_JOINTS, 3))
    for j, source in enumerate(sources.values()):
        if isinstance(source, tuple):
            a, b, t = positions[:, index[source[0]]], positions[:, index[source[1]]], source[2]
            joints[:, j] = a + t * (b - a)
        else:
            joints[:, j] = positions[:, index[source]]
    return joints * family.metres_per_unit


def resample(frames, source_fps, target_fps):
    """Linear interpolation in time along axis 0, from `source_fps` to `target_fps`, starting at frame 0."""
    duration = (len(frames) - 1) / source_fps
    count = int(np.floor(duration * target_fps + 1e-6)) + 1
    position = np.minimum(np.arange(count) * (source_fps / target_fps), len(frames) - 1)  # in source frames
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(frames) - 1)
    weight = (position - below).reshape((-1,) + (1,) * (frames.ndim - 1))
    return frames[below] * (1 - weight) + frames[above] * weight


def load_clip(path, fps=None, skip=0, family=None):
    """Read a BVH clip onto the 22 joints at `skeleton.FPS`.

    `fps` is the true source frame rate (default: the header's, which CMU conversions often get wrong);
    `skip` leading frames (T-pose) are dropped; `family` is detected from the joint names when None.
    """
    bvh = read_bvh(path)
    if family is None:
        family = detect_family(bvh.names, source=str(path))
    else:
        check_family(bvh.names, family, source=str(path))
    source_fps = float(fps) if fps is not None else 1.0 / bvh.frame_time
    if not source_fps > 0:
        raise UserError(f"{path}: frame rate must be positive, got {source_fps}")
    if skip < 0 or skip >= bvh.num_frames:
        raise UserError(f"{path}: cannot skip {skip} frames of a {bvh.num_frames}-frame clip")
    positions = map_joints(bvh, family)[skip:]  # (F - skip, 22, 3)
    broken = np.flatnonzero(~np.isfinite(positions).all(axis=(1, 2)))
    if len(broken):
        raise UserError(f"{path}: frame {skip + broken[0]} (counting from 0) gives NaN or infinite joint positions")
    joints = resample(positions, source_fps, skeleton.FPS)
    if len(joints) < MIN_FRAMES:
        raise UserError(
            f"{path}: too short: {bvh.num_frames - skip} frames at {source_fps:g} fps give {len(joints)} frame(s) "
            f"at {skeleton.FPS} fps; at least {MIN_FRAMES} are needed ({(MIN_FRAMES - 1) / skeleton.FPS:g} s)"
        )
    return Clip(joints, family, source_fps, bvh.num_frames, skip)


@dataclass(frozen=True)
class IndexedClip:
    """One row of a mocap `index.csv`, with the frame rate the file really has."""

    path: Path
    family: str | None  # None: detect from the joint names
    fps: float | None  # None: the BVH header's rate
    tpose_frames: int
    split: str
    description: str


# cgspeed's Daz files open with one T-pose frame and about three frames blending from it into the motion (at 120
# fps the hands sweep half a metre in 30 ms; kept, they drag a clip's floor down by up to 18 cm); index.csv counts
# only the T-pose frame.
DAZ_TPOSE_BLEND_FRAMES = 4


def leading_frames_to_skip(family, tpose_frames):
    return max(tpose_frames, DAZ_TPOSE_BLEND_FRAMES) if family == "cmu_daz" and tpose_frames else tpose_frames


def read_index(index_csv):
    """Rows of a mocap `index.csv` laid out like the shared CMU one (only `file` is required).

    The true rate is `cmu_stated_fps` (the cgspeed headers say 120 for CMU's 60 fps trials), except for the
    iClone (`cmu_cc`) files: iClone re-exported them at 60 fps, which their header states correctly, while
    `cmu_stated_fps` keeps the 120 fps of the original capture. A missing column means: the BVH header's rate
    (fps None), no T-pose frames, the family detected from the joint names (family None), no split.
    """
    index_csv = Path(index_csv)
    with open(index_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        IndexedClip(
            path=index_csv.parent / row["file"],
            family=row.get("skeleton") or None,
            fps=_true_fps(row),
            tpose_frames=leading_frames_to_skip(row.get("skeleton"), int(row.get("tpose_frames") or 0)),
            split=row.get("split", ""),
            description=row.get("description", ""),
        )
        for row in rows
    ]


def index_columns(index_csv) -> set:
    """The column names in the header of a mocap `index.csv`."""
    with open(index_csv, newline="") as f:
        return set(csv.DictReader(f).fieldnames or ())


def _true_fps(row):
    rate = row.get("fps") if row.get("skeleton") == "cmu_cc" else row.get("cmu_stated_fps")
    return float(rate) if rate else None
