"""Training data for the embedded model: CMU training clips and procedural motion -> captioned 263-feature windows.

Used by `python -m backend prepare-data` and by training; never imported by the runtime path.

Every source clip becomes two sequences (as recorded and left/right mirrored), each turned into HumanML3D features
once, over the whole clip (floor, start position and heading of the clip). A window is a run of consecutive
feature rows of one sequence. Because the root block holds velocities and the other blocks are relative to the
root's heading, such a slice is the window's own canonical motion: recovered, it starts at the origin facing +Z,
standing on the clip's floor (a window in mid-air stays in mid-air, as it should).

With `loop_runs` (prepare-data --loop-runs; off by default, the shipped model was trained with it), a short take
of a cyclic motion (`LOOPED_CATEGORIES`: CMU's runs last about a second) also gives a looped pair: its best cycle
repeated to a full window (`cycles`), so the model sees a run fill a whole clip. Looped sequences are recorded
motion, counted apart from both the takes and the procedural motion. Procedural clips of the categories in
`pad_procedural` (--pad-procedural) stand longer before and after their action (`procedural.timeline`), up to a full
window.

Files written to the output folder (all or none):
    dataset.npz   features (N, 263) float32, raw (not normalised): all sequences concatenated;
                  sequence_offsets (S+1,), sequence_source (S,): where each sequence starts, which clip it is;
                  per window: start (W,) row in `features`, length (W,), captions (W, K) str (K paraphrases),
                  category (W,) index into category_names, source (W,) str, procedural (W,), mirrored (W,) bool,
                  weight (W,) float32: draw windows with p ~ weight and every sequence is seen in proportion to
                  its duration (a long clip's overlapping windows share its weight), so the procedural share of
                  what training sees is the share of frames in summary.json
    Mean.npy, Std.npy  (263,) float32 normalisation statistics, HumanML3D's recipe (`normalization`), over every
                  feature row of every sequence once (mirrored and procedural included, window overlap ignored)
    summary.json  clip counts, minutes of real, looped and procedural motion, per category, the settings used
    captions_minilm.npy  (C, 384) float32 MiniLM embeddings of the C distinct captions, rows in np.unique order
"""
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from . import captions as cap
from . import cycles, procedural, skeleton
from . import rotations as rot
from .errors import UserError
from .features import features_to_joints, joints_to_features, mirror_joints
from .files import atomic_outputs
from .mocap import load_clip, read_index

DATASET_FILE, MEAN_FILE, STD_FILE, SUMMARY_FILE = "dataset.npz", "Mean.npy", "Std.npy", "summary.json"
# MiniLM embeddings of every distinct caption (rows follow np.unique(captions)), computed once by prepare-data so
# that training processes (several under torchrun) never load the text encoder.
CAPTION_EMBEDDINGS_FILE = "captions_minilm.npy"
FORMAT_VERSION = 1
# The source of the iClone retargets states no licence (mocap README): tests only, never training data.
EXCLUDED_FOLDERS = ("iclone",)
MIRRORED_SUFFIX = "#mirrored"
LOOPED_SUFFIX = "#looped"
LOOPED_CATEGORIES = ("run",)
# Floor levelling (`level_floor`).
RESTING_STEP = 0.015  # m per frame at 20 fps (0.3 m/s): a foot joint this slow rests on something
NEAR_LOWEST = 0.03  # m: only foot joints this close to the frame's lowest one are on the floor
PLANE_TOLERANCE = 0.02  # m: contacts further from the fitted floor are outliers (a step, a bar)
LEVEL_PRIOR = 0.25  # m: along directions where contacts spread less than this, the slope is shrunk to level
MAX_TILT_DEGREES = 3.0  # steeper is not a tilted floor (climbing, uneven terrain): left alone
MIN_CONTACTS = 10
# `prepare` defaults (prepare-data's too): the share of all frames that are procedural, paraphrases per window.
PROCEDURAL_SHARE = 0.2
CAPTIONS_PER_WINDOW = 8
# HumanML3D's `mean_variance` gives every dim of a group the group's mean std (see `normalization`).
STD_GROUPS = (skeleton.ROOT_YAW_VELOCITY, skeleton.ROOT_XZ_VELOCITY, skeleton.ROOT_HEIGHT, skeleton.RIC,
              skeleton.ROT, skeleton.VEL, skeleton.CONTACT)


