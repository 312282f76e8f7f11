"""Score a generative split for a (model, tokenizer): generate, read the answers, compute the task's metric.

Instruction sets: RougeL of each response against its references (best reference), averaged.
Reasoning sets: accuracy of the answer read from the response (eval/answers.py), and for items
with options also the accuracy of log-likelihood choice scoring (the option text after the
prompt; by the total and by the per-token mean log-probability). Scores are fractions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from armada.errors import ArmadaError
from armada.eval import answers
from armada.eval.generation import Decoding, generate
from armada.eval.likelihood import score_choices
from armada.eval.rouge import rouge_l
from armada.tasks.generative import GenerativeTask, PromptStyle, build_prompt
from armada.tasks.model import Split


@dataclass(frozen=True)
class Prediction:
    id: str
    output: str                             # the generated continuation
    answer: str | float | None = None       # reasoning: the answer read from the output ("" / None: none found)
    correct: bool | None = None             # reasoning: the answer equals the gold one
    rouge_l: float | None = None            # instruction sets: best RougeL F over the references
    choice: int | None = None               # options: the most likely option by total log-probability
    choice_mean: int | None = None          # options: the most likely option by mean log-probability per token


@dataclass(frozen=True)
class GenerativeScores:
    task: str
    split: str
    metric: str                             # the primary score's name: "rougeL" or "accuracy"
    scores: dict[str, float]
    predictions: tuple[Prediction, ...]


def score_split(split: Split, model, tokenizer, decoding: Decoding | None = None, style: PromptStyle | None = None,
                likelihood: bool = True) -> GenerativeScores:
    """Every example of `split` answered by the model; `decoding` None takes the task's generation budget.

    `style` is the prompt format (build_prompt: None = the chat template where the tokenizer has
    one); `likelihood` adds choice scoring for items with options.
    """
    task = split.task
    if not isinstance(task, GenerativeTask):
        raise ArmadaError(f"{task.name} is a {task.kind} task; generation is scored on generative tasks (instruct/..., reasoning/...)")
    decoding = decoding or Decoding(max_new_tokens=task.max_new_tokens)
    prompts = [build_prompt(*e.inputs[0], tokenizer=tokenizer, style=style) for e in split.examples]
    outputs = generate(model, tokenizer, prompts, decoding)
    if task.answer_format == "text":
        predictions = [Prediction(e.id, out, rouge_l=rouge_l(out, e.references)) for e, out in zip(split.examples, outputs)]
        scores = {"rougeL": _mean([p.rouge_l for p in predictions])}
        return GenerativeScores(task.name, split.name, "rougeL", scores, tuple(predictions))

    predictions = []
    for example, out in zip(split.examples, outputs):
        answer = answers.extract(task.answer_format, out, task.labels)
        gold = task.labels[example.label] if task.answer_format == "option" else example.label
        predictions.append(Prediction(example.id, out, answer, answers.is_correct(task.answer_format, answer, gold)))
    scores = {"accuracy": _mean([p.correct for p in predictions])}
    with_choices = [i for i, e in enumerate(split.examples) if e.choices]
    if likelihood and with_choices:
        items = [(prompts[i], split.examples[i].choices) for i in with_choices]
        for i, choice_scores in zip(with_choices, score_choices(model, tokenizer, items, decoding.batch_size)):
            predictions[i] = replace(predictions[i], choice=choice_scores.best, choice_mean=choice_scores.best_mean)
        chosen = [(predictions[i], split.examples[i].label) for i in with_choices]
        scores["loglik_accuracy"] = _mean([p.choice == label for p, label in chosen])
        scores["loglik_mean_accuracy"] = _mean([p.choice_mean == label for p, label in chosen])
    return GenerativeScores(task.name, split.name, "accuracy", scores, tuple(predictions))


def _mean(values) -> float:
    return sum(float(v) for v in values) / len(values)
