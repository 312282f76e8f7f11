"""Extraction throughput and memory: `armada extract` against the naive approaches, side by side in one run.

1. Diffusion. The authors' reference code (DESIGN.md §1): one example at a time, text-to-image with
   the image decoded, the image resized to 128×128 and put through img2img (strength 0.75), the
   4×16×16 latent saved as one .npy file per example. Against `armada extract` with a diffusers-t2i
   teacher: batched, one text-to-image pass, latent output (no decode), flattened to the same 1024,
   into the cache. Both run the same Stable Diffusion architecture (UNet with three cross-attention
   down blocks and one plain, two layers each; a four-block VAE; a CLIP text encoder; PNDM) with
   random weights, narrowed so a CPU can run it (UNET_CHANNELS below), at 128 px, 20 steps,
   guidance 7.5.
2. piper-whisper. A naive per-example loop (the same speech, then Whisper's encoder on the audio
   padded to 30 s as faster-whisper's transcribe does, one .npy per example) against
   `armada extract --teacher piper-whisper` (each clip at its own length, batched into the cache).
3. Peak RSS of `armada extract --teacher piper-whisper` for N and 10·N examples, each in its own process.

Each side runs in its own process, on the same BBC News titles. examples/s counts from the moment
the models are loaded to the last row written (armada prints it at the end of its run); the
loading seconds are shown beside it. Each side gets the machine's cores (--threads: as many threads
as cores); the one-example loops cannot use a second core, batched extraction can, so on a machine
other work shares, --threads 1 gives the steadier (and lower) figure.

Run: .venv/bin/python bench/extract_throughput.py [--diffusion-examples 24] [--speech-examples 24] [--rss-examples 30]
     [--repeat 2] [--threads CORES]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARMADA = str(Path(sys.executable).parent / "armada")
HERE = Path(__file__).resolve()

RESOLUTION, STEPS, GUIDANCE, STRENGTH = 128, 20, 7.5, 0.75
UNET_CHANNELS = (16, 32, 64, 64)            # Stable Diffusion v1-4: (320, 640, 1280, 1280)
VAE_CHANNELS = (16, 32, 64, 64)             # (128, 256, 512, 512)
TEXT_WIDTH, TEXT_LAYERS = 64, 4             # CLIP ViT-L/14 text: 768 wide, 12 layers
BATCH_SIZE = 8


def titles(count: int) -> list[str]:
    from armada.tasks import get_task

    return get_task("bbc-news").load("train", limit=count, template="{title}").teacher_texts


# --- the Stable Diffusion architecture, narrowed ---------------------------------------------

def save_small_stable_diffusion(folder: Path) -> Path:
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    torch.manual_seed(0)
    # A byte-level CLIP BPE (every byte, a few merges); written to files and read back with from_pretrained,
    # since CLIPTokenizer(vocab_file=...) ignores its files in transformers 5.
    raw = folder / "tokenizer-files"
    raw.mkdir(parents=True)
    symbols = list(bytes_to_unicode().values())
    merges = ["t h", "th e</w>", "i n", "a n", "an d</w>", "e r", "o n", "r e"]
    tokens = symbols + [s + "</w>" for s in symbols] + [m.replace(" ", "") for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    (raw / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (raw / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer.from_pretrained(raw, model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH, num_attention_heads=4,
        num_hidden_layers=TEXT_LAYERS, max_position_embeddings=77, projection_dim=TEXT_WIDTH,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    unet = UNet2DConditionModel(
        block_out_channels=UNET_CHANNELS, layers_per_block=2, in_channels=4, out_channels=4, sample_size=RESOLUTION // 8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=8, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=VAE_CHANNELS, in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=2, norm_num_groups=8, sample_size=RESOLUTION)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


def reference_diffusion(model: str, out: str, count: int) -> dict:
    """The authors' loop: per example, text-to-image (decoded), resize, img2img to a latent, one .npy file."""
    import numpy as np
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    texts = titles(count)
    started = time.perf_counter()
    text_to_image = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
    text_to_image.set_progress_bar_config(disable=True)
    image_to_image = StableDiffusionImg2ImgPipeline(**text_to_image.components, requires_safety_checker=False)
    image_to_image.set_progress_bar_config(disable=True)
    loaded = time.perf_counter()
    Path(out).mkdir(parents=True)
    for i, text in enumerate(texts):
        generator = torch.Generator().manual_seed(i)
        image = text_to_image(text, height=RESOLUTION, width=RESOLUTION, num_inference_steps=STEPS,
                              guidance_scale=GUIDANCE, generator=generator).images[0]
        image = image.resize((128, 128))
        latent = image_to_image(text, image=image, strength=STRENGTH, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                                generator=generator, output_type="latent").images[0]
        np.save(Path(out) / f"{i}.npy", latent.flatten().numpy())
    return timings(started, loaded, count)


