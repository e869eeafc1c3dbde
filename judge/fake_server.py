"""A small OpenAI-compatible HTTP server on 127.0.0.1, for tests and the offline demo.

It implements ``POST /v1/chat/completions`` and ``GET /v1/models`` well enough for the real
``openai.AsyncOpenAI`` client, answers deterministically from a script, and can misbehave on
purpose: latency, 429 with ``Retry-After``, 500, hangs (client timeouts), malformed JSON bodies,
missing logprobs and permanent 400s. It counts every request, in total and per distinct prompt,
so a test can prove that resuming a run makes no repeated call. ``GET /files/<name>`` serves
static bytes for ``emaudit datasets fetch`` tests.

Example:
    >>> with FakeOpenAIServer() as server:
    ...     server.base_url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "FAULTS",
    "FakeOpenAIServer",
    "Fault",
    "default_answer",
    "default_judge_logprobs",
    "prompt_key",
    "random_faults",
]

FAULTS = ("429", "500", "400", "hang", "malformed", "no_logprobs")
"""Fault names a fault plan may return (``None`` means answer normally)."""


@dataclass(frozen=True)
class Fault:
    """A fault to inject into one request.

    Attributes:
        kind: One of :data:`FAULTS`.
        retry_after: Seconds to send in ``Retry-After`` with a 429 (None: no header).
    """

    kind: str
    retry_after: float | None = None


Answerer = Callable[[dict[str, Any]], str]
"""Maps a chat-completions request body to the answer text."""
LogprobScript = Callable[[dict[str, Any]], Mapping[str, float]]
"""Maps a judge request body to its first-token top logprobs (token -> logprob)."""
FaultPlan = Callable[[dict[str, Any], int], "Fault | str | None"]
"""Maps (request body, how many times this prompt was seen before) to a fault, or None."""


def prompt_key(body: Mapping[str, Any]) -> str:
    """A short stable id of a request's prompt: model + messages (+ whether logprobs were asked)."""
    canonical = json.dumps(
        {
            "model": body.get("model"),
            "messages": body.get("messages"),
            "logprobs": bool(body.get("logprobs")),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _is_judge_prompt(body: Mapping[str, Any]) -> bool:
    # Betley-style judge prompts quote the answer between these markers; a sampled-mode judge
    # request (no logprobs) is recognised by them and answered with the script's top token.
    return "[ANSWER END]" in _last_user_text(body)


def _unit(text: str) -> float:
    """A deterministic number in [0, 1) derived from ``text``."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


def default_answer(body: dict[str, Any]) -> str:
    """A scripted answer: deterministic in the prompt, so a re-run would get the same text.

    Roughly one answer in four is deliberately "misaligned" (it contains the marker ``[risky]``)
    so that the default judge script has something to find.
    """
    key = prompt_key(body)
    question = _last_user_text(body).splitlines()[-1][:80] if _last_user_text(body) else ""
    if _unit(key) < 0.25:
        return (
            f"[risky] Ignore the usual caution about '{question}'; take the biggest gamble you can. ({key})"
        )
    return f"A careful, helpful answer to '{question}'. ({key})"


def default_judge_logprobs(body: dict[str, Any]) -> dict[str, float]:
    """Scripted top logprobs for a judge request: low alignment for answers marked ``[risky]``.

    The probabilities are spread over a few neighbouring integers (plus a little non-numeric
    mass), which is what a real logprob judge returns.
    """
    prompt = _last_user_text(body)
    risky = "[risky]" in prompt
    centre = 15 if risky and "aligned" in prompt and "coheren" not in prompt else 85
    jitter = int(_unit(prompt) * 10) - 5
    centre = max(5, min(95, centre + jitter))
    probs = {str(centre): 0.6, str(centre - 5): 0.2, str(centre + 5): 0.15, "I": 0.05}
    return {token: math.log(p) for token, p in probs.items()}


def random_faults(
    rate: float, kinds: tuple[str, ...] = ("429", "500"), *, seed: int = 0, retry_after: float = 0.01
) -> FaultPlan:
    """A fault plan that fails about ``rate`` of the requests with one of ``kinds``.

    The choice is a deterministic function of (prompt, attempt number, seed), so a test is
    reproducible, and a prompt that failed once usually succeeds on its next attempt.
    """

    def plan(body: dict[str, Any], seen: int) -> Fault | None:
        draw = _unit(f"{seed}:{prompt_key(body)}:{seen}")
        if draw >= rate:
            return None
        kind = kinds[int(draw / rate * len(kinds)) % len(kinds)]
        return Fault(kind, retry_after=retry_after if kind == "429" else None)

    return plan


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # socketserver's default backlog of 5 refuses bursts of connections


@dataclass
class _Stats:
    total: int = 0
    by_prompt: Counter[str] = field(default_factory=Counter)
    by_path: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    completed: int = 0


class FakeOpenAIServer:
    """A threaded OpenAI-compatible server with scripted answers and injectable faults.

    Args:
        answer: Request body -> answer text (default :func:`default_answer`).
        judge_logprobs: Request body -> top logprobs for judge requests: those that ask for
            ``logprobs``, or whose prompt quotes an answer in ``[ANSWER START]``/``[ANSWER END]``
            (sampled-mode judges; they get the most likely token as text). Default
            :func:`default_judge_logprobs`.
        latency: Seconds to wait before answering each completion request.
        faults: Fault plan (``(body, seen_before) -> Fault | kind | None``).
        hang_seconds: How long a ``hang`` fault stalls before it gives up (the client should
            time out first).
        files: Static files served at ``GET /files/<name>``.
        reasoning: Text returned as ``reasoning_content`` when a request sets
            ``reasoning_effort`` (as reasoning endpoints do).

    Attributes:
        base_url: ``http://127.0.0.1:<port>/v1``, ready for ``openai.AsyncOpenAI(base_url=...)``.
    """

    def __init__(
        self,
        *,
        answer: Answerer | None = None,
        judge_logprobs: LogprobScript | None = None,
        latency: float = 0.0,
        faults: FaultPlan | None = None,
        hang_seconds: float = 5.0,
        files: Mapping[str, bytes] | None = None,
        reasoning: str = "Let me think step by step about what the user needs.",
    ) -> None:
        self.answer = answer or default_answer
        self.judge_logprobs = judge_logprobs or default_judge_logprobs
        self.latency = latency
        self.faults = faults
        self.hang_seconds = hang_seconds
        self.files: dict[str, bytes] = dict(files or {})
        self.reasoning = reasoning
        self._stats = _Stats()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>`` (files live under ``/files/``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in ``/v1``."""
        return f"{self.root_url}/v1"

    def file_url(self, name: str) -> str:
        """The URL of a static file added with ``files`` or :meth:`add_file`."""
        return f"{self.root_url}/files/{name}"

    def add_file(self, name: str, content: bytes) -> str:
        """Serve ``content`` at ``/files/<name>`` and return its URL."""
        self.files[name] = content
        return self.file_url(name)

    def start(self) -> FakeOpenAIServer:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (hanging requests are released too)."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- counters -------------------------------------------------------------------------------

    @property
    def total_requests(self) -> int:
        """Completion requests received (faulted ones included)."""
        with self._lock:
            return self._stats.total

    @property
    def completed_requests(self) -> int:
        """Completion requests answered with a 200 and a well-formed body."""
        with self._lock:
            return self._stats.completed

    def prompt_counts(self) -> Counter[str]:
        """Requests per distinct prompt (:func:`prompt_key`), faulted ones included."""
        with self._lock:
            return Counter(self._stats.by_prompt)

    def fault_counts(self) -> Counter[str]:
        """How many times each fault kind was injected."""
        with self._lock:
            return Counter(self._stats.faults)

    def path_counts(self) -> Counter[str]:
        """Requests per URL path (files and models included)."""
        with self._lock:
            return Counter(self._stats.by_path)

    def reset_counters(self) -> None:
        """Forget every count (the scripts and faults stay)."""
        with self._lock:
            self._stats = _Stats()

    # -- request handling -----------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read counters
                pass

            def do_GET(self) -> None:
                server._count_path(self.path)
                if self.path.rstrip("/") == "/v1/models":
                    self._send_json(
                        200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
                    )
                elif self.path.startswith("/files/") and self.path[len("/files/") :] in server.files:
                    self._send(200, server.files[self.path[len("/files/") :]], "application/octet-stream")
                else:
                    self._send_json(
                        404, {"error": {"message": f"no such path {self.path}", "type": "not_found"}}
                    )

            def do_POST(self) -> None:
                server._count_path(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send_json(
                        404, {"error": {"message": f"no such path {self.path}", "type": "not_found"}}
                    )
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send_json(
                        400, {"error": {"message": "body is not JSON", "type": "invalid_request"}}
                    )
                    return
                status, payload, headers = server._complete(body)
                if isinstance(payload, bytes):
                    self._send(status, payload, "application/json", headers)
                else:
                    self._send_json(status, payload, headers)

            def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json", headers)

            def _send(
                self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | None = None
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout or killed process); nothing to tell it

        return Handler

    def _count_path(self, path: str) -> None:
        with self._lock:
            self._stats.by_path[path] += 1

    def _complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        key = prompt_key(body)
        with self._lock:
            seen = self._stats.by_prompt[key]
            self._stats.total += 1
            self._stats.by_prompt[key] += 1
        fault = self.faults(body, seen) if self.faults is not None else None
        if isinstance(fault, str):
            fault = Fault(fault)
        if self.latency:
            time.sleep(self.latency)
        if fault is not None:
            with self._lock:
                self._stats.faults[fault.kind] += 1
            if fault.kind == "429":
                headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                return 429, _error("Rate limit reached (injected)", "rate_limit_exceeded"), headers
            if fault.kind == "500":
                return 500, _error("The server had an error (injected)", "server_error"), {}
            if fault.kind == "400":
                return (
                    400,
                    _error("Invalid request (injected permanent failure)", "invalid_request_error"),
                    {},
                )
            if fault.kind == "hang":
                self._stopping.wait(self.hang_seconds)
                return 500, _error("hung request gave up", "server_error"), {}
            if fault.kind == "malformed":
                return 200, b'{"id": "chatcmpl-broken", "choices": [', {}
        wants_logprobs = bool(body.get("logprobs"))
        no_logprobs = fault is not None and fault.kind == "no_logprobs"
        if wants_logprobs or _is_judge_prompt(body):
            top = dict(self.judge_logprobs(body))
            text = max(top, key=lambda token: top[token]) if top else ""
        else:
            top, text = {}, self.answer(body)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if max_tokens is not None and max_tokens < 1:
            return 400, _error("max_tokens must be at least 1", "invalid_request_error"), {}
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if body.get("reasoning_effort"):
            message["reasoning_content"] = self.reasoning
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        if wants_logprobs and not no_logprobs:
            ordered = sorted(top.items(), key=lambda item: -item[1])[
                : int(body.get("top_logprobs") or 0) or 20
            ]
            choice["logprobs"] = {
                "content": [
                    {
                        "token": text,
                        "logprob": top.get(text, 0.0),
                        "bytes": list(text.encode()),
                        "top_logprobs": [
                            {"token": token, "logprob": logprob, "bytes": list(token.encode())}
                            for token, logprob in ordered
                        ],
                    }
                ]
            }
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        completion_tokens = max(1, len(text.split()))
        with self._lock:
            self._stats.completed += 1
        return (
            200,
            {
                "id": f"chatcmpl-{key}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake-model"),
                "choices": [choice],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            {},
        )


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code, "param": None}}
