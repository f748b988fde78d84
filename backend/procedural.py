"""Procedural motion where the CMU clips have none: standing idle, turning in place, waving, crouching, sitting.

A clip is built by forward kinematics on the HumanML3D reference skeleton (`skeleton.REFERENCE_BONE_LENGTHS`):
the upper body from animated joint rotations, each leg by analytic two-bone IK from the hip to an ankle target
that the generator holds still while the foot is planted. Every bone therefore keeps its reference length, a
planted foot does not move at all, and the toe is the lowest foot point, resting at y = 0. Timing, amplitudes and
posture vary with the random generator, so one seed gives one clip.

Conventions (HumanML3D's): Y up, the body faces +Z, its left side is +X, 20 fps. A rotation about +X by a positive
angle tips an upward bone forward; about +Z, it swings a hanging left arm out to the side; about +Y, it turns the
body to its left.
"""
from dataclasses import dataclass

import numpy as np

from . import planting, skeleton
from . import rotations as rot
from .features import gaussian_filter1d

FPS = skeleton.FPS
J = skeleton.JOINT_INDEX
LEFT, RIGHT = 0, 1  # indices into skeleton.SIDES
SIDE_SIGN = (1.0, -1.0)  # mirrors rotations about Y and Z (and x offsets) for the right side

# Unit bone directions (parent -> joint) of a relaxed standing pose facing +Z, left side; right joints mirror
# these. Proportions follow HumanML3D poses: collars rise from spine3, the head sits above and ahead of the neck,
# the toes point forward and down. Leg bones below the hip come from IK.
_LEFT_STANDING_DIRECTIONS = {
    "left_hip": (0.8, -0.6, 0.05), "spine1": (0.0, 1.0, -0.15), "spine2": (0.0, 1.0, 0.2),
    "spine3": (0.0, 0.5, 0.85), "neck": (0.0, 1.0, 0.25), "left_collar": (0.45, 0.87, 0.1),
    "head": (0.0, 0.85, 0.5), "left_shoulder": (1.0, -0.05, 0.2), "left_elbow": (0.05, -1.0, -0.02),
    "left_wrist": (0.08, -1.0, 0.3),
}
HIPS = tuple(leg[0] for leg in planting.LEGS)  # left, right
LEG_JOINTS = tuple(leg[1:] for leg in planting.LEGS)  # (knee, ankle, toe) of the left and right leg
UPPER_BODY = tuple(j for j in range(1, skeleton.NUM_JOINTS) if j not in sum(LEG_JOINTS, ()))
# Joints whose rotation turns the bone that ends at them (HumanML3D's convention): an "upper arm" rotation is
# stored on the elbow joint, a "forearm" rotation on the wrist.
UPPER_ARM = tuple(J[f"{side}_elbow"] for side in skeleton.SIDES)
FOREARM = tuple(J[f"{side}_wrist"] for side in skeleton.SIDES)
SPINE_LOWER, SPINE_MIDDLE, SPINE_UPPER, HEAD = (J[name] for name in ("spine1", "spine2", "spine3", "head"))


def _standing_bones():
    """(22, 3) rest bone vectors (joint minus parent) of the standing pose, at the reference bone lengths."""
    directions = np.zeros((skeleton.NUM_JOINTS, 3))
    for name, direction in _LEFT_STANDING_DIRECTIONS.items():
        directions[skeleton.JOINT_INDEX[name]] = direction
        if name.startswith("left_"):
            directions[skeleton.JOINT_INDEX[name.replace("left_", "right_")]] = np.multiply(direction, (-1, 1, 1))
    norms = np.linalg.norm(directions, axis=1, keepdims=True)
    return np.divide(directions, norms, out=np.zeros_like(directions), where=norms > 0) * \
        skeleton.REFERENCE_BONE_LENGTHS[:, None]


STANDING_BONES = _standing_bones()


@dataclass
class ProceduralClip:
    """One generated motion and what it shows."""

    joints: np.ndarray  # (T, 22, 3) metres, Y-up, 20 fps
    description: str  # in the words `captions.describe` parses ("turn left in place", ...)
    planted: np.ndarray  # (T, 2) bool: the left / right foot is planted (held exactly still) at this frame
    acting: np.ndarray  # (T,) bool: the frame shows the category's action; the others only stand (as idle does)


