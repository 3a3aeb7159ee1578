"""A small OpenAI-compatible chat-completions server for tests and benchmarks.

It stands in for a paid judge endpoint: ``POST /v1/chat/completions`` answers after a fixed
latency, at most ``capacity`` requests are served at once (more get ``429`` with
``Retry-After``), and switches inject the failures real endpoints have — ``500`` errors,
requests that hang past the client's timeout, and answers without a verdict. A *policy*
callable decides each answer, so a test controls exactly what the "judge" says. It counts
requests, statuses and the peak number of requests in flight, and reports token usage.

Plain asyncio and the standard library: client and server share two CPU cores in the
benchmark, so the server must cost next to nothing per request.

Use it in a thread (tests, any policy)::

    with FakeOpenAIServer(latency_s=0.05, capacity=8) as server:
        judge = OpenAIJudge(ChatTransport(server.base_url, "fake"))

or in its own process (benchmarks, so it does not compete for the client's GIL)::

    with spawn_server_process(latency_s=0.2, capacity=64) as server:
        ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ChatCall",
    "FakeOpenAIServer",
    "Fault",
    "ServerProcess",
    "ServerStats",
    "VerdictPolicy",
    "default_policy",
    "fixed_policy",
    "spawn_server_process",
]


class Fault(StrEnum):
    """A failure a policy (or the random fault switches) can make the server produce."""

    SERVER_ERROR = "server_error"  # 500 at once
    TIMEOUT = "timeout"  # hold the request until the client gives up (or hang_s passes)
    GARBLED = "garbled"  # a normal 200 answer after the latency, with no verdict in it
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After, as when over capacity


@dataclass(frozen=True)
class ChatCall:
    """What a policy sees: the request number (0-based, over the server's life), the model,
    the chat messages, the request headers (lower-cased names) and the whole request body
    (sampling settings, ``seed``, structured-output fields such as ``grammar``)."""

    index: int
    model: str
    messages: list[dict[str, Any]]
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def constrained(self) -> str | None:
        """The structured-output field of the request (``grammar``, ``guided_choice``,
        ``guided_json``, ``response_format``), if any."""
        for name in ("grammar", "guided_choice", "guided_json", "response_format"):
            if name in self.body:
                return name
        return None

    @property
    def system(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages if m["role"] == "system")

    @property
    def user(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages if m["role"] == "user")


VerdictPolicy = Callable[[ChatCall], "str | Fault"]

GARBLED_ANSWER = (
    "Assistant A And Assistant B Both make A fair Attempt. All things considered, "
    "I cannot say which is better."
)


def default_policy(call: ChatCall) -> str:
    """A deterministic answer: a JSON grade when asked for a score, else a pairwise verdict
    picked by a hash of the prompt, after a short rationale."""
    digest = hashlib.sha256(call.user.encode("utf-8")).digest()
    if '"score"' in call.system:
        return json.dumps({"score": 1 + digest[0] % 10, "reason": "Deterministic fake grade."})
    tag = "ABC"[digest[0] % 3]
    # A constrained answer has the shape the request asked for, as a real server's would.
    if call.constrained in ("grammar", "guided_choice"):
        return f"[[{tag}]]"
    if call.constrained == "response_format":
        return json.dumps({"reason": "Deterministic fake verdict.", "verdict": tag})
    return f"Assistant A And Assistant B both Address the instruction. Verdict: [[{tag}]]"


def fixed_policy(answer: str | Fault) -> VerdictPolicy:
    """A policy that gives the same answer to every request."""
    return lambda call: answer


@dataclass
class ServerStats:
    """Counters since start (or the last ``reset_stats``)."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "faults": dict(self.faults),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error"}  # fmt: skip


