"""Publishing a cache to the Hugging Face Hub: exported (hf_export.py), then pushed with huggingface_hub's
upload_folder as one commit. Apart from hf_hub.py, which the reader needs to download, so that reading an export
never imports what writes one."""

from __future__ import annotations

import tempfile
from pathlib import Path

from armada.cache_schema.hf_export import export_hf
from armada.cache_schema.hf_hub import check_repo
from armada.cache_schema.hf_reader import PREFIX, ExportReader
from armada.errors import ArmadaError


def publish(source: str, repo_id: str, *, labelled: dict | None = None, license: str | None = None,
            private: bool = False, revision: str | None = None, command: str = "") -> str:
    """Push a cache (exported into a temporary folder first) or an export (`hf:DIR`, checked first) to the Hub
    dataset `repo_id`, one commit; files the export does not have are removed from its data/ folder. Returns the
    commit's URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    check_repo(repo_id)
    api = HfApi()
    with tempfile.TemporaryDirectory(prefix="armada-publish-") as scratch:
        if source.startswith(PREFIX):
            with ExportReader(source[len(PREFIX):], source) as export:
                folder = export.folder
        else:
            folder = export_hf(source, Path(scratch) / "export", labelled=labelled, license=license, command=command,
                               load_as=repo_id)
        try:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            commit = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder, revision=revision,
                                       commit_message=f"armada cache publish: {repo_id}",
                                       delete_patterns=["data/*"])
        except HfHubHTTPError as e:
            raise ArmadaError(f"cannot publish to the Hub dataset {repo_id}: {e} (a token with write access comes from "
                              "HF_TOKEN or `hf auth login`)") from None
    return commit.commit_url
