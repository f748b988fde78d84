"""HumanML3D-263 features against HumanML3D's own files for motion 012314, plus invariances and the mirror."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d as scipy_gaussian_filter1d

from backend import features, skeleton
from backend import rotations as rot
from backend.errors import UserError
from conftest import HUMANML_SAMPLE_DIR

# Sub-blocks of the error table: the root split into its three parts, then the other blocks.
TABLE_BLOCKS = {
    "root": skeleton.ROOT,
    "  yaw vel": skeleton.ROOT_YAW_VELOCITY,
    "  xz vel": skeleton.ROOT_XZ_VELOCITY,
    "  height": skeleton.ROOT_HEIGHT,
    **{name: s for name, s in skeleton.FEATURE_BLOCKS.items() if name != "root"},
}
SMOOTHING_RADIUS = int(4.0 * features.HEADING_SMOOTHING_SIGMA + 0.5)  # scipy's default truncate


@pytest.fixture(scope="module")
def humanml():
    """HumanML3D's features (T, 263) and joints (T, 22, 3) of motion 012314, float32 as stored."""
    return (np.load(HUMANML_SAMPLE_DIR / "new_joint_vecs_012314.npy"),
            np.load(HUMANML_SAMPLE_DIR / "new_joints_012314.npy"))


def block_errors(ours, reference):
    return {name: float(np.abs(ours[:, s] - reference[:, s]).max()) for name, s in TABLE_BLOCKS.items()}


def test_features_to_joints_reproduces_humanml3d_joints(humanml):
    vecs, joints = humanml
    recovered = features.features_to_joints(vecs)
    assert recovered.dtype == np.float32 and recovered.shape == joints.shape
    assert np.abs(recovered - joints).max() < 1e-6  # measured 2.4e-7: float32 rounding of the official run


def test_joints_to_features_reproduces_humanml3d_features(humanml, print_table):
    """HumanML3D made the 170 feature rows from 171 frames; its new_joints keep only the first 170 of them.

    Our 169 rows agree with theirs to float32 rounding wherever the heading's Gaussian filter (radius 80 frames)
    sees the same frames. Within 81 rows of the end it does not: their filter saw frame 170, ours repeats frame
    169 in its place, so the heading differs there (root yaw up to 3e-4 rad, ric turned with it by up to 7e-3 m).
    That frame is recoverable from their last feature row (frame 169's position plus its velocity, turned back
    by the heading); with it appended, every row agrees, which shows the smoothing is the only difference.
    """
    vecs, joints = humanml
    ours = features.joints_to_features(joints)
    assert ours.shape == (len(vecs) - 1, skeleton.FEATURE_DIM)
    reference = vecs[: len(ours)]
    interior = len(ours) - SMOOTHING_RADIUS  # rows whose smoothing window ends inside both clips

    root_quat, _ = features.recover_root(vecs.astype(np.float64))
    last_velocity = vecs[-1, skeleton.VEL].reshape(skeleton.NUM_JOINTS, 3)
    dropped_frame = joints[-1] + rot.qrot(rot.qinv(root_quat[-1]), last_velocity)
    completed = features.joints_to_features(np.concatenate([joints, dropped_frame[None]]))

    columns = {
        f"all {len(ours)} rows": block_errors(ours, reference),
        f"rows < {interior}": block_errors(ours[:interior], reference[:interior]),
        f"+frame {len(vecs)}, all rows": block_errors(completed, vecs),
    }
    print_table("max |ours - HumanML3D| per feature block", columns)

    # Float32 rounding of the official pipeline (its quaternion maths runs in torch float32). rot is the largest:
    # the official IK chains 4 float32 quaternion products down each arm (measured 7.8e-6 at the wrist).
    bounds = {"root": 1e-6, "  yaw vel": 1e-6, "  xz vel": 1e-6, "  height": 1e-6,
              "ric": 1e-5, "rot": 5e-5, "vel": 1e-5, "contact": 0.0}
    for column in list(columns.values())[1:]:
        for name, bound in bounds.items():
            assert column[name] <= bound, (name, column[name])
    # The last 81 rows, with the heading smoothed over one frame fewer (measured: root 3.0e-4, xz vel 1.4e-4,
    # ric 6.8e-3, rot 1.3e-2, vel 4.1e-4; contacts do not use the heading).
    end_bounds = {"root": 5e-4, "  yaw vel": 5e-4, "  xz vel": 3e-4, "  height": 1e-6,
                  "ric": 1e-2, "rot": 2e-2, "vel": 1e-3, "contact": 0.0}
    for name, bound in end_bounds.items():
        assert columns[f"all {len(ours)} rows"][name] <= bound, (name, columns[f"all {len(ours)} rows"][name])


