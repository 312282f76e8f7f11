"""Caches in object storage: `s3://bucket/prefix/NAME.zarr` (and gs://, az://, which obstore gives as well).

obstore was chosen by measurement against a loopback SeaweedFS server, our shard layout (4 MiB
shard objects): reading shards with obstore under this code ran at 100 MiB/s, s3fs at 60, zarr's
ObjectStore at 22 and FsspecStore at 15; writing was the server's pace (8-13 MiB/s) for all four
(bench/s3_clients.py). It also gives the conditional PUT (`If-None-Match: *`, PutMode "create") the
shard claims are built on.

Credentials and the endpoint come from the standard AWS settings: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION and AWS_ENDPOINT_URL in the environment, else
the profile AWS_PROFILE (or "default") in ~/.aws/credentials and ~/.aws/config (static keys,
region and endpoint_url), else obstore's own chain (web identity, ECS, instance metadata) on AWS
itself. No message built here holds a key: errors name the URL and the S3 error code only.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from armada.cache_schema.sources import Source
from armada.errors import ArmadaError

SCHEMES = ("s3://", "gs://", "az://")
# How long one request keeps retrying a server that does not answer before the error is raised.
RETRY_TIMEOUT = timedelta(seconds=30)


def is_url(location) -> bool:
    """Whether a cache location names object storage rather than a local path."""
    return str(location).startswith(SCHEMES)


def join(base: str, name: str) -> str:
    """`name` inside the folder or bucket prefix `base` (a local path or a URL)."""
    return f"{str(base).rstrip('/')}/{name}" if is_url(base) else str(Path(base) / name)


def exists(location) -> bool:
    """Whether a cache (or anything) is at a local path, or a cache's root object under a URL."""
    return Bucket(str(location)).size("zarr.json") is not None if is_url(location) else Path(location).exists()


def refuse_url(location, what: str) -> None:
    """An error naming the URL where only a local path makes sense."""
    if is_url(location):
        raise ArmadaError(f"{location}: {what} must be a local path, not an object-storage URL")


@dataclass(frozen=True)
class Url:
    scheme: str
    bucket: str
    prefix: str                             # the cache's key prefix in the bucket, no slashes at either end

    @classmethod
    def parse(cls, location: str) -> "Url":
        scheme, _, rest = str(location).partition("://")
        bucket, _, prefix = rest.partition("/")
        prefix = prefix.strip("/")
        if not bucket or not prefix or any(part in ("", ".", "..") for part in prefix.split("/")):
            raise ArmadaError(f"{location} is not a cache URL: give {scheme}://BUCKET/PREFIX/NAME.zarr")
        return cls(scheme, bucket, prefix)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}"


