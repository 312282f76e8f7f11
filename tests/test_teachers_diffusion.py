"""The diffusers-t2i teacher (sd14, mj) and latent pooling, on a tiny Stable Diffusion built from configs,
saved to a folder and loaded back by the teacher through from_pretrained, as a hub id would be."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
from PIL import Image
from tiny_diffusers import CLIP_MAX_TOKENS, same_rows, save_tiny_stable_diffusion, save_tiny_unet_lora

from armada.errors import ArmadaError
from armada.extract.diffusion import DiffusionTeacher, output_dim, recipe_dtype, resize_like_cv2
from armada.extract.pooling import parse_pool, pool_latents, pooled_dim
from armada.extract.registry import load_teacher, resolve
from armada.files import file_sha256

TEXTS = ["a cat on a mat", "the dog and the cat", "naïve café 猫 😀 \x00\x07\tend", "the " * 400]
SMALL = {"steps": 2, "height": 64, "width": 64}             # an 8×8 latent: fast, same code path


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def lora_path(sd_folder, tmp_path_factory):
    return save_tiny_unet_lora(sd_folder, tmp_path_factory.mktemp("tiny-lora"))


def teacher(name="sd14", **settings):
    return load_teacher(name, {name: settings})


@pytest.fixture(scope="module")
def small(sd_folder):
    return teacher(model=str(sd_folder), **SMALL)


@pytest.fixture(scope="module")
def small_rows(small):
    return small.encode(TEXTS)


# --- pooling -------------------------------------------------------------------------------------

def test_pool_modes_match_hand_computed_values():
    latents = np.random.default_rng(0).normal(size=(2, 4, 6, 6)).astype(np.float32)
    flat = pool_latents(latents, parse_pool("flatten"))
    channel_mean = pool_latents(latents, parse_pool("channel-mean"))
    grid = pool_latents(latents, parse_pool("avgpool:3"))
    assert flat.shape == (2, 144) and channel_mean.shape == (2, 36) and grid.shape == (2, 36)
    for b in range(2):
        np.testing.assert_array_equal(flat[b], [latents[b, c, y, x] for c in range(4) for y in range(6) for x in range(6)])
        expected_mean = [sum(float(latents[b, c, y, x]) for c in range(4)) / 4 for y in range(6) for x in range(6)]
        np.testing.assert_allclose(channel_mean[b], expected_mean, rtol=1e-6, atol=1e-6)
        expected_grid = [sum(float(latents[b, c, 2 * i + dy, 2 * j + dx]) for dy in range(2) for dx in range(2)) / 4
                         for c in range(4) for i in range(3) for j in range(3)]
        np.testing.assert_allclose(grid[b], expected_grid, rtol=1e-6, atol=1e-6)
    assert flat.dtype == channel_mean.dtype == grid.dtype == np.float32


def test_pooled_dim_comes_from_the_latent_shape_alone():
    assert pooled_dim((4, 32, 32), parse_pool("channel-mean")) == 1024      # sd14 at 256 px
    assert pooled_dim((4, 16, 16), parse_pool("flatten")) == 1024           # the reference recipe
    assert pooled_dim((4, 32, 32), parse_pool("avgpool:4")) == 64
    assert pooled_dim((4, 32, 32), parse_pool("flatten")) == 4096


@pytest.mark.parametrize("text", ["mean", "avgpool", "avgpool:0", "avgpool:-2", "avgpool:x", "Flatten", ""])
def test_an_unknown_pool_is_an_armada_error(text):
    with pytest.raises(ArmadaError, match="channel-mean"):
        parse_pool(text)


def test_a_grid_that_does_not_divide_the_latent_is_an_armada_error():
    with pytest.raises(ArmadaError, match="does not divide"):
        pooled_dim((4, 32, 32), parse_pool("avgpool:3"))


# --- the teacher ---------------------------------------------------------------------------------

def test_sd14_defaults_give_a_4x32x32_latent_pooled_to_1024(sd_folder):
    sd14 = teacher(model=str(sd_folder), steps=1)            # default 256×256 px and channel-mean
    assert isinstance(sd14, DiffusionTeacher) and sd14.name == "sd14" and sd14.kind == "diffusers-t2i"
    assert sd14.latent_shape == (4, 32, 32) and sd14.dim == 1024
    rows = sd14.encode(TEXTS[:2])
    assert rows.shape == (2, 1024) and rows.dtype == np.float32 and np.isfinite(rows).all()


def test_output_dim_is_known_without_loading_the_model(sd_folder):
    for table in ({}, SMALL, {"recipe": "reference"}, {"pool": "avgpool:2", **SMALL}, {"pool": "flatten"}):
        settings = resolve("sd14", {"sd14": {"model": str(sd_folder), **table}})[1]
        assert output_dim(settings) == teacher(model=str(sd_folder), **table).dim
    # A hub model not on this machine: Stable Diffusion's 4-channel, 8× smaller latent.
    assert output_dim(resolve("sd14")[1]) == 1024 and output_dim(resolve("mj", {"mj": {"recipe": "reference"}})[1]) == 1024


def test_encoding_is_deterministic_and_rows_differ_by_text(small, small_rows):
    assert small_rows.shape == (len(TEXTS), small.dim) == (4, 64) and small_rows.dtype == np.float32
    same_rows(small.encode(TEXTS), small_rows)
    assert len({row.tobytes() for row in small_rows}) == len(TEXTS)


def test_long_non_ascii_and_control_character_texts_encode(small, small_rows):
    assert np.isfinite(small_rows).all()
    assert small.provenance()["text_max_tokens"] == {"tokenizer": CLIP_MAX_TOKENS}  # "the " × 400 is cut there


@pytest.mark.numerics
def test_a_row_is_the_same_alone_or_in_any_batch(small, small_rows):
    # Bit-identical on this CPU: each row has its own generator, and batched convolutions and
    # matmuls reduce each row in the same order whatever the batch size.
    for i in (0, 3):
        same_rows(small.encode([TEXTS[i]])[0], small_rows[i])
    reordered = small.encode([TEXTS[3], TEXTS[0], "another text entirely"])
    same_rows(reordered[0], small_rows[3])
    same_rows(reordered[1], small_rows[0])


def test_the_seed_changes_the_rows(sd_folder, small_rows):
    other = teacher(model=str(sd_folder), seed=1, **SMALL).encode(TEXTS[:1])
    assert not np.allclose(other[0], small_rows[0])


def test_provenance_names_the_weights_and_every_setting(small, sd_folder):
    found = small.provenance()
    json.dumps(found)
    assert found["model"] == str(sd_folder) and found["family"] == "diffusers-t2i" and found["teacher"] == "sd14"
    unet = "unet/diffusion_pytorch_model.safetensors"
    assert found["files_sha256"][unet] == file_sha256(sd_folder / unet)
    assert found["scheduler"] == "PNDMScheduler" and found["pipeline"] == "StableDiffusionPipeline"
    assert found["dtype"] == "float32" and found["device"] == "cpu"
    assert (found["steps"], found["guidance"], found["height"], found["width"]) == (2, 7.5, 64, 64)
    assert (found["recipe"], found["pool"], found["pool_chosen_by"]) == ("latent", "channel-mean", "the latent recipe's default")
    assert (found["latent_shape"], found["dim"], found["seed"]) == ([4, 8, 8], 64, 0)


def test_latent_recipe_provenance_is_what_caches_made_before_hold(sd_folder):
    # config_hash covers the provenance, so a latent cache extracted before height/width defaulted to 0 ("the
    # recipe's own") and before reference_input existed must get the same provenance now, or armada would refuse
    # to resume or reuse it. These are the keys and settings such a cache's manifest holds (defaults, steps=1).
    found = teacher(model=str(sd_folder), steps=1).provenance()
    settings_then = {"model": str(sd_folder), "revision": "", "steps": 1, "guidance": 7.5, "height": 256, "width": 256,
                     "pool": "channel-mean", "recipe": "latent", "reference_size": 128, "strength": 0.75, "seed": 0,
                     "lora": "", "lora_weight_name": "", "lora_scale": 1.0, "negative_prompt": "", "device": "cpu",
                     "dtype": "float32"}
    keys_then = set(settings_then) | {"diffusers_version", "dim", "family", "files_sha256", "latent_shape", "pipeline",
                                      "pool_chosen_by", "scheduler", "seeding", "teacher", "text_max_tokens",
                                      "torch_version"}
    assert set(found) == keys_then
    assert {key: found[key] for key in settings_then} == settings_then


@pytest.mark.numerics
def test_the_reference_recipe_flattens_a_4x16x16_img2img_latent_to_1024(sd_folder):
    reference = teacher(model=str(sd_folder), recipe="reference", **SMALL)   # img2img runs int(2 × 0.75) = 1 step
    assert reference.latent_shape == (4, 16, 16) and reference.dim == 1024
    found = reference.provenance()
    assert (found["pool"], found["pool_chosen_by"]) == ("flatten", "the reference recipe's default")
    assert (found["image_to_image_pipeline"], found["image_to_image_steps"]) == ("StableDiffusionImg2ImgPipeline", 1)
    assert (found["height"], found["width"], found["reference_input"]) == (64, 64, "bgr-array")
    assert "cv2.resize" in found["reference_resize"]
    rows = reference.encode(TEXTS[:2])
    assert rows.shape == (2, 1024) and np.isfinite(rows).all()
    # Each text alone, so 8-bit rounding of its first image cannot turn a batch's last bits into pixel steps.
    np.testing.assert_array_equal(reference.encode(TEXTS[1:2])[0], rows[1])


def test_the_reference_latent_is_4_by_an_eighth_of_reference_size(sd_folder):
    reference = teacher(model=str(sd_folder), recipe="reference", reference_size=64, **SMALL)
    assert reference.latent_shape == (4, 8, 8) and reference.dim == 256 == output_dim(reference.settings)
    assert reference.encode(TEXTS[:1]).shape == (1, 256)


def test_the_reference_recipe_runs_in_float32_as_the_authors_did_unless_told_otherwise():
    def dtype(device, **table):
        return recipe_dtype(resolve("sd14", {"sd14": table})[1], device)

    assert dtype("cuda:0") == torch.float16 and dtype("cpu") == torch.float32
    assert dtype("cuda:0", recipe="reference") == dtype("cpu", recipe="reference") == torch.float32
    assert dtype("cuda:0", recipe="reference", dtype="float16") == torch.float16


@pytest.fixture
def first_pass_sizes(monkeypatch):
    """The (height, width) of every text-to-image call."""
    sizes = []
    call = StableDiffusionPipeline.__call__

    def recording(pipe, *args, **kwargs):
        sizes.append((kwargs.get("height"), kwargs.get("width")))
        return call(pipe, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", recording)
    return sizes


def test_the_reference_recipe_generates_at_the_pipelines_default_size_unless_set(sd_folder, tmp_path, first_pass_sizes):
    # A UNet whose sample_size is 12: the pipeline's default is 96 px, unlike the latent recipe's 256 (SD v1-4: 512).
    folder = tmp_path / "tiny-sd-96"
    shutil.copytree(sd_folder, folder)
    config = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**config, "sample_size": 12}))
    reference = teacher(model=str(folder), recipe="reference", steps=2)
    default = reference.pipe(TEXTS[0], num_inference_steps=1, output_type="latent").images   # no size: diffusers' own
    assert (reference.height, reference.width) == (default.shape[-2] * 8, default.shape[-1] * 8) == (96, 96)
    first_pass_sizes.clear()
    assert reference.encode(TEXTS[:1]).shape == (1, 1024)
    assert first_pass_sizes == [(96, 96)]
    assert (reference.provenance()["height"], reference.provenance()["width"]) == (96, 96)
    first_pass_sizes.clear()
    teacher(model=str(folder), recipe="reference", steps=2, height=32).encode(TEXTS[:1])
    assert first_pass_sizes == [(32, 96)]
    latent = teacher(model=str(folder), steps=1)
    assert (latent.height, latent.width, latent.latent_shape) == (256, 256, (4, 32, 32))


def test_img2img_is_given_the_authors_bgr_uint8_array_or_the_rgb_image(sd_folder, monkeypatch):
    given, encoded = [], []
    call = StableDiffusionImg2ImgPipeline.__call__

    def recording(pipe, *args, **kwargs):
        given.append(kwargs["image"])
        return call(pipe, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionImg2ImgPipeline, "__call__", recording)
    bgr = teacher(model=str(sd_folder), recipe="reference", **SMALL)
    rgb = teacher(model=str(sd_folder), recipe="reference", reference_input="rgb-image", **SMALL)
    assert "reference_input" in bgr.provenance() and rgb.provenance()["reference_input"] == "rgb-image"
    for reference in (bgr, rgb):
        encode = reference.pipe.vae.encode                    # img2img shares this VAE

        def recording_encode(pixels, *args, encode=encode, **kwargs):
            encoded.append(pixels.clone())
            return encode(pixels, *args, **kwargs)

        monkeypatch.setattr(reference.pipe.vae, "encode", recording_encode)
        reference.encode(TEXTS[:1])
    (array,), (image,) = given
    assert isinstance(array, np.ndarray) and array.dtype == np.uint8 and array.shape == (128, 128, 3)
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (128, 128)
    np.testing.assert_array_equal(array, np.asarray(image)[..., ::-1])   # the same pixels, blue and red swapped
    # What the VAE encodes: diffusers reads the uint8 array as values in [0, 1], so 2·v − 1 reaches it, as it
    # reached the authors'; the RGB image arrives in [−1, 1].
    as_tensor = torch.from_numpy(array.astype(np.float32)).permute(2, 0, 1)[None]
    torch.testing.assert_close(encoded[0], 2 * as_tensor - 1, rtol=0, atol=0)
    torch.testing.assert_close(encoded[1], 2 * as_tensor.flip(1) / 255 - 1, rtol=0, atol=1e-6)


def inter_linear_like_opencv(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV's INTER_LINEAR (imgproc/src/resize.cpp), written out: source coordinate (d + 0.5)·scale − 0.5, its
    floor and fraction, clamped at both edges, the two weights 1 − fraction and fraction; rows, then columns."""
    def taps(size_out, size_in):
        position = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
        first = np.floor(position).astype(int)
        fraction = position - first
        fraction[first < 0], first[first < 0] = 0, 0
        past = first >= size_in - 1
        fraction[past], first[past] = 0, size_in - 1
        return first, np.minimum(first + 1, size_in - 1), fraction

    top, bottom, down = taps(height, image.shape[0])
    left, right, across = taps(width, image.shape[1])
    pixels = image.astype(np.float64)
    rows = pixels[top] * (1 - down)[:, None, None] + pixels[bottom] * down[:, None, None]
    values = rows[:, left] * (1 - across)[None, :, None] + rows[:, right] * across[None, :, None]
    return np.floor(values + 0.5).astype(np.uint8)


