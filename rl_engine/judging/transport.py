"""One chat-completions call with the retry policy every HTTP judge shares.

A judge owns one :class:`ChatTransport`; the transport owns one set of HTTP connection pools
per event loop (normally exactly one, built once) and a slot queue that bounds the requests in
flight. It retries 429, 408/409, 5xx, timeouts and connection errors with exponential backoff
and full jitter, waiting at least what ``Retry-After`` (or ``retry-after-ms``) asks; other 4xx
answers are configuration errors and are not retried. It never raises for a failed call: the
result carries the error.

The wire is httpcore (``httpcore2``, the transport under httpx and so under the openai SDK)
speaking the OpenAI format directly. Measured on the 2-core box, per request: ``AsyncOpenAI``
~2 ms of CPU, ``httpx.AsyncClient`` ~0.9 ms, httpcore ~0.5 ms — which decides whether a judge
reaches an endpoint's throughput bound when client and endpoint share the CPU (see
docs/benchmarks.md, judge_throughput). TLS, keep-alive and proxies from the environment
(``HTTPS_PROXY``/``NO_PROXY``) work as in httpx; redirects and compression are not needed here.
"""

from __future__ import annotations

import asyncio
import email.utils
import heapq
import itertools
import json
import random
import ssl
import time
import urllib.parse
import urllib.request
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

try:
    import httpcore2 as httpcore
except ImportError:  # openai releases before 3.x ship httpx 0.x on plain httpcore
    import httpcore  # type: ignore[no-redef]

from rl_engine.judging.endpoints import (
    EndpointRegistry,
    EndpointSpec,
    Purpose,
    default_registry,
    structured_body,
)
from rl_engine.judging.usage import Usage

__all__ = [
    "HEDGE_PRIORITY",
    "ChatResult",
    "ChatTransport",
    "RetryPolicy",
    "TransportStats",
    "build_transport",
]

_RETRY_STATUSES = frozenset({408, 409, 429})
_CONNECTION_ERRORS = (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError, OSError)
_TIMEOUT_GRACE_S = 0.05
HEDGE_PRIORITY = -1
"""Where a hedge waits for a slot: behind every first try (priority 0) and every retry."""
_LATENCY_WINDOW = 256  # recent successful requests the adaptive hedge delay is taken from
_MIN_LATENCIES = 20  # no adaptive hedging before this many have been seen
_MIN_HEDGE_DELAY_S = 0.05  # never duplicate a request sooner: below this it is pure overhead


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient failures: retry ``k`` (0-based) waits a uniform random time in
    ``[0, min(cap_s, base_s * 2**k)]`` ("full jitter"), or, when the server sent
    ``Retry-After``, that long (at most ``max_retry_after_s``) plus up to ``base_s`` of jitter
    so that clients told to wait the same time do not return in lockstep."""

    max_retries: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries cannot be negative, got {self.max_retries}")

    def delay(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self.max_retry_after_s) + rng.uniform(0, self.base_s)
        return rng.uniform(0, min(self.cap_s, self.base_s * 2**retry))


@dataclass
class ChatResult:
    """The outcome of one logical call (all its transport retries): the answer's ``content``,
    or ``error`` when every try failed."""

    content: str | None
    body: Any
    attempts: int
    usage: Usage = field(default_factory=Usage)
    error: str | None = None


@dataclass
class TransportStats:
    """What a transport has sent since it was built: ``requests`` (every HTTP request,
    hedges included), ``retries`` (rounds after a failed one), ``hedges`` (duplicates sent
    for a slow request) and ``hedge_wins`` (hedges whose answer was used)."""

    requests: int = 0
    retries: int = 0
    hedges: int = 0
    hedge_wins: int = 0


@dataclass
class _Reply:
    """One HTTP request's outcome: the response, or why there is none."""

    response: httpcore.Response | None
    error: str = ""

    @property
    def decisive(self) -> bool:
        """An answer that another copy of the request could not improve on: anything but a
        timeout, a connection error, 408/409/429 or a 5xx."""
        if self.response is None:
            return False
        status = self.response.status
        return status not in _RETRY_STATUSES and status < 500


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).

    >>> parse_retry_after({"retry-after": "2"})
    2.0
    >>> parse_retry_after({"retry-after-ms": "250", "retry-after": "1"})
    0.25
    >>> parse_retry_after({}) is None
    True
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    milliseconds = lowered.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# httpcore's pool probes every idle connection's socket on each request (O(pool size) system
# calls per request): at 64 connections that was half the client's CPU. Requests are spread
# over a few small pools instead, each of at most this many connections.
_CONNECTIONS_PER_POOL = 8


