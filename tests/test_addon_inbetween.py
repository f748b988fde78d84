"""In-betweening an animator's keys on a Rigify metarig, and on a rig Rigify generates (keyed on its controls), in
real Blender: keys read slot-aware, the frames between filled, the user's keys and everything outside the range left
exactly as they were, no pop, one undo step."""
import numpy as np
import pytest

import blender_util
from test_addon_bake import EVAL_WALK, bake_onto, scene_state
from test_addon_jobs import TRANSPORTS, addon, checkpoint, extension_repo, use  # noqa: F401 (fixtures)

pytestmark = pytest.mark.blender

KEYS = {  # scene frame -> {bone: (axis, degrees)}: three poses in the range, one after it
    1: {"thigh.L": ("X", 30), "shin.L": ("X", -20), "upper_arm.R": ("Y", 40)},
    13: {"thigh.L": ("X", -25), "shin.L": ("X", -50), "thigh.R": ("X", 35), "upper_arm.L": ("Z", -30)},
    25: {"thigh.L": ("X", 10), "thigh.R": ("X", -15), "forearm.R": ("X", 45), "spine.001": ("Y", 10)},
    45: {"thigh.R": ("X", 20)},
}
PELVIS_PATH = {1: (0.0, 0.0, 0.0), 13: (0.0, 0.3, 0.02), 25: (0.0, 0.7, 0.0), 45: (0.0, 1.0, 0.0)}


def keyed_metarig(keys=KEYS, pelvis_path=PELVIS_PATH, ob=None, left_out=()):
    """The metarig (or `ob`) with the whole pose keyed (every bone's rotation but those `left_out`, the hips'
    location) at each of the keys' frames."""
    import bpy
    from mathutils import Euler
    ob = ob or blender_util.add_rigify_metarig()
    bpy.context.scene.mdm.target = ob
    for frame, pose in keys.items():
        for pose_bone in (pose_bone for pose_bone in ob.pose.bones if pose_bone.name not in left_out):
            axis, degrees = pose.get(pose_bone.name, ("X", 0))
            angles = [0.0, 0.0, 0.0]
            angles["XYZ".index(axis)] = np.radians(degrees)
            if pose_bone.rotation_mode == 'QUATERNION':  # the metarig's shoulders are Euler: key what plays
                pose_bone.rotation_quaternion = Euler(angles).to_quaternion()
                pose_bone.keyframe_insert("rotation_quaternion", frame=frame)
            else:
                pose_bone.rotation_euler = angles
                pose_bone.keyframe_insert("rotation_euler", frame=frame)
        ob.pose.bones["spine"].location = pelvis_path[frame]
        ob.pose.bones["spine"].keyframe_insert("location", frame=frame)
    return ob


POINT_PROPS = ("co", "handle_left", "handle_right", "interpolation", "handle_left_type", "handle_right_type")


def curve_points(ob):
    """{(data_path, index): {frame: (every property of the point)}}: what the user's keys are."""
    return {(fc.data_path, fc.array_index): {round(p.co.x): tuple(tuple(v) if hasattr(v, "__len__") else v
                                                                  for v in (getattr(p, a) for a in POINT_PROPS))
                                             for p in fc.keyframe_points}
            for fc in blender_util.action_fcurves(ob.animation_data.action, ob)}


def assert_refused(ob, message, **inbetween):
    """The in-between is refused with `message`, and the scene and `ob`'s keys are left exactly as they were."""
    import bpy
    before, points = scene_state(), curve_points(ob)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.mdm.inbetween(**inbetween)
    assert scene_state() == before and curve_points(ob) == points


