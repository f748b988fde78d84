"""HumanML3D's 263-dim motion features: 22 joint positions -> features (`process_file`) and back (`recover_from_ric`).

numpy only: the Blender add-on runs it. Shapes: joints (..., T, 22, 3) in metres, Y-up; features (..., T, 263),
laid out as `skeleton.ROOT/RIC/ROT/VEL/CONTACT`. Joints -> features is HumanML3D's own pipeline, step by step:

1. uniform skeleton: every bone set to the reference length, root trajectory scaled by the leg-length ratio;
2. floor at y = 0, first frame's root XZ at the origin, first frame facing +Z (`canonicalize`);
3. foot contacts, heading from the smoothed body forward, swing-only IK, then the blocks (`features_from_canonical`).

T joint frames give T-1 feature rows: every block describes a frame together with its transition to the next one.
"""
import numpy as np

from . import rotations as rot
from . import skeleton
from .errors import UserError

UP = np.array([0.0, 1.0, 0.0])
FACING = np.array([0.0, 0.0, 1.0])  # HumanML3D faces every pose's heading towards +Z
HEADING_SMOOTHING_SIGMA = 20.0  # frames: the body forward is Gaussian-filtered before it defines the heading
MIN_BONE_LENGTH = 1e-6  # metres: a bone shorter than this has no direction to measure
MAX_POSITION = 1e6  # metres: the largest joint coordinate accepted (`check_joints`)


def _rotation_parents():
    """Joint whose global rotation each joint's IK rotation is relative to (-1 for the root).

    HumanML3D restarts every kinematic chain from the root's heading, not from the chain's first joint, so the hips,
    spine1 and both collars (first joints after a chain start) rotate relative to the root even though the collars'
    skeletal parent is spine3.
    """
    parents = [-1] * skeleton.NUM_JOINTS
    for chain in skeleton.KINEMATIC_CHAIN:
        for k in range(1, len(chain)):
            parents[chain[k]] = chain[k - 1] if k > 1 else 0
    return tuple(parents)


ROTATION_PARENTS = _rotation_parents()


# ---------------------------------------------------------------------------------------------------------------
# features -> joints (official `recover_root_rot_pos` and `recover_from_ric`)
# ---------------------------------------------------------------------------------------------------------------

def recover_root(features):
    """(..., T, 263) -> root rotation (..., T, 4) (w, x, y, z) and root position (..., T, 3).

    The heading integrates the yaw velocity from identity at frame 0; the root XZ integrates the heading-frame
    velocity, turned back to the world, from the origin at frame 0; y is the stored height. float32 in gives the
    official float32 numbers (its torch cumsum accumulates in float64 on the CPU, as done here).
    """
    features = _check_features(features)
    dtype = features.dtype
    half_yaw = np.zeros_like(features[..., 0])  # (..., T) half of the heading angle about +Y
    half_yaw[..., 1:] = features[..., :-1, skeleton.ROOT_YAW_VELOCITY.start]
    half_yaw = np.cumsum(half_yaw, axis=-1, dtype=np.float64).astype(dtype)
    zero = np.zeros_like(half_yaw)
    root_quat = np.stack([np.cos(half_yaw), zero, np.sin(half_yaw), zero], axis=-1)  # (..., T, 4)

    step = np.zeros(features.shape[:-1] + (3,), dtype=dtype)  # (..., T, 3) displacement into each frame
    step[..., 1:, [0, 2]] = features[..., :-1, skeleton.ROOT_XZ_VELOCITY]
    root_pos = np.cumsum(rot.qrot(rot.qinv(root_quat), step), axis=-2, dtype=np.float64).astype(dtype)
    root_pos[..., 1] = features[..., skeleton.ROOT_HEIGHT.start]
    return root_quat, root_pos


def features_to_joints(features):
    """(..., T, 263) -> (..., T, 22, 3) global joint positions, from the root and the ric block."""
    features = _check_features(features)
    root_quat, root_pos = recover_root(features)
    ric = features[..., skeleton.RIC].reshape(features.shape[:-1] + (skeleton.NUM_JOINTS - 1, 3))  # (..., T, 21, 3)
    joints = rot.qrot(rot.qinv(root_quat)[..., None, :], ric)
    joints[..., [0, 2]] += root_pos[..., None, [0, 2]]
    return np.concatenate([root_pos[..., None, :], joints], axis=-2)  # (..., T, 22, 3)


# ---------------------------------------------------------------------------------------------------------------
# joints -> features (official `process_file`)
# ---------------------------------------------------------------------------------------------------------------

def joints_to_features(joints):
    """(T, 22, 3) global joint positions (metres, Y-up, any skeleton and placement) -> (T-1, 263) features."""
    return features_from_canonical(canonicalize(joints))


