"""speecht5: SpeechT5 speaks each text through a HiFi-GAN vocoder, wav2vec2 hears it; mean over real frames.

The paper's text-to-audio teacher (microsoft/speecht5_tts, microsoft/speecht5_hifigan, a speaker
x-vector, facebook/wav2vec2-base → 768).

- Determinism: SpeechT5's decoder prenet applies dropout even in eval mode (Tacotron 2 §2.2), drawn
  from torch's global generator, and draws ONE mask for the whole batch from row 0. Each text is
  therefore spoken alone, under torch's generator seeded by row_seed(text, seed) inside
  torch.random.fork_rng, so the caller's random state is left as it was.
- Truncation: texts are cut at max_text_tokens, never more than the model's text positions
  (config.max_text_positions, 450 for speecht5_tts); generation stops at the model's stop token or at
  20 frames per token, capped so the decoder never runs past its speech positions.
- Listening: wav2vec2-base normalises its convolutional features over time (group norm) and takes
  no attention mask, so zero-padding a batch moves every row; each clip is heard alone and pooled
  over its own frames (the encoder's output length for the clip).
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig
from transformers.utils import cached_file

from armada.errors import ArmadaError
from armada.extract.settings import SpeechT5Settings
from armada.extract.teacher import resolve_device, row_seed
from armada.files import file_sha256

DEFAULT_SPEAKER_DATASET = "Matthijs/cmu-arctic-xvectors"
DEFAULT_SPEAKER_ROW = 7306          # the x-vector the SpeechT5 model card uses (US English, female)
STOP_THRESHOLD = 0.5                # generate_speech's defaults, written down so provenance states them
MAX_FRAMES_PER_TOKEN = 20.0


class SpeechT5Teacher:
    kind = "speecht5"

    def __init__(self, name: str, settings: SpeechT5Settings):
        # The model classes are imported here, not at the top: `armada teachers` reads output_dim without them.
        from transformers import (AutoFeatureExtractor, SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Processor,
                                  Wav2Vec2Model)

        self.name = name
        self.settings = settings
        self.device = resolve_device(settings.device)
        self._processor = _from_pretrained(SpeechT5Processor, settings.model, name, "model")
        self._tts = _from_pretrained(SpeechT5ForTextToSpeech, settings.model, name, "model").to(self.device).eval()
        self._vocoder = _from_pretrained(SpeechT5HifiGan, settings.vocoder, name, "vocoder").to(self.device).eval()
        self._listener_features = _from_pretrained(AutoFeatureExtractor, settings.encoder, name, "encoder")
        self._listener = _from_pretrained(Wav2Vec2Model, settings.encoder, name, "encoder").to(self.device).eval()
        config = self._tts.config
        self._speaker, self._speaker_source = _speaker_xvector(settings.speaker, name, config.speaker_embedding_dim)
        self._speaker_tensor = torch.from_numpy(self._speaker)[None].to(self.device)
        self._max_text_tokens = min(settings.max_text_tokens, config.max_text_positions)
        rate, heard = self._vocoder.config.sampling_rate, self._listener_features.sampling_rate
        self._resample = (heard // gcd(rate, heard), rate // gcd(rate, heard)) if rate != heard else None
        self.dim = self._listener.config.hidden_size
        self._provenance: dict[str, Any] | None = None

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._hear(self.speak(text), position, text) for position, text in enumerate(texts)])

    @torch.no_grad()
    def speak(self, text: str) -> np.ndarray:
        """The text spoken by SpeechT5 and the vocoder: float32 audio at the listener's sampling rate."""
        ids = self._processor(text=text, return_tensors="pt", truncation=True,
                              max_length=self._max_text_tokens).input_ids.to(self.device)
        config = self._tts.config
        # generate_speech runs maxlen = tokens·ratio/reduction steps; past max_speech_positions the
        # decoder's positional table ends, so the ratio is capped for long texts.
        ratio = min(MAX_FRAMES_PER_TOKEN, config.max_speech_positions * config.reduction_factor / ids.shape[1])
        with torch.random.fork_rng():
            torch.manual_seed(row_seed(text, self.settings.seed))
            audio = self._tts.generate_speech(ids, self._speaker_tensor, vocoder=self._vocoder,
                                              threshold=STOP_THRESHOLD, maxlenratio=ratio)
        audio = audio.float().cpu().numpy()
        if self._resample is None:
            return audio
        from scipy.signal import resample_poly

        return resample_poly(audio, *self._resample).astype(np.float32)

    @torch.no_grad()
    def _hear(self, audio: np.ndarray, position: int, text: str) -> np.ndarray:
        frames = int(self._listener._get_feat_extract_output_lengths(torch.tensor(len(audio))))
        if frames < 1:
            raise ArmadaError(f"teacher text #{position} {text[:80]!r}: SpeechT5 spoke {len(audio)} samples, too short "
                              f"for {self.settings.encoder} to hear; change the task's teacher template or drop such rows")
        inputs = self._listener_features(audio, sampling_rate=self._listener_features.sampling_rate, return_tensors="pt")
        hidden = self._listener(inputs.input_values.to(self.device)).last_hidden_state[0]
        return hidden[:frames].mean(dim=0, dtype=torch.float64).float().cpu().numpy()

    def provenance(self) -> dict[str, Any]:
        if self._provenance is None:
            self._provenance = self._describe()
        return self._provenance

    def _describe(self) -> dict[str, Any]:
        s, config = self.settings, self._tts.config
        return {
            "family": self.kind,
            "model": s.model, "model_files": _files_sha256(s.model),
            "vocoder": s.vocoder, "vocoder_files": _files_sha256(s.vocoder),
            "encoder": s.encoder, "encoder_files": _files_sha256(s.encoder),
            "speaker": self._speaker_source,
            "speaker_sha256": hashlib.sha256(self._speaker.tobytes()).hexdigest(),
            "max_text_tokens": self._max_text_tokens,
            "stop_threshold": STOP_THRESHOLD,
            "max_frames_per_token": MAX_FRAMES_PER_TOKEN,
            "max_speech_positions": config.max_speech_positions,
            "prenet_dropout": config.speech_decoder_prenet_dropout,
            "seed": s.seed,
            "seeding": "torch.manual_seed(row_seed(text, seed)) per text, each text generated alone",
            "vocoder_sampling_rate": self._vocoder.config.sampling_rate,
            "sampling_rate": self._listener_features.sampling_rate,
            "resampler": "scipy.signal.resample_poly" if self._resample else "none",
            "pooling": "mean over the encoder's output frames for the clip; each clip heard alone",
            "device": self.device,
            "torch": torch.__version__,
            "transformers": version("transformers"),
            "dim": self.dim,
        }