@dataclass(frozen=True)
class Windowing:
    """How sequences are cut: `window` rows at most, every `stride` rows, plus `shorter` random shorter windows
    (at least `min_length` rows) per full window so the model also sees short motions. A sequence no longer than
    `window` is one window; one shorter than `min_length` is dropped."""

    window: int = 120
    stride: int = 20
    min_length: int = 16
    shorter: int = 1

    def __post_init__(self):
        if not 1 <= self.min_length <= self.window or self.stride < 1 or self.shorter < 0:
            raise UserError(f"bad windowing {self}: need 1 <= min_length <= window, stride >= 1, shorter >= 0")


@dataclass(frozen=True)
class Sequence:
    """One continuous motion as features, with the captions that describe all of it."""

    features: np.ndarray  # (N, 263) float32
    captions: tuple
    category: str
    source: str  # index path of the clip ("przestr/07_01.bvh") or "procedural/<category>/<k>"; LOOPED_SUFFIX,
    # then MIRRORED_SUFFIX, mark the derived copies
    procedural: bool

    @property
    def mirrored(self):
        return self.source.endswith(MIRRORED_SUFFIX)

    @property
    def looped(self):
        return LOOPED_SUFFIX in self.source


@dataclass
class Dataset:
    """Windows over concatenated sequence features; `Dataset.load(dir)` is what training reads."""

    features: np.ndarray  # (N, 263) float32, raw
    sequence_offsets: np.ndarray  # (S+1,) int64
    sequence_source: np.ndarray  # (S,) str
    start: np.ndarray  # (W,) int64 first row of each window in `features`
    length: np.ndarray  # (W,) int64
    captions: np.ndarray  # (W, K) str
    category: np.ndarray  # (W,) int64 into category_names
    source: np.ndarray  # (W,) str
    procedural: np.ndarray  # (W,) bool
    mirrored: np.ndarray  # (W,) bool
    weight: np.ndarray  # (W,) float32, mean 1: sampling weight, each sequence in proportion to its rows
    category_names: tuple = field(default=cap.CATEGORIES)

    def __len__(self):
        return len(self.start)

    @cached_property
    def looped(self):
        """(W,) bool: the window comes from a looped take (`LOOPED_SUFFIX`)."""
        return np.char.find(self.source.astype(str), LOOPED_SUFFIX) >= 0

    def window(self, i, shift=0):
        """(length_i, 263) raw features of window i, its start moved by `shift` rows (`random_shifts`)."""
        start = self.start[i] + shift
        return self.features[start:start + self.length[i]]

    def random_shifts(self, indices, reach, rng: np.random.Generator):
        """(B,) int start offsets for windows `indices`, each uniform in [-reach, reach] and clipped so the moved
        window stays inside its sequence: a fresh crop at every draw, as MDM crops its motions at random, rather
        than the same windows, cut once by `prepare-data`, at every epoch."""
        start, length = self.start[indices], self.length[indices]
        sequence = np.searchsorted(self.sequence_offsets, start, side="right") - 1
        low = np.maximum(-reach, self.sequence_offsets[sequence] - start)
        high = np.minimum(reach, self.sequence_offsets[sequence + 1] - start - length)
        return rng.integers(low, high + 1)

    def arrays(self):
        return {
            "format_version": np.array(FORMAT_VERSION), "features": self.features,
            "sequence_offsets": self.sequence_offsets, "sequence_source": self.sequence_source,
            "start": self.start, "length": self.length, "captions": self.captions, "category": self.category,
            "source": self.source, "procedural": self.procedural, "mirrored": self.mirrored, "weight": self.weight,
            "category_names": np.array(self.category_names),
        }

    @classmethod
    def load(cls, directory):
        path = Path(directory) / DATASET_FILE
        if not path.is_file():
            raise UserError(f"{path} not found: run `python -m backend prepare-data --out {directory}` first")
        with np.load(path, allow_pickle=False) as data:
            if int(data["format_version"]) != FORMAT_VERSION:
                raise UserError(f"{path} has format {int(data['format_version'])}, this code reads "
                                f"{FORMAT_VERSION}: run prepare-data again")
            arrays = {k: data[k] for k in data.files if k != "format_version"}
        arrays["category_names"] = tuple(arrays["category_names"].tolist())
        return cls(**arrays)