class _Slots:
    """Bounded concurrency in which retries go ahead of first tries, and hedges come last.

    Each of the ``size`` slots names the connection pool to use, so no pool has more requests
    than connections. A waiter with a higher ``priority`` (the number of requests its pair has
    already made) is served first; equal priorities are served in arrival order. Without this,
    a retry would queue behind every pair not yet started, and all the retries of a large batch
    would bunch up at its end. Hedges wait at :data:`HEDGE_PRIORITY`, below every first try,
    so they only ever take a slot that nothing else wants.

    A cancelled waiter's heap entry stays until ``release`` pops and skips it (removing it at
    once would cost O(waiters) per cancellation, and a batch queues thousands). ``_waiting``
    holds the waiters still counted: ``release`` drops a cancelled one as it skips it, and
    the waiter drops itself when it unwinds — whichever comes first — so a slot is never left
    free while a caller queues for it.
    """

    def __init__(self, pools: int, size: int) -> None:
        self._free = [slot % pools for slot in range(size)]
        self._waiters: list[tuple[int, int, asyncio.Future[int]]] = []
        self._arrivals = itertools.count()
        self._waiting: set[asyncio.Future[int]] = set()

    def acquire_nowait(self) -> int | None:
        """A free slot when one is free and nobody waits, else None."""
        if self._free and not self._waiting:
            return self._free.pop()
        return None

    async def acquire(self, priority: int = 0) -> int:
        if self._free and not self._waiting:
            return self._free.pop()
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._arrivals), waiter))
        self._waiting.add(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            self._waiting.discard(waiter)
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # handed a slot, then cancelled: pass it on
            raise

    def release(self, pool: int) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            self._waiting.discard(waiter)
            if not waiter.done():  # skip waiters whose task was cancelled
                waiter.set_result(pool)
                return
        self._free.append(pool)

    def release_later(self, pool: int, delay_s: float) -> None:
        asyncio.get_running_loop().call_later(delay_s, self.release, pool)


@dataclass
class _LoopState:
    pools: list[httpcore.AsyncConnectionPool]
    slots: _Slots


def _tls_context() -> ssl.SSLContext:
    try:
        context: ssl.SSLContext = httpcore.default_ssl_context()
        return context
    except AttributeError:  # plain httpcore: build what httpx would
        import certifi

        return ssl.create_default_context(cafile=certifi.where())


def _proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY) sets for ``url``."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


