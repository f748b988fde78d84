"""Planted feet: a gliding root is pulled back onto the feet, the pose and the keyed frames are left alone."""
from dataclasses import replace

import numpy as np
import pytest

from backend import features, keyframes, metrics, planting, skeleton
from backend.pipeline import MotionRequest, Pipeline, on_reference_skeleton
from conftest import HUMANML_SAMPLE_DIR

HELD = [skeleton.JOINT_INDEX[f"{side}_{part}"] for side in ("left", "right") for part in ("knee", "ankle", "foot")]
UPPER = np.setdiff1d(np.arange(skeleton.NUM_JOINTS), HELD)  # what holding a foot never moves


@pytest.fixture(scope="module")
def motion():
    return np.load(HUMANML_SAMPLE_DIR / "new_joints_012314.npy").astype(np.float64)  # (170, 22, 3), tests only


def _glide(joints, per_frame=(0.03, 0.0, 0.02)):
    """The whole body dragged across the floor at a constant 0.7 m/s: what a root that outruns its steps looks like."""
    return joints + np.arange(len(joints))[:, None, None] * np.array(per_frame)


def test_a_glide_under_planted_feet_is_taken_out(motion):
    contacts = features.foot_contacts(motion) > 0.5
    assert contacts.any(axis=1).mean() > 0.9, "the sample should keep a foot down almost throughout"
    glided = _glide(motion)
    assert metrics.foot_skate_ratio(glided) > 0.5
    planted = planting.plant_feet(glided, contacts)
    assert metrics.foot_skate_ratio(planted) <= metrics.foot_skate_ratio(motion)
    # What is left of the 3.6 cm/frame glide is at most the roll a planted foot is allowed.
    left = np.linalg.norm(np.diff((planted - motion)[:, 0, [0, 2]], axis=0), axis=-1)
    assert left.mean() < 1.5 * planting.ROLL


def test_only_the_path_across_the_floor_moves(motion):
    contacts = features.foot_contacts(motion) > 0.5
    glided = _glide(motion)
    planted = planting.plant_feet(glided, contacts)
    assert np.array_equal(planted[..., 1], glided[..., 1])  # heights: no foot lifted, none pushed into the floor
    relative = lambda j: j - j[:, :1]
    assert np.allclose(relative(planted), relative(glided), atol=1e-12)  # the pose itself is untouched


def test_root_speed_measures_the_glide_and_pose_speed_ignores_it(motion):
    assert metrics.root_speed(_glide(motion) - motion) == pytest.approx(np.hypot(0.03, 0.02) * 20)
    assert metrics.pose_speed(_glide(motion)) == pytest.approx(metrics.pose_speed(motion), abs=1e-9)
    still = np.repeat(motion[:1], len(motion), axis=0)
    waving = still.copy()
    waving[:, skeleton.JOINT_INDEX["left_wrist"], 1] += 0.01 * np.arange(len(motion))  # 0.2 m/s, one joint of 21
    assert metrics.pose_speed(still) == 0.0
    assert metrics.pose_speed(waving) == pytest.approx(0.2 / 21)


def test_frames_up_to_start_are_kept_exactly(motion):
    contacts = features.foot_contacts(motion) > 0.5
    glided = _glide(motion)
    planted = planting.plant_feet(glided, contacts, start=60)
    assert np.array_equal(planted[:61], glided[:61])
    assert metrics.foot_skate_ratio(planted[60:]) < metrics.foot_skate_ratio(glided[60:])


def test_no_contact_no_change(motion):
    glided = _glide(motion)
    assert np.array_equal(planting.plant_feet(glided, np.zeros((len(motion) - 1, 4), bool)), glided)


def _slide_left_foot(joints, per_frame=(0.03, 0.0, 0.0)):
    """The left ankle and toe dragged sideways at 0.6 m/s (the knee half as far): a foot that skates."""
    slid = joints.copy()
    drag = np.arange(len(joints))[:, None] * np.array(per_frame)
    for name, share in (("left_knee", 0.5), ("left_ankle", 1.0), ("left_foot", 1.0)):
        slid[:, skeleton.JOINT_INDEX[name]] += share * drag
    return slid


@pytest.mark.parametrize("keyed", [[0, 60, 120], []], ids=["in-between", "generated"])
def test_a_planted_foot_is_held_with_its_leg_lengths(motion, keyed):
    contacts = features.foot_contacts(motion[:121]) > 0.5
    keyed = np.array(keyed, dtype=int)
    slid = _slide_left_foot(motion[:121], per_frame=(0.01, 0.0, 0.0))
    locked = planting.lock_feet(slid, contacts, keyed)
    # Through each planted span of the left foot away from the keys, the foot (between ankle and toe) stands still.
    foot = lambda joints: joints[:, [skeleton.JOINT_INDEX["left_ankle"], skeleton.JOINT_INDEX["left_foot"]]].mean(1)
    down = np.zeros(121, bool)
    down[:-1] |= contacts[:, :2].any(axis=1)
    down[1:] |= contacts[:, :2].any(axis=1)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], down.astype(int), [0]])))
    spans = [(a, b - 1) for a, b in zip(edges[::2], edges[1::2])
             if np.abs(np.arange(a, b)[:, None] - keyed).min(initial=121) > planting.LOCK_BLEND and b - a > 3]
    assert spans, "the sample should plant its left foot away from the keys"
    for a, b in spans:
        steps = np.linalg.norm(np.diff(foot(locked)[a:b + 1, [0, 2]], axis=0), axis=-1)
        # Held exactly, but where the leg is nearly straight (heel strike, toe off): there only as far as it reaches.
        assert np.median(steps) < 1e-9 and np.ptp(foot(locked)[a:b + 1, 0]) < 0.5 * np.ptp(foot(slid)[a:b + 1, 0])
    assert np.array_equal(locked[keyed], slid[keyed])  # a keyed frame never moves
    assert np.array_equal(locked[:, UPPER], slid[:, UPPER])  # hips and everything above stay
    for joint in ("left_ankle", "left_foot", "right_ankle", "right_foot"):  # no foot lifted or pushed down
        assert np.array_equal(locked[:, skeleton.JOINT_INDEX[joint], 1], slid[:, skeleton.JOINT_INDEX[joint], 1])
    for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):  # thigh and shin keep their lengths
        for a, b in ((hip, knee), (knee, ankle)):
            np.testing.assert_allclose(np.linalg.norm(locked[:, a] - locked[:, b], axis=-1),
                                       np.linalg.norm(slid[:, a] - slid[:, b], axis=-1), atol=1e-9)


