"""The pipeline configuration: `pipeline.toml` read into frozen dataclasses.

Precedence, lowest first: the defaults written below ← the pipeline file ← `--set section.key=value`
← explicit command-line flags. Unknown keys, wrong types and impossible values are errors that
name the key and where it came from. The defaults here are the paper's settings (Appendix C)
unless a comment says otherwise.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import hashlib
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

from armada.errors import ConfigError
from armada.fields import setting
from armada.numbers import number_fault
from armada.objectives import OBJECTIVES


@dataclass(frozen=True)
class RunConfig:
    """What `armada run` does: every task × variant × seed, then eval and a report."""

    name: str = "default"                       # runs go to <runs_dir>/<name>/, the report to <report_dir>/<name>/
    tasks: tuple[str, ...] = ("bbc-news",)      # task names (`armada tasks`)
    seeds: tuple[int, ...] = (0, 1, 2)
    seeds_per_task: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # over seeds, for one task
    runs_dir: str = "runs"
    report_dir: str = "report"
    analysis: bool = False                      # add the paper's analyses to the report (armada report --analysis)
    # Generative runs: generation tasks each run of a trained task is also scored on, zero-shot
    # (paper Tables 4 and 11): {"instruct/dolly" = ["instruct/dolly-test", "instruct/sinst"]}.
    zero_shot: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    eval_limit: int = setting(0, low=0, doc="generative runs: score the first N rows of each zero-shot set (0 = all)")
    processes: int = setting(1, low=1, doc="runs trained at once, each in its own process with its share of the "
                                           "CPU cores (the runs are independent)")


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how much of it."""

    data_dir: str = ""                          # local GLUE/SuperGLUE suite or task folder; "" reads the hub
    data_dirs: Mapping[str, str] = field(default_factory=dict)  # per task, over data_dir: {"super_glue/copa" = "..."}
    train_limit: int = setting(0, low=0, doc="keep the first N training rows (0 = all)")
    validation_limit: int = setting(0, low=0, doc="keep the first N validation rows (0 = all)")
    # Teacher text per task: a template over the task's text fields, e.g. "{title}" (default: all
    # text fields joined and lowercased, as the authors' code does).
    teacher_templates: Mapping[str, str] = field(default_factory=dict)

    def dir_for(self, task: str) -> str:
        return self.data_dirs.get(task, self.data_dir)


@dataclass(frozen=True)
class ExtractConfig:
    """Stage 1: teacher latents into the cache."""

    teacher: str = "piper-whisper"              # a registered teacher (`armada teachers`), a [teachers.NAME] table or run:PATH
    # Several teachers compared in one pipeline (`teacher` is then the first): each is extracted once per task, and
    # every distilled variant runs once per teacher, as VARIANT@TEACHER (the report puts them side by side per task).
    teachers: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("train", "validation")
    cache_dir: str = "cache"                    # `armada run` writes <cache_dir>/<task>--<teacher>.zarr
    # Other cache folders (a team's, a smaller extraction's): where one holds a cache of the same name, made by the
    # same teacher with the same settings, the rows it has already encoded are copied instead of encoded again.
    reuse_from: tuple[str, ...] = ()
    batch_size: int = setting(8, low=1)
    shard_rows: int = setting(2048, low=1, doc="rows per shard: the unit of writing, resuming and verifying")
    dtype: Literal["float16", "float32"] = "float16"
    num_processes: int = setting(1, low=1)


