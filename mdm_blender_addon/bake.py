"""Plain arrays -> a new Action on an armature: channels planned per bone, keys written in bulk, old action stashed.

One recipe serves Blender 4.2 to 5.x: on 4.4+ the action gets a slot, a layer, a keyframe strip and a channelbag
(and the slot is always assigned, or the action may not play); on 4.2/4.3 curves go on `Action.fcurves`.
"""
from dataclasses import dataclass

import bpy
import numpy as np

from . import rig
from .backend import mocap, retarget
from .backend.errors import UserError

HAS_SLOTS = "slots" in bpy.types.Action.bl_rna.properties  # layered actions: Blender 4.4+
HAS_GROUP_NAME = bpy.app.version >= (5, 0, 0)  # `fcurves.new(group_name=)` on channelbags
SLOT_NAME = "Slot"  # one constant name (as Blender's BVH importer uses) so switching actions keeps the slot
STASH_TRACK_NAME = "[Action Stash]"  # Blender's own name for stashed actions
ROOT_MODES = {"MOTION": "motion", "IN_PLACE": "in_place", "ROOT_BONE": "root_bone"}  # UI enum -> retarget
# Dense per-frame keys: linear interpolation reproduces the samples exactly (Bezier handles would overshoot).
LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value


@dataclass
class Channel:
    """One animated property of a pose bone: `values[t, i]` is array index i at output frame t."""
    bone: str
    prop: str  # "location" | "rotation_quaternion" | "rotation_euler" | "rotation_axis_angle"
    values: np.ndarray  # (T, k)

    @property
    def data_path(self) -> str:
        return f'pose.bones["{bpy.utils.escape_identifier(self.bone)}"].{self.prop}'


def rotation_channel(pose_bone, quaternions: np.ndarray) -> Channel:
    """(T, 4) sign-continuous local quaternions (w, x, y, z) -> the channel for the bone's own rotation mode."""
    mode = pose_bone.rotation_mode
    if mode == 'QUATERNION':
        return Channel(pose_bone.name, "rotation_quaternion", quaternions)
    if mode == 'AXIS_ANGLE':
        half_angle = np.arccos(np.clip(quaternions[:, :1], -1.0, 1.0))  # (T, 1)
        axis = quaternions[:, 1:] / np.maximum(np.sin(half_angle), 1e-12)
        axis[np.sin(half_angle[:, 0]) < 1e-12] = (0.0, 1.0, 0.0)  # no rotation: Blender's default axis
        return Channel(pose_bone.name, "rotation_axis_angle", np.concatenate([2 * half_angle, axis], axis=1))
    return Channel(pose_bone.name, "rotation_euler", retarget.quaternion_to_euler(quaternions, mode))


def plan_channels(ob, motion, scene, bone_map: dict, root_mode: str, root_bone: str) -> list[Channel]:
    """Everything a bake of `motion` onto armature `ob` will key, computed before anything is written.

    The motion is resampled to the scene's frame rate, retargeted through `bone_map` (joint -> bone) and turned
    into one channel per keyed property. Raises UserError.
    """
    scene_fps = scene.render.fps / scene.render.fps_base
    joints = mocap.resample(motion.joints.astype(np.float64), motion.fps, scene_fps)  # (T', 22, 3)
    result = retarget.retarget(joints, rig.read_rig(ob), bone_map, root_mode=ROOT_MODES[root_mode],
                               root_bone=root_bone or None)
    channels = [rotation_channel(ob.pose.bones[bone], result.rotations[:, i])
                for i, bone in enumerate(result.bones)]
    channels += [Channel(bone, "location", result.locations[:, i]) for i, bone in enumerate(result.location_bones)]
    broken = sorted({c.bone for c in channels if not np.isfinite(c.values).all()})
    if broken:  # never key NaN: it would silently wreck the rig in the viewport
        raise UserError(f"retargeting gave no valid rotation for bones {', '.join(broken)} of '{ob.name}': a "
                        "mapped bone's head probably coincides with the next mapped joint's; remap those joints")
    return channels


