"""Keyframe constraints: global joint positions at chosen frames, as the keyframe-conditioned model sees them, and
the post-process that makes a generated motion pass exactly through every key.

numpy only: the add-on uses it to read an animator's keys, training uses it to sample random constraints.

What the model receives (CondMDI's keyframe input channels: values and a mask, per frame): the 263 HumanML3D
features that a key determines on its own, z-scored like the motion (the root height, every keyed joint's height
and, when the heading is known, its position relative to the root: a feature-to-feature copy the network learns
at once), plus the root path: the keyed root's x, z and heading in the first key's heading frame (origin under
its pelvis, facing +Z). Velocities, rotations and contacts need neighbouring frames, so they are never given: at
inference an isolated key has positions only. Between two keys that fix a channel, its linear interpolation fills
the frames (the mask stays True only at the keys), so the network learns how motion departs from straight-line
interpolation rather than having to carry isolated keys across the gap first. The generated clip comes out in
its own canonical frame (frame 0 at the origin facing +Z) and is mapped onto the keys afterwards
(`place_on_keys`).
"""
from dataclasses import dataclass

import numpy as np

from . import features, skeleton
from .errors import UserError

KEY_HEADINGS = ("instant", "smoothed")  # how a key's feature heading is estimated (`keyed_half_yaw`)
ROOT_PATH_DIM = 4  # keyed root x, z and cos, sin of its heading, in the first key's heading frame
KEY_DIM = skeleton.FEATURE_DIM + ROOT_PATH_DIM  # keyframe channels per frame


@dataclass(frozen=True)
class Keyframes:
    frames: np.ndarray  # (K,) int, strictly increasing frame indices inside the clip
    joints: np.ndarray  # (K, 22, 3) global positions, metres, Y-up
    joint_mask: np.ndarray  # (K, 22) bool: the joints constrained at each key (all True for full poses)

    @classmethod
    def full_poses(cls, frames, joints):
        frames = np.asarray(frames, dtype=np.int64)
        joints = np.asarray(joints, dtype=np.float64)
        return cls(frames, joints, np.ones(joints.shape[:2], dtype=bool))

    @classmethod
    def from_arrays(cls, frames, joints, joint_mask=None):
        """Keys as a file or a request holds them: (K,) whole-number frames, (K, 22, 3) joints and optionally a
        (K, 22) joint mask (else every joint). UserError when they are not numbers of those kinds."""
        try:
            frames = np.asarray(frames).reshape(-1)
            joints = np.asarray(joints, dtype=np.float64)
            mask = np.ones(joints.shape[:2], bool) if joint_mask is None else np.asarray(joint_mask, dtype=bool)
        except (TypeError, ValueError) as err:
            raise UserError(f"keys must be numbers: frames (K,), joints (K, 22, 3), joint_mask (K, 22): "
                            f"{err}") from None
        if frames.dtype.kind not in "iuf" or not np.all(np.isfinite(frames) & (frames == np.round(frames))):
            raise UserError(f"key frames must be whole frame numbers, got {frames.tolist()[:8]}")
        return cls(frames.astype(np.int64), joints, mask)

    def validate(self, num_frames):
        """Raise a UserError naming the problem when these keys cannot constrain a clip of `num_frames`."""
        if self.joints.ndim != 3 or self.joints.shape[1:] != (skeleton.NUM_JOINTS, 3):
            raise UserError(f"keyframe joints must have shape (K, {skeleton.NUM_JOINTS}, 3), got {self.joints.shape}")
        if len(self.frames) != len(self.joints) or self.joint_mask.shape != self.joints.shape[:2]:
            raise UserError("keyframes: frames, joints and joint mask disagree in length")
        if len(self.frames) == 0:
            raise UserError("no keyframes given")
        if np.any(np.diff(self.frames) <= 0):
            raise UserError(f"keyframe indices must be strictly increasing, got {self.frames.tolist()}")
        outside = self.frames[(self.frames < 0) | (self.frames >= num_frames)]
        if len(outside):
            raise UserError(f"keyframe(s) {outside.tolist()} lie outside the clip of {num_frames} frames "
                            f"(valid: 0..{num_frames - 1})")
        if not np.all(np.isfinite(self.joints[self.joint_mask])):
            raise UserError("keyframe joint positions contain NaN or infinity")
        empty = self.frames[~self.joint_mask.any(axis=1)]
        if len(empty):
            raise UserError(f"keyframe(s) {empty.tolist()} constrain no joint (their joint mask is all False)")


