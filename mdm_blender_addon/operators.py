"""Operators (thin): check input, call the bpy-free planning and the bake, report errors as UserError messages.

Backend operators (generate, in-between, check backend) run as a background job when invoked from the UI: a modal
operator with a window timer ticks the job (progress bar in the sidebar, Esc cancels), and starts the job it chains
to, if any (loading an unknown model first). From scripts, in background mode and with EXEC_DEFAULT they run
synchronously. Every other operator is synchronous.
"""
import functools
from dataclasses import dataclass

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import bake, inbetween, motions, preferences, properties, rig
from .backend import retarget
from .backend.errors import UserError
from .jobs import BackendJob

PREVIEW_NAME = "MDM Preview"
TIMER_STEP_S = 0.05
ACTIVE = {"job": None, "timer": None}  # the background job (one at a time; the sidebar draws its progress)


def _target(context, name: str):
    """The armature named `name`, or the scene's target when `name` is empty; UserError if there is none."""
    ob = bpy.data.objects.get(name) if name else context.scene.mdm.target
    if ob is None:
        raise UserError(f"no object named '{name}'" if name else "no target armature: pick one in the Motion tab")
    if ob.type != 'ARMATURE':
        raise UserError(f"'{ob.name}' is a {ob.type.lower()}, not an armature")
    bake.require_local(ob, ob.data)  # every caller writes to it (keys, or the bone map on its armature)
    return ob


def in_object_or_pose_mode(cls, context) -> bool:
    """Poll check of the operators that write keys: Edit Mode holds its own copy of the armature, and its undo
    steps do not cover animation."""
    if context.mode not in {'OBJECT', 'POSE'}:
        cls.poll_message_set("Switch to Object or Pose Mode first")
        return False
    return True


def _motion(settings, index: int):
    """The list's motion at `index` (-1: the active one) as a `motions.Motion`; UserError if there is none."""
    index = settings.motion_index if index < 0 else index
    if not 0 <= index < len(settings.motions):
        raise UserError(f"no motion #{index}: the list has {len(settings.motions)}")
    return motions.motion_from_item(settings.motions[index])


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
        return in_object_or_pose_mode(cls, context)

    @reports_user_errors
    def execute(self, context):
        scene = context.scene
        settings = scene.mdm
        ob = _target(context, self.target)
        motion = _motion(settings, self.sample)
        bone_map, detection = rig.bone_map_for_bake(ob)
        channels = bake.plan_channels(ob, motion, scene, bone_map, settings.root_mode, settings.root_bone)
        # Everything above only reads; from here on the scene changes.
        if detection is not None:
            rig.store_detection(ob, detection)  # the map used, now editable in the sidebar
        action = bake.bake(ob, motions.action_name(motion), channels, scene.frame_current,
                           motions.motion_metadata(motion))
        note = rig.constraint_note(ob, (channel.bone for channel in channels))
        self.report({'WARNING'} if note else {'INFO'},
                    f"Baked '{action.name}' onto {ob.name}: {len(channels)} channels{note}")
        return {'FINISHED'}


class MDM_OT_restore_action(bpy.types.Operator):
    """Bring back the action the target had before this add-on's bakes (the baked actions are kept)"""
    bl_idname = "mdm.restore_action"
    bl_label = "Restore Previous Action"
    bl_options = {'REGISTER', 'UNDO'}
    target: StringProperty(name="Target", description="Armature object (default: the scene's target)")

    @classmethod
    def poll(cls, context):
        ob = context.scene.mdm.target
        if ob is None:
            cls.poll_message_set("Pick a target armature first")
            return False
        if not bake.can_restore(ob):
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


