"""The black-box HTTP teacher: a service turns texts into vectors, and only its answers are known.

Every request is a JSON POST to `url` (settings: extract/settings.py, HttpSettings). Three protocols:

"armada", ARMADA's own protocol, for a service you write:
    request   POST <url>   Content-Type: application/json
              {"texts": ["first text", "second text"], ...extra}      at most request_size texts
    answer    200   {"vectors": [[0.12, -0.5, ...], [...]]}
              one vector of exactly `dim` numbers per text, in the order of "texts".
    errors    429 or 5xx: a passing failure; the request is sent again. A Retry-After header
              (seconds, or an HTTP date) says when, and is honoured up to max_backoff.
              Any other 4xx: the request itself is wrong and is not sent again; say why in the
              body (plain text or JSON): ARMADA shows its first 200 characters.
    A vector should depend on its text alone, never on the other texts of the request.

"openai-embeddings", an OpenAI-compatible /v1/embeddings endpoint:
    {"model": model, "input": [texts], ...extra}  →  {"data": [{"index": i, "embedding": [...]}, ...]}
    The vectors are put in the order of their "index".

"openai-images", an OpenAI-compatible /v1/images/generations endpoint, one prompt per request
(the API takes one prompt):
    {"model": model, "prompt": text, "n": 1, "size": "WxH", "response_format": "b64_json", ...extra}
      →  {"data": [{"b64_json": "<base64 PNG>"}]}
    The image is resized to image_size × image_size (bicubic) and encoded here by the VAE encoder
    of the diffusers model `image_encoder`: the latent distribution's mean × scaling_factor,
    pooled by `pool` (extract/pooling.py). `size` is generated_size, or image_size × image_size.

With api_key_env set, every request carries `Authorization: Bearer <the variable's value>`. The
key, and credentials in the url (user:password@, ?api_key=...), never reach provenance, logs,
error messages or the cache.

Failures. Connection errors, timeouts (`timeout` covers a whole request, from connecting to the
last byte of the answer), 429, 5xx and malformed answers (not JSON, missing fields, the wrong
number of vectors, the wrong size) are retried up to max_retries times, after a delay drawn from
[0, backoff·2^(retry-1)] ("full jitter", so many clients do not retry in step) or the answer's
Retry-After, capped at max_backoff. Other 4xx are not retried. NaN or inf in an answer is not
retried either: a deterministic service would send the same again. Whatever failure remains
becomes an ArmadaError, and encode() returns nothing for the batch. At most `concurrency`
requests are in flight at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import hashlib
import io
import itertools
import json
import logging
import math
import os
import random
import re
import time
from datetime import timezone
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import aiohttp
import numpy as np

from armada.errors import ArmadaError, ConfigError
from armada.extract.pooling import parse_pool, pool_latents, pooled_dim
from armada.extract.settings import HttpSettings
from armada.extract.teacher import NonFiniteVectors

log = logging.getLogger(__name__)

EXCERPT_CHARS = 200
# Query parameters that carry credentials (api_key=, access_token=, Azure's sig=): their values
# are never shown or recorded.
SECRET_QUERY_NAME = re.compile(r"key|token|secret|sig|pass|auth|cred", re.IGNORECASE)
# The fields each protocol writes itself; `extra` may add fields, never replace these.
PROTOCOL_FIELDS = {
    "armada": ("texts",),
    "openai-embeddings": ("model", "input"),
    "openai-images": ("model", "prompt", "n", "size", "response_format"),
}


class _Retry(Exception):
    """A failed attempt worth repeating (`retry_after`: the seconds the service asked for, if any)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Refused(Exception):
    """A failed attempt that would fail again the same way."""


