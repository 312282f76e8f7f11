"""diffusers-t2i: a text-to-image diffusion model's latent for each text, pooled (sd14, mj).

Recipe "latent" runs the text-to-image pipeline with `output_type="latent"` at height×width (256 px
unless set): the VAE decoder never runs, and the [B, C, height/8, width/8] latent is pooled
(extract/pooling.py).

Recipe "reference" is the authors' route (their get_images_superglue.py), step by step:
1. text-to-image at the pipeline's default size, as their call without a size ran (512×512 for
   SD v1-4), decoded to the 8-bit image they saved as PNG (lossless) and read back with cv2.imread;
2. that image resized to reference_size² as cv2.resize does by default (bilinear, half-pixel
   centres, no antialiasing: resize_like_cv2);
3. img2img (the same components) at `strength`, output_type="latent": 4×16×16 at 128 px, flattened
   to 1024. By default img2img is given what the authors gave it (reference_input = "bgr-array"):
   cv2's BGR uint8 array, which diffusers reads as if its values were in [0, 1], so the VAE encodes
   2·v − 1 ∈ [−1, 509] with blue and red swapped. That is the input the paper's numbers came from,
   defect and all; "rgb-image" gives img2img the RGB image it expects ([−1, 1]).
Both passes run in fp32 unless dtype is set, as theirs did. What still differs from their script: their pipeline ran its safety checker, which blacks out an
image it flags (ours loads none, so such a text gets its generated image); and their noise came
from one global CUDA generator seeded once (42) and drawn in dataset order, ours from each text's
own generator (below), so no row equals theirs bit for bit.

Each text gets its own CPU `torch.Generator` seeded with `row_seed(text, seed)`: the pipelines
draw every row's noise from its own generator, so a row depends only on its text and the
settings, up to arithmetic. A batch rounds its matrix products differently from a lone text, and so
do another thread count and another CPU's kernels: on the tiny test model's latent rows, up to
2.5e-6 (batch), 2.4e-6 (1 against 2 threads) and 3.3e-6 (ATen, MKL and oneDNN held to generic
kernels against AVX2), measured on an AVX2 CPU. The reference recipe rounds its first image to 8
bits, which turns such last-bit differences into whole pixel steps (one step of one pixel moved a
row by up to 1.3e-4; a batch of two moved 32 of 1,024 values by up to 4.4e-4), so it runs each text
alone, as the authors' script did: a row is then the same bits in any batch, while another thread
count or CPU still moves it by up to 7.9e-4 and 4.4e-4 (same measurements).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from armada.errors import ArmadaError
from armada.extract.pooling import Pool, parse_pool, pool_latents, pooled_dim
from armada.extract.settings import DiffusionSettings
from armada.extract.teacher import hub_commit, is_local_path, resolve_device, row_seed
from armada.files import file_sha256, folder_sha256

LATENT_RECIPE_SIZE = 256          # the latent recipe's own height and width: 4×32×32, channel-mean → 1024 (paper §5)
LORA_ADAPTER = "teacher-lora"
DEFAULT_LORA_FILE = "pytorch_lora_weights.safetensors"   # what diffusers' save_lora_weights writes


class DiffusionTeacher:
    kind = "diffusers-t2i"

    def __init__(self, name: str, settings: DiffusionSettings):
        # diffusers is imported here, not at the top: `armada teachers` reads output_dim without it (~10 s less).
        from diffusers import AutoPipelineForText2Image, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

        self.name = name
        self.settings = settings
        s = settings
        reference = s.recipe == "reference"
        self.pool = recipe_pool(s)
        if reference and self.image_to_image_steps < 1:
            raise ArmadaError(f"teacher {name}: the reference recipe's img2img runs steps × strength = "
                              f"{s.steps} × {s.strength} → {self.image_to_image_steps} steps; raise steps or strength")
        self.device = resolve_device(s.device)
        self.dtype = recipe_dtype(s, self.device)
        self.pipe = load_pipeline(AutoPipelineForText2Image, name, s.model, s.revision, self.dtype, self.device,
                                  safety_checker=None, requires_safety_checker=False)
        if reference and not isinstance(self.pipe, StableDiffusionPipeline):
            raise ArmadaError(f"teacher {name}: the reference recipe is the authors' Stable Diffusion route; "
                              f"{s.model} is a {type(self.pipe).__name__}: use recipe = \"latent\"")
        default_side = pipeline_default_side(self.pipe) if reference else LATENT_RECIPE_SIZE
        self.height, self.width = s.height or default_side, s.width or default_side
        check_size(self.pipe, name, "height", self.height)
        check_size(self.pipe, name, "width", self.width)
        self.lora = load_lora(self.pipe, name, s.lora, s.lora_weight_name, s.lora_scale) if s.lora else None
        self.image_to_image = None
        if reference:
            check_size(self.pipe, name, "reference_size", s.reference_size)
            # The same modules (and LoRA), so nothing is loaded twice.
            self.image_to_image = StableDiffusionImg2ImgPipeline(**self.pipe.components, requires_safety_checker=False)
            self.image_to_image.set_progress_bar_config(disable=True)
            quiet_truncation(self.image_to_image)
            self.latent_shape = latent_shape(self.pipe, s.reference_size, s.reference_size)
        else:
            self.latent_shape = latent_shape(self.pipe, self.height, self.width)
        self.dim = pooled_dim(self.latent_shape, self.pool)

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.image_to_image is None:
            return self._encode(texts)
        return np.concatenate([self._encode([text]) for text in texts])   # the reference recipe: alone (above)

    def _encode(self, texts: list[str]) -> np.ndarray:
        s = self.settings
        generators = text_generators(texts, s.seed)
        common = dict(num_inference_steps=s.steps, guidance_scale=s.guidance,
                      negative_prompt=[s.negative_prompt] * len(texts), generator=generators)
        latents = self.pipe(texts, height=self.height, width=self.width, output_type="latent", **common).images
        if self.image_to_image is not None:
            # The generators go on from where the first pass left them: still one stream per text.
            images = [self._reference_image(latent) for latent in latents]
            latents = self.image_to_image(texts, image=images, strength=s.strength, output_type="latent", **common).images
        return pool_latents(latents.float().cpu().numpy(), self.pool)

    def _reference_image(self, latent: torch.Tensor) -> np.ndarray | Image.Image:
        """The first pass's latent as img2img is given it: decoded to 8 bits, resized as cv2.resize does, then
        either the authors' BGR uint8 array (diffusers reads its values as [0, 1] ones) or the RGB image."""
        size = self.settings.reference_size
        rgb = resize_like_cv2(self._decode(latent), size, size)
        if self.settings.reference_input == "bgr-array":
            return np.ascontiguousarray(rgb[..., ::-1])      # cv2.imread's channel order
        return Image.fromarray(rgb)

    @torch.no_grad()
    def _decode(self, latent: torch.Tensor) -> np.ndarray:
        """One latent to the pipeline's own 8-bit RGB image (what the authors saved as PNG), H×W×3 uint8."""
        vae = self.pipe.vae
        pixels = vae.decode(latent[None] / vae.config.scaling_factor, return_dict=False)[0]
        return np.array(self.pipe.image_processor.postprocess(pixels, output_type="pil")[0])

    @property
    def image_to_image_steps(self) -> int:
        """The denoising steps img2img runs: it starts `strength` of the way into a `steps`-step schedule."""
        return int(self.settings.steps * self.settings.strength)

    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)

    @functools.cached_property
    def _provenance(self) -> dict[str, Any]:
        s = self.settings
        found = {
            **dataclasses.asdict(s),
            "height": self.height,
            "width": self.width,
            **pipeline_provenance(self.pipe, s.model, s.revision, self.dtype, self.device),
            "family": self.kind,
            "teacher": self.name,
            "pool": str(self.pool),
            "latent_shape": list(self.latent_shape),
            "dim": self.dim,
        }
        if not s.pool:
            found["pool_chosen_by"] = f"the {s.recipe} recipe's default"
        if self.image_to_image is None:
            # A setting this recipe does not use, added after latent caches were made: left out, so that
            # their manifests (config_hash covers the provenance) still match what they hold.
            del found["reference_input"]
        else:
            found["image_to_image_pipeline"] = type(self.image_to_image).__name__
            found["image_to_image_steps"] = self.image_to_image_steps
            found["reference_resize"] = ("the decoded 8-bit image, bilinear as cv2.resize's default INTER_LINEAR "
                                         "(half-pixel centres, no antialiasing, rounded half up)")
        if self.lora is not None:
            found["lora_file"] = self.lora
        return found


