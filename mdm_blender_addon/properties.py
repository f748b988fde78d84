"""Add-on data stored in the .blend: the scene's motion list and settings, and each armature's bone map."""
import bpy
from bpy.props import (
    BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty,
)

# The loaded model's `info` (actions, frame range, conditions), filled by mdm.check_backend and by every finished
# generation; the sidebar reads it. Module-level: it describes the backend process, not the .blend.
MODEL_INFO = {}
_ACTION_ITEMS = []  # Blender needs the enum strings kept alive while the UI shows them


NO_ACTION = "NONE"  # the dropdown's "None" (an enum item needs a non-empty identifier to be selectable)


def action_items(_self, _context):
    _ACTION_ITEMS[:] = [(NO_ACTION, "None", "No action: the prompt alone conditions the motion")] + [
        (name, name.replace("_", " ").title(), f"Action '{name}' of the loaded model")
        for name in MODEL_INFO.get("actions", [])]
    return _ACTION_ITEMS


def chosen_action(settings) -> str:
    """The action picked in the scene's dropdown, '' for none."""
    return "" if settings.action == NO_ACTION else settings.action


class MDM_PG_motion(bpy.types.PropertyGroup):
    """One motion in the scene's list. The joint positions themselves live in the ID property `joints`.

    `joints` is a flat float32 array of frames x 22 x 3 (metres, HumanML3D Y-up): an ID property array is stored
    as raw binary in the .blend, survives save/reload and undo, and needs no extra datablock (a FloatVectorProperty
    is limited to 32 items; a text datablock would need encoding and clutters the file).
    """
    # `name` is inherited from PropertyGroup and shown in the list.
    frames: IntProperty(name="Frames", min=0)
    fps: FloatProperty(name="FPS", min=0.0)
    origin: EnumProperty(
        name="Origin",
        items=(("FILE", "File", "Imported from a motion file"),
               ("GENERATED", "Generated", "Generated from a text prompt")),
    )
    source_path: StringProperty(name="Source File", subtype='FILE_PATH')
    prompt: StringProperty(name="Prompt")
    seed: IntProperty(name="Seed")
    sample: IntProperty(name="Sample", description="Index of this motion among the samples of its source")
    meta: StringProperty(name="Metadata", description="The source's own description, as JSON")


class MDM_PG_bone_map_item(bpy.types.PropertyGroup):
    """One row of a bone map: a HumanML3D joint (`name`) and the armature bone that follows it ('' = unmapped)."""
    bone: StringProperty(name="Bone", description="Bone of this armature driven by the joint")


class MDM_PG_rig(bpy.types.PropertyGroup):
    """Per-armature settings (on the Armature datablock, so every object sharing the bones shares the map)."""
    bone_map: CollectionProperty(type=MDM_PG_bone_map_item)
    bone_map_index: IntProperty()
    preset: StringProperty(name="Preset", description="Bone-map preset last applied or detected")
    confidence: FloatProperty(name="Confidence", subtype='FACTOR', min=0.0, max=1.0,
                              description="Share of the joints the detected preset found on this armature")


def _is_armature(_self, ob):
    return ob.type == 'ARMATURE'


class MDM_PG_scene(bpy.types.PropertyGroup):
    motions: CollectionProperty(type=MDM_PG_motion)
    motion_index: IntProperty(name="Motion")
    target: PointerProperty(name="Target", type=bpy.types.Object, poll=_is_armature,
                            description="Armature that receives the baked motion")
    root_mode: EnumProperty(
        name="Root",
        items=(("MOTION", "Root Motion", "The hips bone travels with the motion"),
               ("IN_PLACE", "In Place", "Keep the height but drop the travel across the floor"),
               ("ROOT_BONE", "Root Bone", "The travel across the floor goes to a separate root bone")),
        default="MOTION",
    )
    root_bone: StringProperty(name="Root Bone", description="Bone that carries the travel across the floor")
    # Generate
    prompt: StringProperty(name="Prompt", description="What the person does, e.g. 'a person jumps forward'")
    action: EnumProperty(name="Action", items=action_items,
                         description="An action the loaded model knows (Check Backend lists them)")
    seconds: FloatProperty(name="Length", default=4.0, min=0.1, soft_max=30.0, unit='TIME_ABSOLUTE',
                           description="Length of the motion (longer than the model's window: generated in "
                                       "chained windows)")
    samples: IntProperty(name="Variations", default=3, min=1, max=16, description="How many motions to generate")
    seed: IntProperty(name="Seed", default=0, min=0, description="Same seed, same settings: the same motions")
    guidance: FloatProperty(name="Guidance", default=2.5, min=0.0, soft_max=10.0,
                            description="How strongly the motion follows the prompt (classifier-free guidance)")
    quality: EnumProperty(
        name="Quality",
        items=(("DRAFT", "Draft", "DDIM with a fifth of the model's steps: fast previews"),
               ("FINAL", "Final", "Every step the model was trained with")),
        default="FINAL",
    )
    steps: IntProperty(name="Steps", default=0, min=0, description="Sampling steps (0: from the quality preset)")
    plant_feet: BoolProperty(name="Plant Feet", default=True,
                             description="A foot on the floor does not slide: the hips travel only as far as the "
                                         "steps carry them, and between in-between keys a planted foot is held "
                                         "(off: the model's own motion, which can glide)")
    literal_prompt: BoolProperty(name="Literal Prompt", default=False,
                                 description="Condition on the prompt as typed (off: on the nearest caption the "
                                             "model was trained on, for models that ship their captions, such as "
                                             "the embedded one: a small model follows those far more reliably)")
    # In-between
    inbetween_prompt: StringProperty(name="Prompt", description="Optional: what happens between the keys, e.g. "
                                     "'a person jumps' (empty: the keys alone shape the motion)")
    hold_root: BoolProperty(name="Hold Root", default=True,
                            description="The hips pass exactly through every keyed position (off: the model "
                                        "chooses the path between keys, the keyed poses are still met)")


class MDM_PG_object(bpy.types.PropertyGroup):
    """What a bake replaced on this object, so that `mdm.restore_action` can bring it back."""
    previous_action: PointerProperty(type=bpy.types.Action)
    previous_slot: StringProperty(description="Identifier of the previous action's slot (Blender 4.4+)")
    stash_track: StringProperty(description="NLA track that holds the stashed previous action")
    baked_action: PointerProperty(type=bpy.types.Action)


CLASSES = (MDM_PG_motion, MDM_PG_bone_map_item, MDM_PG_rig, MDM_PG_scene, MDM_PG_object)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.mdm = PointerProperty(type=MDM_PG_scene)
    bpy.types.Armature.mdm = PointerProperty(type=MDM_PG_rig)
    bpy.types.Object.mdm = PointerProperty(type=MDM_PG_object)


def unregister():
    del bpy.types.Object.mdm
    del bpy.types.Armature.mdm
    del bpy.types.Scene.mdm
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

