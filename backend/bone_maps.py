"""Bone-map presets for common humanoid rigs, and detection of the preset (or a hierarchy-based map) for a rig.

A bone map is {joint name of `skeleton.JOINT_NAMES`: bone name}, the input of `retarget.retarget`.

Which bones a preset drives, and why:
- Rigify metarig: the deform chain itself (spine .. spine.006, thigh/shin/foot/toe, shoulder/upper_arm/forearm/
  hand). spine.005 (upper neck) is left unmapped: it follows spine.004 rigidly.
- A generated Rigify rig (`rigify_rig`): its ORG- bones, the metarig's bones copied, mark the joints, but they
  and the DEF- bones follow constraints (keys on them would be overwritten), so the keys go onto the controls
  that drive them (`CONTROL_RIGS`): the FK controls (spine_fk .. spine_fk.003, neck, head, thigh_fk, shin_fk,
  foot_fk, toe_fk, shoulder, upper_arm_fk, forearm_fk, hand_fk) take their mapped bone's joint rotation; `torso`
  takes the travel (it pivots at the belly, off every joint: its rotation stays at rest, as do `hips` and
  `chest`, which the FK spine follows through mechanism bones); and switches are keyed that make the deformation
  follow FK (IK_FK 1 and FK_limb_follow 0 on the arm and leg parents, neck_follow and head_follow 1 on the torso).
- Mixamo (`mixamorig:` namespace or none), UE4/UE5 mannequin, Reallusion CC (`CC_Base_`), CMU BVH imports
  (MotionBuilder, Daz, 3ds Max and raw ASF names as Blender's BVH importer names the bones), SMPL (`L_Hip`) and
  SMPL-X / HumanML3D (`left_hip`, our own skeleton's names): their joint bones one to one. Twist, finger, toe
  and face bones stay unmapped and follow their parents. Where a rig has a root bone above a bone that
  parents both the legs and the spine (CC_Base_Hip above CC_Base_Pelvis), the pelvis is that common parent.

Names are compared without case, separators (`_ . - space`) and namespace (`mixamorig:`), so `LeftUpLeg`,
`mixamorig:LeftUpLeg` and `left_up_leg` all match.
"""
import re
from dataclasses import dataclass

import numpy as np

from . import skeleton
from .errors import UserError
from .retarget import REQUIRED_JOINTS, Controls


def _sided(center: dict, sided: dict, tokens: tuple) -> dict:
    """A full map from the centre joints and `sided` templates ("{}" is replaced by the left/right token)."""
    mapping = dict(center)
    for side, token in zip(skeleton.SIDES, tokens):
        mapping.update({f"{side}_{joint}": name.format(token) for joint, name in sided.items()})
    return {joint: mapping[joint] for joint in skeleton.JOINT_NAMES if joint in mapping}


LIMBS = ("hip", "knee", "ankle", "foot", "collar", "shoulder", "elbow", "wrist")

RIGIFY_METARIG = _sided(
    {"pelvis": "spine", "spine1": "spine.001", "spine2": "spine.002", "spine3": "spine.003", "neck": "spine.004",
     "head": "spine.006"},
    {"hip": "thigh.{}", "knee": "shin.{}", "ankle": "foot.{}", "foot": "toe.{}", "collar": "shoulder.{}",
     "shoulder": "upper_arm.{}", "elbow": "forearm.{}", "wrist": "hand.{}"}, ("L", "R"))

UNREAL_LIMBS = {"hip": "thigh_{}", "knee": "calf_{}", "ankle": "foot_{}", "foot": "ball_{}", "collar": "clavicle_{}",
                "shoulder": "upperarm_{}", "elbow": "lowerarm_{}", "wrist": "hand_{}"}

