"""Retargeting: 22 joint positions onto any humanoid armature, as per-bone local rotations plus root location.

Everything here is numpy (the add-on bundles it); bpy stays in the add-on, which reads an armature into a
`RigDescription` and writes the returned arrays as keyframes.

Method (design.md "Retargeting"). Each mapped bone follows one segment of the 22-joint skeleton: from its joint to
the joint's first mapped child (`SEGMENT_ENDS`: pelvis -> spine1, spine3 -> neck, collar -> shoulder, ...). For
each bone we build an orthonormal frame from that segment and a second axis that fixes the twist
(`_second_axes`: the hip line for pelvis and lower spine, the shoulder line for the chest and neck, the torso's up
axis for the collars, the knee/elbow/ankle hinge for limbs), once on the rig's rest joints and once per frame on
the motion. The bone's world change is then

    D = F(motion segment, motion axis) @ F(rest segment, rest axis)^T        (armature space, one per bone)

so its rest segment lands exactly on the motion's segment and its rest hinge on the motion's hinge. D never looks
at the bone's own axes, so the result is the same for any bone roll and any rest pose (T, A or N) of the same
character. Blender's pose is relative to the rest pose in the parent's posed frame; with W = D @ R_rest for both:

    pose_bone.rotation_quaternion = R_rest^T @ D_parent^T @ D @ R_rest

A rig whose mapped bones follow constraints (a generated Rigify rig) is posed through `Controls`: the mapped bones
still mark the joints, and each gets its joint's D as above, but the keys go onto the controls that drive them
(same D: a control turns what it drives rigidly), and the travel onto the control above them all. Where a bone
follows another through a constraint rather than by parenting, `Controls.parents` says so.

Bones that are not mapped (twist bones, Rigify's pelvis/breast bones, extra spine or neck bones, fingers) keep
their rest pose relative to their parent (D = D_parent), so they follow rigidly; those above mapped bones must
really be at rest when the result plays (`Retargeted.held_bones`). Joints without a child (wrists,
toes, head) keep their rest pose relative to the parent segment: positions carry no information about them.

The hinge of a nearly straight limb is undefined, so below a 30-degree bend it is blended with an anatomical
default (`_hinge`): the neutral hinge of the limb (knee: the hip line; elbow: bent forward from a T-pose) carried to
the limb's current direction by the shortest swing. The hinge's sign follows the previous frame, so a knee that
hyperextends a little, or a leg that rotates at the hip while bent (a roundhouse kick), keeps a continuous twist.
Above 30 degrees the measured bend plane is used as it is, so knees and elbows turn about their hinge only.

Root: the motion is scaled by the ratio of leg lengths (rig / motion), turned to the rig's facing and placed where
the rig stands. Other proportions (thigh/shin ratio, hip width, feet) would still make planted feet float, sink
or slide, and only the root may move without changing a bone's direction, so `stance_shift` moves it: the source's
feet on the ground (contact spans from their heights) are pinned, horizontally by matching their steps and
vertically by matching their height, and the root is lifted where a rig foot would be under the floor or on the
ground while the source's is in the air; weights blend in and out over STANCE_BLEND, so nothing pops. With the
motion's own proportions the shift is zero.
"""
from dataclasses import dataclass, field, replace

import numpy as np

from . import metrics, skeleton
from .errors import UserError
from .features import gaussian_filter1d
from .rotations import (axis_angle_to_quaternion, matrix_to_quaternion, qbetween, qfix, qrot, quaternion_to_matrix,
                        unit)

