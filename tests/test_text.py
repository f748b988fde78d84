"""Text encoders: CLIP as the official MDM runs it (on the fixture's tiny CLIP), the prompt cache, offline MiniLM,
and the prompt vocabulary's nearest-caption reading."""
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import UserError
from backend.fixture_check import TOL_CLIP_FP16, Fixture, fixture_clip_encoder
from backend.model import MDMConfig
from backend.text import ClipTextEncoder, MiniLMTextEncoder, clip_context_length, load_text_encoder
from conftest import FIXTURE_DIR

CASE = "text_trans_enc"


@pytest.fixture(scope="module")
def fx(shared_dir):
    return Fixture(FIXTURE_DIR)


@pytest.fixture
def tiny_clip(fx):
    return fixture_clip_encoder(fx, CASE)


def prompts(fx):
    return fx.config["cases"][CASE]["inputs"]["prompts"]


def test_tokens_are_the_official_ones(fx, tiny_clip):
    tokens = tiny_clip.tokenize(prompts(fx)).numpy()
    np.testing.assert_array_equal(tokens, fx.array("text/clip_tokens_padded77"))
    np.testing.assert_array_equal(tokens[:, :22], fx.array("text/clip_tokens_ctx22"))
    assert tokens[1, 21] == 49407  # the over-long prompt is cut and still ends in EOT


def test_embedding_matches_official_fp16_clip(fx, tiny_clip):
    embedding = tiny_clip.encode(prompts(fx))
    assert embedding.dtype == torch.float32 and embedding.shape == (2, tiny_clip.dim)
    assert tiny_clip.model.text_projection.dtype == torch.float16  # fp16 weights, as official
    assert tiny_clip.model.ln_final.weight.dtype == torch.float32  # fp32 LayerNorm
    np.testing.assert_allclose(embedding.unsqueeze(0).numpy(), fx.array("text/clip_encode_text"), atol=TOL_CLIP_FP16)


def test_each_distinct_prompt_is_encoded_once(fx, tiny_clip):
    batches = []
    encode_text = tiny_clip.model.encode_text
    tiny_clip.model.encode_text = lambda tokens: batches.append(len(tokens)) or encode_text(tokens)
    first, second = prompts(fx)
    out = tiny_clip.encode([first, second, first])
    again = tiny_clip.encode([second, "a third prompt", first])
    assert batches == [2, 1]
    assert torch.equal(out[0], out[2]) and torch.equal(again[0], out[1]) and torch.equal(again[2], out[0])


def test_cache_is_bounded(fx, tiny_clip):
    tiny_clip.cache_size = 2
    tiny_clip.encode(["one", "two", "three"])
    assert list(tiny_clip._cache) == ["two", "three"]


def test_empty_prompt_is_refused(tiny_clip):
    with pytest.raises(UserError, match="empty"):
        tiny_clip.encode(["a person walks", "   "])


def test_missing_clip_file_is_named(tmp_path):
    missing = tmp_path / "ViT-B-32.pt"
    with pytest.raises(UserError, match=f"CLIP weights file {missing} does not exist"):
        ClipTextEncoder.from_file(missing)


def test_a_file_that_is_not_clip_is_refused(tmp_path):
    bogus = tmp_path / "ViT-B-32.pt"
    torch.save({"weight": torch.zeros(2)}, bogus)
    with pytest.raises(UserError, match="is not a CLIP checkpoint"):
        ClipTextEncoder.from_file(bogus)


@pytest.mark.parametrize("form", ["torchscript", "state_dict"])
def test_a_clip_file_loads_as_clip_would(tmp_path, form):
    """The official file (a traced TorchScript archive) or a saved state dict gives the weights `clip.load` gives,
    in the official fp16 (`convert_weights`). A small CLIP with both towers: `build_model` reads its shape from both,
    one attention head per 64 channels."""
    import clip
    torch.manual_seed(0)
    small = clip.model.CLIP(embed_dim=16, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16,
                            context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1,
                            transformer_layers=1).eval()
    path = tmp_path / "ViT-B-32.pt"
    if form == "torchscript":
        torch.jit.save(torch.jit.trace(small, (torch.zeros(1, 3, 32, 32), clip.tokenize(["a person"]))), str(path))
    else:
        torch.save(small.state_dict(), path)
    ours = ClipTextEncoder.from_file(path)
    theirs, _ = clip.load(str(path), device="cpu", jit=False)
    clip.model.convert_weights(theirs)  # as the official `load_and_freeze_clip`
    assert ours.model.text_projection.dtype == torch.float16
    for name, tensor in theirs.state_dict().items():
        torch.testing.assert_close(ours.model.state_dict()[name], tensor, rtol=0, atol=0, msg=name)


class RunsCode:
    """A pickled object whose loading runs code: what a malicious weights file carries."""
    marker = None

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_clip_file_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # what an older torch does by default
    RunsCode.marker = tmp_path / "ran"
    path = tmp_path / "ViT-B-32.pt"
    torch.save({"weight": RunsCode()}, path)
    with pytest.raises(UserError, match="could run code"):
        ClipTextEncoder.from_file(path)
    assert not RunsCode.marker.exists()
    path.write_bytes(b"")
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        ClipTextEncoder.from_file(path)


def test_encoder_choice_follows_the_config(tmp_path):
    text_model = MDMConfig.from_official_args({"dataset": "humanml"})
    with pytest.raises(UserError, match="give the path to ViT-B-32.pt"):
        load_text_encoder(text_model)
    assert load_text_encoder(MDMConfig.from_official_args({"dataset": "humanact12"})) is None
    assert clip_context_length("humanml") == 22 and clip_context_length("humanact12") == 77


def test_minilm_encodes_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    encoder = MiniLMTextEncoder("cpu")
    out = encoder.encode(["a person walks forward", "a person jumps", "a person walks forward"])
    assert (encoder.kind, encoder.dim, out.shape, out.dtype) == ("minilm", 384, (3, 384), torch.float32)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    assert torch.equal(out[0], out[2])
    similar, different = out[0] @ encoder.encode(["someone walks forwards"])[0], out[0] @ out[1]
    assert similar > different  # a real sentence model, not noise


def test_vocabulary_reads_the_nearest_caption_of_the_side_a_prompt_names():
    import torch.nn.functional as F

    from backend.captions import sides_named
    from backend.text import PromptVocabulary

    assert sides_named("Turn RIGHT, then left.") == {"left", "right"} and sides_named("a leftover walk") == set()
    embeddings = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), dim=-1)
    vocabulary = PromptVocabulary(("waves the left hand", "waves the right hand", "jumps"), embeddings)
    prompt = embeddings[:1]  # the left caption's very embedding
    assert vocabulary.nearest("waves a hand", prompt) == (0, pytest.approx(1.0))
    assert vocabulary.nearest("waves the right hand", prompt)[0] == 1  # the side beats the embedding
    assert vocabulary.nearest("jumps to the right", embeddings[2:])[0] == 2  # sideless captions stay candidates
