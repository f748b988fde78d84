"""Retargeting in real Blender (bpy 5.0.1): a CMU clip posed on four real rigs, measured on Blender's own pose.

Rigs: Rigify's human metarig, a Mixamo-named rig (centimetre bones under a turned, 0.01-scaled object, A-pose,
rolled bones, Euler rotation mode), CMU's MotionBuilder skeleton from Blender's BVH importer (ZYX Euler), and our
22-bone skeleton (T-pose, quaternions). Each frame's pose is set bone by bone and Blender evaluates it. Then a rig
Rigify generates from its metarig, posed through its controls and measured on its deform bones.
"""
import numpy as np
import pytest

from backend import bone_maps, metrics, skeleton
from backend.mocap import ASF_METRES, load_clip
from backend.retarget import (RigDescription, SEGMENT_ENDS, bone_rest_matrix, quaternion_to_euler, retarget,
                              to_motion_frame)
import blender_util
from conftest import MOCAP_DIR
from test_retarget import rest_joints

pytestmark = pytest.mark.blender

J = skeleton.JOINT_INDEX
MIXAMO_ROLLS_DEG = {"LeftArm": 90, "LeftForeArm": 90, "LeftHand": 90, "RightArm": -90, "RightForeArm": -90,
                    "RightHand": -90, "LeftUpLeg": 180, "RightUpLeg": 180, "LeftLeg": 180, "RightLeg": 180}


def read_rig(ob) -> RigDescription:
    """An armature object as plain arrays (the add-on's `rig.read_rig` is this function)."""
    bones = ob.data.bones
    index = {bone.name: i for i, bone in enumerate(bones)}
    return RigDescription(
        names=tuple(index),
        parents=np.array([index[b.parent.name] if b.parent else -1 for b in bones], dtype=int),
        rest=np.array([b.matrix_local for b in bones], dtype=np.float64).reshape(len(bones), 4, 4),
        world=np.array(ob.matrix_world, dtype=np.float64),
    )


@pytest.fixture(scope="module")
def motion():
    """CMU subject 135's front kicks (steps, kicks, arm swings): 10 s at 20 fps, Y-up metres."""
    joints = load_clip(MOCAP_DIR / "acrnn" / "martial" / "04.bvh", fps=120, skip=4).joints[:200]
    return joints - [0, joints[:, skeleton.CONTACT_JOINTS, 1].min(), 0]  # floor at y = 0, as in HumanML3D


def add_rig(name, bone_names, joints, rolls, world, rotation_mode):
    """An armature with one bone per joint (pointing at its segment end) under object matrix `world`."""
    import bpy
    from mathutils import Matrix
    ob = bpy.data.objects.new(name, bpy.data.armatures.new(name))
    bpy.context.collection.objects.link(ob)
    ob.matrix_world = Matrix(world.tolist())
    bpy.context.view_layer.objects.active = ob
    bpy.ops.object.mode_set(mode='EDIT')
    local = joints @ np.linalg.inv(world)[:3, :3].T + np.linalg.inv(world)[:3, 3]
    edit_bones = []
    for j, joint in enumerate(skeleton.JOINT_NAMES):
        bone = ob.data.edit_bones.new(bone_names[j])
        ends = SEGMENT_ENDS.get(joint)
        bone.head = local[j]
        bone.tail = local[J[ends[0]]] if ends else 1.5 * local[j] - 0.5 * local[skeleton.PARENTS[j]]
        bone.roll = rolls[j]
        if j:
            bone.parent = edit_bones[skeleton.PARENTS[j]]
        edit_bones.append(bone)
    bpy.ops.object.mode_set(mode='OBJECT')
    for pose_bone in ob.pose.bones:
        pose_bone.rotation_mode = rotation_mode
    return ob


def make_rigify(motion=None):
    import addon_utils
    import bpy
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    return bpy.context.active_object


def make_mixamo(motion=None):
    names = [f"mixamorig:{n}" for n in bone_maps.PRESETS["mixamo"].values()]
    rolls = np.radians([MIXAMO_ROLLS_DEG.get(n.split(":")[1], 0) for n in names])
    world = np.diag([0.01, 0.01, 0.01, 1.0])
    world[1:3, 1:3] = [[0, -0.01], [0.01, 0]]  # FBX import: turned 90 degrees about X, centimetres
    return add_rig("Mixamo", names, rest_joints(40.0), rolls, world, 'ZXY')


