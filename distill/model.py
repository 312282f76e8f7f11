"""The distilled student and the TS Aligner as saved in a run folder (armada.run_schema places them),
and the public API to use them.

The student folder holds the best epoch's backbone (save_pretrained; LoRA merged), its tokenizer,
armada_heads.safetensors (F̃_s, O_s, P_s, O_aux_s) and armada_heads.json (HeadsConfig); the aligner
file the best epoch's TS Aligner, its config in the metadata (absent for an undistilled run).
Both are checked before they load: student/armada_checksums.json holds every file's SHA-256, the
aligner's metadata that of its tensors (armada.checksums); in runs saved before that, each safetensors
file is checked against the length its own header gives.

Public API (eval and `armada run` use these):
  load_student(run_or_student_dir) -> (model, tokenizer, heads_config)
  predict(model, tokenizer, split, batch_size, head) -> (predictions, logits, pooled_embeddings)
  load_aligner(run_dir) -> TSAligner
  predict_aligner(aligner, features, head) -> (predictions, logits)
  aligner_projection(aligner, features) -> p_ts
`head` is "main" (O_s, O_ts: what the run is scored by) or "aux" (O_aux_s, O_aux_ts on the manifold
projections: the paper's Table 10).

The backbone in student/ loads with `transformers.AutoModel.from_pretrained` alone.

A generative run (`objective = "lm"`, armada.distill.lm) saves instead as its student the best
epoch's causal LM (AutoModelForCausalLM; LoRA merged) and its tokenizer, or with `save_adapter` the
LoRA adapter folder (peft's adapter_config.json names the base model), with
armada_projection.safetensors (F̃_s, P_s) and armada_lm.json (LMInfo: the prompt style it was
trained with, where its base came from); as its aligner the ReconstructionAligner. It is used through:
  load_causal_student(run_or_student_dir) -> (model, tokenizer, info)
The merged model loads and generates with `transformers.AutoModelForCausalLM.from_pretrained` alone;
so does the adapter folder where its base is a plain from_pretrained folder or hub id (peft
installed); a GGUF base needs load_causal_student, which loads the file's dequantised copy
(students.plain_folder).

Multiple choice: the student scores every choice with a one-output head and a softmax over the
choices gives the prediction; its manifold projection p_s, and the pooled embedding `predict`
returns, are the means over the example's choices, so each example has one point on the manifold
as the aligner (one teacher vector per example) does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from armada.checksums import (folder_checksums, folder_fault, refuse_damaged, safetensors_bytes,
                              safetensors_fault)
from armada.distill.heads import HeadShape, ReconstructionAligner, StudentHeads, StudentProjection, TSAligner, plain_state_dict
from armada.errors import ArmadaError
from armada.run_schema import RunFolder

HEADS_FILE = "armada_heads.safetensors"
HEADS_CONFIG = "armada_heads.json"
PROJECTION_FILE = "armada_projection.safetensors"
LM_INFO = "armada_lm.json"
CHECKSUMS = "armada_checksums.json"
OUTPUT_HEADS = ("main", "aux")


@dataclass(frozen=True)
class HeadsConfig:
    task: str
    kind: str                   # the task kind: classification, regression, multiple_choice
    labels: list[str]
    num_labels: int
    hidden_size: int            # d, the backbone's pooled state
    outputs: int                # c of O_s and O_aux_s (1 per choice for multiple choice, 1 for regression)
    projection_dim: int
    pooling: str                # pooler, cls, mean, max or last-token (armada.distill.students)
    backbone: str               # encoder or causal
    student: str                # the alias, hub id or folder it was trained from
    source: str                 # where that resolved to
    max_length: int
    # Added with the recipes; a student saved before them has the paper's heads and unclipped scores.
    shape: dict | None = None                   # armada.distill.heads.HeadShape as a dict
    prediction_range: list | None = None        # regression predictions are clipped to [low, high] when scored
    # Added with lowercase and cls_segment_id; a student saved before them reads its text as its tokenizer does.
    text_handling: dict | None = None           # armada.distill.data.TextHandling as a dict

    def head_shape(self) -> HeadShape:
        return HeadShape(**(self.shape or {}))

    def handling(self):
        from armada.distill.data import TextHandling

        return TextHandling(**(self.text_handling or {}))


class StudentOutputs(NamedTuple):
    outputs: torch.Tensor               # o_s [n, c] (multiple choice: [n, choices])
    projection: torch.Tensor | None     # p_s [n, P] (multiple choice: mean over the choices)
    aux: torch.Tensor | None            # o_aux_s [n, c]
    pooled: torch.Tensor                # h_s per example [n, d] (multiple choice: mean over the choices)
    states: torch.Tensor                # h_s per sequence [n × choices, d]: where every loss reaches the backbone


class ArmadaStudent(nn.Module):
    """Backbone + pooling + heads.

    forward(inputs, choices, project) → StudentOutputs, with p_s and o_aux_s None unless `project`
    (only ARMADA's losses need them).
    """

    def __init__(self, backbone: nn.Module, heads: StudentHeads, config: HeadsConfig):
        super().__init__()
        self.backbone, self.heads, self.config = backbone, heads, config

    def pool(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return pooled(self.backbone, self.config.pooling, inputs)

    def forward(self, inputs: dict[str, torch.Tensor], choices: int = 1, project: bool = False) -> StudentOutputs:
        states = self.pool(inputs)
        outputs, projection, aux = self.heads(states, project)
        pooled = states
        if self.config.kind == "multiple_choice":
            n = states.shape[0] // choices
            outputs, pooled = outputs.view(n, choices), states.view(n, choices, -1).mean(dim=1)
            if project:
                aux, projection = aux.view(n, choices), projection.view(n, choices, -1).mean(dim=1)
        return StudentOutputs(outputs, projection, aux, pooled, states)


def pooled(backbone: nn.Module, pooling: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The backbone's pooled embedding of each sequence of `inputs` (`pooling` as Backbone.pooling)."""
    output = backbone(**inputs)
    if pooling == "pooler":
        return output.pooler_output
    states = output.last_hidden_state
    if pooling == "cls":
        return states[:, 0]
    mask = inputs["attention_mask"]
    if pooling == "mean":                   # sentence-transformers' mean over the real tokens
        weights = mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if pooling == "max":                    # sentence-transformers' max: padding set to -1e9 first
        return states.masked_fill(mask.unsqueeze(-1) == 0, -1e9).max(dim=1).values
    # The last position whose mask is 1: right for left padding, right padding and none.
    positions = torch.arange(mask.shape[1], device=mask.device)
    last = (mask * positions).argmax(dim=1)
    return states[torch.arange(states.shape[0], device=states.device), last]


@dataclass(frozen=True)
class LMInfo:
    """armada_lm.json: what a generative student is and how it must be prompted."""

    task: str
    hidden_size: int
    projection_dim: int
    student: str                # the alias, hub id or folder it was trained from
    base_path: str              # where that resolved to (a hub id or folder) ...
    base_gguf_file: str         # ... and the GGUF file in it ("" for none)
    max_length: int
    prompt_style: str           # "chat" or "alpaca": what build_prompt must be given at inference
    saved: str                  # "merged" or "adapter"
    lora_r: int
    pooling: str = "last-prompt-token"


class CausalStudent(nn.Module):
    """A causal LM and its way onto the manifold (F̃_s, P_s).

    forward(batch, project) → (Σ NLL of the response tokens, their count, p_s [n, P] or None). Token t
    is predicted from the logits at t − 1; p_s is projected from the last layer's state at each row's
    last prompt token (armada.distill.lm_data).
    """

    def __init__(self, backbone: nn.Module, projection: StudentProjection, info: LMInfo):
        super().__init__()
        self.backbone, self.projection, self.info = backbone, projection, info

    def forward(self, batch, project: bool = False):
        import torch.nn.functional as F

        output = self.backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                               output_hidden_states=project, use_cache=False)
        logits, targets = output.logits[:, :-1], batch.labels[:, 1:]
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100,
                              reduction="sum")
        count = (targets != -100).sum()
        if not project:
            return nll, count, None
        states = output.hidden_states[-1]
        pooled = states[torch.arange(states.shape[0], device=states.device), batch.pool_index]
        return nll, count, self.projection(pooled)


