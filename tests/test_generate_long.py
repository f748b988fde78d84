"""Pipeline.generate_long: clips longer than the model's window, chained window by window on a real tiny model."""
import numpy as np
import pytest

import blender_util
from backend.errors import UserError
from backend.keyframes import Keyframes
from backend.pipeline import (CHAIN_OVERLAP, SEAM_BLEND, MotionRequest, Pipeline, _continuation, chain_windows,
                              on_reference_skeleton)
from conftest import HUMANML_SAMPLE_DIR

MOTION = np.load(HUMANML_SAMPLE_DIR / "new_joints_012314.npy").astype(np.float64)  # (170, 22, 3), tests only


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    folder = blender_util.small_checkpoint(tmp_path_factory.mktemp("model") / "tiny", diffusion_steps=10)
    return Pipeline(folder, "cpu")


def test_a_short_clip_is_one_plain_generation(pipeline):
    request = MotionRequest(action="walk", frames=80, samples=2, seed=3)
    np.testing.assert_array_equal(pipeline.generate_long(request).joints, pipeline.generate(request).joints)


def test_a_long_clip_continues_each_window_from_the_last(pipeline):
    window = pipeline.loaded.frames["max_frames"]
    progress = []
    result = pipeline.generate_long(MotionRequest(action="walk", frames=2 * window + 50, samples=2, seed=3),
                                    progress=lambda done, total: progress.append((done, total)))
    assert result.joints.shape == (2, 2 * window + 50, 22, 3) and result.features.shape == (2, 2 * window + 50, 263)
    windows = -(-(2 * window + 50 - CHAIN_OVERLAP) // (window - CHAIN_OVERLAP))
    assert result.meta["windows"] == windows and result.meta["frames"] == 2 * window + 50
    # the first window is the plain generation of one window with the same seed
    first = pipeline.generate(MotionRequest(action="walk", frames=window, samples=2, seed=3))
    np.testing.assert_array_equal(result.joints[:, :window], first.joints)
    # progress counts every window of every sample, up to its end, never backwards
    runs = 1 + (windows - 1) * 2
    assert progress[-1] == (runs * 10, runs * 10) and all(b[0] > a[0] for a, b in zip(progress, progress[1:]))
    # no jump at a seam: the step into each new window is no larger than the clip's largest other step
    step = np.linalg.norm(np.diff(result.joints, axis=1), axis=-1).max(axis=-1)  # (S, T-1)
    seams = [window - 1 + k * (window - CHAIN_OVERLAP) for k in range(windows - 1)]
    others = np.delete(step, seams, axis=1)
    assert (step[:, seams] <= others.max(axis=1, keepdims=True) + 1e-6).all()
    assert np.isfinite(result.features).all()


def test_a_window_that_sets_off_at_another_pace_is_eased_in():
    """The motion so far walks slowly; the next window, keyed on its last frames, sets off fast and bends an arm.
    The seam keeps the last velocity, eases into the window's own over SEAM_BLEND frames, and then is the window's
    motion, moved rigidly along the ground by what the easing left."""
    pose = MOTION[0]
    slow, fast = np.array([0.0, 0.0, 0.01]), np.array([0.0, 0.0, 0.05])  # metres per frame
    motion = pose + slow * np.arange(40)[:, None, None]
    window = motion[-CHAIN_OVERLAP:][-1] + fast * np.arange(1, 41)[:, None, None]
    window[:, 20] += [0.0, 0.1, 0.0]  # the right wrist jumps up at the window's first new frame
    window = np.concatenate([motion[-CHAIN_OVERLAP:], window])
    new = _continuation(motion, window, CHAIN_OVERLAP)
    joined = np.concatenate([motion, new])
    velocity = np.diff(joined, axis=0)
    np.testing.assert_allclose(new[0], 2 * motion[-1] - motion[-2])  # the first new frame continues the motion
    change = np.linalg.norm(np.diff(velocity, axis=0), axis=-1).max(axis=-1)  # (T-2,) largest joint's, per frame
    assert change.max() < 0.25 * np.linalg.norm(fast - slow)  # eased (0.16 of it): never the whole change at once
    after = new[SEAM_BLEND:] - window[CHAIN_OVERLAP + SEAM_BLEND:]  # (N, 22, 3)
    np.testing.assert_allclose(after, np.broadcast_to(after[:1, :1] * [1, 0, 1], after.shape), atol=1e-9)


def test_too_long_clips_and_too_far_apart_keys_are_refused(pipeline):
    with pytest.raises(UserError, match="too long: chained generation reaches"):
        pipeline.generate_long(MotionRequest(action="walk", frames=5000, samples=1))
    keys = Keyframes.full_poses([0, 200], MOTION[[0, 100]])
    with pytest.raises(UserError, match=r"keys at 0.00 s and 10.00 s are too far apart: this model fills at most 5.5"):
        pipeline.generate_long(MotionRequest(frames=300, samples=1, keys=keys))
    unfit = Keyframes.full_poses([0, 100, 200], np.zeros((3, 22, 3)))  # named before any work on the keys
    with pytest.raises(UserError, match="unknown in-betweening method"):
        pipeline.generate_long(MotionRequest(frames=300, samples=1, keys=unfit, inbetween_method="magic"))


@pytest.mark.parametrize("key_frames", [[], list(range(0, 300, 20)) + [299], [35, 60, 150, 170, 260, 280]])
def test_chain_windows_cover_the_clip_once_each_stretch_knowing_the_key_after_it(key_frames):
    window, overlap, total = 120, CHAIN_OVERLAP, 300
    pieces = chain_windows(key_frames, total, window, overlap, min_frames=20, fps=20)
    assert pieces[0].start == 0 and pieces[-1].keep_to == total - 1
    for before, after in zip(pieces, pieces[1:]):
        assert after.start == before.keep_to - overlap + 1  # keyed on the last `overlap` frames made so far
    for piece in pieces:
        assert 20 <= piece.stop - piece.start + 1 <= window and piece.keep_to <= piece.stop
        later = [k for k in key_frames if k > piece.keep_to]
        if piece.keep_to < total - 1 and later:  # it stops at a key, sampling on to the next one if it reaches it
            assert piece.keep_to in key_frames and (piece.stop == later[0] or later[0] > piece.start + window - 1)
    if not key_frames:  # no keys: fixed windows, each continuing the last
        assert [p.start for p in pieces] == [0, 110, 220]


def test_a_long_inbetween_is_chained_and_meets_every_key(pipeline):
    keyed = np.append(np.arange(0, 170, 20), 169)
    keys = Keyframes.full_poses(keyed, MOTION[keyed])
    progress = []
    result = pipeline.generate_long(MotionRequest(frames=170, samples=2, seed=1, keys=keys, guidance=1.0),
                                    progress=lambda done, total: progress.append((done, total)))
    assert result.joints.shape == (2, 170, 22, 3) and result.meta["windows"] == 2
    assert np.abs(result.joints[:, keyed] - on_reference_skeleton(keys).joints).max() < 1e-5
    assert len(result.meta["keyframe_error_unsnapped"]) == 2 and result.meta["inbetween_method"] == "keyframe"
    assert progress[-1] == (3 * 10, 3 * 10)  # the first window's 2 samples at once, then one request per sample
    # the first window stops contributing at the key before the last it reached (80, sampled on to 100); the step
    # into the next window's frames is no larger than the clip's other steps
    step = np.linalg.norm(np.diff(result.joints, axis=1), axis=-1).max(axis=-1)  # (S, T-1)
    assert (step[:, 80] <= np.delete(step, 80, axis=1).max(axis=1) + 1e-6).all()
