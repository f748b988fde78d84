"""Armatures <-> plain data: the SMPL-proportioned skeleton we create, and the bone map stored on an armature."""
import bpy
import numpy as np

from .backend import bone_maps, retarget, skeleton
from .backend.errors import UserError

LEAF_BONE_LENGTH = 0.1  # metres: head, toes and hands have no child joint to point at
# Blender-space rest directions that differ from HumanML3D's (arms hanging down): our armature rests in a T-pose,
# the rest pose most rigs and retargeters expect.
T_POSE_DIRECTIONS = {
    "left_shoulder": (1, 0, 0), "left_elbow": (1, 0, 0), "left_wrist": (1, 0, 0),
    "right_shoulder": (-1, 0, 0), "right_elbow": (-1, 0, 0), "right_wrist": (-1, 0, 0),
}
# The child joint each bone points at, where a joint has several (pelvis: spine, spine3: neck).
MAIN_CHILD = {"pelvis": "spine1", "spine3": "neck"}


def smpl_rest_joints() -> np.ndarray:
    """(22, 3) joint positions of the T-posed HumanML3D reference skeleton in Blender space (Z-up, facing -Y),
    lowest joint on the floor."""
    directions = skeleton.RAW_OFFSETS.copy()
    for name, direction in T_POSE_DIRECTIONS.items():
        directions[skeleton.JOINT_INDEX[name]] = direction
    offsets = directions * skeleton.REFERENCE_BONE_LENGTHS[:, None]  # (22, 3)
    joints = np.zeros((skeleton.NUM_JOINTS, 3))
    for j in range(1, skeleton.NUM_JOINTS):  # parents come before children
        joints[j] = joints[skeleton.PARENTS[j]] + offsets[j]
    joints = joints @ skeleton.HML_TO_BLENDER.T
    joints[:, 2] -= joints[:, 2].min()
    return joints


def smpl_bone_tails(joints: np.ndarray) -> np.ndarray:
    """(22, 3) tail of each bone: its (main) child joint, or a short step along its own direction for leaves."""
    children = {}
    for j, parent in enumerate(skeleton.PARENTS):
        if parent >= 0:
            children.setdefault(parent, []).append(j)
    tails = np.empty_like(joints)
    for j, name in enumerate(skeleton.JOINT_NAMES):
        if name in MAIN_CHILD:
            tails[j] = joints[skeleton.JOINT_INDEX[MAIN_CHILD[name]]]
        elif j in children:
            tails[j] = joints[children[j][0]]
        else:
            direction = joints[j] - joints[skeleton.PARENTS[j]]
            tails[j] = joints[j] + LEAF_BONE_LENGTH * direction / np.linalg.norm(direction)
    return tails


def add_smpl_armature(context, name="SMPL"):
    """A new armature object at the 3D cursor (in the active collection) with the 22 HumanML3D joints as bones."""
    joints = smpl_rest_joints()
    tails = smpl_bone_tails(joints)
    armature = bpy.data.armatures.new(name)
    ob = bpy.data.objects.new(name, armature)
    ob.location = context.scene.cursor.location
    context.collection.objects.link(ob)
    context.view_layer.objects.active = ob  # like Blender's own "Add" operators: the new object is active
    ob.select_set(True)
    bpy.ops.object.mode_set(mode='EDIT')  # edit bones exist only in edit mode
    bones = []
    for j, joint_name in enumerate(skeleton.JOINT_NAMES):
        bone = armature.edit_bones.new(joint_name)
        bone.head, bone.tail = joints[j], tails[j]
        if skeleton.PARENTS[j] >= 0:
            bone.parent = bones[skeleton.PARENTS[j]]
            bone.use_connect = bool(np.allclose(bone.parent.tail, bone.head))
        bones.append(bone)
    bpy.ops.object.mode_set(mode='OBJECT')
    for pose_bone in ob.pose.bones:
        pose_bone.rotation_mode = 'QUATERNION'
    return ob


def read_rig(ob) -> retarget.RigDescription:
    """Armature object -> the plain arrays the retargeter works on (rest matrices in armature space, roll included)."""
    bones = ob.data.bones
    index = {bone.name: i for i, bone in enumerate(bones)}
    return retarget.RigDescription(
        names=tuple(index),
        parents=np.array([index[b.parent.name] if b.parent else -1 for b in bones], dtype=int),
        rest=np.array([b.matrix_local for b in bones], dtype=np.float64).reshape(len(bones), 4, 4),
        world=np.array(ob.matrix_world, dtype=np.float64),
    )


# --- bone map stored on the armature ----------------------------------------------------------------------------

def read_bone_map(armature) -> dict[str, str]:
    """joint name -> bone name for every mapped joint of `armature` (an Armature datablock)."""
    return {item.name: item.bone for item in armature.mdm.bone_map if item.bone}