def new_action(ob, name: str, metadata: dict):
    """A new action assigned to `ob` (slot assigned on 4.4+), with `metadata` as custom properties.

    Returns (action, new_fcurve), where new_fcurve(data_path, index, group) makes one curve in the right place.
    """
    action = bpy.data.actions.new(name)
    for key, value in metadata.items():
        action[key] = value
    animation_data = ob.animation_data_create()
    if not HAS_SLOTS:
        animation_data.action = action
        return action, lambda path, index, group: action.fcurves.new(path, index=index, action_group=group)
    slot = action.slots.new(id_type='OBJECT', name=SLOT_NAME)
    animation_data.action = action
    animation_data.action_slot = slot
    strip = action.layers.new("Layer").strips.new(type='KEYFRAME')
    bag = strip.channelbag(slot, ensure=True)
    if HAS_GROUP_NAME:
        return action, lambda path, index, group: bag.fcurves.new(path, index=index, group_name=group)

    def new_fcurve(path, index, group):
        fcurve = bag.fcurves.new(path, index=index)
        fcurve.group = bag.groups.get(group) or bag.groups.new(group)
        return fcurve
    return action, new_fcurve


def write_channels(new_fcurve, channels: list[Channel], frame_start: int) -> None:
    """Key every channel on consecutive frames from `frame_start`, in bulk (no per-key Python calls)."""
    for channel in channels:
        frames = frame_start + np.arange(len(channel.values), dtype=np.float32)
        for index in range(channel.values.shape[1]):
            fcurve = new_fcurve(channel.data_path, index, channel.bone)
            fcurve.keyframe_points.add(len(frames))
            co = np.stack([frames, channel.values[:, index].astype(np.float32)], axis=1)  # (T, 2)
            fcurve.keyframe_points.foreach_set("co", co.ravel())
            fcurve.keyframe_points.foreach_set("interpolation", np.full(len(frames), LINEAR, np.int32))
            fcurve.update()


def stash_current_action(ob) -> None:
    """Push the object's current action onto a muted NLA track and remember it on `ob.mdm` for restoring."""
    animation_data = ob.animation_data
    state = ob.mdm
    state.previous_action = None
    state.previous_slot = ""
    state.stash_track = ""
    if animation_data is None or animation_data.action is None:
        return
    action = animation_data.action
    track = animation_data.nla_tracks.new()
    track.name = STASH_TRACK_NAME
    track.mute = True
    strip = track.strips.new(action.name, int(action.frame_range[0]), action)
    if HAS_SLOTS and animation_data.action_slot is not None:
        strip.action_slot = animation_data.action_slot
        state.previous_slot = animation_data.action_slot.identifier
    state.previous_action = action
    state.stash_track = track.name  # Blender may have made the name unique


def bake(ob, name: str, channels: list[Channel], frame_start: int, metadata: dict):
    """Stash the current action, then key `channels` into a new action on `ob`; return the action."""
    stash_current_action(ob)
    action, new_fcurve = new_action(ob, name, metadata)
    write_channels(new_fcurve, channels, frame_start)
    ob.mdm.baked_action = action
    return action


def can_restore(ob) -> bool:
    animation_data = ob.animation_data
    return (ob.mdm.baked_action is not None and animation_data is not None
            and animation_data.action == ob.mdm.baked_action)


def restore_previous_action(ob) -> None:
    """Undo a bake's effect on `ob`: the stashed action becomes active again and its stash track goes away.

    The baked action is kept (with a fake user) so that it can still be assigned by hand.
    """
    state = ob.mdm
    animation_data = ob.animation_data
    state.baked_action.use_fake_user = True
    animation_data.action = state.previous_action
    if HAS_SLOTS and state.previous_action is not None and state.previous_slot:
        animation_data.action_slot = state.previous_action.slots[state.previous_slot]
    track = animation_data.nla_tracks.get(state.stash_track) if state.stash_track else None
    if track is not None:
        animation_data.nla_tracks.remove(track)
    state.previous_action = None
    state.previous_slot = ""
    state.stash_track = ""
    state.baked_action = None