def recipe_pool(settings: DiffusionSettings) -> Pool:
    return parse_pool(settings.pool or ("flatten" if settings.recipe == "reference" else "channel-mean"))


def recipe_dtype(settings: DiffusionSettings, device: str) -> torch.dtype:
    """dtype "auto" is fp16 on CUDA, except in the reference recipe: the authors ran both passes in fp32."""
    if settings.recipe == "reference" and settings.dtype == "auto":
        return torch.float32
    return torch_dtype(settings.dtype, device)


def output_dim(settings: DiffusionSettings) -> int:
    """The row size for these settings without loading the model (`armada teachers`)."""
    if settings.recipe == "reference":
        height = width = settings.reference_size
    else:
        height, width = settings.height or LATENT_RECIPE_SIZE, settings.width or LATENT_RECIPE_SIZE
    shape = configured_latent_shape(settings.model, settings.revision, height, width)
    return pooled_dim(shape, recipe_pool(settings))


def pipeline_default_side(pipe) -> int:
    """The height and width a Stable Diffusion pipeline generates when called without a size, as diffusers computes
    it: the UNet's sample_size times the VAE's scale factor; 512 for SD v1-4."""
    return pipe.unet.config.sample_size * pipe.vae_scale_factor


def resize_like_cv2(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An H×W×C uint8 image resized as `cv2.resize(image, (width, height))` does by default (INTER_LINEAR): bilinear,
    pixel centres at half-pixel offsets, no antialiasing, rounded half up to 8 bits.

    Checked against OpenCV 4.10 and 5.0 on random images: identical where the sizes divide (512 → 128, 256 → 128,
    64 → 16); elsewhere OpenCV's 11-bit fixed-point weights put about 12% of values one level away."""
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    resized = torch.nn.functional.interpolate(pixels, size=(height, width), mode="bilinear", align_corners=False,
                                              antialias=False)
    return torch.floor(resized + 0.5)[0].permute(1, 2, 0).to(torch.uint8).numpy()


# --- shared with extract/video.py --------------------------------------------------------------

def torch_dtype(name: str, device: str) -> torch.dtype:
    if name == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


def load_pipeline(pipeline_class, teacher: str, model: str, revision: str, dtype: torch.dtype, device: str, **kwargs):
    """`pipeline_class.from_pretrained(model)`, the same call for a hub id and a local folder, with clear errors."""
    local = is_local_path(model)
    if local:
        model = os.path.expanduser(model)
        if not os.path.isfile(os.path.join(model, "model_index.json")):
            raise ArmadaError(f"teacher {teacher}: model = {model!r} is not a diffusers pipeline folder (no "
                              "model_index.json there); give a folder written by save_pretrained, or a hub id")
    try:
        pipe = pipeline_class.from_pretrained(model, revision=revision or None, dtype=dtype, **kwargs)
    except ValueError as e:   # e.g. a model of another task: AutoPipeline finds no text-to-image class for it
        raise ArmadaError(f"teacher {teacher}: {model} cannot be loaded by {pipeline_class.__name__}: {e}") from None
    except OSError as e:
        if local:
            raise ArmadaError(f"teacher {teacher}: the pipeline in {model} could not be loaded: {e}") from None
        raise ArmadaError(
            f"teacher {teacher}: the hub model {model!r}{f' (revision {revision})' if revision else ''} could not be "
            f"loaded: it is not in the local Hugging Face cache and the hub cannot be reached ({e.__class__.__name__}). "
            f"Download it where there is internet (`hf download {model} --local-dir DIR`), copy DIR here and set "
            f'model = "/path/to/DIR" in [teachers.{teacher}]'
        ) from None
    pipe.set_progress_bar_config(disable=True)
    quiet_truncation(pipe)
    return pipe.to(device)


def check_size(pipe, teacher: str, setting: str, pixels: int) -> None:
    factor = pipe.vae_scale_factor
    if pixels % factor:
        raise ArmadaError(f"teacher {teacher}: {setting} = {pixels} must be a multiple of {factor}, the VAE's "
                          f"downscaling factor (e.g. {pixels // factor * factor or factor})")


def latent_shape(pipe, height: int, width: int) -> tuple[int, int, int]:
    factor = pipe.vae_scale_factor
    return (pipe.unet.config.in_channels, height // factor, width // factor)


def configured_latent_shape(model: str, revision: str, height: int, width: int) -> tuple[int, int, int]:
    """The latent's (C, h, w) from the model's unet and vae configs where they are on this machine (a local folder
    or the Hugging Face cache); elsewhere the layout of Stable Diffusion 1-2, SDXL and ModelScope: 4 channels, 8×
    fewer pixels a side. The loaded teacher's `dim` comes from the model itself."""
    unet = read_model_config(model, revision, "unet/config.json")
    vae = read_model_config(model, revision, "vae/config.json")
    channels = unet["in_channels"] if unet else 4
    factor = 2 ** (len(vae["block_out_channels"]) - 1) if vae else 8   # as diffusers' pipelines compute it
    return (channels, height // factor, width // factor)


def read_model_config(model: str, revision: str, file: str) -> dict | None:
    if is_local_path(model):
        path = Path(model).expanduser() / file
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, file, revision=revision or None)
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def text_generators(texts: list[str], seed: int) -> list[torch.Generator]:
    # CPU generators on every device: CUDA's generator draws different numbers for the same seed.
    return [torch.Generator("cpu").manual_seed(row_seed(text, seed)) for text in texts]


def text_limits(pipe) -> dict[str, int]:
    """Each tokenizer's length limit: longer texts are cut there (CLIP: 77 tokens, start and end included)."""
    return {name: module.model_max_length for name, module in pipe.components.items()
            if module is not None and hasattr(module, "model_max_length")}


class _DropTruncationNotice(logging.Filter):
    """diffusers logs every truncated prompt; the limit is in the provenance, so long datasets stay readable."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("The following part of your input was truncated")


_DROP_TRUNCATION_NOTICE = _DropTruncationNotice()


def quiet_truncation(pipe) -> None:
    logging.getLogger(type(pipe).__module__).addFilter(_DROP_TRUNCATION_NOTICE)


def pipeline_provenance(pipe, model: str, revision: str, dtype: torch.dtype, device: str) -> dict[str, Any]:
    import diffusers

    found: dict[str, Any] = {
        "pipeline": type(pipe).__name__,
        "scheduler": type(pipe.scheduler).__name__,
        "text_max_tokens": text_limits(pipe),
        "dtype": str(dtype).removeprefix("torch."),
        "device": torch.device(device).type,
        "seeding": "one CPU torch.Generator per text, seeded with row_seed(text, seed)",
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__,
    }
    if is_local_path(model):
        found["files_sha256"] = folder_sha256(Path(model).expanduser())
    else:
        found["commit"] = hub_commit(model, revision, "model_index.json")
    return found


def load_lora(pipe, teacher: str, lora: str, weight_name: str, scale: float) -> dict[str, Any]:
    """Load a LoRA safetensors file (local file or folder, or hub id) into the pipeline at `scale`."""
    if not hasattr(pipe, "load_lora_weights"):
        raise ArmadaError(f"teacher {teacher}: {type(pipe).__name__} cannot load a LoRA; unset lora")
    path = lora_file(teacher, lora, weight_name or DEFAULT_LORA_FILE)
    if not path.endswith(".safetensors"):
        raise ArmadaError(f"teacher {teacher}: lora file {path} is not a .safetensors file; only safetensors "
                          "LoRAs are loaded (other formats can run code when unpickled)")
    try:
        pipe.load_lora_weights(path, adapter_name=LORA_ADAPTER)
    except (ValueError, KeyError) as e:
        raise ArmadaError(f"teacher {teacher}: {path} is not a LoRA for {type(pipe).__name__}: {e}") from None
    pipe.set_adapters(LORA_ADAPTER, adapter_weights=scale)
    return {"lora": lora, "weight_name": Path(path).name, "sha256": file_sha256(path)}


def lora_file(teacher: str, lora: str, weight_name: str) -> str:
    if is_local_path(lora):
        path = Path(lora).expanduser()
        path = path / weight_name if path.is_dir() else path
        if not path.is_file():
            raise ArmadaError(f"teacher {teacher}: lora = {lora!r}: no such file ({path}); give a .safetensors "
                              "file, a folder holding lora_weight_name, or a hub id")
        return str(path)
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(lora, weight_name)
    except (OSError, ValueError) as e:
        raise ArmadaError(
            f"teacher {teacher}: the LoRA {weight_name} of hub repository {lora!r} could not be loaded: it is not in "
            f"the local Hugging Face cache and the hub cannot be reached ({e.__class__.__name__}). Download it where "
            f'there is internet and set lora = "/path/to/{weight_name}" in [teachers.{teacher}]'
        ) from None