@dataclass(frozen=True)
class SharedDistillConfig:
    """Stage 2: ARMADA training of a student against the cache (paper §3, Appendix C); the settings every
    objective reads. DistillConfig below adds `objective` and each objective's own settings."""

    student: str = setting("minilm-l6", doc="an alias (`armada students`), hub id or local folder", example="bert-6l")
    undistilled: bool = setting(False, doc="the baseline: the same student and head, the task loss alone, no cache "
                                           "(with --objective kd: KD alone, no multimodal teacher)")
    manifold: Literal["cosine", "euclid", "elementwise"] = setting("euclid", doc="the manifold loss (eq. 3-5)")
    alpha: float = setting(0.5, low=0.0, high=1.0, doc="weight of the logit-matching loss (eq. 2)")
    beta: float = setting(1.0, low=0.0, doc="weight of the manifold loss")
    gamma: float = setting(1.0, low=0.0, doc="weight of the auxiliary output losses")
    tau: float = setting(5.0, above=0.0, doc="temperature of logit matching (eq. 2, and KD's)")
    aligner: Literal["trained", "frozen-random"] = setting("trained", doc="frozen-random: never trained (Figure 9)")
    teacher_noise: float = setting(0.0, low=0.0, doc="σ of Gaussian noise on the aligner's inputs (Figure 10)")
    # The training recipe: "authors" is the authors' released code, which produced the paper's
    # numbers; "paper" follows the paper's text (eq. 2-5 as printed, Table 1's heads). docs/recipes.md
    # lists every difference and why "authors" is the default. A recipe sets the defaults of the
    # settings from soft_loss to clip_predictions and from weight_decay_on to cls_segment_id (RECIPES below);
    # any of them given explicitly wins.
    recipe: Literal["paper", "authors"] = setting("authors", doc="paper (eq. 2-5 as printed, Table 1's heads) or authors "
                                                              "(the authors' code); sets the defaults of soft_loss to "
                                                              "clip_predictions and of weight_decay_on to "
                                                              "cls_segment_id")
    soft_loss: Literal["l2", "mse"] = setting("mse", doc="logit matching: l2 = ‖Φ(o_ts/τ) − Φ(o_s/τ)‖₂ as eq. 2 writes it, "
                                                        "mse = the mean squared difference ×τ² (the authors' code)")
    manifold_form: Literal["norm", "mse"] = setting("mse", doc="euclid and elementwise as eq. 4-5's L2 norms, or mse: "
                                                                "the authors' mean squared difference")
    schedule: Literal["joint", "alternating"] = setting("alternating", doc="joint: the paper's online distillation (both every "
                                                                     "step); alternating: an aligner epoch, then a student "
                                                                     "epoch (the authors' code)")
    max_grad_norm: float = setting(1.0, low=0.0, doc="clip each model's gradient to this norm before its step (0 = off)")
    dropout: float = setting(0.1, low=0.0, high=1.0, doc="dropout on the inputs of the output heads and in the aligner's MLP")
    # "paper": F̃_s (Linear + tanh) on the pooled state, orthogonal P_s; the aligner's MLP ends in tanh
    # and P_ts projects its output. "authors": the pooled state straight to O_s and to a plain P_s;
    # the aligner's MLP is ReLU throughout and P_ts projects the raw teacher vector; regression
    # outputs pass a ReLU.
    heads: Literal["paper", "authors"] = setting("authors", doc="paper (F̃_s on the pooled state, orthogonal P_s) or authors "
                                                             "(pooled state straight to the heads, P_ts on the raw teacher "
                                                             "vector)")
    projection_dim: int = setting(1024, low=1, doc="dimension of the shared manifold (P_ts, P_s)")
    aligner_hidden: int = setting(768, low=1, doc="hidden size of the aligner's MLP F̃_ts")
    clip_predictions: bool = setting(True, doc="score regression predictions clipped to the task's range (STS-B: 0-5)")
    # The student's pooled state h_s (encoders): "auto" = what the model's makers declared (a
    # sentence-transformers model's 1_Pooling/config.json), else the pooler where the checkpoint
    # trained one, else [CLS]; "mean" and "max" over the real tokens. Causal LMs pool their last real token.
    pooling: Literal["auto", "pooler", "cls", "mean", "max"] = setting("auto", doc="the student's pooled state: auto (as "
                                                                                   "the model declares it), pooler, cls, "
                                                                                   "mean or max")
    epochs: int = setting(10, low=1, doc="training epochs")
    batch_size: int = setting(32, low=1, doc="examples per step in each process")
    eval_batch_size: int = setting(64, low=1, doc="examples per step when scoring")
    max_length: int = setting(128, low=8, doc="tokens per example (longer ones are cut)")
    lr: float = setting(2e-5, above=0.0, doc="student learning rate")
    aligner_lr: float = setting(1e-3, above=0.0, doc="aligner learning rate")
    weight_decay: float = setting(0.01, low=0.0, doc="AdamW weight decay (on what: weight_decay_on)")
    lr_schedule: Literal["constant", "linear"] = setting("constant", doc="after warmup: constant, or linear decay to 0")
    warmup_ratio: float = setting(0.0, low=0.0, high=1.0, doc="the share of steps the learning rates warm up over")
    group_by_length: bool = setting(False, doc="batches of examples of similar length: less padding, the same examples "
                                               "per epoch")
    lora_r: int = setting(0, low=0, doc="LoRA rank on the student backbone (0 = full fine-tuning)")
    mixed_precision: Literal["no", "fp16", "bf16"] = setting("no", doc="fp16 needs a GPU")
    gradient_accumulation_steps: int = setting(1, low=1, doc="batches per optimizer step")
    seed: int = setting(0, doc="seeds every random draw: weights, orders, dropout")
    # What else the authors' code does (LCS2-IIITD/ARMADA; docs/recipes.md gives each its lines), each a choice of
    # its own; RECIPES sets them with the recipe. Run folders written before these settings trained as "paper".
    weight_decay_on: Literal["weights", "all"] = setting("all", doc="AdamW's decay on weight matrices only (biases and "
                                                                   "norms exempt, BERT's habit) or on every parameter "
                                                                   "(torch's default, the authors' code)")
    selection: Literal["primary", "authors"] = setting("authors", doc="the dev score the best epoch is chosen by: the "
                                                                    "task's primary one, or the authors' (MCC, F1, "
                                                                    "accuracy, Spearman: CB by macro-F1)")
    aligner_kept: Literal["student-best", "own-best"] = setting("own-best", doc="the TS Aligner saved with the run: the "
                                                                               "one of the student's best epoch, or of "
                                                                               "its own best dev epoch (the authors')")
    orthogonal_map: Literal["cayley", "matrix_exp"] = setting("matrix_exp", doc="how orthogonal projections are "
                                                                               "parametrised: Cayley from the identity, "
                                                                               "or matrix_exp from a random rotation "
                                                                               "(torch's default for the authors' square "
                                                                               "P_ts)")
    reshuffle_per_phase: bool = setting(True, doc="alternating schedule: the aligner's and the student's epoch each "
                                                  "draw their own order (the authors' DataLoader) instead of sharing one")
    lowercase: bool = setting(True, doc="lowercase the student's text before tokenising (the authors' code)")
    cls_segment_id: int = setting(1, low=0, high=1, doc="the token type id of [CLS] where the student has token types "
                                                        "(the authors' code: 1)")


