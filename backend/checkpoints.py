"""Load official MDM checkpoints (.pt + args.json) and save/load the self-describing checkpoint folder.

Folder layout: `config.json` (format, every model/diffusion argument via `MDMConfig`, frame range, free metadata and
the sha256 of every other file), `model.safetensors`, `Mean.npy`/`Std.npy` for models that work on z-scored
features, and for text models trained by `backend.train` their captions as `vocabulary.safetensors` (embeddings as a
tensor, sentences in its metadata: no pickle, and the same bytes for the same captions). Loading verifies every
checksum first, so a truncated copy or mixed-up statistics fail loudly.
"""
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import skeleton
from .errors import NUMPY_FILE_ERRORS, UserError, first_line
from .model import MDM, MDMConfig
from .text import PromptVocabulary

FORMAT = "mdm-blender-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, MEAN_FILE, STD_FILE = "config.json", "model.safetensors", "Mean.npy", "Std.npy"
VOCABULARY_FILE = "vocabulary.safetensors"
# Official state-dict entries that are not part of the denoiser: the frozen CLIP copy and the fixed sinusoid tables.
DROPPED_PREFIXES = ("clip_model.",)
DROPPED_SUFFIXES = ("sequence_pos_encoder.pe",)
# Frame range each official dataset was trained on: fps, shortest and longest clip (HumanML3D/KIT drop clips under
# 40/24 frames and cut at 196; the action models always generate 60 frames).
DATASET_FRAMES = {
    "humanml": dict(fps=skeleton.FPS, min_frames=40, max_frames=skeleton.MAX_FRAMES),
    "kit": dict(fps=12.5, min_frames=24, max_frames=196),
    "humanact12": dict(fps=20, min_frames=60, max_frames=60),
    "uestc": dict(fps=20, min_frames=60, max_frames=60),
}


@dataclass
class LoadedModel:
    """A denoiser ready to sample: the network (eval mode, on its device), its config and feature statistics
    (None for models that do not normalise, like the official action models) and free-form metadata."""

    model: MDM
    config: MDMConfig
    mean: np.ndarray | None
    std: np.ndarray | None
    meta: dict = field(default_factory=dict)
    vocabulary: PromptVocabulary | None = None  # the captions a text model was trained on, when it ships them

    @property
    def frames(self) -> dict:
        return self.meta["frames"]


# ---------------------------------------------------------------- official .pt files