class HttpTeacher:
    def __init__(self, name: str, settings: HttpSettings):
        self.name = name
        self.kind = "http"
        self.settings = settings
        _check_settings(name, settings)
        self.url = shown_url(settings.url)
        self._api_key = _api_key(name, settings.api_key_env)
        self._secrets = [s for s in (self._api_key, *_url_secrets(settings.url)) if s]
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"
        self._jitter = random.Random()  # retry delays only: never touches a vector
        self._generated_size = settings.generated_size or f"{settings.image_size}x{settings.image_size}"
        self._image_encoder = None
        if settings.protocol == "openai-images":
            self._image_encoder = _VaeImageEncoder(name, settings)
            if settings.dim and settings.dim != self._image_encoder.dim:
                raise ConfigError(
                    f"[teachers.{name}] dim = {settings.dim}, but image_size = {settings.image_size} and "
                    f"pool = {settings.pool!r} give {self._image_encoder.dim}; leave dim out (0) for openai-images"
                )
            self.dim = self._image_encoder.dim
        else:
            self.dim = settings.dim

    def __repr__(self) -> str:
        return f"HttpTeacher({self.name!r}, {self.settings.protocol}, {self.url})"

    def provenance(self) -> dict[str, Any]:
        s = self.settings
        record = {
            "kind": self.kind,
            "url": self.url,
            "protocol": s.protocol,
            "model": s.model,
            "dim": self.dim,
            "extra": dict(s.extra),
            # A black box: nothing here can vouch that it answers the same tomorrow, or how it cuts long texts.
            "deterministic": "unknown",
            "truncation": "none by ARMADA; the service's own, unknown",
        }
        if self._image_encoder is not None:
            record.update(
                generated_size=self._generated_size,
                image_encoder=s.image_encoder,
                image_encoder_weights_sha256=self._image_encoder.weights_sha256,
                diffusers_version=self._image_encoder.diffusers_version,
                image_size=s.image_size,
                resize="bicubic",
                latent="VAE latent mean × scaling_factor",
                pool=s.pool,
            )
        return record

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), np.float32)
        if self._image_encoder is None:
            size = self.settings.request_size
            chunks = [texts[i:i + size] for i in range(0, len(texts), size)]
            answers = asyncio.run(self._post_all([(self._payload(chunk), self._vector_reader(len(chunk))) for chunk in chunks]))
            vectors = np.concatenate(answers)
        else:
            images = asyncio.run(self._post_all([(self._payload(text), self._read_image) for text in texts]))
            vectors = self._image_encoder.encode(images)
        self._check_finite(vectors)
        return vectors

    # --- requests ------------------------------------------------------------------------------

    def _payload(self, texts: list[str] | str) -> dict[str, Any]:
        s = self.settings
        if s.protocol == "armada":
            return {**s.extra, "texts": texts}
        if s.protocol == "openai-embeddings":
            return {**s.extra, "model": s.model, "input": texts}
        return {**s.extra, "model": s.model, "prompt": texts, "n": 1, "size": self._generated_size,
                "response_format": "b64_json"}

    async def _post_all(self, requests: list[tuple[dict, Callable[[Any], Any]]]) -> list[Any]:
        """Every request, at most `concurrency` in flight; the first failure cancels the rest."""
        limit = asyncio.Semaphore(self.settings.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        # trust_env: HTTPS_PROXY / NO_PROXY apply as they do for curl.
        async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session:
            tasks = [asyncio.ensure_future(self._post(session, limit, payload, read)) for payload, read in requests]
            try:
                return await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _post(self, session: aiohttp.ClientSession, limit: asyncio.Semaphore, payload: dict,
                    read: Callable[[Any], Any]) -> Any:
        """One request, retried on passing failures; `read` turns the JSON answer into the result."""
        s = self.settings
        body = json.dumps(payload, ensure_ascii=True).encode("ascii")
        attempts = s.max_retries + 1
        for attempt in itertools.count(1):
            try:
                async with limit:
                    status, retry_after, raw = await self._send(session, body)
                return self._answer(status, retry_after, raw, read)
            except _Refused as refusal:
                raise ArmadaError(self._redact(
                    f"teacher {self.name!r}: POST {self.url} was refused: {refusal}. Not retried: the request itself "
                    f"is wrong; check url, model, extra{' and the key in $' + s.api_key_env if s.api_key_env else ''} "
                    f"in [teachers.{self.name}]"
                )) from None
            except _Retry as failure:
                if attempt == attempts:
                    raise ArmadaError(self._redact(
                        f"teacher {self.name!r}: POST {self.url} ({s.protocol}) failed {attempts} times "
                        f"(max_retries = {s.max_retries}); the last failure: {failure.reason}. Check that the service "
                        f"is up and speaks this protocol, or raise timeout / max_retries in [teachers.{self.name}]"
                    )) from None
                delay = self._delay(attempt, failure.retry_after)
                log.warning(self._redact(
                    f"teacher {self.name!r}: POST {self.url}: attempt {attempt} of {attempts} failed "
                    f"({failure.reason}); retrying in {delay:.2f} s"
                ))
                await asyncio.sleep(delay)

    async def _send(self, session: aiohttp.ClientSession, body: bytes) -> tuple[int, str | None, bytes]:
        try:
            async with session.post(self.settings.url, data=body, headers=self._headers, allow_redirects=False) as response:
                return response.status, response.headers.get("Retry-After"), await response.read()
        except TimeoutError:
            raise _Retry(f"no complete answer within timeout = {self.settings.timeout} s") from None
        except (aiohttp.ClientError, OSError) as e:
            raise _Retry(f"the connection failed ({type(e).__name__}: {e})") from None

    def _answer(self, status: int, retry_after: str | None, raw: bytes, read: Callable[[Any], Any]) -> Any:
        if status == 429 or status >= 500:
            raise _Retry(f"HTTP {status}: {self._excerpt(raw)}", retry_after_seconds(retry_after, time.time()))
        if not 200 <= status < 300:
            raise _Refused(f"HTTP {status}: {self._excerpt(raw)}")
        try:
            answer = json.loads(raw)
        except ValueError:
            raise _Retry(f"the answer is not JSON: {self._excerpt(raw)}") from None
        return read(answer)

    def _delay(self, retry: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None:
            return min(retry_after, s.max_backoff)
        return self._jitter.uniform(0.0, min(s.max_backoff, s.backoff * 2.0 ** min(retry - 1, 64)))

    # --- answers -------------------------------------------------------------------------------

    def _vector_reader(self, count: int) -> Callable[[Any], np.ndarray]:
        if self.settings.protocol == "armada":
            return lambda answer: _armada_vectors(answer, count, self.dim)
        return lambda answer: _openai_vectors(answer, count, self.dim)

    def _read_image(self, answer: Any) -> np.ndarray:
        """The answer's one image, as uint8 [image_size, image_size, 3]."""
        from PIL import Image

        items = answer.get("data") if isinstance(answer, dict) else None
        if not (isinstance(items, list) and len(items) == 1 and isinstance(items[0], dict)
                and isinstance(items[0].get("b64_json"), str)):
            raise _Retry('the answer is not {"data": [{"b64_json": "..."}]} with one image')
        try:
            with Image.open(io.BytesIO(base64.b64decode(items[0]["b64_json"], validate=True))) as image:
                rgb = image.convert("RGB")
        except (binascii.Error, OSError) as e:
            raise _Retry(f"the image does not decode ({type(e).__name__})") from None
        side = self.settings.image_size
        return np.array(rgb.resize((side, side), Image.Resampling.BICUBIC))  # a writable copy, for torch

    def _check_finite(self, vectors: np.ndarray) -> None:
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1)).tolist()
        if bad:
            shown = ", ".join(map(str, bad[:20])) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
            source = "the image encoder" if self._image_encoder is not None else f"the service at {self.url}"
            raise NonFiniteVectors(
                f"teacher {self.name!r}: {source} gave NaN or inf (or values beyond float32) for the texts at "
                f"positions {shown} of this batch. Not retried: a deterministic service gives the same again; "
                "check the service with these texts", bad)

    # --- secrets -------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _excerpt(self, raw: bytes) -> str:
        # Redact before cutting, so that a cut can never leave part of a key behind.
        text = " ".join(self._redact(raw.decode("utf-8", errors="replace")).split())
        if not text:
            return "(an empty body)"
        return repr(text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…")


def _armada_vectors(answer: Any, count: int, dim: int) -> np.ndarray:
    rows = answer.get("vectors") if isinstance(answer, dict) else None
    if not isinstance(rows, list):
        raise _Retry('the answer has no "vectors" list')
    return _matrix(rows, count, dim)


def _openai_vectors(answer: Any, count: int, dim: int) -> np.ndarray:
    items = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise _Retry('the answer has no "data" list')
    if len(items) != count:
        raise _Retry(f"{len(items)} embeddings for {count} texts")
    by_index: dict[int, Any] = {}
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        if type(index) is not int or not 0 <= index < count or index in by_index:
            raise _Retry(f'the "index" fields are not 0 to {count - 1}, each once')
        by_index[index] = item.get("embedding")
    return _matrix([by_index[i] for i in range(count)], count, dim)


def _matrix(rows: list, count: int, dim: int) -> np.ndarray:
    if len(rows) != count:
        raise _Retry(f"{len(rows)} vectors for {count} texts")
    for i, row in enumerate(rows):
        # bool, null and "1.5" would all pass through numpy quietly (as 1.0, NaN, 1.5).
        if not isinstance(row, list) or not all(type(x) is float or type(x) is int for x in row):
            raise _Retry(f"vector {i} is not a list of numbers")
        if len(row) != dim:
            raise _Retry(f"vector {i} has {len(row)} values, but dim = {dim} (if {len(row)} is the service's size, set dim = {len(row)})")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, which the finiteness check names
        return np.asarray(rows, np.float64).astype(np.float32)


def output_dim(settings: HttpSettings) -> int:
    """The row size without a request sent or a model loaded (`armada teachers`): `dim`, or for openai-images
    the pooled latent of the image encoder's VAE (its config where it is on this machine, else Stable
    Diffusion's: 4 channels, 8× fewer pixels a side)."""
    if settings.protocol != "openai-images":
        if not settings.dim:
            raise ConfigError("dim is not set")
        return settings.dim
    from armada.extract.diffusion import read_model_config

    vae = read_model_config(settings.image_encoder, "", "vae/config.json")
    channels, downsample = (vae["latent_channels"], 2 ** (len(vae["block_out_channels"]) - 1)) if vae else (4, 8)
    side = settings.image_size // downsample
    return pooled_dim((channels, side, side), parse_pool(settings.pool))


class _VaeImageEncoder:
    """Images → latents, by the VAE encoder of a diffusers model, one image at a time."""

    def __init__(self, name: str, settings: HttpSettings):
        import diffusers
        from diffusers import AutoencoderKL

        self.diffusers_version = diffusers.__version__
        try:
            self.pool = parse_pool(settings.pool)
        except ArmadaError as e:
            raise ConfigError(f"[teachers.{name}] {e}") from None
        try:
            self.vae = AutoencoderKL.from_pretrained(settings.image_encoder, subfolder="vae").eval()
        except (OSError, ValueError) as e:
            raise ArmadaError(
                f"teacher {name!r}: cannot load the image encoder {settings.image_encoder!r} (its vae/ subfolder): "
                f"{' '.join(str(e).split())[:400].rstrip('.') or type(e).__name__}. Without the hub, set "
                f"image_encoder = \"/path/to/folder\" in [teachers.{name}]: a diffusers model folder with a vae/ "
                "subfolder (save_pretrained writes one)"
            ) from None
        downsample = 2 ** (len(self.vae.config.block_out_channels) - 1)
        if settings.image_size % downsample:
            raise ConfigError(f"[teachers.{name}] image_size = {settings.image_size}: the VAE of "
                              f"{settings.image_encoder!r} needs a multiple of {downsample}")
        side = settings.image_size // downsample
        try:
            self.dim = pooled_dim((self.vae.config.latent_channels, side, side), self.pool)
        except ArmadaError as e:
            raise ConfigError(f"[teachers.{name}] {e}") from None
        self.weights_sha256 = _weights_sha256(self.vae)

    def encode(self, images: list[np.ndarray]) -> np.ndarray:
        import torch

        config = self.vae.config
        rows = []
        with torch.inference_mode():
            for image in images:  # one at a time: a row never depends on the batch it fell in
                pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0
                latent = self.vae.encode(pixels).latent_dist.mean
                if config.shift_factor is not None:  # SD3 / Flux VAEs centre their latents
                    latent = latent - config.shift_factor
                rows.append(pool_latents((latent * config.scaling_factor).numpy(), self.pool))
        return np.concatenate(rows)


def _weights_sha256(module) -> str:
    """sha256 over a model's state dict (names and bytes): the weights actually loaded, hub or folder."""
    h = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        h.update(key.encode("utf-8"))
        h.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


# --- settings, urls and keys ---------------------------------------------------------------------

def _check_settings(name: str, s: HttpSettings) -> None:
    where = f"[teachers.{name}]"
    parts = urlsplit(s.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = shown_url(s.url) if s.url else '""'
        raise ConfigError(f"{where} url = {shown} is not an http(s) address; set url to the service's endpoint, "
                          "e.g. url = \"http://localhost:8000/encode\"")
    if s.protocol != "openai-images" and s.dim == 0:
        raise ConfigError(f"{where} dim is not set: give the size of the vectors the service returns, e.g. dim = 768")
    if s.protocol != "armada" and not s.model:
        raise ConfigError(f"{where} model is not set: the {s.protocol} protocol sends it with every request")
    if s.api_key_env and (parts.username or parts.password):
        raise ConfigError(f"{where} has both api_key_env and credentials in the url; keep one of them")
    taken = sorted(set(s.extra) & set(PROTOCOL_FIELDS[s.protocol]))
    if taken:
        raise ConfigError(f"{where} extra sets {taken}: the {s.protocol} protocol writes these fields itself; "
                          "remove them from extra")
    try:
        json.dumps(dict(s.extra), allow_nan=False)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} extra holds a value JSON cannot carry (a date, NaN or inf); "
                          "use strings and numbers") from None
    if s.generated_size and not re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", s.generated_size):
        raise ConfigError(f"{where} generated_size = {s.generated_size!r}: write it WIDTHxHEIGHT, e.g. \"1024x1024\"")


