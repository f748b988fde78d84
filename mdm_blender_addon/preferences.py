"""Add-on preferences: which backend runs the model (in Blender's Python or a separate one), the model, the device."""
import os

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty

from . import transport
from .backend.errors import UserError


class MDM_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    backend: EnumProperty(
        name="Backend",
        items=(("AUTO", "Auto", "In Blender's own Python when torch is installed there, else a separate Python"),
               ("IN_PROCESS", "In-process", "A worker thread in Blender's Python (torch must be installed there)"),
               ("SUBPROCESS", "Subprocess", "A separate Python with torch, kept running between requests")),
        default="AUTO",
    )
    python: StringProperty(name="Python", subtype='FILE_PATH',
                           description="Python executable with torch installed, for the subprocess backend")
    timeout: FloatProperty(name="Timeout", default=600.0, min=1.0, unit='TIME_ABSOLUTE',
                           description="A subprocess backend that reports nothing for this long (no progress) "
                                       "is stopped (seconds)")
    checkpoint_source: EnumProperty(
        name="Model",
        items=(("DEFAULT", "Embedded", "The default model shipped with the add-on"),
               ("FOLDER", "Model Folder", "A checkpoint folder (config.json, model.safetensors, Mean/Std)"),
               ("OFFICIAL", "Official .pt", "An official MDM checkpoint (.pt with args.json, Mean.npy, Std.npy "
                                           "beside it)")),
        default="DEFAULT",
    )
    checkpoint_folder: StringProperty(name="Model Folder", subtype='DIR_PATH')
    checkpoint_file: StringProperty(name="Checkpoint", subtype='FILE_PATH')
    clip: StringProperty(name="CLIP Weights", subtype='FILE_PATH',
                         description="CLIP ViT-B/32 weights file, for models conditioned on CLIP text embeddings")
    device: EnumProperty(
        name="Device",
        items=(("auto", "Auto", "CUDA, else Apple MPS, else CPU"), ("cpu", "CPU", ""), ("cuda", "CUDA", ""),
               ("mps", "MPS", "Apple silicon")),
        default="auto",
    )

    def transport_kind(self) -> str:
        if self.backend != "AUTO":
            return self.backend
        return "IN_PROCESS" if transport.torch_importable() else "SUBPROCESS"

    def transport(self):
        """The session's warm transport for these settings. UserError when the subprocess backend would run in
        Blender's own Python, which lacks torch."""
        kind = self.transport_kind()
        if kind == "SUBPROCESS" and not self.python and not transport.torch_importable():
            raise UserError("torch does not import in Blender's Python: set a Python with torch for the subprocess "
                            "backend in the add-on preferences (Python)")
        return transport.shared(kind, bpy.path.abspath(self.python) if self.python else None, self.timeout)

    def model_fields(self) -> dict:
        """The request fields naming the model: checkpoint (None = embedded), device, CLIP file. UserError when
        the chosen checkpoint is not set or does not exist (the backend would only see a path)."""
        kind, path = {"DEFAULT": ("", ""), "FOLDER": ("model folder", self.checkpoint_folder),
                      "OFFICIAL": ("checkpoint file", self.checkpoint_file)}[self.checkpoint_source]
        checkpoint = bpy.path.abspath(path) if path else None
        if kind and not (checkpoint and os.path.exists(checkpoint)):
            raise UserError(f"the {kind} {checkpoint!r} does not exist: set it in the add-on preferences (Model)"
                            if checkpoint else f"no {kind} chosen: set it in the add-on preferences (Model)")
        return {"checkpoint": checkpoint, "device": self.device,
                "clip": bpy.path.abspath(self.clip) if self.clip else None}

    def draw(self, _context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "backend")
        if self.transport_kind() == "SUBPROCESS":
            layout.prop(self, "python")
            layout.prop(self, "timeout")
        layout.prop(self, "checkpoint_source")
        if self.checkpoint_source == "FOLDER":
            layout.prop(self, "checkpoint_folder")
        elif self.checkpoint_source == "OFFICIAL":
            layout.prop(self, "checkpoint_file")
        layout.prop(self, "clip")
        layout.prop(self, "device")
        layout.operator("mdm.check_backend", icon='PLUGIN')


def get(context=None):
    return (context or bpy.context).preferences.addons[__package__].preferences


register, unregister = bpy.utils.register_classes_factory((MDM_AddonPreferences,))
