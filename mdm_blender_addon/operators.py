"""Operators (thin): check input, call the bpy-free planning and the bake, report errors as UserError messages.

Every operator runs synchronously, so scripts and background mode can call them directly.
"""
import functools

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import bake, motions, rig
from .backend.errors import UserError


def _target(context, name: str):
    """The armature named `name`, or the scene's target when `name` is empty; UserError if there is none."""
    ob = bpy.data.objects.get(name) if name else context.scene.mdm.target
    if ob is None:
        raise UserError(f"no object named '{name}'" if name else "no target armature: pick one in the Motion tab")
    if ob.type != 'ARMATURE':
        raise UserError(f"'{ob.name}' is a {ob.type.lower()}, not an armature")
    return ob


def reports_user_errors(execute):
    """Turn a UserError raised by `execute` into an error report and CANCELLED (nothing was changed yet)."""
    @functools.wraps(execute)
    def wrapper(self, context):
        try:
            return execute(self, context)
        except UserError as err:
            self.report({'ERROR'}, str(err))
            return {'CANCELLED'}
    return wrapper


class MDM_OT_import_motion(bpy.types.Operator, ImportHelper):
    """Import a motion (BVH, or .npz with a 'joints' array) into the scene's motion list"""
    bl_idname = "mdm.import_motion"
    bl_label = "Import Motion"
    bl_options = {'REGISTER', 'UNDO'}
    filter_glob: StringProperty(default="*.bvh;*.npz", options={'HIDDEN'})
    bvh_fps: FloatProperty(name="BVH Frame Rate", min=0.0, default=0.0,
                           description="True frame rate of a BVH file (0: trust its header; CMU conversions "
                                       "often state 120 for 60 fps captures)")
    bvh_skip: IntProperty(name="Skip Frames", min=0, description="Leading BVH frames to drop (T-pose)")

    @reports_user_errors
    def execute(self, context):
        read = motions.read_motion_file(self.filepath, self.bvh_fps or None, self.bvh_skip)
        for motion in read:
            motions.add_to_scene(context.scene, motion)
        self.report({'INFO'}, f"Imported {len(read)} motion(s) from {bpy.path.basename(self.filepath)}")
        return {'FINISHED'}


class MDM_OT_remove_motion(bpy.types.Operator):
    """Remove the active motion from the list"""
    bl_idname = "mdm.remove_motion"
    bl_label = "Remove Motion"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        settings = context.scene.mdm
        if not 0 <= settings.motion_index < len(settings.motions):
            cls.poll_message_set("The motion list is empty")
            return False
        return True

    def execute(self, context):
        settings = context.scene.mdm
        settings.motions.remove(settings.motion_index)
        settings.motion_index = min(settings.motion_index, len(settings.motions) - 1)
        return {'FINISHED'}


class MDM_OT_add_skeleton(bpy.types.Operator):
    """Add a 22-bone armature in HumanML3D (SMPL) proportions, T-pose, bones named after the joints"""
    bl_idname = "mdm.add_skeleton"
    bl_label = "Add SMPL Skeleton"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        if context.mode != 'OBJECT':
            cls.poll_message_set("Switch to Object Mode first")
            return False
        return True

    def execute(self, context):
        ob = rig.add_smpl_armature(context)
        rig.store_detection(ob, rig.detect(ob))
        context.scene.mdm.target = ob
        return {'FINISHED'}


class MDM_OT_detect_bone_map(bpy.types.Operator):
    """Fill the target's bone map from its bone names (best matching preset)"""
    bl_idname = "mdm.detect_bone_map"
    bl_label = "Detect Bone Map"
    bl_options = {'REGISTER', 'UNDO'}
    target: StringProperty(name="Target", description="Armature object (default: the scene's target)")

    @reports_user_errors
    def execute(self, context):
        ob = _target(context, self.target)
        detection = rig.detect(ob)
        rig.store_detection(ob, detection)
        self.report({'INFO'}, f"Bone map: {detection.preset} ({detection.confidence:.0%} of joints found)")
        return {'FINISHED'}


class MDM_OT_apply_bone_map_preset(bpy.types.Operator):
    """Fill the target's bone map from a preset"""
    bl_idname = "mdm.apply_bone_map_preset"
    bl_label = "Apply Bone Map Preset"
    bl_options = {'REGISTER', 'UNDO'}
    preset: EnumProperty(name="Preset", items=rig.PRESET_ITEMS)
    target: StringProperty(name="Target", description="Armature object (default: the scene's target)")

    @reports_user_errors
    def execute(self, context):
        ob = _target(context, self.target)
        rig.store_detection(ob, rig.apply_preset(ob, self.preset))
        return {'FINISHED'}


class MDM_OT_bake(bpy.types.Operator):
    """Bake a motion from the list onto the target armature as a new action (the current one is stashed)"""
    bl_idname = "mdm.bake"
    bl_label = "Bake Motion"
    bl_options = {'REGISTER', 'UNDO'}
    target: StringProperty(name="Target", description="Armature object (default: the scene's target)")
    sample: IntProperty(name="Motion", default=-1, min=-1, description="Index in the motion list (-1: active)")

    @classmethod
    def poll(cls, context):
        settings = context.scene.mdm
        if not settings.motions:
            cls.poll_message_set("Import or generate a motion first")
            return False
        if context.mode not in {'OBJECT', 'POSE'}:
            cls.poll_message_set("Switch to Object or Pose Mode first")
            return False
        return True

    @reports_user_errors
    def execute(self, context):
        scene = context.scene
        settings = scene.mdm
        index = settings.motion_index if self.sample < 0 else self.sample
        ob = _target(context, self.target)
        if not 0 <= index < len(settings.motions):
            raise UserError(f"no motion #{index}: the list has {len(settings.motions)}")
        motion = motions.motion_from_item(settings.motions[index])
        bone_map, detection = rig.bone_map_for_bake(ob)
        channels = bake.plan_channels(ob, motion, scene, bone_map, settings.root_mode, settings.root_bone)
        # Everything above only reads; from here on the scene changes.
        if detection is not None:
            rig.store_detection(ob, detection)  # the map used, now editable in the sidebar
        action = bake.bake(ob, motions.action_name(motion), channels, scene.frame_current,
                           motions.motion_metadata(motion))
        self.report({'INFO'}, f"Baked '{action.name}' onto {ob.name}: {len(channels)} channels")
        return {'FINISHED'}


class MDM_OT_restore_action(bpy.types.Operator):
    """Bring back the action the last bake replaced on the target (the baked action is kept)"""
    bl_idname = "mdm.restore_action"
    bl_label = "Restore Previous Action"
    bl_options = {'REGISTER', 'UNDO'}
    target: StringProperty(name="Target", description="Armature object (default: the scene's target)")

    @classmethod
    def poll(cls, context):
        ob = context.scene.mdm.target
        if ob is None or not bake.can_restore(ob):
            cls.poll_message_set("The target's current action is not a bake from this add-on")
            return False
        return True

    @reports_user_errors
    def execute(self, context):
        ob = _target(context, self.target)
        if not bake.can_restore(ob):
            raise UserError(f"'{ob.name}' plays no action baked by this add-on; nothing to restore")
        bake.restore_previous_action(ob)
        return {'FINISHED'}


register, unregister = bpy.utils.register_classes_factory((
    MDM_OT_import_motion, MDM_OT_remove_motion, MDM_OT_add_skeleton, MDM_OT_detect_bone_map,
    MDM_OT_apply_bone_map_preset, MDM_OT_bake, MDM_OT_restore_action,
))
