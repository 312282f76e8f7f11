"""Building a run's models and optimizers from its settings."""

from __future__ import annotations

from dataclasses import asdict

import torch

from armada.config import DistillConfig
from armada.distill.data import TextHandling
from armada.distill.heads import HeadShape, ReconstructionAligner, StudentHeads, StudentProjection, TSAligner
from armada.distill.model import ArmadaStudent, CausalStudent, HeadsConfig, LMInfo
from armada.distill.students import load_backbone, locate
from armada.errors import ArmadaError
from armada.tasks import Task


def build_student(config: DistillConfig, task: Task) -> tuple[ArmadaStudent, object]:
    """(student, tokenizer): the backbone (LoRA-wrapped with `lora_r`) and fresh heads.

    Parameters no loss reaches are frozen, which keeps them out of the optimizer and out of
    DistributedDataParallel's gradient reduction: an unused pooler, and for the undistilled
    baseline P_s and O_aux_s.
    """
    backbone = load_backbone(config.student, pooling=config.pooling)
    model = backbone.model
    if backbone.pooling != "pooler" and getattr(model, "pooler", None) is not None:
        model.pooler.requires_grad_(False)
    if config.lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r, target_modules="all-linear"))
    hidden = backbone.model.config.hidden_size
    outputs = 1 if task.kind in ("multiple_choice", "regression") else task.num_labels
    shape = head_shape(config, task)
    heads = StudentHeads(hidden, outputs, config.projection_dim, shape)
    if config.undistilled:
        for unused in (heads.P_s, heads.O_aux_s):
            unused.requires_grad_(False)
    handling = text_handling(config)
    types = getattr(backbone.model.config, "type_vocab_size", None)
    if handling.cls_segment_id and "token_type_ids" in backbone.tokenizer.model_input_names and types is not None \
            and handling.cls_segment_id >= types:
        raise ArmadaError(f"distill.cls_segment_id = {handling.cls_segment_id}: {config.student} has "
                          f"{types} token type(s); set distill.cls_segment_id = 0")
    heads_config = HeadsConfig(task.name, task.kind, list(task.labels), task.num_labels, hidden, outputs,
                               config.projection_dim, backbone.pooling, backbone.kind, config.student, backbone.source,
                               config.max_length, asdict(shape), prediction_range(config, task), asdict(handling))
    return ArmadaStudent(model, heads, heads_config), backbone.tokenizer


# LoRA for generative students as LLM-Adapters trains LLaMA for the paper's Table 4 (rank 8, alpha 16,
# dropout 0.05), on every linear layer of the blocks ("all-linear", which any architecture resolves;
# LLM-Adapters names LLaMA's q/k/v/up/down projections): alpha = 2·rank keeps its scale for other ranks.
LM_LORA_DROPOUT = 0.05


def build_lm_student(config: DistillConfig, task: Task) -> tuple[CausalStudent, object]:
    """(student, tokenizer) for `objective = "lm"`: the causal LM (LoRA-wrapped with `lora_r`) and F̃_s, P_s.

    F̃_s and P_s are frozen for the undistilled baseline: no loss reaches them.
    """
    backbone = load_backbone(config.student, lm_head=True, pooling=config.pooling)
    model = backbone.model
    if config.lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r, lora_dropout=LM_LORA_DROPOUT,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
    elif config.save_adapter:
        raise ArmadaError("save_adapter needs a LoRA adapter to save: set lora_r above 0 (or drop --save-adapter)")
    from armada.distill.lm_data import resolve_style

    hidden = backbone.model.config.hidden_size
    projection = StudentProjection(hidden, config.projection_dim, orthogonal_map=config.orthogonal_map)
    if config.undistilled:
        projection.requires_grad_(False)
    location = locate(config.student)
    info = LMInfo(task.name, hidden, config.projection_dim, config.student, location.path, location.gguf_file,
                  config.max_length, resolve_style(config.prompt_style, backbone.tokenizer),
                  "adapter" if config.save_adapter else "merged", config.lora_r)
    return CausalStudent(model, projection, info), backbone.tokenizer


def build_reconstruction_aligner(config: DistillConfig, teacher_dim: int) -> ReconstructionAligner:
    aligner = ReconstructionAligner(teacher_dim, config.aligner_hidden, config.projection_dim,
                                    orthogonal_map=config.orthogonal_map)
    if config.aligner == "frozen-random":
        aligner.requires_grad_(False)
    return aligner


def build_aligner(config: DistillConfig, task: Task, teacher_dim: int) -> TSAligner:
    """The TS Aligner: one output per class, per choice (multiple choice) or one (regression)."""
    aligner = TSAligner(teacher_dim, config.aligner_hidden, task.num_labels, config.projection_dim, head_shape(config, task))
    if config.aligner == "frozen-random":
        aligner.requires_grad_(False)
    return aligner


def text_handling(config: DistillConfig) -> TextHandling:
    return TextHandling(config.lowercase, config.cls_segment_id)


def head_shape(config: DistillConfig, task: Task) -> HeadShape:
    """The heads' shape, dropout and orthogonal map; the authors' regression outputs pass a ReLU (their STS-B heads)."""
    return HeadShape(config.heads, config.dropout, relu_outputs=config.heads == "authors" and task.kind == "regression",
                     orthogonal_map=config.orthogonal_map)


def prediction_range(config: DistillConfig, task: Task) -> list[float] | None:
    """Where regression predictions are clipped when scored: the task's range with `clip_predictions`."""
    return list(task.label_range) if config.clip_predictions and task.label_range is not None else None


def adamw(model: torch.nn.Module, lr: float, weight_decay: float, decay_on: str) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, decaying every one (`decay_on` "all": torch's default, which the authors'
    code keeps, trainer_superglue.py 146-147) or all but biases and normalisation weights (1-d; "weights", as BERT
    fine-tuning does)."""
    decay, plain = [], []
    for p in model.parameters():
        if p.requires_grad:
            (plain if p.ndim < 2 and decay_on == "weights" else decay).append(p)
    # The fused kernel (CPU and GPU; transformers.Trainer's default since torch 2.8): the per-tensor loop it
    # replaces took ~30% of a MiniLM-L6 step on a CPU, as long as the forward pass.
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}], lr=lr,
                             fused=True)


def lr_schedule(optimizer, config: DistillConfig, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over `warmup_ratio` of the steps, then constant or linear decay to 0."""
    warmup = int(config.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.lr_schedule == "linear":
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
