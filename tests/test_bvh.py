"""BVH reader, forward kinematics and writer (backend/bvh.py), and CMU skeletons onto 22 joints (backend/mocap.py)."""
import time

import numpy as np
import pytest
from conftest import MOCAP_DIR

from backend import skeleton
from backend.bvh import (
    axis_rotations, format_bvh, forward_kinematics, joints_to_bvh, matrix_to_euler, parse_bvh, read_bvh,
)
from backend.errors import UserError
from backend.mocap import FAMILIES, detect_family, family_sources, load_clip, read_index, resample, source_names

INDEX = MOCAP_DIR / "index.csv"
LEGS = [skeleton.JOINT_INDEX[f"{side}_{j}"] for side in ("left", "right") for j in ("hip", "knee", "ankle", "foot")]


def two_joint_bvh(root_channels, child_channels, motion_rows, child_offset="1 0 0", newline="\n"):
    """A root and one child with an End Site; rows are lists of channel values."""
    lines = [
        "HIERARCHY", "ROOT root", "{", "\tOFFSET 0 0 0", f"\tCHANNELS {len(root_channels.split())} {root_channels}",
        "\tJOINT child", "\t{",
        f"\t\tOFFSET {child_offset}", f"\t\tCHANNELS {len(child_channels.split())} {child_channels}",
        "\t\tEnd Site", "\t\t{", "\t\t\tOFFSET 0 1 0", "\t\t}", "\t}", "}",
        "MOTION", f"Frames:\t{len(motion_rows)}", "Frame Time:\t0.05",
    ] + [" ".join(str(v) for v in row) for row in motion_rows]
    return newline.join(lines) + newline


def node_positions(bvh, frame=0):
    positions, _ = forward_kinematics(bvh)
    return {name: positions[frame, i] for i, name in enumerate(bvh.names)}


# --- reader and forward kinematics ------------------------------------------------------------------------------

@pytest.mark.parametrize("order, child, end_site", [
    # R = Rx(90)·Ry(90): Ry turns (1,0,0) to (0,0,-1), Rx turns that to (0,1,0); (0,1,0) goes to (0,0,1).
    ("Xrotation Yrotation Zrotation", [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]),
    # R = Ry(90)·Rx(90): Rx keeps (1,0,0), Ry turns it to (0,0,-1); (0,1,0) goes to (0,0,1), then to (1,0,0).
    ("Yrotation Xrotation Zrotation", [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]),
])
def test_rotation_channels_compose_in_listed_order(order, child, end_site):
    values = {"Xrotation": 90, "Yrotation": 90, "Zrotation": 0}
    row = [values[c] for c in order.split()] + [0, 0, 0]
    positions = node_positions(parse_bvh(two_joint_bvh(order, "Zrotation Yrotation Xrotation", [row])))
    np.testing.assert_allclose(positions["child"], child, atol=1e-12)
    np.testing.assert_allclose(positions["child End Site"] - positions["child"], end_site, atol=1e-12)


def test_positions_on_a_child_joint_replace_its_offset_and_tabs_crlf_parse():
    text = two_joint_bvh("Xposition Yposition Zposition", "Zrotation Xposition Yposition Zposition Xrotation "
                         "Yrotation", [[1, 2, 3, 0, 5, 6, 7, 0, 0], [1, 2, 3, 90, 5, 6, 7, 0, 0]],
                         child_offset="9 9 9", newline="\r\n")
    bvh = parse_bvh(text)
    assert bvh.channels[1] == ("Zrotation", "Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation")
    np.testing.assert_allclose(node_positions(bvh, 0)["child"], [6, 8, 10])
    # The child's own Z rotation turns its End Site (0,1,0) to (-1,0,0), but not the child itself.
    np.testing.assert_allclose(node_positions(bvh, 1)["child"], [6, 8, 10])
    np.testing.assert_allclose(node_positions(bvh, 1)["child End Site"], [5, 8, 10], atol=1e-12)


