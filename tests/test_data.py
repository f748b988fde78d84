"""Training data: only licensed train clips, mirrored copies, windows, normalisation, and prepare-data end to end."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from backend import captions as cap
from backend import data, skeleton
from backend import rotations as rot
from backend.errors import UserError
from backend.mocap import load_clip
from conftest import MOCAP_DIR, REPO

# A small subset: a walk, a kick, a long multi-action clip (two skeleton families) and a one-second run (looped).
SUBSET = ("przestr/07_01.bvh", "acrnn/martial/04.bvh", "mb_misc/01_01.bvh", "przestr/09_02.bvh")
RUN = "przestr/09_02.bvh"
WINDOW, MIN_LENGTH = 80, 16
PADDED = ("crouch", "turn")  # the procedural categories the fixture stands longer (--pad-procedural)


def index_rows():
    with open(MOCAP_DIR / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def forbidden_sources():
    """Index files that must never be trained on: eval clips and the unlicensed iClone folder."""
    return {r["file"] for r in index_rows() if r["split"] != "train" or r["file"].startswith("iclone/")}


def prepare_data(*args):
    return subprocess.run([sys.executable, "-m", "backend", "prepare-data", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    result = prepare_data("--mocap", MOCAP_DIR, "--out", out, "--window", WINDOW, "--stride", 20,
                          "--min-length", MIN_LENGTH, "--procedural-share", 0.25, "--seed", 3, "--loop-runs",
                          "--pad-procedural", *PADDED, "--files", *SUBSET)
    assert result.returncode == 0, result.stderr
    return out


def test_training_rows_are_train_split_and_licensed_only():
    chosen = {data.index_name(r, MOCAP_DIR) for r in data.training_rows(MOCAP_DIR)}
    train = {r["file"] for r in index_rows() if r["split"] == "train"}
    assert chosen == train - forbidden_sources()
    assert any(name.startswith("iclone/") for name in train)  # the exclusion is not vacuous


@pytest.mark.parametrize("name, reason", [
    ("przestr/03_01.bvh", "split 'eval'"),
    ("iclone/002_05.bvh", "unlicensed folder"),
    ("nowhere/00_00.bvh", "not listed"),
])
def test_requesting_a_forbidden_file_is_an_error(name, reason):
    with pytest.raises(UserError, match=reason):
        data.training_rows(MOCAP_DIR, files=[name])


def test_windows_cover_the_sequence_with_requested_lengths():
    windowing = data.Windowing(window=120, stride=20, min_length=16, shorter=1)
    rng = np.random.default_rng(0)
    cut = data.windows(300, windowing, rng)
    full = [(s, n) for s, n in cut if n == 120]
    assert [s for s, _ in full] == [0, 20, 40, 60, 80, 100, 120, 140, 160, 180]
    shorter = [(s, n) for s, n in cut if n != 120]
    assert len(shorter) == len(full) and all(16 <= n < 120 and 0 <= s and s + n <= 300 for s, n in shorter)
    assert data.windows(301, windowing, rng)[len(full)] == (181, 120)  # the end is covered
    assert data.windows(90, windowing, rng) == [(0, 90)]
    assert data.windows(15, windowing, rng) == []


def floor_spread(joints):
    """How much the per-frame lowest foot joint wanders in height (m): ~0 on a level floor."""
    lowest = joints[:, list(skeleton.CONTACT_JOINTS), 1].min(axis=1)
    return np.percentile(lowest, 90) - np.percentile(lowest, 5)


def load_train_clip(name):
    row = next(r for r in data.training_rows(MOCAP_DIR) if data.index_name(r, MOCAP_DIR) == name)
    return load_clip(row.path, fps=row.fps, skip=4, family=row.family).joints


def test_level_floor_removes_a_floor_tilt():
    walk, _ = data.level_floor(load_train_clip("przestr/07_01.bvh"))  # walks 3.5 m along +Z
    tilted = rot.qrot(rot.axis_angle_to_quaternion(np.array([1.0, 0.0, 0.0]), np.radians(2.0)), walk)
    levelled, tilt = data.level_floor(tilted)
    assert floor_spread(tilted) > 0.08  # tan(2 deg) * 3.5 m is 12 cm end to end
    assert 1.7 < tilt < 2.2 and floor_spread(levelled) < floor_spread(walk) + 0.01
    np.testing.assert_allclose(np.linalg.norm(levelled - levelled[:, :1], axis=-1),
                               np.linalg.norm(tilted - tilted[:, :1], axis=-1), atol=1e-9)  # a rotation


def test_level_floor_leaves_a_clip_without_resting_feet_alone():
    run = load_train_clip("przestr/09_01.bvh")  # one second of running: no foot rests long enough
    same, tilt = data.level_floor(run)
    assert tilt is None and same is run


def test_normalization_groups_std_like_humanml3d_and_never_divides_by_zero():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, skeleton.FEATURE_DIM)) * rng.uniform(0.1, 3.0, skeleton.FEATURE_DIM)
    features[:, skeleton.CONTACT] = 1.0  # feet always in contact
    mean, std = data.normalization(features)
    np.testing.assert_allclose(mean, features.mean(0), rtol=1e-5, atol=1e-6)
    for group in data.STD_GROUPS:
        assert np.ptp(std[group]) == 0
    np.testing.assert_allclose(std[skeleton.RIC], features[:, skeleton.RIC].std(0).mean(), rtol=1e-5)
    assert (std[skeleton.CONTACT] == 1).all() and (std > 0).all()


def test_prepare_data_writes_the_dataset(prepared):
    assert sorted(p.name for p in prepared.iterdir()) == ["Mean.npy", "Std.npy", "captions_minilm.npy", "dataset.npz",
                                                          "summary.json"]
    dataset = data.Dataset.load(prepared)
    embeddings = np.load(prepared / data.CAPTION_EMBEDDINGS_FILE)  # one MiniLM row per distinct caption
    assert embeddings.shape == (len(np.unique(dataset.captions)), 384)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    mean, std = data.load_normalization(prepared)

    originals = {s.removesuffix(data.MIRRORED_SUFFIX).removesuffix(data.LOOPED_SUFFIX) for s in dataset.source}
    assert {s for s in originals if not s.startswith("procedural/")} == set(SUBSET)
    assert not originals & forbidden_sources()
    assert dataset.mirrored.sum() * 2 == len(dataset)  # every source also mirrored

    assert dataset.features.dtype == np.float32 and np.isfinite(dataset.features).all()
    assert mean.shape == std.shape == (skeleton.FEATURE_DIM,) and np.isfinite(mean).all() and (std > 0).all()
    assert (MIN_LENGTH <= dataset.length).all() and (dataset.length <= WINDOW).all()
    assert (dataset.length == WINDOW).sum() > 10 and (dataset.length < WINDOW).sum() > 10
    for i in range(len(dataset)):
        sequence = np.searchsorted(dataset.sequence_offsets, dataset.start[i], side="right") - 1
        assert dataset.sequence_source[sequence] == dataset.source[i]
        assert dataset.start[i] + dataset.length[i] <= dataset.sequence_offsets[sequence + 1]  # inside its clip

    # Drawn by weight, sequences come up in proportion to their length: procedural windows get their frame share.
    rows = np.diff(dataset.sequence_offsets)
    by_sequence = {source: 0.0 for source in dataset.sequence_source}
    for source, weight in zip(dataset.source, dataset.weight):
        by_sequence[source] += weight
    drawn = np.array([by_sequence[s] for s in dataset.sequence_source])
    np.testing.assert_allclose(drawn / drawn.sum(), rows / rows.sum(), rtol=1e-5)

    heldout = {c for name in cap.CATEGORIES for c in cap.heldout_captions(name)}
    assert not heldout & set(dataset.captions.ravel())
    categories = {dataset.category_names[c] for c in dataset.category}
    assert {"walk", "kick", "jump", "idle", "turn", "wave", "crouch", "sit"} <= categories


def test_random_shifts_are_fresh_crops_inside_their_sequence(prepared):
    dataset = data.Dataset.load(prepared)
    rng = np.random.default_rng(0)
    indices = rng.integers(0, len(dataset), 4000)
    shifts = dataset.random_shifts(indices, 10, rng)
    assert shifts.min() == -10 and shifts.max() == 10 and len(np.unique(shifts)) == 21
    sequence = np.searchsorted(dataset.sequence_offsets, dataset.start[indices], side="right") - 1
    start = dataset.start[indices] + shifts
    assert np.all(start >= dataset.sequence_offsets[sequence])
    assert np.all(start + dataset.length[indices] <= dataset.sequence_offsets[sequence + 1])
    sequence_rows = np.diff(dataset.sequence_offsets)[
        np.searchsorted(dataset.sequence_offsets, dataset.start, side="right") - 1]
    whole = np.flatnonzero(dataset.length == sequence_rows)  # windows that are their whole sequence: cannot move
    assert len(whole) and not dataset.random_shifts(whole, 10, rng).any()
    i = int(indices[np.argmax(shifts)])  # a window that can move 10 rows on
    np.testing.assert_array_equal(dataset.window(i, 3), dataset.features[dataset.start[i] + 3:][:dataset.length[i]])


def test_training_set_gives_normalised_windows_joints_and_model_settings(prepared):
    from backend.model import MDMConfig

    training = data.TrainingSet(prepared)
    dataset, (mean, std) = training.dataset, data.load_normalization(prepared)
    i = int(np.argmax(dataset.length))
    window = training.window(i)
    assert window.dtype == np.float32 and window.shape == (dataset.length[i], skeleton.FEATURE_DIM)
    np.testing.assert_allclose(window * std + mean, dataset.window(i), atol=1e-5)
    joints = training.joints(i)
    assert joints.shape == (dataset.length[i], skeleton.NUM_JOINTS, 3)
    np.testing.assert_allclose(joints[0, 0, [0, 2]], 0.0, atol=1e-6)  # each window starts at the origin
    config = MDMConfig(**training.model_defaults())
    assert (config.njoints, config.cond_dim, config.mask_frames) == (skeleton.FEATURE_DIM, 384, True)
    assert training.meta()["frames"] == {"fps": skeleton.FPS, "min_frames": MIN_LENGTH, "max_frames": WINDOW}


def test_sampling_tempers_each_categorys_share(prepared):
    """Power 1 draws windows by duration; power 0 gives every category the same share, and within a category
    the windows keep their duration ratios."""
    training = data.TrainingSet(prepared)
    category, weight = training.dataset.category, training.dataset.weight.astype(np.float64)
    by_duration = training.probabilities(1.0)
    np.testing.assert_allclose(by_duration, weight / weight.sum(), rtol=1e-6)  # computed in float32
    equal = training.probabilities(0.0)
    shares = np.bincount(category, weights=equal)[np.unique(category)]
    assert len(shares) > 1
    np.testing.assert_allclose(shares, 1 / len(shares))
    np.testing.assert_allclose(equal.sum(), 1.0)
    first = category == category[0]
    np.testing.assert_allclose(equal[first] / equal[first].sum(), weight[first] / weight[first].sum())


@pytest.mark.slow
def test_training_set_embeds_one_paraphrase_per_window(prepared):
    training = data.TrainingSet(prepared)
    embeddings = training.caption_embeddings([0, 1, 1], np.random.default_rng(0))
    assert embeddings.shape == (3, 384) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)  # MiniLM normalises


def test_mirrored_windows_swap_left_and_right_in_captions(prepared):
    dataset = data.Dataset.load(prepared)
    sided = [i for i in range(len(dataset)) if dataset.category_names[dataset.category[i]] in cap.SIDED_CATEGORIES]
    assert sided
    for i in sided:
        original = dataset.source[i].removesuffix(data.MIRRORED_SUFFIX)
        j = next(j for j in sided if dataset.source[j] == original)  # the unmirrored window of that clip
        side = "left" if "left" in dataset.captions[j][0] else "right"
        expected = side if not dataset.mirrored[i] else {"left": "right", "right": "left"}[side]
        assert all(expected in c and ({"left", "right"} - {expected}).pop() not in c for c in dataset.captions[i])


def test_summary_reports_minutes_and_procedural_share(prepared):
    summary = json.loads((prepared / "summary.json").read_text())
    dataset = data.Dataset.load(prepared)
    assert summary["real_clips"] == sorted(SUBSET)
    assert summary["looped_clips"] == [RUN + data.LOOPED_SUFFIX]
    assert summary["settings"]["loop_runs"] and summary["settings"]["pad_procedural"] == sorted(PADDED)
    rows = np.diff(dataset.sequence_offsets)
    procedural = np.array([s.startswith("procedural/") for s in dataset.sequence_source])
    looped = np.array([data.LOOPED_SUFFIX in s for s in dataset.sequence_source])
    share = 100 * rows[procedural].sum() / rows.sum()
    assert summary["procedural_share_percent"] == pytest.approx(share, abs=0.01)
    assert 25 <= share < 45  # asked for 25%; whole rounds (a clip per category) overshoot on a small subset
    minutes = lambda mask: rows[mask].sum() / skeleton.FPS / 60
    assert summary["minutes"]["real"] == pytest.approx(minutes(~procedural & ~looped), abs=1e-3)
    assert summary["minutes"]["looped"] == pytest.approx(minutes(looped), abs=1e-3)
    assert summary["windows"]["total"] == len(dataset)
    assert sum(c["windows"] for c in summary["categories"].values()) == len(dataset)


def test_prepare_is_deterministic_given_the_seed():
    windowing = data.Windowing(window=60, stride=30)
    first, mean, std, _ = data.prepare(MOCAP_DIR, windowing, 0.1, 4, seed=5, files=["przestr/07_02.bvh"])
    again, mean2, std2, _ = data.prepare(MOCAP_DIR, windowing, 0.1, 4, seed=5, files=["przestr/07_02.bvh"])
    for key, value in first.arrays().items():
        np.testing.assert_array_equal(value, again.arrays()[key], err_msg=key)
    np.testing.assert_array_equal(std, std2)
    other, *_ = data.prepare(MOCAP_DIR, windowing, 0.1, 4, seed=6, files=["przestr/07_02.bvh"])
    assert not np.array_equal(first.captions, other.captions)


def test_only_the_named_procedural_categories_are_padded():
    plain = data.procedural_sequences(2000, 121, np.random.SeedSequence(1))  # spawning advances a SeedSequence
    padded = data.procedural_sequences(2000, 121, np.random.SeedSequence(1), padded=("crouch",))
    assert [s.source for s in plain] == [s.source for s in padded]
    lengths = lambda sequences, category: [len(s.features) for s in sequences if f"/{category}/" in s.source]
    assert np.mean(lengths(padded, "crouch")) > np.mean(lengths(plain, "crouch")) + 10
    for category in ("idle", "turn", "wave", "sit"):  # same streams, unpadded: the very same clips
        assert lengths(padded, category) == lengths(plain, category)


def test_pad_procedural_without_names_pads_every_category_and_rejects_unknown_ones(tmp_path):
    from backend.commands.prepare_data import padded_categories
    from backend.procedural import GENERATORS
    assert padded_categories(None) == () and padded_categories([]) == tuple(GENERATORS)
    assert padded_categories(["sit"]) == ("sit",)
    result = prepare_data("--out", tmp_path / "out", "--pad-procedural", "jog")
    assert result.returncode == 2 and "invalid choice: 'jog'" in result.stderr
    with pytest.raises(UserError, match="no procedural category"):
        data.prepare(MOCAP_DIR, pad_procedural=("jog",))
    assert not (tmp_path / "out").exists()


def test_missing_mocap_folder_is_a_clear_error_and_writes_nothing(tmp_path):
    result = prepare_data("--mocap", tmp_path / "no_such_folder", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "error:" in result.stderr and "no_such_folder" in result.stderr
    assert not (tmp_path / "out").exists()


def test_index_without_train_rows_is_a_clear_error_and_writes_nothing(tmp_path):
    rows = [r for r in index_rows() if r["split"] == "eval"]
    with open(tmp_path / "index.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out"
    out.mkdir()
    result = prepare_data("--mocap", tmp_path, "--out", out)
    assert result.returncode == 2 and "no usable training rows" in result.stderr
    assert list(out.iterdir()) == []


def test_failure_while_writing_leaves_previous_output_untouched(tmp_path, prepared):
    before = {p.name: p.read_bytes() for p in prepared.iterdir()}
    dataset, mean, std, summary = data.prepare(MOCAP_DIR, data.Windowing(60, 30), 0.0, 2, files=[SUBSET[0]])
    summary["unserialisable"] = object()  # json.dumps fails after the arrays were written to temporaries
    out = tmp_path / "copy"
    out.mkdir()
    for name, content in before.items():
        (out / name).write_bytes(content)
    with pytest.raises(TypeError):
        data.write(out, dataset, mean, std, summary)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.slow
def test_full_dataset_uses_every_licensed_train_clip(tmp_path):
    result = prepare_data("--out", tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    train = {r["file"] for r in index_rows() if r["split"] == "train"}
    assert set(summary["real_clips"]) == train - forbidden_sources()
    assert 15 <= summary["procedural_share_percent"] <= 25
    assert summary["looped_clips"] == [] and summary["minutes"]["looped"] == 0  # looping is opt-in
    assert summary["settings"]["mocap"].endswith("mocap/cmu")


def test_a_short_run_also_gives_a_looped_pair_as_long_as_a_window(prepared):
    dataset = data.Dataset.load(prepared)
    sources = list(dataset.sequence_source)
    take = np.diff(dataset.sequence_offsets)[sources.index(RUN)]
    for name in (RUN + data.LOOPED_SUFFIX, RUN + data.LOOPED_SUFFIX + data.MIRRORED_SUFFIX):
        windows = dataset.source == name
        assert windows.sum() == 1 and dataset.length[windows][0] == WINDOW > take
        assert dataset.category_names[dataset.category[windows][0]] == "run"
        assert not dataset.procedural[windows][0] and dataset.mirrored[windows][0] == name.endswith("mirrored")
    # Only cyclic categories loop: the walk here is a full-length take, the kick and the long clip are not cyclic.
    assert sum(data.LOOPED_SUFFIX in s for s in sources) == 2