# --- piper-whisper, naively --------------------------------------------------------------------

def naive_piper_whisper(out: str, count: int) -> dict:
    """Per example: the same speech, then Whisper's encoder on the audio padded to 30 s; one .npy file."""
    import numpy as np

    from armada.extract.registry import load_teacher

    texts = titles(count)
    started = time.perf_counter()
    teacher = load_teacher("piper-whisper")
    whisper = teacher._whisper
    extractor = whisper.feature_extractor
    loaded = time.perf_counter()
    Path(out).mkdir(parents=True)
    for i, text in enumerate(texts):
        audio = teacher.speak(text)
        mel = extractor(audio, padding=extractor.n_samples)[:, : extractor.nb_max_frames]   # 3000 frames: 30 s
        frames = np.asarray(whisper.encode(mel))[0]
        real = math.ceil(len(audio) / extractor.hop_length / 2)
        np.save(Path(out) / f"{i}.npy", frames[:real].mean(axis=0))
    return timings(started, loaded, count)


def timings(started: float, loaded: float, count: int) -> dict:
    done = time.perf_counter()
    return {"seconds": done - started, "loading": loaded - started, "rate": count / (done - loaded), "examples": count}


# --- armada extract ----------------------------------------------------------------------------

def write_pipeline(folder: Path, model: Path | None) -> Path:
    text = ('[data.teacher_templates]\n"bbc-news" = "{title}"\n\n'
            f"[extract]\nbatch_size = {BATCH_SIZE}\nshard_rows = 64\n")
    if model is not None:
        text += (f'\n[teachers.bench-sd]\nkind = "diffusers-t2i"\nmodel = "{model}"\nheight = {RESOLUTION}\n'
                 f'width = {RESOLUTION}\nsteps = {STEPS}\nguidance = {GUIDANCE}\npool = "flatten"\n')
    path = folder / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def confined(threads: int) -> dict:
    """Popen arguments that give a process `threads` threads on as many cores. On a machine others share,
    two threads on two busy cores stall each other at every synchronisation and single runs vary by whole
    factors; one thread per side gives steady, comparable figures. Both sides get the same."""
    cores = sorted(os.sched_getaffinity(0))[:threads]
    env = {**os.environ, **{v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    return {"env": env, "preexec_fn": lambda: os.sched_setaffinity(0, cores)}


def armada_extract(pipeline: Path, teacher: str, count: int, out: Path, threads: int) -> dict:
    """`armada extract` in its own process; its seconds (loading the task and teacher onward) and peak RSS."""
    process = subprocess.Popen([ARMADA, "extract", "--teacher", teacher, "--dataset", "bbc-news", "--split", "train",
                                "--limit", str(count), "--config", str(pipeline), "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **confined(threads))
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"armada extract failed ({process.returncode}):\n{stdout}")
    seconds, loading, per_second = re.search(r"seconds: ([0-9.]+) \(([0-9.]+) loading.*then ([0-9.]+) examples/s", stdout).groups()
    return {"seconds": float(seconds), "loading": float(loading), "rate": float(per_second), "examples": count,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def in_own_process(threads: int, function: str, *args) -> dict:
    result = subprocess.run([sys.executable, str(HERE), "--run", function, *map(str, args)],
                            capture_output=True, text=True, check=False, **confined(threads))
    if result.returncode != 0:
        raise SystemExit(f"{function} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def alternate(repeat: int, baseline, armada) -> tuple[dict, dict]:
    """Each side `repeat` times, taking turns, and the faster run of each: other work on a shared machine slows
    single runs down by whole factors, never speeds them up."""
    runs = [(baseline(k), armada(k)) for k in range(repeat)]
    return tuple(max((run[side] for run in runs), key=lambda r: r["rate"]) for side in (0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--diffusion-examples", type=int, default=24)
    parser.add_argument("--speech-examples", type=int, default=24)
    parser.add_argument("--rss-examples", type=int, default=30, help="N: peak RSS is measured for N and 10·N examples")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side, taking turns; the faster counts")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads (and cores) for every side; default: every core of the machine")
    parser.add_argument("--run", nargs="+", help=argparse.SUPPRESS)   # one side, in its own process
    args = parser.parse_args()
    if args.run:
        name, *rest = args.run
        function = {"reference_diffusion": reference_diffusion, "naive_piper_whisper": naive_piper_whisper}[name]
        print(json.dumps(function(*rest[:-1], int(rest[-1]))))
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="armada-bench-") as tmp:
        tmp = Path(tmp)
        model = save_small_stable_diffusion(tmp / "sd")
        pipeline = write_pipeline(tmp, model)
        n = args.diffusion_examples
        reference, ours = alternate(
            args.repeat,
            lambda k: in_own_process(args.threads, "reference_diffusion", model, tmp / f"reference-npy-{k}", n),
            lambda k: armada_extract(pipeline, "bench-sd", n, tmp / f"sd-{k}.zarr", args.threads))
        rows.append(("diffusion, 128 px, 20 steps", "reference loop (decode + img2img, .npy per example)", reference,
                     f"armada extract (batch {BATCH_SIZE}, latent only)", ours, 4))

        n = args.speech_examples
        naive, ours = alternate(
            args.repeat,
            lambda k: in_own_process(args.threads, "naive_piper_whisper", tmp / f"naive-npy-{k}", n),
            lambda k: armada_extract(pipeline, "piper-whisper", n, tmp / f"pw-{k}.zarr", args.threads))
        rows.append(("piper-whisper", "per-example loop, Whisper on 30 s padding", naive,
                     f"armada extract (batch {BATCH_SIZE}, clip length)", ours, 3))

        n = args.rss_examples
        small = armada_extract(pipeline, "piper-whisper", n, tmp / "rss-small.zarr", args.threads)
        large = armada_extract(pipeline, "piper-whisper", 10 * n, tmp / "rss-large.zarr", args.threads)

    print(f"\nCPU: {os.cpu_count()} cores shared with other work, {args.threads} thread(s) per side; load average "
          f"{os.getloadavg()[0]:.1f} at the end. "
          "ex/s: examples per second after loading; load: seconds to load the models (and, for armada, the task and cache)")
    print(f"\n{'workload':28} {'baseline':52} {'ex/s':>6} {'load':>5}   {'armada':38} {'ex/s':>6} {'load':>5}   speed-up  target")
    for workload, base_name, base, ours_name, ours, target in rows:
        print(f"{workload:28} {base_name:52} {base['rate']:6.2f} {base['loading']:5.1f}   {ours_name:38} {ours['rate']:6.2f} "
              f"{ours['loading']:5.1f}   {ours['rate'] / base['rate']:7.2f}×  ≥ {target}×")
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    print(f"\npeak RSS, armada extract --teacher piper-whisper: {n} examples {small['peak_rss_mb']:.0f} MB, "
          f"{10 * n} examples {large['peak_rss_mb']:.0f} MB: ratio {ratio:.2f} (target ≤ 1.2)")


if __name__ == "__main__":
    main()