def test_reads_a_real_file_of_each_layout():
    daz = read_bvh(MOCAP_DIR / "acrnn" / "salsa" / "05.bvh")  # CRLF and LF mixed, ZXY joints
    assert daz.channels[daz.index("lShin")] == ("Zrotation", "Xrotation", "Yrotation")
    assert daz.num_frames == 1679 and daz.motion.shape == (1679, 6 + 3 * 42)
    cc = read_bvh(MOCAP_DIR / "iclone" / "006_09.bvh")
    assert len([n for n in cc.names if not n.endswith(" End Site")]) == 100


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("HIERARCHY", "HIERARCHX"), "line 1: expected HIERARCHY"),
    (lambda t: t.replace("\t\tOFFSET 1 0 0", "\t\tOFFSET 1 0"), "line 8: OFFSET of 'child' needs 3 numbers"),
    (lambda t: t.replace("\t\tOFFSET 1 0 0", "\t\tOFFSET 1 zero 0"), "line 8: OFFSET of 'child' is not a number"),
    (lambda t: t.replace("\t\tCHANNELS 3 Z", "\t\tCHANNELS 3 W"), "line 9: bad channel list for 'child'"),
    (lambda t: t.replace("\t\tCHANNELS 3", "\t\tCHANNELS 4"), "line 9: CHANNELS of 'child' must be"),
    (lambda t: t.replace("\t}\n}\n", "\t}\n"), "line 15: MOTION before the hierarchy is closed"),
    (lambda t: t.replace("\t\t}\n\t}\n}\n", "\t\t}\n\t}\n}\n}\n"), "line 16: unmatched '}'"),
    (lambda t: t.replace("Frames:\t2", "Frames:\t3"), "Frames: 3 but there are 2 rows"),
    (lambda t: t.replace("Frame Time:\t0.05", "Frame Time:\t0"), "line 18: Frame Time must be positive"),
    (lambda t: t.replace("Frame Time:", "FrameTime:"), "line 18: expected 'Frame Time: SECONDS'"),
    (lambda t: t[:t.rindex("\n", 0, -1)] + "\n0 0 0 0\n", "line 20: motion row has 4 values"),
    (lambda t: t[:t.rindex("\n", 0, -1)] + "\n0 0 x 0 0 0\n", "line 20: motion row is not a number"),
    (lambda t: t[:t.index("MOTION")], "no MOTION section"),
    (lambda t: t.replace("JOINT child", "JOINT root"), "line 6: joint name 'root' is used twice"),
])
def test_malformed_files_say_what_and_where(edit, message):
    good = two_joint_bvh("Zrotation Yrotation Xrotation", "Zrotation Yrotation Xrotation", [[0] * 6, [0] * 6])
    parse_bvh(good)
    with pytest.raises(UserError, match="malformed BVH|no MOTION") as err:
        parse_bvh(edit(good), source="clip.bvh")
    assert message in str(err.value) and "clip.bvh" in str(err.value)


def test_any_parsed_file_formats_back_to_the_same_file():
    original = read_bvh(MOCAP_DIR / "acrnn" / "salsa" / "05.bvh")
    again = parse_bvh(format_bvh(original))
    assert again.names == original.names and again.channels == original.channels
    np.testing.assert_array_equal(again.parents, original.parents)
    np.testing.assert_allclose(again.offsets, original.offsets, atol=1e-6)
    np.testing.assert_allclose(again.motion, original.motion, atol=1e-6)
    assert again.frame_time == pytest.approx(original.frame_time)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_bvh(tmp_path / "absent.bvh")


