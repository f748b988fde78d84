"""In-betweening, bpy-free: an animator's keyed poses -> backend keys, and the generated motion -> in-between values
that meet every key exactly.

Keys. At each keyed scene frame the rig's mapped bone heads (world space, as the depsgraph evaluates them: on a
generated Rigify rig the ORG- bones, where its keyed controls, constraints and drivers put them) are the 22 joints;
they are brought into the model's frame by the inverse of the placement the retargeter applies to a motion: turned
from the rig's rest facing to Blender's front, lowered to the rig's rest floor (its lowest foot joint), divided by
the ratio of the rig's leg length to the HumanML3D reference leg, and turned from Blender's Z-up to HumanML3D's
Y-up. Joints the bone map lacks are left out of the keys (joint_mask False: the model is not constrained there); the
joints the retargeter requires must be mapped, or the bake refuses first. Key times are mapped to model frames
(20 fps) with the first key at frame 0; keys closer than one model frame are refused.

Output. The generated motion is warped back in time (each key's model frame onto its scene frame, linear in
between), retargeted like any bake (onto the controls, on a generated Rigify rig), and then corrected channel by
channel: at each key, the offset between the user's value and the retargeted one is measured, and the offsets are
spread across the gaps by a smooth spline (`keyframes.spline_through`: no kink at a key) and added. So every key is
met exactly in value (including what positions cannot carry: twist, a hand's roll), the frames next to a key differ
from it by no more than the motion's own step, and nothing pops. A rig posed through controls must show its keys
through the controls the bake keys (a generated Rigify rig switched to FK at every key), or the keys could not be
met there; `check_switches` refuses otherwise.
"""
from dataclasses import dataclass

import numpy as np

from .backend import keyframes, retarget, skeleton
from .backend.errors import UserError

J = skeleton.JOINT_INDEX
REFERENCE_LEG = float(np.mean([skeleton.REFERENCE_BONE_LENGTHS[J[f"{s}_knee"]]
                               + skeleton.REFERENCE_BONE_LENGTHS[J[f"{s}_ankle"]] for s in ("left", "right")]))


@dataclass(frozen=True)
class KeyPlan:
    scene_frames: np.ndarray  # (K,) the keyed scene frames, increasing
    model_frames: np.ndarray  # (K,) their frames in the request (the first is 0)
    request_frames: int  # frames to ask for (at least the model's minimum)
    keys: keyframes.Keyframes  # the poses in the model's frame (HumanML3D, Y-up, reference scale)


def placement(rest_world):
    """(scale, yaw (3, 3), floor height) of the rig: what the retargeter uses to put a motion on it."""
    feet = list(retarget.FOOT_JOINTS)
    return (retarget._leg_length(rest_world) / REFERENCE_LEG, retarget._yaw_matrix(retarget._facing(rest_world)),
            float(np.nanmin(rest_world[feet, 2])))


def world_to_motion(points, rest_world):
    """World points (..., 3) of the rig -> HumanML3D joint positions of a reference-sized body."""
    scale, yaw, floor = placement(rest_world)
    blender = (np.asarray(points, float) - [0.0, 0.0, floor]) @ yaw / scale  # row @ yaw == yaw^T applied
    return blender @ skeleton.HML_TO_BLENDER  # Blender -> Y-up: the inverse (transpose) of HML_TO_BLENDER


def plan_keys(scene_frames, world_joints, rest_world, scene_fps, frames: dict) -> KeyPlan:
    """Keys for the backend. scene_frames (K,); world_joints (K, 22, 3), NaN for unmapped joints; rest_world
    (22, 3) the rig's rest joints (retarget-filled); frames: the model's info (fps, min_frames, max_chained_frames:
    a range longer than one window is sampled in chained windows)."""
    scene_frames = np.asarray(scene_frames, dtype=np.int64)
    if len(scene_frames) < 2:
        found = f"only frame {scene_frames[0]} is" if len(scene_frames) else "no frame is"
        raise UserError(f"in-betweening needs at least two keyed frames in the range; {found} keyed")
    model_frames = np.round((scene_frames - scene_frames[0]) * frames["fps"] / scene_fps).astype(np.int64)
    close = np.flatnonzero(np.diff(model_frames) < 1)
    if len(close):
        a, b = scene_frames[close[0]], scene_frames[close[0] + 1]
        raise UserError(f"keys at frames {a} and {b} are closer than one model frame (1/{frames['fps']:g} s); "
                        "remove one of them")
    if model_frames[-1] + 1 > frames["max_chained_frames"]:
        longest = (frames["max_chained_frames"] - 1) / frames["fps"]
        raise UserError(f"the keys span {(scene_frames[-1] - scene_frames[0]) / scene_fps:.1f} s; this model "
                        f"in-betweens up to {longest:.1f} s at once: key a shorter range")
    joints = np.asarray(world_joints, dtype=np.float64)
    mask = np.isfinite(joints).all(axis=-1)  # (K, 22)
    motion = world_to_motion(np.where(mask[..., None], joints, 0.0), rest_world)
    keys = keyframes.Keyframes(model_frames, motion, mask)
    return KeyPlan(scene_frames, model_frames, max(int(model_frames[-1]) + 1, frames["min_frames"]), keys)


def check_switches(required: dict, key_values: dict, scene_frames, name: str) -> None:
    """UserError unless every property with a required value (`bake.keyed_properties`: a generated Rigify rig's
    switches to FK) has it at every key: the in-between keys the controls those switches select, and keys shown
    through other controls (IK) could not be met on them."""
    for (bone, prop), value in required.items():
        if value is None:
            continue
        wrong = np.flatnonzero(np.abs(key_values[(bone, prop)][:, 0] - value) > 1e-4)
        if len(wrong):
            k = wrong[0]
            raise UserError(f"at frame {scene_frames[k]}, {bone}{prop} of '{name}' is "
                            f"{key_values[(bone, prop)][k, 0]:g}; in-betweening keys the FK controls, so every key "
                            f"needs it at {value:g} (FK): key the switch there, or pose the keys in FK")


def to_scene_frames(motion, plan: KeyPlan):
    """(T, 22, 3) model-rate motion -> one pose per scene frame from the first key to the last, each key's model
    frame landing exactly on its scene frame (linear interpolation in time)."""
    scene = np.arange(plan.scene_frames[0], plan.scene_frames[-1] + 1)
    position = np.interp(scene, plan.scene_frames, plan.model_frames)  # (F,) in model frames
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(motion) - 1)
    weight = (position - below)[:, None, None]
    return motion[below] * (1 - weight) + motion[above] * weight


def meet_keys(values, key_values, key_index, quaternion=False):
    """values (F, k) of one channel over the keyed range; key_values (K, k) the user's values at the keys, whose
    rows in `values` are key_index (K,). Returns values that equal the keys there, corrected in between by the key
    offsets spread with `keyframes.spline_through` (no kink at a key). A quaternion channel is first put, gap by
    gap, on the hemisphere of the key that starts the gap."""
    values = np.array(values, dtype=np.float64)
    if quaternion:
        for k in range(len(key_index) - 1):
            a, b = key_index[k], key_index[k + 1]
            if values[a] @ key_values[k] < 0:
                values[a:b + (k == len(key_index) - 2)] *= -1  # a gap's end frame belongs to the next gap
    offsets = np.asarray(key_values, dtype=np.float64) - values[key_index]  # (K, k)
    return values + keyframes.spline_through(key_index, offsets, len(values))