def _check_objective(config) -> None:
    """The rules the objectives declare (armada.objectives): another objective's settings left at their defaults,
    shared settings this one has no role for too, then its own rule."""
    declared = OBJECTIVES[config.objective]
    for other in OBJECTIVES.values():
        if other is not declared and other.settings is not None:
            for f in dataclasses.fields(other.settings):
                if getattr(config, f.name) != f.default:
                    raise ConfigError(f'distill.{f.name} applies to distill.objective = "{other.name}" only')
    defaults = {**{f.name: f.default for f in dataclasses.fields(SharedDistillConfig)}, **RECIPES[config.recipe]}
    changed = [k for k in declared.unused if getattr(config, k) != defaults[k]]
    if changed:
        raise ConfigError(f'distill.objective = "{config.objective}": {", ".join(changed)} have no role in it; '
                          "remove them")
    if declared.check is not None:
        declared.check(config)


def _distill_config() -> type:
    """DistillConfig: the shared settings, then `objective`, then every objective's own settings (flat keys of
    [distill], each read by one objective and refused under another)."""
    fields = [("objective", Literal[tuple(OBJECTIVES)],
               setting("task", doc="; ".join(f"{o.name}: {o.summary}" for o in OBJECTIVES.values())))]
    for declared in OBJECTIVES.values():
        if declared.settings is not None:
            hints = typing.get_type_hints(declared.settings)
            fields += [(f.name, hints[f.name], field(default=f.default, metadata=f.metadata))
                       for f in dataclasses.fields(declared.settings)]
    names = [name for name, _, _ in fields] + [f.name for f in dataclasses.fields(SharedDistillConfig)]
    clashes = {name for name in names if names.count(name) > 1}
    if clashes:
        raise TypeError(f"objectives' settings clash with other [distill] settings: {sorted(clashes)}")  # a bug
    cls = dataclasses.make_dataclass("DistillConfig", fields, bases=(SharedDistillConfig,), frozen=True,
                                     namespace={"__post_init__": _check_objective})
    cls.__module__, cls.__doc__ = __name__, SharedDistillConfig.__doc__.split(";")[0] + "."
    return cls


