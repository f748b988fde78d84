"""MDM Motion: text-to-motion, in-betweening and retargeting of human motion onto any Blender rig."""
from . import operators, panels, preferences, properties

MODULES = (properties, preferences, operators, panels)  # registration order; unregistered in reverse


def register():
    for module in MODULES:
        module.register()


def unregister():
    for module in reversed(MODULES):
        module.unregister()
