"""Planted feet: a gliding root is pulled back onto the feet, the pose and the keyed frames are left alone."""
from dataclasses import replace

import numpy as np
import pytest

from backend import features, keyframes, metrics, planting, skeleton
from backend.pipeline import MotionRequest, Pipeline, on_reference_skeleton
from conftest import HUMANML_SAMPLE_DIR


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


def test_the_pipeline_plants_generated_feet_and_keeps_keys(tiny_checkpoint, motion):
    pipeline = Pipeline(tiny_checkpoint, device="cpu")
    request = MotionRequest(text="a person walks forward.", frames=40, samples=2, seed=1)
    free, planted = pipeline.generate(replace(request, plant_feet=False)), pipeline.generate(request)
    assert planted.meta["plant_feet"] and not free.meta["plant_feet"]
    relative = lambda j: j - j[..., :1, :] * np.array([1.0, 0.0, 1.0])
    assert np.allclose(relative(planted.joints), relative(free.joints), atol=1e-5)
    assert planted.features.shape == free.features.shape
    # Continuation: frames up to the last key are the same either way, the keys are met exactly.
    keys = keyframes.Keyframes.full_poses(np.arange(10), motion[:10])
    keyed = MotionRequest(frames=40, samples=1, keys=keys, seed=1)
    free, planted = pipeline.generate(replace(keyed, plant_feet=False)), pipeline.generate(keyed)
    assert np.array_equal(planted.joints[0, :10], free.joints[0, :10])
    assert np.abs(planted.joints[0, :10] - on_reference_skeleton(keys).joints).max() < 1e-5
    assert not np.allclose(planted.joints[0, 10:], free.joints[0, 10:])
