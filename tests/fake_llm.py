"""A small fake OpenAI-compatible server with scripted answers.

Each POST /v1/chat/completions takes the next step of the script (or the
default step when the script is empty). A step says what to send back:
content (or a list of contents, one per choice), how many choices, a status
code, a raw body, a delay. Every request is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


@dataclass
class Step:
    content: str | list[str] | None = "We're sorry about this. Please send us a direct message and we'll sort it out today."
    choices: int | None = None  # None: honour the request's n
    status: int = 200
    raw: str | None = None  # send this body verbatim (malformed JSON and the like)
    delay: float = 0.0
    prompt_tokens: int = 50
    completion_tokens: int = 20
    finish_reason: str = "stop"
    reply: object = None  # a function of the request body returning the content (e.g. by prompt)


@dataclass
class FakeLLM:
    default: Step = field(default_factory=Step)
    script: deque = field(default_factory=deque)
    requests: list = field(default_factory=list)

    def reset(self, default: Step | None = None, *steps: Step) -> None:
        self.default = default or Step()
        self.script = deque(steps)
        self.requests = []

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models():
            return {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "tests"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            self.requests.append(body)
            step = self.script.popleft() if self.script else self.default
            if step.delay:
                await asyncio.sleep(step.delay)
            if step.raw is not None:
                return Response(step.raw, status_code=step.status, media_type="application/json")
            if step.status != 200:
                return JSONResponse({"error": {"message": f"scripted {step.status}", "type": "server_error"}},
                                    status_code=step.status)
            n = step.choices if step.choices is not None else int(body.get("n") or 1)
            content = step.reply(body) if callable(step.reply) else step.content
            contents = content if isinstance(content, list) else [content] * n
            choices = [{"index": i, **_stopped(contents[i % len(contents)], step.finish_reason, body.get("stop"))}
                       for i in range(n)]
            return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake"), "choices": choices,
                    "usage": {"prompt_tokens": step.prompt_tokens, "completion_tokens": step.completion_tokens * n,
                              "total_tokens": step.prompt_tokens + step.completion_tokens * n}}

        return app


def _stopped(content: str | None, finish_reason: str, stop: str | list[str] | None) -> dict:
    """As OpenAI-compatible servers do: the text ends before the first stop sequence, which is not returned."""
    stops = [stop] if isinstance(stop, str) else stop or []
    cuts = [content.index(s) for s in stops if isinstance(content, str) and s in content]
    if cuts:
        content, finish_reason = content[:min(cuts)], "stop"
    return {"finish_reason": finish_reason, "message": {"role": "assistant", "content": content}}


class BrokenLLM:
    """A TCP server that breaks every request the way a crashing model server or a proxy does:
    `reset` closes the connection with a RST before any byte; `truncate` sends a 200 whose body
    stops long before its Content-Length."""

    def __init__(self, mode: str):
        import socket
        import threading

        assert mode in ("reset", "truncate")
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import socket
        import struct

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.settimeout(2)
            try:
                conn.recv(65536)  # the request line and headers (enough for the test's requests)
                if self.mode == "truncate":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
                                 b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "We are so')
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.sock.close()
