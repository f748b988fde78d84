"""Retargeting onto synthetic rigs (T, A and N rest poses, random bone rolls) driven by a real CMU clip."""
import numpy as np
import pytest

from backend import metrics, skeleton
from backend.errors import UserError
from backend.mocap import load_clip
from backend.retarget import (SEGMENT_ENDS, RigDescription, bone_rest_matrix, quaternion_to_euler, retarget,
                              stance_shift, to_motion_frame)
from backend.rotations import axis_angle_to_quaternion, quaternion_to_matrix
from conftest import MOCAP_DIR

J = skeleton.JOINT_INDEX
NAMES = {name: f"bone_{name}" for name in skeleton.JOINT_NAMES}
SEGMENTS = [(J[joint], J[ends[0]]) for joint, ends in SEGMENT_ENDS.items()]  # every bone of a full map
ARM_ANGLES = {"T": 0.0, "A": 45.0, "N": 85.0}  # degrees below horizontal


@pytest.fixture(scope="module")
def motion():
    """A real CMU clip (subject 135 front kicks: steps, kicks, arm swings) on the 22 joints, 10 s at 20 fps."""
    joints = load_clip(MOCAP_DIR / "acrnn" / "martial" / "04.bvh", fps=120, skip=4).joints[:200]
    return joints - [0, joints[:, skeleton.CONTACT_JOINTS, 1].min(), 0]  # floor at y = 0, as in HumanML3D


def rest_joints(arm_angle, scale=1.0, lengths=skeleton.REFERENCE_BONE_LENGTHS):
    """(22, 3) a Z-up rest skeleton with the given bone lengths, arms `arm_angle` degrees below horizontal."""
    a = np.radians(arm_angle)
    arm = lambda side: (side * np.cos(a), 0, -np.sin(a))  # noqa: E731
    directions = {1: (1, 0, 0), 2: (-1, 0, 0), 3: (0, 0, 1), 4: (0, 0, -1), 5: (0, 0, -1), 6: (0, 0, 1),
                  7: (0, 0, -1), 8: (0, 0, -1), 9: (0, 0, 1), 10: (0, -1, -0.3), 11: (0, -1, -0.3), 12: (0, 0, 1),
                  13: (1, 0, 0.2), 14: (-1, 0, 0.2), 15: (0, 0, 1), 16: (1, 0, 0), 17: (-1, 0, 0),
                  18: arm(1), 19: arm(-1), 20: arm(1), 21: arm(-1)}
    joints = np.zeros((22, 3))
    joints[0] = (0, 0, 0.95 * scale)
    for j in range(1, 22):
        d = np.array(directions[j], float)
        joints[j] = joints[skeleton.PARENTS[j]] + scale * lengths[j] * d / np.linalg.norm(d)
    return joints


def make_rig(joints, rolls=np.zeros(22), root=False, world=np.eye(4)):
    """One bone per joint pointing at its child joint (a `root` bone under the pelvis if asked)."""
    tails = {0: 3, 9: 12, **{p: j for j, p in enumerate(skeleton.PARENTS) if p > 0 and p != 9}}
    names, parents, rest = [], [], []
    for j, name in enumerate(skeleton.JOINT_NAMES):
        tail = joints[tails[j]] if j in tails else 1.5 * joints[j] - 0.5 * joints[skeleton.PARENTS[j]]
        names.append(NAMES[name])
        parents.append(skeleton.PARENTS[j] + root if j else -1 + root)
        rest.append(bone_rest_matrix(joints[j], tail, rolls[j]))
    if root:
        names.insert(0, "root")
        parents.insert(0, -1)
        rest.insert(0, bone_rest_matrix([0, 0, 0], [0, 0.3, 0]))
    armature = np.linalg.inv(world)  # bones stored so that the object's world matrix puts them at `joints`
    rest = [armature @ m for m in rest]
    rest = [np.block([[m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0), m[:3, 3:]], [m[3:]]]) for m in rest]
    return RigDescription(tuple(names), np.array(parents), np.array(rest), world)