def read_torch_file(path, device="cpu") -> dict:
    """`torch.load(weights_only=True)` onto `device`, with a clear message for each way a file can be unusable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint file {path} does not exist")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UserError(f"{path} holds Python objects other than tensors and plain containers; it is refused because "
                        f"loading it could run code (weights_only=True). Re-save its state dict with torch.save. "
                        f"({first_line(err)})") from None
    except Exception as err:  # torch's loader fails in many ways on a file that is not a checkpoint (KeyError, ...)
        raise UserError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): "
                        f"{first_line(err)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a {type(data).__name__}, not a state dict")
    return data


def official_state_dict(checkpoint: dict, use_ema: bool, path) -> dict:
    """The denoiser's weights from an official file: a raw state dict, or {'model', 'model_avg'} (EMA weights in
    `model_avg`, used when the model was trained with `use_ema`)."""
    if "model" not in checkpoint:
        return checkpoint
    key = "model_avg" if use_ema else "model"
    if key not in checkpoint:
        raise UserError(f"{path} has no '{key}' entry (args.json says use_ema={use_ema}); keys: {sorted(checkpoint)}")
    return checkpoint[key]


def build_model(state_dict: dict, config: MDMConfig, source="state dict") -> MDM:
    """An MDM in eval mode with these weights; every key must match (name and shape) except the dropped ones."""
    state_dict = {k: v for k, v in state_dict.items()
                  if not k.startswith(DROPPED_PREFIXES) and not k.endswith(DROPPED_SUFFIXES)}
    model = MDM(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
                         if k in state_dict and state_dict[k].shape != v.shape)
    if missing or unexpected or wrong_shape:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
                 for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("wrong shapes (file != model)", wrong_shape)) if keys]
        raise UserError(f"{source} does not match the model its config describes ({config.arch}, "
                        f"{config.num_layers} layers, latent {config.latent_dim}): " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def read_json(path, what) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{what} {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must hold a JSON object")
    return data


def load_official(pt_path, args_json=None, device="cpu") -> tuple[MDM, MDMConfig]:
    """An official checkpoint: `MODEL.pt` plus the `args.json` its training wrote (default: beside the .pt)."""
    pt_path = Path(pt_path)
    args_path = Path(args_json) if args_json else pt_path.parent / "args.json"
    if not args_path.is_file():
        raise UserError(f"{args_path} is missing: an official checkpoint needs the args.json its training wrote "
                        f"(it sits beside the .pt in the released zip); pass it with --args")
    args = read_json(args_path, "official training arguments")
    config = MDMConfig.from_official_args(args)
    state_dict = official_state_dict(read_torch_file(pt_path), bool(args.get("use_ema", False)), pt_path)
    return build_model(state_dict, config, source=str(pt_path)).to(device), config


# ---------------------------------------------------------------- statistics

def read_stats(path, config: MDMConfig, positive=False) -> np.ndarray:
    """Mean.npy / Std.npy: one float per feature, finite, and with `positive` (Std: it is divided by) above 0."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"feature statistics file {path} does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except NUMPY_FILE_ERRORS as err:
        raise UserError(f"{path} is not a readable .npy array: {err}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive (or a zipped .pt) loads as a dict of arrays
        array.close()
        raise UserError(f"{path} is an archive, not a .npy array of {config.input_feats} numbers")
    return check_stats(array, config, str(path), positive)


def check_stats(array, config: MDMConfig, name, positive=False) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32).reshape(-1)
    if array.size != config.input_feats:
        raise UserError(f"{name} has {array.size} values; this model works on {config.input_feats} features "
                        f"(HumanML3D: 263, KIT: 251); are these the right statistics?")
    if not np.all(np.isfinite(array)):
        raise UserError(f"{name} contains NaN or infinite values")
    if positive and not np.all(array > 0):
        raise UserError(f"{name} has values <= 0 ({int(np.sum(array <= 0))} of {array.size}): standard deviations "
                        f"must be positive (features are divided by them); are these the right statistics?")
    return array


def needs_stats(config: MDMConfig) -> bool:
    """Feature models (hml_vec) sample in z-scored space; the official action models use raw rot6d."""
    return config.data_rep == "hml_vec"


# ---------------------------------------------------------------- the checkpoint folder

def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def frame_range(config: MDMConfig, meta: dict) -> dict:
    if "frames" in meta:
        return meta["frames"]
    if config.dataset not in DATASET_FRAMES:
        raise UserError(f"no known frame range for dataset {config.dataset!r}: give extra_meta['frames'] = "
                        f"{{'fps', 'min_frames', 'max_frames'}}")
    return DATASET_FRAMES[config.dataset]