def mirrored(keys: Keyframes) -> Keyframes:
    """The keys of the left/right mirror image (`features.mirror_joints`; each joint's mask goes with it)."""
    return Keyframes(keys.frames, features.mirror_joints(keys.joints), keys.joint_mask[:, skeleton.MIRROR_JOINTS])


def heading(pose):
    """(..., 22, 3) -> (origin (..., 3) on the floor under the pelvis, yaw (...,) radians of the facing direction).

    Facing follows HumanML3D: across = (r_hip - l_hip) + (r_shoulder - l_shoulder), forward = up x across,
    yaw measured from +Z towards +X.
    """
    r_hip, l_hip, r_sdr, l_sdr = skeleton.FACE_JOINTS
    across = pose[..., r_hip, :] - pose[..., l_hip, :] + pose[..., r_sdr, :] - pose[..., l_sdr, :]
    origin = pose[..., 0, :] * np.array([1.0, 0.0, 1.0])
    return origin, _yaw_of(across)


def _yaw_of(across):
    """(..., 3) across vectors -> (...,) yaw of the forward direction up x across = (a_z, 0, -a_x)."""
    return np.arctan2(across[..., 2], -across[..., 0])


def _smoothed_like_features(facing, twist, frames):
    """(K,) body facings and twists at increasing `frames` -> (K,) the features' heading there: each unwrapped and
    interpolated over the frames between (held beyond, which is the filter's edge mode), their sum Gaussian-smoothed
    as unit vectors as HumanML3D smooths its forward."""
    span = np.arange(frames[0], frames[-1] + 1)
    track = np.interp(span, frames, np.unwrap(facing)) + np.interp(span, frames, np.unwrap(twist))
    direction = features.gaussian_filter1d(np.stack([np.sin(track), np.cos(track)], -1),
                                           features.HEADING_SMOOTHING_SIGMA, axis=0)[frames - frames[0]]
    return np.arctan2(direction[:, 0], direction[:, 1])


def yaw_matrix(yaw):
    """(...,) -> (..., 3, 3) rotation about +Y by `yaw` (takes +Z to the direction at that yaw)."""
    c, s = np.cos(yaw), np.sin(yaw)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1),
                     np.stack([-s, zero, c], -1)], -2)


def to_heading_frame(points, origin, yaw):
    """World points (..., 3) -> the frame at `origin` (..., 3) whose +Z is the direction `yaw` (...); origin and
    yaw broadcast against the points' leading axes (one frame for all, or one per pose)."""
    return np.einsum("...c,...cd->...d", points - origin, yaw_matrix(yaw))  # row vectors: p R == R^T p


def from_heading_frame(points, origin, yaw):
    return np.einsum("...c,...dc->...d", points, yaw_matrix(yaw)) + origin


def keyed_half_yaw(keys: Keyframes, key_heading="smoothed") -> np.ndarray:
    """(K,) HumanML3D root half-angle at each key (the rotation that turns the features' heading to +Z), or NaN
    where the key does not fix the heading (the hips and shoulders are not all keyed).

    The features' heading is not a pose's own facing (`features.heading`): it is the forward of the shoulder-minus-hip
    `features.feature_across`, which follows the chest's twist, Gaussian-smoothed over +-20 frames.
    - "smoothed" estimates it from the keys alone: the body's facing (hips plus shoulders, steady) and the twist of
      the features' across away from it are each interpolated between the keys that fix the heading, and their sum
      is smoothed as the features smooth it and read back at the keys. On the eval clips the keyed ric features
      then miss the true ones by 0.2 / 0.4 / 2.2 / 2.5 cm at 5 / 10 / 20 / 40-frame gaps.
    - "instant" is each key's own facing (3.2-3.7 cm at every gap): what models trained before it expect.
    """
    if key_heading not in KEY_HEADINGS:
        raise UserError(f"key heading {key_heading!r} is not one of {KEY_HEADINGS}")
    _, facing = heading(keys.joints)
    known = keys.joint_mask[:, list(skeleton.FACE_JOINTS)].all(axis=1)
    yaw = np.full(len(keys.frames), np.nan)
    if key_heading == "instant" or not known.any():
        yaw[known] = facing[known]
    else:
        twist = _yaw_of(features.feature_across(keys.joints)) - facing  # unwrapped along the keys before use
        frames = keys.frames[known]
        yaw[known] = _smoothed_like_features(facing[known], twist[known], frames)
        yaw[known & (keys.frames == 0)] = 0.0  # the features reset frame 0's heading (keys in the clip's frame)
    return -yaw / 2