def load_normalization(directory):
    """(Mean, Std), each (263,) float32, from a prepare-data output folder."""
    for name in (MEAN_FILE, STD_FILE):
        if not (Path(directory) / name).is_file():
            raise UserError(f"{Path(directory) / name} not found: run `python -m backend prepare-data` first")
    return tuple(np.load(Path(directory) / name, allow_pickle=False) for name in (MEAN_FILE, STD_FILE))


class TrainingSet:
    """What `backend.train` reads from a prepare-data folder: z-scored windows, their joint positions (for
    keyframe channels), caption embeddings, Mean/Std, and the model settings the data fixes."""

    TEXT_ENCODER = "minilm"  # the embedded model's encoder: installs from a package, no CLIP file needed

    def __init__(self, directory):
        self.directory = Path(directory)
        self.dataset = Dataset.load(directory)
        self.mean, self.std = load_normalization(directory)
        self.summary = json.loads((self.directory / SUMMARY_FILE).read_text())
        # Every distinct caption is embedded once, on first use: (W, K) indices into that table.
        self.caption_table, self.caption_index = np.unique(self.dataset.captions, return_inverse=True)
        self.caption_index = self.caption_index.reshape(self.dataset.captions.shape)

    def __len__(self):
        return len(self.dataset)

    def probabilities(self, category_power=1.0):
        """(W,) window sampling probabilities. Within a category each sequence is drawn in proportion to its
        duration (`Dataset.weight`); each category's share of the draws is its duration ** `category_power`
        (1: as recorded, 0: every category alike), so a category with one short clip is not drowned out."""
        weight = self.dataset.weight
        if category_power != 1.0:  # (at 1 the float32 weights as they are: the shipped model's exact draws)
            duration = np.bincount(self.dataset.category, weights=weight)  # per category, in weight units
            weight = weight * duration[self.dataset.category] ** (category_power - 1)
        return weight / weight.sum()

    def window(self, i, shift=0):
        """(L, 263) float32 z-scored features of window i (moved by `shift` rows: `Dataset.random_shifts`)."""
        return ((self.dataset.window(i, shift) - self.mean) / self.std).astype(np.float32)

    def joints(self, i, shift=0):
        """(L, 22, 3) joint positions of window i as the features encode them (starts at the origin, facing +Z)."""
        return features_to_joints(self.dataset.window(i, shift))

    @cached_property
    def embeddings(self) -> np.ndarray:
        """(C, D) float32 embeddings of `caption_table`, loaded on first use."""
        return load_caption_embeddings(self.directory, self.caption_table)

    def caption_embeddings(self, indices, rng):
        """(B, D) float32: for each window index, one of its paraphrases (chosen by `rng`), embedded."""
        choice = rng.integers(0, self.caption_index.shape[1], size=len(indices))
        return self.embeddings[self.caption_index[indices, choice]]

    def blend_paraphrases(self, indices, text, rng):
        """(B, D) float32: each row of `text` (a paraphrase of window `indices[b]`) moved a random fraction of the
        way towards another of that window's paraphrases, then L2-normalised as the encoder's rows are."""
        other = self.caption_embeddings(indices, rng)
        blended = text + rng.random((len(indices), 1)).astype(np.float32) * (other - text)
        return blended / np.linalg.norm(blended, axis=1, keepdims=True)

    def vocabulary(self):
        """Every distinct training caption and its embedding: the checkpoint's `text.PromptVocabulary`."""
        import torch

        from .text import PromptVocabulary

        return PromptVocabulary(tuple(str(c) for c in self.caption_table), torch.from_numpy(self.embeddings))

    def model_defaults(self):
        """MDMConfig fields the data decides: 263 HumanML3D features of variable length, MiniLM captions, keyframe
        channels in feature space plus the root path (training's keyframe patterns need them), predicted as the
        departure from the keys, with each key's feature heading estimated as the features smooth it."""
        from .keyframes import KEY_DIM
        from .model import TEXT_ENCODERS

        return {"njoints": skeleton.FEATURE_DIM, "nfeats": 1, "data_rep": "hml_vec", "dataset": "humanml",
                "cond_mode": "text", "text_encoder": self.TEXT_ENCODER, "cond_dim": TEXT_ENCODERS[self.TEXT_ENCODER],
                "mask_frames": True, "keyframe_dim": KEY_DIM, "keyframe_residual": True,
                "keyframe_heading": "smoothed"}

    def meta(self):
        """What the checkpoint records about its data: frame range, categories, minutes, settings."""
        settings = self.summary["settings"]
        categories = [name for name in self.dataset.category_names if name in self.summary["categories"]]
        return {
            "frames": {"fps": skeleton.FPS, "min_frames": settings["min_length"], "max_frames": settings["window"]},
            "data": {key: self.summary[key] for key in ("settings", "minutes", "procedural_share_percent",
                                                          "windows", "real_clips")},
            "categories": categories,
            # The action dropdown of a text model: each category stands for its first training caption.
            "action_prompts": {name: cap.train_captions(name)[0] for name in categories},
        }


