"""Motion plausibility and retargeting metrics of docs metrics.md, in numpy (positions in metres, Y-up, 22 joints).

Shared by the retargeting tests and the evaluation; every function takes (T, 22, 3) joint positions.
"""
import numpy as np

from . import skeleton

SKATE_FEET = (skeleton.JOINT_INDEX["left_foot"], skeleton.JOINT_INDEX["right_foot"])  # joints 10 and 11
CONTACT_HEIGHT = 0.05  # metres
SKATE_SPEED = 0.5  # metres per second
SKATE_WINDOW = 5  # frames of the moving average


def foot_skate_ratio(joints, fps=skeleton.FPS):
    """Share of the T-1 transitions in which a foot in contact slides (GMD/CondMDI/DNO definition).

    A foot (joint 10 or 11) is in contact over a transition when it is below 5 cm at both ends; it skates when
    its horizontal speed is above 0.5 m/s both instantaneously and as a centred 5-frame moving average.
    """
    feet = np.asarray(joints)[:, SKATE_FEET]  # (T, 2, 3)
    if len(feet) < 2:
        return 0.0
    low = feet[..., 1] < CONTACT_HEIGHT
    contact = low[1:] & low[:-1]  # (T-1, 2)
    speed = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps  # (T-1, 2)
    skate = contact & (speed > SKATE_SPEED) & (moving_average(speed, SKATE_WINDOW) > SKATE_SPEED)
    return float(skate.any(axis=1).mean())


def jerk(joints, fps=skeleton.FPS):
    """(T-3,) jerk magnitude |p[t+3] - 3p[t+2] + 3p[t+1] - p[t]| * fps^3 at each t, mean over joints (m/s^3)."""
    p = np.asarray(joints)
    third_difference = p[3:] - 3 * p[2:-1] + 3 * p[1:-2] - p[:-3]
    return np.linalg.norm(third_difference, axis=-1).mean(axis=-1) * fps**3


def jitter(joints, fps=skeleton.FPS):
    """Mean jerk magnitude over joints and frames (m/s^3, DNO)."""
    return float(jerk(joints, fps).mean())


def root_speed(joints, fps=skeleton.FPS):
    """Mean horizontal speed of the root across the floor (m/s): how far a motion travels for its length."""
    return float(np.linalg.norm(np.diff(np.asarray(joints)[:, 0, [0, 2]], axis=0), axis=-1).mean() * fps)


def pose_speed(joints, fps=skeleton.FPS):
    """Mean speed of the joints relative to the root (m/s): how much a body moves its limbs, wherever it goes. A
    diffusion model that blurs its samples shows it here first: a jump prompt answered by someone standing."""
    joints = np.asarray(joints)
    return float(np.linalg.norm(np.diff(joints[:, 1:] - joints[:, :1], axis=0), axis=-1).mean() * fps)


def penetration(joints):
    """Mean depth below the floor (y = 0) of the foot joints (ankles and toes), 0 where above (metres)."""
    return float(np.maximum(-np.asarray(joints)[:, skeleton.CONTACT_JOINTS, 1], 0).mean())


def floating(joints, contacts):
    """Mean height of the lowest foot joint over the frames where any contact label (T, 4) is on (metres)."""
    on = np.asarray(contacts).astype(bool).any(axis=1)
    lowest = np.asarray(joints)[:, skeleton.CONTACT_JOINTS, 1].min(axis=1)
    return float(lowest[on].mean()) if on.any() else 0.0


def bone_length_std(joints):
    """(21,) std over frames of each bone's length (joint i to its parent, i = 1..21), metres."""
    p = np.asarray(joints)
    lengths = np.linalg.norm(p[:, 1:] - p[:, list(skeleton.PARENTS[1:])], axis=-1)
    return lengths.std(axis=0)


def inbetween_l2p(generated, real, keyed_frames):
    """Mean distance (metres) of all joints over the frames between the keys (LaFAN1's L2P, on 22 joints)."""
    free = np.setdiff1d(np.arange(len(real)), keyed_frames)
    return float(np.linalg.norm(np.asarray(generated)[free] - np.asarray(real)[free], axis=-1).mean())


def keyframe_error(generated, real, keyed_frames):
    """Mean joint distance (metres) at the keyed frames: ~0 for a method that holds its keys."""
    keyed = np.asarray(keyed_frames)
    return float(np.linalg.norm(np.asarray(generated)[keyed] - np.asarray(real)[keyed], axis=-1).mean())


def seam_ratio(joints, keyed_frames, fps=skeleton.FPS, reference=None):
    """Jerk over the frames around each key / a clip's jitter: a pop at a key shows as > 1.5.

    The jitter is the clip's own, or with `reference` (the real motion that was in-betweened) that clip's. The two
    differ when the in-between is smoother or rougher than the motion it replaces: a smooth in-between with
    ordinary jerk at its keys scores high against its own jitter and low against the real one.
    The jerk at t spans frames t..t+3, so the terms that see key k are t = k-3..k (the 3 frames on each side).
    """
    per_step = jerk(joints, fps)  # (T-3,)
    near_key = np.zeros(len(per_step), dtype=bool)
    for k in keyed_frames:
        near_key[max(k - 3, 0):k + 1] = True
    baseline = per_step.mean() if reference is None else jitter(reference, fps)
    return float(per_step[near_key].mean() / max(baseline, 1e-12))


def direction_error(a, b):
    """Angle in degrees between direction vectors a and b (..., 3); neither needs unit length."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def moving_average(x, window):
    """Centred moving average along axis 0; the ends average over the frames that exist."""
    kernel = np.ones(window)
    sums = np.apply_along_axis(np.convolve, 0, x, kernel, mode="same")
    counts = np.convolve(np.ones(len(x)), kernel, mode="same")
    return sums / counts.reshape((-1,) + (1,) * (x.ndim - 1))
