"""Evaluate a checkpoint on real held-out mocap: plausibility, in-betweening and text adherence (docs metrics.md).

Everything is measured on ONE skeleton, HumanML3D's reference: real clips are cut into windows of the evaluated
length and put on it with `features.canonicalize` (reference bone lengths, floor at y = 0, first frame at the
origin facing +Z), so CMU's shorter upper body never counts as error. Keys for in-betweening are taken from those
canonical windows and results are compared against them. A clip shorter than the evaluated length (the 3-s CMU
walks) is one window of its own length.

1. Plausibility: foot-skate ratio, jitter, foot penetration, bone-length drift (mean over bones of each bone's
   std) and the root's speed across the floor (what planting costs), averaged over the generated clips (the
   adherence generations below, with planted feet as the product gives them, and the same samples as the model
   left them: "generated_unplanted") and over the real windows. Real windows sit on the reference skeleton, so
   their bone-length drift is 0 by construction.
2. In-betweening: for each gap, full poses are kept every `gap` frames (first and last frame keyed) and the rest
   regenerated; L2P over the generated frames, keyframe error at the keys and two seam ratios (jerk around the
   keys / the generated clip's own jitter, "seam_ratio", and / the real clip's, "seam_vs_real": a smooth
   in-between with ordinary jerk at its keys is high on the first and low on the second, a pop is high on both)
   for the model's default method ("model_*"), for every other in-betweening method the model
   supports ("<method>_*") and L2P for linear interpolation of joint positions ("linear_l2p").
3. Adherence: a small classifier (`backend.classifier`) trained at evaluation time, with the evaluation seed, on
   crops of the real training clips (`data.training_rows` of the classifier folder, by default the data folder:
   split `train`, no iClone) plus procedural clips, never on generated motion; a procedural crop that only
   stands (before or after its clip's action) is taught as idle (`classifier.crop_label`). It labels the motions
   generated from each category's held-out paraphrases (`captions.heldout_captions`), each read as the model
   reads a prompt (its nearest training caption when the checkpoint ships them; `--literal-prompts`: as typed).

JSON (stdout with --json, metrics.json under --out), all distances in metres, jitter in m/s^3:

    {"clips": N,                          # eval clips read
     "windows": W,                        # real windows cut from them (W per gap for in-betweening)
     "frames": F,                         # window / generated length, frames at 20 fps
     "plausibility": {"generated": {"foot_skate", "jitter", "penetration", "bone_length_std", "root_speed",
                                    "pose_speed"},
                      "generated_unplanted": {same keys}, "real": {same keys}},
     "inbetween": {"5" | "10" | "20" | "40": {"model_l2p", "linear_l2p", "keyframe_error", "seam_ratio",
                                              "seam_vs_real", "<method>_l2p", "<method>_keyframe_error",
                                              "<method>_seam_ratio", "<method>_seam_vs_real" for each other method,
                                              and for the model and every method
                                              "<name>_foot_skate" and "<name>_unsnapped_keyframe_error" (the
                                              sampler's own miss before the exact placement on the keys)}},
     "adherence": {"accuracy": overall share of generated motions classified as their prompt's category,
                   "per_category": {category: accuracy},
                   "real_accuracy": the classifier's accuracy on the real eval windows (its own ceiling)},
     "settings": {the options, "model_method", "methods", "device", "checkpoint"},
     "seconds": {"data", "classifier", "inbetween", "adherence", "total"}}

"model_l2p" (and keyframe_error, seam_ratio, seam_vs_real) is null when the model supports no in-betweening method.
"""
import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from . import captions, classifier, data, features, metrics, mocap, planting, skeleton
from .errors import UserError
from .files import atomic_output
from .keyframes import KEY_GAPS, Keyframes
from .pipeline import BASELINE_METHOD, MotionRequest, Pipeline

EVAL_SPLIT = "eval"
READ_INDEX_COLUMNS = {"file", "skeleton", "fps", "cmu_stated_fps", "tpose_frames", "split", "description"}
METRICS_FILE, CONTACT_SHEET_FILE = "metrics.json", "contact_sheet.png"
SHEET_GENERATED_ROWS = 6  # generated motions drawn on the contact sheet (one per category, the first ones)


