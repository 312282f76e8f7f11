"""text-to-video: a diffusers text-to-video model's first-frame latent for each text, pooled (modelscope-t2v).

`TextToVideoSDPipeline` (deprecated in diffusers 0.42, still working) runs with
`output_type="latent"`: the VAE decoder never runs. Its latent is [B, C, frames, h, w]; the first
frame's [B, C, h, w] is pooled like the image teacher's. All `frames` are still generated: the
temporal layers mix frames, so the first frame depends on how many there are. Seeding, dtype and
loading follow extract/diffusion.py.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from armada.errors import ArmadaError
from armada.extract.diffusion import (check_size, configured_latent_shape, latent_shape, load_pipeline,
                                      pipeline_provenance, text_generators, torch_dtype)
from armada.extract.pooling import parse_pool, pool_latents, pooled_dim
from armada.extract.settings import VideoSettings
from armada.extract.teacher import resolve_device


class VideoTeacher:
    kind = "text-to-video"

    def __init__(self, name: str, settings: VideoSettings):
        from diffusers import TextToVideoSDPipeline, UNet3DConditionModel     # not at the top: as extract/diffusion.py

        self.name = name
        self.settings = settings
        s = settings
        self.pool = parse_pool(s.pool)
        self.device = resolve_device(s.device)
        self.dtype = torch_dtype(s.dtype, self.device)
        self.pipe = load_pipeline(TextToVideoSDPipeline, name, s.model, s.revision, self.dtype, self.device)
        if not isinstance(self.pipe.unet, UNet3DConditionModel):  # diffusers only warns, then fails mid-generation
            raise ArmadaError(f"teacher {name}: {s.model} is not a text-to-video model: its UNet is a "
                              f"{type(self.pipe.unet).__name__}, not a UNet3DConditionModel")
        check_size(self.pipe, name, "height", s.height)
        check_size(self.pipe, name, "width", s.width)
        self.latent_shape = latent_shape(self.pipe, s.height, s.width)
        self.dim = pooled_dim(self.latent_shape, self.pool)

    def encode(self, texts: list[str]) -> np.ndarray:
        s = self.settings
        video = self.pipe(texts, height=s.height, width=s.width, num_frames=s.frames, num_inference_steps=s.steps,
                          guidance_scale=s.guidance, generator=text_generators(texts, s.seed),
                          output_type="latent").frames
        first_frame = video[:, :, 0]
        return pool_latents(first_frame.float().cpu().numpy(), self.pool)

    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)

    @functools.cached_property
    def _provenance(self) -> dict[str, Any]:
        s = self.settings
        return {
            **dataclasses.asdict(s),
            **pipeline_provenance(self.pipe, s.model, s.revision, self.dtype, self.device),
            "family": self.kind,
            "teacher": self.name,
            "frame_kept": "the first frame's latent",
            "pool": str(self.pool),
            "latent_shape": list(self.latent_shape),
            "dim": self.dim,
        }


def output_dim(settings: VideoSettings) -> int:
    """The row size for these settings without loading the model (`armada teachers`)."""
    shape = configured_latent_shape(settings.model, settings.revision, settings.height, settings.width)
    return pooled_dim(shape, parse_pool(settings.pool))
