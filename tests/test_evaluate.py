"""`python -m backend evaluate`: the in-betweening metric plumbing on real eval clips, the adherence classifier,
bad input, and the JSON report of a real subprocess run on a tiny (untrained) checkpoint."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from backend import classifier, evaluate, features, metrics, procedural
from backend.keyframes import KEY_GAPS
from backend.errors import UserError
from conftest import MOCAP_DIR, REPO

# A small mocap folder for the subprocess run: two short eval walks and a few short training clips (one per
# category present), so the run stays a smoke test.
SMALL_EVAL = ("przestr/03_01.bvh", "przestr/03_02.bvh")
SMALL_TRAIN = ("przestr/02_02.bvh", "przestr/09_01.bvh", "przestr/09_02.bvh")


def real_windows(length=120):
    clips = evaluate.load_eval_clips(evaluate.read_eval_rows(MOCAP_DIR), log=print)
    return [features.canonicalize(w) for _, j in clips for w in evaluate.cut_windows(j, length, 2, 40)]


@pytest.fixture(scope="module")
def windows():
    return real_windows()


def test_eval_rows_are_the_eval_split():
    rows = evaluate.read_eval_rows(MOCAP_DIR)
    with open(MOCAP_DIR / "index.csv", newline="") as f:
        expected = {r["file"] for r in csv.DictReader(f) if r["split"] == "eval"}
    assert {r.path.relative_to(MOCAP_DIR).as_posix() for r in rows} == expected


def test_linear_l2p_grows_with_the_gap_and_holds_its_keys(windows):
    l2p = []
    for gap in KEY_GAPS:
        scores = []
        for real in windows:
            keyed = evaluate.regular_keys(len(real), gap)
            assert keyed[0] == 0 and keyed[-1] == len(real) - 1 and np.all(np.diff(keyed) <= gap)
            linear = evaluate.linear_inbetween(real, keyed)
            assert metrics.keyframe_error(linear, real, keyed) == 0.0  # an exact method
            middle = (keyed[0] + keyed[1]) / 2
            if middle.is_integer():  # halfway between two keys is the keys' average
                np.testing.assert_allclose(linear[int(middle)], (real[keyed[0]] + real[keyed[1]]) / 2)
            scores.append(metrics.inbetween_l2p(linear, real, keyed))
        l2p.append(np.mean(scores))
    print("linear L2P (m) at gaps", dict(zip(KEY_GAPS, np.round(l2p, 4))))
    assert l2p[0] > 0
    assert np.all(np.diff(l2p) > 0)


def test_seam_ratio_is_about_one_on_real_motion_and_flags_linear_pops(windows):
    for gap in (5, 10):
        ratio = np.mean([metrics.seam_ratio(real, evaluate.regular_keys(len(real), gap)) for real in windows])
        assert abs(ratio - 1) < 0.15, (gap, ratio)
    keyed = evaluate.regular_keys(len(windows[0]), 20)
    # Linear interpolation changes velocity only at the keys: all its jerk sits there.
    assert metrics.seam_ratio(evaluate.linear_inbetween(windows[0], keyed), keyed) > 1.5


def test_seam_against_the_real_clip_tells_a_smooth_in_between_from_a_pop(windows):
    real = windows[0]
    keyed = evaluate.regular_keys(len(real), 20)
    smooth = evaluate.linear_inbetween(real, keyed)
    # Against the real clip's own jitter, the real clip scores exactly its own seam ratio.
    assert metrics.seam_ratio(real, keyed, reference=real) == pytest.approx(metrics.seam_ratio(real, keyed))
    # Linear interpolation is far smoother than the motion it replaces: its jerk at the keys, all the jerk it has,
    # is high against its own (near zero) jitter and lower against the real clip's.
    assert metrics.seam_ratio(smooth, keyed, reference=real) < metrics.seam_ratio(smooth, keyed)
    # A 5 cm jump of every joint on each inner key is a pop against either.
    popped = smooth.copy()
    popped[keyed[1:-1]] += 0.05
    assert metrics.seam_ratio(popped, keyed, reference=real) > 1.5


def test_real_windows_sit_on_the_reference_skeleton(windows):
    for real in windows:
        assert metrics.bone_length_std(real).max() < 1e-9
        assert abs(real[..., 1].min()) < 1e-9  # floor at y = 0
        np.testing.assert_allclose(real[0, 0, [0, 2]], 0, atol=1e-9)


def test_classifier_tells_procedural_categories_apart():
    """Trained on a few procedural clips, it labels other procedural clips well above chance; same seed, same
    weights."""
    train = classifier.procedural_clips(3, 100, np.random.default_rng(0))
    held_out = classifier.procedural_clips(2, 100, np.random.default_rng(1))
    model = classifier.train_classifier(train, torch.Generator().manual_seed(0), steps=60)
    again = classifier.train_classifier(train, torch.Generator().manual_seed(0), steps=60)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert model.categories == tuple(sorted(procedural.GENERATORS))
    accuracy = np.mean(np.array(model.predict(held_out.joints)) == np.array(held_out.categories))
    print(f"procedural held-out accuracy {accuracy:.2f} (chance {1 / len(procedural.GENERATORS):.2f})")
    assert accuracy >= 0.6


def test_standing_crops_of_procedural_actions_teach_idle():
    """A crouch clip's standing start and end are idle crops, its crouching middle crouch crops, the crops that are
    partly both are left out; a real clip (acting None) is its category throughout."""
    assert classifier.crop_label("crouch", None) == "crouch"
    assert classifier.crop_label("crouch", np.ones(20, bool)) == "crouch"
    assert classifier.crop_label("crouch", np.zeros(20, bool)) == "idle"
    assert classifier.crop_label("crouch", np.arange(20) < 5) is None
    crouch = procedural.generate("crouch", np.random.default_rng(0), 200)
    acting = np.arange(len(crouch.joints)) >= 40  # 40 standing frames, then the action
    _, labels, categories = classifier.crops(classifier.LabelledClips([crouch.joints], ["crouch"], [acting]), 5)
    # Crops start every 5 frames and are 20 long: starts 0-20 stand (idle), 25 is a quarter acting (left out),
    # 30 on act at least half (crouch); every crop also comes mirrored.
    crouching = len(range(30, len(crouch.joints) - classifier.WINDOW + 1, 5))
    assert categories == ["crouch", "idle"]
    assert np.bincount(labels).tolist() == [2 * crouching, 2 * 5]


def test_adherence_prompts_are_held_out_paraphrases():
    prompts = evaluate.adherence_prompts(("walk", "wave"), 3)
    assert [c for c, _ in prompts] == ["walk"] * 3 + ["wave"] * 3
    assert len({p for _, p in prompts}) == 6
    for category, prompt in prompts:
        assert prompt not in evaluate.captions.train_captions(category)


def test_adherence_prompts_can_come_from_the_training_sentences():
    # bench/guidance_bench.py chooses the guidance scale on these, leaving the held-out paraphrases for evaluate.
    prompts = evaluate.adherence_prompts(("run",), 4, evaluate.captions.train_captions)
    assert len({p for _, p in prompts}) == 4
    assert all(p in evaluate.captions.train_captions("run") for _, p in prompts)


def write_index(folder, rows, **drop_columns):
    with open(MOCAP_DIR / "index.csv", newline="") as f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames if c not in drop_columns]
        chosen = [r for r in reader if r["file"] in rows]
    with open(folder / "index.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(chosen)


def small_mocap_folder(folder):
    folder.mkdir()
    (folder / "przestr").symlink_to(MOCAP_DIR / "przestr")
    write_index(folder, SMALL_EVAL + SMALL_TRAIN)
    return folder


def test_bad_data_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        evaluate.read_eval_rows(tmp_path / "missing")
    with pytest.raises(UserError, match="no index.csv"):
        evaluate.read_eval_rows(tmp_path)
    train_only = tmp_path / "train_only"
    train_only.mkdir()
    write_index(train_only, SMALL_TRAIN)
    with pytest.raises(UserError, match="no rows to evaluate"):
        evaluate.read_eval_rows(train_only)
    (tmp_path / "index.csv").write_text("name,split\nx.bvh,eval\n")
    with pytest.raises(UserError, match="no `file` column"):
        evaluate.read_eval_rows(tmp_path)


def test_bad_options_are_user_errors():
    from backend.commands.evaluate import check_options

    for bad in (dict(windows_per_clip=0), dict(samples=0), dict(steps=-1), dict(gaps=(0, 5))):
        with pytest.raises(UserError):
            check_options(evaluate.EvalOptions(**bad))


def test_literal_prompts_is_an_option_of_the_cli():
    import argparse

    from backend.commands.evaluate import add_arguments, options_from

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    read = options_from(parser.parse_args(["--data", "d"]))
    literal = options_from(parser.parse_args(["--data", "d", "--literal-prompts", "--quick"]))
    assert (read.literal_prompts, literal.literal_prompts, literal.classifier_steps) == (False, True, 30)


def test_a_folder_without_split_or_rate_columns_uses_every_row_and_the_header_rate(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "przestr").symlink_to(MOCAP_DIR / "przestr")
    write_index(folder, SMALL_EVAL, split=True, cmu_stated_fps=True)
    rows = evaluate.read_eval_rows(folder)
    assert len(rows) == 2 and all(r.fps is None for r in rows)
    (row, joints), _ = evaluate.load_eval_clips(rows, log=print)
    assert len(joints) > 40


def run_cli(*args):
    # One torch thread: on a shared CPU extra threads make the small model's forwards many times slower.
    command = [sys.executable, "-m", "backend", "evaluate", "--threads", "1", *map(str, args)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_evaluate_cli_prints_one_json_object_and_writes_the_report(tmp_path, tiny_checkpoint):
    data = small_mocap_folder(tmp_path / "mocap")
    out = tmp_path / "out"
    done = run_cli("--checkpoint", tiny_checkpoint, "--data", data, "--quick", "--json", "--out", out)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # stdout is the JSON object and nothing else
    assert report["clips"] == len(SMALL_EVAL) and report["windows"] >= len(SMALL_EVAL)
    plausibility_keys = {"foot_skate", "jitter", "penetration", "bone_length_std", "root_speed", "pose_speed"}
    assert set(report["plausibility"]) == {"generated", "generated_unplanted", "real"}
    assert all(set(v) == plausibility_keys for v in report["plausibility"].values())
    assert set(report["inbetween"]) == {str(g) for g in KEY_GAPS}
    methods = report["settings"]["methods"]
    assert report["settings"]["model_method"] == "keyframe" and "repaint" in methods
    for row in report["inbetween"].values():
        assert {"model_l2p", "linear_l2p", "keyframe_error", "seam_ratio", "seam_vs_real"} <= set(row)
        assert {f"{m}_seam_vs_real" for m in methods if m != "linear"} <= set(row)
        assert {f"{m}_l2p" for m in methods} <= set(row)
        assert row["keyframe_error"] < 1e-4  # the pipeline places every result exactly on its keys
        assert row["model_l2p"] > 0 and row["linear_l2p"] > 0
    adherence = report["adherence"]
    assert 0 <= adherence["accuracy"] <= 1
    assert {"walk", "run", "idle", "turn", "wave", "crouch", "sit"} == set(adherence["per_category"])
    assert json.loads((out / "metrics.json").read_text()) == report
    assert (out / "contact_sheet.png").read_bytes().startswith(b"\x89PNG")


def test_evaluate_cli_bad_input_writes_nothing(tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    missing = run_cli("--checkpoint", tiny_checkpoint, "--data", tmp_path / "nowhere", "--quick", "--out", out)
    assert missing.returncode == 2 and "error:" in missing.stderr and "does not exist" in missing.stderr
    data = small_mocap_folder(tmp_path / "mocap")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    unreadable = run_cli("--checkpoint", broken, "--data", data, "--quick", "--json", "--out", out)
    assert unreadable.returncode == 2 and "not valid JSON" in unreadable.stderr and unreadable.stdout == ""
    assert not out.exists()


@pytest.mark.slow
def test_evaluation_is_deterministic_for_a_seed(tmp_path, tiny_checkpoint):
    from backend.pipeline import Pipeline

    data = small_mocap_folder(tmp_path / "mocap")
    pipeline = Pipeline(tiny_checkpoint, "cpu")
    options = evaluate.EvalOptions.quick(methods=("x0_replace",))
    first, second = (evaluate.evaluate(pipeline, data, options, log=print).report for _ in range(2))
    first.pop("seconds"), second.pop("seconds")
    assert first == second