def canonicalize(joints):
    """(T, 22, 3) -> (T, 22, 3) float64: the positions HumanML3D computes its features from.

    The motion is moved onto the reference skeleton, put on the floor (lowest joint of the clip at y = 0), its first
    frame's root moved to XZ = 0 and turned to face +Z. This is HumanML3D's `new_joints` up to the dropped last frame.
    """
    joints = uniform_skeleton(check_joints(joints))
    joints[..., 1] -= joints[..., 1].min()
    joints -= joints[0, 0] * np.array([1.0, 0.0, 1.0])
    r_hip, l_hip, r_shoulder, l_shoulder = skeleton.FACE_JOINTS
    first = joints[0]
    across = first[r_hip] - first[l_hip] + first[r_shoulder] - first[l_shoulder]
    forward = np.cross(UP, across)
    if np.linalg.norm(forward) < 1e-6:
        raise UserError("cannot tell which way the body faces in the first frame: its hips and shoulders line up "
                        "vertically; trim the clip to start from a standing pose")
    facing = rot.qbetween(forward, FACING)
    return rot.qrot(facing, joints)


def uniform_skeleton(joints):
    """(T, 22, 3) -> (T, 22, 3): the motion on the reference skeleton (`skeleton.REFERENCE_OFFSETS`).

    The official code runs swing-only IK, then FK with the reference offsets. Along every chain the root rotation and
    each parent's swing cancel, so FK puts each bone along its own direction at the reference length; we compute
    that directly, without the detour through quaternions. The root trajectory scales by the ratio of leg lengths
    (the bones ending at `skeleton.LEG_SCALE_JOINTS`, measured in the first frame). Every bone needs a length:
    pass the joints through `check_joints` first.
    """
    parents = np.array(skeleton.PARENTS[1:])
    bones = joints[:, 1:] - joints[:, parents]  # (T, 21, 3)
    lengths = np.linalg.norm(bones, axis=-1)

    # The official ratio sums |offset|.max() over the leg-scale bones; rest directions are unit axes, so that is
    # their length.
    leg = np.array(skeleton.LEG_SCALE_JOINTS)
    scale = skeleton.REFERENCE_BONE_LENGTHS[leg].sum() / lengths[0, leg - 1].sum()
    reference_bones = (bones / lengths[..., None]) * skeleton.REFERENCE_BONE_LENGTHS[1:, None]  # (T, 21, 3)
    uniform = np.empty_like(joints)
    uniform[:, 0] = joints[:, 0] * scale
    for j in range(1, skeleton.NUM_JOINTS):  # PARENTS is topologically ordered
        uniform[:, j] = uniform[:, skeleton.PARENTS[j]] + reference_bones[:, j - 1]
    return uniform


def features_from_canonical(positions, contact_threshold=skeleton.FOOT_CONTACT_VELOCITY_THRESHOLD):
    """(T, 22, 3) canonical positions (from `canonicalize`) -> (T-1, 263) features.

    The blocks are relative to each frame's heading, but root height and contacts are taken as given: positions
    that are not on the floor or not at the HumanML3D scale give features outside the training distribution.
    """
    positions = check_joints(positions)
    root_quat = heading(positions)  # (T, 4)
    local_quat = inverse_kinematics(positions, root_quat)  # (T, 22, 4)

    # Root: yaw velocity as the half angle of the heading change, XZ velocity in the next frame's heading frame.
    heading_step = rot.qmul(root_quat[1:], rot.qinv(root_quat[:-1]))  # (T-1, 4)
    yaw_velocity = np.arcsin(heading_step[:, 2:3])
    root_velocity = rot.qrot(root_quat[1:], positions[1:, 0] - positions[:-1, 0])[:, [0, 2]]  # (T-1, 2)
    root_height = positions[:-1, 0, 1:2]

    # ric: every joint relative to the root's XZ, turned by the heading to face +Z.
    ric = positions - positions[:, :1] * np.array([1.0, 0.0, 1.0])
    ric = rot.qrot(root_quat[:, None], ric)[:-1, 1:]  # (T-1, 21, 3)
    rotations = rot.quaternion_to_cont6d(local_quat[:-1, 1:])  # (T-1, 21, 6)
    velocity = rot.qrot(root_quat[:-1, None], positions[1:] - positions[:-1])  # (T-1, 22, 3)
    contacts = foot_contacts(positions, contact_threshold)  # (T-1, 4)

    n = len(positions) - 1
    return np.concatenate([
        yaw_velocity, root_velocity, root_height,
        ric.reshape(n, -1), rotations.reshape(n, -1), velocity.reshape(n, -1), contacts,
    ], axis=-1)


def heading(positions):
    """(T, 22, 3) -> (T, 4): per-frame rotation about +Y turning the smoothed body forward onto +Z.

    As in the official IK: forward = up x across, Gaussian-smoothed over time, then frame 0 is reset to identity.
    The official IK unpacks the face joints as (l_hip, r_hip, r_shoulder, l_shoulder) from the same
    (r_hip, l_hip, r_shoulder, l_shoulder) list, so its hip term points the other way and across is the shoulder
    vector minus the hip vector. HumanML3D's features are made with that across (with the documented order our
    features of motion 012314 miss theirs by up to 0.6), so we use it too.
    """
    across = feature_across(positions)
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = gaussian_filter1d(np.cross(UP, across), HEADING_SMOOTHING_SIGMA, axis=0)
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    root_quat = rot.qbetween(forward, FACING)
    root_quat[0] = rot.IDENTITY
    return root_quat


