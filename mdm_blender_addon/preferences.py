"""Add-on preferences (minimal for now): shows where the add-on keeps its writable data."""
import bpy


class MDM_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    def draw(self, _context):
        # Writable data (models, caches) goes here, never into the extension's folder, which upgrades wipe.
        self.layout.label(text=f"Data folder: {bpy.utils.extension_path_user(__package__)}")


register, unregister = bpy.utils.register_classes_factory((MDM_AddonPreferences,))
