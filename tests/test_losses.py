"""Training losses: the torch joint recovery agrees with the numpy one, the foot-contact loss measures glide and the
bone-length loss a limb's change of length."""
import numpy as np
import pytest
import torch

from backend import features, losses, skeleton
from conftest import HUMANML_SAMPLE_DIR


@pytest.fixture(scope="module")
def sample():
    """HumanML3D's own features of one motion, float64, as [1, 263, 1, F] (mean 0 / std 1: raw = z-scored)."""
    raw = np.load(HUMANML_SAMPLE_DIR / "new_joint_vecs_012314.npy").astype(np.float64)
    return raw, torch.from_numpy(raw).T[None, :, None, :]


def test_joints_from_features_matches_the_numpy_recovery(sample):
    raw, _ = sample
    got = losses.joints_from_features(torch.from_numpy(raw)).numpy()
    np.testing.assert_allclose(got, features.features_to_joints(raw), atol=1e-9)


def test_foot_contact_measures_the_glide_a_root_velocity_error_adds(sample):
    """A root drifting by d m/frame moves every contact foot's step by |d|: the loss is (|d| / scale)^2, on
    contact frames only; an exact prediction scores 0."""
    raw, x0 = sample
    frames = x0.shape[-1]
    valid = torch.ones(1, frames, dtype=torch.bool)
    mean, std = torch.zeros(skeleton.FEATURE_DIM, dtype=x0.dtype), torch.ones(skeleton.FEATURE_DIM, dtype=x0.dtype)
    assert losses.foot_contact(x0, x0, valid, mean, std, scale=0.02).item() == 0.0
    drift = x0.clone()
    drift[:, skeleton.ROOT_XZ_VELOCITY] += torch.tensor([0.03, -0.04], dtype=x0.dtype)[None, :, None, None]
    assert losses.foot_contact(drift, x0, valid, mean, std, scale=0.02).item() == pytest.approx((0.05 / 0.02) ** 2)
    weighted = losses.foot_contact(drift, x0, valid, mean, std, scale=0.02, sample_weight=torch.tensor([0.25]))
    assert weighted.item() == pytest.approx(0.25 * (0.05 / 0.02) ** 2)
    # The same drift where no foot is down costs nothing.
    airborne = x0.clone()
    airborne[:, skeleton.CONTACT] = 0.0
    assert losses.foot_contact(drift, airborne, valid, mean, std, scale=0.02).item() == 0.0
    assert raw[:-1, skeleton.CONTACT].any()  # the sample has contacts to measure


def test_bone_length_measures_each_bones_change_of_length(sample):
    """Every joint moved (1 + e) times as far from the root scales every bone by (1 + e): the loss is the mean over
    frames and bones of (e * length / scale)^2; an exact prediction scores 0, padded frames count nothing."""
    raw, x0 = sample
    frames = x0.shape[-1]
    valid = torch.ones(1, frames, dtype=torch.bool)
    mean, std = torch.zeros(skeleton.FEATURE_DIM, dtype=x0.dtype), torch.ones(skeleton.FEATURE_DIM, dtype=x0.dtype)
    assert losses.bone_length(x0, x0, valid, mean, std, scale=0.02).item() == 0.0
    e = 0.05
    grown = x0.clone()
    ric = grown[0, skeleton.RIC, 0].reshape(skeleton.NUM_JOINTS - 1, 3, frames)  # view: x, z about the root; y height
    height = x0[0, skeleton.ROOT_HEIGHT, 0]  # [1, F]
    ric[:, [0, 2]] *= 1 + e
    ric[:, 1] = height + (1 + e) * (ric[:, 1] - height)
    joints = features.features_to_joints(raw)
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, list(skeleton.PARENTS[1:])], axis=-1)  # (F, 21)
    expected = np.mean((e * lengths / 0.02) ** 2)
    assert losses.bone_length(grown, x0, valid, mean, std, scale=0.02).item() == pytest.approx(expected, rel=1e-9)
    half = valid.clone()
    half[:, frames // 2:] = False  # the grown frames past the middle are padding
    expected_half = np.mean((e * lengths[: frames // 2] / 0.02) ** 2)
    assert losses.bone_length(grown, x0, half, mean, std, scale=0.02,
                              sample_weight=torch.tensor([0.5])).item() == pytest.approx(0.5 * expected_half, rel=1e-9)


def test_x0_mse_ignores_padded_frames():
    x0 = torch.zeros(2, 5, 1, 4)
    x0_hat = x0.clone()
    x0_hat[0, :, :, 3] = 100.0  # a padded frame of the first window
    valid = torch.tensor([[True, True, True, False], [True, True, True, True]])
    assert losses.x0_mse(x0_hat, x0, valid).item() == 0.0
    x0_hat[1] = 2.0
    assert losses.x0_mse(x0_hat, x0, valid).item() == pytest.approx(4.0 * 4 / 7)