def predictions_from(kind: str, logits: np.ndarray, value_range=None) -> np.ndarray:
    """Class or choice ids; for regression the scores, clipped to `value_range` = (low, high) where given."""
    if kind != "regression":
        return logits.argmax(axis=1)
    return logits[:, 0] if value_range is None else np.clip(logits[:, 0], *value_range)


# --- saving ------------------------------------------------------------------------------------

def save_student(directory: Path, student: ArmadaStudent | CausalStudent, tokenizer) -> None:
    """save_pretrained the backbone (LoRA merged into a copy), the tokenizer, the heads and their config."""
    import copy

    from safetensors.torch import save_file

    if isinstance(student, CausalStudent):
        save_causal_student(directory, student, tokenizer)
        return
    directory.mkdir(parents=True, exist_ok=True)
    backbone = student.backbone
    if hasattr(backbone, "merge_and_unload"):      # a peft model: merge a copy, the training one goes on
        backbone = copy.deepcopy(backbone).merge_and_unload()
    backbone.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    save_file(plain_state_dict(student.heads), str(directory / HEADS_FILE))
    (directory / HEADS_CONFIG).write_text(json.dumps(asdict(student.config), indent=2) + "\n")


def save_causal_student(directory: Path, student: CausalStudent, tokenizer) -> None:
    """The merged causal LM (or the adapter alone), the tokenizer, F̃_s and P_s, and armada_lm.json."""
    import copy

    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    backbone = student.backbone
    if hasattr(backbone, "merge_and_unload") and student.info.saved == "merged":
        backbone = copy.deepcopy(backbone).merge_and_unload()
    backbone.save_pretrained(directory)         # a peft model saves its adapter only
    tokenizer.save_pretrained(directory)
    save_file(plain_state_dict(student.projection), str(directory / PROJECTION_FILE))
    (directory / LM_INFO).write_text(json.dumps(asdict(student.info), indent=2) + "\n")