@pytest.fixture
def print_table(capsys):
    """Print {column: {row: value}} as a table, visible in pytest's output even when the test passes."""
    def show(title, columns):
        rows = list(next(iter(columns.values())))
        lines = ["", title, f"{'block':<12}" + "".join(f"{c:>26}" for c in columns)]
        lines += [f"{r:<12}" + "".join(f"{col[r]:>26.2e}" for col in columns.values()) for r in rows]
        with capsys.disabled():
            print("\n".join(lines))
    return show


def physically_moved(joints, yaw=1.1, shift=(2.0, 0.3, -1.0), scale=1.2):
    """The same motion turned about +Y, moved, and performed by a uniformly bigger person."""
    turn = rot.axis_angle_to_quaternion(np.array([0.0, 1.0, 0.0]), yaw)
    return rot.qrot(turn, np.asarray(joints, np.float64) * scale) + np.array(shift)


def test_features_ignore_placement_heading_and_body_size(humanml):
    _, joints = humanml
    moved = physically_moved(joints)
    np.testing.assert_allclose(features.canonicalize(moved), features.canonicalize(joints), atol=1e-12)
    np.testing.assert_allclose(features.joints_to_features(moved), features.joints_to_features(joints), atol=1e-10)


def test_features_round_trip_to_the_canonical_joints(humanml):
    _, joints = humanml
    canonical = features.canonicalize(physically_moved(joints))
    assert abs(canonical[..., 1].min()) < 1e-12 and np.abs(canonical[0, 0, [0, 2]]).max() < 1e-12
    bones = np.linalg.norm(canonical[:, 1:] - canonical[:, list(skeleton.PARENTS[1:])], axis=-1)
    np.testing.assert_allclose(bones, np.broadcast_to(skeleton.REFERENCE_BONE_LENGTHS[1:], bones.shape), atol=1e-12)

    recovered = features.features_to_joints(features.features_from_canonical(canonical))
    np.testing.assert_allclose(recovered, canonical[:-1], atol=1e-10)


def test_rotation_block_rebuilds_the_bone_directions(humanml):
    """FK of the 6D locals along HumanML3D's rotation parents points each bone like the canonical pose."""
    _, joints = humanml
    canonical = features.canonicalize(joints)
    vecs = features.features_from_canonical(canonical)
    root_quat, _ = features.recover_root(vecs)
    local = rot.cont6d_to_matrix(vecs[:, skeleton.ROT].reshape(len(vecs), -1, 6))  # (T-1, 21, 3, 3)
    global_rot = [rot.quaternion_to_matrix(root_quat)]
    for j in range(1, skeleton.NUM_JOINTS):
        global_rot.append(global_rot[features.ROTATION_PARENTS[j]] @ local[:, j - 1])
    bone_dirs = np.stack([global_rot[j] @ skeleton.RAW_OFFSETS[j] for j in range(1, skeleton.NUM_JOINTS)], 1)
    bones = canonical[:-1, 1:] - canonical[:-1, list(skeleton.PARENTS[1:])]
    np.testing.assert_allclose(bone_dirs, bones / np.linalg.norm(bones, axis=-1, keepdims=True), atol=1e-9)


