"""Token counting with tiktoken, offline.

tiktoken downloads its BPE files on first use; this machine (and many customer
machines) has no route to that host. The `bpe-openai` package ships the same
files, so we seed tiktoken's own cache with them under the key tiktoken looks
for (sha1 of the blob URL). tiktoken still verifies each file's sha256 itself.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import tiktoken

ENCODING = "cl100k_base"
_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_SHIPPED = ("cl100k_base", "o200k_base")


class EncodingUnavailable(RuntimeError):
    """The BPE file for an encoding is neither cached nor shipped."""


def _shipped_dir() -> Path:
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise EncodingUnavailable("the bpe-openai package (which ships tiktoken's BPE files) is not installed; run `make install`")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def seed_tiktoken_cache(cache_dir: Path | None = None) -> Path:
    """Make `tiktoken.get_encoding` work offline for the shipped encodings."""
    cache_dir = Path(cache_dir or os.environ.get("TIKTOKEN_CACHE_DIR") or Path("data") / "tiktoken")
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir.resolve())
    for name in _SHIPPED:
        target = cache_dir / hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()
        if target.exists():
            continue
        source = _shipped_dir() / f"{name}.tiktoken.gz"
        data = gzip.decompress(source.read_bytes())
        # Write-then-rename so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=cache_dir)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    return cache_dir


@lru_cache(maxsize=4)
def encoding(name: str = ENCODING) -> tiktoken.Encoding:
    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        seed_tiktoken_cache()
    return tiktoken.get_encoding(name)


@lru_cache(maxsize=8192)
def count_tokens(text: str, name: str = ENCODING) -> int:
    # Cached: the same FAQ answers are budgeted on every request.
    return len(encoding(name).encode(text, disallowed_special=()))


def fit_to_budget(items: list, budget: int, text_of=lambda item: item, name: str = ENCODING) -> list:
    """Keep items in the given (best-first) order while their tokens fit in `budget`.

    An item that does not fit is skipped rather than cut mid-sentence, and a
    smaller one after it may still fit: a truncated FAQ answer is worse than none.
    """
    kept, used = [], 0
    for item in items:
        cost = count_tokens(text_of(item), name)
        if used + cost <= budget:
            kept.append(item)
            used += cost
    return kept


def fit_recent(items: list, budget: int, text_of=lambda item: item, name: str = ENCODING) -> list:
    """The most recent items (the list is oldest first) whose tokens fit in `budget`, in their
    order, without gaps: a conversation with a turn missing in the middle misleads the model."""
    kept, used = [], 0
    for item in reversed(items):
        cost = count_tokens(text_of(item), name)
        if used + cost > budget:
            break
        kept.append(item)
        used += cost
    return kept[::-1]
