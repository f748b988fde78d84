"""Cyclic motion recorded in short takes (CMU's runs last about a second) extended to a full training window by
repeating its best-matching cycle (`prepare-data --loop-runs`). numpy only.

A take holds one or two strides. `best_cycle` finds the two frames, a stride or more apart, whose poses (in the
root's heading frame) and joint velocities agree best; `repeat_cycle` lays the frames between them end to end,
each lap moved rigidly (yaw about +Y and a floor translation) to start where the previous one stopped, with the
small pose mismatch at the seam spread over each lap. The result is the recorded motion, only longer: a model
trained on 1-second runs alone had never seen a run fill the 6 seconds it is asked to generate, and walked
instead.
"""
import numpy as np

from .keyframes import from_heading_frame, heading, to_heading_frame

MIN_PERIOD = 10  # frames (0.5 s at 20 fps): shorter "cycles" are a single step, which left and right tell apart
MAX_SEAM_ERROR = 0.06  # m: mean joint distance (pose and one frame's motion) at the seam; worse takes are not looped


def local_poses(joints):
    """(T, 22, 3) -> the same poses in each frame's own heading frame (origin on the floor under the pelvis)."""
    origin, yaw = heading(joints)  # (T, 3), (T,)
    return to_heading_frame(joints, origin[:, None], yaw[:, None])  # (T, 22, 3)


def best_cycle(joints, min_period=MIN_PERIOD):
    """(start, end, seam error in m) of the best cycle joints[start:end], at least `min_period` frames long and with
    end < T - 1 (frames `end` and `end + 1` exist to compare pose and motion with `start`'s), or None when the take
    has fewer than `min_period` + 2 frames (no such pair of frames)."""
    local = local_poses(joints)
    step = np.diff(local, axis=0)  # (T-1, 22, 3): each frame's motion, so a seam also matches in velocity
    best = None
    for start in range(len(joints) - 1):
        for end in range(start + min_period, len(joints) - 1):
            error = (np.linalg.norm(local[end] - local[start], axis=-1).mean()
                     + np.linalg.norm(step[end] - step[start], axis=-1).mean())
            if best is None or error < best[2]:
                best = (start, end, float(error))
    return best


def repeat_cycle(joints, start, end, frames):
    """(frames, 22, 3): joints[start:end] repeated, each lap placed where the previous lap's frame `end` would
    have been, and the seam's pose mismatch ramped in over the lap so consecutive laps join without a jump."""
    period = end - start
    local = local_poses(joints)
    seam = local[end] - local[start]  # (22, 3): the pose change over one lap, removed gradually
    ramp = (np.arange(period) / period)[:, None, None]
    lap_local = local[start:end] - ramp * seam  # (P, 22, 3)
    origin, yaw = heading(joints)
    lap_origin = to_heading_frame(origin[start:end], origin[start], yaw[start])  # (P, 3) relative to the lap start
    lap_yaw = yaw[start:end] - yaw[start]
    step_origin = to_heading_frame(origin[end], origin[start], yaw[start])  # where the next lap starts
    step_yaw = yaw[end] - yaw[start]
    laps, at, facing = [], origin[start], yaw[start]
    for _ in range(-(-frames // period)):
        world_origin = from_heading_frame(lap_origin, at, facing)  # (P, 3)
        laps.append(from_heading_frame(lap_local, world_origin[:, None], (facing + lap_yaw)[:, None]))
        at, facing = from_heading_frame(step_origin, at, facing), facing + step_yaw
    return np.concatenate(laps)[:frames]
