"""The built extension in real Blender: install the zip, import CMU mocap, bake onto five rigs, restore, undo.

Everything goes through Blender's own operators (`bpy.ops.extensions.package_install_files`, `bpy.ops.mdm.*`).
"""
import json
import math

import numpy as np
import pytest

import blender_util
from backend import bone_maps, mocap, skeleton
from conftest import MOCAP_DIR

pytestmark = pytest.mark.blender

WALK = MOCAP_DIR / "mb_misc" / "02_01.bvh"  # cmu_mb: CMU subject 02 walking (120 fps header, 120 fps data)
EVAL_WALK = MOCAP_DIR / "przestr" / "03_01.bvh"  # cmu_daz, eval split: subject 03 walking on uneven terrain


@pytest.fixture(scope="session")
def extension_repo(tmp_path_factory):
    """Build the zip with build.py and install it with Blender's extension operator, once per session."""
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    zip_path = blender_util.build_extension(tmp_path_factory.mktemp("dist"))
    repo_dir = tmp_path_factory.mktemp("extensions")
    package = blender_util.install_zip(zip_path, repo_dir)
    assert (package / "blender_manifest.toml").is_file()
    assert (package / "backend" / "retarget.py").is_file()
    assert not (package / "backend" / "train.py").exists()
    return repo_dir


@pytest.fixture
def addon(extension_repo):
    module = blender_util.enable_addon(extension_repo)
    yield module
    blender_util.disable_addon()


@pytest.fixture
def walk(addon):
    """The CMU walk imported into the scene's motion list; returns its item."""
    import bpy
    assert bpy.ops.mdm.import_motion(filepath=str(WALK)) == {'FINISHED'}
    return bpy.context.scene.mdm.motions[-1]


def scene_state():
    """What a failed operator must leave untouched: data-block names, actions per object, motion list."""
    import bpy
    return (
        sorted(bpy.data.objects.keys()), sorted(bpy.data.actions.keys()),
        {ob.name: ob.animation_data.action.name if ob.animation_data and ob.animation_data.action else None
         for ob in bpy.data.objects},
        [m.name for m in bpy.context.scene.mdm.motions],
        {ob.name: [(r.name, r.bone) for r in ob.data.mdm.bone_map] for ob in bpy.data.objects
         if ob.type == 'ARMATURE'},
    )


def bake_onto(ob, **kwargs):
    import bpy
    bpy.context.scene.mdm.target = ob
    assert bpy.ops.mdm.bake(**kwargs) == {'FINISHED'}
    return ob.animation_data.action


def expected_frames(motion_frames, source_fps, scene):
    return len(mocap.resample(np.zeros(motion_frames), source_fps, scene.render.fps / scene.render.fps_base))


def check_bake(ob, action, motion, frame_start):
    """A new action, slot assigned, one key per resampled frame from `frame_start`, only mapped bones keyed."""
    import bpy
    assert action is not None and action.name.startswith(motion.name)
    assert action["mdm_frames"] == motion.frames and action["mdm_source_path"] == motion.source_path
    if hasattr(action, "slots"):
        assert ob.animation_data.action_slot is not None
        assert ob.animation_data.action_slot == action.slots[0]
    count = expected_frames(motion.frames, motion.fps, bpy.context.scene)
    fcurves = blender_util.action_fcurves(action, ob)
    assert fcurves, "the bake wrote no curves"
    for fc in fcurves:
        assert len(fc.keyframe_points) == count, fc.data_path
        co = np.empty(2 * count, np.float32)
        fc.keyframe_points.foreach_get("co", co)
        assert np.isfinite(co).all(), fc.data_path
        assert fc.keyframe_points[0].co.x == frame_start
        assert fc.keyframe_points[-1].co.x == frame_start + count - 1
    mapped = set(addon_rig(ob).values())
    above = {parent.name for bone in mapped for parent in ob.data.bones[bone].parent_recursive}
    assert blender_util.keyed_bones(action, ob) <= mapped | above  # unmapped bones above mapped ones: at rest


def addon_rig(ob):
    return {row.name: row.bone for row in ob.data.mdm.bone_map if row.bone}


def test_install_registers_sidebar_and_operators(addon):
    import bpy
    assert hasattr(bpy.types, "MDM_PT_bake") and bpy.types.MDM_PT_bake.bl_category == "Motion"
    for op in ("import_motion", "add_skeleton", "bake", "restore_action", "detect_bone_map"):
        assert hasattr(bpy.ops.mdm, op)
    assert not bpy.ops.mdm.bake.poll()  # nothing to bake yet: greyed out, with a reason