def test_mirror_twice_is_identity(humanml):
    _, joints = humanml
    np.testing.assert_array_equal(features.mirror_joints(features.mirror_joints(joints)), joints)
    assert not np.allclose(features.mirror_joints(joints), joints)


def test_mirrored_motion_keeps_its_forward_travel_and_swaps_the_feet(humanml):
    _, joints = humanml
    canonical = features.canonicalize(joints)
    mirrored = features.mirror_joints(canonical)
    vecs, mirrored_vecs = features.features_from_canonical(canonical), features.features_from_canonical(mirrored)

    contacts = vecs[:, skeleton.CONTACT]
    np.testing.assert_array_equal(mirrored_vecs[:, skeleton.CONTACT], contacts[:, [2, 3, 0, 1]])
    assert (contacts[:, :2] != contacts[:, 2:]).any()  # the swap is visible in this motion

    # Same travel along +Z (forward), opposite sideways travel and turning.
    root, mirrored_root = features.features_to_joints(vecs)[:, 0], features.features_to_joints(mirrored_vecs)[:, 0]
    np.testing.assert_allclose(mirrored_root, root * [-1, 1, 1], atol=1e-12)
    np.testing.assert_allclose(mirrored_vecs[:, skeleton.ROOT_YAW_VELOCITY], -vecs[:, skeleton.ROOT_YAW_VELOCITY],
                               atol=1e-12)
    for block, first_joint in ((skeleton.RIC, 1), (skeleton.VEL, 0)):
        per_joint = np.zeros((len(vecs), skeleton.NUM_JOINTS, 3))
        per_joint[:, first_joint:] = vecs[:, block].reshape(len(vecs), -1, 3)
        expected = features.mirror_joints(per_joint)[:, first_joint:].reshape(len(vecs), -1)
        np.testing.assert_allclose(mirrored_vecs[:, block], expected, atol=1e-12)


@pytest.mark.parametrize("sigma", [20.0, 2.5, 0.7])
@pytest.mark.parametrize("length", [5, 170])
def test_gaussian_filter_equals_scipy(sigma, length):
    x = np.random.default_rng(0).normal(size=(length, 3, 2))
    for axis in (0, 1, -1):
        expected = scipy_gaussian_filter1d(x, sigma, axis=axis, mode="nearest")
        np.testing.assert_allclose(features.gaussian_filter1d(x, sigma, axis=axis), expected, rtol=0, atol=1e-12)


def test_long_clip_gives_finite_features_and_its_own_contacts(humanml):
    _, joints = humanml
    long_clip = np.concatenate([joints, joints[::-1]] * 15)  # 5100 frames, as long as training clips get
    vecs = features.joints_to_features(long_clip)
    assert vecs.shape == (len(long_clip) - 1, skeleton.FEATURE_DIM) and np.isfinite(vecs).all()
    contacts = features.foot_contacts(features.canonicalize(long_clip))
    np.testing.assert_array_equal(vecs[:, skeleton.CONTACT], contacts)


def test_features_to_joints_batches_over_leading_dims(humanml):
    vecs, _ = humanml
    batch = np.stack([vecs[:60], vecs[60:120]])  # (2, 60, 263)
    joints = features.features_to_joints(batch)
    np.testing.assert_array_equal(joints[1], features.features_to_joints(vecs[60:120]))


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 21, 3)), "shape"),
    (np.zeros((1, 22, 3)), "frames >= 2"),
    (np.full((4, 22, 3), np.nan), "not finite"),
    (np.zeros((4, 22, 3)), "coincide"),
])
def test_bad_joints_raise_user_error(bad, message):
    with pytest.raises(UserError, match=message):
        features.joints_to_features(bad)


def test_bad_features_raise_user_error():
    with pytest.raises(UserError, match="263"):
        features.features_to_joints(np.zeros((10, 251)))
