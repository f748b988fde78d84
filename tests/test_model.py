"""The MDM network against the official golden fixture, and the properties guidance and sampling rely on."""
import numpy as np
import pytest
import torch

from backend.diffusion import make_schedule
from backend.errors import UserError
from backend.fixture_check import (TOL_EXACT32, TOL_FORWARD, Fixture, fixture_inputs, fixture_model,
                                   model_checks)
from backend.model import MDM, ByteDropout, MDMConfig, sinusoid_frequencies, sinusoid_table
from conftest import FIXTURE_DIR


@pytest.fixture(scope="module")
def fx(shared_dir):
    return Fixture(FIXTURE_DIR)


def small_config(**overrides):
    base = dict(njoints=12, nfeats=1, latent_dim=32, ff_size=64, num_layers=2, num_heads=4, cond_mode="text",
                text_encoder="clip", cond_dim=16, dataset="test")
    return MDMConfig(**{**base, **overrides})


def seeded(config, seed=0):
    torch.manual_seed(seed)
    return MDM(config).eval()


def test_every_forward_output_of_the_fixture(fx):
    # Float32 outputs must match at the fixture's forward tolerance. The float64 output and the pe rows are
    # checked at the same 1e-5 here: the fixture's float32 sinusoid table differs from this platform's in the last
    # bit of exp() at 2 of 32 frequencies (see test_sinusoid_table_*), which float64 inherits from the table.
    checks = [c for c in model_checks(fx) if c.name.split("/")[0] in ("text", "dec", "action")]
    forward_names = [n for case in fx.config["cases"].values() for n in case["outputs"] if "cfg" not in n]
    checked = {c.name for c in checks}
    assert set(forward_names) <= checked, f"outputs not checked: {set(forward_names) - checked}"
    failures = [c.line() for c in checks if c.name in forward_names and c.max_abs_error > TOL_FORWARD]
    assert not failures, "\n".join(failures)


def test_sinusoid_table_is_the_official_formula_up_to_the_last_bit_of_exp(fx):
    """Every frequency of the table matches the fixture exactly, or our float32 exp(-2i log(1e4)/d) is one ulp from
    a frequency that does (and our columns are the sines and cosines of ours): exp() is not correctly rounded and
    its last bit differs between platforms (the fixture machine and this one disagree at 2 of 32 frequencies, which
    check-fixture reports as pe/values_d64 ~3e-5)."""
    rows, expected = fx.array("pe/rows"), fx.array("pe/values_d64")
    dim = expected.shape[1]
    ours = sinusoid_table(int(rows.max()) + 1, dim)[rows].numpy()
    position = rows.astype(np.float32)[:, None]
    frequencies = sinusoid_frequencies(dim).numpy()
    columns_of = lambda frequency: np.concatenate([np.sin(position * frequency), np.cos(position * frequency)], 1)
    for i, frequency in enumerate(frequencies):
        columns, our_columns = expected[:, 2 * i: 2 * i + 2], ours[:, 2 * i: 2 * i + 2]
        if np.abs(our_columns - columns).max() <= TOL_EXACT32:
            continue
        assert np.abs(our_columns - columns_of(frequency)).max() <= TOL_EXACT32, f"column pair {i} is not our formula"
        neighbours = [np.nextafter(frequency, np.float32(direction)) for direction in (0.0, 1.0)]
        assert any(np.abs(columns_of(div) - columns).max() <= TOL_EXACT32 for div in neighbours), \
            f"frequency {i} differs by more than the last bit"


def test_per_sample_uncond_equals_separate_forwards(fx):
    """What lets guidance batch cond and uncond rows in one forward."""
    for case_name, cond_name, uncond_name in (("text_trans_enc", "text/out_cond", "text/out_uncond"),
                                              ("action_trans_enc", "action/out_cond", "action/out_uncond")):
        model = fixture_model(fx, case_name)
        x, t, cond = fixture_inputs(fx, case_name)
        mixed = {**cond, "uncond": torch.tensor([False, True])}
        with torch.no_grad():
            out = model(x, t, mixed).numpy()
        np.testing.assert_allclose(out[0], fx.array(cond_name)[0], atol=TOL_FORWARD)
        np.testing.assert_allclose(out[1], fx.array(uncond_name)[1], atol=TOL_FORWARD)


