"""Quaternion, matrix and 6D helpers against each other and against rotation-matrix algebra."""
import numpy as np
import pytest

from backend import rotations as rot


def random_quaternions(rng, shape):
    return rot.unit(rng.normal(size=shape + (4,)))


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_qmul_and_qrot_agree_with_matrices(rng):
    q, r = random_quaternions(rng, (5, 3)), random_quaternions(rng, (5, 3))
    v = rng.normal(size=(5, 3, 3))
    mq, mr = rot.quaternion_to_matrix(q), rot.quaternion_to_matrix(r)
    np.testing.assert_allclose(rot.quaternion_to_matrix(rot.qmul(q, r)), mq @ mr, atol=1e-12)
    np.testing.assert_allclose(rot.qrot(q, v), (mq @ v[..., None])[..., 0], atol=1e-12)
    np.testing.assert_allclose(rot.qrot(rot.qinv(q), rot.qrot(q, v)), v, atol=1e-12)
    np.testing.assert_allclose(mq @ np.swapaxes(mq, -1, -2), np.broadcast_to(np.eye(3), mq.shape), atol=1e-12)
    assert np.allclose(np.linalg.det(mq), 1)


def test_qrot_broadcasts_one_rotation_per_frame_over_joints(rng):
    q, v = random_quaternions(rng, (4,)), rng.normal(size=(4, 22, 3))
    expected = rot.qrot(np.repeat(q[:, None], 22, axis=1), v)
    np.testing.assert_array_equal(rot.qrot(q[:, None], v), expected)


def test_float32_stays_float32(rng):
    q = random_quaternions(rng, (6,)).astype(np.float32)
    v = rng.normal(size=(6, 3)).astype(np.float32)
    for out in (rot.qmul(q, q), rot.qinv(q), rot.qrot(q, v), rot.qbetween(v, v[::-1]), rot.quaternion_to_cont6d(q)):
        assert out.dtype == np.float32


def test_matrix_to_quaternion_inverts_quaternion_to_matrix(rng):
    q = random_quaternions(rng, (200,))
    q = np.concatenate([q, np.eye(4)])  # identity and the three 180-degree turns about the axes
    back = rot.matrix_to_quaternion(rot.quaternion_to_matrix(q))
    same_rotation = np.abs((back * q).sum(-1))  # q and -q are the same rotation
    np.testing.assert_allclose(same_rotation, 1, atol=1e-12)
    assert np.all(back[..., 0] >= 0)


@pytest.mark.parametrize("u, v", [
    ([1.0, 2.0, 3.0], [-2.0, 0.5, 1.0]),
    ([0.0, 0.0, 1.0], [0.0, 0.0, 3.0]),  # same direction: identity
    ([0.0, 0.0, 1.0], [0.0, 0.0, -2.0]),  # opposite: a half turn, not NaN
    ([1.0, 1.0, 0.0], [-1.0, -1.0, 0.0]),
])
def test_qbetween_turns_u_onto_v(u, v):
    u, v = np.array(u), np.array(v)
    q = rot.qbetween(u, v)
    assert np.isclose(np.linalg.norm(q), 1)
    np.testing.assert_allclose(rot.qrot(q, u) / np.linalg.norm(u), v / np.linalg.norm(v), atol=1e-12)


def test_axis_angle_quarter_turn_about_y_takes_z_to_x():
    q = rot.axis_angle_to_quaternion(np.array([0.0, 2.0, 0.0]), np.pi / 2)
    np.testing.assert_allclose(rot.qrot(q, np.array([0.0, 0.0, 1.0])), [1.0, 0.0, 0.0], atol=1e-15)


def test_cont6d_holds_the_first_two_columns_and_round_trips(rng):
    q = random_quaternions(rng, (10, 3))
    m = rot.quaternion_to_matrix(q)
    d6 = rot.quaternion_to_cont6d(q)
    np.testing.assert_allclose(d6[..., :3], m[..., :, 0], atol=1e-15)
    np.testing.assert_allclose(d6[..., 3:], m[..., :, 1], atol=1e-15)
    np.testing.assert_allclose(rot.cont6d_to_matrix(d6), m, atol=1e-12)
    # Gram-Schmidt makes any (non-degenerate) 6 numbers a rotation.
    noisy = rot.cont6d_to_matrix(d6 * 3 + rng.normal(scale=0.1, size=d6.shape))
    np.testing.assert_allclose(noisy @ np.swapaxes(noisy, -1, -2), np.broadcast_to(np.eye(3), noisy.shape),
                               atol=1e-12)


def test_qfix_makes_a_sign_flipped_track_continuous(rng):
    angles = np.linspace(0, 3, 50)
    track = rot.axis_angle_to_quaternion(np.array([0.3, 1.0, 0.2]), angles)  # (50, 4), smooth
    flipped = track * rng.choice([-1.0, 1.0], size=(50, 1))
    fixed = rot.qfix(flipped[:, None], axis=0)[:, 0]
    np.testing.assert_allclose(fixed, track * np.sign((flipped[0] * track[0]).sum()), atol=1e-15)