def _api_key(name: str, variable: str) -> str:
    if not variable:
        return ""
    key = os.environ.get(variable, "").strip()
    if not key:
        raise ArmadaError(f"teacher {name!r}: api_key_env = {variable!r}, but the environment variable {variable} "
                          f"is not set (or empty); export {variable}=<your key>, or set api_key_env = \"\" in "
                          f"[teachers.{name}] for a service without a key")
    if not (key.isascii() and key.isprintable()):
        raise ArmadaError(f"teacher {name!r}: the environment variable {variable} holds characters an HTTP header "
                          "cannot carry (non-ASCII or control characters); check its value")
    return key


def shown_url(url: str) -> str:
    """The url without credentials: no user:password@, and the values of secret query parameters masked."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host += f":{parts.port}"
    query = [(k, "***" if SECRET_QUERY_NAME.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, host, parts.path, urlencode(query, safe="*"), ""))


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    secrets = [parts.username or "", parts.password or ""]
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if SECRET_QUERY_NAME.search(unquote_plus(key)):
            secrets += [value, unquote_plus(value)]
    return secrets


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """The wait a Retry-After header asks for (delta-seconds, or an HTTP date), or None if there is none."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, when.timestamp() - now)
    return max(0.0, seconds) if math.isfinite(seconds) else None