J = skeleton.JOINT_INDEX
ROOT_MODES = ("motion", "in_place", "root_bone")
REQUIRED_JOINTS = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                   "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")
# The joint a bone points at, in order of preference when a rig has no bone for the first (e.g. no spine2).
SEGMENT_ENDS = {
    "pelvis": ("spine1", "spine2", "spine3", "neck", "head"),
    "spine1": ("spine2", "spine3", "neck", "head"),
    "spine2": ("spine3", "neck", "head"),
    "spine3": ("neck", "head"),
    "neck": ("head",),
    **{f"{side}_{a}": (f"{side}_{b}",) for side in skeleton.SIDES for a, b in (
        ("hip", "knee"), ("knee", "ankle"), ("ankle", "foot"),
        ("collar", "shoulder"), ("shoulder", "elbow"), ("elbow", "wrist"))},
}
FOOT_JOINTS = tuple(J[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot"))
# A limb's hinge leans on its anatomical default with weight HINGE_BLEND at a straight limb, fading to 0 at a bend
# of HINGE_EXACT (sin of ~30 degrees): above that the measured bend plane is used as it is.
HINGE_BLEND = 0.1
HINGE_EXACT = 0.5
STANCE_BLEND = 0.1  # seconds over which a foot takes or gives up the stance (`stance_shift`)
AIRBORNE = 1.1  # a foot in the air clears this many contact heights, or the source's height if lower: a clear
# margin, so that rounding (Blender's float32 pose) cannot put it back on the ground
MIN_SEGMENT = 1e-3  # rest segments shorter than this share of the leg length point nowhere


@dataclass(frozen=True)
class RigDescription:
    """An armature as plain arrays (what the add-on reads from `armature.data.bones` and the object)."""

    names: tuple  # (B,) bone names
    parents: np.ndarray  # (B,) parent index, -1 for a root; any order
    rest: np.ndarray  # (B, 4, 4) `bone.matrix_local`: rest pose in armature space, roll included
    world: np.ndarray = field(default_factory=lambda: np.eye(4))  # armature object's `matrix_world`

    @property
    def heads(self):
        return self.rest[:, :3, 3]

    def require_even_scale(self, name: str) -> None:
        """UserError when the object scales its axes unevenly: Blender would shear the posed bones off the
        directions solved for them (4-12 degrees at 1.25 on one axis). A mirroring scale is even."""
        scales = np.linalg.svd(self.world[:3, :3], compute_uv=False)
        if scales.max() > scales.min() * (1 + 1e-3):
            raise UserError(f"'{name}' is scaled unevenly (its axes by {', '.join(f'{s:.3g}' for s in scales)}): "
                            "apply its scale (Object > Apply > Scale) first, or scale it evenly")

    def index(self, name):
        try:
            return self.names.index(name)
        except ValueError:
            raise UserError(f"bone {name!r} is not in the armature (it has {len(self.names)} bones)") from None

    def order(self):
        """Bone indices with every parent before its children."""
        depth = np.zeros(len(self.names), dtype=int)
        for b in range(len(self.names)):
            p = self.parents[b]
            while p >= 0:
                depth[b] += 1
                p = self.parents[p]
        return np.argsort(depth, kind="stable")


@dataclass(frozen=True)
class Controls:
    """How to pose a rig whose mapped bones follow constraints rather than their own keys (a generated Rigify rig,
    `bone_maps.CONTROL_RIGS`): the mapped bones still mark the joints; the controls that drive them are keyed.

    Every control must make what it drives turn with it rigidly, which the rig's switches (`switches`, keyed by the
    add-on) arrange; bones between a control and the one it follows (mechanism bones) stay at rest relative to it.
    """

    bones: dict  # {mapped bone: the control keyed with its joint's rotation}
    root: str  # the control above all others that carries the pelvis's travel (its rotation stays at rest)
    parents: dict = field(default_factory=dict)  # {bone: the bone it follows by a constraint, not by parenting}
    switches: dict = field(default_factory=dict)  # {(control, custom property): value} that make the rig follow
    # these controls (FK, no isolation), keyed at every frame


@dataclass
class Retargeted:
    """What the add-on keys. Rotations are `pose_bone.rotation_quaternion` (w, x, y, z), sign-continuous over
    time; locations are `pose_bone.location`. `joints` is where the rig's mapped joints land (world, metres)."""

    bones: tuple  # (N,) bone names, parents before children
    rotations: np.ndarray  # (T, N, 4)
    location_bones: tuple  # (M,) the pelvis bone (or `Controls.root`), and in 'root_bone' mode the root bone before it
    locations: np.ndarray  # (T, M, 3)
    held_bones: tuple  # unmapped bones above mapped ones (LowerBack, spine.005, ...): the result assumes them at
    # rest, so key or reset them to rest too (other unmapped bones, e.g. fingers, may keep their animation)
    joints: np.ndarray  # (T, 22, 3) world positions of the rig's joints (NaN where a joint has no bone)
    placement: np.ndarray  # (4, 4) motion (Blender axes: joints @ HML_TO_BLENDER.T) -> world: scale, turn, offset
    scale: float  # rig leg length / motion leg length


def bone_rest_matrix(head, tail, roll=0.0):
    """(4, 4) `bone.matrix_local` of an edit bone from head, tail and roll (Blender's `vec_roll_to_mat3`).

    Lets a script or test build exactly the rest matrices Blender would make, without bpy.
    """
    head, tail = np.asarray(head, float), np.asarray(tail, float)
    x, y, z = (tail - head) / np.linalg.norm(tail - head)
    theta, theta_alt = 1.0 + y, x * x + z * z
    if theta > 6.1e-3 or theta_alt > 2.5e-4**2:
        if theta <= 6.1e-3:  # close to -Y: recompute theta from x and z for precision, as Blender does
            theta = theta_alt * 0.5 + theta_alt * theta_alt * 0.125
        bone = np.array([[1 - x * x / theta, x, -x * z / theta],
                         [-x, y, -z],
                         [-x * z / theta, z, 1 - z * z / theta]])
    else:  # pointing along -Y: 180 degrees about Z
        bone = np.diag([-1.0, -1.0, 1.0])
    matrix = np.eye(4)
    matrix[:3, :3] = quaternion_to_matrix(axis_angle_to_quaternion(np.array([x, y, z]), roll)) @ bone
    matrix[:3, 3] = head
    return matrix


def retarget(joints, rig: RigDescription, bone_map: dict, root_mode="motion", root_bone=None,
             plant_feet=True, fps=skeleton.FPS, controls: Controls = None) -> Retargeted:
    """Drive `rig` with a motion of 22 joints.

    joints: (T, 22, 3) HumanML3D joint positions, metres, Y-up, at `fps`. bone_map: {joint name: bone name} over
    `skeleton.JOINT_NAMES` (see `bone_maps.detect`). root_mode: 'motion' (the pelvis travels), 'in_place' (no
    horizontal travel) or 'root_bone' (horizontal travel on `root_bone`, default: the pelvis bone's top ancestor).
    controls: for a rig whose mapped bones follow constraints, the controls to key instead (`Controls`).
    """
    if root_mode not in ROOT_MODES:
        raise UserError(f"root mode {root_mode!r} is unknown; choose one of {', '.join(ROOT_MODES)}")
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.NUM_JOINTS, 3) or len(joints) == 0:
        raise UserError(f"motion must be (frames, {skeleton.NUM_JOINTS}, 3) joint positions, got {joints.shape}")
    if controls is not None:
        rig = _followed(rig, controls.parents)
    bone_of = map_bones(rig, bone_map)  # {joint index: bone index}: where the joints are
    drive_of, root = _drive(rig, bone_of, controls)  # {joint: the bone keyed with its rotation}, the travelling one
    linear, origin = rig.world[:3, :3], rig.world[:3, 3]
    to_world = _orthonormal(linear)  # armature -> world rotation, object scale removed
    rest = _fill_missing(rig.heads[list(bone_of.values())] @ linear.T + origin, list(bone_of))  # (22, 3) world

    # 1. The motion in the rig's world: Z-up, scaled to the rig's legs, turned to its facing, where it stands.
    motion = joints @ skeleton.HML_TO_BLENDER.T  # (T, 22, 3)
    scale = _leg_length(rest) / _leg_length(motion).mean()
    yaw = _yaw_matrix(_facing(rest))
    feet = [j for j in FOOT_JOINTS if j in bone_of]
    floor = rest[feet, 2].min()  # the motion's lowest foot joint level goes to the rig's at rest
    motion_floor = motion[:, feet, 2].min()
    placement = np.eye(4)
    placement[:3, :3] = scale * yaw
    placement[:3, 3] = [rest[0, 0], rest[0, 1], floor] - placement[:3, :3] @ [*motion[0, 0, :2], motion_floor]
    placed = motion @ placement[:3, :3].T + placement[:3, 3]  # (T, 22, 3)

    # 2. One world rotation per mapped joint: rest frame -> motion frame (the module docstring's D).
    ends = {j: _segment_end(j, bone_of, rest) for j in bone_of}
    if ends[0] is None:
        raise UserError(f"the pelvis bone {bone_map['pelvis']!r} and the mapped spine bones start at one point: "
                        "map pelvis to a bone below the spine")
    change = _world_changes(placed, rest, ends)  # (T, 22, 3, 3)
    bone_change = _bone_changes(rig, (bone_of, drive_of), change, to_world)  # (T, B, 3, 3) armature space
    heads = _posed_heads(rig, bone_change)  # (T, B, 3) armature space, before any location
    mapped, bones = list(bone_of), list(bone_of.values())
    offsets = (heads[:, bones] - heads[:, None, bone_of[0]]) @ linear.T  # (T, M, 3) joint - pelvis, world

    # 3. The pelvis path: scaled; with `plant_feet`, shifted so that the rig's feet keep the source's contacts.
    pelvis = placed[:, 0].copy()
    if plant_feet:
        rig_feet = offsets[:, [mapped.index(j) for j in feet]] + pelvis[:, None]
        # a source foot point is on the ground within CONTACT_HEIGHT of the lowest it gets (a heel rests higher)
        on_ground = placed[:, feet, 2] - placed[:, feet, 2].min(axis=0) < metrics.CONTACT_HEIGHT * scale
        pelvis += stance_shift(placed[:, feet], rig_feet, on_ground, floor, metrics.CONTACT_HEIGHT * scale, fps)
    if root_mode == "in_place":
        pelvis[:, :2] = rest[0, :2]

    # 4. Per bone of the rig, in armature space: pose-bone rotations and locations.
    keyed = [b for b in rig.order() if b in drive_of.values() or b == root]
    rest_rot = _orthonormal(rig.rest[:, :3, :3])
    local = np.empty((len(motion), len(keyed), 3, 3))
    for i, b in enumerate(keyed):
        parent_change = bone_change[:, rig.parents[b]] if rig.parents[b] >= 0 else np.eye(3)
        local[:, i] = rest_rot[b].T @ np.swapaxes(parent_change, -1, -2) @ bone_change[:, b] @ rest_rot[b]
    to_armature = np.linalg.inv(rig.world)
    travel = pelvis @ to_armature[:3, :3].T + to_armature[:3, 3] - heads[:, bone_of[0]]  # (T, 3) armature space
    location_bones, locations = _root_locations(rig, root, travel, root_mode, root_bone)
    posed = np.full(motion.shape, np.nan)
    posed[:, mapped] = offsets + pelvis[:, None]
    above = {a for b in keyed for a in _ancestors(rig, b)}
    return Retargeted(
        bones=tuple(rig.names[b] for b in keyed),
        rotations=qfix(matrix_to_quaternion(local)),
        location_bones=location_bones,
        locations=locations,
        held_bones=tuple(rig.names[b] for b in rig.order() if b in above and b not in keyed),
        joints=posed,
        placement=placement,
        scale=float(scale),
    )


def to_motion_frame(result: Retargeted, points):
    """World points (..., 3) -> the input motion's frame and scale (HumanML3D axes, Y-up, metres), so that the
    baked rig can be measured with `metrics` beside the motion it came from."""
    inverse = np.linalg.inv(result.placement)
    return (np.asarray(points) @ inverse[:3, :3].T + inverse[:3, 3]) @ skeleton.HML_TO_BLENDER


def quaternion_to_euler(q, order="XYZ"):
    """(T, 4) w-first quaternions -> (T, 3) Euler angles (radians, Blender's `order`), continuous over time.

    Each frame takes whichever of the two equivalent Euler triples, shifted by whole turns, lies closest to the
    previous frame's, like Blender's `to_euler(order, compatible)`, so keys never jump by 360 degrees.
    """
    matrix = quaternion_to_matrix(np.asarray(q, dtype=np.float64))
    first, second = _matrix_to_euler(matrix, order)
    euler = np.empty_like(first)
    previous = first[0]
    for t in range(len(first)):
        candidates = np.stack([first[t], second[t]])
        candidates -= 2 * np.pi * np.round((candidates - previous) / (2 * np.pi))
        previous = euler[t] = candidates[np.argmin(np.abs(candidates - previous).sum(axis=1))]
    return euler


def _matrix_to_euler(matrix, order):
    """Both Euler solutions of (T, 3, 3) rotations for Blender's order (its `mat3_normalized_to_eulO2`)."""
    if sorted(order) != ["X", "Y", "Z"]:
        raise UserError(f"rotation order {order!r} is not one of XYZ, XZY, YXZ, YZX, ZXY, ZYX")
    i, j, k = ("XYZ".index(a) for a in order)
    parity = order not in ("XYZ", "YZX", "ZXY")
    m = np.swapaxes(matrix, -1, -2)  # Blender indexes mat[column][row]
    cy = np.hypot(m[:, i, i], m[:, i, j])
    first, second = np.empty((len(m), 3)), np.empty((len(m), 3))
    first[:, i] = np.arctan2(m[:, j, k], m[:, k, k])
    first[:, j] = np.arctan2(-m[:, i, k], cy)
    first[:, k] = np.arctan2(m[:, i, j], m[:, i, i])
    second[:, i] = np.arctan2(-m[:, j, k], -m[:, k, k])
    second[:, j] = np.arctan2(-m[:, i, k], -cy)
    second[:, k] = np.arctan2(-m[:, i, j], -m[:, i, i])
    gimbal = cy <= 16 * np.finfo(np.float32).eps
    first[gimbal, i] = np.arctan2(-m[gimbal, k, j], m[gimbal, j, j])
    first[gimbal, k] = 0
    second[gimbal] = first[gimbal]
    return (-first, -second) if parity else (first, second)


def map_bones(rig: RigDescription, bone_map: dict) -> dict:
    """{joint index: bone index} of `bone_map` (joint name -> bone name) on `rig`; UserError for a map that cannot
    drive it (unknown joints or bones, required joints missing, a bone used twice)."""
    unknown = sorted(set(bone_map) - set(skeleton.JOINT_NAMES))
    if unknown:
        raise UserError(f"bone map has unknown joint names {unknown}; joints are {', '.join(skeleton.JOINT_NAMES)}")
    missing = [j for j in REQUIRED_JOINTS if not bone_map.get(j)]
    if missing:
        raise UserError(f"bone map lacks required joints: {', '.join(missing)}. Map them to bones of the armature")
    if not any(bone_map.get(j) for j in SEGMENT_ENDS["pelvis"]):
        raise UserError("bone map has no spine, neck or head bone: map at least one of "
                        + ", ".join(SEGMENT_ENDS["pelvis"]))
    bones = [b for b in bone_map.values() if b]
    if len(set(bones)) != len(bones):
        raise UserError("bone map uses a bone for two joints: " + ", ".join(sorted({b for b in bones
                                                                                   if bones.count(b) > 1})))
    return {J[j]: rig.index(bone_map[j]) for j in skeleton.JOINT_NAMES if bone_map.get(j)}


def _drive(rig, bone_of, controls):
    """({joint: the bone keyed with its rotation}, the bone that travels): the mapped bones themselves and the
    pelvis bone, or with `controls` the controls of the mapped bones and `controls.root`."""
    drive_of = {j: rig.index(controls.bones[rig.names[b]]) if controls and rig.names[b] in controls.bones else b
                for j, b in bone_of.items()}
    root = rig.index(controls.root) if controls else bone_of[0]
    outside = [skeleton.JOINT_NAMES[j] for j, b in drive_of.items() if b != root and root not in _ancestors(rig, b)]
    if outside:
        raise UserError(f"bones of {', '.join(outside)} are not below the pelvis bone {rig.names[root]!r}: map "
                        "pelvis to the bone that parents both the legs and the spine")
    return drive_of, root


def _followed(rig, parents):
    """`rig` with the parents that constraints give some bones (Rigify's torso follows `root` by an Armature
    constraint, not by parenting), so that moving or turning a bone moves what really follows it."""
    followed = rig.parents.copy()
    for bone, parent in parents.items():
        followed[rig.index(bone)] = rig.index(parent)
    return replace(rig, parents=followed)


def _world_changes(motion, rest, ends):
    """(T, 22, 3, 3) per joint the world rotation taking its rest segment and second axis to the motion's
    (identity for unmapped joints); leaves keep their rest pose relative to their parent segment."""
    change = np.tile(np.eye(3), (len(motion), skeleton.NUM_JOINTS, 1, 1))
    axes, rest_axes = _second_axes(motion), _second_axes(rest)
    for j, end in ends.items():
        if end is not None:
            change[:, j] = _frame(motion[:, end] - motion[:, j], axes[:, j]) @ \
                _frame(rest[end] - rest[j], rest_axes[j]).T
    for j, end in ends.items():
        if end is None:
            change[:, j] = change[:, _mapped_parent(j, ends)]
    return change


def _bone_changes(rig, bone_maps, change, to_world):
    """(T, B, 3, 3) the joints' world changes on their bones ({joint: bone} maps: the bones that mark the joints
    and those that drive them), in armature space; other bones follow their parent (roots stay at rest)."""
    joint_of = {b: j for bone_of in bone_maps for j, b in bone_of.items()}
    bone_change = np.tile(np.eye(3), (len(change), len(rig.names), 1, 1))
    for b in rig.order():
        if b in joint_of:
            bone_change[:, b] = to_world.T @ change[:, joint_of[b]] @ to_world
        elif rig.parents[b] >= 0:
            bone_change[:, b] = bone_change[:, rig.parents[b]]
    return bone_change


def _segment_end(j, bone_of, rest):
    """The mapped joint bone j points at; None for a leaf. Ends on top of j (a CMU lower-back bone that starts at
    the hips) are passed over for the next one along the chain."""
    ends = (J[e] for e in SEGMENT_ENDS.get(skeleton.JOINT_NAMES[j], ()) if J[e] in bone_of)
    return next((e for e in ends if np.linalg.norm(rest[e] - rest[j]) > MIN_SEGMENT * _leg_length(rest)), None)


def _mapped_parent(j, ends):
    """The nearest joint at or above j that is mapped and has a segment."""
    while ends.get(j) is None:
        j = skeleton.PARENTS[j]
    return j


def _fill_missing(heads, mapped):
    """(22, 3) rest joints from the mapped bones' heads; a missing optional joint gets a stand-in position (used
    only for the second axes): spine joints on the line pelvis -> shoulders, collars halfway to the shoulder,
    neck and head above the shoulders, toes ahead of the ankles."""
    rest = np.full((skeleton.NUM_JOINTS, 3), np.nan)
    rest[mapped] = heads
    chest = (rest[J["left_shoulder"]] + rest[J["right_shoulder"]]) / 2
    stand_ins = {
        "spine1": rest[0] + 0.25 * (chest - rest[0]), "spine2": rest[0] + 0.5 * (chest - rest[0]),
        "spine3": rest[0] + 0.75 * (chest - rest[0]), "neck": chest + 0.2 * (chest - rest[0]),
        "head": chest + 0.4 * (chest - rest[0]),
    }
    forward = _facing(rest)
    for side in skeleton.SIDES:
        stand_ins[f"{side}_collar"] = (chest + rest[J[f"{side}_shoulder"]]) / 2
        stand_ins[f"{side}_foot"] = rest[J[f"{side}_ankle"]] + 0.1 * _leg_length(rest) * forward
    for name, position in stand_ins.items():
        if np.isnan(rest[J[name]]).any():
            rest[J[name]] = position
    return rest


def _second_axes(p):
    """(..., 22, 3) the twist-fixing axis of every joint's segment, from joint positions p (..., 22, 3), Z-up."""
    hips = unit(p[..., J["left_hip"], :] - p[..., J["right_hip"], :])
    shoulders = unit(p[..., J["left_shoulder"], :] - p[..., J["right_shoulder"], :])
    up = unit((p[..., J["left_shoulder"], :] + p[..., J["right_shoulder"], :]
               - p[..., J["left_hip"], :] - p[..., J["right_hip"], :]))
    axes = np.zeros(p.shape)  # leaves (head, toes, wrists) have no segment and keep zeros
    for name in ("pelvis", "spine1"):
        axes[..., J[name], :] = hips
    axes[..., J["spine2"], :] = hips + shoulders
    for name in ("spine3", "neck"):
        axes[..., J[name], :] = shoulders
    for side, sign in (("left", 1), ("right", -1)):
        hip, knee, ankle, toe, shoulder, elbow, wrist = (p[..., J[f"{side}_{n}"], :] for n in (
            "hip", "knee", "ankle", "foot", "shoulder", "elbow", "wrist"))
        # Neutral hinges: a straight leg hanging down bends its knee forward, about the hip line; a T-pose arm
        # bends its elbow forward, about -up (left) or +up (right), i.e. cross(arm direction, forward).
        forward_legs, forward_chest = np.cross(hips, up), np.cross(shoulders, up)
        out = sign * shoulders
        knee_hinge = _hinge(knee - hip, ankle - knee, -up, np.cross(-up, -forward_legs))
        elbow_hinge = _hinge(elbow - shoulder, wrist - elbow, out, np.cross(out, forward_chest))
        # The foot points forward off the shin, so its bend normal is the knee's reversed; no swing (the default
        # is the knee hinge itself, used only for a foot pointed straight along the shin).
        ankle_hinge = -_hinge(ankle - knee, toe - ankle, ankle - knee, -knee_hinge)
        axes[..., J[f"{side}_hip"], :] = axes[..., J[f"{side}_knee"], :] = knee_hinge
        axes[..., J[f"{side}_ankle"], :] = ankle_hinge
        axes[..., J[f"{side}_shoulder"], :] = axes[..., J[f"{side}_elbow"], :] = elbow_hinge
        axes[..., J[f"{side}_collar"], :] = up
    return axes


def _hinge(upper, lower, neutral_direction, neutral_hinge):
    """The axis a two-bone limb bends about (..., 3): its bend-plane normal, leaning on a default when straight.

    The default is `neutral_hinge` (the hinge when the upper bone points along `neutral_direction`) swung with the
    upper bone by the shortest arc. The normal's sign is chosen to agree with the previous frame's axis (the
    first frame's with the default), so a limb that hyperextends a little or twists while bent never flips its
    axis round: the lower bone turns about it by a negative angle instead.
    """
    bend = np.cross(unit(upper), unit(lower))  # |bend| = sin(bend angle)
    default = unit(qrot(qbetween(neutral_direction, upper), neutral_hinge))
    weight = HINGE_BLEND * np.maximum(1 - np.linalg.norm(bend, axis=-1, keepdims=True) / HINGE_EXACT, 0) ** 2
    bend, default, weight = (np.reshape(x, (-1, x.shape[-1])) for x in (bend, default, weight))  # frames first
    axes = np.empty_like(bend)
    previous = default[0]
    for t in range(len(bend)):
        previous = axes[t] = np.copysign(1.0, bend[t] @ previous) * bend[t] + weight[t] * default[t]
    return axes.reshape(np.shape(upper))


def _frame(direction, axis):
    """(..., 3, 3) rotation with columns (x, y, z): y along `direction`, x the part of `axis` across it."""
    y = unit(direction)
    x = unit(axis - (axis * y).sum(-1, keepdims=True) * y)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def stance_shift(wanted, posed, contact, floor, clearance, fps=skeleton.FPS):
    """(T, 3) root shift that keeps a rig's feet on the ground where the source's are, and off it elsewhere.

    wanted, posed: (T, F, 3) the source's foot points (where the rig's should be; Z up, floor at height `floor`)
    and the rig's before the shift; contact: (T, F) bool, the source's feet on the ground; clearance: the height
    below which a foot counts as on the ground. Only the root moves, so where the rig's legs differ from the
    source's (a longer foot, another thigh/shin ratio), not every foot can be where the source's is; the shift:

    - horizontally matches the steps (not positions) of the feet on the ground: the stance foot moves as the
      source's does, and the shift builds up the rig's own stride instead of dragging feet to the source's prints;
    - vertically puts the feet on the ground at the source's height, and then lifts as far as needed that every
      foot point is at least as high as the source's, up to AIRBORNE * `clearance` (a foot in the air stays off
      the ground), a foot on the ground at most clearance/2 lower (so that the other need not float), none under
      the floor.

    Each foot's weight rises from 0 at the ends of its contact spans to 1 over STANCE_BLEND seconds inside them,
    across flight (no foot on the ground) the height is interpolated, and the height's upper envelope is smoothed
    over STANCE_BLEND, so support passing between feet, or a fast foot pushing the root up, never pops.
    """
    error = np.asarray(wanted, float) - np.asarray(posed, float)  # (T, F, 3)
    blend = max(1, round(STANCE_BLEND * fps))
    weight = _contact_ramp(np.asarray(contact, bool), blend)  # (T, F)
    between = (weight[1:] + weight[:-1]) / 2  # (T-1, F) on each step
    step = (between[..., None] * np.diff(error[..., :2], axis=0)).sum(axis=1) \
        / np.maximum(between.sum(axis=1), 1.0)[:, None]
    shift = np.zeros((len(error), 3))
    shift[1:, :2] = np.cumsum(step, axis=0)

    height = np.full(len(error), -np.inf)
    total = weight.sum(axis=1)
    supported = np.flatnonzero(total > 0)
    if len(supported):
        stance = (weight * error[..., 2]).sum(axis=1)[supported] / total[supported]
        height = np.interp(np.arange(len(error)), supported, stance)
    above_floor = np.asarray(posed, float)[..., 2] - floor  # (T, F) the rig's clearance before the shift
    least = np.clip(np.asarray(wanted, float)[..., 2] - floor - clearance / 2 * weight, 0.0, AIRBORNE * clearance)
    height = np.maximum(height, (least - above_floor).max(axis=1))
    shift[:, 2] = np.maximum(height, _upper_envelope(height, blend / 2))
    return shift


def _contact_ramp(contact, blend):
    """(T, F) weights: 0 outside contact spans, rising by 1/blend per frame from each span's ends inward (the
    clip's own first and last frames are no contact change)."""
    inward = np.full(contact.shape, np.inf)
    for frames in (range(len(contact)), range(len(contact) - 1, -1, -1)):  # distance from the start, the end
        run = np.full(contact.shape[1:], np.inf)
        for t in frames:
            run = np.where(contact[t], run + 1, 0)
            inward[t] = np.minimum(inward[t], run)
    return np.clip(inward / blend, 0.0, 1.0)


def _upper_envelope(x, width):
    """(T,) a smooth curve at or just above x: its running maximum over +-width frames, Gaussian-smoothed (sigma
    `width`), so a kink or a one-frame step of x becomes a rise that starts a little early."""
    radius = max(1, round(width))
    padded = np.pad(x, radius, mode="edge")
    return gaussian_filter1d(np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).max(axis=1), width)


