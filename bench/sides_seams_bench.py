"""Two things a prompt's motion must get right beyond its category, on the embedded model: the side it names, and
no jolt where a clip longer than one window is chained.

    .venv/bin/python bench/sides_seams_bench.py

Sides: "turns to the left/right" (the hips' heading change, + = a left turn seen from above) and "waves with the
left/right hand" (which wrist rises higher), 4 seeds x 3 samples each. Seams: walks, dances and runs of 300 frames
(3 windows), the largest mean-joint acceleration within 2 frames of each seam against the 99th percentile away
from the seams.
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend import skeleton  # noqa: E402
from backend.pipeline import CHAIN_OVERLAP, MotionRequest, Pipeline  # noqa: E402

SEEDS = range(4)
J = skeleton.JOINT_INDEX


def left_turn_degrees(joints):
    """(S, T, 22, 3) -> (S,) the hip line's heading change, degrees, + = counter-clockwise seen from above."""
    across = joints[:, :, J["left_hip"]] - joints[:, :, J["right_hip"]]
    heading = np.unwrap(np.arctan2(across[..., 2], across[..., 0]), axis=1)
    return -np.degrees(heading[:, -1] - heading[:, 0])


def left_wrist_higher(joints):
    """(S, T, 22, 3) -> (S,) whether the left wrist rises higher above its shoulder than the right one does."""
    rise = {side: (joints[:, :, J[f"{side}_wrist"], 1] - joints[:, :, J[f"{side}_shoulder"], 1]).max(axis=1)
            for side in skeleton.SIDES}
    return rise["left"] > rise["right"]


def sides(pipeline):
    for side in skeleton.SIDES:
        sample = lambda text: np.concatenate([pipeline.generate(MotionRequest(  # noqa: E731
            text=text, frames=100, samples=3, seed=seed)).joints for seed in SEEDS])
        turns = left_turn_degrees(sample(f"a person turns to the {side}."))
        waves = left_wrist_higher(sample(f"a person waves with the {side} hand."))
        print(f"{side:5s}: turned to the {side} in {np.sum((turns > 0) == (side == 'left'))}/{len(turns)} "
              f"(degrees left: {np.round(turns).astype(int).tolist()}); {side} wrist higher in "
              f"{np.sum(waves == (side == 'left'))}/{len(waves)}")


def seams(pipeline):
    window = pipeline.loaded.frames["max_frames"]
    at = [window + k * (window - CHAIN_OVERLAP) for k in range(2)]  # the first frame of windows 2 and 3
    for text in ("a person walks forward.", "a person dances.", "a person runs."):
        joints = pipeline.generate_long(MotionRequest(text=text, frames=300, samples=2, seed=0)).joints
        for s, clip in enumerate(joints.astype(np.float64)):
            accel = (np.linalg.norm(clip[2:] - 2 * clip[1:-1] + clip[:-2], axis=-1) * 400).mean(-1)  # m/s^2
            near = np.concatenate([np.arange(b - 3, b + 1) for b in at])  # rows i: frame i + 1
            away = np.percentile(np.delete(accel, near), 99)
            print(f"{text:24s} sample {s}: at the seams {' / '.join(f'{accel[b - 3:b + 1].max():5.1f}' for b in at)}"
                  f" m/s^2, 99th percentile elsewhere {away:5.1f}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    embedded = Pipeline(device="cpu")
    sides(embedded)
    seams(embedded)