# ---------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------

def index_name(row, mocap_dir):
    """A row's file as written in index.csv ("przestr/07_01.bvh")."""
    return row.path.relative_to(mocap_dir).as_posix()


def is_excluded(name):
    return name.split("/", 1)[0] in EXCLUDED_FOLDERS


def training_rows(mocap_dir, files=None, limit=None):
    """The index rows that may be trained on: split `train`, outside EXCLUDED_FOLDERS; optionally only `files`
    (index paths) and at most `limit` of them. UserError when there are none or a requested file is not one."""
    mocap_dir = Path(mocap_dir)
    index = mocap_dir / "index.csv"
    if not index.is_file():
        raise UserError(f"{index} not found: --mocap must be a folder with an index.csv like shared/mocap/cmu")
    known = {index_name(r, mocap_dir): r for r in read_index(index)}
    allowed = {name: r for name, r in known.items() if r.split == "train" and not is_excluded(name)}
    if files:
        for name in files:
            if name not in known:
                raise UserError(f"{name} is not listed in {index}")
            if name not in allowed:
                raise UserError(f"{name} is never training data (split {known[name].split!r}"
                                f"{', unlicensed folder' if is_excluded(name) else ''})")
        allowed = {name: allowed[name] for name in files}
    chosen = list(allowed.values())[:limit]
    if not chosen:
        raise UserError(f"{index} has no usable training rows (split 'train', outside {', '.join(EXCLUDED_FOLDERS)}/)")
    assert all(r.split == "train" and not is_excluded(index_name(r, mocap_dir)) for r in chosen)
    return chosen


def mirrored_pair(joints, description, source, is_procedural):
    """The motion as recorded and its left/right mirror image (captions with 'left' and 'right' swapped)."""
    described = cap.describe(description)
    mirror_captions = tuple(cap.mirror_caption(c) for c in described.captions)
    return (
        Sequence(joints_to_features(joints).astype(np.float32), described.captions, described.category, source,
                 is_procedural),
        Sequence(joints_to_features(mirror_joints(joints)).astype(np.float32), mirror_captions,
                 described.category, source + MIRRORED_SUFFIX, is_procedural),
    )


def level_floor(joints):
    """(T, 22, 3) -> (the clip rotated so the floor under its resting feet is level, tilt in degrees or None).

    Several CMU sessions stand on a floor tilted by 0.3-1 degrees against the capture's Y axis: the feet of the
    subject-07 walks rise by 6 cm over their 4 m. HumanML3D's features put the whole clip on one floor (its lowest
    joint at y = 0), so a tilt makes the feet float more and more. The floor plane y = a x + b z + c is fitted to the
    resting foot joints by least squares, the slopes regularised towards level (ridge, `LEVEL_PRIOR`) and contacts
    off the plane dropped. None (clip unchanged): too few resting feet (short runs) or no plausible floor tilt.
    """
    feet = joints[:, skeleton.CONTACT_JOINTS]  # (T, 4, 3)
    step = np.linalg.norm(np.diff(feet, axis=0), axis=-1)  # (T-1, 4)
    lowest = feet[:-1, :, 1].min(axis=1, keepdims=True)
    contacts = feet[:-1][(step < RESTING_STEP) & (feet[:-1, :, 1] < lowest + NEAR_LOWEST)]  # (N, 3)
    if len(contacts) < MIN_CONTACTS:
        return joints, None
    inliers = np.ones(len(contacts), dtype=bool)
    for _ in range(10):  # fit, keep the contacts near the plane, refit
        if inliers.sum() < MIN_CONTACTS:
            return joints, None
        centre = contacts[inliers][:, [0, 2]].mean(axis=0)
        design = np.column_stack([contacts[:, [0, 2]] - centre, np.ones(len(contacts))])  # (N, 3)
        chosen = design[inliers]
        ridge = inliers.sum() * LEVEL_PRIOR**2 * np.diag([1.0, 1.0, 0.0])
        a, b, c = np.linalg.solve(chosen.T @ chosen + ridge, chosen.T @ contacts[inliers, 1])
        inliers = np.abs(design @ (a, b, c) - contacts[:, 1]) < PLANE_TOLERANCE
    tilt = float(np.degrees(np.arctan(np.hypot(a, b))))
    if tilt > MAX_TILT_DEGREES:
        return joints, None
    level = rot.qbetween(np.array([-a, 1.0, -b]), np.array([0.0, 1.0, 0.0]))  # floor normal -> +Y
    return rot.qrot(level, joints), tilt


