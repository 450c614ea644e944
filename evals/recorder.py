"""LLM responses recorded on disk, so an eval rerun costs nothing and CI replays with no LLM at all.

A response is keyed by everything that decides it: the model, the exact messages (the rendered
prompt, so its template version and the case's input), n, max_tokens, temperature, and the
repeat index of `--repeat N`, and how many times the same case already made that exact request: a
suggestion whose drafts were all blocked sends its prompt again for a new sample, and must get one,
not the first answer back. Recordings are JSON lines, one file per model, in
`evals/recordings/`; nothing leaves the machine (no telemetry).
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
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.entries[entry["key"]] = entry["result"]

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
        blob = json.dumps(fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

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
        self.entries[key] = asdict(result)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "result": asdict(result)}, ensure_ascii=False) + "\n")
        return result

    async def chat_each(self, messages: list[dict], n: int = 1, max_tokens: int = 160,
                        temperature: float = 0.7, stop: list[str] | None = None) -> AsyncIterator[ChatResult]:
        """The pipeline's streaming entry point: a recording holds all `n` drafts of a request as one
        response, so they come back together (the key, and so the recordings, stay the same)."""
        yield await self.chat(messages, n=n, max_tokens=max_tokens, temperature=temperature, stop=stop)

    async def close(self) -> None:
        if self.inner is not None:
            await self.inner.close()