@pytest.mark.parametrize("size_in, size_out", [(64, 16), (512, 128), (256, 128), (100, 37), (16, 40)])
def test_resize_like_cv2_is_opencvs_inter_linear(size_in, size_out):
    # Exact where the sizes divide (the reference recipe's 512 → 128); elsewhere float32 against float64 weights
    # may land a value on the other side of a rounding boundary, one level away.
    image = np.random.default_rng(size_in).integers(0, 256, (size_in, size_in, 3), dtype=np.uint8)
    ours, formula = resize_like_cv2(image, size_out, size_out), inter_linear_like_opencv(image, size_out, size_out)
    assert ours.shape == (size_out, size_out, 3) and ours.dtype == np.uint8
    difference = np.abs(ours.astype(int) - formula)
    if size_in % size_out == 0:
        assert difference.max() == 0
    else:
        assert difference.max() <= 1 and (difference == 0).mean() > 0.98


def test_a_reference_recipe_without_an_img2img_step_is_an_armada_error(sd_folder):
    with pytest.raises(ArmadaError, match="raise steps or strength"):
        teacher(model=str(sd_folder), recipe="reference", steps=1, strength=0.75)


def test_a_lora_changes_the_rows_and_scale_zero_gives_the_base_rows(sd_folder, lora_path, small_rows):
    mj = teacher("mj", model=str(sd_folder), lora=str(lora_path), **SMALL)
    with_lora = mj.encode(TEXTS[:2])
    assert np.isfinite(with_lora).all() and not np.allclose(with_lora, small_rows[:2], atol=1e-3)
    found = mj.provenance()["lora_file"]
    assert found == {"lora": str(lora_path), "weight_name": lora_path.name, "sha256": file_sha256(lora_path)}
    # A folder holding the default file name loads the same LoRA.
    from_folder = teacher("mj", model=str(sd_folder), lora=str(lora_path.parent), lora_weight_name="", **SMALL)
    same_rows(from_folder.encode(TEXTS[:1])[0], with_lora[0])
    off = teacher("mj", model=str(sd_folder), lora=str(lora_path), lora_scale=0.0, **SMALL)
    same_rows(off.encode(TEXTS[:2]), small_rows[:2])


