"""Keyframe constraints: validation, the model's input channels, and exact placement onto the keys."""
import numpy as np
import pytest

from backend import keyframes as kf
from backend.errors import UserError
from conftest import HUMANML_SAMPLE_DIR


@pytest.fixture(scope="module")
def motion():
    return np.load(HUMANML_SAMPLE_DIR / "new_joints_012314.npy").astype(np.float64)  # (170, 22, 3), faces +Z


def _world(joints, yaw=0.7, shift=(2.0, 0.0, -1.0)):
    return joints @ kf.yaw_matrix(yaw).T + np.array(shift)


def test_heading_recovers_a_known_yaw(motion):
    origin, yaw = kf.heading(_world(motion)[0])
    assert yaw == pytest.approx(0.7, abs=1e-3)  # the clip's first frame faces +Z exactly
    assert origin[1] == 0.0


def test_heading_frame_round_trip(motion):
    origin, yaw = np.array([1.0, 0.0, 2.0]), 1.3
    local = kf.to_heading_frame(motion, origin, yaw)
    assert np.allclose(kf.from_heading_frame(local, origin, yaw), motion)


def test_fit_yaw_translation_recovers_known_moves_one_per_leading_index(motion):
    """Batched sources get their own yaw and offset each, equal to fitting them one at a time; heights stay put."""
    target = motion[40]  # (22, 3)
    yaws, shifts = np.array([0.3, -2.0, 3.0]), np.array([[1.0, 0.0, 2.0], [-3.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    # Each source is the target moved away by a known yaw and shift, and lifted 0.2 m (which the fit must not undo).
    sources = np.stack([(target - shift) @ kf.yaw_matrix(-yaw).T + [0, 0.2, 0] for yaw, shift in zip(yaws, shifts)])
    rot, offset = kf.fit_yaw_translation(sources, target, np.ones(len(target)))  # (3, 3, 3), (3, 3)
    assert rot.shape == (3, 3, 3) and offset.shape == (3, 3)
    assert np.allclose(rot, kf.yaw_matrix(yaws), atol=1e-9) and np.allclose(offset, shifts, atol=1e-9)
    for source, r, o in zip(sources, rot, offset):
        one_r, one_o = kf.fit_yaw_translation(source, target, np.ones(len(target)))
        assert np.allclose(one_r, r) and np.allclose(one_o, o)
        assert np.allclose(source @ r.T + o, target + [0, 0.2, 0], atol=1e-9)


def test_encode_is_invariant_to_where_the_keys_stand(motion):
    frames = [0, 30, 90]
    mean, std = np.zeros(263), np.ones(263)
    a = kf.encode(kf.Keyframes.full_poses(frames, motion[frames]), len(motion), mean, std)
    b = kf.encode(kf.Keyframes.full_poses(frames, _world(motion)[frames]), len(motion), mean, std)
    assert np.allclose(a[0], b[0], atol=1e-5) and np.array_equal(a[1], b[1])
    assert a[0].shape == (len(motion), kf.KEY_DIM) and not a[1][1:30].any()
    # The first key defines the frame: its root at the origin, facing +Z.
    assert np.allclose(a[0][0, -kf.ROOT_PATH_DIM:], [0, 0, 1, 0], atol=1e-6)


def test_encode_gives_the_features_a_key_fixes(motion):
    """At a key of the motion's own canonical clip, the encoded root height and ric match its real features."""
    from backend import features

    feats = features.joints_to_features(motion)  # the motion is canonical: frame 0 at the origin facing +Z
    mean, std = feats.mean(0), feats.std(0) + 1e-3
    values, mask = kf.encode(kf.Keyframes.full_poses([0, 50], motion[[0, 50]]), len(motion), mean, std)
    from backend import skeleton

    height = values[50, skeleton.ROOT_HEIGHT] * std[skeleton.ROOT_HEIGHT] + mean[skeleton.ROOT_HEIGHT]
    assert np.allclose(height, feats[50, skeleton.ROOT_HEIGHT], atol=1e-5)
    ric = values[0, skeleton.RIC] * std[skeleton.RIC] + mean[skeleton.RIC]
    assert np.allclose(ric, feats[0, skeleton.RIC], atol=1e-4) and mask[0, skeleton.RIC].all()
    assert not mask[:, skeleton.VEL].any() and not mask[:, skeleton.ROT].any()


@pytest.mark.parametrize("gap", [5, 10])
def test_smoothed_key_heading_follows_the_features_heading(motion, gap):
    """The features' heading is a smoothed, twist-following facing: estimated along the keys, the keyed ric x/z
    land far closer to the true features than each key's own facing puts them."""
    from backend import features, skeleton

    feats = features.joints_to_features(motion)  # (169, 263): canonical clip, the last frame has no velocity
    frames = np.unique(np.append(np.arange(0, len(feats), gap), len(feats) - 1))
    keys = kf.Keyframes.full_poses(frames, motion[frames])
    true = feats[frames, skeleton.RIC].reshape(len(frames), -1, 3)[..., [0, 2]]
    miss = {}
    for key_heading in kf.KEY_HEADINGS:
        values, _ = kf.keyframe_features(keys, len(feats), key_heading)
        ric = values[frames, skeleton.RIC].reshape(len(frames), -1, 3)[..., [0, 2]]
        miss[key_heading] = np.linalg.norm(ric - true, axis=-1).mean()
    print(f"gap {gap}: keyed ric x/z miss the features by {miss}")
    assert miss["smoothed"] < miss["instant"] / 2.5


def test_an_unknown_key_heading_is_refused(motion):
    with pytest.raises(UserError, match="key heading"):
        kf.keyed_half_yaw(kf.Keyframes.full_poses([0, 9], motion[[0, 9]]), "sideways")


def test_between_keys_interpolates_each_channel_between_its_own_keys():
    values, known = np.zeros((10, 3)), np.zeros((10, 3), dtype=bool)
    values[[1, 5, 9], 0], known[[1, 5, 9], 0] = [1.0, 5.0, 1.0], True
    values[[2, 4], 1], known[[2, 4], 1] = [2.0, 6.0], True
    values[3, 2], known[3, 2] = 7.0, True
    dense = kf.between_keys(values, known)
    assert np.allclose(dense[:, 0], [0, 1, 2, 3, 4, 5, 4, 3, 2, 1])  # zero before the first key, linear after
    assert np.allclose(dense[:, 1], [0, 0, 2, 4, 6, 0, 0, 0, 0, 0])  # zero after its last key
    assert np.allclose(dense[:, 2], [0, 0, 0, 7, 0, 0, 0, 0, 0, 0])  # a lone key stays a lone value


def test_encode_fills_the_gap_between_keys_but_masks_only_the_keys(motion):
    mean, std = np.zeros(263), np.ones(263)
    values, mask = kf.encode(kf.Keyframes.full_poses([0, 40], motion[[0, 40]]), len(motion), mean, std)
    assert mask[[0, 40]].any(axis=1).all() and not mask[1:40].any()
    from backend import skeleton

    root_height = values[:, skeleton.ROOT_HEIGHT.start]  # known at both keys
    assert np.allclose(root_height[20], (root_height[0] + root_height[40]) / 2)
    assert np.allclose(values[41:], 0)  # nothing known after the last key


def test_spline_through_meets_the_knots_with_no_kink_and_flat_ends():
    knots = np.array([5, 15, 22, 40])
    values = np.array([[0.0, 1.0], [1.0, -1.0], [-0.5, 0.0], [2.0, 0.5]])
    curve = kf.spline_through(knots, values, 50)
    np.testing.assert_allclose(curve[knots], values, atol=1e-12)
    assert np.all(curve[:6] == values[0]) and np.all(curve[40:] == values[-1])  # constant outside the knots
    # C2 at the inner knots: the third difference stays of the order of the gaps' own (no spike at a knot).
    third = np.abs(np.diff(curve[5:41], 3, axis=0)).max(axis=1)
    assert third.max() < 0.05
    # Two knots give the smoothstep 3s^2 - 2s^3 (zero slope at both ends).
    s = np.linspace(0, 1, 11)
    np.testing.assert_allclose(kf.spline_through([0, 10], np.array([0.0, 1.0]), 11), 3 * s**2 - 2 * s**3, atol=1e-12)
    np.testing.assert_allclose(kf.spline_through([3], np.array([[2.0]]), 5), 2.0)  # one knot: a constant


def test_bridging_removes_a_one_frame_pop_and_keeps_smooth_motion(motion):
    world = _world(motion)
    popped = world.copy()
    popped[60] += 0.05  # the keyed frame off its neighbours' path
    bridged = kf.bridge_keyed_frames(popped, [0, 60, 168])
    miss = np.linalg.norm(bridged[60] - world[60], axis=-1)
    assert miss.mean() < 0.01 and miss.max() < 0.02  # back on the motion's own path (the pop was 8.7 cm)
    assert np.array_equal(bridged[[0, 168]], world[[0, 168]])  # frames without two neighbours each side: kept
    t = np.arange(10.0)[:, None, None]
    cubic = np.broadcast_to(0.3 * t - 0.02 * t**2 + 0.001 * t**3, (10, 22, 3))
    np.testing.assert_allclose(kf.bridge_keyed_frames(cubic, [4]), cubic, atol=1e-12)  # exact on a cubic


def test_place_on_keys_hits_every_key_and_stays_smooth(motion):
    world = _world(motion)
    frames = [0, 20, 40, 44, 100, 169]
    keys = kf.Keyframes.full_poses(frames, world[frames])
    noisy = motion + np.cumsum(np.random.default_rng(0).normal(0, 0.003, (len(motion), 1, 3)), 0)
    placed = kf.place_on_keys(noisy, keys)
    assert np.abs(placed[frames] - world[frames]).max() < 1e-9
    # No pop: the largest frame-to-frame step stays close to the motion's own.
    step = np.linalg.norm(np.diff(placed, axis=0), axis=-1).max()
    assert step < 1.5 * np.linalg.norm(np.diff(world, axis=0), axis=-1).max()


def test_place_on_keys_with_a_free_root_only_aligns(motion):
    world = _world(motion)
    keys = kf.Keyframes.full_poses([0, 169], world[[0, 169]])
    placed = kf.place_on_keys(motion, keys, hold_root=False)
    assert np.abs(placed - world).max() < 1e-6  # a rigid copy is aligned exactly


def test_a_free_root_keeps_the_models_path_and_meets_the_poses(motion):
    world = _world(motion)
    frames = [0, 60, 169]
    keys = kf.Keyframes.full_poses(frames, world[frames])
    drifted = motion + np.linspace(0, 0.3, len(motion))[:, None, None] * np.array([1.0, 0.0, 0.0])
    placed = kf.place_on_keys(drifted, keys, hold_root=False)
    root_miss = np.linalg.norm(placed[60, 0] - world[60, 0])
    assert root_miss > 0.01  # the root follows the model (after the rigid fit), not the key
    relative = (placed[frames] - placed[frames, :1]) - (world[frames] - world[frames, :1])
    assert np.abs(relative).max() < 1e-9  # but the keyed pose is met around it


def test_partial_keys_only_constrain_their_joints(motion):
    world = _world(motion)
    mask = np.zeros((2, 22), dtype=bool)
    mask[:, 0] = True  # root-only keys
    values = world[[0, 100]].copy()
    values[:, 1:] += [0.0, 1.0, 0.0]  # what the unkeyed joints hold there must be ignored
    source = motion + 0.05
    placed = kf.place_on_keys(source, kf.Keyframes(np.array([0, 100]), values, mask))
    assert np.abs(placed[[0, 100], 0] - world[[0, 100], 0]).max() < 1e-9
    assert np.linalg.norm(placed[[0, 100], 1:] - values[:, 1:], axis=-1).min() > 0.5
    about_root = lambda joints: np.linalg.norm(joints[:, 1:] - joints[:, :1], axis=-1)
    assert np.abs(about_root(placed) - about_root(source)).max() < 0.02  # the pose follows the root, unbent


@pytest.mark.parametrize("frames, message", [
    ([0, 200], "outside the clip"),
    ([10, 5], "strictly increasing"),
    ([], "no keyframes"),
])
def test_bad_keys_are_refused_clearly(motion, frames, message):
    keys = kf.Keyframes.full_poses(frames, np.zeros((len(frames), 22, 3)))
    with pytest.raises(UserError, match=message):
        keys.validate(len(motion))


def test_a_key_that_constrains_no_joint_is_refused(motion):
    keys = kf.Keyframes.from_arrays([0, 10], motion[[0, 10]], np.eye(2, 22, dtype=bool) * [[1], [0]])
    with pytest.raises(UserError, match=r"keyframe\(s\) \[10\] constrain no joint"):
        keys.validate(len(motion))


@pytest.mark.parametrize("frames, joints, message", [
    ([0, 1.5], np.zeros((2, 22, 3)), "whole frame numbers"),
    (["a", "b"], np.zeros((2, 22, 3)), "whole frame numbers"),
    ([0, 1], [[[0, 0, 0]] * 22, [[0, 0]] * 22], "keys must be numbers"),
])
def test_keys_that_are_not_numbers_of_the_right_kind_are_refused(frames, joints, message):
    with pytest.raises(UserError, match=message):
        kf.Keyframes.from_arrays(frames, joints)
    assert kf.Keyframes.from_arrays([0.0, 7.0], np.zeros((2, 22, 3))).frames.tolist() == [0, 7]
