"""The text-to-video teacher (modelscope-t2v) on a tiny TextToVideoSDPipeline built from configs, saved to a
folder and loaded back by the teacher through from_pretrained, as a hub id would be."""

import json

import numpy as np
import pytest
from tiny_diffusers import CLIP_MAX_TOKENS, same_rows, save_tiny_stable_diffusion, save_tiny_text_to_video

from armada.errors import ArmadaError
from armada.extract.diffusion import text_generators
from armada.extract.pooling import parse_pool, pool_latents
from armada.extract.registry import load_teacher, resolve
from armada.files import file_sha256
from armada.extract.video import VideoTeacher, output_dim

TEXTS = ["a cat on a mat", "the dog and the cat", "naïve café 猫 😀 \x00\x07\tend", "the " * 400]
SMALL = {"steps": 2, "frames": 3, "height": 64, "width": 64}


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    return save_tiny_text_to_video(tmp_path_factory.mktemp("tiny-t2v"))


def teacher(name="modelscope-t2v", **settings):
    return load_teacher(name, {name: settings})


@pytest.fixture(scope="module")
def small(video_folder):
    return teacher(model=str(video_folder), **SMALL)


@pytest.fixture(scope="module")
def small_rows(small):
    return small.encode(TEXTS)


def test_the_default_size_gives_a_4x32x32_first_frame_pooled_to_1024(video_folder):
    t2v = teacher(model=str(video_folder), steps=1, frames=2)     # default 256×256 px and channel-mean
    assert isinstance(t2v, VideoTeacher) and t2v.name == "modelscope-t2v" and t2v.kind == "text-to-video"
    assert t2v.latent_shape == (4, 32, 32) and t2v.dim == 1024
    rows = t2v.encode(TEXTS[:1])
    assert rows.shape == (1, 1024) and rows.dtype == np.float32 and np.isfinite(rows).all()


def test_output_dim_is_known_without_loading_the_model(video_folder, small):
    assert output_dim(resolve("modelscope-t2v", {"modelscope-t2v": {"model": str(video_folder), **SMALL}})[1]) == small.dim
    assert output_dim(resolve("modelscope-t2v")[1]) == 1024  # the hub model, not on this machine: 4×32×32 at 256 px


def test_encoding_is_deterministic_and_handles_long_and_non_ascii_texts(small, small_rows):
    assert small_rows.shape == (len(TEXTS), small.dim) == (4, 64) and small_rows.dtype == np.float32
    assert np.isfinite(small_rows).all()
    same_rows(small.encode(TEXTS), small_rows)
    assert len({row.tobytes() for row in small_rows}) == len(TEXTS)


@pytest.mark.numerics
def test_a_row_is_the_same_alone_or_in_any_batch(small, small_rows):
    # Bit-identical on this CPU, as for the image teacher: one generator per row, and batched
    # arithmetic that reduces each row in the same order.
    for i in (0, 3):
        same_rows(small.encode([TEXTS[i]])[0], small_rows[i])
    reordered = small.encode([TEXTS[2], "another text entirely", TEXTS[1]])
    same_rows(reordered[0], small_rows[2])
    same_rows(reordered[2], small_rows[1])


def test_the_row_is_the_first_frame_of_the_generated_latent(small, small_rows):
    video = small.pipe(TEXTS[:2], height=64, width=64, num_frames=3, num_inference_steps=2, guidance_scale=7.5,
                       generator=text_generators(TEXTS[:2], 0), output_type="latent").frames
    assert tuple(video.shape) == (2, 4, 3, 8, 8)
    frames = video.float().numpy()
    same_rows(small_rows[:2], pool_latents(frames[:, :, 0], parse_pool("channel-mean")))
    assert not np.allclose(small_rows[:2], pool_latents(frames[:, :, 1], parse_pool("channel-mean")))


def test_pool_and_frames_are_settings(video_folder, small_rows):
    flat = teacher(model=str(video_folder), pool="flatten", **SMALL)
    assert flat.dim == 4 * 8 * 8
    rows = flat.encode(TEXTS[:1])
    same_rows(rows.reshape(1, 4, 64).mean(axis=1), small_rows[:1])
    more_frames = teacher(model=str(video_folder), **{**SMALL, "frames": 4}).encode(TEXTS[:1])
    assert not np.allclose(more_frames, small_rows[:1])       # temporal layers mix the frames


def test_provenance_names_the_weights_and_every_setting(small, video_folder):
    found = small.provenance()
    json.dumps(found)
    assert found["model"] == str(video_folder) and found["family"] == "text-to-video"
    unet = "unet/diffusion_pytorch_model.safetensors"
    assert found["files_sha256"][unet] == file_sha256(video_folder / unet)
    assert found["pipeline"] == "TextToVideoSDPipeline" and found["scheduler"] == "DDIMScheduler"
    assert found["text_max_tokens"] == {"tokenizer": CLIP_MAX_TOKENS}
    assert (found["dtype"], found["device"], found["pool"]) == ("float32", "cpu", "channel-mean")
    assert (found["frames"], found["steps"], found["guidance"], found["seed"]) == (3, 2, 7.5, 0)
    assert (found["latent_shape"], found["dim"]) == ([4, 8, 8], 64)


def test_an_unreachable_hub_model_is_a_clear_armada_error():
    with pytest.raises(ArmadaError) as caught:
        teacher()                                             # damo-vilab/text-to-video-ms-1.7b, offline
    message = str(caught.value)
    assert "'damo-vilab/text-to-video-ms-1.7b'" in message and 'model = "/path/to/' in message
    assert "[teachers.modelscope-t2v]" in message


def test_a_model_of_the_other_kind_is_an_armada_error(video_folder, tmp_path):
    image_folder = save_tiny_stable_diffusion(tmp_path)
    with pytest.raises(ArmadaError, match="not a text-to-video model"):
        teacher(model=str(image_folder), **SMALL)
    with pytest.raises(ArmadaError, match="cannot be loaded by AutoPipelineForText2Image"):
        load_teacher("sd14", {"sd14": {"model": str(video_folder)}})


def test_bad_settings_are_armada_errors(video_folder):
    with pytest.raises(ArmadaError, match="width = 100 must be a multiple of 8"):
        teacher(model=str(video_folder), width=100)
    with pytest.raises(ArmadaError, match="is not a latent pooling"):
        teacher(model=str(video_folder), pool="avgpool:two")
