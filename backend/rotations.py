"""Rotations in numpy: unit quaternions (w, x, y, z), 3x3 matrices and 6D, vectorised over any leading dims.

Conventions are HumanML3D's: `qmul(q, r)` applies r first, then q; `qrot(q, v)` rotates v by q; 6D is the first two
COLUMNS of the rotation matrix. Arithmetic follows the official torch code term by term, and the input dtype is
kept (float32 in, float32 out), so float32 results can match the official ones bit for bit.
"""
import numpy as np

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def unit(v):
    """Each vector (..., n) (a direction or a quaternion) scaled to length 1."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def qinv(q):
    """Inverse of a unit quaternion (its conjugate)."""
    return q * np.array([1, -1, -1, -1], dtype=np.asarray(q).dtype)


def qmul(q, r):
    """Hamilton product q*r (rotation r, then q); broadcasts."""
    q0, q1, q2, q3 = np.moveaxis(np.asarray(q), -1, 0)
    r0, r1, r2, r3 = np.moveaxis(np.asarray(r), -1, 0)
    # Same terms, same summation order as the official torch qmul.
    w = r0 * q0 - r1 * q1 - r2 * q2 - r3 * q3
    x = r0 * q1 + r1 * q0 - r2 * q3 + r3 * q2
    y = r0 * q2 + r1 * q3 + r2 * q0 - r3 * q1
    z = r0 * q3 - r1 * q2 + r2 * q1 + r3 * q0
    return np.stack([w, x, y, z], axis=-1)


def qrot(q, v):
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4); broadcasts."""
    q, v = np.asarray(q), np.asarray(v)
    w, axis = q[..., :1], q[..., 1:]
    uv = np.cross(axis, v)
    uuv = np.cross(axis, uv)
    return v + 2 * (w * uv + uuv)


def qbetween(u, v):
    """Shortest-arc unit quaternion turning direction u onto direction v (neither needs unit length).

    For opposite directions, where the shortest arc is not unique, it turns by 180 degrees about an axis
    perpendicular to u (the official code returns NaN there).
    """
    u, v = np.broadcast_arrays(np.asarray(u), np.asarray(v))
    axis = np.cross(u, v)
    w = np.sqrt((u**2).sum(-1, keepdims=True) * (v**2).sum(-1, keepdims=True)) + (u * v).sum(-1, keepdims=True)
    q = np.concatenate([w, axis], axis=-1)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    opposite = norm[..., 0] <= 1e-6 * np.sqrt((u**2).sum(-1) * (v**2).sum(-1))
    if np.any(opposite):
        q = q.copy()
        q[opposite] = np.concatenate([np.zeros_like(w[opposite]), _perpendicular(u[opposite])], axis=-1)
        norm = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / norm


def _perpendicular(u):
    """Some vector perpendicular to each u (..., 3): u x e, with e the axis least aligned with u."""
    least_aligned = np.eye(3, dtype=u.dtype)[np.argmin(np.abs(u), axis=-1)]
    return np.cross(u, least_aligned)


def axis_angle_to_quaternion(axis, angle):
    """Rotation by `angle` radians about `axis` (..., 3, any length)."""
    axis = np.asarray(axis, dtype=np.result_type(axis, angle, np.float32))
    half = 0.5 * np.asarray(angle, dtype=axis.dtype)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * unit(axis)], axis=-1)


def quaternion_to_matrix(q):
    """(..., 4) -> (..., 3, 3) rotation matrices (q need not be unit)."""
    q = np.asarray(q)
    r, i, j, k = np.moveaxis(q, -1, 0)
    two_s = 2.0 / (q * q).sum(-1)
    m = np.stack([
        1 - two_s * (j * j + k * k), two_s * (i * j - k * r), two_s * (i * k + j * r),
        two_s * (i * j + k * r), 1 - two_s * (i * i + k * k), two_s * (j * k - i * r),
        two_s * (i * k - j * r), two_s * (j * k + i * r), 1 - two_s * (i * i + j * j),
    ], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quaternion(m):
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions with w >= 0.

    Of the four algebraically equal formulas, each entry uses the one with the largest divisor (well conditioned
    for every rotation, 180-degree turns included).
    """
    m = np.asarray(m)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = np.moveaxis(m.reshape(m.shape[:-2] + (9,)), -1, 0)
    four_sq = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    root = np.sqrt(np.maximum(four_sq, 0))  # 2|w|, 2|x|, 2|y|, 2|z|
    candidates = np.stack([  # row c: (w, x, y, z) * 2 * root[c]
        np.stack([four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01], -1),
        np.stack([m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20], -1),
        np.stack([m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21], -1),
        np.stack([m10 - m01, m20 + m02, m21 + m12, four_sq[..., 3]], -1),
    ], -2)
    best = np.argmax(root, axis=-1)[..., None, None]
    q = np.take_along_axis(candidates, best, axis=-2)[..., 0, :]
    q = q / np.take_along_axis(2 * root, best[..., 0], axis=-1)
    return unit(np.where(q[..., :1] < 0, -q, q))


def quaternion_to_cont6d(q):
    """(..., 4) -> (..., 6): the first two columns of the rotation matrix, HumanML3D's `quaternion_to_cont6d`."""
    m = quaternion_to_matrix(q)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def cont6d_to_matrix(d6):
    """(..., 6) -> (..., 3, 3): Gram-Schmidt on the two stored columns (HumanML3D's `cont6d_to_matrix`)."""
    d6 = np.asarray(d6)
    x = d6[..., 0:3] / np.linalg.norm(d6[..., 0:3], axis=-1, keepdims=True)
    z = np.cross(x, d6[..., 3:6])
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def qfix(q, axis=0):
    """Flip signs along `axis` (time) so consecutive quaternions have a non-negative dot product.

    q and -q are the same rotation; interpolating keyframes (Blender, BVH resampling) needs the continuous choice.
    """
    q = np.moveaxis(np.asarray(q), axis, 0)
    flips = np.cumsum((q[1:] * q[:-1]).sum(-1) < 0, axis=0) % 2 == 1
    sign = np.concatenate([np.ones((1,) + q.shape[1:-1], dtype=bool), ~flips])
    return np.moveaxis(np.where(sign[..., None], q, -q), 0, axis)