def make_cmu_bvh(motion=None):
    import bpy
    bpy.ops.import_anim.bvh(filepath=str(MOCAP_DIR / "mb_misc" / "02_01.bvh"), global_scale=ASF_METRES,
                            update_scene_fps=False, update_scene_duration=False)
    ob = bpy.context.active_object
    ob.animation_data_clear()  # its pose bones keep the clip's first frame: `held_bones` must reset them
    return ob


def make_smpl(motion):
    """Our 22-bone skeleton (T-pose, quaternions) with the clip's own bone lengths: same proportions."""
    lengths = np.linalg.norm(motion[:, 1:] - motion[:, list(skeleton.PARENTS[1:])], axis=-1).mean(axis=0)
    return add_rig("SMPL", list(skeleton.JOINT_NAMES), rest_joints(0.0, lengths=np.concatenate([[0], lengths])),
                   np.zeros(22), np.eye(4), 'QUATERNION')


RIGS = {"rigify_metarig": make_rigify, "mixamo": make_mixamo, "cmu_mb": make_cmu_bvh, "smplx": make_smpl}


@pytest.fixture
def scene():
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy.context.scene
    bpy.ops.wm.read_factory_settings(use_empty=True)


def pose_frames(ob, result, bone_map):
    """Set each frame's keyed values on the pose bones; return Blender's evaluated joint heads (T, 22, 3) world
    and the Euler angles it was given (bone -> (T, 3)) for bones in Euler mode."""
    import bpy
    heads = np.full(result.joints.shape, np.nan)
    eulers = {name: quaternion_to_euler(result.rotations[:, i], ob.pose.bones[name].rotation_mode)
              for i, name in enumerate(result.bones) if len(ob.pose.bones[name].rotation_mode) == 3}
    joint_bones = {J[joint]: ob.pose.bones[bone] for joint, bone in bone_map.items()}
    world = ob.matrix_world
    for name in result.held_bones:  # unmapped bones between mapped ones, at rest as retarget assumes
        ob.pose.bones[name].matrix_basis.identity()
    for t in range(len(result.rotations)):
        for i, name in enumerate(result.bones):
            pose_bone = ob.pose.bones[name]
            if name in eulers:
                pose_bone.rotation_euler = eulers[name][t]
            else:
                pose_bone.rotation_quaternion = result.rotations[t, i]
        for i, name in enumerate(result.location_bones):
            ob.pose.bones[name].location = result.locations[t, i]
        bpy.context.view_layer.update()
        for j, pose_bone in joint_bones.items():
            heads[t, j] = world @ pose_bone.head
    return heads, eulers


@pytest.mark.parametrize("rig_name", RIGS)
def test_cmu_clip_on_real_rigs(scene, motion, rig_name):
    ob = RIGS[rig_name](motion)
    rig = read_rig(ob)
    detection = bone_maps.detect(rig.names, rig.parents, rig.heads)
    assert detection.preset == rig_name, detection
    result = retarget(motion, rig, detection.mapping)
    order = [J[j] for j in skeleton.JOINT_NAMES if j in detection.mapping]
    heads, eulers = pose_frames(ob, result, detection.mapping)
    # Blender's pose puts every mapped joint where retarget's own FK said (so the add-on can trust `joints`)
    np.testing.assert_allclose(heads[:, order], result.joints[:, order], atol=1e-4 * result.scale)

    source = motion @ skeleton.HML_TO_BLENDER.T @ result.placement[:3, :3].T  # turned to the rig's facing
    segments = [(J[a], next(J[e] for e in ends if e in detection.mapping)) for a, ends in SEGMENT_ENDS.items()
                if a in detection.mapping and any(e in detection.mapping for e in ends)]
    a, b = np.array(segments).T
    errors = metrics.direction_error(heads[:, b] - heads[:, a], source[:, b] - source[:, a])
    source_skate = metrics.foot_skate_ratio(motion)
    rig_skate = metrics.foot_skate_ratio(to_motion_frame(result, heads))
    print(f"\n{rig_name}: {len(segments)} segments, direction error mean {errors.mean():.4f} max "
          f"{errors.max():.4f} deg; foot skate source {source_skate:.4f} rig {rig_skate:.4f}; scale "
          f"{result.scale:.3f}; Euler bones {len(eulers)}")
    assert errors.mean() < 2 and errors.max() < 10
    assert {"left_foot", "right_foot"} <= set(detection.mapping)  # the skate metric's joints are the rig's own
    assert abs(rig_skate - source_skate) <= 0.01  # stance_shift keeps contacts at other proportions too

    from mathutils import Quaternion
    for name, angles in eulers.items():  # our Euler angles are mathutils' compatible ones
        q = result.rotations[:, result.bones.index(name)]
        mode = ob.pose.bones[name].rotation_mode
        previous = Quaternion(q[0]).to_euler(mode)
        for t in range(len(q)):
            previous = Quaternion(q[t]).to_euler(mode, previous)
            np.testing.assert_allclose(angles[t], tuple(previous), atol=1e-4, err_msg=f"{name} frame {t}")