class ChatTransport:
    """POST ``{base_url}/chat/completions`` with bounded concurrency and retries.

    ``hedge=True`` sends a second copy of a request that is still unanswered after
    ``hedge_after_s`` (by default the 95th percentile latency of the last 256 answers, at
    least 50 ms, once 20 have come back) and uses whichever answer comes first; the other copy
    is abandoned. A hedge waits for a slot behind every first try and retry, so it only uses
    capacity nothing else wants — in practice the tail of a batch, where a hung request would
    otherwise hold up the whole step until its timeout. On a paid API an abandoned copy may
    still be billed; it is counted in ``attempts`` and in :attr:`stats`. An endpoint that
    does not stop work when a client disconnects keeps serving the abandoned copy, so its load
    can briefly exceed ``max_concurrency``.

    ``max_concurrency`` bounds each event loop's requests (a judge's ``compare_sync`` uses
    one loop). :attr:`stats` and the latency window are shared by all loops and not locked:
    with several loops in several threads the counts are approximate.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 64,
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = 1024,
        extra_body: Mapping[str, Any] | None = None,
        seed: int | None = None,
        hedge: bool = False,
        hedge_after_s: float | None = None,
        structured_output: str = "none",
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive seconds, got {timeout_s}")
        if hedge_after_s is not None and hedge_after_s <= 0:
            raise ValueError(f"hedge_after_s must be positive seconds, got {hedge_after_s}")
        self.base_url = (base_url or "https://api.openai.com/v1").rstrip("/")
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self.structured_output = structured_output
        self.hedge = hedge
        self.hedge_after_s = hedge_after_s
        self.stats = TransportStats()
        self._latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._answers = 0
        self._hedge_delay: float | None = None
        self._answers_at_estimate = 0
        self._url = f"{self.base_url}/chat/completions"
        parts = urllib.parse.urlsplit(self._url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self._headers: list[tuple[bytes, bytes]] = [
            (b"Host", parts.netloc.encode("ascii")),
            (b"Content-Type", b"application/json"),
            (b"Accept", b"application/json"),
            (b"User-Agent", b"writing-rl-studio-judge"),
        ]
        if api_key:
            self._headers.append((b"Authorization", f"Bearer {api_key}".encode()))
        self._timeouts = {"timeout": {k: timeout_s for k in ("connect", "read", "write", "pool")}}
        self._rng = random.Random(seed)
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def authorization(self) -> str | None:
        """The Authorization header sent (for checks; never logged or stored)."""
        for name, value in self._headers:
            if name == b"Authorization":
                return value.decode()
        return None

    def _state(self) -> _LoopState:
        # Connections and futures belong to one event loop.
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            count = -(-self.max_concurrency // _CONNECTIONS_PER_POOL)
            per_pool = -(-self.max_concurrency // count)
            tls = _tls_context()  # loading the CA bundle costs ~20 ms: build it once
            proxy_url = _proxy_for(self._url)
            proxy = httpcore.Proxy(proxy_url) if proxy_url else None
            pools = [
                httpcore.AsyncConnectionPool(
                    ssl_context=tls,
                    proxy=proxy,
                    max_connections=per_pool,
                    max_keepalive_connections=per_pool,
                )
                for _ in range(count)
            ]
            state = _LoopState(pools, _Slots(count, self.max_concurrency))
            self._states[loop] = state
        return state

    async def aclose(self) -> None:
        """Close the connections of the running loop."""
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            for pool in state.pools:
                await pool.aclose()

    def request_body(self, messages: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        body.update(self.extra_body)
        return body

    async def complete(
        self, messages: Sequence[Mapping[str, str]], *, priority: int = 0
    ) -> ChatResult:
        """One answer to ``messages``, after at most ``retry.max_retries`` retries.

        ``priority``: requests already made for the same judgment (re-asks go ahead of new
        pairs, like retries do)."""
        state = self._state()
        payload = json.dumps(self.request_body(messages)).encode("utf-8")
        headers = [*self._headers, (b"Content-Length", str(len(payload)).encode())]
        attempts = 0
        rounds = 0
        while True:
            rounds += 1
            reply, sent = await self._exchange(state, priority + attempts, payload, headers)
            attempts += sent
            retry_after: float | None = None
            error = reply.error
            response = reply.response
            if response is not None:
                status = response.status
                text = response.content[:300].decode("utf-8", "replace")
                if status == 200:
                    result = self._parse_success(response.content, attempts)
                    if result is not None:
                        return result
                    error = f"malformed completion body: {text!r}"
                else:
                    error = f"HTTP {status}: {text}"
                    if not reply.decisive:
                        retry_after = parse_retry_after(
                            {k.decode("latin-1"): v.decode("latin-1") for k, v in response.headers}
                        )
                    else:
                        # 400/401/403/404: retrying cannot help; the caller must fix something.
                        return ChatResult(None, None, attempts, error=error)
            if rounds > self.retry.max_retries:
                return ChatResult(None, None, attempts, error=f"{error} (after {attempts} tries)")
            self.stats.retries += 1
            await asyncio.sleep(self.retry.delay(rounds - 1, retry_after, self._rng))

    async def _exchange(
        self,
        state: _LoopState,
        priority: int,
        payload: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> tuple[_Reply, int]:
        """One round: the request, plus a hedge when it is slow and a slot is idle. Returns
        the reply to use and the number of requests sent."""
        slot = await state.slots.acquire(priority)
        delay = self._current_hedge_delay() if self.hedge else None
        if delay is None:
            return await self._send(state, slot, payload, headers), 1
        started = time.perf_counter()
        first = asyncio.create_task(self._send(state, slot, payload, headers))
        pending: set[asyncio.Task[_Reply]] = {first}
        hedge_slot: asyncio.Task[int] | None = None
        hedge: asyncio.Task[_Reply] | None = None
        try:
            done, _ = await asyncio.wait(pending, timeout=delay)
            if not done:
                hedge_slot = asyncio.create_task(state.slots.acquire(HEDGE_PRIORITY))
                await asyncio.wait({first, hedge_slot}, return_when=asyncio.FIRST_COMPLETED)
                # The slot may be the one the first request just gave back: no hedge then.
                if hedge_slot.done() and not first.done():
                    hedge = asyncio.create_task(
                        self._send(state, hedge_slot.result(), payload, headers)
                    )
                    hedge_slot = None
                    pending.add(hedge)
                    self.stats.hedges += 1
            reply = _Reply(None, "no request completed")
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                # When both are done, prefer the request that came first.
                for task in sorted(done, key=lambda t: t is not first):
                    reply = task.result()
                    if reply.decisive:
                        if task is hedge:
                            self.stats.hedge_wins += 1
                            # The first copy took at least this long: keep the slow tail in
                            # the window the delay comes from, or the delay would shrink.
                            self._latencies.append(time.perf_counter() - started)
                        return reply, 1 + (hedge is not None)
            return reply, 1 + (hedge is not None)
        finally:
            for task in pending:
                task.cancel()  # the loser: _send releases its slot
            for copy in (first, hedge):
                if copy is not None and copy.done() and not copy.cancelled():
                    copy.exception()  # read: an unused copy's failure is not "never retrieved"
            if hedge_slot is not None:
                self._cancel_slot_request(state, hedge_slot)

    @staticmethod
    def _cancel_slot_request(state: _LoopState, request: asyncio.Task[int]) -> None:
        """Withdraw a hedge's wait for a slot; a slot it was already given goes back."""
        if request.cancel():
            return  # still waiting: acquire() hands on any slot it gets while cancelled
        if not request.cancelled() and request.exception() is None:
            state.slots.release(request.result())

    async def _send(
        self,
        state: _LoopState,
        slot: int,
        payload: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> _Reply:
        """One HTTP request on ``slot``'s pool; the slot is released when it ends."""
        self.stats.requests += 1
        started = time.perf_counter()
        release_after = 0.0
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await state.pools[slot].request(
                    b"POST",
                    self._url,
                    headers=headers,
                    content=payload,
                    extensions=self._timeouts,
                )
        except (TimeoutError, httpcore.TimeoutException):
            # The endpoint counts the abandoned request until it sees the connection close;
            # reusing the slot at once would be answered with a 429.
            release_after = _TIMEOUT_GRACE_S
            return _Reply(None, f"timed out after {self.timeout_s:g} s")
        except _CONNECTION_ERRORS as exc:
            return _Reply(None, f"connection error: {type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            # Abandoned (the other copy of a hedged request answered first, or the caller was
            # cancelled): as above, the endpoint still counts it for a moment.
            release_after = _TIMEOUT_GRACE_S
            raise
        finally:
            if release_after:
                state.slots.release_later(slot, release_after)
            else:
                state.slots.release(slot)
        if response.status == 200:
            self._latencies.append(time.perf_counter() - started)
            self._answers += 1
        return _Reply(response)

    def _current_hedge_delay(self) -> float | None:
        """``hedge_after_s``, or the 95th percentile of recent latencies but at least 50 ms
        (None until enough answers have come back), re-estimated every 16 answers rather than
        on every request."""
        if self.hedge_after_s is not None:
            return self.hedge_after_s
        if self._answers < _MIN_LATENCIES:
            return None
        if self._hedge_delay is None or self._answers - self._answers_at_estimate >= 16:
            ordered = sorted(self._latencies)
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            self._hedge_delay = max(_MIN_HEDGE_DELAY_S, p95)
            self._answers_at_estimate = self._answers
        return self._hedge_delay

    @staticmethod
    def _parse_success(content: bytes, attempts: int) -> ChatResult | None:
        """The answer in a 200 body, or None when the body is not a chat completion."""
        try:
            body = json.loads(content)
            content = body["choices"][0]["message"]["content"]
            usage_body = body.get("usage") or {}
            usage = Usage(
                int(usage_body.get("prompt_tokens") or 0),
                int(usage_body.get("completion_tokens") or 0),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None
        return ChatResult(content if isinstance(content, str) else "", body, attempts, usage)


def build_transport(
    spec: EndpointSpec,
    purpose: Purpose,
    *,
    registry: EndpointRegistry | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> ChatTransport:
    """The one place an endpoint spec becomes a transport (for judges, scorers, graders and
    writers): the registry resolves the spec's endpoint name to its base URL, model and key
    now, and the request body gets the endpoint's and the spec's ``extra_body``, the
    structured-output fields for ``purpose`` (see
    :func:`~rl_engine.judging.endpoints.structured_body`) and the seed."""
    resolved = (registry or default_registry()).resolve(spec)
    if resolved.kind != "openai":
        raise ValueError(
            f"endpoint {resolved.endpoint.name!r} is a {resolved.kind} endpoint, not an "
            "OpenAI-compatible one"
        )
    body = {
        **resolved.extra_body,
        **(extra_body or {}),
        **structured_body(resolved.structured_output, purpose),
    }
    if spec.seed is not None:
        body["seed"] = spec.seed
    return ChatTransport(
        resolved.base_url,
        resolved.model,
        api_key=resolved.api_key,
        max_concurrency=spec.max_concurrency,
        timeout_s=spec.timeout_s,
        retry=RetryPolicy(max_retries=spec.max_retries),
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        extra_body=body,
        seed=spec.seed,
        hedge=spec.hedge,
        structured_output=resolved.structured_output,
    )
