"""Tiny causal LMs and a tiny instruction task for the generative-student tests.

The models are LLaMA and OPT built from configs with a byte-level BPE tokenizer trained on the
task's own text, saved with save_pretrained and given to the code as a folder, so they load
through the same `from_pretrained` path a hub id takes. The LLaMA tokenizer carries a small chat
template (the chat prompt style); the OPT one has none (the Alpaca style). Neither has a pad token.
"""

from __future__ import annotations

import json
from pathlib import Path

from armada.config import DistillConfig, FileTask
from armada.tasks.generative import ALPACA, ALPACA_WITH_INPUT

# Eight instructions, each with one fixed answer: a model can learn them by heart in a few epochs.
PAIRS = [
    ("Name the colour of the sky.", "", "blue"),
    ("Name the colour of grass.", "", "green"),
    ("What does a cat say?", "", "the cat says meow"),
    ("What does a dog say?", "", "the dog says woof"),
    ("Add the numbers.", "2 and 3", "the answer is 5"),
    ("Add the numbers.", "4 and 4", "the answer is 8"),
    ("Repeat the word.", "apple", "apple apple"),
    ("Repeat the word.", "pear", "pear pear"),
]
# A wide initialisation (and no dropout) lets rank-8 LoRA on a random 2-layer model learn PAIRS in a
# few epochs; at the usual 0.02 its loss hardly moves.
INIT = 0.2
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant: {% endif %}")


def _tokenizer(folder: Path, chat: bool) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [ALPACA, ALPACA_WITH_INPUT, "user: assistant: ### Instruction: ### Input: ### Response:"]
    corpus += [" ".join(p) for p in PAIRS]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(corpus * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)


def make_lm(folder: Path, family: str) -> Path:
    """A 2-layer LLaMA (with a chat template) or OPT (without), hidden 32, and its tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    _tokenizer(folder, chat=family == "llama")
    torch.manual_seed(0)
    if family == "llama":
        config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, max_position_embeddings=2048, bos_token_id=1, eos_token_id=2,
                             initializer_range=INIT)
        LlamaForCausalLM(config).save_pretrained(folder)
    else:
        config = OPTConfig(vocab_size=300, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                           word_embed_proj_dim=32, max_position_embeddings=2048, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                           init_std=INIT, dropout=0.0)
        OPTForCausalLM(config).save_pretrained(folder)
    return folder


def instruction_task(folder: Path, repeats: int = 2) -> tuple[str, dict]:
    """`file:tiny-instruct`: PAIRS × `repeats` for training, PAIRS once for validation."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, times in (("train", repeats), ("validation", 1)):
        rows = [{"id": f"{split}-{i}", "instruction": q, "input": x, "output": a}
                for i, (q, x, a) in enumerate(PAIRS * times)]
        paths[split] = folder / f"{split}.jsonl"
        paths[split].write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = FileTask(train=str(paths["train"]), validation=str(paths["validation"]), kind="generation",
                    text_fields=("instruction", "input"), label_field="output", id_field="id")
    return "tiny-instruct", {"tiny-instruct": spec}


def lm_config(student: Path, **changes) -> DistillConfig:
    """Generative settings sized for a tiny student (LoRA rank 8 as for "lm"; a high lr so a few epochs show learning)."""
    settings = dict(student=str(student), objective="lm", schedule="joint", lora_r=8, epochs=3,
                    batch_size=4, eval_batch_size=8, max_length=200, projection_dim=16, aligner_hidden=24, lr=1e-2,
                    aligner_lr=1e-3)
    settings.update(changes)
    return DistillConfig(**settings)
