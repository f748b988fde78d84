"""Pipeline.generate_long: clips longer than the model's window, chained window by window on a real tiny model."""
import numpy as np
import pytest

import blender_util
from backend.errors import UserError
from backend.pipeline import CHAIN_OVERLAP, Pipeline, MotionRequest


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


def test_too_long_and_long_inbetweens_are_refused(pipeline):
    with pytest.raises(UserError, match="too long: chained generation reaches"):
        pipeline.generate_long(MotionRequest(action="walk", frames=5000, samples=1))
    from backend.keyframes import Keyframes
    keys = Keyframes.full_poses([0, 200], np.zeros((2, 22, 3)))
    with pytest.raises(UserError, match="in-betweening covers one window"):
        pipeline.generate_long(MotionRequest(action="walk", frames=300, samples=1, keys=keys))