PRESETS = {
    "smplx": {name: name for name in skeleton.JOINT_NAMES},  # also our own 22-bone skeleton
    "smpl": _sided({"pelvis": "Pelvis", "spine1": "Spine1", "spine2": "Spine2", "spine3": "Spine3", "neck": "Neck",
                    "head": "Head"}, {limb: "{}_" + limb.capitalize() for limb in LIMBS}, ("L", "R")),
    "rigify_metarig": RIGIFY_METARIG,
    # Its ORG- bones are the metarig's bones, copied into the generated rig: they mark the joints (CONTROL_RIGS).
    "rigify_rig": {joint: f"ORG-{bone}" for joint, bone in RIGIFY_METARIG.items()},
    "mixamo": _sided(
        {"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck",
         "head": "Head"},
        {"hip": "{}UpLeg", "knee": "{}Leg", "ankle": "{}Foot", "foot": "{}ToeBase", "collar": "{}Shoulder",
         "shoulder": "{}Arm", "elbow": "{}ForeArm", "wrist": "{}Hand"}, ("Left", "Right")),
    # UE5's mannequin has five spine and two neck bones; listed before UE4's so that a tie goes to it.
    "ue5_mannequin": _sided(
        {"pelvis": "pelvis", "spine1": "spine_01", "spine2": "spine_03", "spine3": "spine_05", "neck": "neck_01",
         "head": "head"}, UNREAL_LIMBS, ("l", "r")),
    "ue4_mannequin": _sided(
        {"pelvis": "pelvis", "spine1": "spine_01", "spine2": "spine_02", "spine3": "spine_03", "neck": "neck_01",
         "head": "head"}, UNREAL_LIMBS, ("l", "r")),
    "reallusion_cc": _sided(
        {"pelvis": "CC_Base_Hip", "spine1": "CC_Base_Waist", "spine2": "CC_Base_Spine01",
         "spine3": "CC_Base_Spine02", "neck": "CC_Base_NeckTwist01", "head": "CC_Base_Head"},
        {"hip": "CC_Base_{}_Thigh", "knee": "CC_Base_{}_Calf", "ankle": "CC_Base_{}_Foot",
         "foot": "CC_Base_{}_ToeBase", "collar": "CC_Base_{}_Clavicle", "shoulder": "CC_Base_{}_Upperarm",
         "elbow": "CC_Base_{}_Forearm", "wrist": "CC_Base_{}_Hand"}, ("L", "R")),
    # CMU BVH conversions, as Blender's BVH importer names the bones (mocap README "Skeletons"). Their lower back
    # and lower neck bones start where the hips and the chest do, so those joints map to the next bone up.
    "cmu_mb": _sided(
        {"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "neck": "Neck1", "head": "Head"},
        {"hip": "{}UpLeg", "knee": "{}Leg", "ankle": "{}Foot", "foot": "{}ToeBase", "collar": "{}Shoulder",
         "shoulder": "{}Arm", "elbow": "{}ForeArm", "wrist": "{}Hand"}, ("Left", "Right")),
    "cmu_daz": _sided(
        {"pelvis": "hip", "spine1": "abdomen", "spine3": "chest", "neck": "neck", "head": "head"},
        {"hip": "{}Thigh", "knee": "{}Shin", "ankle": "{}Foot", "collar": "{}Collar", "shoulder": "{}Shldr",
         "elbow": "{}ForeArm", "wrist": "{}Hand"}, ("l", "r")),
    "cmu_max": _sided(
        {"pelvis": "Hips", "spine1": "Chest", "spine2": "Chest2", "neck": "Neck", "head": "Head"},
        {"hip": "{}Hip", "knee": "{}Knee", "ankle": "{}Ankle", "foot": "{}Toe", "collar": "{}Collar",
         "shoulder": "{}Shoulder", "elbow": "{}Elbow", "wrist": "{}Wrist"}, ("Left", "Right")),
    "cmu_asf": _sided(
        {"pelvis": "hip", "spine1": "upperback", "spine2": "thorax", "neck": "upperneck", "head": "head"},
        {"hip": "{}femur", "knee": "{}tibia", "ankle": "{}foot", "foot": "{}toes", "collar": "{}clavicle",
         "shoulder": "{}humerus", "elbow": "{}radius", "wrist": "{}wrist"}, ("l", "r")),
}
MIN_CONFIDENCE = 0.5  # below this share of a preset's joints, the hierarchy fallback is tried

# A generated Rigify rig: its ORG- bones copy the FK or IK controls (by the IK_FK switch), the DEF- bones stretch
# between tweak controls that follow the ORG/FK chains. Keys go onto the FK controls; the torso carries the travel.
# The lower spine's FK controls hang upside down from the torso (spine_fk.001 pivots at spine.002, spine_fk at
# spine.001, and the pelvis hangs from spine_fk): each still turns the segment below its pivot, which is the
# joint segment of its mapped bone, so each takes that joint's rotation.
RIGIFY_FK = {"spine": "spine_fk", "spine.001": "spine_fk.001", "spine.002": "spine_fk.002",
             "spine.003": "spine_fk.003", "spine.004": "neck", "spine.006": "head",
             **{f"{bone}.{side}": f"{bone}_fk.{side}" for side in "LR"
                for bone in ("thigh", "shin", "foot", "toe", "upper_arm", "forearm", "hand")},
             **{f"shoulder.{side}": f"shoulder.{side}" for side in "LR"}}
CONTROL_RIGS = {
    "rigify_rig": Controls(
        bones={f"ORG-{bone}": control for bone, control in RIGIFY_FK.items()},
        root="torso",
        parents={"MCH-torso.parent": "root"},  # an Armature constraint on root
        # Drivers read these (checked on 4.2 and 5.0): IK_FK 1 = the ORG chain copies the FK controls, not the IK
        # chain; FK_limb_follow 0 = the FK limb turns with the body instead of keeping its world rotation;
        # neck_follow and head_follow 1 = neck and head turn with the chest instead of keeping the torso's rotation.
        switches={**{(f"{limb}_parent.{side}", prop): value for limb in ("thigh", "upper_arm") for side in "LR"
                     for prop, value in (("IK_FK", 1.0), ("FK_limb_follow", 0.0))},
                  ("torso", "neck_follow"): 1.0, ("torso", "head_follow"): 1.0},
    ),
}


@dataclass(frozen=True)
class Detection:
    preset: str  # a PRESETS key, or "hierarchy" when the map was read from the bone tree
    mapping: dict  # {joint name: bone name}
    confidence: float  # 0..1: share of the preset's bones found (a hierarchy map: half the share of joints mapped)
    missing: tuple  # joint names with no bone


def normalize(name: str) -> str:
    """A bone name without namespace, case and separators: "mixamorig:Left_Up-Leg" -> "leftupleg"."""
    return re.sub(r"[\s_.\-]", "", name.rsplit(":", 1)[-1]).lower()


def apply_preset(preset: str, bone_names) -> dict:
    """{joint: actual bone name} for the preset's joints found in `bone_names` (name comparison: `normalize`)."""
    if preset not in PRESETS:
        raise UserError(f"unknown bone-map preset {preset!r}; known: {', '.join(PRESETS)}")
    actual = {normalize(n): n for n in bone_names}
    return {joint: actual[normalize(bone)] for joint, bone in PRESETS[preset].items() if normalize(bone) in actual}


def controls_for(bone_map: dict, bone_names):
    """The `retarget.Controls` that pose a rig whose mapped bones follow constraints (a generated Rigify rig: the
    map uses its ORG- bones), or None for a rig whose mapped bones are keyed themselves. UserError when the rig
    lacks the controls of its mapped bones."""
    names = set(bone_names)
    for preset, controls in CONTROL_RIGS.items():
        driven = [bone for bone in bone_map.values() if bone in controls.bones]
        if driven:
            needed = {controls.bones[b] for b in driven} | {controls.root, *(b for b, _ in controls.switches)}
            if needed - names:
                raise UserError(f"the mapped bones ({', '.join(driven[:3])}, ...) follow the controls of a {preset} "
                                f"preset rig, but the armature lacks {', '.join(sorted(needed - names))}: "
                                "regenerate the rig, or map the joints to bones that can be keyed")
            return controls
    return None


def detect(bone_names, parents=None, heads=None) -> Detection:
    """The best preset for a rig by its bone names, else (with `parents` and rest `heads`, armature space, Z-up) a
    map read from the bone tree (`map_by_hierarchy`).

    Raises UserError naming the missing joints when neither gives every joint `retarget` requires.
    """
    bone_names = list(bone_names)
    candidates = []  # max() keeps the first of equals: PRESETS order breaks ties
    for preset in PRESETS:
        mapping = apply_preset(preset, bone_names)
        missing = tuple(j for j in skeleton.JOINT_NAMES if j not in mapping)
        complete = not set(REQUIRED_JOINTS) & set(missing)
        share = len(mapping) / len(PRESETS[preset])
        candidates.append((complete, share, len(mapping), preset, mapping, missing))
    complete, confidence, _, preset, mapping, missing = max(candidates, key=lambda c: c[:3])
    if complete and confidence >= MIN_CONFIDENCE:
        return Detection(preset, mapping, confidence, missing)
    if parents is not None and heads is not None:
        tree_map = map_by_hierarchy(bone_names, parents, heads)
        if tree_map:
            missing = tuple(j for j in skeleton.JOINT_NAMES if j not in tree_map)
            return Detection("hierarchy", tree_map, 0.5 * len(tree_map) / skeleton.NUM_JOINTS, missing)
    lacking = [j for j in REQUIRED_JOINTS if j in missing]
    raise UserError(
        f"no bone map fits this armature: the closest preset, {preset}, has no bones for "
        f"{', '.join(lacking) or ', '.join(missing)}. Map those joints by hand (known presets: {', '.join(PRESETS)})"
    )


def map_by_hierarchy(bone_names, parents, heads) -> dict:
    """{joint: bone} from the bone tree and rest head positions (B, 3; Z-up, left on +X), or {} if not humanoid.

    The pelvis is the first bone (from the root down) with three branches: two ending low (legs) and one that
    splits three ways higher up (spine, then neck and two arms). In a leg the knee is the bone whose head is
    nearest half the leg's height; in an arm the wrist is the first bone with several children (fingers) or the
    leaf; the head is the first neck bone that branches or ends; leaf children along a chain (twist bones) are passed
    over. Left is the branch on +X.
    """
    heads = np.asarray(heads, dtype=float)
    children = [[] for _ in bone_names]
    for b, p in enumerate(parents):
        if p >= 0:
            children[p].append(b)

    def path(b):  # down the deepest branch to a leaf
        out = [b]
        while children[out[-1]]:
            out.append(max(children[out[-1]], key=lambda c: _depth(c, children)))
        return out

    def along(b, c, d):  # c's head lies inside the segment from b's head to d's (where a twist bone sits)
        segment, offset = heads[d] - heads[b], heads[c] - heads[b]
        length = np.linalg.norm(segment)
        t = offset @ segment / max(length**2, 1e-12)
        return 0.2 < t < 0.8 and np.linalg.norm(offset - t * segment) < 0.1 * length

    def single(b):  # down a chain until it branches (the hand's fingers) or ends, past twist bones along it
        out = [b]
        while children[out[-1]]:
            far = max(children[out[-1]], key=lambda c: np.linalg.norm(heads[c] - heads[out[-1]]))
            ahead = [c for c in children[out[-1]] if c == far or children[c] or not along(out[-1], c, far)]
            if len(ahead) > 1:
                break
            out.append(far)
        return out

    for pelvis in _breadth_first(parents, children):
        if len(children[pelvis]) < 3:
            continue
        lowest = {c: heads[path(c)].min(axis=0)[2] for c in children[pelvis]}
        legs = sorted(children[pelvis], key=lowest.get)[:2]
        spine = single(max(children[pelvis], key=lowest.get))
        top = spine[-1]
        if len(children[top]) < 3 or any(lowest[leg] >= heads[pelvis, 2] or len(path(leg)) < 3 for leg in legs):
            continue
        reach = {c: heads[path(c)][:, 2].max() for c in children[top]}
        neck = single(max(children[top], key=reach.get))
        arms = sorted((c for c in children[top] if c != neck[0]), key=lambda c: -abs(heads[path(c)][-1, 0]))[:2]
        mapping = {"pelvis": pelvis, "spine1": spine[0], "spine2": spine[len(spine) // 2], "spine3": top,
                   "neck": neck[0], "head": neck[-1]}
        if len(spine) < 3:
            del mapping["spine2"]
        by_x = lambda c: -heads[path(c)][-1, 0]  # noqa: E731  (leaf x: +X is the left side)
        for side, leg, arm in zip(skeleton.SIDES, sorted(legs, key=by_x), sorted(arms, key=by_x)):
            leg = path(leg)
            middle = (heads[leg[0], 2] + heads[leg, 2].min()) / 2
            knee = min(range(1, len(leg) - 1), key=lambda i: abs(heads[leg[i], 2] - middle))
            for name, i in (("hip", knee - 1), ("knee", knee), ("ankle", knee + 1), ("foot", knee + 2)):
                if i < len(leg):
                    mapping[f"{side}_{name}"] = leg[i]
            arm = single(arm)  # ends at the hand: the first bone with several children (fingers), or a leaf
            wrist = len(arm) - 1
            for name, i in (("collar", wrist - 3), ("shoulder", wrist - 2), ("elbow", wrist - 1), ("wrist", wrist)):
                if i >= 0:
                    mapping[f"{side}_{name}"] = arm[i]
        if all(j in mapping for j in REQUIRED_JOINTS):
            return {j: bone_names[mapping[j]] for j in skeleton.JOINT_NAMES if j in mapping}
    return {}


def _depth(b, children):
    return 1 + max((_depth(c, children) for c in children[b]), default=0)


def _breadth_first(parents, children):
    queue = [b for b, p in enumerate(parents) if p < 0]
    for b in queue:
        queue.extend(children[b])
    return queue