def test_import_bvh_adds_motion_at_20_fps(walk):
    clip = mocap.load_clip(WALK)
    assert walk.frames == len(clip.joints) and walk.fps == skeleton.FPS
    stored = np.asarray(walk["joints"]).reshape(-1, skeleton.NUM_JOINTS, 3)
    np.testing.assert_allclose(stored, clip.joints, atol=1e-5)


def test_npz_samples_become_entries_and_survive_save_reload(addon, tmp_path):
    import bpy
    clip = mocap.load_clip(WALK)
    samples = np.stack([clip.joints[:40], clip.joints[10:50]])  # (S, T, 22, 3)
    path = tmp_path / "gen.npz"
    meta = {"prompt": "a person walks", "seed": 7, "fps": 20, "guidance": 2.5}  # as `backend generate` writes
    np.savez(path, joints=samples, features=np.zeros((2, 40, 263), np.float32), meta=np.array(json.dumps(meta)))
    assert bpy.ops.mdm.import_motion(filepath=str(path)) == {'FINISHED'}
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    motions = bpy.context.scene.mdm.motions
    assert [m.sample for m in motions] == [0, 1] and motions[1].origin == 'GENERATED' and motions[1].seed == 7
    assert motions[1].prompt == "a person walks"
    reloaded = np.asarray(motions[1]["joints"]).reshape(40, skeleton.NUM_JOINTS, 3)
    np.testing.assert_allclose(reloaded, samples[1], atol=1e-6)
    assert bpy.ops.mdm.add_skeleton() == {'FINISHED'}
    action = bake_onto(bpy.context.scene.mdm.target, sample=1)
    assert action.name == "a person walks (seed 7)"
    assert (action["mdm_prompt"], action["mdm_seed"], action["mdm_sample"], action["mdm_guidance"]) == \
        ("a person walks", 7, 1, 2.5)