def compose(angles, order):
    """Rotation matrices R = R_order[0]·R_order[1]·R_order[2] from (N, 3) degrees."""
    result = np.eye(3)
    for k, axis in enumerate(order):
        result = result @ axis_rotations(np.radians(angles[:, k]), "XYZ".index(axis))
    return result


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_euler_round_trip_in_every_order_including_gimbal_lock(order):
    rng = np.random.default_rng(0)
    angles = rng.uniform(-180, 180, (200, 3))
    angles[:, 1] /= 2.0  # the middle angle's range is [-90, 90]
    angles = np.concatenate([angles, [[30, 90, 40], [-70, -90, 10]]])  # gimbal lock: only 30-40, -70+10 defined
    matrices = compose(angles, order)
    back = matrix_to_euler(matrices, order)
    np.testing.assert_allclose(compose(back, order), matrices, atol=1e-9)
    np.testing.assert_allclose(back[:200], angles[:200], atol=1e-9)  # unique away from gimbal lock


# --- families, detection, loading --------------------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_is_detected_from_its_names_with_namespaces_ignored(family):
    names = {n for source in family_sources(FAMILIES[family]).values() for n in source_names(source)}
    assert detect_family([f"mixamorig:{n}" for n in sorted(names)] + ["Finger"]) == family


def test_unknown_skeleton_names_the_joints_it_cannot_map():
    names = [n for source in family_sources(FAMILIES["cmu_mb"]).values() for n in source_names(source)]
    names = [n for n in names if n not in ("LeftForeArm", "Neck1")]
    with pytest.raises(UserError) as err:
        detect_family(names, source="odd.bvh")
    message = str(err.value)
    assert "odd.bvh" in message and "cmu_mb" in message
    for joint in ("left_elbow (needs LeftForeArm)", "neck (needs Neck1)", "spine3 (needs Neck1)"):
        assert joint in message
    assert "right_elbow" not in message


def test_resample_takes_every_sixth_frame_from_120_fps_and_interpolates_between():
    frames = np.arange(13.0)[:, None]  # value = source frame index
    np.testing.assert_allclose(resample(frames, 120, 20)[:, 0], [0, 6, 12])
    np.testing.assert_allclose(resample(frames, 60, 20)[:, 0], [0, 3, 6, 9, 12])
    np.testing.assert_allclose(resample(frames, 50, 20)[:, 0], [0, 2.5, 5, 7.5, 10])  # 12.5: past the end


# cmu_mb joint -> the same joint in the families the shared data has no file of (README: Hahne's renaming table for
# the raw ASF names; the 3dsMax-friendly release for cmu_max). Left side; the right side swaps the prefixes.
RENAMED_FROM_MB = {
    "cmu_asf": {"Hips": "hip", "LeftUpLeg": "lfemur", "LeftLeg": "ltibia", "LeftFoot": "lfoot", "LeftToeBase": "ltoes",
                "Spine": "upperback", "Spine1": "thorax", "Neck1": "upperneck", "Head": "head", "LeftArm": "lhumerus",
                "LeftForeArm": "lradius", "LeftHand": "lwrist", "LeftShoulder": "lclavicle", "Neck": "lowerneck"},
    "cmu_max": {"Hips": "Hips", "LeftUpLeg": "LeftHip", "LeftLeg": "LeftKnee", "LeftFoot": "LeftAnkle",
                "LeftToeBase": "LeftToe", "Spine": "Chest", "Spine1": "Chest2", "Neck1": "Neck", "Head": "Head",
                "LeftShoulder": "LeftCollar", "LeftArm": "LeftShoulder", "LeftForeArm": "LeftElbow",
                "LeftHand": "LeftWrist", "Neck": "lowerneck"},
}