def joint_track(ob, frames):
    """(F, J, 3) world heads of the bones the map drives, at each scene frame."""
    import bpy
    bones = [row.bone for row in ob.data.mdm.bone_map if row.bone] or [b.name for b in ob.pose.bones]
    track = []
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        track.append([np.array(ob.matrix_world @ ob.pose.bones[b].head) for b in bones])
    return np.array(track)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_inbetween_fills_the_gaps_and_keeps_every_key(addon, kind):
    import bpy
    use(addon, kind)
    ob = keyed_metarig()
    assert bpy.ops.mdm.detect_bone_map() == {'FINISHED'}
    mapped = {row.bone for row in ob.data.mdm.bone_map if row.bone}
    before = curve_points(ob)
    keys_before, outside_before = joint_track(ob, [1, 13, 25]), joint_track(ob, range(25, 46))
    bpy.context.scene.frame_set(7)

    assert bpy.ops.mdm.inbetween(frame_start=1, frame_end=25, seed=3) == {'FINISHED'}

    assert bpy.context.scene.frame_current == 7
    after = curve_points(ob)
    for key, points in before.items():  # the user's points, exactly as they were
        assert {f: after[key][f] for f in points} == points, key
        bone = key[0].split('"')[1]
        added = sorted(set(after[key]) - set(points))
        if bone in mapped and (".rotation_" in key[0] or bone == "spine"):
            assert added == [f for f in range(2, 25) if f != 13], key
        else:
            assert added == [], key  # bones the map does not drive (fingers, heel, face...) keep their curves
    np.testing.assert_allclose(joint_track(ob, [1, 13, 25]), keys_before, atol=1e-5)
    np.testing.assert_allclose(joint_track(ob, range(25, 46)), outside_before, atol=1e-5)

    # No pop: a step onto or off a key stays within the motion's own steps. The test model is untrained, so the
    # motion between keys is noise with steps of its own up to ~0.25 m; an uncorrected key (the model's pose
    # meeting the user's) jumps by the model's whole miss at the key, several times that.
    track = joint_track(ob, range(1, 26))
    steps = np.linalg.norm(np.diff(track, axis=0), axis=-1).max(axis=1)  # (24,) step i: frame 1+i -> 2+i
    at_keys = np.zeros(len(steps), bool)
    at_keys[[0, 11, 12, 23]] = True
    assert steps[at_keys].max() <= 1.5 * steps[~at_keys].max(), steps
    assert steps.max() > 1e-3  # something moved in between


def deform_track(ob, frames):
    """(F, D, 2, 3) world head and tail of every deform (DEF-) bone of a generated Rigify rig at each scene frame,
    as Blender evaluates them (constraints and drivers applied)."""
    import bpy
    track = []
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        evaluated = ob.evaluated_get(bpy.context.evaluated_depsgraph_get())
        world = np.array(evaluated.matrix_world)
        ends = np.array([(b.head, b.tail) for b in evaluated.pose.bones if b.name.startswith("DEF-")])
        track.append(ends @ world[:3, :3].T + world[:3, 3])
    return np.array(track)


@pytest.mark.slow
def test_inbetween_on_a_generated_rigify_rig_keys_its_controls(addon):
    """A rig Rigify generates, with a CMU eval clip baked onto its controls and thinned to every 20th frame: the keys
    are read through the controls (the ORG- bones where constraints and drivers put them), the frames between are
    filled on the same controls, the animator's points and the deform bones at the keys stay exactly as they were,
    and nothing pops. Keys shown through IK are refused, the scene untouched."""
    import bpy
    use(addon, "SUBPROCESS")
    assert bpy.ops.mdm.import_motion(filepath=str(EVAL_WALK)) == {'FINISHED'}
    ob = blender_util.add_rigify_rig()
    action = bake_onto(ob)
    first, last = (round(f) for f in action.frame_range)
    keys = list(range(first, last + 1, 20))
    blender_util.keep_keys(ob, keys)
    # the joints sent as keys are where the rig shows them: its ORG- bones as evaluated, on its deform bones' heads
    joints, _ = addon.rig.poses_at(ob, bpy.context.scene, keys, addon.rig.read_bone_map(ob.data))
    shown = []
    for frame in keys:
        bpy.context.scene.frame_set(frame)
        shown.append(blender_util.deform_pose(ob)[0])
    np.testing.assert_allclose(joints, shown, atol=1e-4)
    before, deform_before = curve_points(ob), deform_track(ob, keys)

    assert bpy.ops.mdm.inbetween(frame_start=keys[0], frame_end=keys[-1], seed=3) == {'FINISHED'}

    after = curve_points(ob)
    between = [f for f in range(keys[0] + 1, keys[-1]) if f not in keys]
    for key, points in before.items():  # every control the bake keyed: the user's points kept, the gaps filled
        assert {f: after[key][f] for f in points} == points, key
        assert sorted(set(after[key]) - set(points)) == between, key
    np.testing.assert_allclose(deform_track(ob, keys), deform_before, atol=1e-5)
    track = deform_track(ob, range(keys[0], keys[-1] + 1))
    steps = np.linalg.norm(np.diff(track, axis=0), axis=-1).max(axis=(1, 2))  # step i: frame keys[0]+i -> +i+1
    at_keys = np.zeros(len(steps), bool)
    for key in keys[1:-1]:
        at_keys[[key - keys[0] - 1, key - keys[0]]] = True
    print(f"\ngenerated Rigify rig in-between: largest step onto/off a key {steps[at_keys].max():.3f} m, "
          f"elsewhere {steps[~at_keys].max():.3f} m")
    assert steps[at_keys].max() <= 1.5 * steps[~at_keys].max(), steps
    assert steps.max() > 1e-3

    ob.pose.bones["thigh_parent.L"]["IK_FK"] = 0.0  # the left leg shown through its IK controls at the second key
    ob.pose.bones["thigh_parent.L"].keyframe_insert('["IK_FK"]', frame=keys[1])
    assert_refused(ob, rf'at frame {keys[1]}, thigh_parent.L\["IK_FK"\] .* is 0; .*FK', frame_start=keys[0],
                   frame_end=keys[1])


