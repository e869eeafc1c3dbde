"""One chat-completion call, made robustly: rate limits, retries with backoff, timeouts.

``openai.AsyncOpenAI`` is created with ``max_retries=0`` so that this module owns the retry
policy: exponential backoff with full jitter on 429, 5xx, timeouts, connection errors and
malformed bodies, honouring ``Retry-After``; any other 4xx is permanent and fails at once.
API keys are read from the environment by variable *name* and never stored or logged.

``openai`` is imported on first use: it takes about two seconds, which every ``emaudit``
command would otherwise pay at start-up.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai

__all__ = [
    "ChatClient",
    "ChatResult",
    "RateLimiter",
    "RequestFailed",
    "RetryPolicy",
    "estimate_tokens",
]


@dataclass(frozen=True)
class RetryPolicy:
    """How to retry a failed request.

    Attributes:
        max_attempts: Attempts in total (1 = no retry).
        base_delay: Backoff before the 2nd attempt is drawn from [0, base_delay]; doubles each time.
        max_delay: Cap on one backoff (and on an honoured ``Retry-After``).
        timeout: Seconds for one request.
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float = 300.0

    def backoff(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter") spreads retries of
        many concurrent requests; a server's ``Retry-After`` is a lower bound.
        """
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        delay = rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay))
        return delay


class RequestFailed(Exception):
    """A request that did not succeed; stored on its row rather than raised to the user.

    Attributes:
        message: What went wrong (status and server message; never the key).
        attempts: Attempts made.
        permanent: True for errors retrying cannot fix (400, 401, 404, ...).
    """

    def __init__(self, message: str, attempts: int, *, permanent: bool) -> None:
        super().__init__(message)
        self.message, self.attempts, self.permanent = message, attempts, permanent


class _Retryable(Exception):
    """A response that came back but is unusable in a way a retry may fix (e.g. no logprobs)."""


@dataclass(frozen=True)
class ChatResult:
    """What one successful chat completion returned."""

    text: str | None
    reasoning: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    attempts: int
    top_logprobs: dict[str, float] | None = None
    texts: tuple[str | None, ...] = ()
    model: str | None = None


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A rough prompt-token count (4 characters per token, plus a few per message) for limits
    and dry-run estimates; the stored counts come from the API's ``usage``."""
    return sum(len(str(m.get("content") or "")) // 4 + 4 for m in messages) + 2


class RateLimiter:
    """Requests-per-minute and tokens-per-minute token buckets, shared by all workers.

    Each bucket holds at most one minute's allowance and refills continuously; a request waits
    until both buckets can pay for it. A request larger than a whole minute's allowance is
    clamped to it so it can still go through.
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm, self.tpm, self._clock = rpm, tpm, clock
        now = clock()
        self._requests = rpm or 0.0
        self._tokens = tpm or 0.0
        self._last = now
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed, self._last = now - self._last, now
        if self.rpm:
            self._requests = min(self.rpm, self._requests + elapsed * self.rpm / 60)
        if self.tpm:
            self._tokens = min(self.tpm, self._tokens + elapsed * self.tpm / 60)

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until one request of ``tokens`` tokens fits both limits, then pay for it."""
        if not self.rpm and not self.tpm:
            return
        async with self._lock:  # FIFO: one waiter at a time, so big requests are not starved
            cost = min(float(tokens), self.tpm) if self.tpm else 0.0
            while True:
                self._refill()
                waits = []
                if self.rpm and self._requests < 1:
                    waits.append((1 - self._requests) * 60 / self.rpm)
                if self.tpm and self._tokens < cost:
                    waits.append((cost - self._tokens) * 60 / self.tpm)
                if not waits:
                    break
                await asyncio.sleep(max(waits))
            if self.rpm:
                self._requests -= 1
            if self.tpm:
                self._tokens -= cost


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _describe(error: BaseException) -> str:
    import openai

    if isinstance(error, openai.APIStatusError):
        # The SDK's message is "Error code: 400 - {body}"; the server's own message says it once.
        body = error.body
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message:
            message = str(error.message).removeprefix(f"Error code: {error.status_code} - ")
        return f"HTTP {error.status_code}: {message}"
    if isinstance(error, openai.APITimeoutError):
        return "request timed out"
    if isinstance(error, openai.APIConnectionError):
        return f"connection error: {error.message}"
    if isinstance(error, ValueError):
        return f"malformed response body: {error}"
    return f"{type(error).__name__}: {error}"


def _reasoning_of(message: Any) -> str | None:
    # Reasoning endpoints return it outside the OpenAI schema: DeepSeek/vLLM use
    # ``reasoning_content``, OpenRouter uses ``reasoning``.
    extra = getattr(message, "model_extra", None) or {}
    for key in ("reasoning_content", "reasoning"):
        value = extra.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass
class ChatClient:
    """An ``AsyncOpenAI`` client for one endpoint, with its limiter and retry policy.

    Args:
        base_url: The endpoint's base URL.
        api_key_env: Name of the environment variable with the key (None: no key needed).
        retry: Retry and timeout policy.
        limiter: Shared RPM/TPM limiter (default: unlimited).
        rng: Source of jitter (seed it in tests).
        on_retry: Called with a short description of each failed attempt that will be retried.
    """

    base_url: str
    api_key_env: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    rng: random.Random = field(default_factory=random.Random)
    on_retry: Callable[[str], None] | None = None
    _client: openai.AsyncOpenAI | None = field(default=None, init=False, repr=False)
    _owner: ChatClient | None = field(default=None, init=False, repr=False)

    def sharing(self, retry: RetryPolicy) -> ChatClient:
        """A client with another retry policy on this one's connections (the probe's).

        A second ``AsyncOpenAI`` would load its own TLS context (about 30 ms of CPU, even for
        ``http://``) and open its own connections; closing the returned client leaves this
        one's open. Its ``retry.timeout`` is sent with each request.
        """
        shared = ChatClient(self.base_url, self.api_key_env, retry, self.limiter, self.rng)
        shared._owner = self
        return shared

    def _openai(self) -> openai.AsyncOpenAI:
        import openai

        if self._owner is not None:
            return self._owner._openai()
        if self._client is None:
            key = os.environ.get(self.api_key_env) if self.api_key_env else None
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=key or "no-key",  # local servers ignore it; the SDK insists on one
                max_retries=0,
                timeout=self.retry.timeout,
            )
        return self._client

    async def close(self) -> None:
        """Close the underlying HTTP connections (a :meth:`sharing` client leaves them open)."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        params: Mapping[str, Any],
        token_estimate: int = 0,
        want_logprobs: bool = False,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> ChatResult:
        """Make one chat completion, retrying transient failures.

        Args:
            model: Model name.
            messages: The chat messages, sent exactly as given.
            params: Every other request parameter (temperature, max_tokens, logprobs, ...).
            token_estimate: Tokens to charge the TPM limiter.
            want_logprobs: Treat a response without first-token ``top_logprobs`` as a transient
                failure (some servers drop them under load) and return them.
            sleep: Backoff sleep (default ``asyncio.sleep``; tests may record or shorten it).

        Raises:
            RequestFailed: after a permanent error or ``max_attempts`` transient ones.
        """
        import openai

        client = self._openai()
        last = "no attempt made"
        for attempt in range(1, self.retry.max_attempts + 1):
            await self.limiter.acquire(token_estimate)
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                # messages are plain dicts (stored as JSON), not the SDK's TypedDicts
                create: Any = client.chat.completions.create
                if self._owner is not None and self.retry.timeout != self._owner.retry.timeout:
                    completion = await create(
                        model=model, messages=messages, timeout=self.retry.timeout, **dict(params)
                    )
                else:
                    completion = await create(model=model, messages=messages, **dict(params))
                return self._result(completion, started, attempt, want_logprobs)
            except openai.APIStatusError as error:
                last = _describe(error)
                if error.status_code != 429 and error.status_code < 500 and error.status_code != 408:
                    raise RequestFailed(last, attempt, permanent=True) from None
                retry_after = _retry_after(error)
            except (
                openai.APIConnectionError,
                openai.APIResponseValidationError,
                ValueError,
                _Retryable,
            ) as error:
                last = str(error) if isinstance(error, _Retryable) else _describe(error)
            if attempt < self.retry.max_attempts:
                if self.on_retry is not None:
                    self.on_retry(last)
                await (sleep or asyncio.sleep)(self.retry.backoff(attempt, retry_after, self.rng))
        raise RequestFailed(
            f"{last} (gave up after {self.retry.max_attempts} attempts)",
            self.retry.max_attempts,
            permanent=False,
        )

    @staticmethod
    def _result(completion: Any, started: float, attempt: int, want_logprobs: bool) -> ChatResult:
        latency_ms = (time.perf_counter() - started) * 1000
        choices = getattr(completion, "choices", None)
        if not choices:
            raise _Retryable("response has no choices")
        choice = choices[0]
        top: dict[str, float] | None = None
        content = getattr(choice.logprobs, "content", None) if choice.logprobs is not None else None
        if want_logprobs and (not content or not content[0].top_logprobs):
            raise _Retryable("response has no logprobs (is logprobs supported by this endpoint?)")
        if content and content[0].top_logprobs:
            top = {}
            for entry in content[0].top_logprobs:
                # the same token can appear twice in some servers' lists; keep the larger
                top[entry.token] = max(entry.logprob, top.get(entry.token, float("-inf")))
        usage = getattr(completion, "usage", None)
        return ChatResult(
            text=choice.message.content,
            reasoning=_reasoning_of(choice.message),
            finish_reason=choice.finish_reason,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            latency_ms=latency_ms,
            attempts=attempt,
            top_logprobs=top,
            texts=tuple(c.message.content for c in choices),
            model=getattr(completion, "model", None),
        )
