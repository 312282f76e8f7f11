"""`objective = "lm"`: a causal LM on prompt → response for generation tasks, its TS Aligner trained by
reconstructing the teacher's vectors (paper §4; armada.distill.lm)."""

from dataclasses import dataclass
from typing import Literal

from armada.errors import ConfigError
from armada.fields import setting
from armada.objectives import Objective, Term


@dataclass(frozen=True)
class LMSettings:
    seqkd_cache: str = setting("", doc="lm: learn a teacher's greedy responses instead of the references (SeqKD): the "
                                       "cache armada extract --teacher run:PATH writes for a generative run")
    aligner_pretrain_epochs: int = setting(0, low=0, doc="lm: epochs the TS Aligner trains alone before the student "
                                                         "starts, then kept fixed (0: trained with it, online)")
    prompt_style: Literal["auto", "chat", "alpaca"] = setting("auto", doc="lm: chat (the tokenizer's template), alpaca, or "
                                                                          "auto (chat where the tokenizer has a template)")
    save_adapter: bool = setting(False, doc="lm: save the LoRA adapter folder, not the merged model")


def _check(config) -> None:
    if config.schedule != "joint":
        raise ConfigError('distill.objective = "lm" trains on the joint schedule; to train the TS Aligner '
                          "first, set distill.aligner_pretrain_epochs")


OBJECTIVE = Objective(
    name="lm",
    summary="a causal LM on prompt → response, for generation tasks, the TS Aligner trained by reconstruction "
            "(brings LoRA rank 8, 3 epochs, lr 3e-4, batch 4)",
    trainer="armada.distill.lm:LMObjective",
    settings=LMSettings,
    # The paper's generative setting (Appendix C: LoRA rank 8, 3 epochs, lr 3e-4, batch 4) and the joint schedule
    # of a reconstruction-trained aligner (§4). Settings given explicitly win over these.
    defaults={"lora_r": 8, "epochs": 3, "lr": 3e-4, "batch_size": 4, "eval_batch_size": 8, "max_length": 256,
              "schedule": "joint"},
    # Eq. 2's soft term and the auxiliary outputs need class logits, which a causal LM's response has not.
    unused=("alpha", "gamma", "tau", "soft_loss"),
    retired={"aligner_objective": "reconstruction"},
    generative=True,
    terms=(Term("lm", "0.55"), Term("manifold", "tab:red")),
    check=_check,
)
