"""Plain arrays -> a new Action on an armature: channels planned per bone, keys written in bulk, old action stashed.

One recipe serves Blender 4.2 to 5.x: on 4.4+ the action gets a slot, a layer, a keyframe strip and a channelbag
(and the slot is always assigned, or the action may not play); on 4.2/4.3 curves go on `Action.fcurves`.
"""
from dataclasses import dataclass

import bpy
import numpy as np

from . import rig
from .backend import bone_maps, mocap, retarget
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
    prop: str  # "location" | "rotation_quaternion" | "rotation_euler" | "rotation_axis_angle" | '["custom"]'
    values: np.ndarray  # (T, k)

    @property
    def data_path(self) -> str:
        prop = self.prop if self.prop.startswith("[") else f".{self.prop}"  # a custom property: '["IK_FK"]'
        return f'pose.bones["{bpy.utils.escape_identifier(self.bone)}"]{prop}'


def rotation_channel(bone: str, mode: str, quaternions: np.ndarray) -> Channel:
    """(T, 4) sign-continuous local quaternions (w, x, y, z) -> the channel for the bone's rotation `mode`."""
    if mode == 'QUATERNION':
        return Channel(bone, "rotation_quaternion", quaternions)
    if mode == 'AXIS_ANGLE':
        half_angle = np.arccos(np.clip(quaternions[:, :1], -1.0, 1.0))  # (T, 1)
        axis = quaternions[:, 1:] / np.maximum(np.sin(half_angle), 1e-12)
        axis[np.sin(half_angle[:, 0]) < 1e-12] = (0.0, 1.0, 0.0)  # no rotation: Blender's default axis
        return Channel(bone, "rotation_axis_angle", np.concatenate([2 * half_angle, axis], axis=1))
    return Channel(bone, "rotation_euler", retarget.quaternion_to_euler(quaternions, mode))


@dataclass(frozen=True)
class RigTarget:
    """What a bake needs to know about an armature, as plain data (read on the main thread, used on any)."""
    name: str
    description: retarget.RigDescription
    rotation_modes: dict  # bone name -> pose bone rotation mode
    custom_properties: frozenset = frozenset()  # (bone name, custom property name) on the pose bones

    @classmethod
    def read(cls, ob):
        """The armature as plain data. Raises UserError when its animation cannot be written now, or would not
        show the motion (an unevenly scaled object shears its bones)."""
        require_writable(ob)
        description = rig.read_rig(ob)
        description.require_even_scale(ob.name)
        return cls(ob.name, description, {pose_bone.name: pose_bone.rotation_mode for pose_bone in ob.pose.bones},
                   custom_properties(ob))


def require_local(*blocks) -> None:
    """UserError when one of the data-blocks `blocks` (None: skipped) is linked from a library: Blender lets a
    script change linked data, but the change is gone when the file is saved and opened again."""
    for block in blocks:
        if block is not None and not block.is_editable:
            library = block.library.filepath if block.library else "a library"
            raise UserError(f"'{block.name}' is linked from {library}: its changes would be lost on save; make it "
                            "local or add a library override (Object > Library Override) first")


def require_writable(ob) -> None:
    """UserError when keys cannot go onto `ob` now: linked (`require_local`), or in NLA tweak mode, where its action
    is not its own to replace and its keys are in the strip's time, not the scene's."""
    require_local(ob, ob.data)
    if ob.animation_data is not None and ob.animation_data.use_tweak_mode:
        raise UserError(f"'{ob.name}' is in NLA tweak mode: exit it (Tab in the NLA editor) first")


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def custom_properties(ob) -> frozenset:
    """(bone name, custom property name) of every custom property on `ob`'s pose bones."""
    return frozenset((pose_bone.name, key) for pose_bone in ob.pose.bones for key in pose_bone.keys())


def require_switches(controls: retarget.Controls, properties: frozenset, name: str) -> None:
    """UserError naming the switch properties `controls` needs that the rig `name`, with custom `properties`
    (`custom_properties`), lacks (a rig from another Rigify version)."""
    missing = sorted(f'{bone}["{prop}"]' for bone, prop in controls.switches if (bone, prop) not in properties)
    if missing:
        raise UserError(f"'{name}' lacks the switch properties {', '.join(missing)} that make it follow its "
                        "FK controls: regenerate the rig with the Rigify that ships with this Blender")


def plan_channels(ob, motion, scene, bone_map: dict, root_mode: str, root_bone: str) -> list[Channel]:
    """Everything a bake of `motion` onto armature `ob` will key, computed before anything is written. Raises
    UserError."""
    return motion_channels(RigTarget.read(ob), motion, scene_fps(scene), bone_map, root_mode, root_bone)


