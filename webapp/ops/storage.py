"""Where import uploads, rejected-row files and export files are kept, so
that any web or worker machine can read what another wrote.

STORAGE_URL names it: a directory (`file:///path` or a plain path; default:
the instance folder, where imports/ and exports/ are written anyway, so on one
box nothing is copied), or S3-compatible object storage (`s3://bucket/prefix`,
with S3_ENDPOINT_URL for MinIO, Ceph, Yandex Object Storage... and the usual
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION).

Keys are relative paths such as `imports/<file>` or `exports/<file>`. Files
move as streams in chunks (multipart uploads to S3): memory stays flat
whatever the file's size. Workers and the import reader work on a local copy
(`local_copy`), fetched when the machine does not have it.

Flask-free; `webapp.ops.downloads` sends a stored file as a response.
"""

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

CHUNK = 1024 * 1024


class DirectoryStorage:
    def __init__(self, root):
        self.root = Path(root)

    def path(self, key):
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("storage keys stay inside the storage")
        return path

    def write(self, key, stream):
        """Store `stream` (a binary file object) under `key`, atomically."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def put_file(self, key, path):
        if Path(path).resolve() == self.path(key):
            return  # already in place (the default storage is the instance folder)
        with open(path, "rb") as stream:
            self.write(key, stream)

    def open(self, key):
        """A binary stream of the file under `key` (FileNotFoundError when none)."""
        return open(self.path(key), "rb")

    def exists(self, key):
        return self.path(key).is_file()

    def size(self, key):
        return self.path(key).stat().st_size

    def delete(self, key):
        self.path(key).unlink(missing_ok=True)

    def fetch(self, key, path):
        if Path(path).resolve() == self.path(key):
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with self.open(key) as stream, open(path, "wb") as out:
            shutil.copyfileobj(stream, out, CHUNK)


class S3Storage:
    def __init__(self, bucket, prefix="", endpoint_url=None):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url or None, config=Config(retries={"max_attempts": 5, "mode": "standard"})
        )

    def _key(self, key):
        return f"{self.prefix}/{key}" if self.prefix else key

    def write(self, key, stream):
        # Multipart in 8 MB parts: the whole file is never in memory.
        self.client.upload_fileobj(stream, self.bucket, self._key(key))

    def put_file(self, key, path):
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def open(self, key):
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            raise

    def exists(self, key):
        try:
            self.size(key)
            return True
        except FileNotFoundError:
            return False

    def size(self, key):
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            raise

    def delete(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def fetch(self, key, path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with self.open(key) as stream, open(path, "wb") as out:
            shutil.copyfileobj(stream, out, CHUNK)


_storages = {}


def get_storage(url=None, endpoint_url=None):
    """The storage named by `url` (default: the STORAGE_URL setting)."""
    from .. import settings

    url = url or settings.STORAGE_URL
    endpoint_url = endpoint_url if endpoint_url is not None else settings.S3_ENDPOINT_URL
    key = (url, endpoint_url)
    if key not in _storages:
        parsed = urlparse(url)
        if parsed.scheme == "s3":
            _storages[key] = S3Storage(parsed.netloc, parsed.path, endpoint_url)
        elif parsed.scheme in ("file", ""):
            _storages[key] = DirectoryStorage(parsed.path if parsed.scheme else url)
        else:
            raise ValueError(f"STORAGE_URL must be a directory or s3://bucket/prefix, got {url!r}")
    return _storages[key]


def key_for(path, area):
    """The storage key of a local file of `area` (imports, exports)."""
    return f"{area}/{Path(path).name}"


def local_copy(path, area, storage=None):
    """Make sure `path` (an import upload, a rejected-row file, an export) is
    on this machine, fetching it from the storage when another machine wrote
    it. Returns True when it is there."""
    if os.path.exists(path):
        return True
    storage = storage or get_storage()
    try:
        storage.fetch(key_for(path, area), path)
    except FileNotFoundError:
        return False
    return True


def publish(path, area, storage=None):
    """Put the local file `path` into the storage for the other machines."""
    (storage or get_storage()).put_file(key_for(path, area), path)


def remove(path, area, storage=None):
    """Delete the file from this machine and from the storage."""
    Path(path).unlink(missing_ok=True)
    (storage or get_storage()).delete(key_for(path, area))
