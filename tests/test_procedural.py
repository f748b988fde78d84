"""Procedural motion: rigid bones, planted feet, no floor penetration, and each clip does what it says."""
import numpy as np
import pytest

from backend import captions, procedural, skeleton
from backend.features import joints_to_features

SEEDS = range(4)
MAX_FRAMES = 121
FEET = (skeleton.LEFT_FOOT_JOINTS, skeleton.RIGHT_FOOT_JOINTS)


def clip(category, seed, pad=False):
    return procedural.generate(category, np.random.default_rng(seed), MAX_FRAMES, pad)


def heading_degrees(joints):
    """(T,) body yaw from the hips (0 = facing +Z, positive = turned to its left)."""
    across = joints[:, skeleton.JOINT_INDEX["right_hip"]] - joints[:, skeleton.JOINT_INDEX["left_hip"]]
    forward = np.cross([0.0, 1.0, 0.0], across)
    return np.degrees(np.unwrap(np.arctan2(forward[:, 0], forward[:, 2])))


@pytest.mark.parametrize("category", procedural.GENERATORS)
@pytest.mark.parametrize("seed", SEEDS)
def test_bones_are_rigid_feet_planted_and_above_the_floor(category, seed):
    generated = clip(category, seed)
    joints = generated.joints
    assert 2 * skeleton.FPS <= len(joints) <= MAX_FRAMES and np.isfinite(joints).all()

    bones = np.linalg.norm(joints[:, 1:] - joints[:, list(skeleton.PARENTS[1:])], axis=-1)  # (T, 21)
    assert bones.std(axis=0).max() < 1e-6
    np.testing.assert_allclose(bones, np.broadcast_to(skeleton.REFERENCE_BONE_LENGTHS[1:], bones.shape), atol=1e-9)

    assert joints[..., 1].min() >= -1e-9  # nothing below the floor
    for side, foot in enumerate(FEET):
        planted = generated.planted[:, side]
        assert planted.mean() > 0.5
        still = planted[1:] & planted[:-1]
        step = np.linalg.norm(np.diff(joints[:, foot], axis=0), axis=-1)[still]  # (frames, 2)
        assert step.max(initial=0.0) < 1e-9  # a planted foot does not move at all
        assert np.abs(joints[planted, foot[1], 1]).max() < 1e-9  # and its toe rests on the floor


@pytest.mark.parametrize("category", procedural.GENERATORS)
def test_clips_are_deterministic_varied_and_described(category):
    a, b, other = clip(category, 7), clip(category, 7), clip(category, 8)
    np.testing.assert_array_equal(a.joints, b.joints)
    assert a.description == b.description
    assert a.joints.shape != other.joints.shape or not np.allclose(a.joints, other.joints)
    assert captions.describe(a.description).category == category
    assert np.isfinite(joints_to_features(a.joints)).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_turn_turns_to_the_side_it_names(seed):
    turned = clip("turn", seed)
    yaw = heading_degrees(turned.joints)
    expected = 1 if "left" in turned.description else -1
    assert 50 < expected * (yaw[-1] - yaw[0]) < 190
    assert (~turned.planted).any(axis=0).all()  # both feet step
    root_xz = turned.joints[:, 0, [0, 2]]
    assert np.linalg.norm(root_xz - root_xz[0], axis=-1).max() < 0.15  # in place


@pytest.mark.parametrize("seed", SEEDS)
def test_wave_raises_the_named_hand_above_the_shoulder(seed):
    waved = clip("wave", seed)
    side = "left" if "left" in waved.description else "right"
    other = "right" if side == "left" else "left"
    j = waved.joints
    wrist, shoulder = skeleton.JOINT_INDEX[f"{side}_wrist"], skeleton.JOINT_INDEX[f"{side}_shoulder"]
    assert (j[:, wrist, 1] > j[:, shoulder, 1] + 0.1).mean() > 0.3
    assert (j[:, skeleton.JOINT_INDEX[f"{other}_wrist"], 1] < j[:, 0, 1] + 0.1).all()
    # The hand swings side to side while up: its x changes direction several times.
    up = j[:, wrist, 1] > j[:, shoulder, 1] + 0.1
    turns = np.diff(np.sign(np.diff(j[up, wrist, 0])))
    assert np.count_nonzero(turns) >= 4


@pytest.mark.parametrize("category, low, high", [("crouch", 0.25, 0.45), ("sit", 0.28, 0.45)])
@pytest.mark.parametrize("seed", SEEDS)
def test_crouch_and_sit_go_down_and_come_back_up(category, low, high, seed):
    pelvis = clip(category, seed).joints[:, 0]
    drop = pelvis[0, 1] - pelvis[:, 1].min()
    assert low < drop < high
    assert abs(pelvis[-1, 1] - pelvis[0, 1]) < 0.02
    if category == "sit":  # the pelvis goes back onto the (invisible) seat
        assert pelvis[:, 2].min() < pelvis[0, 2] - 0.2


@pytest.mark.parametrize("category", ["turn", "wave", "crouch", "sit"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("pad", [False, True])
def test_acting_frames_hold_the_action_and_the_rest_stands(category, seed, pad):
    """`acting` is what the adherence classifier labels by: before and after it the body only stands (joints
    within sway of the segment's end frame), during it the action moves some joint by more than 15 cm."""
    made = clip(category, seed, pad)
    j, acting = made.joints, made.acting
    first, last = np.flatnonzero(acting)[[0, -1]]
    assert 0 < first and last < len(j) - 1  # stands at both ends
    assert acting[first:last + 1].all()
    for segment, anchor in ((j[:first], j[0]), (j[last + 1:], j[-1])):
        assert np.linalg.norm(segment - anchor, axis=-1).max() < 0.06
    assert np.linalg.norm(j[first:last + 1] - j[0], axis=-1).max() > 0.15


@pytest.mark.parametrize("category", procedural.GENERATORS)
def test_padding_stands_longer_around_an_action_of_the_same_length(category):
    """`pad` draws the same phases, then lengthens only the standing at both ends, up to MAX_FRAMES."""
    own = [clip(category, seed) for seed in SEEDS]
    padded = [clip(category, seed, pad=True) for seed in SEEDS]
    for a, b in zip(own, padded):
        assert len(a.joints) <= len(b.joints) <= MAX_FRAMES
        assert abs(int(a.acting.sum()) - int(b.acting.sum())) <= 1 or category == "idle"  # idle acts throughout
    assert np.mean([len(b.joints) for b in padded]) > np.mean([len(a.joints) for a in own]) + 10


def test_idle_acts_throughout():
    assert clip("idle", 0).acting.all()