def keyframe_features(keys: Keyframes, num_frames: int, key_heading="smoothed"):
    """Keys -> (values [F, 263] raw features, known [F, 263] bool): the features a key determines on its own.

    At an isolated key only positions are known: the root height, every keyed joint's height (ric keeps absolute
    y) and, when the root and hips/shoulders are keyed (so the heading is known; frame 0's heading is 0 by
    definition), the keyed joints' ric x/z. Velocities, rotations and contacts need neighbouring frames: left free.
    """
    keys.validate(num_frames)
    return _features_at_keys(keys, num_frames, keyed_half_yaw(keys, key_heading))


def _features_at_keys(keys: Keyframes, num_frames, half_yaw):
    """`keyframe_features` given each key's half yaw (`keyed_half_yaw`), which `encode` needs for the root path too."""
    values = np.zeros((num_frames, skeleton.FEATURE_DIM))
    known = np.zeros((num_frames, skeleton.FEATURE_DIM), dtype=bool)
    for k, frame in enumerate(keys.frames):
        pose, keyed = keys.joints[k], keys.joint_mask[k]
        ric = values[frame, skeleton.RIC].reshape(-1, 3)  # views: writes land in `values`/`known`
        ric_known = known[frame, skeleton.RIC].reshape(-1, 3)
        ric[:, 1], ric_known[:, 1] = pose[1:, 1], keyed[1:]
        if keyed[0]:
            values[frame, skeleton.ROOT_HEIGHT], known[frame, skeleton.ROOT_HEIGHT] = pose[0, 1], True
            root_half = 0.0 if frame == 0 else half_yaw[k]
            if not np.isnan(root_half):
                # ric is the pose in the root's heading frame: origin under the pelvis, root yaw = -2 * half angle.
                origin = pose[0] * np.array([1.0, 0.0, 1.0])
                ric[:, [0, 2]] = to_heading_frame(pose[1:], origin, -2 * root_half)[:, [0, 2]]
                ric_known[:, [0, 2]] = keyed[1:, None]
    return values, known


def encode(keys: Keyframes, num_frames, mean, std, key_heading="smoothed"):
    """Keyframes -> (values (F, KEY_DIM) float32, mask (F, KEY_DIM) bool): the model's keyframe input channels.

    `mask` is True exactly where a key fixes a channel; `values` carries the key there and, between two keys that
    fix a channel, its linear interpolation (`between_keys`); elsewhere zero.
    `mean`/`std` are the model's feature statistics (the feature part is z-scored like the motion itself);
    `key_heading` is the model's (`MDMConfig.keyframe_heading`, see `keyed_half_yaw`).
    """
    keys.validate(num_frames)
    origin, yaw = heading(keys.joints[0])
    local = Keyframes(keys.frames, to_heading_frame(keys.joints, origin, yaw), keys.joint_mask)
    half_yaw = keyed_half_yaw(local, key_heading)
    feats, known = _features_at_keys(local, num_frames, half_yaw)
    feats = np.where(known, (feats - mean) / std, 0.0)
    path = np.zeros((num_frames, ROOT_PATH_DIM))
    path_known = np.zeros((num_frames, ROOT_PATH_DIM), dtype=bool)
    for k, frame in enumerate(local.frames):
        if local.joint_mask[k, 0]:
            path[frame, :2], path_known[frame, :2] = local.joints[k, 0, [0, 2]], True
            if not np.isnan(half_yaw[k]):
                path[frame, 2:] = np.cos(-2 * half_yaw[k]), np.sin(-2 * half_yaw[k])
                path_known[frame, 2:] = True
    values, known = np.concatenate([feats, path], axis=1), np.concatenate([known, path_known], axis=1)
    return between_keys(values, known).astype(np.float32), known


def between_keys(values, known):
    """(F, C) channel values known at some frames -> each channel linearly interpolated between consecutive frames
    that know it (zero before its first and after its last known frame).

    The network reads the keys as a dense guess plus the sparse mask of where it is exact: it learns the motion's
    departure from straight-line interpolation instead of first having to propagate isolated keys over a gap.
    """
    dense = np.zeros_like(values)
    frames = np.arange(len(values))
    patterns, column_pattern = np.unique(known.T, axis=0, return_inverse=True)  # channels sharing their key frames
    for p, pattern in enumerate(patterns):
        keyed = np.flatnonzero(pattern)
        if len(keyed) == 0:
            continue
        span = frames[keyed[0]: keyed[-1] + 1]
        right = np.clip(np.searchsorted(keyed, span, side="right"), 1, len(keyed) - 1)  # key after (or at) each frame
        lo, hi = keyed[right - 1], keyed[right]
        weight = ((span - lo) / np.maximum(hi - lo, 1))[:, None]  # 0 at the key before, 1 at the key after
        columns = np.flatnonzero(column_pattern.reshape(-1) == p)
        dense[span[:, None], columns] = (1 - weight) * values[lo][:, columns] + weight * values[hi][:, columns]
    return dense