HUB_RUN = """
import json
from armada.extract.registry import load_teacher
mj = load_teacher("mj", {"mj": {"model": "tiny-org/tiny-sd", "lora": "tiny-org/tiny-lora",
                                "lora_weight_name": "pytorch_lora_weights.safetensors", "steps": 2, "height": 64, "width": 64}})
print(json.dumps({"provenance": mj.provenance(), "row": mj.encode(["a cat on a mat"])[0].tolist()}))
"""


@pytest.mark.slow
def test_hub_ids_load_from_the_hugging_face_cache_and_record_the_commit(sd_folder, lora_path, tmp_path):
    # The hub-id path end to end, offline: a cache laid out as huggingface_hub writes it, in a fresh
    # process because the cache location is read when huggingface_hub is imported.
    commit = "0123456789abcdef0123456789abcdef01234567"
    for repo, files in (("models--tiny-org--tiny-sd", sd_folder), ("models--tiny-org--tiny-lora", lora_path.parent)):
        shutil.copytree(files, tmp_path / repo / "snapshots" / commit)
        (tmp_path / repo / "refs").mkdir()
        (tmp_path / repo / "refs" / "main").write_text(commit)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", HUB_RUN], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    found = result["provenance"]
    assert found["model"] == "tiny-org/tiny-sd" and found["commit"] == commit and "files_sha256" not in found
    assert found["lora_file"]["sha256"] == file_sha256(lora_path)
    local = teacher("mj", model=str(sd_folder), lora=str(lora_path), **SMALL).encode(["a cat on a mat"])[0]
    same_rows(np.array(result["row"], dtype=np.float32), local)


