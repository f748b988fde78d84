"""Editing: official x0 replacement, RePaint, keyframes -> features, root re-anchoring, reconstruction guidance and
the torch joint recovery (backend/inpainting.py)."""
import numpy as np
import pytest
import torch

from backend import features, skeleton
from backend.diffusion import make_schedule
from backend.errors import UserError
from backend.fixture_check import Fixture
from backend.inpainting import (anchor_root, denormalize, feature_keep_mask, inbetween_mask, joints_from_features,
                                keyframe_error, keyframe_features, keyframe_inpainting, keyed_half_yaw, normalize,
                                qrot, reconstruction_guidance, repaint_schedule, replace_x0, root_rotation_position,
                                sample_repaint, upper_body_mask)
from backend.keyframes import Keyframes
from backend.samplers import gaussian_noise, model_denoiser, replayed_noise, sample_ddpm
from tests.conftest import FIXTURE_DIR
from tests.test_samplers import LinearMotionModel


@pytest.fixture(scope="module")
def fixture():
    return Fixture(FIXTURE_DIR)


@pytest.fixture(scope="module")
def motion(fixture):
    """A real HumanML3D clip's raw features [F, 263] (the fixture's recover_from_ric input)."""
    return torch.from_numpy(fixture.array("ric/motion_263")[0])


@pytest.fixture(scope="module")
def stats(motion):
    """Mean/Std to (de)normalise with; any positive Std serves the tests."""
    return motion.mean(0), motion.std(0) + 0.05


def moves(times):
    return list(zip(times[:-1], times[1:]))


# ------------------------------------------------------------------------------------------- masks and x0 editing

def test_inbetween_mask_is_the_official_one(fixture):
    """The fixture's clips have lengths 40 and 30 (its README): frames 10-29 and 7-21 are regenerated."""
    expected = fixture.array("edit/inbetween_mask")
    assert torch.equal(inbetween_mask([40, 30], expected.shape), torch.from_numpy(expected))


def test_upper_body_and_feature_masks(fixture):
    expected = fixture.array("edit/upper_body_mask")
    assert torch.equal(upper_body_mask(expected.shape), torch.from_numpy(expected))
    only_root = feature_keep_mask(skeleton.feature_mask([0], contacts=False), (1, 263, 1, 4))
    assert only_root[0, :, 0, 0].nonzero().flatten().tolist() == [0, 1, 2, 3, 193, 194, 195]  # root + its velocity
    assert only_root.all(dim=-1).equal(only_root.any(dim=-1))  # every frame alike


def test_replace_x0_overwrites_only_the_kept_region():
    gen = torch.Generator().manual_seed(0)
    x_t, known = torch.randn(2, 263, 1, 8, generator=gen), torch.randn(2, 263, 1, 8, generator=gen)
    keep = inbetween_mask([8, 6], x_t.shape)
    model = LinearMotionModel(263, dtype=torch.float32)
    free = model(x_t, torch.tensor([3, 3]), {})
    edited = replace_x0(lambda x, t: model(x, t, {}), known, keep)(x_t, torch.tensor([3, 3]))
    assert torch.equal(edited[keep], known[keep]) and torch.equal(edited[~keep], free[~keep])


# ---------------------------------------------------------------------------------------------------------- RePaint

