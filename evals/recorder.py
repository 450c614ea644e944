"""LLM responses recorded on disk, so an eval rerun costs nothing and CI replays with no LLM at all.

A response is keyed by everything that decides it: the model, the exact messages (the rendered
prompt, so its template version and the case's input), n, max_tokens, temperature, and the
repeat index of `--repeat N`, and how many times the same case already made that exact request: a
suggestion whose drafts were all blocked sends its prompt again for a new sample, and must get one,
not the first answer back. Recordings are JSON lines, one file per model, in
`evals/recordings/`; nothing leaves the machine (no telemetry). The knowledge searches' rankings
are recorded beside them (`RecordingStore`), so that a replay builds the same prompts on any CPU.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from api.llm import ChatResult

RECORDINGS_DIR = Path(__file__).parent / "recordings"
Mode = Literal["auto", "record", "replay"]


class ReplayMiss(Exception):
    """Replay mode met a request that was never recorded: an infrastructure error (exit 2), not a bad draft.
    Not an LLMUnavailable on purpose: the pipeline would answer that with a holding reply and hide the miss."""


class RecordingLLM:
    """Wraps the one LLM client: `auto` answers from the recording and calls the LLM on a miss;
    `record` always calls and records; `replay` never calls."""

    def __init__(self, inner, model: str, mode: Mode = "auto", directory: Path = RECORDINGS_DIR, prefix: str = ""):
        self.inner, self.mode, self.model = inner, mode, model
        self.path = directory / f"{prefix}{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)}.jsonl"
        self.salt = 0  # the repeat index: --repeat N draws N different samples, each recorded
        self.asked: dict[str, int] = {}  # this case's requests so far, by key: the same one again is a new sample
        self.hits = self.misses = 0
        self.entries: dict[str, dict] = _read(self.path, "result")

    def new_case(self, salt: int | str = 0) -> None:
        """Call before each case (and repeat): occurrences are counted within one case."""
        self.salt, self.asked = salt, {}

    def key(self, messages: list[dict], n: int, max_tokens: int, temperature: float, occurrence: int = 1,
            stop: list[str] | None = None) -> str:
        fields = {"model": self.model, "messages": messages, "n": n, "max_tokens": max_tokens,
                  "temperature": temperature, "repeat": self.salt}
        if stop:  # only when asked for: requests without one keep their keys
            fields["stop"] = stop
        if occurrence > 1:  # the first keeps the key it always had, so earlier recordings still replay
            fields["occurrence"] = occurrence
        return _digest(fields)

    async def chat(self, messages: list[dict], n: int = 1, max_tokens: int = 160, temperature: float = 0.7,
                   stop: list[str] | None = None) -> ChatResult:
        first = self.key(messages, n, max_tokens, temperature, stop=stop)
        occurrence = self.asked[first] = self.asked.get(first, 0) + 1
        key = first if occurrence == 1 else self.key(messages, n, max_tokens, temperature, occurrence, stop)
        if self.mode != "record" and key in self.entries:
            self.hits += 1
            return ChatResult(**self.entries[key])
        if self.mode == "replay" or self.inner is None:
            raise ReplayMiss(f"no recorded response for this request in {self.path} (run with --llm auto to record it)")
        result = await self.inner.chat(messages, n=n, max_tokens=max_tokens, temperature=temperature, stop=stop)
        self.misses += 1
        self.entries[key] = _append(self.path, key, "result", asdict(result))
        return result

    async def chat_each(self, messages: list[dict], n: int = 1, max_tokens: int = 160,
                        temperature: float = 0.7, stop: list[str] | None = None) -> AsyncIterator[ChatResult]:
        """The pipeline's streaming entry point: a recording holds all `n` drafts of a request as one
        response, so they come back together (the key, and so the recordings, stay the same)."""
        yield await self.chat(messages, n=n, max_tokens=max_tokens, temperature=temperature, stop=stop)

    async def close(self) -> None:
        if self.inner is not None:
            await self.inner.close()


class RecordingStore:
    """The knowledge store, with the ranking of each search recorded next to the LLM's responses.

    The query embedding quantises its activations at run time. A one-ulp difference in a float kernel,
    such as another CPU's SIMD width, can flip a rounding and move a vector by up to ~0.02. Measured:
    moving every float weight by one ulp did that to the 160 eval messages. Such a change can swap two
    near-tied FAQs, and with them the prompt that a recording is keyed by. A replay therefore uses the
    recorded ranking: ids and scores, with the documents as the store has them now (an FAQ edited since
    the recording changes the prompt, and the LLM's recording misses, as it always did). The search of
    this machine still runs, and `ranked_differently` counts where its ids differ from the recording.
    """

    def __init__(self, inner, mode: Mode = "auto", directory: Path = RECORDINGS_DIR):
        self.inner, self.mode = inner, mode
        self.path = directory / "knowledge-searches.jsonl"
        self.entries: dict[str, list[dict]] = _read(self.path, "hits")
        self.searches = self.ranked_differently = 0

    def __getattr__(self, name: str):  # everything but the two searches is the store's own
        return getattr(self.inner, name)

    def search(self, brand: str, text: str, k: int = 3, kinds: list[str] | None = None, language: str | None = None,
               min_score: float | None = None, vector=None) -> list:
        live = self.inner.search(brand, text, k, kinds, language, min_score, vector)
        key, recorded = self._lookup(["search", brand, text, k, kinds, language, min_score], live)
        hits = [self.inner.document_hit(brand, h["id"], h["score"]) for h in recorded or []]
        if recorded is not None and all(hits):
            return hits
        return self._record(key, live, [{"id": h.id, "score": h.score} for h in live],
                            "was never recorded" if recorded is None else "names a document the brand no longer has")

    def search_chunks(self, brand: str, text: str, k: int, kinds: list[str] | None = None,
                      language: str | None = None, vector=None) -> list:
        """Chunks are recorded whole (a chunk has no id of its own); each must still be part of its document."""
        from knowledge.store import Hit

        live = self.inner.search_chunks(brand, text, k, kinds, language, vector)
        key, recorded = self._lookup(["search_chunks", brand, text, k, kinds, language], live)
        hits = [Hit(**h) for h in recorded or []]
        if recorded is not None and all(self.inner.still_current(brand, h) for h in hits):
            return hits
        return self._record(key, live, [asdict(h) for h in live],
                            "was never recorded" if recorded is None else "has a chunk that changed")

    def _lookup(self, call: list, live: list) -> tuple[str, list[dict] | None]:
        self.searches += 1
        key = _digest(call)
        recorded = self.entries.get(key) if self.mode != "record" else None
        if recorded is not None:
            self.ranked_differently += [h["id"] for h in recorded] != [h.id for h in live]
        return key, recorded

    def _record(self, key: str, live: list, entry: list[dict], why: str) -> list:
        """This machine's ranking, recorded in place of a missing or unusable one; a replay may not record."""
        if self.mode == "replay":
            raise ReplayMiss(f"a knowledge search {why} ({self.path}; run with --llm auto to record it again)")
        self.entries[key] = _append(self.path, key, "hits", entry)
        return live


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def _read(path: Path, field: str) -> dict:
    """A recording's entries by key: JSON lines of {"key": ..., field: ...}; a later line wins."""
    if not path.is_file():
        return {}
    entries = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {entry["key"]: entry[field] for entry in entries}


def _append(path: Path, key: str, field: str, value):
    """`value`, appended to the recording under `key`, and returned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"key": key, field: value}, ensure_ascii=False) + "\n")
    return value