# What each recipe sets (DistillConfig's defaults are the "paper" column). "authors" is the authors'
# code (LCS2-IIITD/ARMADA, trainer_superglue.py and models.py): MSE forms of the soft and manifold
# losses, every gradient clipped to norm 1, an aligner epoch then a student epoch, dropout 0.1,
# their heads, a 768-wide aligner, a 1024-d manifold (Stable Diffusion's flattened latent) and
# STS-B predictions clipped to [0, 5] when scored.
RECIPES = {
    "paper": {"soft_loss": "l2", "manifold_form": "norm", "schedule": "joint", "max_grad_norm": 0.0, "dropout": 0.0,
              "heads": "paper", "projection_dim": 768, "aligner_hidden": 1024, "clip_predictions": False},
    "authors": {"soft_loss": "mse", "manifold_form": "mse", "schedule": "alternating", "max_grad_norm": 1.0, "dropout": 0.1,
                "heads": "authors", "projection_dim": 1024, "aligner_hidden": 768, "clip_predictions": True},
}
# The authors' code made exact (issue 26): AdamW's default decay on every parameter, their selection metric, the
# aligner of its own best epoch, torch's orthogonal map, a shuffle per phase, their student inputs. "paper" keeps
# what every run before these settings did.
AUTHORS_CODE = {"weight_decay_on": ("weights", "all"), "selection": ("primary", "authors"),
                "aligner_kept": ("student-best", "own-best"), "orthogonal_map": ("cayley", "matrix_exp"),
                "reshuffle_per_phase": (False, True), "lowercase": (False, True), "cls_segment_id": (0, 1)}
RECIPES["paper"].update({key: values[0] for key, values in AUTHORS_CODE.items()})
RECIPES["authors"].update({key: values[1] for key, values in AUTHORS_CODE.items()})
DistillConfig = _distill_config()


@dataclass(frozen=True)
class Variant:
    """One row of the report: a name, the [distill] settings it changes, the tasks it runs on."""

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()                 # () = every task of [run]; else only these (ablations on a few)
    teacher: str = ""                           # "" = the pipeline's ([extract] teacher or teachers); else this one


@dataclass(frozen=True)
class FileTask:
    """A task read from local CSV, TSV or JSONL files: `file:NAME` refers to [tasks.NAME]."""

    train: str = ""
    validation: str = ""
    test: str = ""
    kind: Literal["classification", "regression", "generation"] = "classification"
    text_fields: tuple[str, ...] = ("text",)      # generation: [instruction field] or [instruction field, input field]
    label_field: str = "label"                  # generation: the response field (a text or a list of references)
    labels: tuple[str, ...] = ()                # classification: the label values as they appear in the file
    id_field: str = ""                          # "" uses the row number together with a hash of the row
    metric: Literal["accuracy", "mcc", "accuracy_f1", "pearson_spearman"] = "accuracy"