@pytest.mark.parametrize("steps,jump,resample", [(50, 10, 10), (250, 10, 10), (20, 5, 3), (30, 10, 1)])
def test_repaint_schedule_walk_and_model_call_count(steps, jump, resample):
    times = repaint_schedule(steps, jump, resample)
    assert times[0] == steps - 1 and times[-1] == -1
    assert all(abs(b - a) == 1 for a, b in moves(times))
    assert min(times) == -1 and max(times) == steps - 1
    down = sum(b < a for a, b in moves(times))
    assert down == steps + (steps // jump - 1) * (resample - 1) * jump  # every down move is one model call
    assert len(times) - 1 == down + (steps // jump - 1) * (resample - 1) * jump


def test_repaint_counts_of_the_reference_settings():
    assert sum(b < a for a, b in moves(repaint_schedule(50, 10, 10))) == 410
    assert sum(b < a for a, b in moves(repaint_schedule(250, 10, 10))) == 2410
    assert repaint_schedule(5, 10, 10) == [4, 3, 2, 1, 0, -1]  # jumps longer than the chain: plain sampling
    with pytest.raises(UserError, match="jump_length"):
        repaint_schedule(50, 0, 10)


def test_repaint_keeps_the_known_region_exactly_and_calls_the_model_once_per_down_move():
    schedule = make_schedule(20)
    gen = torch.Generator().manual_seed(0)
    known = torch.randn(2, 263, 1, 12, generator=gen)
    keep = inbetween_mask([12, 12], known.shape)
    model = LinearMotionModel(263, dtype=torch.float32)
    reports = []
    out = sample_repaint(model_denoiser(model, {}, schedule), schedule, torch.randn(known.shape, generator=gen), known,
                         keep, gaussian_noise(gen), jump_length=5, jump_n_sample=3,
                         progress=lambda done, total: reports.append(total))
    times = repaint_schedule(20, 5, 3)
    assert len(model.calls) == sum(b < a for a, b in moves(times)) == 20 + 3 * 2 * 5
    assert len(reports) == reports[0] == len(times) - 1
    assert torch.equal(out[keep], known[keep])


def test_repaint_without_resampling_or_known_part_is_ancestral_sampling():
    """r = 1, nothing kept: RePaint's denoising moves are exactly DDPM's (it also draws a noise for the known part
    at every move, which is then unused)."""
    schedule = make_schedule(10)
    gen = torch.Generator().manual_seed(0)
    x_T = torch.randn(2, 263, 1, 6, generator=gen, dtype=torch.float64)
    noises = torch.randn((20,) + x_T.shape, generator=gen, dtype=torch.float64)
    denoise = model_denoiser(LinearMotionModel(263), {}, schedule)
    repainted = sample_repaint(denoise, schedule, x_T, torch.zeros_like(x_T), torch.zeros(x_T.shape, dtype=bool),
                               replayed_noise(noises), jump_length=3, jump_n_sample=1)
    plain = sample_ddpm(denoise, schedule, x_T, replayed_noise(noises[0::2]))
    torch.testing.assert_close(repainted, plain, rtol=0, atol=1e-12)


# -------------------------------------------------------------------------------------------- torch joint recovery

def test_torch_recovery_is_the_official_one_and_the_numpy_one(fixture, motion):
    root_quat, root_pos = root_rotation_position(motion[None])
    assert np.abs(root_quat.numpy() - fixture.array("ric/r_rot_quat")).max() <= 1e-6
    assert np.abs(root_pos.numpy() - fixture.array("ric/r_pos")).max() <= 1e-6
    joints = joints_from_features(motion[None]).numpy()
    assert np.abs(joints - fixture.array("ric/joints_22")).max() <= 1e-6
    assert np.abs(joints - features.features_to_joints(motion[None].numpy())).max() <= 1e-6

    gen = torch.Generator().manual_seed(0)
    random = torch.randn(3, 17, 263, generator=gen, dtype=torch.float64) * 0.3  # [B, F, 263], turning a lot
    np.testing.assert_allclose(joints_from_features(random).numpy(), features.features_to_joints(random.numpy()),
                               atol=1e-12)


def test_torch_recovery_is_differentiable(motion):
    feats = motion.double().clone().requires_grad_(True)
    joints_from_features(feats)[-1, 20].sum().backward()  # last frame's wrist depends on every root velocity
    assert feats.grad[:-1, :3].abs().sum(1).gt(0).all()


def test_normalize_round_trip(motion, stats):
    x = normalize(motion[None], *stats)
    assert x.shape == (1, 263, 1, motion.shape[0])
    torch.testing.assert_close(denormalize(x, *stats), motion[None])


# --------------------------------------------------------------------------------- keyframes and root anchoring

def keys_of(joints, frames, joint_mask=None):
    frames = np.asarray(frames)
    if joint_mask is None:
        return Keyframes.full_poses(frames, joints[frames])
    return Keyframes(frames, joints[frames], np.asarray(joint_mask))


def other_motion(motion, seed=0):
    """The clip with its root path, turning and height disturbed: keys from it disagree with `motion`."""
    gen = torch.Generator().manual_seed(seed)
    other = motion.double().clone()
    other[:, :3] += 0.05 * torch.randn(len(other), 3, generator=gen, dtype=torch.float64)
    other[:, 3] += 0.1
    return other


def test_keyed_heading_turns_the_pose_to_face_plus_z(motion):
    joints = joints_from_features(motion.double()).numpy()
    keys = keys_of(joints, [5, 17])
    half_yaw = keyed_half_yaw(keys, "instant")  # each key's own facing
    for k, frame in enumerate(keys.frames):
        quat = torch.tensor([np.cos(half_yaw[k]), 0.0, np.sin(half_yaw[k]), 0.0])
        r_hip, l_hip, r_sdr, l_sdr = skeleton.FACE_JOINTS
        pose = torch.from_numpy(joints[frame])
        across = pose[r_hip] - pose[l_hip] + pose[r_sdr] - pose[l_sdr]
        facing = qrot(quat, torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), across))
        assert abs(facing[0].item()) < 1e-9 and facing[2].item() > 0
    no_face = keys_of(joints, [5], np.eye(22, dtype=bool)[[0]])
    assert np.isnan(keyed_half_yaw(no_face)).all()


