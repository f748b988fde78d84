"""Planted feet: the root's path across the floor follows the feet the model marks as planted.

A generated motion predicts its root path and its pose together, and a small model gets their ratio wrong: the
root travels while a foot it labels as in contact slides along with it (foot skate; the embedded model's runs
glide at twice the speed their steps carry). Here the root's horizontal path is moved, frame by frame, so that
every planted foot joint stays where it was put. The pose relative to the root is untouched: no foot leaves the
floor, no bone stretches, and the motion travels as far as its own steps take it (docs/benchmarks.md measures
both the skate and the travel this costs).
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


def plant_generated(joints, features, start=0) -> np.ndarray:
    """(S, T, 22, 3) joints of S generated samples and their (S, T, 263) features -> the samples with planted feet,
    by each sample's own contact labels."""
    return np.stack([plant_feet(j, planted(f), start) for j, f in zip(joints, features)])
