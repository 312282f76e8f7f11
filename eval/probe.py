"""`armada probe`: how much of a task a cache's teacher vectors carry, before any distillation.

Three linear probes, each fitted on the training rows the cache holds and scored two ways: k-fold
cross-validated on the training split, and fitted on all of it and checked on the validation split.

- teacher: the cached teacher vectors;
- student: the student's own frozen pooled embedding of the same rows (what the student starts from:
  a teacher is worth distilling only where it knows what the student does not);
- shuffled: the teacher vectors with the training labels permuted, a control that must sit at chance.

A probe is a standardised logistic regression (classification, multiple choice: the label from the
example's one teacher vector) or ridge regression (regression), its strength chosen by the
cross-validation from a short grid, so its cross-validated score is slightly optimistic; the
validation score is not. Scores are ×100 (accuracy, or Pearson r for regression). Intervals are
95 %: a t-interval over the folds (cut to the score's range: a few folds near 100 would reach past it), and a
percentile bootstrap over the validation rows.

A probe is at chance when its validation interval reaches the chance level: the accuracy of always
answering the training split's most frequent label, or r = 0.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from armada.errors import ArmadaError

PROBES = ("teacher", "student", "shuffled")
LOGISTIC_C = (0.01, 0.1, 1.0)               # inverse regularisation strengths tried
RIDGE_ALPHA = (1.0, 10.0, 100.0, 1000.0)
BOOTSTRAP_RESAMPLES = 1000
PROBE_FILE_PREFIX = "probe--"               # `armada run` writes <runs>/<name>/<task>/probe--<teacher>.json


class TooFewRows(ArmadaError):
    """The cache holds too few training rows (per label) for the folds asked."""


@dataclass(frozen=True)
class ProbeScore:
    probe: str                  # one of PROBES
    cv: float                   # mean over the folds, ×100
    cv_low: float
    cv_high: float
    dev: float | None           # fitted on the whole training split, scored on validation; None without one
    dev_low: float | None
    dev_high: float | None
    strength: float             # the C (logistic) or alpha (ridge) the cross-validation chose

    def at_chance(self, chance: float) -> bool:
        low, high = (self.dev_low, self.dev_high) if self.dev is not None else (self.cv_low, self.cv_high)
        return low <= chance <= high or high < chance


@dataclass(frozen=True)
class ProbeResult:
    task: str
    cache: str
    config_hash: str            # the cache manifest's: a re-extracted cache is probed again
    teacher: str
    teacher_dim: int
    student: str                # "" when the student probe was not run
    metric: str                 # "accuracy" or "pearson"
    chance: float               # ×100
    train_rows: int
    dev_rows: int
    folds: int
    seed: int
    seconds: float
    scores: tuple[ProbeScore, ...]

    def score(self, probe: str) -> ProbeScore | None:
        return next((s for s in self.scores if s.probe == probe), None)

    @property
    def teacher_at_chance(self) -> bool:
        return self.score("teacher").at_chance(self.chance)

    def verdict(self) -> str:
        """One line: whether the teacher carries the task, against chance and against the student."""
        teacher, student = self.score("teacher"), self.score("student")
        if self.teacher_at_chance:
            return f"{self.teacher}'s probe on {self.task} is at chance: its vectors carry no measurable part of the task"
        line = f"{self.teacher}'s probe on {self.task} is above chance"
        if student is not None and student.dev is not None and teacher.dev is not None:
            line += f" ({teacher.dev:.1f} against the student's {student.dev:.1f})"
        return line

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ProbeResult":
        return cls(**{**data, "scores": tuple(ProbeScore(**s) for s in data["scores"])})

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> "ProbeResult":
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise ArmadaError(f"{path}: not a probe result ({e}); run armada probe again") from None

    def table(self) -> str:
        """The three probes as a markdown table, with the verdict under it."""
        lines = [f"linear probes on {self.task}: {self.train_rows} training rows ({self.folds}-fold), "
                 f"{self.dev_rows} validation rows; {self.metric} ×100, 95 % intervals; chance {self.chance:.1f}",
                 "", f"| probe on | cross-validated (train) | validation | |", "| --- | --- | --- | --- |"]
        names = {"teacher": f"teacher {self.teacher} ({self.teacher_dim}-d)",
                 "student": f"student {self.student} (frozen, pooled)", "shuffled": "teacher, labels shuffled (control)"}
        for s in self.scores:
            dev = "—" if s.dev is None else f"{s.dev:.1f} [{s.dev_low:.1f}, {s.dev_high:.1f}]"
            lines.append(f"| {names[s.probe]} | {s.cv:.1f} [{s.cv_low:.1f}, {s.cv_high:.1f}] | {dev} | "
                         f"{'at chance' if s.at_chance(self.chance) else ''} |")
        lines += ["", self.verdict() + f" ({self.seconds:.0f} s)"]
        return "\n".join(lines)


def probe_scores(name: str, train_x: np.ndarray, train_y: np.ndarray, dev_x: np.ndarray | None,
                 dev_y: np.ndarray | None, regression: bool, folds: int, seed: int) -> ProbeScore:
    """One probe: its strength chosen by k-fold cross-validation on the training rows, then fitted on all
    of them and scored on the validation rows."""
    from scipy import stats
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = (KFold(folds, shuffle=True, random_state=seed) if regression
                else StratifiedKFold(folds, shuffle=True, random_state=seed))
    splits = list(splitter.split(train_x, train_y))
    best = None
    for strength in (RIDGE_ALPHA if regression else LOGISTIC_C):
        fold_scores = [_score(_fit(train_x[a], train_y[a], regression, strength, seed).predict(train_x[b]),
                              train_y[b], regression) for a, b in splits]
        if best is None or np.mean(fold_scores) > np.mean(best[1]):
            best = (strength, fold_scores)
    strength, fold_scores = best
    mean = float(np.mean(fold_scores))
    half = float(stats.t.ppf(0.975, folds - 1) * np.std(fold_scores, ddof=1) / np.sqrt(folds))
    dev = dev_low = dev_high = None
    if dev_x is not None:
        predictions = _fit(train_x, train_y, regression, strength, seed).predict(dev_x)
        dev = _score(predictions, dev_y, regression)
        dev_low, dev_high = _bootstrap(predictions, dev_y, regression, seed)
    bottom = -100.0 if regression else 0.0
    return ProbeScore(name, mean, max(bottom, mean - half), min(100.0, mean + half), dev, dev_low, dev_high, strength)


def chance_level(train_y: np.ndarray, dev_y: np.ndarray | None, regression: bool) -> float:
    """×100: r = 0 for regression; else the accuracy of always answering the most frequent training label."""
    if regression:
        return 0.0
    values, counts = np.unique(train_y, return_counts=True)
    majority = values[np.argmax(counts)]
    target = dev_y if dev_y is not None else train_y
    return float(np.mean(target == majority) * 100)


def _fit(x: np.ndarray, y: np.ndarray, regression: bool, strength: float, seed: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from threadpoolctl import threadpool_limits

    model = Ridge(alpha=strength) if regression else LogisticRegression(C=strength, max_iter=300, random_state=seed)
    probe = make_pipeline(StandardScaler(), model)
    # One BLAS thread: these fits are small, and with a thread per core each waits on the others
    # (10x slower measured on 2 busy cores).
    with warnings.catch_warnings(), threadpool_limits(1):
        # A probe that has not quite converged in 300 steps scores what it scores; the fit is not the point.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return probe.fit(x, y)


def _score(predictions: np.ndarray, y: np.ndarray, regression: bool) -> float:
    if regression:
        if np.std(predictions) == 0 or np.std(y) == 0:
            return 0.0
        return float(np.corrcoef(predictions, y)[0, 1] * 100)
    return float(np.mean(predictions == y) * 100)


def _bootstrap(predictions: np.ndarray, y: np.ndarray, regression: bool, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(y), size=(BOOTSTRAP_RESAMPLES, len(y)))
    scores = [_score(predictions[d], y[d], regression) for d in draws]
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def run_probes(task: str, cache: str, config_hash: str, teacher: str, teacher_dim: int, student: str, train: dict, dev: dict | None,
               regression: bool, folds: int = 5, seed: int = 0) -> ProbeResult:
    """The three probes over arrays already read: `train`/`dev` hold "teacher" [n, D], "y" [n] and, where the
    student probe runs, "student" [n, d]."""
    started = time.perf_counter()
    y = train["y"]
    if not regression:
        _, counts = np.unique(y, return_counts=True)
        if len(counts) < 2:
            raise TooFewRows(f"{task}: every training row the cache holds has the same label; a probe needs two")
        if counts.min() < folds:
            raise TooFewRows(f"{task}: a label has only {counts.min()} training rows, fewer than the {folds} folds; "
                              f"probe with fewer folds (--folds) or a cache of more rows")
    elif len(y) < 2 * folds:
        raise TooFewRows(f"{task}: {len(y)} training rows are too few for {folds} folds; use fewer (--folds)")
    dev_y = dev["y"] if dev else None
    shuffled = np.random.default_rng(seed).permutation(y)
    scores = [probe_scores("teacher", train["teacher"], y, dev and dev["teacher"], dev_y, regression, folds, seed)]
    if student:
        scores.append(probe_scores("student", train["student"], y, dev and dev["student"], dev_y, regression, folds, seed))
    scores.append(probe_scores("shuffled", train["teacher"], shuffled, dev and dev["teacher"], dev_y, regression,
                               folds, seed))
    return ProbeResult(task, cache, config_hash, teacher, teacher_dim, student, "pearson" if regression else "accuracy",
                       chance_level(y, dev_y, regression), len(y), 0 if dev is None else len(dev_y), folds, seed,
                       time.perf_counter() - started, tuple(scores))


def probe_cache(cache: str, task_name: str, *, data_dir: str = "", student: str = "minilm-l6", pooling: str = "auto",
                max_length: int = 128, folds: int = 5, seed: int = 0, file_tasks=None) -> ProbeResult:
    """The three probes on the rows `cache` holds for `task_name` (the splits read with the limits and teacher
    template they were extracted with, each row matched to its cached vector by id and text hash); `student`
    "" leaves the student's probe out."""
    from armada.distill.teacher_features import check_task, open_cache, split_settings
    from armada.tasks import get_task

    started = time.perf_counter()
    task = get_task(task_name, file_tasks)
    if task.kind == "generation":
        raise ArmadaError(f"{task_name} is a generative task: a linear probe needs a label per row")
    reader = open_cache(cache)
    check_task(reader, task.name)
    if "train" not in reader.manifest.dataset.splits:
        raise ArmadaError(f"the cache at {reader.location} has no train split; a probe is fitted on it "
                          f"(armada extract --split train ...)")
    arrays = {}
    for name in ("train", "validation"):
        if name not in reader.manifest.dataset.splits or name not in task.splits:
            continue
        limit, template = split_settings(reader, name)
        split = task.load(name, data_dir=data_dir, limit=limit, template=template)
        if any(label is None for label in split.labels):
            raise ArmadaError(f"{task_name} {name}: rows without labels; a probe needs every row's label")
        features = reader.load(name, split.ids, split.teacher_hashes)
        arrays[name] = {"teacher": features[np.arange(len(split))],
                        "y": np.asarray(split.labels, dtype=np.float64 if task.kind == "regression" else np.int64),
                        "split": split}
    if student:
        backbone = _student(student, pooling)
        for part in arrays.values():
            part["student"] = student_embeddings(backbone, part["split"], max_length)
    result = run_probes(task.name, reader.location, reader.manifest.config_hash, reader.manifest.teacher.name, reader.manifest.teacher.dim,
                        student, arrays["train"], arrays.get("validation"), task.kind == "regression", folds, seed)
    return ProbeResult(**{**asdict(result), "scores": result.scores, "seconds": time.perf_counter() - started})