def _posed_heads(rig, bone_change):
    """(T, B, 3) bone heads in armature space after the rotations `bone_change` (T, B, 3, 3), roots at rest."""
    heads = np.broadcast_to(rig.heads, bone_change.shape[:2] + (3,)).copy()
    for b in rig.order():
        p = rig.parents[b]
        if p >= 0:
            heads[:, b] = heads[:, p] + bone_change[:, p] @ (rig.heads[b] - rig.heads[p])
    return heads


def _root_locations(rig, bone, travel, root_mode, root_bone):
    """pose_bone.location of `bone` (and of the root bone in 'root_bone' mode) that moves it, and all below it, by
    `travel` (T, 3, armature space). Bones above it stay at rest, apart from the root bone's travel."""
    rest_rot = _orthonormal(rig.rest[:, :3, :3])
    if root_mode != "root_bone":
        return (rig.names[bone],), (travel @ rest_rot[bone])[:, None]
    root = _root_bone(rig, bone, root_bone)
    # Horizontal is the world's XY plane; in armature space that is what the world matrix maps there.
    up = unit(np.linalg.inv(rig.world)[:3, :3] @ [0.0, 0.0, 1.0])
    horizontal = travel - (travel @ up)[:, None] * up
    return (rig.names[root], rig.names[bone]), np.stack([horizontal @ rest_rot[root],
                                                         (travel - horizontal) @ rest_rot[bone]], axis=1)


