"""The one checksum Flurry records for everything it writes and verifies before it loads."""

from __future__ import annotations

import hashlib


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