@pytest.mark.slow
def test_cmu_clip_on_generated_rigify_rig(scene, motion):
    """A rig Rigify generates from its metarig: detected as a generated rig (the metarig beside it as the metarig),
    posed through its controls with the switches keyed (drivers follow animated properties), and measured on its
    deform bones as Blender evaluates them, constraints and drivers applied."""
    import bpy
    ob = blender_util.add_rigify_rig()
    rigs = {preset: read_rig(o) for preset, o in (("rigify_metarig", bpy.data.objects["metarig"]), ("rigify_rig", ob))}
    for preset, rig in rigs.items():
        assert bone_maps.detect(rig.names, rig.parents, rig.heads).preset == preset
    rig = rigs["rigify_rig"]
    detection = bone_maps.detect(rig.names, rig.parents, rig.heads)
    controls = bone_maps.controls_for(detection.mapping, rig.names)
    result = retarget(motion, rig, detection.mapping, controls=controls)
    assert set(result.bones) == {*controls.bones.values(), controls.root} and result.location_bones == ("torso",)
    for (bone, prop), value in controls.switches.items():
        ob.pose.bones[bone][prop] = value
        ob.pose.bones[bone].keyframe_insert(f'["{prop}"]', frame=1)
    eulers = {name: quaternion_to_euler(result.rotations[:, i], ob.pose.bones[name].rotation_mode)
              for i, name in enumerate(result.bones) if len(ob.pose.bones[name].rotation_mode) == 3}
    heads, directions = np.zeros(result.joints.shape), {bone: [] for bone in blender_util.RIGIFY_DEFORM_SEGMENTS}
    for t in range(len(motion)):
        for i, name in enumerate(result.bones):
            if name in eulers:
                ob.pose.bones[name].rotation_euler = eulers[name][t]
            else:
                ob.pose.bones[name].rotation_quaternion = result.rotations[t, i]
        ob.pose.bones["torso"].location = result.locations[t, 0]
        bpy.context.scene.frame_set(1)  # evaluates the switches' curves, then the drivers that read them
        heads[t], pose = blender_util.deform_pose(ob)
        for bone, direction in pose.items():
            directions[bone].append(direction)
    np.testing.assert_allclose(heads, result.joints, atol=1e-4 * result.scale)  # retarget's own FK is Blender's

    source = motion @ skeleton.HML_TO_BLENDER.T @ result.placement[:3, :3].T
    errors = blender_util.deform_errors(heads, {b: np.array(d) for b, d in directions.items()}, source)
    source_skate = metrics.foot_skate_ratio(motion)
    rig_skate = metrics.foot_skate_ratio(to_motion_frame(result, heads))
    print(f"\ngenerated Rigify rig: {errors.shape[1]} deform segments and bones, direction error mean "
          f"{errors.mean():.4f} max {errors.max():.4f} deg; foot skate source {source_skate:.4f} rig {rig_skate:.4f}; "
          f"scale {result.scale:.3f}; Euler bones {len(eulers)}")
    assert errors.mean() < 2 and errors.max() < 10
    assert abs(rig_skate - source_skate) <= 0.01


def test_bone_rest_matrix_is_blenders(scene):
    """`bone_rest_matrix(head, tail, roll)` reproduces `bone.matrix_local` of every bone of two real rigs."""
    import bpy
    make_rigify()
    ob = make_mixamo()
    for armature in (bpy.data.objects["metarig"], ob):
        bpy.context.view_layer.objects.active = armature
        bpy.ops.object.mode_set(mode='EDIT')
        edit = {b.name: (np.array(b.head), np.array(b.tail), b.roll) for b in armature.data.edit_bones}
        bpy.ops.object.mode_set(mode='OBJECT')
        for bone in armature.data.bones:
            np.testing.assert_allclose(bone_rest_matrix(*edit[bone.name]), np.array(bone.matrix_local),
                                       atol=5e-5, err_msg=bone.name)  # Blender stores float32