class MDM_OT_preview(bpy.types.Operator):
    """Play a motion from the list on the "MDM Preview" skeleton (made on first use), before baking it"""
    bl_idname = "mdm.preview"
    bl_label = "Preview"
    bl_options = {'REGISTER', 'UNDO'}
    sample: IntProperty(name="Motion", default=-1, min=-1, description="Index in the motion list (-1: active)")

    @classmethod
    def poll(cls, context):
        if not MDM_OT_bake.poll(context):
            return False
        if bpy.data.objects.get(PREVIEW_NAME) is None and context.mode != 'OBJECT':
            cls.poll_message_set("Switch to Object Mode first: the preview skeleton is made on first use")
            return False
        return True

    @reports_user_errors
    def execute(self, context):
        settings = context.scene.mdm
        motion = _motion(settings, self.sample)
        ob = bpy.data.objects.get(PREVIEW_NAME)
        if ob is None or ob.type != 'ARMATURE':
            target = settings.target
            ob = rig.add_smpl_armature(context, PREVIEW_NAME)
            rig.store_detection(ob, rig.detect(ob))
            settings.target = target  # the preview skeleton is never the bake target
        channels = bake.plan_channels(ob, motion, context.scene, rig.read_bone_map(ob.data), "MOTION", "")
        previous = ob.animation_data.action if ob.animation_data else None
        if previous is not None:  # a preview replaces the last one instead of stacking up stashed actions
            bpy.data.actions.remove(previous)
        bake.bake(ob, f"Preview: {motion.name}", channels, context.scene.frame_current,
                  motions.motion_metadata(motion))
        return {'FINISHED'}


# --- backend jobs ------------------------------------------------------------------------------------------------

def _model_key(context) -> str:
    return repr(sorted(preferences.get(context).model_fields().items()))


class ModelInfoPending(UserError):
    """The model's info is not known yet and the caller may not wait for it (a UI invoke loads it in the
    background first)."""


def model_info(context, wait=True) -> dict:
    """The loaded model's info for the current preferences: cached, else asked from the backend synchronously with
    `wait` (loading the model: the first request after a model change), else ModelInfoPending."""
    if properties.MODEL_INFO.get("model_key") == _model_key(context):
        return properties.MODEL_INFO
    if not wait:
        raise ModelInfoPending("the model is not loaded yet")
    job = info_job(context).run_to_end()
    if job.state != "done":
        raise UserError(job.message)
    return properties.MODEL_INFO


def info_job(context, then=None, describe=lambda info: "model loaded", label="Loading the model") -> BackendJob:
    """A job that loads the model the preferences name and caches its info (under the key of the request's model,
    whatever the preferences say by the time it answers); its message is `describe(info)`."""
    prefs, key = preferences.get(context), _model_key(context)
    return BackendJob(prefs.transport(), {"op": "info", **prefs.model_fields()},
                      lambda answer: describe(remember_info(key, answer["info"])), label=label, then=then)


def remember_info(model_key: str, info) -> dict:
    """Cache a model's info (an `info` answer's, or a result's) for the sidebar's action list and the requests."""
    if info:
        properties.MODEL_INFO.clear()
        properties.MODEL_INFO.update(info, model_key=model_key)
    return properties.MODEL_INFO


def stop_active_job():
    """Cancel the running job and drop its timer and status text. For unregister and file loads: Blender frees a
    modal operator without calling its `cancel` when its class goes away."""
    if ACTIVE["job"] is not None:
        ACTIVE["job"].cancel()
        _release_active(bpy.context)


def _release_active(context):
    """Forget the active job: its window timer and status text go with it."""
    if ACTIVE["timer"] is not None:
        context.window_manager.event_timer_remove(ACTIVE["timer"])
    if context.workspace is not None:
        context.workspace.status_text_set(None)
    ACTIVE.update(job=None, timer=None)


