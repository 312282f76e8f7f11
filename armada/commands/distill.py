"""`armada distill`: train a student against a teacher-feature cache; `armada students`: the student aliases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import typer

# Flags that set a [distill] key of the same name (dashes for underscores).
DISTILL_FLAGS = (
    "student", "undistilled", "recipe", "manifold", "manifold_form", "max_grad_norm", "dropout", "heads", "pooling",
    "alpha", "beta", "gamma", "tau", "soft_loss", "schedule", "aligner",
    "teacher_noise", "projection_dim", "aligner_hidden", "epochs", "batch_size", "eval_batch_size", "max_length", "lr",
    "aligner_lr", "weight_decay", "lr_schedule", "warmup_ratio", "group_by_length", "lora_r", "mixed_precision",
    "gradient_accumulation_steps", "seed", "objective", "aligner_objective", "aligner_pretrain_epochs", "prompt_style",
    "save_adapter",
)


def register(app: typer.Typer) -> None:
    app.command("distill")(distill)
    app.command("students")(students)


def distill(
    cache: Optional[str] = typer.Option(None, "--cache", help="the teacher-feature cache: a directory, packed file or http(s) URL; the task comes from it"),
    student: Optional[str] = typer.Option(None, "--student", help="an alias (armada students), hub id or local folder"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="the task, for --undistilled without a cache (armada tasks)"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="local task files (GLUE/SuperGLUE as published)"),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="a pipeline file whose [distill] settings apply"),
    sets: List[str] = typer.Option([], "--set", help="section.key=value over the pipeline file, e.g. distill.alpha=0.3"),
    variant: Optional[str] = typer.Option(None, "--variant", help="apply the settings of a [[variants]] entry of the pipeline"),
    out: Optional[str] = typer.Option(None, "--out", help="the run directory (default runs/<task>-<student>-<kind>-seed<S>)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the newest complete checkpoint in --out"),
    undistilled: bool = typer.Option(False, "--undistilled", help="the baseline: the task loss alone, no aligner, no cache needed"),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="paper (eq. 2-5 as printed, Table 1's heads) or authors (the "
                                         "authors' code: MSE losses, gradients clipped to 1, alternating epochs, dropout 0.1, "
                                         "their heads); sets the defaults of the options below"),
    manifold: Optional[str] = typer.Option(None, "--manifold", help="cosine, euclid or elementwise (eq. 3-5)"),
    manifold_form: Optional[str] = typer.Option(None, "--manifold-form", help="norm (eq. 4-5's L2 norms) or mse (the "
                                                "authors' mean squared difference)"),
    max_grad_norm: Optional[float] = typer.Option(None, "--max-grad-norm", help="clip each model's gradient to this norm (0 = off)"),
    dropout: Optional[float] = typer.Option(None, "--dropout", help="dropout before the output heads and in the aligner"),
    heads: Optional[str] = typer.Option(None, "--heads", help="paper (F̃_s on the pooled state, orthogonal P_s) or authors "
                                        "(pooled state straight to the heads, P_ts on the raw teacher vector)"),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="auto (as the model declares it), pooler, cls, mean or max"),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="weight of logit matching"),
    beta: Optional[float] = typer.Option(None, "--beta", help="weight of the manifold loss"),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="weight of the auxiliary output losses"),
    tau: Optional[float] = typer.Option(None, "--tau", help="temperature of logit matching"),
    soft_loss: Optional[str] = typer.Option(None, "--soft-loss", help="l2 (eq. 2 as written) or mse (the authors' code)"),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="joint (online) or alternating (aligner epoch, then student epoch)"),
    aligner: Optional[str] = typer.Option(None, "--aligner", help="trained, or frozen-random (never trained: Figure 9)"),
    teacher_noise: Optional[float] = typer.Option(None, "--teacher-noise", help="σ of Gaussian noise on the aligner's inputs (Figure 10)"),
    projection_dim: Optional[int] = typer.Option(None, "--projection-dim"),
    aligner_hidden: Optional[int] = typer.Option(None, "--aligner-hidden"),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="examples per step in each process"),
    eval_batch_size: Optional[int] = typer.Option(None, "--eval-batch-size"),
    max_length: Optional[int] = typer.Option(None, "--max-length"),
    lr: Optional[float] = typer.Option(None, "--lr", help="student learning rate"),
    aligner_lr: Optional[float] = typer.Option(None, "--aligner-lr"),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay"),
    lr_schedule: Optional[str] = typer.Option(None, "--lr-schedule", help="constant or linear (decay to 0)"),
    warmup_ratio: Optional[float] = typer.Option(None, "--warmup-ratio"),
    group_by_length: bool = typer.Option(False, "--group-by-length", help="batch examples of similar length together"),
    lora_r: Optional[int] = typer.Option(None, "--lora-r", help="LoRA rank on the backbone (0 = full fine-tuning)"),
    mixed_precision: Optional[str] = typer.Option(None, "--mixed-precision", help="no, bf16 or fp16 (GPU)"),
    gradient_accumulation_steps: Optional[int] = typer.Option(None, "--gradient-accumulation-steps"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    objective: Optional[str] = typer.Option(None, "--objective", help="task (classes, choices, scores) or lm (a causal LM on "
                                            "prompt → response, for generation tasks; brings LoRA rank 8, 3 epochs, lr 3e-4, batch 4)"),
    aligner_objective: Optional[str] = typer.Option(None, "--aligner-objective", help="task (labels) or reconstruction "
                                                    "(teacher vectors alone; the default for --objective lm)"),
    aligner_pretrain_epochs: Optional[int] = typer.Option(None, "--aligner-pretrain-epochs", help="lm: train the aligner "
                                                          "alone this many epochs first, then keep it fixed (0: jointly)"),
    prompt_style: Optional[str] = typer.Option(None, "--prompt-style", help="lm: chat (the tokenizer's template), alpaca, "
                                               "or auto (chat where the tokenizer has a template)"),
    save_adapter: bool = typer.Option(False, "--save-adapter", help="lm: save the LoRA adapter folder, not the merged model"),
    train_limit: Optional[int] = typer.Option(None, "--train-limit", help="the first N training rows (default: as the cache)"),
    validation_limit: Optional[int] = typer.Option(None, "--validation-limit", help="the first N validation rows (default: as the cache)"),
) -> None:
    """Train a student with ARMADA against a teacher-feature cache (or the undistilled baseline).

    Example: armada distill --cache cache/cola--sd14.zarr --student bert-6l --data-dir ../shared/data/glue --manifold euclid --out runs/cola-bert6l

    Example: armada distill --objective lm --cache cache/instruct_dolly--piper-whisper.zarr --student smollm2-135m --data-dir ../shared/data/generative/instruction --out runs/dolly-smollm2
    """
    from armada.commands import load_pipeline
    from armada.distill.recipe import train
    from armada.errors import ArmadaError
    from armada.tasks import get_task

    given = dict(locals())
    flags = {key: given[key] for key in DISTILL_FLAGS}
    flags["undistilled"] = True if undistilled else None
    flags["group_by_length"] = True if group_by_length else None
    flags["save_adapter"] = True if save_adapter else None
    flags = {k: v for k, v in flags.items() if v is not None}
    pipeline = load_pipeline(config, sets, {f"distill.{k}": v for k, v in flags.items()})

    task_name = dataset
    if cache:
        from armada.distill.teacher_features import open_cache

        with open_cache(cache) as reader:
            cached = reader.manifest.dataset.task
        if dataset and dataset != cached:
            raise ArmadaError(f"--dataset {dataset} but the cache at {cache} holds {cached!r}; "
                              "drop --dataset (the task comes from the cache) or use a cache for it")
        task_name = cached
    elif not dataset:
        raise ArmadaError("give --cache PATH (the task comes from it), or --dataset TASK with --undistilled")
    task = get_task(task_name, pipeline.tasks)
    settings = pipeline.distill_for(task.name, pipeline.variant(variant) if variant else None, **flags)

    kind = variant or ("undistilled" if settings.undistilled else "armada")
    out_dir = out or str(Path("runs") / "-".join(_slug(p) for p in (task.name, settings.student, kind, f"seed{settings.seed}")))
    data = pipeline.data
    result = train(
        settings, task, cache, data_dir if data_dir is not None else data.dir_for(task.name), out_dir, resume=resume, variant=variant,
        train_limit=train_limit if train_limit is not None else (data.train_limit or None),
        validation_limit=validation_limit if validation_limit is not None else (data.validation_limit or None),
        template=data.teacher_templates.get(task.name),
    )
    best = "undefined" if result.best_dev is None else f"{result.best_dev:.4f}"
    typer.echo(f"finished {result.out_dir}: best dev {result.metric} {best} at epoch {result.best_epoch} "
               f"({result.seconds:.0f} s)")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", Path(text).name if Path(text).is_dir() else text).strip("-")


def students() -> None:
    """List the student aliases: name, source, kind, size. Any hub id or local folder works too.

    Example: armada students
    """
    from armada.distill.students import ALIASES, OFFLINE_ALIASES

    rows = [(a.name, a.kind, a.size, a.source + ("  [offline]" if a.name in OFFLINE_ALIASES else "")) for a in ALIASES.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])
    typer.echo("\nAny hub id (org/model) or folder saved with save_pretrained works as --student too; "
               "the meta-llama models are gated: accept their licence on the hub and log in first.")