def write_bone_map(armature, mapping: dict[str, str]) -> None:
    """Store `mapping` (joint -> bone) as one row per HumanML3D joint; unmapped joints keep an empty bone."""
    rows = armature.mdm.bone_map
    rows.clear()
    for joint in skeleton.JOINT_NAMES:
        row = rows.add()
        row.name = joint
        row.bone = mapping.get(joint, "")


# --- bone-map detection and presets (backend.bone_maps) ------------------------------------------------------------

PRESET_ITEMS = tuple((name, name, f"Bone names of {name} rigs") for name in bone_maps.PRESETS)  # UI enum


def detect(ob) -> bone_maps.Detection:
    """The preset (or bone-tree map) that best fits `ob`'s bones; UserError naming the joints it cannot map."""
    description = read_rig(ob)
    return bone_maps.detect(description.names, description.parents)


def apply_preset(ob, preset: str) -> bone_maps.Detection:
    mapping = bone_maps.apply_preset(preset, [bone.name for bone in ob.data.bones])
    missing = tuple(j for j in skeleton.JOINT_NAMES if j not in mapping)
    return bone_maps.Detection(preset, mapping, len(mapping) / skeleton.NUM_JOINTS, missing)


def bone_map_for_bake(ob):
    """(joint -> bone map, detection to store after a successful bake or None): the stored map, else detected."""
    stored = read_bone_map(ob.data)
    if stored:
        return stored, None
    detection = detect(ob)
    return detection.mapping, detection


def store_detection(ob, detection) -> None:
    write_bone_map(ob.data, detection.mapping)
    ob.data.mdm.preset = detection.preset
    ob.data.mdm.confidence = detection.confidence


# --- the rig's own poses (in-betweening) ---------------------------------------------------------------------------

ROTATION_PROPS = {'QUATERNION': "rotation_quaternion", 'AXIS_ANGLE': "rotation_axis_angle"}  # else rotation_euler


def rotation_prop(pose_bone) -> str:
    return ROTATION_PROPS.get(pose_bone.rotation_mode, "rotation_euler")


def rest_joints_world(ob, bone_map: dict) -> np.ndarray:
    """(22, 3) world rest heads of the mapped bones, NaN for joints the map lacks."""
    joints = np.full((skeleton.NUM_JOINTS, 3), np.nan)
    matrix = np.array(ob.matrix_world)
    for joint, bone in bone_map.items():
        head = np.append(np.array(ob.data.bones[bone].head_local), 1.0)
        joints[skeleton.JOINT_INDEX[joint]] = (matrix @ head)[:3]
    return joints


def constraint_note(ob, bones) -> str:
    """A warning naming the bones among `bones` that an active constraint moves (an IK on a shin, a Copy Rotation):
    keys on them do not show as keyed. "" when there are none."""
    moved = sorted(bone for bone in set(bones)
                   if any(not c.mute and c.influence > 0 for c in ob.pose.bones[bone].constraints))
    if not moved:
        return ""
    shown = ", ".join(moved[:4]) + (f" and {len(moved) - 4} more" if len(moved) > 4 else "")
    return (f"; note: constraints on {shown} override their keys, so the rig does not show the motion as keyed: "
            "mute those constraints (or switch the limb to FK)")


def require_evaluated(ob, depsgraph) -> None:
    """UserError when Blender does not evaluate `ob` (disabled in viewports, or in a disabled or excluded
    collection): its pose would not follow its keys, so they cannot be read."""
    # `evaluated_get` may still hand back a stale copy from before the object was disabled, so ask the graph.
    if not any(block.original == ob for block in depsgraph.ids):
        raise UserError(f"'{ob.name}' is not evaluated in this view layer (disabled in viewports, or in a disabled "
                        "or excluded collection), so its keyed poses cannot be read: enable it first")


def poses_at(ob, scene, frames, bone_map: dict, properties=()):
    """The rig as it plays at each scene frame, evaluated through the depsgraph (constraints and drivers applied, so
    bones that follow controls are where they show): (joints (K, 22, 3) world heads of the mapped bones, NaN where
    unmapped; values {(bone, prop): (K, k)} of each of `properties`, (bone, prop) pairs such as
    ("thigh.L", "rotation_quaternion") or ("torso", '["head_follow"]')). The scene's current frame is restored."""
    current = scene.frame_current
    joints = np.full((len(frames), skeleton.NUM_JOINTS, 3), np.nan)
    values = {key: [] for key in properties}
    try:
        for k, frame in enumerate(frames):
            scene.frame_set(int(frame))
            evaluated = ob.evaluated_get(bpy.context.evaluated_depsgraph_get())
            matrix = np.array(evaluated.matrix_world)
            for joint, bone in bone_map.items():
                head = np.append(np.array(evaluated.pose.bones[bone].head), 1.0)
                joints[k, skeleton.JOINT_INDEX[joint]] = (matrix @ head)[:3]
            for (bone, prop), rows in values.items():
                rows.append(np.atleast_1d(np.array(evaluated.pose.bones[bone].path_resolve(prop), np.float64)))
    finally:
        scene.frame_set(current)
    return joints, {key: np.array(rows) for key, rows in values.items()}