def save_best(folder: RunFolder, student, tokenizer, aligner, kind: str, prediction_range=None) -> None:
    """The best epoch so far: the run folder's student (where `student` is given) and aligner (where `aligner` is),
    each replaced whole; `prediction_range`: where the aligner's regression scores are clipped when scored (the
    student's is in its heads config)."""
    if student is not None:
        with folder.publishing_student() as building:
            save_student(building, student, tokenizer)
            (building / CHECKSUMS).write_text(json.dumps(folder_checksums(building), indent=1) + "\n")
    if aligner is not None:
        with folder.publishing_aligner() as building:
            save_aligner(building, aligner, kind, prediction_range)


def save_aligner(path: Path, aligner: TSAligner | ReconstructionAligner, kind: str, prediction_range=None) -> None:
    objective = "reconstruction" if isinstance(aligner, ReconstructionAligner) else "task"
    metadata = {**aligner.config(), "kind": kind, "objective": objective, "prediction_range": prediction_range}
    path.write_bytes(safetensors_bytes(plain_state_dict(aligner), {"armada_aligner": json.dumps(metadata)}))


# --- loading -----------------------------------------------------------------------------------

def _student_dir(path: str | Path) -> Path:
    path = Path(path)
    for candidate in (path, RunFolder(path).student):
        if (candidate / HEADS_CONFIG).is_file():
            return candidate
    raise ArmadaError(f"{path}: neither a run directory with student/ nor a student directory ({HEADS_CONFIG} is missing); "
                      "give the --out directory of `armada distill`")


# What to do about a damaged student or aligner of a run folder.
_RESTORE = ("Copy it back from a backup, or train the run again (armada distill with a new --out, or remove the run "
            "folder and rerun armada run)")


def _checked(directory: Path) -> Path:
    """`directory` (a saved student), refused where a file no longer matches its recorded checksum."""
    recorded = directory / CHECKSUMS
    if recorded.is_file():
        try:
            files = json.loads(recorded.read_text())
        except ValueError as e:
            raise ArmadaError(f"{recorded} cannot be read ({e}). {_RESTORE}") from None
        refuse_damaged(folder_fault(directory, files), _RESTORE)
    else:       # saved before students carried checksums: at least each safetensors file must be whole
        for weights in sorted(directory.glob("*.safetensors")):
            refuse_damaged(safetensors_fault(weights), _RESTORE)
    return directory


def heads_config(path: str | Path) -> HeadsConfig:
    """What the student of a run folder (or a student folder) is, without loading it."""
    return HeadsConfig(**json.loads((_student_dir(path) / HEADS_CONFIG).read_text()))


