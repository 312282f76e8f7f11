"""Latent pooling: a [B, C, h, w] latent to one [B, dim] row per example.

Shared by the image and video teachers and the http teacher's image path. A pool is named by a
string in the settings:

- "flatten": every latent value, C·h·w (the authors' 4×16×16 → 1024);
- "channel-mean": the mean over the channels at each position, h·w (the paper's 1024 at 256 px);
- "avgpool:K": each channel averaged over a K×K grid of equal blocks, C·K·K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from armada.errors import ConfigError

POOLS = ("flatten", "channel-mean", "avgpool:K")


@dataclass(frozen=True)
class Pool:
    mode: str               # "flatten", "channel-mean" or "avgpool"
    grid: int = 0           # K of "avgpool:K"

    def __str__(self) -> str:
        return f"avgpool:{self.grid}" if self.mode == "avgpool" else self.mode


def parse_pool(text: str) -> Pool:
    """The pool a settings string names; a ConfigError (an ArmadaError) for anything else."""
    if text in ("flatten", "channel-mean"):
        return Pool(text)
    mode, sep, grid = text.partition(":")
    if mode == "avgpool" and sep and grid.isdigit() and int(grid) > 0:
        return Pool("avgpool", int(grid))
    raise ConfigError(f"pool = {text!r} is not a latent pooling; use one of {', '.join(POOLS)} "
                      "(K a positive integer that divides the latent's height and width, e.g. avgpool:4)")


def pooled_dim(latent_shape: tuple[int, int, int], pool: Pool) -> int:
    """The size of a pooled row for a latent of shape (C, h, w), without running any model."""
    channels, height, width = latent_shape
    if pool.mode == "flatten":
        return channels * height * width
    if pool.mode == "channel-mean":
        return height * width
    if height % pool.grid or width % pool.grid:
        raise ConfigError(f"pool = {str(pool)!r}: {pool.grid} does not divide the latent's {height}×{width} "
                          f"positions; choose a K that divides both (or change height/width)")
    return channels * pool.grid * pool.grid


def pool_latents(latents: np.ndarray, pool: Pool) -> np.ndarray:
    """[B, C, h, w] → float32 [B, pooled_dim((C, h, w), pool)]."""
    batch, channels, height, width = latents.shape
    pooled_dim((channels, height, width), pool)  # the same divisibility check as the dim
    latents = latents.astype(np.float32, copy=False)
    if pool.mode == "flatten":
        rows = latents
    elif pool.mode == "channel-mean":
        rows = latents.mean(axis=1)
    else:
        k = pool.grid
        rows = latents.reshape(batch, channels, k, height // k, k, width // k).mean(axis=(3, 5))
    return np.ascontiguousarray(rows.reshape(batch, -1), dtype=np.float32)