def _student(name: str, pooling: str):
    from armada.distill.students import load_backbone

    backbone = load_backbone(name, pooling=pooling)
    if backbone.kind == "causal":
        raise ArmadaError(f"student {name!r} is a causal LM; the probe's student embedding is an encoder's pooled one "
                          f"(give an encoder with --student, or --student '' to leave that probe out)")
    return backbone


def student_embeddings(backbone, split, max_length: int, batch_size: int = 32) -> np.ndarray:
    """The frozen student's pooled embedding of every example of `split`, in its order; a multiple-choice
    example's is the mean over its choices, as the student's manifold point is (armada.distill.model)."""
    import torch

    from armada.distill.data import Collator, encode
    from armada.distill.model import pooled

    model = backbone.model.eval()
    encoded = encode(backbone.tokenizer, split, max_length)
    collate = Collator(backbone.tokenizer, encoded, split.task.kind)
    order = np.argsort(-encoded.lengths, kind="stable")         # similar lengths share a batch: less padding
    out = None
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = collate(order[start:start + batch_size])
            states = pooled(model, backbone.pooling, batch.inputs).float()
            states = states.view(len(batch.positions), batch.choices, -1).mean(dim=1).numpy()
            if out is None:
                out = np.empty((len(split), states.shape[1]), np.float32)
            out[batch.positions] = states
    return out