def load_joints(row):
    """A CMU index row -> ((T, 22, 3) joints at 20 fps, floor tilt removed in degrees or None), read the way the
    training data reads it: T-pose (and Daz blend-in) frames skipped (`mocap.read_index` counts them), floor
    levelled."""
    return level_floor(load_clip(row.path, fps=row.fps, skip=row.tpose_frames, family=row.family).joints)


def clip_sequences(row, mocap_dir, loop_frames=None):
    """A CMU index row -> ((recorded, mirrored) sequences, plus with `loop_frames` a looped pair when the take is a
    cyclic motion shorter than that many joint rows and a cycle joins cleanly; floor tilt removed in degrees or
    None)."""
    joints, tilt = load_joints(row)
    name = index_name(row, mocap_dir)
    sequences = mirrored_pair(joints, row.description, name, False)
    if loop_frames and sequences[0].category in LOOPED_CATEGORIES and len(joints) < loop_frames:
        sequences += looped_pair(joints, row.description, name + LOOPED_SUFFIX, loop_frames)
    return sequences, tilt


def looped_pair(joints, description, source, frames):
    """The take's best cycle repeated to `frames` joint rows (`cycles`), as a mirrored pair; () when no cycle joins
    within `cycles.MAX_SEAM_ERROR`."""
    cycle = cycles.best_cycle(joints)
    if cycle is None or cycle[2] > cycles.MAX_SEAM_ERROR:
        return ()
    return mirrored_pair(cycles.repeat_cycle(joints, cycle[0], cycle[1], frames), description, source, False)


def procedural_sequences(target_rows, max_frames, seed_sequence, padded=()):
    """Procedural sequences (mirrored pairs) in rounds of one clip per category, until they hold at least
    `target_rows` feature rows; whole rounds keep the categories balanced. The categories in `padded` stand longer
    around their action (`procedural.timeline`)."""
    sequences, rows, round_index = [], 0, 0
    while rows < target_rows:
        for category in procedural.GENERATORS:
            rng = np.random.default_rng(seed_sequence.spawn(1)[0])  # one stream per clip
            clip = procedural.generate(category, rng, max_frames, category in padded)
            pair = mirrored_pair(clip.joints, clip.description, f"procedural/{category}/{round_index:03d}", True)
            sequences += pair
            rows += sum(len(s.features) for s in pair)
        round_index += 1
    return sequences


# ---------------------------------------------------------------------------------------------------------------
# Windows, normalisation, the dataset
# ---------------------------------------------------------------------------------------------------------------

def windows(rows, windowing, rng):
    """(start, length) windows over a sequence of `rows` feature rows (see `Windowing`)."""
    w = windowing
    if rows < w.min_length:
        return []
    if rows <= w.window:
        return [(0, rows)]
    starts = list(range(0, rows - w.window + 1, w.stride))
    if starts[-1] != rows - w.window:
        starts.append(rows - w.window)  # the clip's end is covered too
    result = [(s, w.window) for s in starts]
    for s in starts:
        for _ in range(w.shorter):
            length = int(rng.integers(w.min_length, w.window))
            result.append((s + int(rng.integers(0, w.window - length + 1)), length))
    return result