def _profile() -> dict[str, str]:
    """The AWS profile's static settings (credentials file, then config file), lower-cased keys."""
    name = os.environ.get("AWS_PROFILE", "default")
    found: dict[str, str] = {}
    files = [(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config"), "default" if name == "default" else f"profile {name}"),
             (os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"), name)]
    for path, section in files:
        parser = configparser.ConfigParser()
        try:
            parser.read(Path(path).expanduser())
        except configparser.Error as e:
            raise ArmadaError(f"cannot read the AWS settings file {path}: {e.__class__.__name__}") from None
        if parser.has_section(section):
            found.update(parser.items(section))
    if "AWS_PROFILE" in os.environ and not found:
        raise ArmadaError(f"AWS_PROFILE={name}, but no profile of that name is in ~/.aws/config or ~/.aws/credentials")
    return found


def s3_settings() -> dict[str, str]:
    """obstore's S3 config from the environment, else the profile; {} leaves it obstore's own chain."""
    profile = {} if "AWS_ACCESS_KEY_ID" in os.environ else _profile()
    settings = {
        "access_key_id": os.environ.get("AWS_ACCESS_KEY_ID") or profile.get("aws_access_key_id"),
        "secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or profile.get("aws_secret_access_key"),
        "session_token": os.environ.get("AWS_SESSION_TOKEN") or profile.get("aws_session_token"),
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or profile.get("region"),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or profile.get("endpoint_url"),
    }
    return {key: value for key, value in settings.items() if value}


class Bucket:
    """The objects under one cache URL, by key relative to it. A missing object reads as None; every
    other failure is an ArmadaError naming the URL and saying what to do."""

    def __init__(self, location: str):
        from obstore.store import from_url

        self.url = Url.parse(location)
        self.location = str(self.url)
        options = {"retry_config": {"max_retries": 5, "retry_timeout": RETRY_TIMEOUT}}
        config = {}
        if self.url.scheme == "s3":
            config = s3_settings()
            endpoint = config.get("endpoint", "")
            if endpoint and ("access_key_id" not in config or "secret_access_key" not in config):
                raise ArmadaError(f"no credentials for {self.location} (endpoint {endpoint}): set AWS_ACCESS_KEY_ID and "
                                  "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile that has them")
            config.setdefault("region", "us-east-1")
            if endpoint.startswith("http://"):
                options["client_options"] = {"allow_http": True}
        try:
            self.store = from_url(self.location, config=config or None, **options)   # the URL's path is the key prefix
        except Exception as e:      # obstore raises its own classes for a bad configuration
            raise self._error(e, "open") from None

    def _error(self, error: Exception, doing: str, key: str = "") -> ArmadaError:
        """The user's error for an obstore failure: the URL, the S3 error code, what to do; never a key."""
        from obstore import exceptions as ox

        where = f"{self.location}/{key}" if key else self.location
        text = str(error)
        code = re.search(r"<Code>(\w+)</Code>", text)
        code = code.group(1) if code else ""
        if code == "NoSuchBucket":
            return ArmadaError(f"the bucket {self.url.bucket!r} of {where} does not exist: create it (or fix the URL), "
                               "then run the same command again")
        if isinstance(error, (ox.PermissionDeniedError, ox.UnauthenticatedError)) or code in (
                "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"):
            return ArmadaError(f"access to {where} was refused ({code or 'forbidden'}): check the credentials "
                               "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and the bucket's permissions")
        reason = code or _short_reason(text)
        return ArmadaError(f"cannot {doing} {where}: {reason}; check AWS_ENDPOINT_URL and that the server is up. "
                           "What was written is kept: run the same command again to resume")

    def _call(self, doing: str, key: str, request):
        """request()'s result; None for an object that does not exist."""
        try:
            return request()
        except FileNotFoundError as e:
            if "NoSuchBucket" in str(e):
                raise self._error(e, doing, key) from None
            return None
        except Exception as e:
            if "<Code>InvalidRange</Code>" in str(e):       # a range from past the object's end: nothing there
                return b""
            raise self._error(e, doing, key) from None

    def get(self, key: str) -> bytes | None:
        import obstore

        return self._call("read", key, lambda: bytes(obstore.get(self.store, key).bytes()))

    def get_range(self, key: str, offset: int, length: int) -> bytes | None:
        import obstore

        return self._call("read", key, lambda: bytes(obstore.get_range(self.store, key, start=offset, length=length)))

    def size(self, key: str) -> int | None:
        import obstore

        return self._call("read", key, lambda: obstore.head(self.store, key)["size"])

    def put(self, key: str, data: bytes) -> None:
        import obstore

        self._call("write", key, lambda: obstore.put(self.store, key, data))

    def create(self, key: str, data: bytes) -> bool:
        """Write the object only if none is there (If-None-Match: *): True if this call made it."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            obstore.put(self.store, key, data, mode="create")
            return True
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as e:
            raise self._error(e, "write", key) from None

    def delete(self, key: str) -> None:
        import obstore

        self._call("delete", key, lambda: obstore.delete(self.store, key))

    def keys(self, under: str = "") -> list[tuple[str, int]]:
        """(key, size) of every object under `under` (a key prefix relative to the cache)."""
        import obstore

        found = self._call("list", under, lambda: [(meta["path"], meta["size"])
                                                   for batch in obstore.list(self.store, prefix=under or None)
                                                   for meta in batch])
        return found or []


def _short_reason(text: str) -> str:
    for phrase in ("Connection refused", "connection refused", "timed out", "Timeout", "dns error", "connection reset",
                   "Connection reset", "error sending request", "incomplete message"):
        if phrase in text:
            return f"the server did not answer ({phrase.lower()})"
    return "the object store failed (" + text.split(":")[0][:80] + ")"


class BucketSource(Source):
    """A cache in object storage, read by key: one GET per object, a ranged GET for the rows of a split
    read on demand."""

    def __init__(self, bucket: Bucket):
        self.bucket, self.location = bucket, bucket.location

    def read(self, key: str) -> bytes | None:
        return self.bucket.get(key)

    def read_range(self, key: str, offset: int, length: int) -> bytes | None:
        return self.bucket.get_range(key, offset, length)

    def size(self) -> int:
        return sum(size for _, size in self.bucket.keys())

    def close(self) -> None:
        """Nothing held open: obstore pools its connections."""