def pose_fk(rig, result):
    """(T, B, 4, 4) world bone matrices from the keyed local rotations and locations, as Blender composes them."""
    T = len(result.rotations)
    local = np.tile(np.eye(4), (T, len(rig.names), 1, 1))
    for i, name in enumerate(result.bones):
        local[:, rig.index(name), :3, :3] = quaternion_to_matrix(result.rotations[:, i])
    for i, name in enumerate(result.location_bones):
        local[:, rig.index(name), :3, 3] = result.locations[:, i]
    posed = np.empty_like(local)
    for b in rig.order():
        p = rig.parents[b]
        base = posed[:, p] @ np.linalg.inv(rig.rest[p]) @ rig.rest[b] if p >= 0 else rig.rest[b]
        posed[:, b] = base @ local[:, b]
    return rig.world @ posed


def segment_errors(rig, result, motion):
    """Degrees between each posed segment (joint heads after FK) and the motion's, (T, segments)."""
    heads = pose_fk(rig, result)[..., :3, 3][:, [rig.index(NAMES[n]) for n in skeleton.JOINT_NAMES]]
    source = motion @ skeleton.HML_TO_BLENDER.T @ result.placement[:3, :3].T
    a, b = np.array(SEGMENTS).T
    return metrics.direction_error(heads[:, b] - heads[:, a], source[:, b] - source[:, a]), heads


@pytest.mark.parametrize("pose", ARM_ANGLES)
@pytest.mark.parametrize("seed", [None, 0, 1])
def test_bone_directions_follow_the_motion(motion, pose, seed):
    rolls = np.zeros(22) if seed is None else np.random.default_rng(seed).uniform(-np.pi, np.pi, 22)
    rig = make_rig(rest_joints(ARM_ANGLES[pose]), rolls)
    result = retarget(motion, rig, NAMES)
    errors, heads = segment_errors(rig, result, motion)
    print(f"{pose}-pose seed {seed}: direction error mean {errors.mean():.2e} max {errors.max():.2e} deg")
    assert errors.mean() < 2 and errors.max() < 10
    np.testing.assert_allclose(heads, result.joints, atol=1e-9)  # the returned joints are where FK puts them
    # the bones' own Y axes too (each bone of this rig points at its segment's end)
    posed = pose_fk(rig, result)
    source = motion @ skeleton.HML_TO_BLENDER.T @ result.placement[:3, :3].T
    for a, b in SEGMENTS:
        y_axis = posed[:, rig.index(NAMES[skeleton.JOINT_NAMES[a]]), :3, 1]
        assert metrics.direction_error(y_axis, source[:, b] - source[:, a]).max() < 1e-4


def test_same_world_pose_for_any_roll_and_rest_pose(motion):
    """The same character with other bone rolls or its arms in A or N rest pose ends in the same world pose:
    every bone's world frame equals the T-pose rig's, after undoing the rest-pose turn of the arm."""
    reference = make_rig(rest_joints(0.0))
    expected = pose_fk(reference, retarget(motion, reference, NAMES))[..., :3, :3] @ \
        np.swapaxes(reference.rest[:, :3, :3], -1, -2)  # world frame relative to the rest frame
    for pose, angle in ARM_ANGLES.items():
        rolls = np.random.default_rng(7).uniform(-np.pi, np.pi, 22)
        rig = make_rig(rest_joints(angle), rolls)
        frames = pose_fk(rig, retarget(motion, rig, NAMES))[..., :3, :3]
        for j, name in enumerate(skeleton.JOINT_NAMES):
            # the A/N rig's arm is the T rig's turned about the forward axis (-Y) at the shoulder
            side = 1 if name.startswith("left") else -1
            arm = name.endswith(("shoulder", "elbow", "wrist"))
            turn = _rotation([0, side, 0], np.radians(angle)) if arm else np.eye(3)
            rest = rig.rest[j, :3, :3]
            np.testing.assert_allclose(frames[:, j] @ rest.T @ turn, expected[:, j], atol=1e-9,
                                       err_msg=f"{pose}-pose {name}")