def output_dim(settings: SpeechT5Settings) -> int:
    """The row size: the encoder's hidden size, from its config in a local folder or the hub cache (no download)."""
    try:
        return AutoConfig.from_pretrained(settings.encoder, local_files_only=True).hidden_size
    except OSError:
        raise ArmadaError(f"the size of {settings.encoder}'s vectors is known once it is downloaded") from None


def _from_pretrained(cls, source: str, teacher: str, key: str):
    try:
        return cls.from_pretrained(source)
    except OSError as e:
        reason = str(e).splitlines()[0]
        raise ArmadaError(f"teachers.{teacher}.{key} = {source!r} could not be loaded: {reason}. Without the hub, "
                          f"download it where there is internet (`hf download {source} --local-dir DIR`), copy DIR "
                          f"here and set [teachers.{teacher}] {key} = \"/path/to/DIR\"") from None


def _speaker_xvector(speaker: str, teacher: str, dim: int) -> tuple[np.ndarray, str]:
    if speaker:
        path = Path(speaker).expanduser()
        if not path.is_file():
            raise ArmadaError(f"teachers.{teacher}.speaker = {speaker!r}: no such file; give a .npy file holding one "
                              f"{dim}-d speaker x-vector")
        try:
            vector = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise ArmadaError(f"teachers.{teacher}.speaker = {speaker!r}: not a numeric .npy array ({e})") from None
        source = f"{speaker} (sha256 {file_sha256(path)})"
    else:
        vector = _default_xvector(teacher, dim)
        source = f"hub dataset {DEFAULT_SPEAKER_DATASET}, split validation, row {DEFAULT_SPEAKER_ROW}"
    vector = np.asarray(vector, dtype=np.float32)
    if vector.size != dim or not np.isfinite(vector).all():
        raise ArmadaError(f"teachers.{teacher}.speaker = {speaker!r}: the x-vector has shape {vector.shape}"
                          f"{'' if np.isfinite(vector).all() else ' and non-finite values'}; SpeechT5 needs {dim} "
                          f"finite values")
    return vector.reshape(dim), source


def _default_xvector(teacher: str, dim: int) -> np.ndarray:
    import datasets

    try:
        rows = datasets.load_dataset(DEFAULT_SPEAKER_DATASET, split="validation")
    except OSError as e:
        raise ArmadaError(
            f"teachers.{teacher}.speaker is \"\", which means the x-vector in row {DEFAULT_SPEAKER_ROW} of the hub dataset "
            f"{DEFAULT_SPEAKER_DATASET}, and that dataset could not be loaded ({e}). Save a {dim}-d speaker x-vector "
            f"with numpy.save and set [teachers.{teacher}] speaker = \"/path/to/xvector.npy\"") from None
    return np.asarray(rows[DEFAULT_SPEAKER_ROW]["xvector"])


def _files_sha256(source: str) -> dict[str, str]:
    """The sha256 of each weight, tokenizer and config file of a model, from its local folder or its hub snapshot."""
    folder = Path(cached_file(source, "config.json")).parent
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir())
            if p.suffix in (".safetensors", ".bin", ".model", ".json")}