def fit_yaw_translation(source, target, weights):
    """Weighted least-squares yaw + translation taking source points (..., N, 3) onto target points (N, 3), XZ only
    (Y kept): (..., 3, 3) rotations and (..., 3) offsets, one per leading index of `source`."""
    w = weights / weights.sum()
    src_c, tgt_c = (w[:, None] * source).sum(-2), (w[:, None] * target).sum(0)  # (..., 3), (3,)
    s, t = source - src_c[..., None, :], target - tgt_c
    # Rotation about +Y by yaw maps (x, z) -> (x cos + z sin, -x sin + z cos); maximise the weighted dot.
    num = (w * (s[..., 2] * t[:, 0] - s[..., 0] * t[:, 2])).sum(-1)
    den = (w * (s[..., 0] * t[:, 0] + s[..., 2] * t[:, 2])).sum(-1)
    rot = yaw_matrix(np.arctan2(num, den))
    offset = tgt_c - np.einsum("...ij,...j->...i", rot, src_c)
    offset[..., 1] = 0.0  # heights are absolute (floor at y=0) in both frames
    return rot, offset


def align_to_keys(joints, keys: Keyframes):
    """The clip moved rigidly (yaw + XZ translation, least squares) so its keyed joints best match the keys."""
    joints = np.asarray(joints, dtype=np.float64)
    weights = keys.joint_mask.astype(np.float64).reshape(-1)
    rot, offset = fit_yaw_translation(joints[keys.frames].reshape(-1, 3), keys.joints.reshape(-1, 3),
                                      np.maximum(weights, 1e-9))
    return joints @ rot.T + offset


def keyframe_error(joints, keys: Keyframes) -> float:
    """Mean distance (m) of the keyed joints to their keys."""
    distance = np.linalg.norm(np.asarray(joints)[keys.frames] - keys.joints, axis=-1)  # (K, 22)
    return float(distance[keys.joint_mask].mean())


def spline_through(knots, values, num_frames):
    """(K, ...) values at increasing frames `knots` -> (num_frames, ...): the clamped cubic spline through them (C2
    between the knots, zero slope at the first and last), constant before the first knot and after the last.

    Corrections spread with it have no velocity kink at a key, where a piecewise-linear spread has one: a kink is
    an acceleration spike on the keyed frame, the single-frame pop an animator sees and the seam ratio measures.
    The zero end slopes join the constant ends smoothly too.
    """
    knots, values = np.asarray(knots, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if len(knots) == 1:
        return np.repeat(values, num_frames, axis=0)
    h = np.diff(knots)  # (K-1,)
    slope = np.diff(values, axis=0) / h.reshape((-1,) + (1,) * (values.ndim - 1))
    # Second derivatives M at the knots: continuity of the first derivative at inner knots, f' = 0 at both ends.
    system = np.zeros((len(knots), len(knots)))
    system[np.arange(len(knots)), np.arange(len(knots))] = 2 * np.concatenate([h[:1], h[:-1] + h[1:], h[-1:]])
    system[np.arange(len(h)), np.arange(1, len(knots))] = h
    system[np.arange(1, len(knots)), np.arange(len(h))] = h
    rhs = 6 * (np.concatenate([slope, np.zeros_like(slope[:1])]) - np.concatenate([np.zeros_like(slope[:1]), slope]))
    curvature = np.linalg.solve(system, rhs.reshape(len(knots), -1)).reshape(values.shape)
    t = np.clip(np.arange(num_frames), knots[0], knots[-1])
    i = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, len(h) - 1)  # the interval of each frame
    column = (slice(None),) + (None,) * (values.ndim - 1)
    b = ((t - knots[i]) / h[i])[column]  # 0 at the knot before, 1 at the knot after
    a, width = 1 - b, h[i][column]
    return (a * values[i] + b * values[i + 1]
            + ((a ** 3 - a) * curvature[i] + (b ** 3 - b) * curvature[i + 1]) * width ** 2 / 6)


def bridge_keyed_frames(joints, keyed_frames):
    """(T, 22, 3) joints with each keyed frame that has two frames on either side replaced by the cubic through
    those four, (-p[f-2] + 4 p[f-1] + 4 p[f+1] - p[f+2]) / 6: where the motion itself is smooth this changes
    little (the error is of fourth order), and a single-frame spike vanishes."""
    joints = np.array(joints, dtype=np.float64)
    inner = np.asarray([f for f in keyed_frames if 2 <= f <= len(joints) - 3], dtype=int)
    if len(inner):
        joints[inner] = (-joints[inner - 2] + 4 * joints[inner - 1] + 4 * joints[inner + 1] - joints[inner + 2]) / 6
    return joints