def save_folder(directory, model: MDM, config: MDMConfig, mean=None, std=None, extra_meta=None,
                vocabulary: PromptVocabulary | None = None) -> Path:
    """Write the folder atomically (built beside it, then renamed); an existing non-empty folder is refused."""
    from safetensors.torch import save_file

    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UserError(f"{directory} already exists and is not an empty folder; choose a new output folder")
    if (mean is None) != (std is None):
        raise UserError("give both Mean and Std, or neither")
    if mean is None and needs_stats(config):
        raise UserError(f"a {config.data_rep} model needs its Mean.npy and Std.npy to sample")
    meta = dict(extra_meta or {})
    meta["frames"] = frame_range(config, meta)

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / WEIGHTS_FILE)
        if mean is not None:
            np.save(tmp / MEAN_FILE, check_stats(mean, config, "Mean"))
            np.save(tmp / STD_FILE, check_stats(std, config, "Std", positive=True))
        if vocabulary is not None:
            save_vocabulary(tmp / VOCABULARY_FILE, vocabulary, config)
        files = {p.name: sha256_of(p) for p in sorted(tmp.iterdir())}
        document = dict(format=FORMAT, format_version=FORMAT_VERSION, config=config.to_dict(), meta=meta,
                        sha256=files)
        (tmp / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n")
        for path in tmp.iterdir():  # mkdtemp and safetensors create owner-only files; a checkpoint is shareable
            path.chmod(0o644)
        tmp.chmod(0o755)
        if directory.exists():
            directory.rmdir()  # empty, checked above
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return directory


def check_frame_range(frames, where) -> None:
    """UserError unless `frames` (a checkpoint's meta.frames) is {"fps" > 0, "min_frames" <= "max_frames", both
    >= 1}."""
    try:
        fps, low, high = (frames[key] for key in ("fps", "min_frames", "max_frames"))
        valid = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (fps, low, high))
        valid = valid and fps > 0 and 1 <= low <= high
    except (TypeError, KeyError):
        valid = False
    if not valid:
        raise UserError(f"{where}: meta.frames must be {{fps > 0, 1 <= min_frames <= max_frames}}, got {frames!r}")


def load_folder(directory, device="cpu") -> LoadedModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    document = read_json(directory / CONFIG_FILE, "checkpoint config")
    if document.get("format") != FORMAT:
        raise UserError(f"{directory / CONFIG_FILE} is not an {FORMAT} config (format={document.get('format')!r})")
    version = document.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{directory} was written by a newer version (format {version!r})")
    missing = [key for key in ("config", "meta", "sha256") if not isinstance(document.get(key), dict)]
    if missing:
        raise UserError(f"{directory / CONFIG_FILE} lacks {missing}; the checkpoint folder is incomplete")
    check_frame_range(document["meta"].get("frames"), directory / CONFIG_FILE)
    for name, expected in document["sha256"].items():
        path = directory / name
        if not path.is_file():
            raise UserError(f"{path} is missing from the checkpoint folder")
        if sha256_of(path) != expected:
            raise UserError(f"{path} does not match the checksum in {CONFIG_FILE}: the file is corrupt, truncated or "
                            f"was replaced; copy the checkpoint folder again")
    if WEIGHTS_FILE not in document["sha256"]:
        raise UserError(f"{directory / CONFIG_FILE} lists no {WEIGHTS_FILE}")
    config = MDMConfig.from_dict(document["config"])
    try:
        state_dict = load_file(directory / WEIGHTS_FILE)
    except (SafetensorError, OSError) as err:
        raise UserError(f"{directory / WEIGHTS_FILE} is not a readable safetensors file: {err}") from None
    model = build_model(state_dict, config, source=str(directory / WEIGHTS_FILE)).to(device)
    has_stats = MEAN_FILE in document["sha256"]
    mean = read_stats(directory / MEAN_FILE, config) if has_stats else None
    std = read_stats(directory / STD_FILE, config, positive=True) if has_stats else None
    vocabulary = load_vocabulary(directory / VOCABULARY_FILE, config) if VOCABULARY_FILE in document["sha256"] else None
    meta = {**document["meta"], "path": str(directory)}
    return LoadedModel(model, config, mean, std, meta, vocabulary)


def save_vocabulary(path, vocabulary: PromptVocabulary, config: MDMConfig):
    from safetensors.torch import save_file

    check_vocabulary(vocabulary, config, path)
    # One metadata entry: safetensors writes several in a random order, and the file's checksum must not vary.
    save_file({"embeddings": vocabulary.embeddings.float().contiguous()}, path,
              metadata={"sentences": json.dumps(list(vocabulary.sentences))})


def load_vocabulary(path, config: MDMConfig) -> PromptVocabulary:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            sentences = json.loads((f.metadata() or {}).get("sentences", "null"))
            embeddings = f.get_tensor("embeddings")
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path} is not a readable prompt vocabulary: {err}") from None
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
        raise UserError(f"{path} lacks its list of sentences")
    return check_vocabulary(PromptVocabulary(tuple(sentences), embeddings), config, path)