def _rotation(axis, angle):
    return quaternion_to_matrix(axis_angle_to_quaternion(np.array(axis, float), np.float64(angle)))


@pytest.mark.parametrize("limb", [("left_hip", "left_knee", "left_ankle"), ("right_shoulder", "right_elbow",
                                                                             "right_wrist")])
def test_knee_and_elbow_turn_about_their_hinge(motion, limb):
    """Twist follows the bend plane: the lower bone's local rotation is a pure turn about the rig's rest hinge
    (the hip line for a knee, the T-pose elbow's vertical), without sideways bend or twist."""
    rig = make_rig(rest_joints(0.0), np.random.default_rng(3).uniform(-np.pi, np.pi, 22))
    result = retarget(motion, rig, NAMES)
    upper, lower, end = (J[n] for n in limb)
    q = result.rotations[:, result.bones.index(NAMES[limb[1]])]
    source = motion @ skeleton.HML_TO_BLENDER.T
    bend = metrics.direction_error(source[:, lower] - source[:, upper], source[:, end] - source[:, lower])
    bent = (bend > 30) & (bend < 150)  # elsewhere the hinge leans on the anatomical default (HINGE_EXACT)
    assert bent.sum() > 10
    hinge_world = [1.0, 0, 0] if "hip" in limb[0] else [0, 0, 1.0]
    hinge_local = rig.rest[rig.index(NAMES[limb[1]]), :3, :3].T @ hinge_world
    angle_off = metrics.direction_error(np.abs(q[bent, 1:] @ hinge_local)[:, None] * hinge_local, q[bent, 1:])
    print(f"{limb[1]}: hinge axis off by mean {angle_off.mean():.2f} max {angle_off.max():.2f} deg")
    assert angle_off.max() < 1e-4


def test_spine_twist_follows_the_shoulder_line(motion):
    """Turning the upper body 40 degrees about the vertical turns the chest bone's side axis with it."""
    rig = make_rig(rest_joints(0.0))
    twisted = motion.copy()
    upper = [J[n] for n in skeleton.JOINT_NAMES if n in ("neck", "head") or "collar" in n or "shoulder" in n
             or "elbow" in n or "wrist" in n]
    centre = twisted[:, J["spine3"]][:, None]
    c, s = np.cos(np.radians(40)), np.sin(np.radians(40))
    yaw = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])  # about HumanML3D's up (Y)
    twisted[:, upper] = (twisted[:, upper] - centre) @ yaw.T + centre
    chest = rig.index(NAMES["spine3"])
    sides = []
    for clip in (motion, twisted):
        world = pose_fk(rig, retarget(clip, rig, NAMES))[:, chest, :3, 0]
        sides.append(np.arctan2(world[:, 1], world[:, 0]))
    turn = np.degrees(np.angle(np.exp(1j * (sides[1] - sides[0]))))
    print(f"chest side axis turned by {turn.mean():.1f} +- {turn.std():.1f} deg")
    np.testing.assert_allclose(turn, 40, atol=8)


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_euler_is_continuous_and_exact(order):
    """Three turns about a tilted axis: no 360-degree jumps, and the angles rebuild the rotation."""
    t = np.linspace(0, 6 * np.pi, 400)
    axis = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    q = np.concatenate([np.cos(t / 2)[:, None], np.sin(t / 2)[:, None] * axis], axis=1)
    euler = quaternion_to_euler(q, order)
    assert np.abs(np.diff(euler, axis=0)).max() < 0.5
    axes = {"X": [1, 0, 0], "Y": [0, 1, 0], "Z": [0, 0, 1]}
    for frame in range(0, 400, 37):
        rebuilt = np.eye(3)
        for name in order:  # Blender: the first axis of the order is applied first
            rebuilt = _rotation(axes[name], euler[frame, "XYZ".index(name)]) @ rebuilt
        np.testing.assert_allclose(rebuilt, quaternion_to_matrix(q[frame]), atol=1e-9)