def normalization(features):
    """(N, 263) raw features -> Mean, Std (263,) float32, as HumanML3D's `mean_variance` computes them.

    Std is per dim, then replaced within each group of `STD_GROUPS` by the group's mean: the dims of one block
    (e.g. the x, y, z of all joint positions) keep their relative scale after z-scoring, and dims that barely vary
    (a hip's height relative to the pelvis) are not blown up into noise. A group with no variation at all
    (contacts in a tiny subset) gets Std 1, so it is centred but never divided by zero.
    """
    features = np.asarray(features, dtype=np.float64)
    mean, std = features.mean(0), features.std(0)
    for group in STD_GROUPS:
        std[group] = std[group].mean()
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def build_dataset(sequences, windowing, captions_per_window, rng):
    """Cut every sequence into windows and give each window `captions_per_window` of its sequence's captions."""
    offsets = np.cumsum([0] + [len(s.features) for s in sequences])
    rows = {key: [] for key in ("start", "length", "captions", "category", "source", "procedural", "mirrored",
                                "weight")}
    for sequence, offset in zip(sequences, offsets):
        cut = windows(len(sequence.features), windowing, rng)
        for start, length in cut:
            pool = sequence.captions
            chosen = rng.choice(len(pool), captions_per_window, replace=len(pool) < captions_per_window)
            rows["start"].append(offset + start)
            rows["length"].append(length)
            rows["captions"].append([pool[i] for i in chosen])
            rows["category"].append(cap.CATEGORIES.index(sequence.category))
            rows["source"].append(sequence.source)
            rows["procedural"].append(sequence.procedural)
            rows["mirrored"].append(sequence.mirrored)
            rows["weight"].append(len(sequence.features) / len(cut))
    return Dataset(
        features=np.concatenate([s.features for s in sequences]),
        sequence_offsets=offsets.astype(np.int64),
        sequence_source=np.array([s.source for s in sequences]),
        start=np.array(rows["start"], dtype=np.int64),
        length=np.array(rows["length"], dtype=np.int64),
        captions=np.array(rows["captions"]),
        category=np.array(rows["category"], dtype=np.int64),
        source=np.array(rows["source"]),
        procedural=np.array(rows["procedural"], dtype=bool),
        mirrored=np.array(rows["mirrored"], dtype=bool),
        weight=(np.array(rows["weight"]) / np.mean(rows["weight"])).astype(np.float32),
    )


def summarize(dataset, sequences, settings):
    """Counts and minutes (of feature rows at 20 fps, mirrored copies included) overall and per category."""
    def minutes(rows):
        return round(float(rows) / skeleton.FPS / 60, 3)

    rows = np.array([len(s.features) for s in sequences])
    is_procedural = np.array([s.procedural for s in sequences])
    is_looped = np.array([s.looped for s in sequences])
    categories = {}
    for index, name in enumerate(dataset.category_names):
        members = [i for i, s in enumerate(sequences) if s.category == name]
        if members:
            categories[name] = {
                "source_clips": sum(not (sequences[i].mirrored or sequences[i].looped) for i in members),
                "minutes": minutes(rows[members].sum()),
                "windows": int((dataset.category == index).sum()),
                "procedural": bool(is_procedural[members].all()),
            }
    procedural_rows, looped_rows = int(rows[is_procedural].sum()), int(rows[is_looped].sum())
    real_rows = int(rows.sum()) - procedural_rows - looped_rows
    return {
        "settings": settings,
        "real_clips": sorted({s.source for s in sequences if not (s.procedural or s.mirrored or s.looped)}),
        "looped_clips": sorted({s.source for s in sequences if s.looped and not s.mirrored}),
        "procedural_clips": sum(s.procedural and not s.mirrored for s in sequences),
        "minutes": {"real": minutes(real_rows), "looped": minutes(looped_rows), "procedural": minutes(procedural_rows),
                    "total": minutes(rows.sum())},
        "procedural_share_percent": round(100.0 * procedural_rows / rows.sum(), 2),
        "feature_rows": int(rows.sum()),
        "windows": {"total": len(dataset), "procedural": int(dataset.procedural.sum()),
                    "full_length": int((dataset.length == settings["window"]).sum()),
                    "length_min": int(dataset.length.min()), "length_max": int(dataset.length.max())},
        "categories": categories,
    }