def check_vocabulary(vocabulary: PromptVocabulary, config: MDMConfig, path) -> PromptVocabulary:
    if config.cond_mode != "text" or vocabulary.embeddings.shape[1] != config.cond_dim:
        raise UserError(f"{path}: a prompt vocabulary of {vocabulary.embeddings.shape[1]}-d embeddings does not fit a "
                        f"{config.cond_mode} model with {config.cond_dim}-d text conditions")
    return vocabulary


def existing_checkpoint(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist: give a model folder (config.json, model.safetensors) or "
                        f"an official .pt with args.json beside it")
    return path


def load_checkpoint(path, device="cpu", mean=None, std=None, args_json=None) -> LoadedModel:
    """A checkpoint folder, or an official .pt (args.json, Mean.npy and Std.npy taken from beside it unless given)."""
    path = existing_checkpoint(path)
    if path.is_dir():
        return load_folder(path, device)
    model, config = load_official(path, args_json, device)
    mean_path = Path(mean) if mean else path.parent / MEAN_FILE
    std_path = Path(std) if std else path.parent / STD_FILE
    mean_arr = std_arr = None
    if needs_stats(config):
        for stats_path in (mean_path, std_path):
            if not stats_path.is_file():
                raise UserError(f"{stats_path} is missing: a text model needs the HumanML3D Mean.npy/Std.npy it was "
                                f"trained with (not the evaluator's t2m_mean/std); pass --mean and --std")
        mean_arr, std_arr = read_stats(mean_path, config), read_stats(std_path, config, positive=True)
    meta = dict(frames=frame_range(config, {}), source=dict(file=path.name, sha256=sha256_of(path)), path=str(path))
    return LoadedModel(model, config, mean_arr, std_arr, meta)


def probe_inputs(config: MDMConfig, generator: torch.Generator, batch=2, frames=None):
    """A fixed random input exercising every part of the network (both timestep ends, cond and uncond rows),
    used to check that a converted checkpoint reproduces its source."""
    frames = frames or min(DATASET_FRAMES.get(config.dataset, {}).get("max_frames", 60), 60)
    x = torch.randn(batch, config.njoints, config.nfeats, frames, generator=generator)
    t = torch.linspace(config.diffusion_steps - 1, 0, batch).long()
    cond = {"uncond": torch.arange(batch) % 2 == 1}
    if config.cond_mode == "text":
        tokens = (batch, 5, config.cond_dim) if config.text_encoder == "bert" else (batch, config.cond_dim)
        cond["text_embed"] = torch.randn(*tokens, generator=generator)
    elif config.cond_mode == "action":
        cond["action"] = torch.randint(0, config.num_actions, (batch,), generator=generator)
    if config.mask_frames:
        lengths = frames - (torch.arange(batch) % 2) * (frames // 2)  # full, half, full, ...
        cond["frame_mask"] = torch.arange(frames)[None] < lengths[:, None]  # [B, F]
    if config.keyframe_dim:
        keys = (batch, config.keyframe_dim, 1, frames)
        cond["keyframe_values"] = torch.randn(keys, generator=generator)
        cond["keyframe_mask"] = torch.rand(keys, generator=generator) < 0.2
    return x, t, cond


def max_output_difference(model_a: MDM, model_b: MDM, config: MDMConfig, seed=0) -> float:
    """Largest |a - b| of two models' outputs on the same fixed probe input (see `probe_inputs`)."""
    x, t, cond = probe_inputs(config, torch.Generator().manual_seed(seed))
    device_a, device_b = next(model_a.parameters()).device, next(model_b.parameters()).device
    with torch.no_grad():
        out_a = model_a(x.to(device_a), t.to(device_a), {k: v.to(device_a) for k, v in cond.items()})
        out_b = model_b(x.to(device_b), t.to(device_b), {k: v.to(device_b) for k, v in cond.items()})
    return (out_a.cpu() - out_b.cpu()).abs().max().item()