def test_a_foot_is_held_only_as_far_as_its_leg_reaches(motion):
    contacts = np.ones((120, 4), bool)  # planted throughout: held at its mean place, metres away at the ends
    slid = _slide_left_foot(motion[:121], per_frame=(0.05, 0.0, 0.0))
    locked = planting.lock_feet(slid, contacts, [0, 120])
    hip, knee, ankle = (skeleton.JOINT_INDEX[f"left_{part}"] for part in ("hip", "knee", "ankle"))
    distance = lambda motion_, a, b: np.linalg.norm(motion_[:, a] - motion_[:, b], axis=-1)
    reach = distance(slid, knee, hip) + distance(slid, ankle, knee)  # the leg's own lengths, before the hold
    assert (distance(locked, ankle, hip) <= reach + 1e-9).all()
    np.testing.assert_allclose(distance(locked, knee, hip), distance(slid, knee, hip), atol=1e-9)
    np.testing.assert_allclose(distance(locked, ankle, knee), distance(slid, ankle, knee), atol=1e-9)
    assert np.abs(locked[:, ankle] - slid[:, ankle]).max() > 0.1  # held where it could be, not left sliding


def test_no_contact_or_no_gap_no_lock(motion):
    slid = _slide_left_foot(motion[:61])
    assert np.array_equal(planting.lock_feet(slid, np.zeros((60, 4), bool), [0, 60]), slid)
    assert np.array_equal(planting.lock_feet(slid, np.ones((60, 4), bool), np.arange(61)), slid)  # every frame keyed


def test_the_root_path_moves_after_the_last_key_unless_it_ends_the_clip():
    assert planting.root_path_start((), 60) == 0
    assert planting.root_path_start(np.array([0, 9]), 60) == 9
    assert planting.root_path_start(np.array([0, 30, 59]), 60) is None


def test_the_pipeline_plants_generated_feet_and_keeps_keys(tiny_checkpoint, motion):
    pipeline = Pipeline(tiny_checkpoint, device="cpu")
    request = MotionRequest(text="a person walks forward.", frames=40, samples=2, seed=1)
    free, planted = pipeline.generate(replace(request, plant_feet=False)), pipeline.generate(request)
    assert planted.meta["plant_feet"] and not free.meta["plant_feet"]
    relative = lambda j: j - j[..., :1, :] * np.array([1.0, 0.0, 1.0])
    # The root's path moved; about it, only the held feet and their knees did.
    assert np.allclose(relative(planted.joints)[..., UPPER, :], relative(free.joints)[..., UPPER, :], atol=1e-5)
    assert planted.features.shape == free.features.shape
    # Continuation: frames up to the last key are the same either way, the keys are met exactly.
    keys = keyframes.Keyframes.full_poses(np.arange(10), motion[:10])
    keyed = MotionRequest(frames=40, samples=1, keys=keys, seed=1)
    free, planted = pipeline.generate(replace(keyed, plant_feet=False)), pipeline.generate(keyed)
    assert np.array_equal(planted.joints[0, :10], free.joints[0, :10])
    assert np.abs(planted.joints[0, :10] - on_reference_skeleton(keys).joints).max() < 1e-5
    assert not np.allclose(planted.joints[0, 10:], free.joints[0, 10:])
    assert not np.allclose(planted.features[0, 10:], free.features[0, 10:])  # of the path as moved


def test_the_pipeline_holds_planted_feet_between_keys(tiny_checkpoint, motion):
    pipeline = Pipeline(tiny_checkpoint, device="cpu")
    keyed = [0, 30, 59]
    keys = keyframes.Keyframes.full_poses(keyed, motion[keyed])
    request = MotionRequest(frames=60, samples=2, keys=keys, seed=2, guidance=1.0)
    free, held = pipeline.generate(replace(request, plant_feet=False)), pipeline.generate(request)
    assert np.abs(held.joints[:, keyed] - on_reference_skeleton(keys).joints).max() < 1e-5
    assert np.array_equal(held.joints[:, :, UPPER], free.joints[:, :, UPPER])
    assert not np.array_equal(held.joints[:, :, HELD], free.joints[:, :, HELD])
    # With the last frame keyed the root's path stays, and so do the features returned beside the joints.
    assert np.array_equal(held.features, free.features)