@pytest.mark.parametrize("family", sorted(RENAMED_FROM_MB))
def test_families_without_shared_files_map_like_the_mb_skeleton_they_rename(family, tmp_path):
    left = RENAMED_FROM_MB[family]
    right_prefix = {"cmu_asf": ("l", "r"), "cmu_max": ("Left", "Right")}[family]
    renames = dict(left)
    for mb, other in left.items():
        if mb.startswith("Left"):
            renames["Right" + mb[4:]] = right_prefix[1] + other[len(right_prefix[0]):]
    lines = (MOCAP_DIR / "mb_misc" / "02_01.bvh").read_text().splitlines()
    for i, line in enumerate(lines):
        keyword, _, name = line.strip().partition(" ")
        if keyword in ("ROOT", "JOINT") and name in renames:
            lines[i] = line.replace(name, renames[name])
    (tmp_path / "renamed.bvh").write_text("\n".join(lines) + "\n")
    renamed = load_clip(tmp_path / "renamed.bvh", fps=120, skip=1)
    assert renamed.family == family
    np.testing.assert_array_equal(renamed.joints, load_clip(MOCAP_DIR / "mb_misc" / "02_01.bvh", 120, 1).joints)


def first_clip_of_each_family():
    clips = {}
    for clip in read_index(INDEX):
        clips.setdefault(clip.family, clip)
    return list(clips.values())


def check_clip(indexed):
    clip = load_clip(indexed.path, indexed.fps, indexed.tpose_frames)
    joints = clip.joints
    assert clip.family == indexed.family
    source_seconds = (clip.source_frames - indexed.tpose_frames - 1) / indexed.fps
    assert len(joints) == int(source_seconds * skeleton.FPS + 1e-6) + 1
    assert np.isfinite(joints).all()
    head_above_lowest_foot = joints[:, 15, 1] - joints[:, [10, 11], 1].min(axis=1)
    assert 1.0 < np.median(head_above_lowest_foot) < 1.8, indexed.path
    bones = np.linalg.norm(joints[:, 1:] - joints[:, list(skeleton.PARENTS[1:])], axis=-1)
    assert bones.min() > 0.04, indexed.path  # no collapsed bones (README: shortest 4.4 cm)


@pytest.mark.parametrize("indexed", first_clip_of_each_family(), ids=lambda c: c.family)
def test_one_clip_per_family_loads_with_sane_body(indexed):
    check_clip(indexed)


def test_all_indexed_clips_load():
    start = time.perf_counter()
    clips = read_index(INDEX)
    for indexed in clips:
        check_clip(indexed)
    print(f"loaded {len(clips)} clips in {time.perf_counter() - start:.1f} s")
    assert len(clips) == 70


def test_facing_agrees_with_the_direction_of_travel_on_walks_and_runs():
    plain = [c for c in read_index(INDEX) if c.description in ("walk", "slow walk", "run", "run/jog")]
    assert len(plain) >= 20
    for indexed in plain:
        joints = load_clip(indexed.path, indexed.fps, indexed.tpose_frames).joints
        r_hip, l_hip, r_shoulder, l_shoulder = skeleton.FACE_JOINTS
        across = joints[:, r_hip] - joints[:, l_hip] + joints[:, r_shoulder] - joints[:, l_shoulder]
        forward = np.cross([0.0, 1.0, 0.0], across)[:-1, [0, 2]]
        velocity = np.diff(joints[:, 0, [0, 2]], axis=0) * skeleton.FPS
        moving = np.linalg.norm(velocity, axis=1) > 0.3  # m/s
        cosine = (forward * velocity).sum(1) / np.linalg.norm(forward, axis=1) / np.linalg.norm(velocity, axis=1)
        assert moving.sum() > 10 and cosine[moving].mean() >= 0.9, (indexed.path, cosine[moving].mean())


def test_too_short_clips_and_bad_skips_are_user_errors(tmp_path):
    path = tmp_path / "short.bvh"
    path.write_text((MOCAP_DIR / "przestr" / "09_01.bvh").read_text().replace("Frames:\t149", "Frames: 7")
                    .rsplit("\n", 149 - 7 + 1)[0] + "\n")
    with pytest.raises(UserError, match="at least 2 are needed"):
        load_clip(path, fps=120, skip=1)
    with pytest.raises(UserError, match="cannot skip 7 frames"):
        load_clip(path, fps=120, skip=7)


# --- writer ------------------------------------------------------------------------------------------------------