@dataclass
class Body:
    """Animation channels of one clip, all over T frames; `pose` turns them into joint positions."""

    root: np.ndarray  # (T, 3) pelvis position
    rotations: dict  # joint -> (T, 4) rotation of the bone ending at that joint, relative to its parent bone
    ankles: np.ndarray  # (2, T, 3) ankle targets, left and right
    foot_yaw: np.ndarray  # (2, T) heading of each foot (radians about +Y; 0 = +Z)
    toe_pitch: float  # radians the foot points down from the ankle to the toe
    planted: np.ndarray  # (2, T) bool


# ---------------------------------------------------------------------------------------------------------------
# Small helpers: rotations about the axes, minimum-jerk keyframes, smooth noise
# ---------------------------------------------------------------------------------------------------------------

def about(axis, angle):
    """(T, 4) rotations by `angle` (T,) radians about a fixed axis ("x", "y" or "z")."""
    angle = np.asarray(angle, dtype=np.float64)
    return rot.axis_angle_to_quaternion(np.broadcast_to(np.eye(3)["xyz".index(axis)], angle.shape + (3,)), angle)


def compose(*rotations):
    """Product of rotations; the last one is applied first."""
    result = rotations[0]
    for r in rotations[1:]:
        result = rot.qmul(result, r)
    return result