def test_text_uncond_is_the_embed_text_bias():
    model = seeded(small_config())
    x, t = torch.randn(2, 12, 1, 10), torch.tensor([5, 7])
    with torch.no_grad():
        dropped = model(x, t, {"text_embed": torch.randn(2, 16), "uncond": torch.tensor([True, True])})
        zero = model(x, t, {"text_embed": torch.zeros(2, 16)})
    assert torch.equal(dropped, zero)


def test_one_prompt_broadcasts_over_the_batch():
    model = seeded(small_config())
    x, t, text = torch.randn(3, 12, 1, 10), torch.tensor([1, 2, 3]), torch.randn(1, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, {"text_embed": text}), model(x, t, {"text_embed": text.expand(3, -1)}))


@pytest.mark.parametrize("arch,emb_trans_dec", [("trans_enc", False), ("trans_dec", True), ("trans_dec", False)])
def test_padded_frames_do_not_reach_valid_frames(arch, emb_trans_dec):
    model = seeded(small_config(arch=arch, emb_trans_dec=emb_trans_dec, mask_frames=True))
    x, t = torch.randn(2, 12, 1, 10), torch.tensor([3, 900])
    frame_mask = torch.arange(10)[None] < torch.tensor([[10], [6]])
    cond = {"text_embed": torch.randn(2, 16), "frame_mask": frame_mask}
    x2 = x.clone()
    x2[1, ..., 6:] += 5.0  # change only sample 1's padding
    with torch.no_grad():
        a, b = model(x, t, cond), model(x2, t, cond)
    torch.testing.assert_close(a[..., :6], b[..., :6])
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(a[1, ..., 6:], b[1, ..., 6:])  # the padding itself did change


def test_token_text_memory_ignores_padding_tokens():
    model = seeded(small_config(arch="trans_dec", text_encoder="bert", cond_dim=24))
    x, t = torch.randn(2, 12, 1, 8), torch.tensor([10, 20])
    tokens = torch.randn(2, 5, 24)
    text_mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    tokens2 = tokens.clone()
    tokens2[1, 3:] = 100.0
    with torch.no_grad():
        a = model(x, t, {"text_embed": tokens, "text_mask": text_mask})
        b = model(x, t, {"text_embed": tokens2, "text_mask": text_mask})
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("keyframe_dim", [12, 66])  # keys in feature space (CondMDI), or 22 joint positions
def test_keyframe_input_widens_the_projection_and_reads_dense_values_beside_the_mask(keyframe_dim):
    config = small_config(keyframe_dim=keyframe_dim)
    model = seeded(config)
    assert model.input_process.poseEmbedding.in_features == config.input_feats + 2 * keyframe_dim
    x, t, text = torch.randn(2, 12, 1, 10), torch.tensor([4, 8]), torch.randn(2, 16)
    keys = (2, keyframe_dim, 1, 10)
    zeros = {"keyframe_values": torch.zeros(keys), "keyframe_mask": torch.zeros(keys, dtype=torch.bool)}
    mask = torch.zeros(keys, dtype=torch.bool)
    mask[..., [0, 9]] = True  # keys at both ends
    keyed = {"keyframe_values": torch.randn(keys), "keyframe_mask": mask}
    between = {**keyed, "keyframe_values": keyed["keyframe_values"].clone()}
    between["keyframe_values"][..., 4] += 1.0  # only the interpolated guess between the keys differs
    with torch.no_grad():
        none = model(x, t, {"text_embed": text})
        torch.testing.assert_close(none, model(x, t, {"text_embed": text, **zeros}))  # absent keys read as zeros
        with_keys = model(x, t, {"text_embed": text, **keyed})
        assert not torch.allclose(none, with_keys)
        assert not torch.allclose(with_keys, model(x, t, {"text_embed": text, **between}))  # unmasked values seen