class BackendJobOperator:
    """Mix-in: `make_job(context, wait_for_info)` builds a BackendJob (raising UserError on bad input, before anything
    runs); invoked from the UI it runs in the background, after loading the model in the background too when its
    info is not known yet; otherwise it runs to the end at once."""

    @classmethod
    def poll(cls, context):  # one request at a time: a second would wait for the first on the main thread
        if ACTIVE["job"] is not None:
            cls.poll_message_set("A motion job is running (Esc cancels it)")
            return False
        return True

    @reports_user_errors
    def execute(self, context):
        return self.finish(self.make_job(context, wait_for_info=True).run_to_end())

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            job = self.make_job(context, wait_for_info=False)
        except ModelInfoPending:  # load the model first; the operator's own job follows (`modal`)
            # `then` runs in a later timer tick, where only bpy.context is current (this `context` is not).
            job = info_job(context, then=lambda: self.make_job(bpy.context, wait_for_info=False))
        except UserError as err:
            self.report({'ERROR'}, str(err))
            return {'CANCELLED'}
        job.start()
        ACTIVE.update(job=job, timer=context.window_manager.event_timer_add(TIMER_STEP_S, window=context.window))
        context.window_manager.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        job = ACTIVE["job"]
        if job is None:  # stopped from outside (the add-on is being disabled)
            return {'CANCELLED'}
        if event.type == 'ESC' and event.value == 'PRESS':
            job.cancel()
        elif event.type != 'TIMER':
            return {'PASS_THROUGH'}
        job.tick()
        context.workspace.status_text_set(None if job.finished else job.status_text())
        for area in context.screen.areas:
            if area.type == 'VIEW_3D':
                area.tag_redraw()
        if not job.finished:
            return {'RUNNING_MODAL'}
        if job.state == "done" and job.then is not None:  # e.g. the model has loaded: now the job itself
            try:
                ACTIVE["job"] = job.then()
            except UserError as err:
                _release_active(context)
                self.report({'ERROR'}, str(err))
                return {'CANCELLED'}
            ACTIVE["job"].start()
            return {'RUNNING_MODAL'}
        _release_active(context)
        return self.finish(job)

    def cancel(self, context):  # Blender ends the operator (window closing, file loading)
        if ACTIVE["job"] is not None:  # else already stopped (`stop_active_job`)
            ACTIVE["job"].cancel()
            _release_active(context)

    def finish(self, job):
        if job.state == "done":
            self.report({'INFO'}, job.message)
            return {'FINISHED'}
        self.report({'WARNING'} if job.state == "cancelled" else {'ERROR'}, job.message)
        return {'CANCELLED'}


def check_backend_job(context) -> BackendJob:
    """The job behind mdm.check_backend: the backend's handshake (torch and Python versions), then the model's
    info, reported in one line."""
    prefs = preferences.get(context)
    model_fields, kind = prefs.model_fields(), prefs.transport_kind().lower().replace("_", "-")
    hello = {}

    def describe(info):
        conditions = {"text": f"text ({info['text_encoder']})", "action": "action", "no_cond": "unconditioned"}
        known = info.get("known_captions")
        reading = f"prompts read as the nearest of its {known} training captions, " if known else ""
        return (f"{kind} backend, torch {hello['torch']} (Python {hello['python']}) on {info['device']}; model "
                f"{info['path'] or 'embedded'}: {info['arch']}, {conditions.get(info['cond_mode'], info['cond_mode'])}"
                f"{', keyframes' if info['keyframe_conditioned'] else ''}, {info['diffusion_steps']} steps, {reading}"
                f"{info['min_frames'] / info['fps']:.1f}-{info['max_frames'] / info['fps']:.1f} s per window, "
                f"chained up to {info['max_chained_frames'] / info['fps']:.0f} s; actions: "
                f"{', '.join(info['actions']) or 'none'}")

    def on_hello(answer):
        hello.update(answer)
        return "backend started"
    return BackendJob(prefs.transport(), {"op": "hello", **model_fields}, on_hello, label="Starting the backend",
                      then=lambda: info_job(bpy.context, describe=describe, label="Checking the model"))


class MDM_OT_check_backend(BackendJobOperator, bpy.types.Operator):
    """Start the backend chosen in the preferences and report its torch, device, model and actions"""
    bl_idname = "mdm.check_backend"
    bl_label = "Check Backend"

    def make_job(self, context, wait_for_info):
        return check_backend_job(context)


