"""Planted feet: feet the model marks as planted keep still.

A generated motion predicts its root path and its pose together, and a small model gets their ratio wrong: the
root travels while a foot it labels as in contact slides along with it (foot skate; the embedded model's runs
glide at twice the speed their steps carry). Two steps take it out. Where the root is free (a generated clip, the
frames after the last key) its horizontal path is moved, frame by frame, so that the planted foot joints stay
where they were put (`plant_feet`): the pose relative to the root is untouched, and the motion travels as far as
its own steps take it. Then, everywhere (between keys the root is fixed by the keys), each planted foot is held in
place and its knee re-solved (`lock_feet`), which takes out what the root's path could not: a glide of one foot
while the other moves. docs/benchmarks.md measures the skate and what each costs.
"""
import numpy as np

from . import skeleton
from .features import gaussian_filter1d

# Metres per frame (0.2 m/s at 20 fps) of a planted foot's step that are left alone: a real planted foot rolls from
# heel to toe by about this much, and correcting it too adds up to a drift (on the real eval clips' 6-s windows the
# root then strays 23 cm at most, on average; 7 cm with the roll left alone). Steps above it are what glides.
ROLL = 0.01
# Frames (Gaussian sigma) over which each frame's correction is spread, so the root does not jerk where a contact
# begins or ends.
SMOOTHING = 1.0
# Frames over which a held foot's move fades out past the ends of its planted span, and fades in away from a key
# (a keyed frame itself never moves).
LOCK_BLEND = 3
LEGS = tuple(tuple(skeleton.JOINT_INDEX[f"{side}_{part}"] for part in ("hip", "knee", "ankle", "foot"))
             for side in skeleton.SIDES)


def planted(features) -> np.ndarray:
    """(T, 263) features -> (T-1, 4) bool: the model's own contact labels (left ankle, left toe, right ankle, right
    toe) for each transition t -> t+1."""
    return np.asarray(features)[:-1, skeleton.CONTACT] > 0.5


def plant_feet(joints, contacts, start=0, roll=ROLL, sigma=SMOOTHING):
    """(T, 22, 3) joints, (T-1, 4) contacts -> (T, 22, 3): the whole body moved across the floor (X and Z) so that
    the planted foot joints keep still from transition `start` on; frames up to `start` are left exactly as they
    are (in-betweening passes the last key as `start`, so every key is kept).

    Each transition's correction is minus the mean horizontal step of its planted joints (with both feet down it
    splits the difference) beyond `roll`, smoothed over `sigma` frames, and accumulated into the root's path.
    """
    joints = np.array(joints, dtype=np.float64)
    steps = np.diff(joints[:, skeleton.CONTACT_JOINTS][..., [0, 2]], axis=0)  # (T-1, 4, 2)
    weight = np.asarray(contacts, dtype=np.float64)  # (T-1, 4)
    slide = (weight[..., None] * steps).sum(1) / np.maximum(weight.sum(1), 1.0)[:, None]  # (T-1, 2)
    length = np.linalg.norm(slide, axis=-1, keepdims=True)
    correction = -slide * np.maximum(length - roll, 0.0) / np.maximum(length, 1e-12)  # the part beyond the roll
    correction[:start] = 0.0
    correction = gaussian_filter1d(correction, sigma, axis=0)
    correction[:start] = 0.0  # the smoothing must not reach back past `start`
    joints[1:, :, [0, 2]] += np.cumsum(correction, axis=0)[:, None, :]
    return joints


def root_path_start(keyed_frames, num_frames):
    """The frame from which *Plant Feet* moves the root's path: the last key (frame 0 without keys), or None when
    the last frame is keyed, so that the path stays as it is."""
    start = int(keyed_frames[-1]) if len(keyed_frames) else 0
    return start if start < num_frames - 1 else None


def keep_feet_planted(joints, features, keyed_frames=()) -> np.ndarray:
    """What *Plant Feet* returns for (S, T, 22, 3) samples and their (S, T, 263) features, by each sample's own
    contact labels: the root's path follows the planted feet after the last key (the whole clip without keys;
    `plant_feet`), then every planted foot is held (`lock_feet`)."""
    start = root_path_start(keyed_frames, joints.shape[1])
    kept = []
    for sample, sample_features in zip(joints, features):
        contacts = planted(sample_features)
        if start is not None:
            sample = plant_feet(sample, contacts, start)
        kept.append(lock_feet(sample, contacts, keyed_frames))
    return np.stack(kept)