def written_and_read_back(joints, exact=False):
    bvh = parse_bvh(format_bvh(joints_to_bvh(joints, skeleton.FPS, exact)))
    positions, _ = forward_kinematics(bvh)
    return positions[:, [bvh.index(n) for n in skeleton.JOINT_NAMES]], bvh


def test_writer_reproduces_a_rigid_skeleton_exactly_with_rotations_only():
    joints = load_clip(MOCAP_DIR / "przestr" / "07_01.bvh", fps=120, skip=1).joints
    back, bvh = written_and_read_back(joints)
    assert np.abs(back - joints).max() < 1e-5  # 6 decimals in the file
    assert [len(c) for c in bvh.channels if c] == [6] + [3] * 21
    # The bone's own axis is the middle Euler angle: a bent elbow or knee never nears gimbal lock.
    channels = dict(zip(bvh.names, bvh.channels))
    assert channels["left_elbow"] == ("Zrotation", "Xrotation", "Yrotation")
    assert channels["left_knee"] == ("Zrotation", "Yrotation", "Xrotation")
    assert channels["left_ankle"] == ("Yrotation", "Zrotation", "Xrotation")
    assert channels["pelvis"][3:] == ("Yrotation", "Xrotation", "Zrotation")
    # Thighs and upper arms take their twist from the knee's and elbow's bend plane, so those two bend as hinges:
    # about X for knees, about Y for elbows (the last channel in their order), the other two angles near zero.
    columns = dict(zip(bvh.names, bvh.channel_columns()))
    for joint in ("left_knee", "right_knee", "left_elbow", "right_elbow"):
        angles = bvh.motion[:, columns[joint]:columns[joint] + 3]
        assert np.abs(angles[:, :2]).max() < 2.0 and np.ptp(angles[:, 2]) > 30.0, joint
    assert bvh.names[0] == "pelvis" and set(bvh.names) >= set(skeleton.JOINT_NAMES)
    assert abs(bvh.frame_time - 1 / skeleton.FPS) < 1e-9
    # The rest pose is a T-pose: arms straight out along +-X, legs straight down, head above the neck.
    offsets = dict(zip(bvh.names, bvh.offsets))
    for name, axis in (("left_elbow", [1, 0, 0]), ("right_wrist", [-1, 0, 0]), ("left_knee", [0, -1, 0]),
                       ("head", [0, 1, 0])):
        np.testing.assert_allclose(offsets[name] / np.linalg.norm(offsets[name]), axis, atol=1e-12)


def test_writer_on_cmu_skeleton_keeps_legs_exact_and_exact_mode_reproduces_everything():
    # CMU's LowerBack turns the spine base about the hips, so the pelvis's children are not rigid: with rotations
    # alone the hips and legs stay exact and the spine absorbs the difference.
    joints = load_clip(MOCAP_DIR / "mb_misc" / "02_01.bvh", fps=120, skip=1).joints
    back, _ = written_and_read_back(joints)
    error = np.linalg.norm(back - joints, axis=-1)
    assert error[:, LEGS].max() < 1e-4
    assert error.max() > 1e-3  # the structural gap exact mode exists for
    back, bvh = written_and_read_back(joints, exact=True)
    assert np.abs(back - joints).max() < 2e-4  # `EXACT_TOLERANCE` plus rounding
    moving = {n for n, c in zip(bvh.names, bvh.channels) if "Xposition" in c}
    assert "pelvis" in moving and "spine1" in moving and not moving & {"left_knee", "left_elbow"}


def test_writer_takes_motion_that_does_not_start_at_the_origin_or_facing_z():
    joints = load_clip(MOCAP_DIR / "przestr" / "09_01.bvh", fps=120, skip=1).joints
    turn = axis_rotations(np.radians(np.array(135.0)), 1)
    moved = joints @ turn.T + [3.0, 0.5, -2.0]
    back, _ = written_and_read_back(moved)
    assert np.abs(back - moved).max() < 1e-5
