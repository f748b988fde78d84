"""MDM Motion: text-to-motion, in-betweening and retargeting of human motion onto any Blender rig."""
from . import operators, panels, preferences, properties, transport

MODULES = (properties, preferences, operators, panels)  # registration order; unregistered in reverse


def register():
    for module in MODULES:
        module.register()


def unregister():
    # No thread, process or timer may outlive the add-on (a leftover makes Blender 4.2 crash and 4.5 hang at exit).
    operators.stop_active_job()
    transport.close_all()
    for module in reversed(MODULES):
        module.unregister()