def test_an_unreachable_hub_model_is_a_clear_armada_error():
    with pytest.raises(ArmadaError) as caught:
        teacher()                                             # CompVis/stable-diffusion-v1-4, offline
    message = str(caught.value)
    assert "'CompVis/stable-diffusion-v1-4'" in message and 'model = "/path/to/' in message and "[teachers.sd14]" in message


def test_an_unreachable_hub_lora_is_a_clear_armada_error(sd_folder):
    with pytest.raises(ArmadaError) as caught:
        teacher("mj", model=str(sd_folder), **SMALL)         # prompthero/openjourney-lora, offline
    message = str(caught.value)
    assert "'prompthero/openjourney-lora'" in message and 'lora = "/path/to/openjourneyLora.safetensors"' in message


def test_bad_local_paths_and_sizes_are_armada_errors(sd_folder, tmp_path):
    with pytest.raises(ArmadaError, match="not a diffusers pipeline folder"):
        teacher(model=str(tmp_path / "missing"))
    with pytest.raises(ArmadaError, match="not a diffusers pipeline folder"):
        teacher(model=str(tmp_path))
    with pytest.raises(ArmadaError, match="no such file"):
        teacher("mj", model=str(sd_folder), lora=str(tmp_path / "missing.safetensors"), **SMALL)
    (tmp_path / "lora.bin").write_bytes(b"\x80")
    with pytest.raises(ArmadaError, match="only safetensors"):
        teacher("mj", model=str(sd_folder), lora=str(tmp_path / "lora.bin"), **SMALL)
    with pytest.raises(ArmadaError, match="height = 60 must be a multiple of 8"):
        teacher(model=str(sd_folder), steps=1, height=60)
    with pytest.raises(ArmadaError, match="is not a latent pooling"):
        teacher(model=str(sd_folder), pool="max")


def test_a_pipeline_file_can_define_a_new_diffusers_t2i_teacher(sd_folder, small_rows):
    mine = load_teacher("my-t2i", {"my-t2i": {"kind": "diffusers-t2i", "model": str(sd_folder), **SMALL}})
    assert mine.name == "my-t2i" and mine.kind == "diffusers-t2i"
    same_rows(mine.encode(TEXTS[:1])[0], small_rows[0])
