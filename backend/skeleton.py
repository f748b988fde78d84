"""The HumanML3D 22-joint skeleton and the 263-feature layout: every other module imports these constants.

Joint order, parents and raw rest directions are SMPL's first 22 joints as HumanML3D uses them (Y-up, metres,
facing +Z, the subject's left side on +X). Numbers are facts of the official pipeline, checked against the fixture
`mdm_official/mdm_golden.json` ("skeleton") by `python -m backend check-fixture`.
"""
import numpy as np

FPS = 20  # HumanML3D frame rate
MAX_FRAMES = 196  # longest HumanML3D clip (9.8 s); the official text models are trained up to this length

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
SIDES = ("left", "right")  # the prefixes of the sided joint names, in every left-then-right pair

# Five chains from a branching joint to a leaf: right leg, left leg, spine to head, right arm, left arm.
KINEMATIC_CHAIN = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)

# Unit rest direction of each joint from its parent ("t2m_raw_offsets"); IK measures swing from these.
RAW_OFFSETS = np.array([
    [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
    [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
    [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
], dtype=np.float64)

# Bone lengths (metres, joint i to PARENTS[i]) of HumanML3D's reference skeleton: the first frame of motion
# 000021, which the official pipeline retargets every motion onto. Derived numbers only (the motion itself is
# research-only and is never shipped); tests/test_skeleton.py recomputes them from the fixture.
REFERENCE_BONE_LENGTHS = np.array([
    0.0, 0.10307396671283978, 0.10988336787807242, 0.13156824130931077, 0.39362326023691735,
    0.3901882260573365, 0.14319021538631002, 0.43243302278564644, 0.4256433445515134, 0.0573647348821848,
    0.14338181237659756, 0.1494190728208926, 0.2193600522954259, 0.137486767617009, 0.14338283265236826,
    0.10303920157628017, 0.13161404584007272, 0.12298437618321668, 0.2568400048098033, 0.2630918617313603,
    0.2660117280465618, 0.2698764129350954,
])
REFERENCE_OFFSETS = RAW_OFFSETS * REFERENCE_BONE_LENGTHS[:, None]  # (22, 3) rest offsets of the reference

# Joints whose offsets measure leg length when rescaling a motion's root trajectory (right knee, right ankle).
LEG_SCALE_JOINTS = (5, 8)
# (right hip, left hip, right shoulder, left shoulder): across = (r_hip - l_hip) + (r_sdr - l_sdr), forward =
# up x across. HumanML3D's face_joint_indx.
FACE_JOINTS = (2, 1, 17, 16)
LEFT_FOOT_JOINTS = (7, 10)  # ankle, toe: the two left contact labels
RIGHT_FOOT_JOINTS = (8, 11)
CONTACT_JOINTS = LEFT_FOOT_JOINTS + RIGHT_FOOT_JOINTS  # the order of the features' contact block (CONTACT)
FOOT_CONTACT_VELOCITY_THRESHOLD = 0.002  # squared per-frame displacement (m^2) below which a foot is in contact
LOWER_BODY_JOINTS = (0, 1, 2, 4, 5, 7, 8, 10, 11)  # kept by the official "upper body" edit mode

# Left/right mirror: the joint that takes each joint's place when the body is reflected through x = 0.
MIRROR_JOINTS = tuple(
    JOINT_INDEX[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")] for n in JOINT_NAMES
)

# The 263-dim HumanML3D feature vector. Every block but the root has one row per frame of the T-1 transitions.
FEATURE_DIM = 263
ROOT_YAW_VELOCITY = slice(0, 1)  # rad/frame, arcsin of the heading quaternion's y (half angle)
ROOT_XZ_VELOCITY = slice(1, 3)  # m/frame in the heading frame
ROOT_HEIGHT = slice(3, 4)  # m above the floor
ROOT = slice(0, 4)
RIC = slice(4, 4 + 3 * (NUM_JOINTS - 1))  # joints 1..21 relative to root XZ, facing +Z (63)
ROT = slice(RIC.stop, RIC.stop + 6 * (NUM_JOINTS - 1))  # joints 1..21 local 6D rotations (126)
VEL = slice(ROT.stop, ROT.stop + 3 * NUM_JOINTS)  # all 22 joints' velocities in the heading frame (66)
CONTACT = slice(VEL.stop, VEL.stop + 4)  # left ankle, left foot, right ankle, right foot
FEATURE_BLOCKS = {"root": ROOT, "ric": RIC, "rot": ROT, "vel": VEL, "contact": CONTACT}
assert CONTACT.stop == FEATURE_DIM

# Blender is Z-up and faces -Y: (x, y, z) in HumanML3D is (x, -z, y) in Blender.
HML_TO_BLENDER = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=np.float64)


def feature_mask(joints, contacts: bool) -> np.ndarray:
    """(263,) bool: the feature dims that describe `joints` (the root block when joint 0 is among them).

    `feature_mask(LOWER_BODY_JOINTS, contacts=True)` is the official HML_LOWER_BODY_MASK.
    """
    chosen = np.zeros(NUM_JOINTS, dtype=bool)
    chosen[list(joints)] = True
    return np.concatenate([
        np.repeat(chosen[0], ROOT.stop),
        np.repeat(chosen[1:], 3),
        np.repeat(chosen[1:], 6),
        np.repeat(chosen, 3),
        np.repeat(contacts, CONTACT.stop - CONTACT.start),
    ])