def test_selected_keys_set_the_range_and_one_undo_restores(addon):
    import bpy
    use(addon, "SUBPROCESS")
    ob = keyed_metarig()
    name = ob.name
    for fc in blender_util.action_fcurves(ob.animation_data.action, ob):
        for point in fc.keyframe_points:
            point.select_control_point = round(point.co.x) in (13, 25)
    before = curve_points(ob)
    bpy.ops.ed.undo_push(message="before in-between")
    assert bpy.ops.mdm.inbetween() == {'FINISHED'}
    frames = set(curve_points(ob)[('pose.bones["thigh.L"].rotation_quaternion', 0)])
    assert frames == set(KEYS) | set(range(14, 25))  # only between the selected keys
    bpy.ops.ed.undo_push(message="In-between")
    bpy.ops.ed.undo()
    ob = bpy.data.objects[name]
    assert curve_points(ob) == before


@pytest.mark.parametrize("hold_root, plant_feet", [(False, True), (True, False)])
def test_hold_root_or_plant_feet_off_still_meets_the_keys(addon, hold_root, plant_feet):
    import bpy
    use(addon, "SUBPROCESS")
    ob = keyed_metarig()
    assert bpy.ops.mdm.detect_bone_map() == {'FINISHED'}
    keys_before = joint_track(ob, [1, 13, 25])
    assert bpy.ops.mdm.inbetween(frame_start=1, frame_end=25, hold_root=hold_root, plant_feet=plant_feet) == \
        {'FINISHED'}
    np.testing.assert_allclose(joint_track(ob, [1, 13, 25]), keys_before, atol=1e-5)


def test_a_range_longer_than_the_model_window_is_chained(addon):
    """7.5 s of keys at the scene's 24 fps, 151 frames at the model's 20: past the test model's 120-frame window."""
    import bpy
    use(addon, "SUBPROCESS")
    frames = (1, 61, 121, 181)
    ob = keyed_metarig(dict(zip(frames, KEYS.values())), dict(zip(frames, PELVIS_PATH.values())))
    assert bpy.ops.mdm.detect_bone_map() == {'FINISHED'}
    before, keys_before = curve_points(ob), joint_track(ob, frames)
    assert bpy.ops.mdm.inbetween(frame_start=1, frame_end=181) == {'FINISHED'}
    after = curve_points(ob)[('pose.bones["thigh.L"].rotation_quaternion', 0)]
    assert set(after) == set(range(1, 182))  # every frame between the first key and the last
    assert {f: after[f] for f in frames} == before[('pose.bones["thigh.L"].rotation_quaternion', 0)]
    np.testing.assert_allclose(joint_track(ob, frames), keys_before, atol=1e-5)


def test_keys_too_far_apart_for_the_model_are_refused(addon):
    """7.5 s between two keys: more than the test model fills (its 120-frame window less the chain's overlap)."""
    import bpy
    use(addon, "SUBPROCESS")
    ob = keyed_metarig({1: KEYS[1], 181: KEYS[13]}, {1: PELVIS_PATH[1], 181: PELVIS_PATH[13]})
    assert_refused(ob, "keys at 0.00 s and 7.50 s are too far apart", frame_start=1, frame_end=181)


def test_fewer_than_two_keys_is_refused(addon):
    import bpy
    use(addon, "SUBPROCESS")
    ob = keyed_metarig()
    assert_refused(ob, "at least two keyed frames .* between frames 2 and 20; found 1", frame_start=2, frame_end=20)


def test_keys_on_an_unmapped_rig_are_refused(addon):
    import bpy
    use(addon, "SUBPROCESS")
    ob = blender_util.add_armature("Props", [("Bone", (0, 0, 0), (0, 0, 1), -1),
                                             ("Bone.001", (0, 0, 1), (0, 0, 2), 0)])
    for frame in (1, 10):
        ob.pose.bones["Bone"].keyframe_insert("rotation_quaternion", frame=frame)
    bpy.context.scene.mdm.target = ob
    assert_refused(ob, "pelvis", frame_start=1, frame_end=10)