@dataclass
class EvalOptions:
    windows_per_clip: int = 2
    samples: int = 1  # generated samples per in-betweening window and per adherence prompt
    steps: int = 50  # sampling steps, respaced (capped at the model's own; 0 = all of them)
    frames: int = 0  # window and generated length; 0 = the model's longest, at most skeleton.MAX_FRAMES
    gaps: tuple = KEY_GAPS  # keyed every 5-40 frames, as training keys its in-betweening windows
    methods: tuple | None = None  # in-betweening methods; None = every one the model supports
    prompts_per_category: int = 5
    guidance: float = 2.5  # classifier-free guidance of the text generations (in-betweening runs unprompted)
    classifier_steps: int = 1500
    classifier_data: str | None = None  # mocap folder whose train rows teach the classifier; None = the data folder
    procedural_per_category: int = 12
    seed: int = 0
    literal_prompts: bool = False  # adherence prompts on their own embeddings (`MotionRequest.literal_prompt`)

    @classmethod
    def quick(cls, **overrides):
        """A smoke-test budget: one short window per clip, 2 steps, a barely trained classifier."""
        return cls(**{**dict(windows_per_clip=1, steps=2, frames=60, prompts_per_category=1, classifier_steps=30,
                             procedural_per_category=2), **overrides})


@dataclass
class Evaluation:
    report: dict
    sheet: list = field(default_factory=list)  # (label, (T, 22, 3) joints) rows of the contact sheet


# ---------------------------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------------------------