def motion_channels(target: RigTarget, motion, fps, bone_map: dict, root_mode: str, root_bone: str) -> list[Channel]:
    """The channels that pose `target` along `motion` (a `motions.Motion`), resampled to `fps` (the scene's) and
    retargeted through `bone_map` (joint -> bone); bpy-free, so a job's worker thread runs it. Raises UserError."""
    joints = mocap.resample(motion.joints.astype(np.float64), motion.fps, fps)  # (T', 22, 3)
    return retarget_channels(target, joints, fps, bone_map, root_mode, root_bone, rest_held_bones=True)


def retarget_channels(target: RigTarget, joints, fps, bone_map: dict, root_mode: str, root_bone: str,
                      rest_held_bones=False) -> list[Channel]:
    """(T, 22, 3) joints, one per output frame at `fps` -> the channels that pose `target` along them (bpy-free: a
    job's worker thread runs it). A rig whose mapped bones follow controls (a generated Rigify rig) gets keys on
    the controls and on the switches that make it follow them. With `rest_held_bones` (a bake into a new action)
    the unmapped bones above mapped ones of a rig without controls are keyed at rest, as the retargeting assumes
    them: else they would keep whatever pose the replaced action left (a CMU import's Neck). Raises UserError."""
    controls = bone_maps.controls_for(bone_map, target.description.names)
    if controls is not None:
        require_switches(controls, target.custom_properties, target.name)
    result = retarget.retarget(joints, target.description, bone_map, root_mode=ROOT_MODES[root_mode],
                               root_bone=root_bone or None, fps=fps, controls=controls)
    channels = [rotation_channel(bone, target.rotation_modes[bone], result.rotations[:, i])
                for i, bone in enumerate(result.bones)]
    channels += [Channel(bone, "location", result.locations[:, i]) for i, bone in enumerate(result.location_bones)]
    if controls is not None:
        channels += [Channel(bone, prop, np.full((len(joints), 1), value))
                     for (bone, prop), value in switch_values(controls).items()]
    if rest_held_bones and controls is None:  # above a rig's controls are its mechanism bones: not ours to key
        channels += rest_channels(target, result.held_bones, result.location_bones, len(joints))
    broken = sorted({c.bone for c in channels if not np.isfinite(c.values).all()})
    if broken:  # never key NaN: it would silently wreck the rig in the viewport
        raise UserError(f"retargeting gave no valid rotation for bones {', '.join(broken)} of '{target.name}': a "
                        "mapped bone's head probably coincides with the next mapped joint's; remap those joints")
    return channels


def rest_channels(target: RigTarget, bones, location_bones, count: int) -> list[Channel]:
    """Channels holding `bones` at their rest pose for `count` frames (no rotation; no offset, except for the bones
    in `location_bones`, whose locations the retargeting keys)."""
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (count, 1))  # (T, 4) w, x, y, z
    channels = [rotation_channel(bone, target.rotation_modes[bone], identity) for bone in bones]
    return channels + [Channel(bone, "location", np.zeros((count, 3))) for bone in bones if bone not in location_bones]


def switch_values(controls: retarget.Controls) -> dict:
    """{(control, channel prop '["custom"]'): value} of the switches that make a rig follow `controls`."""
    return {(bone, f'["{prop}"]'): value for (bone, prop), value in controls.switches.items()}


def keyed_properties(ob, bone_map: dict) -> dict:
    """{(bone, prop): None, or the value it must have} for every channel a bake through `bone_map` can key on `ob`:
    the rotation and location of each mapped bone; on a rig posed through controls (a generated Rigify rig), of
    each mapped bone's control and the root control, plus the switches with the values that make the rig follow
    those controls. Raises UserError (`bone_maps.controls_for`)."""
    controls = bone_maps.controls_for(bone_map, ob.data.bones.keys())
    bones = set(bone_map.values())
    switches = {}
    if controls is not None:
        require_switches(controls, custom_properties(ob), ob.name)
        bones = {controls.bones.get(bone, bone) for bone in bones} | {controls.root}
        switches = switch_values(controls)
    return {**{(bone, prop): None for bone in sorted(bones)
               for prop in (rig.rotation_prop(ob.pose.bones[bone]), "location")}, **switches}


def new_action(ob, name: str, metadata: dict):
    """A new action assigned to `ob` (slot assigned on 4.4+), with `metadata` as custom properties.

    Returns (action, new_fcurve), where new_fcurve(data_path, index, group) makes one curve in the right place.
    """
    action = bpy.data.actions.new(name)
    for key, value in metadata.items():
        action[key] = value
    animation_data = ob.animation_data_create()
    animation_data.action = action
    if not HAS_SLOTS:
        return action, fcurve_maker(action, None)
    slot = action.slots.new(id_type='OBJECT', name=SLOT_NAME)
    animation_data.action_slot = slot
    strip = action.layers.new("Layer").strips.new(type='KEYFRAME')
    return action, fcurve_maker(action, strip.channelbag(slot, ensure=True))