def minimum_jerk(s):
    """0 -> 1 with zero velocity and acceleration at both ends (Flash & Hogan 1985)."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2)


def keyed(t, times, values):
    """Values at the key `times`, minimum-jerk eased between keys and held outside them; t (T,) -> (T, ...)."""
    values = np.asarray(values, dtype=np.float64)
    index = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(np.asarray(times)[index + 1] - np.asarray(times)[index], 1e-9)
    weight = minimum_jerk((t - np.asarray(times)[index]) / span).reshape((-1,) + (1,) * (values.ndim - 1))
    return values[index] + weight * (values[index + 1] - values[index])


def smooth_noise(rng, frames, sigma_frames):
    """(frames,) Gaussian-filtered white noise scaled to unit standard deviation."""
    noise = gaussian_filter1d(rng.standard_normal(frames), sigma_frames)
    return noise / max(noise.std(), 1e-9)


def timeline(rng, phases, max_frames, pad=False):
    """Key times (seconds) of consecutive phases whose durations are drawn from (low, high) ranges, compressed
    if needed so the clip fits `max_frames`; returns (times, frame count).

    With `pad`, the first and last phases (every generator stands still in them) last longer, to a total drawn
    between the phases' own and `max_frames`: a clip as long as a whole generation shows the action at its own pace
    with standing around it, where a model that never saw one stretches the action to fill the time."""
    durations = np.array([rng.uniform(low, high) for low, high in phases])
    longest = (max_frames - 1) / FPS
    durations *= min(1.0, longest / durations.sum())
    if pad:
        extra, before = rng.uniform(0.0, max(longest - durations.sum(), 0.0)), rng.uniform()
        durations[0] += before * extra
        durations[-1] += (1.0 - before) * extra
    times = np.concatenate([[0.0], np.cumsum(durations)])
    return times, int(np.floor(times[-1] * FPS)) + 1


# ---------------------------------------------------------------------------------------------------------------
# Body -> joint positions
# ---------------------------------------------------------------------------------------------------------------

def leg_lengths(side):
    knee, ankle, toe = LEG_JOINTS[side]
    return skeleton.REFERENCE_BONE_LENGTHS[[knee, ankle, toe]]


def two_bone_ik(hip, ankle, pole, thigh, shin):
    """Knee positions (T, 3) putting the ankle exactly on target, bending towards `pole` (T, 3) (the solver
    `planting.two_bone_ik`); an ankle out of reach is refused: `lower_to_reach` keeps every pose inside."""
    distance = np.linalg.norm(ankle - hip, axis=-1)
    if np.any(distance > thigh + shin) or np.any(distance < abs(thigh - shin)):
        raise ValueError("procedural pose puts an ankle out of the leg's reach")
    return planting.two_bone_ik(hip, ankle, pole, thigh, shin)


def ankle_height(side, toe_pitch):
    """Height of a standing ankle whose toe touches the floor (y = 0)."""
    return leg_lengths(side)[2] * np.sin(toe_pitch)


def foot_direction(yaw, pitch):
    """(T, 3) unit vector from ankle to toe."""
    return np.stack([np.sin(yaw) * np.cos(pitch), np.full_like(yaw, -np.sin(pitch)), np.cos(yaw) * np.cos(pitch)], -1)


def pose(body):
    """(T, 22, 3) joint positions: FK of the upper body from its rotations, two-bone IK for each leg."""
    frames = len(body.root)
    identity = np.broadcast_to(rot.IDENTITY, (frames, 4))
    joints = np.empty((frames, skeleton.NUM_JOINTS, 3))
    joints[:, 0] = body.root
    global_rotation = {0: body.rotations.get(0, identity)}
    for j in UPPER_BODY:  # PARENTS is topologically ordered
        parent = skeleton.PARENTS[j]
        global_rotation[j] = rot.qmul(global_rotation[parent], body.rotations.get(j, identity))
        joints[:, j] = joints[:, parent] + rot.qrot(global_rotation[j], STANDING_BONES[j])
    for side, (knee, ankle, toe) in enumerate(LEG_JOINTS):
        thigh, shin, foot = leg_lengths(side)
        toward_toe = foot_direction(body.foot_yaw[side], body.toe_pitch)
        pole = toward_toe * np.array([1.0, 0.0, 1.0])  # knees bend over the toes
        joints[:, knee] = two_bone_ik(joints[:, HIPS[side]], body.ankles[side], pole, thigh, shin)
        joints[:, ankle] = body.ankles[side]
        joints[:, toe] = body.ankles[side] + foot * toward_toe
    return joints


def lower_to_reach(body, margin=0.97):
    """Lower the pelvis where a leg would have to stretch beyond `margin` of its length (smoothly, in place)."""
    hips = pose_hips(body)
    drop = np.zeros(len(body.root))
    for side in (LEFT, RIGHT):
        thigh, shin, _ = leg_lengths(side)
        horizontal = np.linalg.norm((hips[side] - body.ankles[side])[:, [0, 2]], axis=-1)
        highest = body.ankles[side][:, 1] + np.sqrt(np.maximum((margin * (thigh + shin))**2 - horizontal**2, 0.0))
        drop = np.maximum(drop, hips[side][:, 1] - highest)
    # A running maximum before the Gaussian keeps the smoothed drop (nearly) as deep as needed at every frame;
    # what little it misses stays within the legs' full length, so the IK still reaches.
    radius = 3 * FPS // 4
    padded = np.pad(drop, radius, mode="edge")
    drop = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).max(-1)
    body.root[:, 1] -= gaussian_filter1d(drop, radius / 3)


def pose_hips(body):
    """(2, T, 3) hip positions of a body (they depend on the pelvis only)."""
    pelvis = body.rotations.get(0, np.broadcast_to(rot.IDENTITY, (len(body.root), 4)))
    return np.stack([body.root + rot.qrot(pelvis, STANDING_BONES[h]) for h in HIPS])


# ---------------------------------------------------------------------------------------------------------------
# The standing body every generator starts from
# ---------------------------------------------------------------------------------------------------------------

def stand(rng, frames, sway=1.0):
    """A body standing still with both feet planted, breathing and swaying by `sway` (1 = a calm idle)."""
    t = np.arange(frames) / FPS
    half_width = rng.uniform(0.08, 0.13)
    toe_out = np.radians(rng.uniform(4, 14))
    toe_pitch = np.radians(rng.uniform(15, 25))
    ankles = np.stack([np.tile([SIDE_SIGN[s] * half_width, ankle_height(s, toe_pitch), 0.0], (frames, 1))
                       for s in (LEFT, RIGHT)])
    foot_yaw = np.stack([np.full(frames, SIDE_SIGN[s] * toe_out) for s in (LEFT, RIGHT)])

    # Pelvis as high as nearly straight legs allow, swaying slowly and shifting weight (a few centimetres).
    leg = min(leg_lengths(LEFT)[:2].sum(), leg_lengths(RIGHT)[:2].sum()) * rng.uniform(0.95, 0.975)
    hip = STANDING_BONES[HIPS[LEFT]]
    height = ankle_height(LEFT, toe_pitch) + np.sqrt(leg**2 - (half_width - hip[0])**2) - hip[1]
    phase = rng.uniform(0, 2 * np.pi, 3)
    sway_x = sway * rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + phase[0])
    sway_z = sway * (rng.uniform(0.003, 0.01) * np.sin(2 * np.pi * rng.uniform(0.1, 0.25) * t + phase[1])
                     + 0.004 * smooth_noise(rng, frames, 15))
    root = np.stack([sway_x, np.full(frames, height), sway_z], -1)

    breathing = np.radians(sway * rng.uniform(0.5, 1.5)) * np.sin(2 * np.pi * rng.uniform(0.2, 0.33) * t + phase[2])
    arm_out, elbow_bend = np.radians(rng.uniform(2, 8)), np.radians(rng.uniform(5, 20))
    rotations = {
        0: compose(about("z", -4.0 * sway_x), about("x", np.full(frames, np.radians(rng.uniform(-3, 3))))),
        SPINE_MIDDLE: about("x", -breathing),  # the chest lifts on the in-breath
        SPINE_UPPER: about("x", -0.5 * breathing),
        HEAD: compose(about("y", np.radians(sway * 6) * smooth_noise(rng, frames, 20)),
                      about("x", np.radians(sway * 3) * smooth_noise(rng, frames, 20))),
    }
    for side in (LEFT, RIGHT):
        swing = np.radians(sway * 2) * smooth_noise(rng, frames, 12)
        rotations[UPPER_ARM[side]] = compose(about("z", np.full(frames, SIDE_SIGN[side] * arm_out)),
                                             about("x", swing))
        rotations[FOREARM[side]] = about("x", np.full(frames, -elbow_bend))
    planted = np.ones((2, frames), dtype=bool)
    return Body(root, rotations, ankles, foot_yaw, toe_pitch, planted)


def finish(body, description, acting=None):
    """Fit the pelvis height to the legs and pose the body; `acting` (T,) marks the action's frames (None: all)."""
    lower_to_reach(body)
    acting = np.ones(len(body.root), dtype=bool) if acting is None else acting
    return ProceduralClip(pose(body), description, body.planted.T.copy(), acting)


