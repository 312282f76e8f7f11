"""The black-box HTTP teacher against a real server on 127.0.0.1 that injects faults (tests/http_fault_server.py)."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from http_fault_server import FaultServer, Status, image, vector

from armada.errors import ArmadaError, ConfigError
from armada.extract.http import output_dim, retry_after_seconds, shown_url
from armada.extract.registry import load_teacher, resolve
from armada.extract.teacher import NonFiniteVectors

DIM = 8
KEY = "sk-test-7f3c9a1e5b2d4c6f8091-SECRET"
FAST = {"backoff": 0.001, "max_backoff": 0.01, "timeout": 2.0, "max_retries": 2}


@pytest.fixture
def server():
    with FaultServer(dim=DIM, slow_seconds=3.0) as s:
        yield s


def make_teacher(url: str, **settings):
    table = {"kind": "http", "url": url, "dim": DIM, **FAST, **settings}
    return load_teacher("svc", {"svc": table})


def expected(texts: list[str]) -> np.ndarray:
    return np.asarray([vector(t, DIM) for t in texts], np.float32)


def test_answers_come_back_in_text_order_and_each_row_depends_only_on_its_text(server):
    texts = [f"text number {i}" for i in range(7)]
    teacher = make_teacher(server.url(), request_size=2, concurrency=3, timeout=5.0)
    server.faults.append("slow")  # the first request answers last
    server.slow_seconds = 0.3
    first = teacher.encode(texts)
    assert first.dtype == np.float32 and first.shape == (7, DIM)
    np.testing.assert_array_equal(first, expected(texts))
    # four requests of request_size texts, in flight together, so they may arrive in any order
    assert sorted(r.body["texts"] for r in server.requests) == [texts[i:i + 2] for i in range(0, 7, 2)]
    np.testing.assert_array_equal(teacher.encode(texts), first)  # deterministic
    np.testing.assert_array_equal(teacher.encode(texts[3:5][::-1]), first[[4, 3]])  # no batch or position effect


def test_hard_texts_reach_the_service_intact(server):
    texts = ["naïve café — 東京 🚀", "tab\there\x00nul\x1bescape\nnewline", "long " * 20000, '"quotes" \\ backslash']
    out = make_teacher(server.url(), request_size=4).encode(texts)
    assert server.requests[0].body["texts"] == texts
    np.testing.assert_array_equal(out, expected(texts))


def test_no_texts_no_request(server):
    out = make_teacher(server.url()).encode([])
    assert out.shape == (0, DIM) and out.dtype == np.float32 and server.requests == []


def test_server_errors_then_success_are_retried_within_the_bound(server):
    server.faults.extend([Status(500, "oops"), Status(502), Status(503)])
    out = make_teacher(server.url(), max_retries=3).encode(["a", "b"])
    np.testing.assert_array_equal(out, expected(["a", "b"]))
    assert len(server.requests) == 4


PASSING_FAULTS = {
    "500": (Status(500, "internal error"), "HTTP 500: 'internal error'"),
    "429 without Retry-After": (Status(429, "slow down"), "HTTP 429"),
    "timeout": ("slow", "no complete answer within timeout = 0.3 s"),
    "dropped connection": ("drop", "the connection failed (ServerDisconnectedError"),
    "malformed JSON": ("not-json", "the answer is not JSON"),
    "JSON without vectors": (Status(200, '{"embeddings": []}'), 'the answer has no "vectors" list'),
    "null in a vector": (Status(200, '{"vectors": [[1.0, null, 2.0, 0, 0, 0, 0, 0]]}'), "vector 0 is not a list of numbers"),
    "wrong count": ("wrong-count", "0 vectors for 1 texts"),
    "wrong dimension": ("wrong-dim", f"vector 0 has {DIM + 1} values, but dim = {DIM} (if {DIM + 1} is the service's size, set dim = {DIM + 1})"),
}


@pytest.mark.parametrize("fault", PASSING_FAULTS.values(), ids=PASSING_FAULTS.keys())
def test_a_passing_fault_is_retried_and_then_succeeds(server, fault):
    server.faults.append(fault[0])
    out = make_teacher(server.url(), timeout=0.3).encode(["only"])
    np.testing.assert_array_equal(out, expected(["only"]))
    assert len(server.requests) == 2


@pytest.mark.parametrize("fault", PASSING_FAULTS.values(), ids=PASSING_FAULTS.keys())
def test_a_lasting_fault_fails_clearly_after_exactly_max_retries_plus_one_attempts(server, fault):
    teacher = make_teacher(server.url(), timeout=0.3, max_retries=2)
    server.faults.extend([fault[0]] * 3)
    with pytest.raises(ArmadaError) as failure:
        teacher.encode(["only"])
    message = str(failure.value)
    assert len(server.requests) == 3
    assert f"POST {server.url()} (armada) failed 3 times (max_retries = 2)" in message
    assert fault[1] in message


def test_a_batch_with_one_lasting_failure_returns_nothing(server):
    teacher = make_teacher(server.url(), request_size=1, concurrency=1, max_retries=1)
    server.faults.extend(["ok", Status(500, "down"), Status(500, "down")])  # "a" succeeds, "b" never does
    with pytest.raises(ArmadaError, match="failed 2 times"):
        teacher.encode(["a", "b"])
    assert len(server.requests) == 3


def test_retry_after_in_seconds_is_honoured(server):
    server.faults.append(Status(429, "rate limited", {"Retry-After": "1"}))
    out = make_teacher(server.url(), max_backoff=5.0).encode(["a"])
    np.testing.assert_array_equal(out, expected(["a"]))
    refused, retried = server.requests
    assert retried.arrived - refused.answered >= 1.0


def test_retry_after_as_an_http_date_is_honoured(server):
    not_before = math.floor(time.time()) + 1  # HTTP dates have whole seconds: a wait of at most 1 s
    server.faults.append(Status(429, "", {"Retry-After": email.utils.formatdate(not_before, usegmt=True)}))
    make_teacher(server.url(), max_backoff=5.0).encode(["a"])
    assert len(server.requests) == 2 and server.requests[1].wall_clock >= not_before


def test_retry_after_is_also_honoured_on_503(server):
    server.faults.append(Status(503, "maintenance", {"Retry-After": "1"}))
    make_teacher(server.url(), max_backoff=5.0).encode(["a"])
    assert server.requests[1].arrived - server.requests[0].answered >= 1.0


def test_retry_delays_use_full_jitter_and_are_capped(server):
    teacher = make_teacher(server.url(), backoff=0.5, max_backoff=3.0)
    for retry, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (40, 3.0), (10_000, 3.0)):
        delays = [teacher._delay(retry, None) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # drawn across the range, not a fixed value
    assert teacher._delay(1, 3600.0) == 3.0  # a Retry-After is capped at max_backoff
    assert teacher._delay(1, 0.25) == 0.25


def test_retry_after_header_forms():
    now = 1_700_000_000.0
    assert retry_after_seconds("2", now) == 2.0
    assert retry_after_seconds(" 0 ", now) == 0.0
    assert retry_after_seconds(email.utils.formatdate(now + 30, usegmt=True), now) == 30.0
    assert retry_after_seconds(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0  # already past
    assert retry_after_seconds("-5", now) == 0.0
    for unusable in (None, "", "soon", "nan", "inf"):
        assert retry_after_seconds(unusable, now) is None


def test_client_errors_are_not_retried_and_show_a_short_excerpt(server):
    server.faults.append(Status(400, '{"error": "unknown field \\"texts\\"" }' + " padding" * 100))
    with pytest.raises(ArmadaError) as failure:
        make_teacher(server.url()).encode(["a"])
    message = str(failure.value)
    assert len(server.requests) == 1
    assert "was refused: HTTP 400: '{\"error\": \"unknown field" in message and "Not retried" in message
    assert "padding " * 40 not in message  # cut to a short excerpt


def test_nan_and_inf_are_not_retried_and_name_the_positions(server):
    teacher = make_teacher(server.url(), request_size=2, concurrency=1)
    server.faults.extend(["ok", "nan"])  # the second request holds texts 2 and 3; NaN in its first vector
    with pytest.raises(NonFiniteVectors) as failure:
        teacher.encode(["a", "b", "c", "d"])
    assert failure.value.positions == [2] and "positions 2 of this batch" in str(failure.value)
    assert len(server.requests) == 2

    server.faults.append(Status(200, json.dumps({"vectors": [[1e39] + [0.0] * (DIM - 1)]})))  # beyond float32
    with pytest.raises(NonFiniteVectors) as failure:
        teacher.encode(["e"])
    assert failure.value.positions == [0] and len(server.requests) == 3


def test_at_most_concurrency_requests_are_in_flight(server):
    server.gather = 3          # the first requests wait until 3 are in flight together (so the limit is reached)
    server.hold_seconds = 0.05  # and each answer takes a while, so that a 4th in flight would be seen
    out = make_teacher(server.url(), request_size=1, concurrency=3).encode([f"t{i}" for i in range(12)])
    np.testing.assert_array_equal(out, expected([f"t{i}" for i in range(12)]))
    assert len(server.requests) == 12 and server.max_in_flight == 3


def test_openai_embeddings_are_ordered_by_index(server):
    texts = ["one", "two", "three", "four", "five"]
    teacher = make_teacher(server.url("/v1/embeddings"), protocol="openai-embeddings", model="text-embedding-3-small",
                           extra={"dimensions": DIM}, request_size=3)
    out = teacher.encode(texts)  # the server answers each request's items in reverse order
    np.testing.assert_array_equal(out, expected(texts))
    bodies = sorted((r.body for r in server.requests), key=lambda body: -len(body["input"]))  # in flight together
    assert bodies == [{"dimensions": DIM, "model": "text-embedding-3-small", "input": texts[:3]},
                      {"dimensions": DIM, "model": "text-embedding-3-small", "input": texts[3:]}]
    assert teacher.provenance()["extra"] == {"dimensions": DIM}


def test_openai_embeddings_with_duplicate_indices_are_malformed(server):
    data = [{"index": 0, "embedding": vector("x", DIM)}, {"index": 0, "embedding": vector("y", DIM)}]
    server.faults.append(Status(200, json.dumps({"data": data})))
    teacher = make_teacher(server.url("/v1/embeddings"), protocol="openai-embeddings", model="m", max_retries=0)
    with pytest.raises(ArmadaError, match='the "index" fields are not 0 to 1, each once'):
        teacher.encode(["x", "y"])


def test_the_api_key_is_sent_and_never_shown(server, monkeypatch, caplog):
    monkeypatch.setenv("ARMADA_TEST_KEY", KEY)
    teacher = make_teacher(server.url(), api_key_env="ARMADA_TEST_KEY", timeout=0.3, max_retries=1)
    teacher.encode(["a"])
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"

    messages = []
    caplog.set_level(logging.WARNING, logger="armada.extract.http")
    echoes = [Status(400, "bad request from {auth}"), Status(401, "{auth}" * 50), Status(500, "{auth}"),
              Status(429, "{auth}", {"Retry-After": "0"}), Status(200, "not json {auth}"), "slow", "drop",
              "wrong-dim", "nan"]
    for fault in echoes:
        server.faults.extend([fault, fault])
        with pytest.raises(ArmadaError) as failure:
            teacher.encode(["a"])
        messages.append(str(failure.value))
        server.faults.clear()
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    closed_port = refused.getsockname()[1]
    refused.close()
    with pytest.raises(ArmadaError) as failure:
        make_teacher(f"http://127.0.0.1:{closed_port}/encode", api_key_env="ARMADA_TEST_KEY", max_retries=1).encode(["a"])
    messages.append(str(failure.value))

    assert "bad request from Bearer ***" in messages[0]  # the echo reached the message, redacted
    shown = "\n".join([*messages, caplog.text, repr(teacher), json.dumps(teacher.provenance())])
    assert KEY not in shown and KEY[:12] not in shown and KEY[-12:] not in shown


def test_an_unset_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("ARMADA_MISSING_KEY", raising=False)
    with pytest.raises(ArmadaError, match="the environment variable ARMADA_MISSING_KEY is not set"):
        make_teacher("http://127.0.0.1:9/encode", api_key_env="ARMADA_MISSING_KEY")


def test_credentials_in_the_url_are_used_and_never_shown(server):
    port = server.url().split(":")[2].split("/")[0]
    url = f"http://robot:hunter2pass@127.0.0.1:{port}/encode?api_key=QUERYSECRET99&version=2"
    teacher = make_teacher(url, max_retries=0)
    teacher.encode(["a"])
    assert server.requests[0].headers["Authorization"].startswith("Basic ")
    assert teacher.provenance()["url"] == f"http://127.0.0.1:{port}/encode?api_key=***&version=2"
    server.faults.append(Status(500, "hunter2pass QUERYSECRET99"))
    with pytest.raises(ArmadaError) as failure:
        teacher.encode(["a"])
    assert "hunter2pass" not in str(failure.value) and "QUERYSECRET99" not in str(failure.value)
    assert shown_url("https://h.example/v1?sig=abc%2Fdef&x=1") == "https://h.example/v1?sig=***&x=1"


@pytest.mark.parametrize("settings, complaint", [
    ({"url": ""}, "url = \"\" is not an http(s) address"),
    ({"url": "ftp://user:pw@host/x"}, "url = ftp://host/x is not an http(s) address"),
    ({"dim": 0}, "dim is not set"),
    ({"protocol": "openai-embeddings"}, "model is not set"),
    ({"extra": {"texts": ["x"]}}, "extra sets ['texts']"),
    ({"protocol": "openai-images", "model": "m", "generated_size": "big"}, "generated_size = 'big'"),
    ({"url": "http://u:p@127.0.0.1/x", "api_key_env": "HOME"}, "both api_key_env and credentials in the url"),
])
def test_impossible_settings_are_config_errors(settings, complaint):
    with pytest.raises(ConfigError) as failure:
        make_teacher(**{"url": "http://127.0.0.1:9/encode", **settings})
    assert complaint in str(failure.value) and "[teachers.svc]" in str(failure.value)


# --- openai-images ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_image_model(tmp_path_factory):
    """A diffusers model folder holding only a tiny VAE (2 blocks: 32 px → 4×16×16 latent)."""
    from diffusers import AutoencoderKL

    import torch

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-image-model")
    AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
                  layers_per_block=1, sample_size=32).save_pretrained(folder / "vae")
    return folder


def images_teacher(server, model_folder, **settings):
    settings = {"dim": 0, "image_encoder": str(model_folder), "image_size": 32, "generated_size": "48x40", **settings}
    return make_teacher(server.url("/v1/images/generations"), protocol="openai-images", model="dall-e-2", **settings)


def test_openai_images_are_encoded_by_the_local_vae(server, tiny_image_model):
    import torch
    from diffusers import AutoencoderKL
    from PIL import Image

    texts = ["a red fox in snow", "a lighthouse at dusk", "a bowl of soup"]
    teacher = images_teacher(server, tiny_image_model, pool="channel-mean")
    assert teacher.dim == 16 * 16
    out = teacher.encode(texts)
    assert out.shape == (3, 256) and out.dtype == np.float32 and np.isfinite(out).all()
    assert len(server.requests) == 3  # one prompt per request
    assert {r.body["prompt"] for r in server.requests} == set(texts)
    assert all(r.body == {"model": "dall-e-2", "prompt": r.body["prompt"], "n": 1, "size": "48x40",
                          "response_format": "b64_json"} for r in server.requests)

    vae = AutoencoderKL.from_pretrained(tiny_image_model, subfolder="vae")
    pixels = np.array(image(texts[1], 48, 40).resize((32, 32), Image.Resampling.BICUBIC))
    with torch.inference_mode():
        latent = vae.encode(torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 127.5 - 1).latent_dist.mean
    np.testing.assert_allclose(out[1], (latent * vae.config.scaling_factor).mean(dim=1).flatten().numpy(),
                               rtol=1e-5, atol=1e-6)

    np.testing.assert_array_equal(teacher.encode(texts[::-1]), out[::-1])  # deterministic, order-free
    record = teacher.provenance()
    assert record["image_encoder"] == str(tiny_image_model) and len(record["image_encoder_weights_sha256"]) == 64
    assert (record["image_size"], record["generated_size"], record["pool"]) == (32, "48x40", "channel-mean")
    assert record["deterministic"] == "unknown"


def test_openai_images_retry_undecodable_images_and_dropped_connections(server, tiny_image_model):
    teacher = images_teacher(server, tiny_image_model, pool="avgpool:2", max_retries=3)
    assert teacher.dim == 4 * 2 * 2
    server.faults.extend(["bad-image", "drop", Status(200, '{"data": []}')])
    out = teacher.encode(["a kite"])
    assert out.shape == (1, 16) and len(server.requests) == 4


def test_openai_images_dim_follows_from_image_size_and_pool(server, tiny_image_model):
    with pytest.raises(ConfigError, match="dim = 100, but image_size = 32 and pool = 'flatten' give 1024"):
        images_teacher(server, tiny_image_model, pool="flatten", dim=100)
    with pytest.raises(ConfigError, match="pool = 'max' is not a latent pooling"):
        images_teacher(server, tiny_image_model, pool="max")


def test_output_dim_is_known_without_a_request_or_a_model(server, tiny_image_model):
    for pool in ("channel-mean", "flatten", "avgpool:4"):
        teacher = images_teacher(server, tiny_image_model, pool=pool)
        assert output_dim(teacher.settings) == teacher.dim
    assert output_dim(resolve("img", {"img": {"kind": "http", "protocol": "openai-images"}})[1]) == 1024  # SD v1-4, 256 px
    assert output_dim(resolve("svc", {"svc": {"kind": "http", "dim": 1536}})[1]) == 1536
    with pytest.raises(ConfigError, match="dim is not set"):
        output_dim(resolve("http")[1])
    assert server.requests == []


def test_an_unreachable_image_encoder_says_how_to_use_a_local_folder(server):
    with pytest.raises(ArmadaError) as failure:
        make_teacher(server.url("/v1/images/generations"), protocol="openai-images", model="m", dim=0,
                     image_encoder="no-such-org/no-such-model")
    assert "'no-such-org/no-such-model'" in str(failure.value)
    assert 'image_encoder = "/path/to/folder"' in str(failure.value)


# --- with the extraction runner ---------------------------------------------------------------------

def test_a_lasting_failure_stops_extraction_with_no_partial_shard_done_and_a_rerun_resumes(server, tmp_path, monkeypatch):
    from armada.cache_schema import CacheReader, CacheWriter
    from armada.extract.job import ExtractJob
    from armada.extract.runner import run_extract
    from armada.tasks import sha256_text

    texts = [f"sentence {i}" for i in range(12)]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"id": f"t{i}", "text": t, "label": "x"}) + "\n" for i, t in enumerate(texts)))
    monkeypatch.setenv("ARMADA_TEST_KEY", KEY)
    table = {"kind": "http", "url": server.url(), "dim": DIM, **FAST, "max_retries": 1, "request_size": 4, "concurrency": 1,
             "api_key_env": "ARMADA_TEST_KEY"}
    job = ExtractJob(teacher="svc", task="file:toy", out=str(tmp_path / "cache.zarr"), splits=("train",), shard_rows=4,
                     batch_size=4, dtype="float32", teacher_tables={"svc": table},
                     file_tasks={"toy": {"train": str(train), "text_fields": ["text"], "labels": ["x"], "id_field": "id"}})

    server.faults.extend(["ok", "ok", Status(500, "down"), Status(500, "down")])  # the third shard never gets an answer
    with pytest.raises(ArmadaError, match=r"failed 2 times \(max_retries = 1\)"):
        run_extract(job, show_progress=False)
    assert len(server.requests) == 4
    writer = CacheWriter.create(job.out, CacheReader(job.out).manifest)
    assert [writer.is_done("train", i) for i in range(3)] == [True, True, False]

    summary = run_extract(job, show_progress=False)  # the service is back: only the third shard is asked for
    assert summary.shards_already_done == 2 and len(server.requests) == 5
    features = CacheReader(job.out).load("train", [f"t{i}" for i in range(12)], [sha256_text(t) for t in texts])
    np.testing.assert_array_equal(features[np.arange(12)], expected(texts))
    assert CacheReader(job.out).manifest.teacher.provenance["url"] == server.url()  # and the key is in no file:
    assert not [path for path in Path(job.out).rglob("*") if path.is_file() and KEY.encode() in path.read_bytes()]
