"""The attachment store: files kept by the sha256 of their content, under one folder
(`CSI_ATTACHMENTS_DIR`, default `instance/attachments`), as `<aa>/<sha256>`.

The same file attached twice is kept once. A file is written to a temporary name
and renamed into place, so a reader never sees half of one; nothing is ever
rewritten or deleted through this module, and the log's references (the sha256 in
the completing event) say what each file must still hash to.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024

DEFAULT_MAX_FILE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_FILES = 5
DEFAULT_MAX_TOTAL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one submission may attach: bytes per file (a form's field may ask for
    less), files in one task's submission, and bytes of all its files together."""

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_files: int = DEFAULT_MAX_FILES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES


def is_sha256(text: object) -> bool:
    return isinstance(text, str) and bool(_SHA256.fullmatch(text))


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class AttachmentStore:
    root: Path
    limits: Limits = field(default_factory=Limits)

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256

    def put(self, content: bytes) -> str:
        """Keep `content`; its sha256 names it. A file already there under that name is
        kept when it still holds these bytes, and replaced when it does not."""
        sha256 = digest(content)
        target = self.path(sha256)
        if target.is_file() and self.hash_of(sha256) == sha256:
            return sha256
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return sha256

    def open(self, sha256: str) -> BinaryIO:
        """The file of `sha256` to read; FileNotFoundError when it is not kept."""
        return self.path(sha256).open("rb")

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as file:
            return file.read()

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def hash_of(self, sha256: str) -> str | None:
        """What the file kept under `sha256` hashes to now (None: there is none)."""
        try:
            file = self.open(sha256)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        hasher = hashlib.sha256()
        with file:
            while chunk := file.read(_CHUNK):
                hasher.update(chunk)
        return hasher.hexdigest()

    def problem(self, sha256: str) -> str | None:
        """Why the file of `sha256` is not what the log says (None: it is)."""
        found = self.hash_of(sha256)
        if found is None:
            return "is missing"
        if found != sha256:
            return "was changed"
        return None