def sampling_fields(info, quality: str, steps: int) -> dict:
    """Sampler and steps for a quality preset: Draft = DDIM over a fifth of the model's steps, Final = all of them
    with the model's own DDPM. An explicit `steps` overrides the preset's count."""
    if quality == "DRAFT":
        return {"sampler": "ddim", "steps": steps or max(1, info["diffusion_steps"] // 5)}
    return {"sampler": "ddpm", "steps": steps}


def generate_job(context, prompt="", action="", seconds=4.0, samples=3, seed=0, guidance=2.5, steps=0,
                 quality="FINAL", plant_feet=True, literal_prompt=False, bake_target=True,
                 wait_for_info=True) -> BackendJob:
    """The job behind mdm.generate (tests tick it directly). Raises UserError for input it can refuse at once,
    and ModelInfoPending without `wait_for_info` when the model's frame rate and steps are not known yet."""
    scene = context.scene
    prompt = prompt.strip()
    if not prompt and not action:
        raise UserError("type a prompt (or pick an action) to generate from")
    key = _model_key(context)
    info = model_info(context, wait=wait_for_info)
    params = dict(text=prompt, action=action, frames=round(seconds * info["fps"]), samples=samples, seed=seed,
                  guidance=guidance, plant_feet=plant_feet, literal_prompt=literal_prompt,
                  **sampling_fields(info, quality, steps))
    target = scene.mdm.target if bake_target else None
    plan = None
    if target is not None:  # read the rig now: a rig that cannot be baked fails before any sampling
        bone_map, detection = rig.bone_map_for_bake(target)
        plan = (Handle.of(target), bake.RigTarget.read(target), bone_map, detection, scene.mdm.root_mode,
                scene.mdm.root_bone, bake.scene_fps(scene))
    prefs = preferences.get(context)
    request = {"op": "generate", **prefs.model_fields(), "params": params}
    label, scene_handle = (prompt or action)[:40], Handle.of(scene)  # plain values: no bpy data off the main thread

    def prepare(event):  # worker thread: numpy only
        meta = event["meta"]
        generated = [motions.Motion(name=f"{label} #{s}", joints=joints, fps=float(meta["fps"]),
                                    origin="GENERATED", prompt=meta["prompt"], seed=seed, sample=s,
                                    meta=motions.scalar_meta(meta)) for s, joints in enumerate(event["joints"])]
        if plan is None:
            return event, generated, None
        _name, rig_target, bone_map, _detection, root_mode, root_bone, scene_fps = plan
        return event, generated, bake.motion_channels(rig_target, generated[0], scene_fps, bone_map, root_mode,
                                                      root_bone)

    def on_result(prepared):  # main thread: the only scene writes (data looked up again: undo may reload it)
        event, generated, channels = prepared
        ob = plan[0].find(bpy.data.objects, "armature") if channels is not None else None
        scene = scene_handle.find(bpy.data.scenes, "scene")
        remember_info(key, event.get("info"))
        for motion in generated:
            motions.add_to_scene(scene, motion)
        scene.mdm.motion_index = len(scene.mdm.motions) - len(generated)
        read_as = motions.prompt_reading(generated[0].prompt, event["meta"])
        label_read = f"\"{label}\"" + (f" (read as \"{read_as}\")" if read_as else "")
        if ob is None:
            return f"Generated {len(generated)} motion(s) for {label_read}"
        if plan[3] is not None:
            rig.store_detection(ob, plan[3])
        action = bake.bake(ob, motions.action_name(generated[0]), channels, scene.frame_current,
                           motions.motion_metadata(generated[0]))
        note = rig.constraint_note(ob, (channel.bone for channel in channels))
        return f"Generated {len(generated)} motion(s) for {label_read}; baked '{action.name}' onto {ob.name}{note}"

    return BackendJob(prefs.transport(), request, on_result, prepare, label="Generate")


GENERATE_ARGS = ("prompt", "action", "seconds", "samples", "seed", "guidance", "steps", "quality", "plant_feet",
                 "literal_prompt", "bake_target")


class MDM_OT_generate(BackendJobOperator, bpy.types.Operator):
    """Generate motions from a prompt (or an action) into the motion list; with a target rig, bake the first one
    onto it"""
    bl_idname = "mdm.generate"
    bl_label = "Generate"
    bl_options = {'REGISTER', 'UNDO'}
    prompt: StringProperty(name="Prompt")
    action: StringProperty(name="Action", description="An action of the loaded model ('' = none)")
    seconds: FloatProperty(name="Length", default=4.0, min=0.0)
    samples: IntProperty(name="Variations", default=3, min=1, max=16)
    seed: IntProperty(name="Seed", default=0, min=0)
    guidance: FloatProperty(name="Guidance", default=2.5, min=0.0)
    steps: IntProperty(name="Steps", default=0, min=0, description="0: the quality preset's")
    quality: EnumProperty(name="Quality", items=(("DRAFT", "Draft", ""), ("FINAL", "Final", "")), default="FINAL")
    plant_feet: BoolProperty(name="Plant Feet", default=True)
    literal_prompt: BoolProperty(name="Literal Prompt", default=False,
                                 description="Condition on the prompt as typed, not its nearest known caption")
    bake_target: BoolProperty(name="Bake", default=True, description="Bake the first sample onto the scene's target")

    @classmethod
    def poll(cls, context):  # with a target, the first sample is baked onto it
        return super().poll(context) and (context.scene.mdm.target is None or in_object_or_pose_mode(cls, context))

    def make_job(self, context, wait_for_info):
        return generate_job(context, wait_for_info=wait_for_info,
                            **{name: getattr(self, name) for name in GENERATE_ARGS})


@dataclass(frozen=True)
class Handle:
    """A data-block as a job's worker thread may hold it: by its session id, which survives renames and undo (an
    undo step reloads the data, so no Python reference does), with its name for messages."""
    uid: int
    name: str

    @classmethod
    def of(cls, block):
        return cls(block.session_uid, block.name)

    def find(self, collection, kind: str):
        """The data-block again, from `collection` (`bpy.data.objects`, ...); UserError if it was removed (another
        block that took its name is not it)."""
        block = next((block for block in collection if block.session_uid == self.uid), None)
        if block is None:
            raise UserError(f"the {kind} '{self.name}' was removed while the job ran; nothing was written")
        return block


def inbetween_job(context, target="", frame_range=None, prompt="", seed=0, guidance=2.5, hold_root=True,
                  plant_feet=True, wait_for_info=True) -> BackendJob:
    """The job behind mdm.inbetween (tests tick it directly) over the keys in `frame_range` (first, last), else in
    the selected keys' range, else all of them. Raises UserError for input it can refuse at once, and
    ModelInfoPending without `wait_for_info` when the model's window (which the keys must fit) is not known yet."""
    scene = context.scene
    ob = _target(context, target)
    rig_target = bake.RigTarget.read(ob)
    bone_map, detection = rig.bone_map_for_bake(ob)
    retarget.map_bones(rig_target.description, bone_map)  # the map's own errors, before its bones are looked up
    rig.require_evaluated(ob, context.evaluated_depsgraph_get())
    keyed = bake.keyed_properties(ob, bone_map)  # what the in-between will key (the controls, on a Rigify rig)
    curves, _ = bake.current_fcurves(ob)
    bake.require_local(ob.animation_data.action if ob.animation_data else None)  # the keys go into it
    frames = bake.keyed_frames(curves)
    if frame_range is not None:
        start, end = frame_range
    else:
        selected = bake.keyed_frames(curves, selected_only=True)
        start, end = (selected[[0, -1]] if len(selected) >= 2 else (frames[[0, -1]] if len(frames) else (0, 0)))
    frames = frames[(frames >= start) & (frames <= end)]
    if len(frames) < 2:
        raise UserError(f"in-betweening needs at least two keyed frames on '{ob.name}' between frames {start} "
                        f"and {end}; found {len(frames)}")
    info = model_info(context, wait=wait_for_info)
    joints, key_values = rig.poses_at(ob, scene, frames, bone_map, keyed)
    inbetween.check_switches(keyed, key_values, frames, ob.name)
    scene_fps = bake.scene_fps(scene)
    plan = inbetween.plan_keys(frames, joints, rig.rest_joints_world(ob, bone_map), scene_fps, info)
    prefs = preferences.get(context)
    keys = plan.keys
    params = dict(text=prompt.strip(), frames=plan.request_frames, samples=1, seed=seed,
                  guidance=guidance, inbetween_method="auto", hold_root=hold_root, plant_feet=plant_feet,
                  keys={"frames": keys.frames.tolist(), "joints": keys.joints.tolist(),
                        "joint_mask": keys.joint_mask.tolist()})
    request = {"op": "generate", **prefs.model_fields(), "params": params}
    handle, first = Handle.of(ob), int(frames[0])

    def prepare(event):  # worker thread: numpy only
        motion = event["joints"][0].astype(np.float64)
        channels = bake.retarget_channels(rig_target, inbetween.to_scene_frames(motion, plan), scene_fps,
                                          bone_map, "MOTION", "")
        key_rows = plan.scene_frames - first
        for channel in channels:
            channel.values = inbetween.meet_keys(channel.values, key_values[(channel.bone, channel.prop)],
                                                 key_rows, quaternion=channel.prop == "rotation_quaternion")
        return channels

    def on_result(channels):
        target = handle.find(bpy.data.objects, "armature")
        if detection is not None:
            rig.store_detection(target, detection)
        added = bake.write_inbetween(target, channels, first, key_values)
        note = rig.constraint_note(target, (channel.bone for channel in channels))
        return (f"In-betweened frames {first}-{int(frames[-1])} of {target.name} ({len(frames)} keys, {added} new "
                f"keys){note}")

    return BackendJob(prefs.transport(), request, on_result, prepare, label="In-between")


INBETWEEN_ARGS = ("target", "prompt", "seed", "guidance", "hold_root", "plant_feet")


class MDM_OT_inbetween(BackendJobOperator, bpy.types.Operator):
    """Fill the frames between the target rig's keys with generated motion that meets every key exactly (the keys
    themselves are left as they are)"""
    bl_idname = "mdm.inbetween"
    bl_label = "In-between"
    bl_options = {'REGISTER', 'UNDO'}
    target: StringProperty(name="Target", description="Armature object (default: the scene's target)")
    frame_start: IntProperty(name="Start", description="First frame (with End; unset: the selected keys' range)")
    frame_end: IntProperty(name="End", description="Last frame (with Start; unset: the selected keys' range)")
    prompt: StringProperty(name="Prompt", description="Optional: what happens between the keys")
    seed: IntProperty(name="Seed", default=0, min=0)
    guidance: FloatProperty(name="Guidance", default=2.5, min=0.0)
    hold_root: BoolProperty(name="Hold Root", default=True)
    plant_feet: BoolProperty(name="Plant Feet", default=True)

    @classmethod
    def poll(cls, context):
        return super().poll(context) and in_object_or_pose_mode(cls, context)

    def make_job(self, context, wait_for_info):
        ranged = all(self.properties.is_property_set(name) for name in ("frame_start", "frame_end"))
        return inbetween_job(context, wait_for_info=wait_for_info,
                             frame_range=(self.frame_start, self.frame_end) if ranged else None,
                             **{name: getattr(self, name) for name in INBETWEEN_ARGS})


class MDM_OT_cancel_job(bpy.types.Operator):
    """Stop the running motion job; nothing it would have made is written"""
    bl_idname = "mdm.cancel_job"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return ACTIVE["job"] is not None

    def execute(self, context):
        ACTIVE["job"].cancel()
        return {'FINISHED'}


@bpy.app.handlers.persistent
def stop_job_before_a_file_loads(*_):
    """A file load frees the modal operator and its window; a job left in ACTIVE would grey out Generate for good
    (its result could not land anyway: the scene and rig it was for are gone)."""
    stop_active_job()


register_classes, unregister_classes = bpy.utils.register_classes_factory((
    MDM_OT_import_motion, MDM_OT_remove_motion, MDM_OT_add_skeleton, MDM_OT_detect_bone_map,
    MDM_OT_apply_bone_map_preset, MDM_OT_bake, MDM_OT_restore_action, MDM_OT_preview, MDM_OT_check_backend,
    MDM_OT_generate, MDM_OT_inbetween, MDM_OT_cancel_job,
))


def register():
    register_classes()
    bpy.app.handlers.load_pre.append(stop_job_before_a_file_loads)


def unregister():
    bpy.app.handlers.load_pre.remove(stop_job_before_a_file_loads)
    unregister_classes()
