"""The one LLM client: AsyncOpenAI against any OpenAI-compatible endpoint.

OpenAI, Azure OpenAI (v1 endpoint), vLLM, Ollama and the embedded llama.cpp
server all go through this code; only base_url, api_key and model change.
Retries on 429/5xx/connection errors are the openai client's own (exponential
backoff with jitter, honouring Retry-After), bounded by `max_retries`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

import openai
from openai import AsyncOpenAI, DefaultAioHttpClient

log = logging.getLogger("tactful.llm")


class LLMUnavailable(RuntimeError):
    """The LLM could not be reached or kept failing after retries."""


@dataclass
class ChatResult:
    texts: list[str]
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    finish_reasons: list[str] = field(default_factory=list)

    def merge(self, other: "ChatResult") -> None:
        self.texts += other.texts
        self.finish_reasons += other.finish_reasons
        self.model = other.model or self.model
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls


class LLMClient:
    def __init__(self, base_url: str, api_key: str, model: str, timeout: float = 60.0, max_retries: int = 2):
        self.model = model
        # aiohttp transport: httpx's pool burns ~20 ms CPU per request at 64 concurrent
        # connections here (encode/httpx#3215); openai documents DefaultAioHttpClient for this.
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries,
                                  http_client=DefaultAioHttpClient(timeout=timeout))
        # None until the server shows whether it honours `n`; detected, never assumed.
        self.supports_n: bool | None = None

    async def chat(self, messages: list[dict], n: int = 1, max_tokens: int = 160, temperature: float = 0.7,
                   stop: list[str] | None = None) -> ChatResult:
        """All `n` completions at once."""
        result = ChatResult(texts=[], model=self.model)
        async with aclosing(self.chat_each(messages, n, max_tokens, temperature, stop)) as parts:
            async for part in parts:
                result.merge(part)
        return result

    async def chat_each(self, messages: list[dict], n: int = 1, max_tokens: int = 160,
                        temperature: float = 0.7, stop: list[str] | None = None) -> AsyncIterator[ChatResult]:
        """The `n` completions as they arrive: one result when the server honours `n`, else one per
        call in the order they finish, so a caller can guard and stream the first draft while the
        model is still writing the next (llama.cpp serves one request at a time)."""
        missing = n
        if n > 1 and self.supports_n is not False:
            first = ChatResult(texts=[], model=self.model)
            try:
                await self._call(messages, n, max_tokens, temperature, first, stop)
            except openai.BadRequestError as exc:
                # llama.cpp's own server answers 400 to n>1; treat it as "no n support".
                log.info("endpoint rejected n=%d (%s); falling back to one call per draft", n, exc.message)
                self.supports_n = False
            else:
                got = len(first.texts)
                self.supports_n = got >= n
                if got < n:
                    log.info("endpoint returned %d of n=%d choices; asking for the rest one by one", got, n)
                missing -= got
                yield first
        if missing <= 0:
            return
        calls = [asyncio.ensure_future(self._one(messages, max_tokens, temperature, stop)) for _ in range(missing)]
        try:
            for finished in asyncio.as_completed(calls):
                yield await finished
        finally:  # the caller stopped early (deadline, client gone, an error): no orphaned requests
            for call in calls:
                call.cancel()

    async def _one(self, messages: list[dict], max_tokens: int, temperature: float, stop: list[str] | None) -> ChatResult:
        result = ChatResult(texts=[], model=self.model)
        await self._call(messages, 1, max_tokens, temperature, result, stop)
        return result

    async def _call(self, messages: list[dict], n: int, max_tokens: int, temperature: float, result: ChatResult,
                    stop: list[str] | None = None) -> None:
        # a seed of our own for every call: llama_cpp.server restores the sampler's seed with a cached prompt
        # state, so the same prompt drew the same "random" draft on every call (n=3 gave one draft three times)
        body = {"model": self.model, "messages": messages, "n": n, "max_tokens": max_tokens, "temperature": temperature,
                "seed": secrets.randbelow(2**31)}
        if stop:
            body["stop"] = stop
        try:
            # The client's generic post (auth, retries with backoff, timeouts, typed errors) without its
            # request transform and response models: those cost ~1.8 ms CPU per call, measured, on a
            # path that runs for every suggestion. The body is the documented chat-completions shape.
            resp = await self.client.post("/chat/completions", body=body, cast_to=object)
        except openai.BadRequestError as exc:
            if n > 1:
                raise  # chat() reads this as "n not supported"
            raise LLMUnavailable(f"LLM endpoint rejected the request: {exc.message}") from exc
        except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError, openai.InternalServerError,
                openai.APIStatusError, openai.APIResponseValidationError) as exc:
            raise LLMUnavailable(f"LLM endpoint failed: {type(exc).__name__}: {getattr(exc, 'message', exc)}") from exc
        except ValueError as exc:  # malformed JSON body from the endpoint
            raise LLMUnavailable(f"LLM endpoint returned an unreadable response: {exc}") from exc
        choices = resp.get("choices") if isinstance(resp, dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise LLMUnavailable("LLM endpoint returned no choices")
        result.calls += 1
        result.model = resp.get("model") or result.model
        for choice in choices[:n]:
            message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
            content = message.get("content")
            result.texts.append(content.strip() if isinstance(content, str) else "")
            result.finish_reasons.append(str(choice.get("finish_reason") or ""))
        usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else {}
        result.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        result.completion_tokens += int(usage.get("completion_tokens") or 0)

    async def ping(self) -> bool:
        try:
            await self.client.with_options(timeout=3, max_retries=0).models.list()
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await self.client.close()