def test_keyframe_residual_adds_the_keyed_features_to_the_prediction():
    model = seeded(small_config(keyframe_dim=14, keyframe_residual=True))  # 12 features + 2 extra channels
    x, t, text = torch.randn(2, 12, 1, 10), torch.tensor([4, 8]), torch.randn(2, 16)
    values, mask = torch.zeros(2, 14, 1, 10), torch.zeros(2, 14, 1, 10, dtype=torch.bool)
    mask[..., 3] = True
    shifted = values.clone()
    shifted[:, :12, :, 3] = 5.0
    with torch.no_grad():
        base = model(x, t, {"text_embed": text, "keyframe_values": values, "keyframe_mask": mask})
        keyed = model(x, t, {"text_embed": text, "keyframe_values": shifted, "keyframe_mask": mask})
    # The keyed frame moves by the key itself plus whatever the network makes of its new input.
    assert (keyed - base)[..., 3].mean() == pytest.approx(5.0, abs=1.0)
    with pytest.raises(UserError, match="keyframe_residual needs keyframe_dim >= 12"):
        small_config(keyframe_dim=6, keyframe_residual=True)


def test_input_skip_starts_as_plain_mdm_then_filters_x_t_over_time_with_taps_read_from_t():
    plain, skipped = seeded(small_config()), seeded(small_config(input_skip_taps=3))
    assert skipped.load_state_dict(plain.state_dict(), strict=False).missing_keys == ["skip_taps.weight",
                                                                                      "skip_taps.bias"]
    x, t, text = torch.randn(2, 12, 1, 10), torch.tensor([1, 40]), torch.randn(2, 16)
    added = lambda x: skipped(x, t, {"text_embed": text}) - plain(x, t, {"text_embed": text})
    with torch.no_grad():
        torch.testing.assert_close(added(x), torch.zeros_like(x))  # zero taps: exactly the plain model
        skipped.skip_taps.bias.copy_(torch.tensor([0.25, 0.5, 0.25]).repeat(12))  # taps = bias, weights zero
        padded = torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)  # the ends replicated
        torch.testing.assert_close(added(x), 0.25 * padded[..., :-2] + 0.5 * x + 0.25 * padded[..., 2:])
        skipped.skip_taps.weight.normal_()  # taps that read the time embedding differ between the two steps
        same = added(x[:1].repeat(2, 1, 1, 1))
        assert not torch.allclose(same[0], same[1])
    for bad in (-1, 2):
        with pytest.raises(UserError, match="input_skip_taps"):
            small_config(input_skip_taps=bad)


def test_departure_skip_filters_x_t_less_the_noised_keys_and_changes_nothing_without_keys():
    skip = dict(keyframe_dim=14, keyframe_residual=True, input_skip_taps=3)  # 12 features + 2 extra channels
    on, off = seeded(small_config(**skip, input_skip_departure=True)), seeded(small_config(**skip))
    with torch.no_grad():
        off.skip_taps.bias.copy_(torch.tensor([0.25, 0.5, 0.25]).repeat(12))  # taps = bias, weights zero
    on.load_state_dict(off.state_dict())  # strictly: the schedule buffer is derived, not saved
    x, t, text = torch.randn(2, 12, 1, 10), torch.tensor([1, 40]), torch.randn(2, 16)
    values, mask = torch.randn(2, 14, 1, 10), torch.rand(2, 14, 1, 10) < 0.3
    unkeyed, keyed = {"text_embed": text}, {"text_embed": text, "keyframe_values": values, "keyframe_mask": mask}
    sqrt_alpha_bar = make_schedule(on.config.diffusion_steps, on.config.noise_schedule).sqrt_alpha_bar[t]
    noised_keys = sqrt_alpha_bar.float().view(2, 1, 1, 1) * values[:, :12].reshape(2, 12, 1, 10)
    padded = torch.cat([noised_keys[..., :1], noised_keys, noised_keys[..., -1:]], dim=-1)
    with torch.no_grad():
        torch.testing.assert_close(on(x, t, unkeyed), off(x, t, unkeyed))
        # The filter is linear, so filtering x_t - sqrt(alpha_bar_t) keyed differs by minus the filtered keys.
        torch.testing.assert_close(on(x, t, keyed) - off(x, t, keyed),
                                   -(0.25 * padded[..., :-2] + 0.5 * noised_keys + 0.25 * padded[..., 2:]))
    for bad in (dict(keyframe_dim=14, keyframe_residual=True), dict(input_skip_taps=3)):
        with pytest.raises(UserError, match="input_skip_departure needs input_skip_taps and keyframe_residual"):
            small_config(**bad, input_skip_departure=True)