@dataclass(frozen=True)
class PipelineConfig:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    variants: tuple[Variant, ...] = (Variant("undistilled", {"undistilled": True}), Variant("armada-euclid", {"manifold": "euclid"}))
    # [teachers.NAME] tables: settings for a registered teacher, or a new one with `kind = ...`.
    teachers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tasks: Mapping[str, FileTask] = field(default_factory=dict)
    # [distill_per_task."TASK"]: [distill] settings for one task (e.g. SuperGLUE's batch 8).
    distill_per_task: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "defaults"                    # the file it was read from, for messages

    def distill_for(self, task: str, variant: Variant | None = None, **flags) -> DistillConfig:
        """The [distill] settings for one task and variant: base ← per-task ← variant ← flags."""
        merged = dataclasses.asdict(self.distill)
        overrides = dict(self.distill_per_task.get(task, {}))
        if variant is not None:
            overrides.update(variant.settings)
        overrides.update({k: v for k, v in flags.items() if v is not None})
        if overrides.get("recipe", merged["recipe"]) != merged["recipe"]:
            merged.update(RECIPES[overrides["recipe"]])     # a task or variant that changes recipe starts from it
        if overrides.get("objective", merged["objective"]) != merged["objective"]:
            merged.update(OBJECTIVES[overrides["objective"]].defaults)  # a task or variant that changes objective starts from its defaults
        merged.update(overrides)
        # One variant over many tasks: {task} in an objective's own setting (kd_cache) is each task's folder name.
        own = {f.name for o in OBJECTIVES.values() if o.settings for f in dataclasses.fields(o.settings)}
        for key in own:
            if isinstance(merged[key], str) and "{task}" in merged[key]:
                from armada.files import task_slug

                merged[key] = merged[key].replace("{task}", task_slug(task))
        return build(DistillConfig, merged, "distill", _Origins(self.source))

    def teachers_of(self, variant: Variant) -> tuple[str, ...]:
        """The teachers a distilled variant runs with: its own, else [extract] teachers, else [extract] teacher."""
        return (variant.teacher,) if variant.teacher else (self.extract.teachers or (self.extract.teacher,))

    def all_teachers(self) -> tuple[str, ...]:
        """Every teacher some variant of the pipeline distils from, in the order they are named."""
        named = [t for v in self.variants if not self.distill_for("", v).undistilled for t in self.teachers_of(v)]
        return tuple(dict.fromkeys(named))

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise ConfigError(f"{self.source}: no variant named {name!r}; the variants are {[v.name for v in self.variants]}")

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(to_dict(self), sort_keys=True).encode()).hexdigest()


# --- loading ---------------------------------------------------------------------------------

class _Origins:
    """Where each key came from ("pipeline.toml", "--set", "--alpha"), for error messages."""

    def __init__(self, default: str):
        self.default = default
        self.by_key: dict[str, str] = {}

    def __call__(self, key: str) -> str:
        return self.by_key.get(key, self.default)


# A further check of a loaded pipeline, given where each key came from: how a stage that owns a part
# of the file ([teachers.*] belongs to armada.extract) checks it at load time without this module
# knowing that stage.
Check = Callable[["PipelineConfig", Callable[[str], str]], None]


def load(path: str | Path | None = None, sets: list[str] = (), flags: Mapping[str, Any] | None = None,
         checks: Sequence[Check] = ()) -> PipelineConfig:
    """Read a pipeline: defaults ← `path` ← `sets` ("section.key=value") ← `flags` ({"section.key": value}).

    Flags whose value is None were not given and change nothing. `checks` run on the result; the
    commands pass the stages' own (armada.commands.load_pipeline).
    """
    source = str(path) if path else "defaults"
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such pipeline file")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
    origins = _Origins(source)
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. --set distill.alpha=0.3")
        _assign(raw, key.strip(), _parse_value(text.strip()), f"--set {item}", origins)
    for key, value in (flags or {}).items():
        if value is not None:
            _assign(raw, key, value, "--" + key.rsplit(".", 1)[-1].replace("_", "-"), origins)
    config = _build_pipeline(raw, origins)
    for check in checks:
        check(config, origins)
    return dataclasses.replace(config, source=source)