def test_root_modes_and_leg_length_scaling(motion):
    source = motion @ skeleton.HML_TO_BLENDER.T
    travel = source[:, 0, :2] - source[0, 0, :2]
    small, big = make_rig(rest_joints(0.0)), make_rig(rest_joints(0.0, scale=1.5), root=True)
    moving = retarget(motion, small, NAMES, plant_feet=False)  # the plain scaled path, no stance correction
    scaled = retarget(motion, big, NAMES, plant_feet=False)
    assert scaled.scale == pytest.approx(1.5 * moving.scale)
    assert moving.held_bones == () and scaled.held_bones == ("root",)  # the unmapped bone above mapped ones
    np.testing.assert_allclose(scaled.joints[:, 0, :2] - scaled.joints[0, 0, :2], scaled.scale * travel, atol=1e-9)
    in_place = retarget(motion, small, NAMES, root_mode="in_place", plant_feet=False)
    np.testing.assert_allclose(in_place.joints[:, 0, :2], in_place.joints[:1, 0, :2].repeat(len(motion), 0))
    on_root = retarget(motion, big, NAMES, root_mode="root_bone", plant_feet=False)
    assert on_root.location_bones == ("root", NAMES["pelvis"])
    np.testing.assert_allclose(pose_fk(big, on_root)[:, 1:], pose_fk(big, scaled)[:, 1:], atol=1e-9)  # same pose
    np.testing.assert_allclose(on_root.locations[:, 0, 2], 0, atol=1e-12)  # the root travels horizontally
    with pytest.raises(UserError, match="needs a bone above the pelvis"):
        retarget(motion, small, NAMES, root_mode="root_bone")


@pytest.mark.parametrize("proportions", ["long shins", "short back"])
def test_feet_keep_their_contacts_at_other_proportions(motion, proportions):
    """Shins 30% longer, or long legs with a short back: only the root moves, yet no foot goes under the floor,
    a foot in the air stays off the ground, the stance foot steps as the source's does, and foot skate stays
    close to the source's (within 0.01 on the real rigs of test_retarget_blender; these are extremes)."""
    lengths = skeleton.REFERENCE_BONE_LENGTHS * (np.where(np.isin(np.arange(22), [7, 8]), 1.3, 1.0)
                                                 if proportions == "long shins"
                                                 else np.where(np.isin(np.arange(22), [3, 6, 9]), 0.6, 1.2))
    rig = make_rig(rest_joints(0.0, lengths=lengths))
    feet = list(skeleton.CONTACT_JOINTS)
    baked, unplanted = (to_motion_frame(r, r.joints) for r in (retarget(motion, rig, NAMES),
                                                               retarget(motion, rig, NAMES, plant_feet=False)))
    planted, plain, source = baked[:, feet], unplanted[:, feet], motion[:, feet]  # the source's floor: y = 0
    assert planted[..., 1].min() > -1e-9
    ground = source[..., 1] - source[..., 1].min(axis=0) < metrics.CONTACT_HEIGHT  # (T, 4): l ankle, l toe, r ...
    assert (planted[..., 1][~ground] > metrics.CONTACT_HEIGHT - 1e-9).all()
    # single support on the left toe: it and its neighbour frames on the ground, the right foot off it
    left = ground[:, 1] & np.roll(ground[:, 1], 1) & np.roll(ground[:, 1], -1) & ~ground[:, 2:].any(axis=1)
    stance = left[:-1] & left[1:]
    step = lambda points: np.diff(points[:, 1, [0, 2]], axis=0)[stance]  # noqa: E731  (left toe, x/z)
    slip = np.linalg.norm(step(planted) - step(source), axis=-1).mean()
    unplanted_slip = np.linalg.norm(step(plain) - step(source), axis=-1).mean()
    print(f"{proportions}: stance-toe slip {slip * 1000:.2f} mm/frame ({unplanted_slip * 1000:.2f} unplanted) over "
          f"{stance.sum()} frames")
    assert stance.sum() > 10 and slip < 0.3 * unplanted_slip  # the toe and the heel (ankle) share the stance
    assert abs(metrics.foot_skate_ratio(baked) - metrics.foot_skate_ratio(motion)) <= 0.02