def _ancestors(rig, bone):
    """Indices of the bones above `bone`, nearest first."""
    out = []
    while rig.parents[bone] >= 0:
        bone = rig.parents[bone]
        out.append(bone)
    return out


def _root_bone(rig, pelvis_bone, name):
    ancestors = _ancestors(rig, pelvis_bone)
    if name is not None:
        root = rig.index(name)
        if root not in ancestors:
            raise UserError(f"root bone {name!r} is not a parent of the pelvis bone {rig.names[pelvis_bone]!r}")
        return root
    if not ancestors:
        raise UserError(f"root mode 'root_bone' needs a bone above the pelvis bone {rig.names[pelvis_bone]!r}; "
                        "this armature has none. Use 'motion' or 'in_place'")
    return ancestors[-1]


def _leg_length(p):
    """Mean of both legs' hip-knee-ankle lengths, (...)."""
    return sum(np.linalg.norm(p[..., J[f"{s}_{a}"], :] - p[..., J[f"{s}_{b}"], :], axis=-1)
               for s in skeleton.SIDES for a, b in (("hip", "knee"), ("knee", "ankle"))) / 2


def _facing(p):
    """Horizontal unit forward direction of a Z-up rest skeleton (22, 3): cross(left, up), Blender's -Y."""
    left = p[J["left_hip"]] - p[J["right_hip"]] + p[J["left_shoulder"]] - p[J["right_shoulder"]]
    forward = np.cross(left, [0.0, 0.0, 1.0])
    return forward / np.linalg.norm(forward)


def _yaw_matrix(forward):
    """Rotation about Z taking Blender's front (-Y) to `forward`."""
    angle = np.arctan2(forward[1], forward[0]) - np.arctan2(-1.0, 0.0)
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _orthonormal(m):
    """The rotation nearest to each (..., 3, 3) matrix (drops scale and shear)."""
    u, _, vt = np.linalg.svd(m)
    return u @ vt
