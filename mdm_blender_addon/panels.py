"""The "Motion" tab of the 3D view's sidebar: generate, in-between, motion list, target rig and bone map, bake."""
import json

import bpy

from . import motions, operators, properties


class MDM_UL_motions(bpy.types.UIList):
    def draw_item(self, _context, layout, _data, item, _icon, _active_data, _active_prop, _index):
        icon = 'TEXT' if item.origin == 'GENERATED' else 'FILE'
        row = layout.row()
        row.prop(item, "name", text="", emboss=False, icon=icon)
        row.label(text=f"{item.frames} @ {item.fps:g} fps")


class MDM_UL_bone_map(bpy.types.UIList):
    def draw_item(self, _context, layout, data, item, _icon, _active_data, _active_prop, _index):
        # `data` is the Armature's mdm settings; its owner holds the bones to search.
        row = layout.split(factor=0.4)
        row.label(text=item.name, icon='CHECKMARK' if item.bone else 'BLANK1')
        row.prop_search(item, "bone", data.id_data, "bones", text="")


class MotionTab:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Motion"


def draw_job(layout) -> bool:
    """The running job's progress bar and a cancel button; False when no job runs."""
    job = operators.ACTIVE["job"]
    if job is None:
        return False
    row = layout.row(align=True)
    row.progress(factor=job.progress, type='BAR', text=job.status_text())
    row.operator("mdm.cancel_job", text="", icon='CANCEL')
    return True


class MDM_PT_generate(MotionTab, bpy.types.Panel):
    bl_label = "Generate"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.mdm
        layout.prop(settings, "prompt", text="")
        if properties.MODEL_INFO.get("actions"):
            layout.prop(settings, "action")
        column = layout.column(align=True)
        column.prop(settings, "seconds")
        column.prop(settings, "samples")
        column.prop(settings, "seed")
        column.prop(settings, "guidance")
        row = layout.row(align=True)
        row.prop(settings, "quality", expand=True)
        row.prop(settings, "steps", text="Steps")
        layout.prop(settings, "plant_feet")
        layout.prop(settings, "literal_prompt")
        if draw_job(layout):
            return
        op = layout.operator("mdm.generate", icon='PLAY')
        op.prompt, op.action = settings.prompt, properties.chosen_action(settings)
        op.seconds, op.samples = settings.seconds, settings.samples
        op.seed, op.guidance, op.quality, op.steps = settings.seed, settings.guidance, settings.quality, \
            settings.steps
        op.plant_feet, op.literal_prompt = settings.plant_feet, settings.literal_prompt
        if settings.target is not None:
            layout.label(text=f"The first variation is baked onto {settings.target.name}", icon='INFO')


class MDM_PT_inbetween(MotionTab, bpy.types.Panel):
    bl_label = "In-between"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.mdm
        layout.label(text="Key poses on the target rig, select the keys, then:")
        layout.prop(settings, "inbetween_prompt", text="", placeholder="Optional prompt")
        row = layout.row(align=True)
        row.prop(settings, "hold_root")
        row.prop(settings, "plant_feet")
        if draw_job(layout):
            return
        op = layout.operator("mdm.inbetween", icon='IPO_EASE_IN_OUT')
        op.prompt, op.seed, op.guidance = settings.inbetween_prompt, settings.seed, settings.guidance
        op.hold_root, op.plant_feet = settings.hold_root, settings.plant_feet


class MDM_PT_motions(MotionTab, bpy.types.Panel):
    bl_label = "Motions"

    def draw(self, context):
        settings = context.scene.mdm
        row = self.layout.row()
        row.template_list("MDM_UL_motions", "", settings, "motions", settings, "motion_index", rows=4)
        column = row.column(align=True)
        column.operator("mdm.import_motion", text="", icon='IMPORT')
        column.operator("mdm.remove_motion", text="", icon='REMOVE')
        if 0 <= settings.motion_index < len(settings.motions):
            motion = settings.motions[settings.motion_index]
            if motion.origin == 'GENERATED':
                self.layout.label(text=f"\"{motion.prompt}\"  seed {motion.seed}")
                read_as = motions.prompt_reading(motion.prompt, json.loads(motion.meta or "{}"))
                if read_as:
                    self.layout.label(text=f"read as \"{read_as}\"", icon='INFO')
            elif motion.source_path:
                self.layout.label(text=bpy.path.basename(motion.source_path), icon='FILE')
        row = self.layout.row(align=True)
        row.operator("mdm.preview", icon='HIDE_OFF')
        row.operator("mdm.add_skeleton", icon='ARMATURE_DATA')


class MDM_PT_target(MotionTab, bpy.types.Panel):
    bl_label = "Target Rig"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.mdm
        layout.prop(settings, "target")
        ob = settings.target
        if ob is None:
            layout.label(text="Pick an armature to bake onto", icon='INFO')
            return
        rig = ob.data.mdm
        row = layout.row(align=True)
        row.operator_menu_enum("mdm.apply_bone_map_preset", "preset", text=rig.preset or "Preset")
        row.operator("mdm.detect_bone_map", text="Detect", icon='VIEWZOOM')
        if rig.preset:
            layout.label(text=f"{rig.preset}: {rig.confidence:.0%} of the joints found", icon='BONE_DATA')
        layout.template_list("MDM_UL_bone_map", "", rig, "bone_map", rig, "bone_map_index", rows=6)


class MDM_PT_bake(MotionTab, bpy.types.Panel):
    bl_label = "Bake"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.mdm
        layout.prop(settings, "root_mode", expand=True)
        if settings.root_mode == 'ROOT_BONE' and settings.target is not None:
            layout.prop_search(settings, "root_bone", settings.target.data, "bones")
        layout.operator("mdm.bake", icon='ACTION')
        layout.operator("mdm.restore_action", icon='LOOP_BACK')


register, unregister = bpy.utils.register_classes_factory(
    (MDM_UL_motions, MDM_UL_bone_map, MDM_PT_generate, MDM_PT_inbetween, MDM_PT_motions, MDM_PT_target,
     MDM_PT_bake))