class FakeOpenAIServer:
    """The server; ``start()``/``stop()`` or use it as a context manager.

    latency_s: time to answer an admitted request. capacity: requests served at once; one
    more gets 429 with ``Retry-After: retry_after_s`` (and ``retry-after-ms``). error_rate,
    timeout_rate, garbled_rate: share of admitted requests turned into that fault, drawn from
    a generator seeded with ``seed``. hang_s: how long a TIMEOUT request is held at most (it
    ends earlier when the client disconnects). policy: decides each answer; it may return a
    :class:`Fault`. latency_for: a per-request latency overriding ``latency_s``.
    record_bodies: how many of the latest request bodies :attr:`bodies` keeps (0: none, as
    the benchmarks want).
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.2,
        capacity: int = 64,
        retry_after_s: float = 1.0,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        garbled_rate: float = 0.0,
        hang_s: float = 60.0,
        policy: VerdictPolicy | None = None,
        latency_for: Callable[[ChatCall], float] | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        record_bodies: int = 1000,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if error_rate + timeout_rate + garbled_rate > 1.0:
            raise ValueError("error_rate + timeout_rate + garbled_rate cannot exceed 1")
        self.latency_s = latency_s
        self.capacity = capacity
        self.retry_after_s = retry_after_s
        self.error_rate = error_rate
        self.timeout_rate = timeout_rate
        self.garbled_rate = garbled_rate
        self.hang_s = hang_s
        self.policy: VerdictPolicy = policy or default_policy
        self.latency_for = latency_for
        self._rng = random.Random(seed)
        self._host = host
        self._port = port
        self._stats = ServerStats()
        self._lock = threading.Lock()
        self.bodies: deque[dict[str, Any]] = deque(maxlen=record_bodies)
        """The JSON bodies of the last ``record_bodies`` chat requests, oldest first."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._stopped: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` for clients, e.g. ``http://127.0.0.1:43121/v1``."""
        return f"http://{self._host}:{self._port}/v1"

    def start(self) -> FakeOpenAIServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as error:  # reported to start() below
                errors.append(error)
                ready.set()

        self._thread = threading.Thread(target=serve, name="fake-openai-server", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise RuntimeError(f"fake OpenAI server failed to start: {errors[0]!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stats(self) -> ServerStats:
        """A snapshot of the counters."""
        with self._lock:
            s = self._stats
            return ServerStats(
                s.requests,
                Counter(s.statuses),
                Counter(s.faults),
                s.in_flight,
                s.max_in_flight,
                s.prompt_tokens,
                s.completion_tokens,
            )

    def reset_stats(self) -> None:
        with self._lock:
            in_flight = self._stats.in_flight
            self._stats = ServerStats(in_flight=in_flight, max_in_flight=in_flight)

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._server = await asyncio.start_server(
            self._handle_connection, self._host, self._port, backlog=1024
        )
        self._port = self._server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stopped.wait()
        finally:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                keep_open = await self._route(method, path, headers, body, reader, writer)
                if not keep_open or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # Server shutdown: end quietly (a cancelled handler makes asyncio log a traceback).
            return
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: dict[str, Any],
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(payload).encode("utf-8")
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: keep-alive",
        ]
        head.extend(f"{k}: {v}" for k, v in (extra_headers or {}).items())
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        with self._lock:
            self._stats.statuses[status] += 1
        await writer.drain()

    async def _route(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if method == "GET" and path.rstrip("/").endswith("/stats"):
            await self._respond(writer, 200, self.stats().to_dict())
            return True
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            await self._respond(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        try:
            request = json.loads(body)
            messages = list(request["messages"])
            model = str(request.get("model", ""))
        except (ValueError, KeyError, TypeError) as error:
            await self._respond(writer, 400, {"error": {"message": f"bad request: {error}"}})
            return True
        with self._lock:
            if self.bodies.maxlen:
                self.bodies.append(request)
            index = self._stats.requests
            self._stats.requests += 1
            admitted = self._stats.in_flight < self.capacity
            if admitted:
                self._stats.in_flight += 1
                self._stats.max_in_flight = max(self._stats.max_in_flight, self._stats.in_flight)
        if not admitted:
            await self._rate_limited(writer)
            return True
        try:
            call = ChatCall(index, model, messages, headers, request)
            return await self._answer(call, reader, writer)
        finally:
            with self._lock:
                self._stats.in_flight -= 1

    async def _rate_limited(self, writer: asyncio.StreamWriter) -> None:
        seconds = self.retry_after_s
        retry_after = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
        await self._respond(
            writer,
            429,
            {"error": {"message": "over capacity, retry later", "type": "rate_limit"}},
            {"Retry-After": retry_after, "retry-after-ms": str(round(seconds * 1000))},
        )

    def _draw_fault(self) -> Fault | None:
        draw = self._rng.random()
        if draw < self.error_rate:
            return Fault.SERVER_ERROR
        if draw < self.error_rate + self.timeout_rate:
            return Fault.TIMEOUT
        if draw < self.error_rate + self.timeout_rate + self.garbled_rate:
            return Fault.GARBLED
        return None

    async def _answer(
        self, call: ChatCall, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        answer: str | Fault | None = self._draw_fault()
        if answer is None:
            answer = self.policy(call)
        if isinstance(answer, Fault):
            with self._lock:
                self._stats.faults[answer.value] += 1
        if answer is Fault.SERVER_ERROR:
            await self._respond(writer, 500, {"error": {"message": "injected server error"}})
            return True
        if answer is Fault.RATE_LIMIT:
            await self._rate_limited(writer)
            return True
        if answer is Fault.TIMEOUT:
            # Hold the request; a client that times out closes the connection, which ends it.
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(reader.read(1), timeout=self.hang_s)
            return False
        content = GARBLED_ANSWER if answer is Fault.GARBLED else str(answer)
        latency = self.latency_s if self.latency_for is None else self.latency_for(call)
        if latency > 0:
            await asyncio.sleep(latency)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in call.messages)
        completion_tokens = len(content.split())
        with self._lock:
            self._stats.prompt_tokens += prompt_tokens
            self._stats.completion_tokens += completion_tokens
        await self._respond(
            writer,
            200,
            {
                "id": f"chatcmpl-fake-{call.index}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": call.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )
        return True


# -- process mode ----------------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A server running in a child process (see :func:`spawn_server_process`)."""

    base_url: str
    process: subprocess.Popen[str]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/stats", timeout=10) as response:
            payload: dict[str, Any] = json.load(response)
            return payload


@contextlib.contextmanager
def spawn_server_process(**options: float | int) -> Iterator[ServerProcess]:
    """Run the server in a child Python process with the random-fault switches in
    ``options`` (no policy callable: the default policy answers)."""
    entry = "from rl_engine.testing.openai_server import main; main()"
    args = [sys.executable, "-c", entry]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"fake OpenAI server process exited with {process.wait()}")
        yield ServerProcess(json.loads(line)["base_url"], process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-s", type=float, default=0.2)
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--retry-after-s", type=float, default=1.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--garbled-rate", type=float, default=0.0)
    parser.add_argument("--hang-s", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        latency_s=args.latency_s,
        capacity=args.capacity,
        retry_after_s=args.retry_after_s,
        error_rate=args.error_rate,
        timeout_rate=args.timeout_rate,
        garbled_rate=args.garbled_rate,
        hang_s=args.hang_s,
        seed=args.seed,
        port=args.port,
        record_bodies=0,
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        ready = threading.Event()
        serving = asyncio.ensure_future(server._serve(ready))
        while not ready.is_set():
            await asyncio.sleep(0.01)
        print(json.dumps({"base_url": server.base_url}), flush=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, server._stopped.set)  # type: ignore[union-attr]
        await serving

    asyncio.run(run())


if __name__ == "__main__":
    main()