def test_stance_shift_pins_the_stance_foot_and_never_pops():
    """Two feet taking turns (contact spans overlapping by 4 frames), the rig's planted foot sliding 1 cm per frame
    and its right foot standing 4 cm higher than the source's: the shift cancels the slide while a foot is fully
    on the ground, hands the height over between the feet over several frames, and is zero for a rig that
    already matches."""
    frames = np.arange(60)
    wanted = np.zeros((60, 2, 3))
    wanted[:, 1, 0] = 0.3
    contact = np.stack([frames < 34, frames >= 30], axis=1)
    wanted[~contact, 2] = 0.2  # a foot in the air is well off the ground
    posed = wanted.copy()
    posed[:, 0, 1] += 0.01 * frames  # the rig's left foot slides along y
    posed[:, 1, 2] += 0.04
    shift = stance_shift(wanted, posed, contact, floor=0.0, clearance=0.05, fps=20)
    moved = posed + shift[:, None]
    np.testing.assert_allclose(np.diff(moved[:28, 0, :2], axis=0), 0, atol=1e-12)  # left foot pinned
    np.testing.assert_allclose(moved[:28, 0, 2], 0, atol=1e-12)  # at the source's height
    np.testing.assert_allclose(moved[42:, 1], moved[[42], 1].repeat(18, axis=0), atol=1e-9)  # then the right foot
    np.testing.assert_allclose(moved[42:, 1, 2], 0, atol=1e-9)
    assert np.abs(np.diff(shift[:, 2])).max() < 0.04 / 2  # the 4 cm handed over in steps, not at once
    np.testing.assert_allclose(stance_shift(wanted, wanted, contact, 0.0, 0.05), 0, atol=1e-12)


def test_object_transform_does_not_change_the_world_pose(motion):
    """A Mixamo-style object (turned 90 degrees about X, scaled 0.01) poses the same in world space."""
    world = np.diag([0.01, 0.01, 0.01, 1.0])
    world[:3, :3] = 0.01 * _rotation([1, 0, 0], np.pi / 2)
    world[:3, 3] = (2.0, -1.0, 0.0)
    plain, placed = make_rig(rest_joints(45.0)), make_rig(rest_joints(45.0) + (2.0, -1.0, 0.0), world=world)
    a, b = retarget(motion, plain, NAMES), retarget(motion, placed, NAMES)
    np.testing.assert_allclose(b.joints, a.joints + (2.0, -1.0, 0.0), atol=1e-9)
    np.testing.assert_allclose(pose_fk(placed, b)[:, :, :3, 3], pose_fk(plain, a)[:, :, :3, 3] + (2.0, -1.0, 0.0),
                               atol=1e-9)


@pytest.mark.parametrize("proportions", ["motion's own", "HumanML3D reference"])
def test_retarget_keeps_contacts(motion, proportions):
    """Foot skate of the rig's feet (back in the motion's frame and scale) is within 0.01 of the source's, with
    the motion's proportions and with others."""
    lengths = np.linalg.norm(motion[:, 1:] - motion[:, list(skeleton.PARENTS[1:])], axis=-1).mean(axis=0)
    lengths = np.concatenate([[0], lengths]) if proportions == "motion's own" else skeleton.REFERENCE_BONE_LENGTHS
    rig = make_rig(rest_joints(30.0, lengths=lengths) * 1.2)
    source = metrics.foot_skate_ratio(motion)
    result = retarget(motion, rig, NAMES)
    skate = metrics.foot_skate_ratio(to_motion_frame(result, result.joints))
    print(f"{proportions} proportions: foot skate source {source:.4f} rig {skate:.4f}")
    assert abs(skate - source) <= 0.01


