"""An exported cache on the Hugging Face Hub: its repository names, and downloaded with huggingface_hub's
snapshot_download (hf_publish.py publishes one). The endpoint, the token and the cache folder are huggingface_hub's own settings (HF_ENDPOINT,
HF_TOKEN or `hf auth login`, HF_HOME); armada never reads, writes or logs the token itself."""

from __future__ import annotations

import re
from pathlib import Path

from armada.cache_schema.hf_layout import CARD, INFO
from armada.errors import ArmadaError

_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def check_repo(repo_id: str) -> str:
    if not _REPO.fullmatch(repo_id) or ".." in repo_id:
        raise ArmadaError(f"{repo_id!r} is not a Hub dataset name: give org/name (letters, digits, '.', '_', '-')")
    return repo_id


def download(target: str) -> tuple[Path, str]:
    """The folder of `org/name[@revision]` in huggingface_hub's cache (the export's files only), and
    `org/name@<commit>` it resolved to."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    repo_id, _, revision = target.partition("@")
    check_repo(repo_id)
    try:
        folder = Path(snapshot_download(repo_id, repo_type="dataset", revision=revision or None,
                                        allow_patterns=[CARD, INFO, "data/*"]))
    except RevisionNotFoundError:
        raise ArmadaError(f"the Hub dataset {repo_id} has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        raise ArmadaError(f"no Hub dataset {repo_id} (or it is private and no token was given: set HF_TOKEN or run "
                          "`hf auth login`); a local export is read as hf:DIR") from None
    except LocalEntryNotFoundError as e:
        raise ArmadaError(f"cannot download the Hub dataset {target}: {e.args[0].splitlines()[0]} (offline, and not in "
                          "huggingface_hub's cache)") from None
    except HfHubHTTPError as e:
        raise ArmadaError(f"cannot download the Hub dataset {target}: {e}") from None
    return folder, f"{repo_id}@{folder.name}"       # a snapshot folder is named by its commit
