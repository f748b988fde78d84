"""Looping short takes of cyclic motion: the best cycle, laps chained rigidly, no jump at a seam."""
import numpy as np
import pytest

from backend import cycles, data, features, procedural, skeleton
from backend.keyframes import from_heading_frame
from conftest import MOCAP_DIR

PERIOD, SPEED, TURN_RATE = 13, 0.08, 0.03  # frames; m and radians per frame


def circling_stride(frames):
    """(frames, 22, 3): a standing pose whose limbs swing with period PERIOD while it walks a circle, so that any
    two frames PERIOD apart differ by one and the same rigid motion."""
    base = features.canonicalize(procedural.generate("idle", np.random.default_rng(0), 30).joints)[0]
    t = np.arange(frames)
    swing = np.zeros((frames, skeleton.NUM_JOINTS, 3))
    phase = 2 * np.pi * t / PERIOD
    swing[:, [4, 7, 10], 2] = 0.2 * np.sin(phase)[:, None]  # left leg forward and back
    swing[:, [5, 8, 11], 2] = -0.2 * np.sin(phase)[:, None]
    swing[:, [18, 20], 2] = -0.15 * np.sin(phase)[:, None]  # arms against the legs
    swing[:, 0, 1] = 0.02 * np.cos(2 * phase)  # the pelvis bobs twice per stride
    local = base - base[0] * np.array([1.0, 0.0, 1.0]) + swing
    yaw = TURN_RATE * t
    radius = SPEED / TURN_RATE
    origin = np.stack([radius * (1 - np.cos(yaw)), np.zeros(frames), radius * np.sin(yaw)], -1)
    return from_heading_frame(local, origin[:, None], yaw[:, None])


def test_a_periodic_take_loops_into_its_own_continuation():
    long = circling_stride(90)
    take = long[:30]
    start, end, error = cycles.best_cycle(take)
    assert (end - start) % PERIOD == 0 and error < 1e-9
    looped = cycles.repeat_cycle(take, start, end, 60)
    assert looped.shape == (60, skeleton.NUM_JOINTS, 3)
    np.testing.assert_allclose(looped, long[start:start + 60], atol=1e-9)


def test_a_take_too_short_for_a_cycle_has_none():
    assert cycles.best_cycle(circling_stride(cycles.MIN_PERIOD + 1)) is None


@pytest.mark.parametrize("name", ["przestr/09_02.bvh", "przestr/02_03.bvh"])
def test_a_recorded_run_loops_at_its_own_speed_without_a_jump(name):
    row = next(r for r in data.training_rows(MOCAP_DIR, files=[name]))
    take, _ = data.load_joints(row)
    start, end, error = cycles.best_cycle(take)
    assert end - start >= cycles.MIN_PERIOD and error <= cycles.MAX_SEAM_ERROR
    looped = cycles.repeat_cycle(take, start, end, 121)
    np.testing.assert_allclose(looped[0], take[start], atol=1e-9)  # the first lap starts on the take itself

    def speed(joints):  # m/s of the root over the floor
        return np.linalg.norm(np.diff(joints[:, 0, [0, 2]], axis=0), axis=-1).mean() * skeleton.FPS

    assert speed(looped) == pytest.approx(speed(take), rel=0.05)
    # At a seam, no joint moves further in one frame than it ever does in the take (plus a centimetre).
    step = np.linalg.norm(np.diff(looped, axis=0), axis=-1)  # (T-1, 22)
    take_step = np.linalg.norm(np.diff(take, axis=0), axis=-1).max(axis=0)
    assert np.all(step <= take_step + 0.01)