def fcurve_maker(action, bag):
    """new_fcurve(data_path, index, group): adds an F-curve, in the bone's group, to the channelbag `bag` (4.4+)
    or, with `bag` None, to `action.fcurves` (4.2/4.3)."""
    if bag is None:
        return lambda path, index, group: action.fcurves.new(path, index=index, action_group=group)
    if HAS_GROUP_NAME:
        return lambda path, index, group: bag.fcurves.new(path, index=index, group_name=group)

    def new_fcurve(path, index, group):
        fcurve = bag.fcurves.new(path, index=index)
        fcurve.group = bag.groups.get(group) or bag.groups.new(group)
        return fcurve
    return new_fcurve


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
    """Keep what a bake replaces. The action `ob` plays goes onto a muted NLA track of its own and is remembered on
    `ob.mdm` for restoring; when that action is itself the add-on's last bake, it is kept with a fake user instead
    and the memory stays, so that Restore still brings back the action the user had before baking."""
    state = ob.mdm
    if can_restore(ob):
        state.baked_action.use_fake_user = True
        return
    state.previous_action = None
    state.previous_slot = ""
    state.stash_track = ""
    animation_data = ob.animation_data
    if animation_data is None or animation_data.action is None:
        return
    action = animation_data.action
    # The user's own stashes (Action Editor > Stash) share the name, and Blender does not make it unique here.
    name = unique_name(STASH_TRACK_NAME, {track.name for track in animation_data.nla_tracks})
    track = animation_data.nla_tracks.new()
    track.name = name
    track.mute = True
    strip = track.strips.new(action.name, int(action.frame_range[0]), action)
    if HAS_SLOTS and animation_data.action_slot is not None:
        strip.action_slot = animation_data.action_slot
        state.previous_slot = animation_data.action_slot.identifier
    state.previous_action = action
    state.stash_track = track.name


def unique_name(base: str, taken: set) -> str:
    """`base`, or Blender's style of a free variant of it ("base.001", ...) when it is `taken`."""
    name, number = base, 0
    while name in taken:
        number += 1
        name = f"{base}.{number:03d}"
    return name


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
    """Undo the bakes' effect on `ob`: the action it played before the first of them becomes active again and its
    stash track goes away.

    The baked actions are kept (with a fake user) so that they can still be assigned by hand.
    """
    state = ob.mdm
    animation_data = ob.animation_data
    state.baked_action.use_fake_user = True
    animation_data.action = state.previous_action
    if HAS_SLOTS and state.previous_action is not None and state.previous_slot:
        animation_data.action_slot = state.previous_action.slots[state.previous_slot]
    track = animation_data.nla_tracks.get(state.stash_track) if state.stash_track else None
    if track is not None and any(strip.action == state.previous_action for strip in track.strips):
        animation_data.nla_tracks.remove(track)  # only the add-on's track: the user may have renamed tracks since
    state.previous_action = None
    state.previous_slot = ""
    state.stash_track = ""
    state.baked_action = None


# --- in-betweening: new points inside the user's own curves ------------------------------------------------------

# What a keyframe point carries besides its position; all of it is put back on the user's points after a write.
HANDLE_PROPS = ("handle_left", "handle_right")


def current_fcurves(ob):
    """(curves, new_fcurve) of the action `ob` plays: {(data_path, index): F-curve} from its slot's channelbag on
    4.4+ (`Action.fcurves` on 4.2/4.3), and a function that adds a curve there. ({}, None) without an action."""
    animation_data = ob.animation_data
    action = animation_data.action if animation_data else None
    if action is None:
        return {}, None
    if not HAS_SLOTS:
        return _by_channel(action.fcurves), fcurve_maker(action, None)
    bags = channelbags(action, animation_data.action_slot)
    if not bags:
        return {}, None
    return _by_channel(slot_fcurves(action, animation_data.action_slot)), fcurve_maker(action, bags[0])


def channelbags(action, slot) -> list:
    """The channelbags that hold `action`'s curves for `slot` (4.4+), over its layers and strips."""
    bags = [strip.channelbag(slot) for layer in action.layers for strip in layer.strips] if slot else []
    return [bag for bag in bags if bag is not None]


def slot_fcurves(action, slot) -> list:
    """The F-curves `action` plays for `slot`: the slot's channelbags on 4.4+, `Action.fcurves` on 4.2/4.3 (which
    have no slots: `slot` is ignored)."""
    if not HAS_SLOTS:
        return list(action.fcurves)
    return [fc for bag in channelbags(action, slot) for fc in bag.fcurves]