def feature_across(positions):
    """(..., 22, 3) -> (..., 3): the across vector the features' heading is built from (see `heading`): the
    shoulder vector minus the hip vector, so it follows the chest's twist more than the body's facing does."""
    r_hip, l_hip, r_shoulder, l_shoulder = skeleton.FACE_JOINTS
    return (positions[..., l_hip, :] - positions[..., r_hip, :]
            + positions[..., r_shoulder, :] - positions[..., l_shoulder, :])


def inverse_kinematics(positions, root_quat):
    """(T, 22, 3) positions and (T, 4) root rotation -> (T, 22, 4) swing-only local rotations (HumanML3D's IK).

    Each bone's global rotation is the shortest arc from its rest direction (`skeleton.RAW_OFFSETS`) to its
    direction in the pose: no twist. Locals are relative to `ROTATION_PARENTS`; joint 0 holds root_quat.
    """
    bones = positions[:, 1:] - positions[:, np.array(skeleton.PARENTS[1:])]  # (T, 21, 3)
    swing = rot.qbetween(skeleton.RAW_OFFSETS[1:], bones)  # (T, 21, 4)
    global_quat = np.concatenate([root_quat[:, None], swing], axis=1)  # (T, 22, 4)
    rotation_parents = np.array(ROTATION_PARENTS[1:])
    local = rot.qmul(rot.qinv(global_quat[:, rotation_parents]), swing)
    return np.concatenate([root_quat[:, None], local], axis=1)


def foot_contacts(positions, threshold=skeleton.FOOT_CONTACT_VELOCITY_THRESHOLD):
    """(T, 22, 3) -> (T-1, 4) float: 1 where a foot joint moves less than sqrt(threshold) into the next frame.

    Columns: left ankle, left foot, right ankle, right foot. Velocity only (the official height test is disabled).
    """
    feet = np.array(skeleton.CONTACT_JOINTS)
    squared_step = ((positions[1:, feet] - positions[:-1, feet]) ** 2).sum(-1)
    return (squared_step < threshold).astype(positions.dtype)


def gaussian_filter1d(x, sigma, axis=-1, truncate=4.0):
    """Gaussian smoothing along `axis` with edge values repeated: scipy.ndimage.gaussian_filter1d, mode='nearest'."""
    radius = int(truncate * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 / (sigma * sigma) * taps**2)
    kernel = kernel / kernel.sum()
    x = np.moveaxis(np.asarray(x, dtype=np.result_type(x, np.float64)), axis, -1)
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(radius, radius)], mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=-1)  # (..., n, 2 * radius + 1)
    return np.moveaxis(windows @ kernel, -1, axis)


def mirror_joints(joints):
    """(..., 22, 3) -> the left/right mirror image: x negated and left/right joints swapped."""
    joints = np.asarray(joints)
    return joints[..., skeleton.MIRROR_JOINTS, :] * np.array([-1, 1, 1], dtype=joints.dtype)


def _check_features(features):
    features = np.asarray(features)
    if features.ndim < 2 or features.shape[-1] != skeleton.FEATURE_DIM:
        raise UserError(f"expected HumanML3D features of shape (..., frames, {skeleton.FEATURE_DIM}), "
                        f"got {features.shape}")
    if not np.issubdtype(features.dtype, np.floating):
        features = features.astype(np.float64)
    return features


def check_joints(joints, min_frames=2):
    """`joints` as float64 (T, 22, 3), or a UserError naming the problem: another shape or fewer than `min_frames`
    frames (features need 2: T frames give T-1 rows), the first frame holding a NaN or inf, or the first two joints
    that coincide (a bone shorter than MIN_BONE_LENGTH)."""
    joints = np.asarray(joints, dtype=np.float64)
    expected = (skeleton.NUM_JOINTS, 3)
    if joints.ndim != 3 or joints.shape[1:] != expected or len(joints) < min_frames:
        raise UserError(f"expected joint positions of shape (frames >= {min_frames}, {expected[0]}, 3), "
                        f"got {joints.shape}")
    # Beyond MAX_POSITION metres a position is a unit or file error, and it would be inf once stored as float32.
    unusable = ~np.isfinite(joints) | (np.abs(joints) > MAX_POSITION)
    if unusable.any():
        frame = np.argwhere(unusable)[0][0]
        raise UserError(f"joint positions are not finite (NaN or inf) or beyond {MAX_POSITION:g} m in frame {frame}")
    parents = np.array(skeleton.PARENTS[1:])
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, parents], axis=-1)  # (T, 21)
    if lengths.min() < MIN_BONE_LENGTH:
        frame, bone = np.argwhere(lengths < MIN_BONE_LENGTH)[0]
        name, parent = skeleton.JOINT_NAMES[bone + 1], skeleton.JOINT_NAMES[parents[bone]]
        raise UserError(f"joints {name!r} and {parent!r} coincide in frame {frame}: the bone between them has no "
                        f"direction; fix the source skeleton or its joint mapping")
    return joints
