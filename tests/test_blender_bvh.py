"""Our BVH writer read by Blender's own importer (real bpy): CMU clip -> 22 joints -> BVH -> Blender -> same joints."""
import numpy as np
import pytest
from conftest import MOCAP_DIR

from backend import skeleton
from backend.bvh import forward_kinematics, read_bvh, write_bvh
from backend.mocap import load_clip

pytestmark = pytest.mark.blender
TOLERANCE = 1e-3  # metres


@pytest.fixture(scope="module")
def bpy():
    import bpy  # imported here: bpy can be imported once per process, and only Blender tests need it

    return bpy


def blender_joints(bpy, bvh_path):
    """(T, 22, 3) world head positions of the 22 pose bones at every frame after Blender's BVH import, Y-up."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_anim.bvh(filepath=str(bvh_path), update_scene_fps=True, update_scene_duration=True)
    armature = bpy.context.object
    scene = bpy.context.scene
    num_frames = read_bvh(bvh_path).num_frames
    assert scene.render.fps == skeleton.FPS and scene.frame_end >= num_frames
    heads = np.empty((num_frames, skeleton.NUM_JOINTS, 3))
    for frame in range(num_frames):
        scene.frame_set(1 + frame)  # the importer keys BVH frame 0 on scene frame 1
        world = np.array(armature.matrix_world)
        local = np.array([armature.pose.bones[name].head for name in skeleton.JOINT_NAMES])  # (22, 3)
        heads[frame] = local @ world[:3, :3].T + world[:3, 3]
    return heads @ skeleton.HML_TO_BLENDER  # Blender (x, -z, y) back to Y-up (x, y, z)


@pytest.mark.parametrize("clip, fps, skip, exact", [
    ("przestr/07_01.bvh", 120, 1, False),  # cmu_daz: one rigid skeleton, rotations reproduce it
    ("mb_misc/02_01.bvh", 120, 1, True),  # cmu_mb: needs position channels on spine1, neck and collars
    ("iclone/006_09.bvh", 59.999, 0, True),  # cmu_cc: needs them on spine1 and head
])
def test_blender_reads_our_bvh_back_to_the_original_joints(bpy, tmp_path, clip, fps, skip, exact):
    joints = load_clip(MOCAP_DIR / clip, fps=fps, skip=skip).joints
    write_bvh(tmp_path / "clip.bvh", joints, skeleton.FPS, exact=exact)
    error = np.linalg.norm(blender_joints(bpy, tmp_path / "clip.bvh") - joints, axis=-1)
    print(f"{clip} exact={exact}: Blender round trip max error {error.max() * 1000:.4f} mm over {len(joints)} frames")
    assert error.max() < TOLERANCE


def test_blender_agrees_with_our_reader_on_rotation_only_cmu_export(bpy, tmp_path):
    # Rotations alone cannot follow CMU's own skeleton (LowerBack, Neck turn bones the 22-joint body has no joint
    # for); Blender must still read exactly what we wrote, and the legs stay exact.
    joints = load_clip(MOCAP_DIR / "mb_misc" / "02_01.bvh", fps=120, skip=1).joints
    write_bvh(tmp_path / "clip.bvh", joints, skeleton.FPS)
    written = read_bvh(tmp_path / "clip.bvh")
    ours = forward_kinematics(written)[0][:, [written.index(n) for n in skeleton.JOINT_NAMES]]
    blender = blender_joints(bpy, tmp_path / "clip.bvh")
    to_original = np.linalg.norm(blender - joints, axis=-1)
    legs = [skeleton.JOINT_INDEX[f"{s}_{j}"] for s in ("left", "right") for j in ("hip", "knee", "ankle", "foot")]
    print(f"mb_misc/02_01.bvh rotations only: Blender vs our FK {np.abs(blender - ours).max() * 1000:.4f} mm; vs "
          f"original joints {to_original.max() * 1000:.1f} mm, legs {to_original[:, legs].max() * 1000:.4f} mm")
    assert np.abs(blender - ours).max() < TOLERANCE
    assert to_original[:, legs].max() < TOLERANCE
