"""Sharing caches: a packed file, an http(s) URL, HDF5, and the `armada cache` commands."""

from __future__ import annotations

import functools
import http.server
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from armada.cache_schema import CacheReader, CacheWriter
from armada.cache_schema.share import export_hdf5, import_hdf5, pack
from armada.cache_schema.verify import verify
from armada.cli import app
from armada.errors import ArmadaError
from test_cache_fixtures import build_cache, manifest_for, rows_for, store_bytes

ARMADA = str(Path(sys.executable).with_name("armada"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _RangeHandler(_QuietHandler):
    """Answers `Range: bytes=a-b` with 206 and just those bytes, as nginx or an object store would."""

    partial_replies = 0

    def send_head(self):
        spec = self.headers.get("Range", "")
        path = Path(self.translate_path(self.path))
        if not spec.startswith("bytes=") or not path.is_file():
            return super().send_head()
        start, end = (int(v) for v in spec[len("bytes="):].split("-"))
        data = path.read_bytes()[start:end + 1]
        type(self).partial_replies += 1
        self.send_response(206)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)


def _server(directory: Path, handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def serve(tmp_path):
    """Real read-only http servers on 127.0.0.1 for tmp_path: without Range support (like python's) and with."""
    servers = [_server(tmp_path, _QuietHandler), _server(tmp_path, _RangeHandler)]
    yield [f"http://127.0.0.1:{server.server_port}" for server in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def _everything(location, splits, budget: int) -> dict[str, np.ndarray]:
    with CacheReader(location, memory_budget=budget) as reader:
        out = {}
        for name, r in splits.items():
            feats = reader.load(name, r.ids[::-1], r.hashes[::-1])
            assert feats.in_memory == (budget > 0)
            out[name] = feats[np.arange(len(feats))]
        return out


def test_packed_and_served_caches_read_exactly_like_the_directory(tmp_path, serve):
    cache = tmp_path / "c.zarr"
    manifest, splits = build_cache(cache, rows=10)
    packed = pack(cache, tmp_path / "c.zarr.zip")
    expected = {name: r.features[::-1].astype(np.float16).astype(np.float32) for name, r in splits.items()}
    for location in (cache, packed, *(f"{url}/c.zarr" for url in serve)):
        with CacheReader(location) as reader:
            assert reader.manifest == manifest
            assert reader.status("train").complete
        for budget in (2**30, 0):
            got = _everything(location, splits, budget)
            for name in splits:
                np.testing.assert_array_equal(got[name], expected[name])
        assert verify(location).clean
    assert _RangeHandler.partial_replies > 0                   # single chunks were fetched by range
    info = CliRunner().invoke(app, ["cache", "info", f"{serve[0]}/c.zarr"])
    assert info.exit_code == 0 and "unknown (served over http)" in info.output


def test_features_read_on_demand_keep_working_after_the_reader_is_closed(tmp_path):
    _, splits = build_cache(tmp_path / "c.zarr")
    r = splits["train"]
    for location in (tmp_path / "c.zarr", pack(tmp_path / "c.zarr", tmp_path / "c.zip")):
        with CacheReader(location, memory_budget=0) as reader:
            feats = reader.load("train", r.ids, r.hashes)
        np.testing.assert_array_equal(feats[np.arange(10)], r.features.astype(np.float16).astype(np.float32))


def test_zarr_reads_a_packed_cache_as_it_is(tmp_path):
    _, splits = build_cache(tmp_path / "c.zarr")
    packed = pack(tmp_path / "c.zarr", tmp_path / "c.zip")
    group = zarr.open_group(zarr.storage.ZipStore(packed, mode="r"), mode="r")
    np.testing.assert_array_equal(group["train/features"][:], splits["train"].features.astype(np.float16))
    assert group["validation/example_id"][:].tolist() == splits["validation"].ids


def test_pack_gives_the_same_bytes_twice_and_refuses_unfinished_caches_and_existing_files(tmp_path):
    _, splits = build_cache(tmp_path / "c.zarr")
    first = pack(tmp_path / "c.zarr", tmp_path / "a.zip")
    assert pack(tmp_path / "c.zarr", tmp_path / "b.zip").read_bytes() == first.read_bytes()
    with pytest.raises(ArmadaError, match="already exists"):
        pack(tmp_path / "c.zarr", first)

    r = rows_for(10, 8)
    writer = CacheWriter.create(tmp_path / "part.zarr", manifest_for({"train": r}, 8))
    writer.write_shard("train", 0, r.features[:4], r.ids[:4], r.hashes[:4])
    with pytest.raises(ArmadaError, match=r"it has 2 faults \(first: train shard 1 \(rows 4–7\): unfinished"):
        pack(tmp_path / "part.zarr", tmp_path / "part.zip")
    assert not (tmp_path / "part.zip").exists() and not list(tmp_path.glob(".part.zip*"))


def test_hdf5_export_then_import_gives_back_the_very_same_cache(tmp_path):
    _, splits = build_cache(tmp_path / "c.zarr")
    exported = export_hdf5(tmp_path / "c.zarr", tmp_path / "c.h5")
    with h5py.File(exported, "r") as f:
        np.testing.assert_array_equal(f["train/features"][...], splits["train"].features.astype(np.float16))
        assert f["train/example_id"].asstr()[...].tolist() == splits["train"].ids
        assert json.loads(f.attrs["armada_cache_manifest"])["teacher"]["name"] == "toy"
    import_hdf5(exported, tmp_path / "back.zarr")
    assert store_bytes(tmp_path / "back.zarr") == store_bytes(tmp_path / "c.zarr")


def test_import_refuses_files_that_do_not_hold_what_their_manifest_says(tmp_path):
    build_cache(tmp_path / "c.zarr")
    exported = export_hdf5(tmp_path / "c.zarr", tmp_path / "c.h5")
    with h5py.File(exported, "r+") as f:
        ids = f["train/example_id"].asstr()[...].tolist()
        del f["train/example_id"]
        f.create_dataset("train/example_id", data=ids[::-1], dtype=h5py.string_dtype())
    with pytest.raises(ArmadaError, match="example ids of train differ"):
        import_hdf5(exported, tmp_path / "back.zarr")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ArmadaError, match="not written by `armada cache export`"):
        import_hdf5(tmp_path / "plain.h5", tmp_path / "other.zarr")
    assert not (tmp_path / "back.zarr").exists() and not (tmp_path / "other.zarr").exists()


# --- the commands ----------------------------------------------------------------------------------

def test_cache_info_summarises_a_cache_as_text_and_json(tmp_path):
    manifest, _ = build_cache(tmp_path / "c.zarr", rows=10)
    runner = CliRunner()
    text = runner.invoke(app, ["cache", "info", str(tmp_path / "c.zarr")])
    assert text.exit_code == 0, text.output
    assert "toy-task (tests)" in text.output and "toy (test), 8 values per example" in text.output
    assert "float16, shards of 4 rows, chunks of 2 rows" in text.output
    assert "train" in text.output and "10 rows  shards 3/3  complete" in text.output
    assert manifest.config_hash in text.output
    data = json.loads(runner.invoke(app, ["cache", "info", str(tmp_path / "c.zarr"), "--json"]).output)
    assert data["splits"]["validation"] == {"rows": 5, "shards_done": 2, "shards_total": 2, "complete": True,
                                            "unfinished_shards": []}
    assert data["manifest"]["config_hash"] == manifest.config_hash and data["size_bytes"] > 0


def test_cache_commands_pack_export_and_import(tmp_path):
    build_cache(tmp_path / "c.zarr")
    runner = CliRunner()
    for command, source, out in (("pack", "c.zarr", "c.zip"), ("export", "c.zarr", "c.h5"), ("import", "c.h5", "back.zarr")):
        result = runner.invoke(app, ["cache", command, str(tmp_path / source), str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    assert store_bytes(tmp_path / "back.zarr") == store_bytes(tmp_path / "c.zarr")
    assert "all 5 shards verified" in runner.invoke(app, ["cache", "verify", str(tmp_path / "c.zip")]).output


def test_cache_verify_exit_codes_and_errors_as_a_user_sees_them(tmp_path):
    build_cache(tmp_path / "c.zarr")
    clean = subprocess.run([ARMADA, "cache", "verify", str(tmp_path / "c.zarr")], capture_output=True, text=True)
    assert clean.returncode == 0 and "no faults" in clean.stdout
    (tmp_path / "c.zarr/validation/features/c/0/0").unlink()
    (tmp_path / "c.zarr/train/features/done/2.json").unlink()
    faulty = subprocess.run([ARMADA, "cache", "verify", str(tmp_path / "c.zarr")], capture_output=True, text=True)
    assert faulty.returncode == 1
    assert "2 faults in 5 shards" in faulty.stdout
    assert "train shard 2 (rows 8–9): unfinished" in faulty.stdout
    assert "validation shard 0 (rows 0–3): missing" in faulty.stdout
    missing = subprocess.run([ARMADA, "cache", "info", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("error: no cache at") and "Traceback" not in missing.stderr
