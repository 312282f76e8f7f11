"""Tiny students, tiny tasks and real caches for the distill tests.

Students are built from configs, saved with save_pretrained next to a tokenizer, and then given
to the code as a folder, so they load through the same `from_pretrained` path a hub id takes.
The encoder's tokenizer is a WordPiece vocabulary loaded with `BertTokenizer.from_pretrained` on
its folder (transformers 5 ignores `BertTokenizer(vocab_file=...)`); the causal one is a word-level
`tokenizers` model with an end-of-sequence token and no pad token, as many causal LMs ship.
Caches are written with the cache's own CacheWriter; their vectors are synthetic numbers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from armada.config import DistillConfig, FileTask

WORDS = ("good great fine nice happy bad awful poor sad ugly the a movie film plot actor was is very not and "
         "cat dog sat on mat it because so what cause effect").split()
POSITIVE, NEGATIVE = WORDS[:5], WORDS[5:10]
FILLER = WORDS[10:20]


def make_encoder(folder: Path, dropout: float = 0.1) -> Path:
    """A 2-layer BERT (hidden 32) with a pooler, and its WordPiece tokenizer; `dropout` as BERT's default."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer.from_pretrained(folder).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=128, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    BertModel(config).save_pretrained(folder)
    return folder


def make_causal(folder: Path, padding_side: str = "right") -> Path:
    """A 2-layer Llama (hidden 32) and a word-level tokenizer with </s> and no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *WORDS, ".", "?", '"'])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                        padding_side=padding_side)
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    LlamaModel(config).save_pretrained(folder)
    return folder


def sentence(rng: random.Random, label: int) -> str:
    cue = rng.choice(POSITIVE if label else NEGATIVE)
    words = [rng.choice(FILLER) for _ in range(rng.randint(2, 7))]
    words.insert(rng.randint(0, len(words)), cue)
    return " ".join(words)


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def file_task(folder: Path, kind: str = "classification", pairs: bool = False, train: int = 24,
              validation: int = 12, seed: int = 0) -> tuple[str, dict]:
    """A `file:` task in `folder`: sentiment-like classification, or a regression score, on one text or a pair."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, count in (("train", train), ("validation", validation)):
        rows = []
        for i in range(count):
            label = i % 2
            row = {"id": f"{split}-{i}", "text": sentence(rng, label)}
            if pairs:
                row["other"] = sentence(rng, rng.randint(0, 1))
            row["label"] = (label * 4.0 + rng.random()) if kind == "regression" else ("pos" if label else "neg")
            rows.append(row)
        paths[split] = str(write_rows(folder / f"{split}.jsonl", rows))
    name = f"tiny-{kind}{'-pairs' if pairs else ''}"
    spec = FileTask(train=paths["train"], validation=paths["validation"], kind=kind,
                    text_fields=("text", "other") if pairs else ("text",), label_field="label",
                    labels=() if kind == "regression" else ("neg", "pos"), id_field="id",
                    metric="pearson_spearman" if kind == "regression" else "accuracy")
    return name, {name: spec}


def label_vectors(split, dim: int, seed: int = 0) -> np.ndarray:
    """Teacher vectors that carry the label (so an aligner can learn it), plus noise."""
    rng = np.random.default_rng(seed)
    out = rng.normal(0, 0.3, size=(len(split), dim)).astype(np.float32)
    for i, example in enumerate(split.examples):
        out[i, int(example.label) % dim] += 2.0
    return out


def write_cache(path: Path, task, splits: dict, dim: int = 8, vectors=label_vectors, shard_rows: int = 8,
                finish: bool = True, logits=None) -> Path:
    """A real cache of `splits` ({name: Split}) written with CacheWriter; `finish=False` leaves the last shard undone.
    With `logits` (a TeacherLogits), a KD cache: rows [pooled | logits] of width dim, matched to the student's input
    as a text teacher's are (STUDENT_INPUT)."""
    from armada.cache_schema import CacheWriter, DatasetInfo, Extraction, Manifest, SplitInfo, TeacherInfo, chunk_rows_for
    from armada.tasks import STUDENT_INPUT

    template = STUDENT_INPUT if logits is not None else ""
    manifest = Manifest(
        TeacherInfo("fake", "fake", dim, {"test": True}, logits),
        Extraction("float32", shard_rows, chunk_rows_for(shard_rows, dim, "float32"), teacher_template=template),
        DatasetInfo(task.name, "tests", {name: SplitInfo.of(split) for name, split in splits.items()}),
    )
    writer = CacheWriter.create(path, manifest)
    for name, split in splits.items():
        data = vectors(split, dim)
        hashes = split.teacher_hashes_for(template) if template else split.teacher_hashes
        shards = writer.shards(name)
        for shard in shards if finish else shards[:-1]:
            writer.write_shard(name, shard.index, data[shard.start:shard.stop], split.ids[shard.start:shard.stop],
                               hashes[shard.start:shard.stop])
    return path


def tiny_config(student: Path, **changes) -> DistillConfig:
    """Settings sized for a tiny student: small heads and aligner, two short epochs."""
    settings = dict(student=str(student), epochs=2, batch_size=4, eval_batch_size=8, max_length=32, projection_dim=16,
                    aligner_hidden=24, lr=1e-3, aligner_lr=1e-3)
    settings.update(changes)
    return DistillConfig(**settings)


# A second process holding a run folder the way a training process does (armada.run_schema.exclusive): python -c this FOLDER.
HOLD_THE_FOLDER = """
import fcntl, os, sys, time
handle = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(handle, fcntl.LOCK_EX)
print("holding", flush=True)
time.sleep(600)
"""