def read_eval_rows(data_dir):
    """The rows of a mocap folder's index.csv to evaluate on, as `mocap.IndexedClip`s: those marked `eval` when
    there is a `split` column, else all. Missing `cmu_stated_fps` / `tpose_frames` / `skeleton` columns mean: the
    BVH header's rate, no frames skipped, the family detected from the joint names (`mocap.read_index`).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"data folder {data_dir} does not exist")
    index = data_dir / "index.csv"
    if not index.is_file():
        raise UserError(f"{data_dir} has no index.csv: give a folder laid out like shared/mocap/cmu (an index.csv "
                        f"with a `file` column, plus the BVH files it lists)")
    columns = mocap.index_columns(index)
    if "file" not in columns:
        raise UserError(f"{index} has no `file` column (columns: {sorted(columns)})")
    clips = mocap.read_index(index)
    chosen = [c for c in clips if c.split == EVAL_SPLIT] if "split" in columns else clips
    if not chosen:
        raise UserError(f"{index} has no rows to evaluate (split column present, no row marked {EVAL_SPLIT!r})")
    return chosen


def load_eval_clips(rows, log):
    """[(row, (T, 22, 3) joints)], each clip read as the training data reads its clips (`data.load_joints`:
    T-pose frames skipped, floor levelled); unreadable rows are logged and skipped."""
    loaded = []
    for row in rows:
        try:
            joints, _tilt = data.load_joints(row)
        except (UserError, OSError, ValueError) as err:
            log(f"skipping {row.path}: {err}")
            continue
        loaded.append((row, joints))
    return loaded


def category_of(description):
    """The caption category of a clip description, or None when no caption rule knows it."""
    try:
        return captions.describe(description).category
    except UserError:
        return None


def for_model(options: EvalOptions, pipeline: Pipeline) -> EvalOptions:
    """`options` with the window length (`frames`: the model's longest, at most skeleton.MAX_FRAMES, unless given)
    and the sampling steps (at most the model's own) settled for this model."""
    frame_range = pipeline.loaded.frames
    frames = options.frames or min(frame_range["max_frames"], skeleton.MAX_FRAMES)
    if not frame_range["min_frames"] <= frames <= frame_range["max_frames"]:
        raise UserError(f"--frames {frames} is outside this model's range of {frame_range['min_frames']}-"
                        f"{frame_range['max_frames']} frames")
    return replace(options, frames=frames, steps=min(options.steps, pipeline.config.diffusion_steps))


def eval_windows(clips, options, min_length):
    """[(row, window)]: each loaded clip's `cut_windows` of `options.frames`, canonicalised like training data."""
    return [(row, features.canonicalize(window)) for row, joints in clips
            for window in cut_windows(joints, options.frames, options.windows_per_clip, min_length)]


def cut_windows(joints, length, count, min_length):
    """Up to `count` windows of `length` frames spread evenly over the clip (first at the start, last at the end);
    a clip shorter than `length` is one window if it has at least `min_length` frames."""
    if len(joints) < length:
        return [joints] if len(joints) >= min_length else []
    starts = np.unique(np.linspace(0, len(joints) - length, count).round().astype(int))
    return [joints[s:s + length] for s in starts]


# ---------------------------------------------------------------------------------------------------------------
# In-betweening
# ---------------------------------------------------------------------------------------------------------------

def regular_keys(num_frames, gap):
    """Keyed frames every `gap` frames, the last frame always keyed."""
    return np.unique(np.append(np.arange(0, num_frames, gap), num_frames - 1))


def linear_inbetween(joints, keyed_frames):
    """The baseline: every joint coordinate interpolated linearly in time between the keyed frames."""
    t = np.arange(len(joints))
    keyed = joints[keyed_frames].reshape(len(keyed_frames), -1)  # (K, 66)
    return np.stack([np.interp(t, keyed_frames, keyed[:, c]) for c in range(keyed.shape[1])], -1).reshape(joints.shape)


def inbetween_request(keys, frames, window_index, options, method="auto") -> MotionRequest:
    """What the evaluation asks of the model for one window's keys (its seed follows the window)."""
    # Unprompted, so guidance would only repeat the same forward: scale 1 halves the cost.
    return MotionRequest(frames=frames, samples=options.samples, seed=options.seed + window_index, guidance=1.0,
                         steps=options.steps, keys=keys, inbetween_method=method)


def inbetween_scores(real, keyed_frames, candidates):
    """{metric: [one value per sample]} for the candidates (name -> (S, T, 22, 3)): "<name>_l2p" for every
    candidate; "<name>_keyframe_error", "<name>_seam_ratio", "<name>_seam_vs_real" and "<name>_foot_skate" for every
    candidate but "linear".

    Linear interpolation has no jerk between its keys, so its seam ratio means nothing: only its L2P is scored.
    """
    scores = defaultdict(list)
    for name, samples in candidates.items():
        for joints in samples:
            scores[f"{name}_l2p"].append(metrics.inbetween_l2p(joints, real, keyed_frames))
            if name != "linear":
                scores[f"{name}_keyframe_error"].append(metrics.keyframe_error(joints, real, keyed_frames))
                scores[f"{name}_seam_ratio"].append(metrics.seam_ratio(joints, keyed_frames))
                scores[f"{name}_seam_vs_real"].append(metrics.seam_ratio(joints, keyed_frames, reference=real))
                scores[f"{name}_foot_skate"].append(metrics.foot_skate_ratio(joints))
    return scores


def inbetween_methods(pipeline: Pipeline, chosen):
    """(the model's default method or None, the other methods to score): the default is the first method the
    pipeline offers; `chosen` (None = all offered) selects the others."""
    offered = list(pipeline.inbetween_methods())
    unknown = sorted(set(chosen or ()) - set(offered) - {BASELINE_METHOD})
    if unknown:
        raise UserError(f"in-betweening method(s) {unknown} are not available for this model; it offers: "
                        f"{', '.join(offered) or 'none'}")
    default = offered[0] if offered else None
    return default, [m for m in (offered if chosen is None else chosen) if m != default]


def evaluate_inbetween(pipeline, windows, options, default, others, log):
    """{gap: {metric: mean}} and the contact-sheet rows of the first window at the median gap."""
    table, sheet = {}, []
    runs = ([("model", default)] if default else []) + [(m, m) for m in others]  # (name in the report, method)
    for gap in options.gaps:
        scores = defaultdict(list)
        for w, real in enumerate(windows):
            keyed = regular_keys(len(real), gap)
            keys = Keyframes.full_poses(keyed, real[keyed])
            candidates = {"linear": linear_inbetween(real, keyed)[None]}
            for name, method in runs:
                log(f"in-betweening gap {gap}: window {w + 1}/{len(windows)}, {method}")
                result = pipeline.generate(inbetween_request(keys, len(real), w, options, method))
                candidates[name] = result.joints
                scores[f"{name}_unsnapped_keyframe_error"].extend(result.meta["keyframe_error_unsnapped"])
            for key, values in inbetween_scores(real, keyed, candidates).items():
                scores[key].extend(values)
            if w == 0 and gap == options.gaps[len(options.gaps) // 2]:
                sheet = [(f"real, keys every {gap} frames", real)] + [
                    (f"{name} in-betweening, gap {gap}", c[0]) for name, c in candidates.items()]
        means = {k: float(np.mean(v)) for k, v in scores.items()}
        table[str(gap)] = {"model_l2p": means.pop("model_l2p", None), "linear_l2p": means.pop("linear_l2p"),
                           "keyframe_error": means.pop("model_keyframe_error", None),
                           "seam_ratio": means.pop("model_seam_ratio", None),
                           "seam_vs_real": means.pop("model_seam_vs_real", None), **means}
    return table, sheet


# ---------------------------------------------------------------------------------------------------------------
# Plausibility and adherence
# ---------------------------------------------------------------------------------------------------------------

def plausibility(clips):
    """Mean over clips of each plausibility metric (metrics.md); bone drift is the mean over the 21 bones."""
    per_clip = [{"foot_skate": metrics.foot_skate_ratio(j), "jitter": metrics.jitter(j),
                 "penetration": metrics.penetration(j), "bone_length_std": float(metrics.bone_length_std(j).mean()),
                 "root_speed": metrics.root_speed(j), "pose_speed": metrics.pose_speed(j)} for j in clips]
    return {k: float(np.mean([c[k] for c in per_clip])) for k in per_clip[0]}


def adherence_prompts(categories, per_category, sentences=captions.heldout_captions):
    """[(category, prompt)]: `per_category` of each category's `sentences(category)` (by default its held-out
    paraphrases), spread over its phrases and sides."""
    prompts = []
    for category in categories:
        sentences_of_category = sentences(category)
        picks = np.linspace(0, len(sentences_of_category), per_category, endpoint=False).astype(int)
        prompts += [(category, sentences_of_category[i]) for i in picks]
    return prompts


def classifier_training_clips(mocap_dir, options, log):
    """The training data's real clips (`data.training_rows`, read by `data.load_joints`) whose description a caption
    rule knows, plus procedural clips, each with its category."""
    index = Path(mocap_dir) / "index.csv"
    columns = mocap.index_columns(index)
    if not READ_INDEX_COLUMNS <= columns:
        raise UserError(f"{index} lacks the columns {sorted(READ_INDEX_COLUMNS - columns)} that mark training rows; "
                        f"the adherence classifier needs a folder like shared/mocap/cmu (--classifier-data)")
    # Procedural clips at their natural length (a generator squeezes its timeline into max_frames).
    clips = classifier.procedural_clips(options.procedural_per_category, skeleton.MAX_FRAMES,
                                        np.random.default_rng(options.seed))
    for row in data.training_rows(mocap_dir):
        category = category_of(row.description)
        if category is None:
            log(f"classifier: skipping {row.path}: no caption rule knows {row.description!r}")
            continue
        clips.joints.append(data.load_joints(row)[0])
        clips.categories.append(category)
        clips.acting.append(None)
    return clips


def adherence_classifier(mocap_dir, options, log):
    """The classifier that scores adherence, trained with the evaluation seed on `classifier_training_clips`."""
    training_clips = classifier_training_clips(mocap_dir, options, log)
    log(f"training the adherence classifier on {len(training_clips.joints)} clips")
    return classifier.train_classifier(training_clips, torch.Generator().manual_seed(options.seed),
                                       steps=options.classifier_steps)


def scored(motion_classifier, motions, labels):
    """(accuracy, {category: accuracy}) of the classifier on `motions` whose true categories are `labels`."""
    hits = np.array(motion_classifier.predict(motions)) == np.array(labels)
    per_category = {c: float(hits[np.array(labels) == c].mean()) for c in dict.fromkeys(labels)}
    return float(hits.mean()), per_category


def evaluate_adherence(pipeline, motion_classifier, options, log, sentences=captions.heldout_captions):
    """(adherence dict without real_accuracy, generated joints list, the same unplanted, contact-sheet rows) for
    prompts drawn from `sentences` (`adherence_prompts`)."""
    prompts = adherence_prompts(motion_classifier.categories, options.prompts_per_category, sentences)
    generated, unplanted, labels, sheet = [], [], [], []
    for i, (category, prompt) in enumerate(prompts):
        log(f"generating {i + 1}/{len(prompts)}: {prompt!r}")
        request = MotionRequest(text=prompt, frames=options.frames, samples=options.samples, seed=options.seed + i,
                                guidance=options.guidance, steps=options.steps, plant_feet=False,
                                literal_prompt=options.literal_prompts)
        result = pipeline.generate(request)
        joints = list(planting.keep_feet_planted(result.joints, result.features))  # what `plant_feet=True` returns
        generated += joints
        unplanted += list(result.joints)
        labels += [category] * len(joints)
        if i % options.prompts_per_category == 0 and len(sheet) < SHEET_GENERATED_ROWS:
            sheet.append((f"generated: {prompt}", joints[0]))
    accuracy, per_category = scored(motion_classifier, generated, labels)
    return {"accuracy": accuracy, "per_category": per_category}, generated, unplanted, sheet


# ---------------------------------------------------------------------------------------------------------------
# The whole evaluation
# ---------------------------------------------------------------------------------------------------------------

def evaluate(pipeline: Pipeline, data_dir, options: EvalOptions, log=print) -> Evaluation:
    """Run every part on the folder's eval clips; deterministic for `options.seed`."""
    began = time.perf_counter()
    seconds = {}
    eval_rows = read_eval_rows(data_dir)
    frame_range = pipeline.loaded.frames
    options = for_model(options, pipeline)
    default, others = inbetween_methods(pipeline, options.methods)

    clips = load_eval_clips(eval_rows, log)
    cut = eval_windows(clips, options, frame_range["min_frames"])
    windows = [window for _, window in cut]
    window_categories = [category_of(row.description) for row, _ in cut]
    if not windows:
        raise UserError(f"no usable eval clip in {data_dir}: {len(eval_rows)} eval row(s), {len(clips)} loaded, none "
                        f"at least {frame_range['min_frames']} frames ({frame_range['min_frames'] / skeleton.FPS:.1f} "
                        f"s, the model's shortest) long")
    seconds["data"] = time.perf_counter() - began

    mark = time.perf_counter()
    motion_classifier = adherence_classifier(options.classifier_data or data_dir, options, log)
    known = [(w, c) for w, c in zip(windows, window_categories) if c in motion_classifier.categories]
    real_accuracy = scored(motion_classifier, *zip(*known))[0] if known else None
    seconds["classifier"] = time.perf_counter() - mark

    mark = time.perf_counter()
    inbetween, inbetween_sheet = evaluate_inbetween(pipeline, windows, options, default, others, log)
    seconds["inbetween"] = time.perf_counter() - mark

    mark = time.perf_counter()
    adherence, generated, unplanted, generated_sheet = evaluate_adherence(pipeline, motion_classifier, options, log)
    adherence["real_accuracy"] = real_accuracy
    seconds["adherence"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - began

    settings = {**asdict(options), "model_method": default, "methods": others, "device": str(pipeline.device),
                "checkpoint": pipeline.loaded.meta.get("path")}
    report = {"clips": len(clips), "windows": len(windows), "frames": options.frames,
              "plausibility": {"generated": plausibility(generated), "generated_unplanted": plausibility(unplanted),
                               "real": plausibility(windows)},
              "inbetween": inbetween, "adherence": adherence, "settings": settings,
              "seconds": {k: round(v, 1) for k, v in seconds.items()}}
    return Evaluation(report, generated_sheet + inbetween_sheet)


def format_table(report) -> str:
    """The report as aligned text tables."""
    def number(v):
        return "-" if v is None else f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"

    lines = [f"{report['clips']} eval clips, {report['windows']} windows of {report['frames']} frames", "",
             f"{'plausibility':<28}{'generated':>10}{'unplanted':>10}{'real':>10}"]
    gen, raw, real = (report["plausibility"][k] for k in ("generated", "generated_unplanted", "real"))
    lines += [f"  {k:<26}{number(gen[k]):>10}{number(raw[k]):>10}{number(real[k]):>10}" for k in gen]
    gaps = list(report["inbetween"])
    lines += ["", f"{'in-betweening (m)':<28}" + "".join(f"{'gap ' + g:>10}" for g in gaps)]
    keys = dict.fromkeys(k for g in gaps for k in report["inbetween"][g])
    lines += [f"  {k:<26}" + "".join(f"{number(report['inbetween'][g].get(k)):>10}" for g in gaps) for k in keys]
    adherence = report["adherence"]
    lines += ["", f"adherence: accuracy {number(adherence['accuracy'])} on held-out paraphrases "
                  f"(classifier on real eval windows: {number(adherence['real_accuracy'])})"]
    lines += [f"  {c:<26}{number(a):>10}" for c, a in adherence["per_category"].items()]
    lines += ["", f"took {report['seconds']['total']:.0f} s on {report['settings']['device']}"]
    return "\n".join(lines)


def write_outputs(evaluation: Evaluation, out_dir):
    """metrics.json and contact_sheet.png under `out_dir`, each written atomically."""
    from .preview import draw_strip

    out_dir = Path(out_dir)
    with atomic_output(out_dir / METRICS_FILE) as tmp:
        tmp.write_text(json.dumps(evaluation.report, indent=2) + "\n")
    if evaluation.sheet:
        with atomic_output(out_dir / CONTACT_SHEET_FILE) as tmp:
            labels, rows = zip(*evaluation.sheet)
            draw_strip(list(rows), tmp, labels=list(labels))
    return out_dir