def _parse_value(text: str) -> Any:
    """A --set value is TOML (numbers, booleans, ["lists"], "strings"); anything else is a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _split_key(key: str) -> list[str]:
    """`distill_per_task."super_glue/copa".batch_size` → three parts (quotes protect dots)."""
    parts, current, quoted = [], "", False
    for ch in key:
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    if quoted or any(not p for p in parts):
        raise ConfigError(f"{key!r}: not a valid key path; write section.key, quoting parts with dots or slashes")
    return parts


def _assign(raw: dict, key: str, value: Any, origin: str, origins: _Origins) -> None:
    parts = _split_key(key)
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{origin}: {key}: {part} is a value, not a section")
    node[parts[-1]] = value
    origins.by_key[".".join(parts)] = origin


def _build_pipeline(raw: dict, origins: _Origins) -> PipelineConfig:
    known = {f.name for f in dataclasses.fields(PipelineConfig)} - {"source"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{origins(key)}: unknown section [{key}]; the sections are {sorted(known)}")
    values: dict[str, Any] = {}
    for name, cls in (("run", RunConfig), ("data", DataConfig), ("extract", ExtractConfig), ("distill", DistillConfig)):
        values[name] = build(cls, _table(raw.get(name, {}), name, origins), name, origins)
    extract = values["extract"]
    if extract.teachers:
        # `teacher` is the first of several (what `armada extract` takes by default); a resolved file names both.
        if "teacher" in raw.get("extract", {}) and extract.teacher not in extract.teachers:
            raise ConfigError(f"{origins('extract.teacher')}: [extract] teacher = {extract.teacher!r} is not among "
                              f"teachers = {list(extract.teachers)}; give teachers alone to compare several")
        if "teacher" not in raw.get("extract", {}):
            values["extract"] = dataclasses.replace(extract, teacher=extract.teachers[0])
    if "variants" in raw:
        values["variants"] = _build_variants(raw["variants"], _table(raw.get("distill", {}), "distill", origins), origins)
    tasks = _table(raw.get("tasks", {}), "tasks", origins)
    values["tasks"] = {name: build(FileTask, table, f"tasks.{name}", origins) for name, table in tasks.items()}
    per_task = _table(raw.get("distill_per_task", {}), "distill_per_task", origins)
    distill = dataclasses.asdict(values["distill"])
    for task, table in per_task.items():
        build(DistillConfig, {**distill, **_table(table, f"distill_per_task.{task}", origins)}, f"distill_per_task.{task}", origins)
    values["distill_per_task"] = per_task
    teachers = _table(raw.get("teachers", {}), "teachers", origins)
    values["teachers"] = {name: _table(t, f"teachers.{name}", origins) for name, t in teachers.items()}
    config = PipelineConfig(**values, source=origins.default)
    _check_references(config, origins)
    return config


# Settings only ARMADA's teacher terms read (the aligner, eq. 2-5, the auxiliary outputs): an undistilled run ignores them.
ARMADA_ONLY = ("manifold", "alpha", "beta", "gamma", "aligner", "teacher_noise", "soft_loss", "manifold_form", "schedule",
               "projection_dim", "aligner_hidden", "aligner_lr")


def refuse_idle_variants(config: PipelineConfig) -> None:
    """Before a pipeline runs: a variant that trains undistilled yet sets what only the teacher's terms read would be
    the baseline again under another name (as the default variants are under [distill] undistilled = true)."""
    for variant in config.variants:
        idle = [key for key in ARMADA_ONLY if key in variant.settings]
        if idle and variant.settings.get("undistilled", config.distill.undistilled):
            raise ConfigError(f"{config.source}: variant {variant.name!r} trains undistilled, so its {', '.join(idle)} "
                              "would change nothing and it would train the baseline again: set undistilled = false in "
                              "it, or declare the [[variants]] without it (name = \"undistilled\" is the baseline)")


def _build_variants(items: Any, distill: Mapping[str, Any], origins: _Origins) -> tuple[Variant, ...]:
    """The [[variants]], each checked over the pipeline's [distill] table as it will run: a key that only one objective
    reads (seqkd_cache, kd_alpha, …) is valid in a variant of a pipeline whose [distill] sets that objective."""
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{origins('variants')}: [[variants]] must be a list of tables, each with a name")
    variants, seen = [], set()
    for i, item in enumerate(items):
        where = f"variants[{i}]"
        item = dict(_table(item, where, origins))
        name = item.pop("name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{origins('variants')}: {where} needs a name = \"...\"")
        if name in seen:
            raise ConfigError(f"{origins('variants')}: two variants are named {name!r}")
        seen.add(name)
        tasks = _coerce(item.pop("tasks", []), tuple[str, ...], f"{where}.tasks", origins)
        teacher = _coerce(item.pop("teacher", ""), str, f"{where}.teacher", origins)
        build(DistillConfig, {**distill, **item}, f"{where} ({name})", origins)  # reject unknown keys and bad values now
        if "@" in name:
            raise ConfigError(f"{origins('variants')}: {where}: {name!r}: @ is kept for the runs of a variant with "
                              f"each teacher (VARIANT@TEACHER); rename it")
        variants.append(Variant(name, item, tasks, teacher))
    return tuple(variants)


def _table(value: Any, where: str, origins: _Origins) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{origins(where)}: {where} must be a table, got {value!r}")
    return value


def _check_references(config: PipelineConfig, origins: _Origins) -> None:
    from armada.tasks import task_names

    valid = set(task_names()) | {f"file:{name}" for name in config.tasks}
    for task in config.run.tasks:
        if task not in valid:
            raise ConfigError(
                f"{origins('run.tasks')}: run.tasks: unknown task {task!r}; the tasks are {sorted(valid)} "
                "(a [tasks.NAME] table defines file:NAME)"
            )
    # A variant's tasks and zero_shot's keys outside run.tasks are not run, so that a pipeline can be
    # split across processes or machines with --set run.tasks=[...]; a name no task has is a mistake.
    for variant in config.variants:
        for task in variant.tasks:
            if task not in valid:
                raise ConfigError(f"{origins('variants')}: variant {variant.name!r} names an unknown task {task!r}; "
                                  "`armada tasks` lists them")
    for trained, scored in config.run.zero_shot.items():
        for task in (trained, *scored):
            if task not in valid:
                raise ConfigError(f"{origins('run.zero_shot')}: run.zero_shot names an unknown task {task!r}; "
                                  "`armada tasks` lists them")


def build(cls, table: Mapping[str, Any], where: str, origins: _Origins | str):
    """Build dataclass `cls` from a TOML table, checking every key, type and range."""
    if isinstance(origins, str):
        origins = _Origins(origins)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if cls is DistillConfig:
        recipe = table.get("recipe", DistillConfig.recipe)
        preset = dict(RECIPES.get(recipe, {}) if isinstance(recipe, str) else {})  # a bad name is reported below
        declared = OBJECTIVES.get(table.get("objective", DistillConfig.objective))      # a bad name is reported below
        if declared is not None:
            preset.update(declared.defaults)
        table = {**preset, **table}
        for key in {key for o in OBJECTIVES.values() for key in o.retired}:
            if key in table and declared is not None:
                table = dict(table)
                value, wanted = table.pop(key), declared.retired[key]
                if value != wanted:
                    raise ConfigError(f"{origins(f'{where}.{key}')}: {where}.{key} = {value!r} was removed: the objective "
                                      f"decides it, and objective = {table.get('objective', DistillConfig.objective)!r} "
                                      f"means {wanted!r}; remove the key")
    values = {}
    for key, value in table.items():
        dotted = f"{where}.{key}"
        if key not in fields:
            raise ConfigError(f"{origins(dotted)}: unknown key {dotted}; the keys of [{where}] are {sorted(fields)}")
        values[key] = _coerce(value, hints[key], dotted, origins)
        meta = fields[key].metadata
        fault = number_fault(values[key], low=meta.get("low"), high=meta.get("high"), above=meta.get("above"))
        if fault:
            raise ConfigError(f"{origins(dotted)}: {dotted} = {values[key]!r} is impossible: {fault}")
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"{origins(where)}: [{where}]: {e}") from None


def _coerce(value: Any, hint: Any, key: str, origins: _Origins) -> Any:
    def wrong(expected: str):
        return ConfigError(f"{origins(key)}: {key} = {value!r} has the wrong type: expected {expected}")

    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{origins(key)}: {key} = {value!r} is not one of {list(typing.get_args(hint))}")
        return value
    if origin is tuple:
        item_hint = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            raise wrong("a list")
        return tuple(_coerce(v, item_hint, f"{key}[{i}]", origins) for i, v in enumerate(value))
    if origin in (dict, collections.abc.Mapping):
        _, item_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise wrong("a table")
        return {k: _coerce(v, item_hint, f"{key}.{k}", origins) for k, v in value.items()}
    raise TypeError(f"config field {key} has an unsupported type {hint}")  # a bug here, not a user error


# --- writing ---------------------------------------------------------------------------------

def to_dict(obj) -> Any:
    """A plain, TOML-writable form of a config (the `source` bookkeeping left out)."""
    if isinstance(obj, Variant):
        return {"name": obj.name, **obj.settings, **({"tasks": list(obj.tasks)} if obj.tasks else {}),
                **({"teacher": obj.teacher} if obj.teacher else {})}
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "source"}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def to_toml(data: Mapping[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(_drop_empty(data))


def _drop_empty(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_drop_empty(v) if isinstance(v, Mapping) else v) for k, v in data.items() if v != {}}