def load_student(path: str | Path):
    """(model, tokenizer, heads_config) from a run directory or its student/ folder; the model in eval mode."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    directory = _checked(_student_dir(path))
    config = heads_config(directory)
    hf_logging.disable_progress_bar()
    backbone = AutoModel.from_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    heads = StudentHeads(config.hidden_size, config.outputs, config.projection_dim, config.head_shape(), orthogonal=False)
    heads.load_state_dict(load_file(str(directory / HEADS_FILE)))
    model = ArmadaStudent(backbone, heads, config).eval()
    return model, tokenizer, asdict(config)


def load_causal_student(path: str | Path):
    """(model, tokenizer, info) of a generative run's student (a run directory or its student/ folder), in eval mode.

    An adapter folder is loaded on its base (found as the run found it, GGUF file included) and merged.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = Path(path)
    directory = next((c for c in (path, RunFolder(path).student) if (c / LM_INFO).is_file()), None)
    if directory is None:
        raise ArmadaError(f"{path}: neither a generative run directory with student/ nor its student folder ({LM_INFO} is "
                          "missing); give the --out directory of `armada distill --objective lm`")
    _checked(directory)
    info = LMInfo(**json.loads((directory / LM_INFO).read_text()))
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if info.saved == "merged":
        model = AutoModelForCausalLM.from_pretrained(directory)
    else:
        from peft import PeftModel

        from armada.distill.students import Location, plain_folder

        try:
            base = AutoModelForCausalLM.from_pretrained(plain_folder(Location(info.base_path, info.base_gguf_file)).path)
        except (OSError, ValueError) as e:
            raise ArmadaError(f"{directory}: the adapter's base model {info.base_path} cannot be loaded ({e}); "
                              "it must be where the run found it") from None
        model = PeftModel.from_pretrained(base, directory).merge_and_unload()
    return model.eval(), tokenizer, info


def load_aligner(run_dir: str | Path) -> TSAligner | ReconstructionAligner:
    """The run's TS Aligner (eval mode); `aligner.kind` is the task kind."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = RunFolder(run_dir).aligner
    if not path.is_file():
        raise ArmadaError(f"{run_dir}: no {path.name}: the run is undistilled or unfinished")
    refuse_damaged(safetensors_fault(path), _RESTORE)
    with safe_open(str(path), "pt") as f:
        config = json.loads(f.metadata()["armada_aligner"])
    kind, value_range = config.pop("kind"), config.pop("prediction_range", None)
    if config.pop("objective", "task") == "reconstruction":
        aligner = ReconstructionAligner(**config, orthogonal=False)
    else:
        shape = HeadShape(**config.pop("shape", {}))
        aligner = TSAligner(**config, shape=shape, orthogonal=False)
    aligner.load_state_dict(load_file(str(path)))
    aligner.kind, aligner.prediction_range = kind, value_range
    return aligner.eval()


@torch.no_grad()
def predict(model: ArmadaStudent, tokenizer, split, batch_size: int, head: str = "main"):
    """(predictions [n], logits [n, c], pooled embeddings [n, d]) for every example of `split`, in its order;
    `head` "aux" takes the logits from O_aux_s on p_s instead of O_s.

    Batches are formed from examples of similar length (less padding) and put back in order.
    """
    from armada.distill.data import Collator, encode

    aux = _is_aux(head)
    model.eval()
    device = next(model.parameters()).device
    encoded = encode(tokenizer, split, model.config.max_length, model.config.handling())
    collate = Collator(tokenizer, encoded, model.config.kind)
    order = np.argsort(-encoded.lengths, kind="stable")
    logits, pooled = [None] * len(split), [None] * len(split)
    for start in range(0, len(order), batch_size):
        batch = collate(order[start:start + batch_size]).to(device)
        outputs, _, aux_outputs, states, _ = model(batch.inputs, batch.choices, project=aux)
        if aux:
            outputs = aux_outputs
        for i, position in enumerate(batch.positions):
            logits[position], pooled[position] = outputs[i].float().cpu().numpy(), states[i].float().cpu().numpy()
    logits_array = np.stack(logits)
    return predictions_from(model.config.kind, logits_array, model.config.prediction_range), logits_array, np.stack(pooled)


@torch.no_grad()
def predict_aligner(aligner: TSAligner, features, head: str = "main") -> tuple[np.ndarray, np.ndarray]:
    """(predictions [n], logits [n, c]) of the aligner for teacher vectors [n, D]; `head` "aux": from O_aux_ts."""
    aux = _is_aux(head)
    outputs, _, aux_outputs = aligner(_as_tensor(aligner, features), project=aux)
    logits = (aux_outputs if aux else outputs).float().cpu().numpy()
    return predictions_from(aligner.kind, logits, aligner.prediction_range), logits


@torch.no_grad()
def aligner_projection(aligner: TSAligner, features) -> np.ndarray:
    """p_ts [n, projection_dim]: the aligner's points on the manifold the student is aligned to."""
    return aligner(_as_tensor(aligner, features), project=True)[1].float().cpu().numpy()


def _as_tensor(aligner: TSAligner, features) -> torch.Tensor:
    aligner.eval()
    device = next(aligner.parameters()).device
    return torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)


def _is_aux(head: str) -> bool:
    if head not in OUTPUT_HEADS:
        raise ValueError(f"unknown output head {head!r}; the heads are {OUTPUT_HEADS}")
    return head == "aux"
