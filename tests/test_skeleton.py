"""The skeleton constants against HumanML3D's reference data, and the consistency of the tables with each other."""
import numpy as np

from backend import skeleton
from conftest import HUMANML_SAMPLE_DIR


def test_reference_bone_lengths_are_the_first_frame_of_000021():
    first_frame = np.load(HUMANML_SAMPLE_DIR / "joints_000021_smplh52.npy")[0, : skeleton.NUM_JOINTS]
    parents = np.array(skeleton.PARENTS[1:])
    lengths = np.linalg.norm(first_frame[1:] - first_frame[parents], axis=-1)
    np.testing.assert_allclose(skeleton.REFERENCE_BONE_LENGTHS[1:], lengths, rtol=1e-12, atol=0)
    assert skeleton.REFERENCE_BONE_LENGTHS[0] == 0
    np.testing.assert_allclose(np.linalg.norm(skeleton.REFERENCE_OFFSETS, axis=-1), skeleton.REFERENCE_BONE_LENGTHS)


def test_parents_follow_the_kinematic_chains_in_topological_order():
    for chain in skeleton.KINEMATIC_CHAIN:
        for parent, child in zip(chain[:-1], chain[1:]):
            assert skeleton.PARENTS[child] == parent
    covered = {j for chain in skeleton.KINEMATIC_CHAIN for j in chain}
    assert covered == set(range(skeleton.NUM_JOINTS))
    # features.uniform_skeleton places joints in index order, so every parent must come first.
    assert all(skeleton.PARENTS[j] < j for j in range(1, skeleton.NUM_JOINTS))


def test_raw_offsets_are_unit_axes():
    nonzero = np.abs(skeleton.RAW_OFFSETS[1:])
    assert np.all(nonzero.sum(-1) == 1) and np.all(nonzero.max(-1) == 1)


def test_mirror_joints_swap_left_and_right_names():
    mirror = skeleton.MIRROR_JOINTS
    assert all(mirror[mirror[j]] == j for j in range(skeleton.NUM_JOINTS))
    for j, name in enumerate(skeleton.JOINT_NAMES):
        partner = skeleton.JOINT_NAMES[mirror[j]]
        if name.startswith("left_"):
            assert partner == "right_" + name[len("left_"):]
        elif name.startswith("right_"):
            assert partner == "left_" + name[len("right_"):]
        else:
            assert partner == name
    # The foot-contact and face tables pair up under the mirror too.
    assert tuple(mirror[j] for j in skeleton.LEFT_FOOT_JOINTS) == skeleton.RIGHT_FOOT_JOINTS
    r_hip, l_hip, r_shoulder, l_shoulder = skeleton.FACE_JOINTS
    assert (mirror[r_hip], mirror[r_shoulder]) == (l_hip, l_shoulder)


def test_feature_slices_tile_the_263_dims_in_order():
    blocks = list(skeleton.FEATURE_BLOCKS.values())
    assert blocks[0].start == 0 and blocks[-1].stop == skeleton.FEATURE_DIM == 263
    assert all(a.stop == b.start for a, b in zip(blocks[:-1], blocks[1:]))
    root_parts = [skeleton.ROOT_YAW_VELOCITY, skeleton.ROOT_XZ_VELOCITY, skeleton.ROOT_HEIGHT]
    assert root_parts[0].start == skeleton.ROOT.start and root_parts[-1].stop == skeleton.ROOT.stop
    assert all(a.stop == b.start for a, b in zip(root_parts[:-1], root_parts[1:]))
    sizes = {name: s.stop - s.start for name, s in skeleton.FEATURE_BLOCKS.items()}
    assert sizes == {"root": 4, "ric": 63, "rot": 126, "vel": 66, "contact": 4}


def test_feature_mask_of_all_joints_is_everything():
    assert skeleton.feature_mask(range(skeleton.NUM_JOINTS), contacts=True).all()
    assert skeleton.feature_mask(range(skeleton.NUM_JOINTS), contacts=False).sum() == skeleton.CONTACT.start