def test_bake_onto_smpl_skeleton_follows_source_directions(walk):
    import bpy
    assert bpy.ops.mdm.add_skeleton() == {'FINISHED'}
    ob = bpy.context.scene.mdm.target
    assert sorted(b.name for b in ob.data.bones) == sorted(skeleton.JOINT_NAMES)
    bpy.context.scene.frame_current = 11
    action = bake_onto(ob)
    check_bake(ob, action, walk, 11)
    assert len(addon_rig(ob)) == skeleton.NUM_JOINTS
    # Each bone with a child joint must point along the source segment (Blender space, resampled to the scene's
    # 24 fps as the bake is) at sampled frames.
    joints = np.asarray(walk["joints"]).reshape(-1, skeleton.NUM_JOINTS, 3)
    source = mocap.resample(joints, walk.fps, bpy.context.scene.render.fps) @ skeleton.HML_TO_BLENDER.T
    for frame in (0, len(source) // 2, len(source) - 1):
        bpy.context.scene.frame_set(11 + frame)
        for child, parent in enumerate(skeleton.PARENTS):
            if parent < 0 or skeleton.JOINT_NAMES[parent] in ("pelvis", "spine3"):
                continue  # bones with several children point at one of them only
            bone = ob.pose.bones[skeleton.JOINT_NAMES[parent]]
            posed = np.array(ob.matrix_world.to_3x3() @ (bone.tail - bone.head))
            segment = source[frame, child] - source[frame, parent]
            cosine = posed @ segment / np.linalg.norm(posed) / np.linalg.norm(segment)
            assert math.degrees(math.acos(min(1.0, cosine))) < 5.0, (frame, bone.name)


def posed_matrices(ob, frames):
    """(F, B, 4, 4) every pose bone's armature-space matrix at each scene frame."""
    import bpy
    scene = bpy.context.scene
    current, poses = scene.frame_current, []
    for frame in frames:
        scene.frame_set(frame)
        poses.append([np.array(pose_bone.matrix) for pose_bone in ob.pose.bones])
    scene.frame_set(current)
    return np.array(poses)


def test_every_rotation_mode_gives_the_same_pose(walk):
    import bpy
    assert bpy.ops.mdm.add_skeleton() == {'FINISHED'}
    ob = bpy.context.scene.mdm.target
    frames = range(1, expected_frames(walk.frames, walk.fps, bpy.context.scene), 7)
    bake_onto(ob)
    reference = posed_matrices(ob, frames)  # quaternion keys
    for mode in ('AXIS_ANGLE', 'XYZ', 'ZXY', 'YZX'):
        for pose_bone in ob.pose.bones:
            pose_bone.rotation_mode = mode
        action = bake_onto(ob)
        assert {fc.data_path.rsplit(".", 1)[1] for fc in blender_util.action_fcurves(action, ob)} == \
            {"location", "rotation_axis_angle" if mode == 'AXIS_ANGLE' else "rotation_euler"}
        np.testing.assert_allclose(posed_matrices(ob, frames), reference, atol=1e-4, err_msg=mode)


def test_bake_onto_rigify_metarig_at_30_fps(walk):
    import bpy
    bpy.context.scene.render.fps = 30
    ob = blender_util.add_rigify_metarig()
    action = bake_onto(ob)
    check_bake(ob, action, walk, bpy.context.scene.frame_current)
    assert ob.data.mdm.preset and ob.data.mdm.confidence > 0.5


@pytest.mark.slow
def test_bake_onto_generated_rigify_rig_moves_its_deform_bones(addon):
    """A rig Rigify generates from its metarig and a CMU eval clip (subject 03 on uneven terrain): the generated rig
    and the metarig beside it are told apart; the bake keys the FK controls, the torso and the switches (FK, no
    isolation); and the deform bones, as Blender evaluates them (constraints and drivers), follow the source."""
    import bpy
    assert bpy.ops.mdm.import_motion(filepath=str(EVAL_WALK)) == {'FINISHED'}
    motion = bpy.context.scene.mdm.motions[-1]
    ob = blender_util.add_rigify_rig()
    bpy.context.scene.mdm.target = bpy.data.objects["metarig"]
    assert bpy.ops.mdm.detect_bone_map() == {'FINISHED'}
    assert bpy.data.objects["metarig"].data.mdm.preset == "rigify_metarig"
    start = bpy.context.scene.frame_current
    action = bake_onto(ob)
    assert (ob.data.mdm.preset, ob.data.mdm.confidence) == ("rigify_rig", 1.0)
    controls = bone_maps.CONTROL_RIGS["rigify_rig"]
    assert blender_util.keyed_bones(action, ob) == {*controls.bones.values(), controls.root,
                                                     *(bone for bone, _ in controls.switches)}
    count = expected_frames(motion.frames, motion.fps, bpy.context.scene)
    assert all(len(fc.keyframe_points) == count for fc in blender_util.action_fcurves(action, ob))
    heads, directions = [], {bone: [] for bone in blender_util.RIGIFY_DEFORM_SEGMENTS}
    for frame in range(start, start + count):
        bpy.context.scene.frame_set(frame)
        joints, pose = blender_util.deform_pose(ob)
        heads.append(joints)
        for bone, direction in pose.items():
            directions[bone].append(direction)
    joints = np.asarray(motion["joints"]).reshape(-1, skeleton.NUM_JOINTS, 3)
    source = mocap.resample(joints, motion.fps, bpy.context.scene.render.fps) @ skeleton.HML_TO_BLENDER.T
    errors = blender_util.deform_errors(np.array(heads), {b: np.array(d) for b, d in directions.items()}, source)
    print(f"\ngenerated Rigify rig, {EVAL_WALK.name}: deform direction error mean {errors.mean():.4f} max "
          f"{errors.max():.4f} deg over {count} frames")
    assert errors.mean() < 2 and errors.max() < 10

    del ob.pose.bones["thigh_parent.L"]["IK_FK"]  # a rig from a Rigify without this switch
    before = scene_state()
    with pytest.raises(RuntimeError, match=r'lacks the switch properties thigh_parent.L\["IK_FK"\]'):
        bpy.ops.mdm.bake()
    assert scene_state() == before


def test_bake_onto_mixamo_rig_respects_euler_mode(walk, addon):
    import bpy
    ob = blender_util.add_mixamo_rig(addon)
    action = bake_onto(ob)
    check_bake(ob, action, walk, bpy.context.scene.frame_current)
    paths = {fc.data_path.rsplit(".", 1)[1] for fc in blender_util.action_fcurves(action, ob)}
    assert "rotation_euler" in paths and "rotation_quaternion" not in paths


def test_edited_bone_map_is_what_gets_baked(walk, addon):
    import bpy
    ob = blender_util.add_mixamo_rig(addon)
    bpy.context.scene.mdm.target = ob
    assert bpy.ops.mdm.detect_bone_map() == {'FINISHED'}
    assert (ob.data.mdm.preset, ob.data.mdm.confidence) == ("mixamo", 1.0)
    ob.data.mdm.bone_map["head"].bone = ""  # the user unmaps the head in the sidebar's list
    action = bake_onto(ob)
    assert "mixamorig:Head" not in blender_util.keyed_bones(action, ob)
    assert "mixamorig:Neck" in blender_util.keyed_bones(action, ob)

    assert bpy.ops.mdm.apply_bone_map_preset(preset="rigify_metarig") == {'FINISHED'}
    assert ob.data.mdm.confidence < 0.1  # only "spine" matches (Mixamo's Spine)
    before = scene_state()
    with pytest.raises(RuntimeError, match="lacks required joints"):
        bpy.ops.mdm.bake()
    assert scene_state() == before


def pelvis_track(ob, bone, frames):
    """(F, 3) world position of `bone`'s head at each scene frame (the current frame is left as it was)."""
    import bpy
    scene = bpy.context.scene
    current, track = scene.frame_current, []
    for frame in frames:
        scene.frame_set(frame)
        track.append(np.array(ob.matrix_world @ ob.pose.bones[bone].head))
    scene.frame_set(current)
    return np.array(track)


def test_root_options_move_the_travel_between_bones(walk, addon):
    import bpy
    ob = blender_util.add_mixamo_rig(addon, root_bone=True)
    hips = "mixamorig:Hips"
    frames = range(1, 1 + expected_frames(walk.frames, walk.fps, bpy.context.scene))
    bake_onto(ob)
    travelling = pelvis_track(ob, hips, frames)
    assert np.linalg.norm(travelling[-1, :2] - travelling[0, :2]) > 1.0  # the CMU walk covers metres

    bpy.context.scene.mdm.root_mode = 'IN_PLACE'
    bake_onto(ob)
    in_place = pelvis_track(ob, hips, frames)
    assert np.ptp(in_place[:, :2], axis=0).max() < 1e-4
    np.testing.assert_allclose(in_place[:, 2], travelling[:, 2], atol=1e-4)  # the height is kept

    bpy.context.scene.mdm.root_mode = 'ROOT_BONE'
    bpy.context.scene.mdm.root_bone = "Root"
    action = bake_onto(ob)
    np.testing.assert_allclose(pelvis_track(ob, hips, frames), travelling, atol=1e-4)
    assert "Root" in blender_util.keyed_bones(action, ob)


def test_root_bone_mode_without_a_root_bone_is_refused(walk):
    import bpy
    assert bpy.ops.mdm.add_skeleton() == {'FINISHED'}
    bpy.context.scene.mdm.root_mode = 'ROOT_BONE'
    before = scene_state()
    with pytest.raises(RuntimeError, match="root"):
        bpy.ops.mdm.bake()
    assert scene_state() == before


def test_disable_unregisters_everything(extension_repo):
    import bpy
    blender_util.enable_addon(extension_repo)
    blender_util.disable_addon()
    assert not hasattr(bpy.types, "MDM_PT_bake") and not hasattr(bpy.types, "MDM_OT_bake")
    assert not hasattr(bpy.types.Scene, "mdm") and not hasattr(bpy.types.Armature, "mdm")


def test_bake_onto_cmu_import_stashes_and_restores_its_action(walk):
    import bpy
    ob = blender_util.import_bvh_armature(WALK, scale=mocap.ASF_METRES)
    original = ob.animation_data.action
    action = bake_onto(ob)
    check_bake(ob, action, walk, bpy.context.scene.frame_current)
    stashed = [s.action for t in ob.animation_data.nla_tracks for s in t.strips]
    assert original in stashed
    # The import's action bends the unmapped Neck and LowerBack; the retargeting assumes them at rest, so the bake
    # keys them there (else the head would be off by the old action's Neck, ~5 cm).
    held = {"Neck", "LowerBack"} - set(addon_rig(ob).values())
    assert held and held <= blender_util.keyed_bones(action, ob)
    for frame in (1, 30):
        bpy.context.scene.frame_set(frame)
        for bone in held:
            np.testing.assert_allclose(np.array(ob.pose.bones[bone].matrix_basis), np.eye(4), atol=1e-6)
    assert bpy.ops.mdm.restore_action() == {'FINISHED'}
    assert ob.animation_data.action == original
    if hasattr(original, "slots"):
        assert ob.animation_data.action_slot == original.slots[0]
    assert not ob.animation_data.nla_tracks
    assert action.name in bpy.data.actions  # the bake itself is kept


def test_baking_twice_then_restoring_brings_back_the_users_action_and_keeps_their_stash(walk):
    """Blender's own Stash names its tracks "[Action Stash]" too: Restore must remove only the add-on's track, and
    after two bakes bring back the action the user had, not the first bake."""
    import bpy
    ob = blender_util.import_bvh_armature(WALK, scale=mocap.ASF_METRES)
    animation_data = ob.animation_data
    old_take = animation_data.action
    track = animation_data.nla_tracks.new()  # what the Action Editor's Stash makes
    track.name, track.mute = "[Action Stash]", True
    track.strips.new(old_take.name, 1, old_take)
    current = old_take.copy()
    animation_data.action = current
    first = bake_onto(ob)
    second = bake_onto(ob)
    assert sorted(t.name for t in animation_data.nla_tracks) == ["[Action Stash]", "[Action Stash].001"]
    assert bpy.ops.mdm.restore_action() == {'FINISHED'}
    assert animation_data.action == current
    assert [[s.action for s in t.strips] for t in animation_data.nla_tracks] == [[old_take]]
    assert first.use_fake_user and second.use_fake_user  # both bakes kept, to assign by hand
    assert not bpy.ops.mdm.restore_action.poll()


def test_a_linked_rig_is_refused(addon, walk, tmp_path):
    """Blender lets a script key linked data, but the keys are gone once the file is saved and opened again."""
    import bpy
    ob = blender_util.add_mixamo_rig(addon)
    library = tmp_path / "rigs.blend"
    bpy.data.libraries.write(str(library), {ob})
    bpy.data.objects.remove(ob)
    with bpy.data.libraries.load(str(library), link=True) as (source, linked):
        linked.objects = ["Mixamo"]
    linked_ob = linked.objects[0]
    bpy.context.collection.objects.link(linked_ob)
    bpy.context.scene.mdm.target = linked_ob
    before = scene_state()
    with pytest.raises(RuntimeError, match="is linked from .*rigs.blend: its changes would be lost on save"):
        bpy.ops.mdm.bake()
    with pytest.raises(RuntimeError, match="is linked from"):
        bpy.ops.mdm.detect_bone_map()
    assert scene_state() == before and linked_ob.animation_data is None


def test_an_unevenly_scaled_rig_is_refused(addon, walk):
    """Blender shears the posed bones of an unevenly scaled object off the directions solved for them."""
    import bpy
    ob = blender_util.add_mixamo_rig(addon)
    ob.scale = (0.01, 0.01, 0.0125)
    bpy.context.scene.mdm.target = ob
    before = scene_state()
    with pytest.raises(RuntimeError, match="'Mixamo' is scaled unevenly .*apply its scale"):
        bpy.ops.mdm.bake()
    assert scene_state() == before
    ob.scale = (-0.01, 0.01, 0.01)  # a mirror is an even scale
    assert bpy.ops.mdm.bake() == {'FINISHED'}


def test_constrained_bones_are_named_after_a_bake(addon, walk):
    """An IK on a shin overrides the keys there: the bake says which bones will not show the motion."""
    import bpy
    ob = blender_util.add_mixamo_rig(addon)
    ik = ob.pose.bones["mixamorig:LeftLeg"].constraints.new('IK')
    ik.chain_count = 2
    action = bake_onto(ob)
    bones = blender_util.keyed_bones(action, ob)
    assert "constraints on mixamorig:LeftLeg override" in addon.rig.constraint_note(ob, bones)
    ik.mute = True
    assert addon.rig.constraint_note(ob, bones) == ""
    assert addon.rig.constraint_note(blender_util.add_rigify_metarig(), ["spine", "thigh.L"]) == ""


def test_a_rig_in_nla_tweak_mode_is_refused_before_anything_changes(walk):
    """In tweak mode the rig's action is the strip's (read-only, in the strip's time): a bake would leave a stash
    track and an orphan action behind a traceback."""
    import bpy
    ob = blender_util.import_bvh_armature(WALK, scale=mocap.ASF_METRES)
    animation_data = ob.animation_data
    action = animation_data.action
    track = animation_data.nla_tracks.new()
    track.strips.new(action.name, 1, action).select = True
    animation_data.action = None
    animation_data.nla_tracks.active = track
    animation_data.use_tweak_mode = True
    bpy.context.scene.mdm.target = ob
    before, tracks = scene_state(), len(animation_data.nla_tracks)
    with pytest.raises(RuntimeError, match="is in NLA tweak mode: exit it"):
        bpy.ops.mdm.bake()
    assert scene_state() == before and len(animation_data.nla_tracks) == tracks


def test_preview_asks_for_object_mode_before_making_its_skeleton(walk):
    """The preview skeleton is built in Edit Mode; from Pose Mode that would pull the user's rig along."""
    import bpy
    assert bpy.ops.mdm.add_skeleton() == {'FINISHED'}
    bpy.ops.object.mode_set(mode='POSE')
    assert not bpy.ops.mdm.preview.poll()
    bpy.ops.object.mode_set(mode='OBJECT')
    assert bpy.ops.mdm.preview() == {'FINISHED'}
    bpy.context.view_layer.objects.active = bpy.data.objects["SMPL"]
    bpy.ops.object.mode_set(mode='POSE')
    assert bpy.ops.mdm.preview.poll()  # the skeleton exists: a new preview only replaces its action
    assert bpy.ops.mdm.preview() == {'FINISHED'} and bpy.context.mode == 'POSE'


def test_one_undo_step_removes_the_whole_bake(walk):
    """In the bpy module, operators called from Python push no undo step (Blender's UI does that when an operator
    with 'UNDO' finishes), so the test pushes the steps around the bake itself: one undo must then remove the new
    action, the stash track and the assignment, and give the imported action back."""
    import bpy
    ob = blender_util.import_bvh_armature(WALK, scale=mocap.ASF_METRES)
    name, original_name = ob.name, ob.animation_data.action.name
    bpy.context.scene.mdm.target = ob
    bpy.ops.ed.undo_push(message="before bake")
    actions_before = sorted(bpy.data.actions.keys())
    assert bpy.ops.mdm.bake() == {'FINISHED'}
    assert len(bpy.data.actions) == len(actions_before) + 1
    bpy.ops.ed.undo_push(message="Bake Motion")
    bpy.ops.ed.undo()
    ob = bpy.data.objects[name]  # undo reloads data: old Python references are stale
    assert sorted(bpy.data.actions.keys()) == actions_before
    assert ob.animation_data.action.name == original_name
    assert not ob.animation_data.nla_tracks


def test_bake_without_target_or_onto_a_mesh_changes_nothing(walk):
    import bpy
    before = scene_state()
    with pytest.raises(RuntimeError, match="no target armature"):
        bpy.ops.mdm.bake()
    assert scene_state() == before
    mesh = bpy.data.objects.new("NotARig", bpy.data.meshes.new("NotARig"))
    bpy.context.collection.objects.link(mesh)
    before = scene_state()
    with pytest.raises(RuntimeError, match="not an armature"):
        bpy.ops.mdm.bake(target="NotARig")
    assert scene_state() == before


def test_bake_onto_unmappable_armature_names_missing_joints(walk):
    import bpy
    ob = blender_util.add_armature("Props", [("Bone", (0, 0, 0), (0, 0, 1), -1),
                                             ("Bone.001", (0, 0, 1), (0, 0, 2), 0)])
    bpy.context.scene.mdm.target = ob
    before = scene_state()
    with pytest.raises(RuntimeError, match="pelvis"):
        bpy.ops.mdm.bake()
    assert scene_state() == before


@pytest.mark.parametrize("name, content", [
    ("broken.bvh", b"HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n"),
    ("broken.npz", b"not a zip file"),
    ("nan.npz", None),
    ("motion.txt", b"walk"),
])
def test_bad_motion_files_are_refused(addon, tmp_path, name, content):
    import bpy
    path = tmp_path / name
    if content is None:
        joints = np.zeros((10, skeleton.NUM_JOINTS, 3), np.float32)
        joints[4, 3, 1] = np.nan
        np.savez(path, joints=joints)
    else:
        path.write_bytes(content)
    before = scene_state()
    with pytest.raises(RuntimeError, match=name):
        bpy.ops.mdm.import_motion(filepath=str(path))
    assert scene_state() == before