def test_byte_dropout_keeps_the_expected_share_scaled_like_nn_dropout():
    drop = ByteDropout(0.1).train()
    torch.manual_seed(0)
    ones = torch.ones(400_000, requires_grad=True)
    out = drop(ones)
    kept = out != 0
    # 400k Bernoulli(0.9) draws: the kept share is within 5 standard deviations (0.0024) of the rounded keep.
    assert abs(kept.float().mean().item() - drop.keep) < 0.0024 and drop.keep == pytest.approx(0.9, abs=1e-5)
    np.testing.assert_allclose(out[kept].detach().numpy(), 1 / drop.keep, rtol=1e-6)
    out.sum().backward()  # the gradient passes where the element was kept, scaled alike, and nowhere else
    np.testing.assert_allclose(ones.grad.numpy(), (kept / drop.keep).numpy(), rtol=1e-6)
    torch.manual_seed(0)
    assert torch.equal(drop(torch.ones(400_000)), out.detach())  # the global generator's seed decides the mask
    assert torch.equal(drop.eval()(ones), ones)


@pytest.mark.parametrize("arch", ["trans_enc", "trans_dec"])
def test_every_activation_dropout_is_a_byte_dropout(arch):
    model = MDM(small_config(arch=arch))
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert sum(isinstance(m, ByteDropout) for m in model.modules()) == 1 + 2 * (3 if arch == "trans_enc" else 4)
    # Attention-weight dropout stays inside nn.MultiheadAttention, at the configured p.
    assert all(m.dropout == 0.1 for m in model.modules() if isinstance(m, torch.nn.MultiheadAttention))


def test_official_defaults_give_the_released_text_model():
    config = MDMConfig.from_official_args({"dataset": "humanml"})
    assert (config.njoints, config.nfeats, config.data_rep, config.cond_mode) == (263, 1, "hml_vec", "text")
    assert (config.latent_dim, config.ff_size, config.num_layers, config.num_heads) == (512, 1024, 8, 4)
    assert (config.text_encoder, config.cond_dim, config.diffusion_steps, config.noise_schedule) == (
        "clip", 512, 1000, "cosine")
    assert not config.mask_frames
    n_params = sum(p.numel() for p in MDM(config).parameters())
    assert n_params == 17_880_327  # humanml_trans_enc_512 without CLIP (mdm-reference.md)


def test_official_action_args_carry_class_names():
    config = MDMConfig.from_official_args({"dataset": "humanact12", "cond_mask_prob": 0.0})
    assert (config.njoints, config.nfeats, config.cond_mode, config.num_actions) == (25, 6, "action", 12)
    assert config.action_names[1] == "walk" and len(config.action_names) == 12
    assert MDMConfig.from_official_args({"dataset": "uestc"}).action_names == []


@pytest.mark.parametrize("args,needle", [
    ({"arch": "gru"}, "arch 'gru'"),
    ({"arch": "trans_enc", "text_encoder_type": "bert"}, "needs arch trans_dec"),
    ({"context_len": 20}, "context_len"),
    ({"dataset": "amass"}, "dataset 'amass'"),
])
def test_unsupported_official_options_are_named(args, needle):
    with pytest.raises(UserError, match=needle):
        MDMConfig.from_official_args(args)


def test_config_dict_round_trip_and_unknown_keys():
    config = small_config(arch="trans_dec", emb_trans_dec=True, action_names=[], keyframe_dim=66)
    assert MDMConfig.from_dict(config.to_dict()) == config
    with pytest.raises(UserError, match="unknown keys.*'wings'"):
        MDMConfig.from_dict({**config.to_dict(), "wings": 2})
    with pytest.raises(UserError, match=r"dropout 1.0 is not in \[0, 1\)"):
        small_config(dropout=1.0)
    with pytest.raises(UserError, match="keyframe_heading 'sideways' is not one of"):
        small_config(keyframe_heading="sideways")


def test_device_choice():
    from backend.device import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(None).type in ("cuda", "mps", "cpu")
    with pytest.raises(UserError, match="unknown device 'banana'"):
        pick_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="not available"):
            pick_device("cuda")