def prepare(mocap_dir, windowing=Windowing(), procedural_share=PROCEDURAL_SHARE,
            captions_per_window=CAPTIONS_PER_WINDOW, seed=0, files=None, limit=None, loop_runs=False,
            pad_procedural=()):
    """Everything prepare-data computes: (dataset, Mean, Std, summary). Deterministic given `seed`."""
    if not 0 <= procedural_share < 1:
        raise UserError(f"--procedural-share must be in [0, 1), got {procedural_share}")
    if captions_per_window < 1 or (limit is not None and limit < 1):
        raise UserError(f"--captions-per-window and --limit must be at least 1, got {captions_per_window}, {limit}")
    unknown = sorted(set(pad_procedural) - set(procedural.GENERATORS))
    if unknown:
        raise UserError(f"--pad-procedural: no procedural category {unknown}; the categories are "
                        f"{list(procedural.GENERATORS)}")
    mocap_dir = Path(mocap_dir)
    if not mocap_dir.is_dir():
        raise UserError(f"mocap folder {mocap_dir} does not exist (expected shared/mocap/cmu with index.csv)")
    rows = training_rows(mocap_dir, files, limit)
    window_seed, procedural_seed = np.random.SeedSequence(seed).spawn(2)

    sequences, tilts = [], {}
    for row in rows:
        from_clip, tilt = clip_sequences(row, mocap_dir, windowing.window + 1 if loop_runs else None)
        sequences += from_clip
        tilts[index_name(row, mocap_dir)] = None if tilt is None else round(tilt, 2)
    too_short = sorted(s.source for s in sequences if len(s.features) < windowing.min_length)
    sequences = [s for s in sequences if len(s.features) >= windowing.min_length]
    if not sequences:
        raise UserError(f"every clip is shorter than --min-length {windowing.min_length} frames: {too_short}")
    # share = procedural / (real + procedural)  =>  procedural = share / (1 - share) * real
    target = procedural_share / (1 - procedural_share) * sum(len(s.features) for s in sequences)
    if target > 0:
        sequences += procedural_sequences(target, windowing.window + 1, procedural_seed, pad_procedural)
    dataset = build_dataset(sequences, windowing, captions_per_window, np.random.default_rng(window_seed))
    mean, std = normalization(np.concatenate([s.features for s in sequences]))
    settings = {"mocap": str(mocap_dir), "seed": seed, "procedural_share": procedural_share,
                "captions_per_window": captions_per_window, "loop_runs": loop_runs,
                "pad_procedural": sorted(pad_procedural), **windowing.__dict__}
    summary = summarize(dataset, sequences, settings)
    summary["floor_tilt_removed_degrees"] = tilts  # null: not levelled (too few resting feet)
    summary["dropped_shorter_than_min_length"] = too_short
    return dataset, mean, std, summary


def embed_captions(captions):
    """(C,) distinct captions -> (C, 384) float32 MiniLM embeddings."""
    from .text import MiniLMTextEncoder

    return MiniLMTextEncoder().encode(list(captions)).numpy().astype(np.float32)


def load_caption_embeddings(directory, caption_table):
    path = Path(directory) / CAPTION_EMBEDDINGS_FILE
    embeddings = np.load(path) if path.exists() else None
    if embeddings is None or len(embeddings) != len(caption_table):  # older or partial folder: embed now
        embeddings = embed_captions(caption_table)
    return embeddings


def write(out_dir, dataset, mean, std, summary):
    """Write the data files; a failure in any of them leaves the folder as it was."""
    out_dir = Path(out_dir)
    embeddings = embed_captions(np.unique(dataset.captions))
    names = (DATASET_FILE, MEAN_FILE, STD_FILE, SUMMARY_FILE, CAPTION_EMBEDDINGS_FILE)
    with atomic_outputs(*(out_dir / name for name in names)) as (dataset_tmp, mean_tmp, std_tmp, summary_tmp,
                                                                 embeddings_tmp):
        np.savez_compressed(dataset_tmp, **dataset.arrays())
        np.save(mean_tmp, mean)
        np.save(std_tmp, std)
        np.save(embeddings_tmp, embeddings)
        summary_tmp.write_text(json.dumps(summary, indent=2) + "\n")