def test_bad_bone_maps_are_refused_with_the_missing_joints(motion):
    rig = make_rig(rest_joints(0.0))
    partial = {k: v for k, v in NAMES.items() if k not in ("left_knee", "right_wrist")}
    with pytest.raises(UserError, match="left_knee, right_wrist"):
        retarget(motion, rig, partial)
    with pytest.raises(UserError, match="not in the armature"):
        retarget(motion, rig, {**NAMES, "head": "nose"})
    with pytest.raises(UserError, match="frames, 22, 3"):
        retarget(motion[:, :21], rig, NAMES)
    with pytest.raises(UserError, match="root mode"):
        retarget(motion, rig, NAMES, root_mode="fly")


def test_rig_without_optional_bones(motion):
    """No spine2, neck, collars or toes: the remaining bones still follow the motion's (longer) segments."""
    rig = make_rig(rest_joints(0.0))
    sparse = {k: v for k, v in NAMES.items() if k not in ("spine2", "neck", "left_collar", "right_collar",
                                                          "left_foot", "right_foot")}
    result = retarget(motion, rig, sparse)
    source = motion @ skeleton.HML_TO_BLENDER.T @ result.placement[:3, :3].T
    heads = pose_fk(rig, result)[:, :, :3, 3]
    for a, b in (("spine1", "spine3"), ("spine3", "head"), ("left_shoulder", "left_elbow")):
        error = metrics.direction_error(heads[:, J[b]] - heads[:, J[a]], source[:, J[b]] - source[:, J[a]])
        assert error.max() < 1e-4, (a, b)


def test_metrics_on_known_motions():
    T = 40
    still = np.zeros((T, 22, 3))
    sliding = still.copy()
    sliding[:, metrics.SKATE_FEET, 0] = np.arange(T)[:, None] * 1.0 / skeleton.FPS  # 1 m/s on the floor
    assert metrics.foot_skate_ratio(still) == 0.0
    assert metrics.foot_skate_ratio(sliding) == 1.0
    lifted = sliding.copy()
    lifted[:, metrics.SKATE_FEET, 1] = 0.2
    assert metrics.foot_skate_ratio(lifted) == 0.0
    assert metrics.jitter(sliding) == pytest.approx(0.0, abs=1e-9)
    cubic = still.copy()
    cubic[..., 0] = (np.arange(T) / skeleton.FPS)[:, None] ** 3  # jerk 6 m/s^3 on every joint
    assert metrics.jitter(cubic) == pytest.approx(6.0, rel=1e-6)
    sunk = still.copy()
    sunk[:, skeleton.CONTACT_JOINTS, 1] = -0.02
    assert metrics.penetration(sunk) == pytest.approx(0.02)
    assert metrics.bone_length_std(cubic).max() == pytest.approx(0.0, abs=1e-12)
    assert metrics.direction_error([1, 0, 0], [1, 1, 0]) == pytest.approx(45.0)


def test_inbetween_metrics_on_known_motions():
    T, keyed = 41, np.arange(0, 41, 10)
    t = np.arange(T) / skeleton.FPS
    real = np.zeros((T, 22, 3))
    real[..., 0] = np.sin(2 * t)[:, None]
    shifted = real.copy()
    shifted[np.setdiff1d(np.arange(T), keyed), :, 1] += 0.1  # 10 cm off between the keys, exact on them
    assert metrics.inbetween_l2p(shifted, real, keyed) == pytest.approx(0.1)
    assert metrics.keyframe_error(shifted, real, keyed) == 0.0
    cubic = real.copy()
    cubic[..., 0] = t[:, None] ** 3  # constant jerk: no seam
    assert metrics.seam_ratio(cubic, keyed) == pytest.approx(1.0)
    linear = real.copy()  # straight lines between the keys: all jerk sits at the keys
    linear[..., 0] = np.interp(np.arange(T), keyed, real[keyed, 0, 0])[:, None]
    assert metrics.seam_ratio(linear, keyed) > 1.5
