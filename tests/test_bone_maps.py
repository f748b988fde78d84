"""Bone-map presets and detection, on the real bone names of the CMU BVH files and of the presets' rigs."""
import numpy as np
import pytest

from backend import bone_maps, skeleton
from backend.bvh import END_SITE, read_bvh
from backend.errors import UserError
from backend.retarget import REQUIRED_JOINTS
from conftest import MOCAP_DIR

BVH_FILES = {"cmu_mb": "mb_misc/02_01.bvh", "cmu_daz": "przestr/02_01.bvh", "reallusion_cc": "iclone/002_05.bvh"}


def bvh_skeleton(relative):
    """Bone names, parents and rest heads (Z-up) of a BVH file, End Sites dropped as Blender's importer does."""
    bvh = read_bvh(MOCAP_DIR / relative)
    keep = [i for i, n in enumerate(bvh.names) if not n.endswith(END_SITE)]
    index = {old: new for new, old in enumerate(keep)}
    parents = [index.get(bvh.parents[i], -1) for i in keep]
    heads = _rest_heads(bvh, keep) @ skeleton.HML_TO_BLENDER.T
    return [bvh.names[i] for i in keep], parents, heads


def _rest_heads(bvh, keep):
    heads = np.zeros((len(bvh.names), 3))
    for i, p in enumerate(bvh.parents):
        heads[i] = bvh.offsets[i] + (heads[p] if p >= 0 else 0)
    return heads[keep]


@pytest.mark.parametrize("preset", bone_maps.PRESETS)
def test_every_preset_finds_itself_under_other_spellings(preset):
    names = list(bone_maps.PRESETS[preset].values()) + ["extra_bone", "finger.01"]
    spellings = {"as is": names, "upper": [n.upper() for n in names],
                 "namespaced": [f"mixamorig:{n}" for n in names],
                 "separators": [n.replace("_", ".").replace(".", "-") for n in names]}
    for how, bones in spellings.items():
        found = bone_maps.detect(bones)
        assert found.confidence == 1.0, (preset, how)
        assert found.missing == tuple(j for j in skeleton.JOINT_NAMES if j not in bone_maps.PRESETS[preset])
        assert found.mapping == bone_maps.apply_preset(found.preset, bones)
        # the found map is this preset's bones, whichever preset name covers them
        assert [bones[names.index(bone_maps.PRESETS[preset][j])] for j in found.mapping] == \
            list(found.mapping.values()), (preset, how)


@pytest.mark.parametrize("family", BVH_FILES)
def test_cmu_bvh_files_detect_their_family(family):
    names, _, _ = bvh_skeleton(BVH_FILES[family])
    found = bone_maps.detect(names)
    print(f"{family}: {found.preset} confidence {found.confidence:.2f} missing {found.missing}")
    assert found.preset == family
    assert set(REQUIRED_JOINTS) <= set(found.mapping)


@pytest.mark.parametrize("family", ["cmu_mb", "cmu_daz"])
def test_hierarchy_fallback_on_renamed_bones(family):
    """With every bone renamed to a number, the bone tree and rest positions still give the preset's map."""
    names, parents, heads = bvh_skeleton(BVH_FILES[family])
    renamed = [f"bone{i:03d}" for i in range(len(names))]
    found = bone_maps.detect(renamed, parents, heads)
    assert found.preset == "hierarchy" and 0 < found.confidence <= 0.5
    expected = bone_maps.apply_preset(family, names)
    agree = [j for j in expected if found.mapping.get(j) == renamed[names.index(expected[j])]]
    print(f"{family}: hierarchy map agrees with the preset on {len(agree)}/{len(expected)} joints")
    assert set(REQUIRED_JOINTS) <= set(agree)


@pytest.mark.parametrize("family", ["cmu_mb", "cmu_daz"])
def test_hierarchy_fallback_passes_twist_bones(family):
    """Renamed rigs often carry twist bones: leaves whose heads sit along the upper arm, forearm, thigh and shin.
    They are passed over; the map is the one without them."""
    names, parents, heads = bvh_skeleton(BVH_FILES[family])
    renamed = [f"bone{i:03d}" for i in range(len(names))]
    plain = bone_maps.detect(renamed, parents, heads).mapping
    index = {name: i for i, name in enumerate(renamed)}
    for joint, child in (("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder",
                         "right_elbow"), ("right_elbow", "right_wrist"), ("left_hip", "left_knee")):
        bone, end = index[plain[joint]], index[plain[child]]
        renamed.append(f"twist{len(renamed):03d}")
        parents = [*parents, bone]
        heads = np.concatenate([heads, [(heads[bone] + heads[end]) / 2]])
    assert bone_maps.detect(renamed, parents, heads).mapping == plain


def test_unreal_mannequins_are_told_apart():
    ue4 = list(bone_maps.PRESETS["ue4_mannequin"].values())
    ue5 = ue4 + ["spine_04", "spine_05", "neck_02"]
    assert bone_maps.detect(ue4).preset == "ue4_mannequin"
    assert bone_maps.detect(ue5).preset == "ue5_mannequin"


def test_no_fit_names_the_missing_joints():
    names = ["Hips", "Spine", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot"]
    with pytest.raises(UserError, match="left_shoulder.*right_wrist"):
        bone_maps.detect(names)
    with pytest.raises(UserError, match="unknown bone-map preset"):
        bone_maps.apply_preset("maya", names)


def test_normalize():
    assert bone_maps.normalize("mixamorig:Left_Up-Leg") == bone_maps.normalize("leftupleg") == "leftupleg"
    assert bone_maps.normalize("thigh.L") == bone_maps.normalize("Thigh_l")


def test_generated_rigify_rig_is_keyed_through_its_controls():
    """The generated-rig preset maps the joints to ORG- bones, each of which has a control to key; other presets key
    their own bones; a rig without the controls is refused, naming the missing ones."""
    mapping, controls = bone_maps.PRESETS["rigify_rig"], bone_maps.CONTROL_RIGS["rigify_rig"]
    assert set(mapping.values()) == set(controls.bones)
    rig = [*mapping.values(), *controls.bones.values(), controls.root, *(bone for bone, _ in controls.switches)]
    assert bone_maps.controls_for(mapping, rig) is controls
    assert bone_maps.controls_for(bone_maps.PRESETS["rigify_metarig"], bone_maps.PRESETS["rigify_metarig"].values()) \
        is None
    with pytest.raises(UserError, match="lacks thigh_fk.L, torso"):
        bone_maps.controls_for(mapping, [bone for bone in rig if bone not in ("thigh_fk.L", "torso")])