# ---------------------------------------------------------------------------------------------------------------
# Generators: (rng, max_frames, pad) -> ProceduralClip (`pad`: see `timeline`)
# ---------------------------------------------------------------------------------------------------------------

def idle(rng, max_frames, pad=False):
    _, frames = timeline(rng, [(3.0, 6.0)], max_frames, pad)
    return finish(stand(rng, frames, sway=1.0), "stand idle")


def turn(rng, max_frames, pad=False):
    """Turn on the spot to a random side by 60-180 degrees in small pivot steps, the foot on that side leading."""
    side = int(rng.integers(2))
    sign = SIDE_SIGN[side]  # turning left is a positive yaw
    angle = np.radians(rng.uniform(60, 180))
    steps = int(np.ceil(angle / np.radians(rng.uniform(45, 60))))  # steps per foot
    phases = [(0.4, 0.9)] + [(0.3, 0.45), (0.03, 0.12)] * (2 * steps) + [(0.4, 0.9)]
    times, frames = timeline(rng, phases, max_frames, pad)
    body = stand(rng, frames, sway=0.4)
    t = np.arange(frames) / FPS
    lift = rng.uniform(0.03, 0.07)
    half_width = np.abs(body.ankles[LEFT, 0, 0])
    toe_out = np.abs(body.foot_yaw[LEFT, 0])

    heading = np.zeros((2, frames))  # each foot's share of the turn
    lifted = np.zeros((2, frames))
    for k in range(2 * steps):
        foot = side if k % 2 == 0 else 1 - side
        start, end = times[1 + 2 * k], times[2 + 2 * k]
        progress = minimum_jerk((t - start) / (end - start))
        heading[foot] += sign * angle / steps * progress
        inside = (t > start) & (t < end)
        lifted[foot] += np.where(inside, np.sin(np.pi * (t - start) / (end - start)) ** 2, 0.0)
        body.planted[foot] &= ~inside
    for s in (LEFT, RIGHT):
        offset = np.stack([np.full(frames, SIDE_SIGN[s] * half_width), np.zeros(frames), np.zeros(frames)], -1)
        body.ankles[s] = rot.qrot(about("y", heading[s]), offset)
        body.ankles[s, :, 1] = ankle_height(s, body.toe_pitch) + lift * lifted[s]
        body.foot_yaw[s] = heading[s] + SIDE_SIGN[s] * toe_out

    # The pelvis turns halfway between the feet, shifts its weight over the standing foot and dips a little.
    yaw = heading.mean(0)
    shift = rng.uniform(0.02, 0.05) * (lifted[RIGHT] - lifted[LEFT])  # towards the planted foot, in body frame
    body.root += rot.qrot(about("y", yaw), np.stack([shift, np.zeros(frames), np.zeros(frames)], -1))
    body.root[:, 1] -= rng.uniform(0.005, 0.02) * lifted.sum(0)
    body.rotations[0] = compose(about("y", yaw), body.rotations[0])
    return finish(body, f"turn {skeleton.SIDES[side]} in place", (t > times[1]) & (t < times[-2]))