def test_keys_closer_than_a_model_frame_are_refused(addon):
    import bpy
    use(addon, "SUBPROCESS")
    ob = keyed_metarig()
    bpy.context.scene.render.fps = 60
    ob.pose.bones["spine"].keyframe_insert("location", frame=2)  # 1/60 s after the key at frame 1
    assert_refused(ob, "keys at frames 1 and 2 are closer than one model frame", frame_start=1, frame_end=25)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_inbetween_job_ticks_stay_short(addon, kind):
    """The modal path: the job ticked as the window timer would, retargeting on a worker thread, only the
    F-curve writes on the main thread."""
    import bpy
    from test_addon_jobs import TICK_CPU_BOUND_S, tick_to_end
    use(addon, kind)
    keyed_metarig()
    job = addon.operators.inbetween_job(bpy.context, frame_range=(1, 45))  # 44 frames: 37 at 20 fps
    tick_to_end(job)
    assert job.state == "done" and "4 keys" in job.message, job.message
    print(f"\n[{kind}] in-between: longest main-thread tick {job.longest_tick_s * 1000:.1f} ms wall, "
          f"{job.longest_tick_cpu_s * 1000:.1f} ms CPU ({job.ticks} ticks)")
    assert job.longest_tick_cpu_s < TICK_CPU_BOUND_S  # CPU time: load inflates it far less than wall time


def test_an_explicit_range_may_start_before_frame_zero(addon):
    import bpy
    use(addon, "SUBPROCESS")
    frames = (-24, -12, 0, 20)
    ob = keyed_metarig(dict(zip(frames, KEYS.values())), dict(zip(frames, PELVIS_PATH.values())))
    assert bpy.ops.mdm.inbetween(frame_start=-24, frame_end=0) == {'FINISHED'}
    assert set(curve_points(ob)[('pose.bones["thigh.L"].rotation_quaternion', 0)]) == set(range(-24, 1)) | {20}


def test_channels_an_nla_strip_animates_are_left_to_it(addon):
    """The forearm moves on an NLA strip beneath the action, which keys everything else: a new curve for it would
    override the strip on every frame, outside the range too."""
    import bpy
    use(addon, "SUBPROCESS")
    ob = blender_util.add_rigify_metarig()
    forearm = ob.pose.bones["forearm.L"]
    for frame, degrees in ((1, 0), (45, 90)):
        forearm.rotation_quaternion = (np.cos(np.radians(degrees) / 2), np.sin(np.radians(degrees) / 2), 0, 0)
        forearm.keyframe_insert("rotation_quaternion", frame=frame)
    layer = ob.animation_data.action
    ob.animation_data.nla_tracks.new().strips.new(layer.name, 1, layer)
    ob.animation_data.action = None
    keyed_metarig(ob=ob, left_out={"forearm.L"})
    assert bpy.ops.mdm.detect_bone_map() == {'FINISHED'}
    outside_before = joint_track(ob, range(26, 46))
    assert bpy.ops.mdm.inbetween(frame_start=1, frame_end=25) == {'FINISHED'}
    assert not any('"forearm.L"' in path for path, _index in curve_points(ob))
    np.testing.assert_allclose(joint_track(ob, range(26, 46)), outside_before, atol=1e-5)


def test_a_rig_blender_does_not_evaluate_is_refused(addon):
    """Disabled in viewports, a rig's pose stays where it was whatever the frame: its keys cannot be read."""
    import bpy
    use(addon, "SUBPROCESS")
    ob = keyed_metarig()
    ob.hide_viewport = True
    assert_refused(ob, "is not evaluated in this view layer", frame_start=1, frame_end=25)


def test_a_bone_map_naming_a_missing_bone_is_refused(addon):
    import bpy
    use(addon, "SUBPROCESS")
    ob = keyed_metarig()
    assert bpy.ops.mdm.detect_bone_map() == {'FINISHED'}
    next(row for row in ob.data.mdm.bone_map if row.bone == "forearm.L").bone = "forearm.L.renamed"
    assert_refused(ob, "bone 'forearm.L.renamed' is not in the armature", frame_start=1, frame_end=25)


def test_inbetween_is_greyed_out_in_edit_mode(addon):
    import bpy
    keyed_metarig()
    bpy.ops.object.mode_set(mode='EDIT')
    assert not bpy.ops.mdm.inbetween.poll()
    bpy.ops.object.mode_set(mode='POSE')
    assert bpy.ops.mdm.inbetween.poll()