def test_keys_and_anchoring_put_every_keyed_joint_exactly_on_its_key(motion):
    """Feature values a key determines + re-anchored root: the recovered joints hit full-pose keys exactly."""
    target = joints_from_features(other_motion(motion)).numpy()
    keys = keys_of(target, [0, 12, 20, 29])
    values, known = keyframe_features(keys, len(motion))
    assert known[12, skeleton.ROOT_HEIGHT].all() and known[12, skeleton.RIC].all()
    assert not known[:, skeleton.ROOT_XZ_VELOCITY].any() and not known[:, skeleton.ROT].any()
    edited = torch.where(torch.from_numpy(known), torch.from_numpy(values), motion.double())
    before = joints_from_features(edited).numpy()[keys.frames]
    assert np.abs(before - keys.joints).max() > 0.5
    given = edited.clone()
    after = joints_from_features(anchor_root(edited, keys)).numpy()[keys.frames]
    assert np.abs(after - keys.joints).max() < 1e-12
    assert torch.equal(edited, given)  # the caller's features are not modified


def test_anchoring_spreads_the_root_correction_and_keeps_the_motion_after_the_last_key(motion):
    target = joints_from_features(other_motion(motion)).numpy()
    keys = keys_of(target, [8, 20], np.eye(22, dtype=bool)[[0, 0]])  # root-only keys
    original = joints_from_features(motion[None]).numpy()[0]
    anchored = anchor_root(motion[None], keys)  # float32, batched
    assert anchored.dtype == torch.float32 and anchored.shape == (1,) + motion.shape
    joints = joints_from_features(anchored).numpy()[0]
    assert np.abs(joints[keys.frames, 0] - keys.joints[:, 0]).max() < 1e-5
    assert np.abs(joints[0, 0, [0, 2]]).max() == 0  # frame 0 stays the origin
    # No kink at a key: the correction's acceleration on a keyed frame is no spike over its neighbours' (a
    # piecewise-linear spread would put all of it on the keyed frame, and none beside it).
    acceleration = np.linalg.norm(np.diff(joints[:, 0] - original[:, 0], 2, axis=0), axis=-1)  # at frames 1..T-2
    for key in keys.frames:
        assert acceleration[key - 1] < 1.5 * max(acceleration[key - 2], acceleration[key]) + 1e-5
    # After the last key the root moves as before (the same displacements).
    np.testing.assert_allclose(np.diff(joints[20:, 0], axis=0), np.diff(original[20:, 0], axis=0), atol=1e-5)
    # The stored velocities stay those of a walk, not of a teleport.
    assert anchored[0, :, :3].abs().max() < 3 * motion[:, :3].abs().max() + 0.1


def test_a_frame0_key_off_the_origin_is_refused(motion):
    joints = joints_from_features(motion.double()).numpy() + np.array([0.5, 0.0, 0.0])
    with pytest.raises(UserError, match="frame 0"):
        anchor_root(motion, keys_of(joints, [0, 10]))


def keyframe_sampling_setup(motion, stats):
    schedule = make_schedule(10)
    denoise = model_denoiser(LinearMotionModel(263, dtype=torch.float32), {}, schedule)
    target = joints_from_features(other_motion(motion)).numpy()
    return schedule, denoise, keys_of(target, [0, 10, 20, 29])


@pytest.mark.parametrize("method", ["x0_replacement", "repaint"])
def test_keyframe_in_betweening_end_to_end_hits_the_keys(motion, stats, method):
    schedule, denoise, keys = keyframe_sampling_setup(motion, stats)
    known, keep = keyframe_inpainting(keys, len(motion), *stats, batch=2)
    gen = torch.Generator().manual_seed(0)
    x_T = torch.randn(known.shape, generator=gen)
    if method == "repaint":
        x = sample_repaint(denoise, schedule, x_T, known, keep, gaussian_noise(gen), jump_length=3, jump_n_sample=2)
    else:
        x = sample_ddpm(replace_x0(denoise, known, keep), schedule, x_T, gaussian_noise(gen))
    raw = denormalize(x.double(), *stats)  # float64 anchoring: the dummy denoiser walks far (float32 drifts ~1e-4)
    assert keyframe_error(joints_from_features(raw), keys).min() > 1e-2
    anchored = joints_from_features(anchor_root(raw, keys))
    assert np.abs(anchored[:, keys.frames].numpy() - keys.joints).max() < 1e-6  # float32 key values


def test_reconstruction_guidance_reduces_the_keyframe_error(motion, stats):
    schedule, denoise, keys = keyframe_sampling_setup(motion, stats)

    def final_error(denoiser):
        gen = torch.Generator().manual_seed(0)
        x = sample_ddpm(denoiser, schedule, torch.randn(2, 263, 1, len(motion), generator=gen), gaussian_noise(gen))
        return keyframe_error(joints_from_features(denormalize(x, *stats)), keys)

    plain = final_error(denoise)
    guided = final_error(reconstruction_guidance(denoise, schedule, keys, *stats, weight=10.0))
    assert (guided < 0.85 * plain).all(), (plain, guided)