def wave(rng, max_frames, pad=False):
    """Raise one (random) arm, wave the forearm side to side a few times, lower it."""
    side = int(rng.integers(2))
    sign = SIDE_SIGN[side]
    times, frames = timeline(rng, [(0.3, 1.0), (0.5, 0.9), (1.5, 3.0), (0.5, 0.9), (0.3, 0.8)], max_frames, pad)
    body = stand(rng, frames, sway=0.6)
    t = np.arange(frames) / FPS
    raised = keyed(t, times, [0, 0, 1, 1, 0, 0])
    waving = keyed(t, times, [0, 0, 0, 1, 0, 0]) ** 0.5  # reaches full swing soon after the arm is up
    abduction = np.radians(rng.uniform(70, 110))
    forward = np.radians(rng.uniform(10, 30))
    bend = np.radians(rng.uniform(70, 110))
    swing = np.radians(rng.uniform(15, 30)) * np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * (t - times[2]))
    body.rotations[UPPER_ARM[side]] = compose(about("z", sign * abduction * raised), about("x", -forward * raised),
                                              body.rotations[UPPER_ARM[side]])
    body.rotations[FOREARM[side]] = compose(about("z", sign * (bend * raised + swing * waving)),
                                            body.rotations[FOREARM[side]])
    body.rotations[HEAD] = compose(about("y", sign * np.radians(rng.uniform(0, 15)) * raised), body.rotations[HEAD])
    return finish(body, f"wave {skeleton.SIDES[side]} hand", raised > 0)


def _lower_and_rise(rng, max_frames, pad, hold):
    """(frames, 0 -> 1 -> 0 progress per frame): stand, go down, hold for `hold` seconds, come up, stand."""
    times, frames = timeline(rng, [(0.4, 1.0), (0.8, 1.4), hold, (0.8, 1.4), (0.3, 0.8)], max_frames, pad)
    return frames, keyed(np.arange(frames) / FPS, times, [0, 0, 1, 1, 0, 0])


def crouch(rng, max_frames, pad=False):
    """Squat down with the torso leaning forward and the arms out front for balance, then stand up."""
    frames, down = _lower_and_rise(rng, max_frames, pad, (0.3, 1.5))
    body = stand(rng, frames, sway=0.3)
    body.root[:, 1] -= rng.uniform(0.28, 0.42) * down
    body.root[:, 2] -= rng.uniform(0.05, 0.15) * down
    lean = np.radians(rng.uniform(20, 40)) * down
    body.rotations[0] = compose(body.rotations[0], about("x", 0.4 * lean))
    body.rotations[SPINE_LOWER] = about("x", 0.6 * lean)
    body.rotations[HEAD] = compose(about("x", -0.7 * lean), body.rotations[HEAD])  # keep looking ahead
    arms_forward = np.radians(rng.uniform(30, 70)) * down
    for side in (LEFT, RIGHT):
        body.rotations[UPPER_ARM[side]] = compose(about("x", -arms_forward), body.rotations[UPPER_ARM[side]])
    return finish(body, "crouch down and stand up", down > 0)


def sit(rng, max_frames, pad=False):
    """Sit down on an (invisible) chair, leaning forward while going down and up, rest the hands on the thighs."""
    frames, seated = _lower_and_rise(rng, max_frames, pad, (1.0, 2.5))
    body = stand(rng, frames, sway=0.3)
    seat_height = rng.uniform(0.48, 0.58)  # of the pelvis joint
    body.root[:, 1] += (seat_height - body.root[:, 1]) * seated
    body.root[:, 2] -= rng.uniform(0.25, 0.38) * seated
    # Leaning forward peaks halfway through each transition: the weight stays over the feet until seated.
    lean = np.radians(rng.uniform(25, 40)) * np.sin(np.pi * seated) + np.radians(rng.uniform(-5, 5)) * seated
    body.rotations[0] = compose(body.rotations[0], about("x", 0.5 * lean))
    body.rotations[SPINE_LOWER] = about("x", 0.5 * lean)
    body.rotations[HEAD] = compose(about("x", -0.5 * lean), body.rotations[HEAD])
    hands_on_thighs = np.radians(rng.uniform(25, 40)) * seated
    for side in (LEFT, RIGHT):
        body.rotations[UPPER_ARM[side]] = compose(about("x", -hands_on_thighs), body.rotations[UPPER_ARM[side]])
        body.rotations[FOREARM[side]] = compose(about("x", -1.2 * hands_on_thighs), body.rotations[FOREARM[side]])
    return finish(body, "sit down and stand up", seated > 0)


GENERATORS = {"idle": idle, "turn": turn, "wave": wave, "crouch": crouch, "sit": sit}


def generate(category, rng, max_frames, pad=False):
    """One procedural clip of `category` (a key of GENERATORS), at most `max_frames` frames long."""
    return GENERATORS[category](rng, max_frames, pad)