def lock_feet(joints, contacts, keyed_frames=(), blend=LOCK_BLEND) -> np.ndarray:
    """(T, 22, 3) joints, (T-1, 4) contacts, the keyed frames (none for a generated clip) -> joints whose planted
    feet keep still.

    A foot is planted at a frame when its ankle or toe is labelled in contact on a transition into or out of it.
    Through each planted span the foot (ankle and toe together, heights untouched) is held across the floor at
    the foot of the keys inside the span, moving straight from one to the next, or without a key at its mean
    place. The move fades out over `blend` frames past the span and in over `blend` frames away from every key,
    so a keyed frame never moves and nothing pops. The knee is re-solved so that thigh and shin keep their
    lengths, in the plane of the leg's own bend (`two_bone_ik`), and a foot is held only as far as its leg reaches;
    the hips and everything above stay as they are.
    """
    joints = np.array(joints, dtype=np.float64)
    keyed_frames = np.asarray(keyed_frames, dtype=np.int64)
    frames = np.arange(len(joints))
    from_key = np.abs(frames[:, None] - keyed_frames[None]).min(axis=1, initial=len(joints))
    fade_in = np.minimum(1.0, from_key / (blend + 1))  # 0 at a key
    keyed = from_key == 0
    for hip, knee, ankle, toe in LEGS:
        columns = [skeleton.CONTACT_JOINTS.index(joint) for joint in (ankle, toe)]
        in_contact = np.asarray(contacts)[:, columns].any(axis=1)  # (T-1,) transitions
        down = np.zeros(len(joints), dtype=bool)
        down[:-1] |= in_contact
        down[1:] |= in_contact
        foot = joints[:, [ankle, toe]][..., [0, 2]].mean(axis=1)  # (T, 2) across the floor
        move = _held_foot_moves(foot, down, keyed, blend) * fade_in[:, None]
        changed = np.flatnonzero(np.abs(move).sum(axis=1) > 0)
        shift = np.insert(move[changed], 1, 0.0, axis=1)  # (n, 3), no height change
        shift *= within_reach(joints[changed, hip], joints[changed, knee], joints[changed, ankle], shift)[:, None]
        hips, knees, ankles = joints[changed, hip], joints[changed, knee], joints[changed, ankle]
        joints[changed, knee] = two_bone_ik(hips, ankles + shift, knees - hips,  # bending the way it did
                                            np.linalg.norm(knees - hips, axis=-1, keepdims=True),
                                            np.linalg.norm(ankles - knees, axis=-1, keepdims=True))
        joints[changed, ankle] += shift
        joints[changed, toe] += shift
    return joints


def _held_foot_moves(foot, down, keyed, blend):
    """(T, 2) horizontal moves that hold `foot` (T, 2) still through each span of `down` frames (see `lock_feet`),
    fading out over `blend` frames past each span."""
    move, weight = np.zeros_like(foot), np.zeros(len(foot))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], down.astype(int), [0]])))
    for a, b in zip(edges[::2], edges[1::2] - 1):  # inclusive spans
        if b == a:
            continue
        span = np.arange(a, b + 1)
        keys = span[keyed[span]]
        held = (np.stack([np.interp(span, keys, foot[keys, axis]) for axis in range(2)], axis=-1) if len(keys)
                else foot[span].mean(axis=0))
        move[span], weight[span] = held - foot[span], 1.0
        for step in range(1, blend + 1):
            fade = 1 - step / (blend + 1)
            for frame, edge in ((a - step, a), (b + step, b)):
                if 0 <= frame < len(foot) and fade > weight[frame]:
                    move[frame], weight[frame] = move[edge], fade
    return move * weight[:, None]


def within_reach(hip, knee, ankle, shift):
    """(n,) the share of each ankle's `shift` (n, 3) the leg can follow with thigh and shin at their lengths: the
    largest in [0, 1] that keeps the ankle within thigh + shin of the hip (0 for a leg already stretched)."""
    reach = np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1)
    start = ankle - hip
    a, b, c = (shift * shift).sum(-1), 2 * (start * shift).sum(-1), (start * start).sum(-1) - reach**2
    root = (-b + np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / np.maximum(2 * a, 1e-12)  # |start + k shift| = reach
    return np.where(c >= 0, 0.0, np.clip(root, 0.0, 1.0))


def two_bone_ik(hip, ankle, pole, thigh, shin):
    """Knee positions (..., 3) that put the ankle on `ankle` with a thigh and shin of the given lengths (broadcast
    against (..., 1)), bending towards `pole` (only its part across hip -> ankle counts). An ankle out of reach
    leaves the knee on the line towards it; `within_reach` keeps a held foot inside."""
    reach = ankle - hip
    distance = np.linalg.norm(reach, axis=-1, keepdims=True)
    along = reach / distance
    bend = pole - (pole * along).sum(-1, keepdims=True) * along
    bend /= np.maximum(np.linalg.norm(bend, axis=-1, keepdims=True), 1e-9)  # a straight pole: no bend
    to_knee = (thigh**2 + distance**2 - shin**2) / (2 * distance)  # law of cosines: knee's projection on hip-ankle
    return hip + to_knee * along + np.sqrt(np.maximum(thigh**2 - to_knee**2, 0.0)) * bend