def place_on_keys(joints, keys: Keyframes, hold_root=True, blend_frames=8):
    """Map a generated clip (its own canonical frame) onto the keys, so every keyed joint is met exactly.

    0. The generated pose ON each keyed frame is re-estimated from its two neighbours on either side
       (`bridge_keyed_frames`): a keyframe-conditioned model copies the key onto that frame while the frames
       beside it follow its own motion, a one-frame pop that the steps below would otherwise keep.
    1. A rigid yaw + XZ translation aligns the generated poses at the key frames with the keys.
    2. (hold_root) The root offset measured at each key is spread between keys by `spline_through` and added to
       every joint of the frame, so the root passes exactly through every keyed root. With a free root the
       model's own path is kept, and the keyed poses are met relative to it.
    3. Each joint's remaining offset at its keys is spread the same way between its first and last key
       (displacement mapping), fading out over `blend_frames` beyond them, so keyed joints are met with no pop.
    """
    placed = align_to_keys(bridge_keyed_frames(joints, keys.frames), keys)
    frames = np.arange(len(placed))
    rooted = keys.joint_mask[:, 0]
    if hold_root and rooted.any():
        root_delta = keys.joints[rooted, 0] - placed[keys.frames[rooted], 0]  # (K', 3)
        placed = placed + spline_through(keys.frames[rooted], root_delta, len(placed))[:, None]
    target = keys.joints if hold_root else keys.joints - keys.joints[:, :1] + placed[keys.frames, :1]
    residual = target - placed[keys.frames]  # (K, 22, 3)
    for joint in np.flatnonzero(keys.joint_mask.any(axis=0)):
        keyed = keys.joint_mask[:, joint]
        first, last = keys.frames[keyed][[0, -1]]
        outside = np.maximum(first - frames, frames - last)  # frames beyond the joint's keyed span, else <= 0
        fade = 0.5 * (1 + np.cos(np.pi * np.clip(outside / blend_frames, 0, 1)))
        placed[:, joint] += fade[:, None] * spline_through(keys.frames[keyed], residual[keyed, joint], len(placed))
    return placed


# Constraint patterns seen in training (CondMDI-style random masks), with their probabilities. "none" keeps the
# model a plain text-to-motion model; the others make in-betweening and continuation first-class conditions.
TRAINING_PATTERNS = {
    "none": 0.30,
    "regular": 0.30,  # keys every 5-40 frames, first and last frame included: in-betweening
    "sparse": 0.10,  # a few random frames
    "prefix": 0.10,  # continuation: the first frames known
    "suffix": 0.05,
    "prefix_suffix": 0.05,
    "root_only": 0.05,  # a root path at a few keys (trajectory control)
    "joint_subset": 0.05,  # a few joints at a few keys (e.g. hands and feet)
}
KEY_GAPS = (5, 10, 20, 40)


def sample_training_pattern(num_frames, rng: np.random.Generator):
    """A random (frames (K,), joint_mask (K, 22)) constraint pattern for one training window, or None."""
    names = list(TRAINING_PATTERNS)
    pattern = names[rng.choice(len(names), p=np.array(list(TRAINING_PATTERNS.values())))]
    last = num_frames - 1
    if pattern == "none" or num_frames < 2:
        return None
    if pattern == "regular":
        frames = np.unique(np.append(np.arange(0, last, rng.choice(KEY_GAPS)), last))
    elif pattern in ("sparse", "root_only", "joint_subset"):
        count = rng.integers(1, 6)
        frames = np.unique(np.append(0, rng.choice(num_frames, size=min(count, num_frames), replace=False)))
    else:
        n = int(rng.integers(1, max(2, num_frames // 2)))
        prefix, suffix = np.arange(n), np.arange(num_frames - n, num_frames)
        frames = {"prefix": prefix, "suffix": suffix, "prefix_suffix": np.union1d(prefix, suffix)}[pattern]
    joint_mask = np.ones((len(frames), skeleton.NUM_JOINTS), dtype=bool)
    if pattern == "root_only":
        joint_mask[:, 1:] = False
    elif pattern == "joint_subset":
        joint_mask = rng.random((len(frames), skeleton.NUM_JOINTS)) < 0.3
        joint_mask[:, 0] |= ~joint_mask.any(axis=1)  # every key constrains something
    return frames, joint_mask
