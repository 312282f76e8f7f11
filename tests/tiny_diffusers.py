"""Tiny diffusers pipelines built from configs and saved to a folder, for tests that load them back
through the same `from_pretrained` path a hub id takes.

Shapes follow the real models where it matters: a VAE that downscales by 8 (four blocks), 4 latent
channels, a CLIP tokenizer cut at 77 tokens, Stable Diffusion v1-4's PNDM scheduler settings and
ModelScope's DDIM. Every width is tiny, so a step costs milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

CLIP_MAX_TOKENS = 77
WIDTH = 16                                      # the text encoder's hidden size = the UNet's cross-attention size


def save_clip_tokenizer(folder: Path) -> Path:
    """A byte-level CLIP BPE with every byte and a few merges (CLIPTokenizer(vocab_file=...) ignores its files in
    transformers 5, so the files are written and read back with from_pretrained)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    raw = folder / "raw"
    raw.mkdir(parents=True)
    symbols = list(bytes_to_unicode().values())
    merges = ["t h", "th e</w>", "a n", "an d</w>", "c a", "ca t</w>"]
    tokens = symbols + [s + "</w>" for s in symbols] + [m.replace(" ", "") for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (raw / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (raw / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer.from_pretrained(raw, model_max_length=CLIP_MAX_TOKENS)
    tokenizer.save_pretrained(folder / "saved")
    return folder / "saved"


def tiny_text_parts(folder: Path):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(save_clip_tokenizer(folder / "tokenizer-files"))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=WIDTH, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        max_position_embeddings=CLIP_MAX_TOKENS, projection_dim=WIDTH, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    return tokenizer, text_encoder


def tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(4, 4, 4, 4), in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=2)


def save_tiny_stable_diffusion(folder: Path) -> Path:
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    tokenizer, text_encoder = tiny_text_parts(folder)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, in_channels=4, out_channels=4, sample_size=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=WIDTH, attention_head_dim=4, norm_num_groups=4)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=tiny_vae(), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


def save_tiny_text_to_video(folder: Path) -> Path:
    from diffusers import DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    torch.manual_seed(0)
    tokenizer, text_encoder = tiny_text_parts(folder)
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, in_channels=4, out_channels=4, sample_size=32,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=WIDTH, attention_head_dim=4, norm_num_groups=4)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    pipe = TextToVideoSDPipeline(vae=tiny_vae(), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                 scheduler=scheduler)
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


def save_tiny_unet_lora(pipeline_folder: Path, folder: Path) -> Path:
    """A LoRA on the tiny UNet's attention, made with peft and written by diffusers' LoRA saver."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(1)
    unet = UNet2DConditionModel.from_pretrained(pipeline_folder / "unet")
    # init_lora_weights=False: B is random too, so the LoRA changes the output from the start.
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers)
    return folder / "pytorch_lora_weights.safetensors"


def same_rows(actual, desired) -> None:
    """Rows agree to rounding, not bit for bit: matrix products round differently with batch size, thread count
    and CPU (measured on the tiny model's latent rows: up to 2.5e-6 batched against alone, 3.3e-6 on generic
    against AVX2 kernels; extract/diffusion.py); another seed differs by ~0.1."""
    np.testing.assert_allclose(actual, desired, rtol=0, atol=1e-4)
