"""`objective = "kd"`: the task objective plus Hinton KD from a text teacher's logits (armada.distill.kd)."""

from dataclasses import dataclass

from armada.errors import ConfigError
from armada.fields import setting
from armada.objectives import Objective, Term
from armada.objectives.task import ARMADA_TERMS


@dataclass(frozen=True)
class KDSettings:
    # L = (1 − kd_alpha)·L + kd_alpha·τ²·KL(softmax(z_t/τ) ‖ softmax(o_s/τ)), z_t a text teacher's logits read
    # from a KD cache (armada extract --teacher run:PATH).
    kd_cache: str = setting("", doc="kd: the cache of a text teacher's logits for this task (armada extract --teacher "
                                    "run:PATH); in a pipeline, {task} stands for the task's folder name (glue_cola)")
    kd_alpha: float = setting(0.5, low=0.0, high=1.0, doc="kd: the weight of the KD term; the rest is the task's loss "
                                                          "(or ARMADA's, with --cache)")


def _check(config) -> None:
    if not config.kd_cache:
        raise ConfigError('distill.objective = "kd" reads its teacher\'s logits from a KD cache: set distill.kd_cache '
                          "(armada extract --teacher run:PATH --dataset TASK writes one)")


OBJECTIVE = Objective(
    name="kd",
    summary="task plus Hinton KD from a text teacher's logits (--kd-cache; with --undistilled, KD alone)",
    trainer="armada.distill.kd:KDObjective",
    settings=KDSettings,
    retired={"aligner_objective": "task"},
    terms=(*ARMADA_TERMS, Term("kd", "tab:purple")),
    check=_check,
)