def _by_channel(fcurves) -> dict:
    return {(fc.data_path, fc.array_index): fc for fc in fcurves}


def nla_channels(ob) -> set:
    """(data_path, index) of every curve that the unmuted NLA strips of `ob` play beneath its action."""
    def strip_channels(strip):
        if strip.mute:
            return set()
        if strip.type == 'META':
            return set().union(*map(strip_channels, strip.strips))
        if strip.action is None:
            return set()
        return set(_by_channel(slot_fcurves(strip.action, strip.action_slot if HAS_SLOTS else None)))
    tracks = ob.animation_data.nla_tracks if ob.animation_data else ()
    return set().union(*(strip_channels(strip) for track in tracks if not track.mute for strip in track.strips))


def keyed_frames(curves: dict, selected_only=False) -> np.ndarray:
    """Sorted integer frames keyed on any pose-bone curve (only the selected points' with `selected_only`)."""
    frames = set()
    for (path, _index), fcurve in curves.items():
        if not path.startswith("pose.bones["):
            continue
        points = fcurve.keyframe_points
        co = np.empty(2 * len(points), np.float32)
        points.foreach_get("co", co)
        if selected_only:
            selected = np.empty(len(points), bool)
            points.foreach_get("select_control_point", selected)
            co = co.reshape(-1, 2)[selected].ravel()
        frames.update(np.round(co[0::2]).astype(int).tolist())
    return np.array(sorted(frames), dtype=np.int64)


def write_inbetween(ob, channels: list[Channel], first_frame: int, key_values: dict) -> int:
    """Add one LINEAR point per frame strictly between the first and the last key (`channels` cover first..last)
    into the curves `ob` plays, wherever a curve has no point yet; the user's points keep their position,
    interpolation and handles. A channel without a curve gets one, keyed at the first and last key with the
    values it had there (`key_values[(bone, prop)]`, (K, k)), so nothing changes outside the range; unless an NLA
    strip beneath animates it: a curve would override the strip on every frame, so the channel is left to it.
    Returns the number of points added."""
    curves, new_fcurve = current_fcurves(ob)
    beneath = nla_channels(ob)
    added = 0
    for channel in channels:
        count = len(channel.values)
        for index in range(channel.values.shape[1]):
            fcurve = curves.get((channel.data_path, index))
            if fcurve is None and (channel.data_path, index) in beneath:
                continue
            if fcurve is None:
                fcurve = new_fcurve(channel.data_path, index, channel.bone)
                ends = key_values[(channel.bone, channel.prop)][[0, -1], index]
                _add_points(fcurve, np.array([first_frame, first_frame + count - 1]), ends)
            points = fcurve.keyframe_points
            co = np.empty(2 * len(points), np.float32)
            points.foreach_get("co", co)
            taken = set(np.round(co[0::2]).astype(int).tolist())
            inner = np.array([t for t in range(1, count - 1) if first_frame + t not in taken], dtype=np.int64)
            added += _add_points(fcurve, first_frame + inner, channel.values[inner, index])
    return added


def _add_points(fcurve, frames, values) -> int:
    """Append LINEAR points and sort them in, putting the existing points' handles back afterwards (sorting
    recalculates automatic handles from the new neighbours, which would reshape the curve outside the range)."""
    points = fcurve.keyframe_points
    old = len(points)
    saved = {}
    for prop in HANDLE_PROPS:
        saved[prop] = np.empty(2 * old, np.float32)
        points.foreach_get(prop, saved[prop])
    old_co = np.empty(2 * old, np.float32)
    points.foreach_get("co", old_co)
    points.add(len(frames))
    co = np.empty(2 * len(points), np.float32)
    points.foreach_get("co", co)
    co[2 * old:] = np.stack([frames, values], axis=1).astype(np.float32).ravel()
    points.foreach_set("co", co)
    interpolation = np.empty(len(points), np.int32)
    points.foreach_get("interpolation", interpolation)
    interpolation[old:] = LINEAR
    points.foreach_set("interpolation", interpolation)
    fcurve.update()  # sorts the new points in
    sorted_co = np.empty(2 * len(points), np.float32)
    points.foreach_get("co", sorted_co)
    position = {frame: i for i, frame in enumerate(np.round(sorted_co[0::2]).astype(int).tolist())}
    rows = [position[int(round(frame))] for frame in old_co[0::2]]  # where each old point went
    for prop in HANDLE_PROPS:
        handles = np.empty(2 * len(points), np.float32)
        points.foreach_get(prop, handles)
        handles = handles.reshape(-1, 2)
        handles[rows] = saved[prop].reshape(-1, 2)
        points.foreach_set(prop, handles.ravel())
    return len(frames)
