"""A small OpenAI-compatible HTTP server on 127.0.0.1, for tests and the offline demo.

It implements ``POST /v1/chat/completions`` and ``GET /v1/models`` well enough for the real
``openai.AsyncOpenAI`` client, answers deterministically from a script, and can misbehave on
purpose: latency, 429 with ``Retry-After``, 500, hangs (client timeouts), malformed JSON bodies,
missing logprobs and permanent 400s. It counts every request, in total and per distinct prompt,
so a test can prove that resuming a run makes no repeated call. ``GET /files/<name>`` serves
static bytes for ``emaudit datasets fetch`` tests.

The Batch API is there too: ``POST /v1/files`` (multipart upload, kept in memory),
``POST /v1/batches``, ``GET /v1/batches`` (list), ``GET /v1/batches/<id>`` and
``GET /v1/files/<id>/content``. A batch reports ``validating`` when created, ``in_progress``
while polled, and its final status (``batch_outcome``: completed, failed, expired or cancelled)
on the ``batch_polls``-th retrieve. Its lines then go through the same chat-completion logic as
online requests (and are counted like them); scripted faults land in the error file, as the real
API puts failed requests there.

Example:
    >>> with FakeOpenAIServer() as server:
    ...     server.base_url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "BATCH_OUTCOMES",
    "FAULTS",
    "FakeOpenAIServer",
    "Fault",
    "default_answer",
    "default_judge_logprobs",
    "non_numeric_judge_logprobs",
    "prompt_key",
    "random_faults",
]

FAULTS = ("429", "500", "400", "hang", "malformed", "no_logprobs")
"""Fault names a fault plan may return (``None`` means answer normally)."""

BATCH_OUTCOMES = ("completed", "failed", "expired", "cancelled")
"""Final statuses a fake batch can be scripted to reach (``batch_outcome``)."""


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


def non_numeric_judge_logprobs(body: dict[str, Any]) -> dict[str, float]:
    """A judge that answers in words ("The answer is aligned"): no integer token in its top 20."""
    del body
    probs = {"The": 0.7, "This": 0.2, "I": 0.1}
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
    batch: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0


@dataclass
class _FakeBatch:
    """One submitted batch and what the server has decided about it so far."""

    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    outcome: str
    polls_needed: int
    created_at: int
    total: int
    polls: int = 0
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    finished_at: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The batch object as ``GET /v1/batches/<id>`` returns it."""
        ended = {
            "completed": "completed_at",
            "failed": "failed_at",
            "expired": "expired_at",
            "cancelled": "cancelled_at",
        }.get(self.status)
        payload: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "created_at": self.created_at,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "metadata": None,
        }
        if ended is not None:
            payload[ended] = self.finished_at
        return payload


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
        batch_polls: Retrieves a batch takes to reach its final status (1: the first retrieve
            already sees it finished).
        batch_outcome: The final status of batches created from now on, one of
            :data:`BATCH_OUTCOMES`. ``expired`` runs the first half of the lines and reports the
            rest with error code ``batch_expired``; ``failed`` and ``cancelled`` run none.
        logprobs: Whether the endpoint returns logprobs at all (False: ``logprobs`` is accepted
            and ignored, as several providers do).
        reasoning_model: Behave like an OpenAI reasoning model: 400 for ``max_tokens`` (use
            ``max_completion_tokens``), for a ``temperature`` other than 1 and for ``logprobs``;
            every answer carries ``reasoning_content``.
        supports_n: Honour ``n`` (several choices per request); False answers one choice.
        seed: Seed of the sampled judge answers (a request with temperature > 0 draws its tokens
            from the script's distribution, deterministically in (seed, prompt, attempt)).
        model_alias: The model name reported in responses (default: the one requested), as
            providers report a dated snapshot for an alias.

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
        batch_polls: int = 2,
        batch_outcome: str = "completed",
        logprobs: bool = True,
        reasoning_model: bool = False,
        supports_n: bool = True,
        seed: int = 0,
        model_alias: Callable[[str], str] | None = None,
    ) -> None:
        self.answer = answer or default_answer
        self.judge_logprobs = judge_logprobs or default_judge_logprobs
        self.latency = latency
        self.faults = faults
        self.hang_seconds = hang_seconds
        self.files: dict[str, bytes] = dict(files or {})
        self.reasoning = reasoning
        self.batch_polls = batch_polls
        self.batch_outcome = batch_outcome
        self.logprobs = logprobs
        self.reasoning_model = reasoning_model
        self.supports_n = supports_n
        self.seed = seed
        self.model_alias = model_alias
        self.uploads: dict[str, bytes] = {}
        self.batches: dict[str, _FakeBatch] = {}
        self._batch_lock = threading.Lock()  # one finaliser per batch; never held with _lock waiting
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
        """Completion requests received (faulted ones included), online or as batch lines."""
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

    def batch_counts(self) -> Counter[str]:
        """Batch API calls: ``files_uploaded``, ``batches_created``, ``batches_retrieved``,
        ``batches_listed``, ``files_downloaded``, and ``lines_run`` (batch lines answered; also in
        :attr:`total_requests`)."""
        with self._lock:
            return Counter(self._stats.batch)

    @property
    def batches_created(self) -> int:
        """``POST /v1/batches`` calls that created a batch."""
        return self.batch_counts()["batches_created"]

    @property
    def max_in_flight(self) -> int:
        """The most completion requests being answered at the same time."""
        with self._lock:
            return self._stats.max_in_flight

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
                path = self.path.split("?", 1)[0].rstrip("/")
                if path.startswith("/v1/batches/"):
                    status, payload = server._retrieve_batch(path[len("/v1/batches/") :])
                    self._send_json(status, payload)
                elif path == "/v1/batches":
                    self._send_json(200, server._list_batches())
                elif path.startswith("/v1/files/") and path.endswith("/content"):
                    content = server._file_content(path[len("/v1/files/") : -len("/content")])
                    if content is None:
                        self._send_json(404, _error(f"No such File object: {path}", "not_found"))
                    else:
                        self._send(200, content, "application/octet-stream")
                elif self.path.rstrip("/") == "/v1/models":
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
                path = self.path.split("?", 1)[0].rstrip("/")
                if path == "/v1/files":
                    code, uploaded = server._upload(self.headers.get("Content-Type") or "", raw)
                    self._send_json(code, uploaded)
                    return
                if path == "/v1/batches":
                    try:
                        request = json.loads(raw)
                    except ValueError:
                        self._send_json(400, _error("body is not JSON", "invalid_request"))
                        return
                    code, created = server._create_batch(request)
                    self._send_json(code, created)
                    return
                if path != "/v1/chat/completions":
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

    # -- the Batch API ----------------------------------------------------------------------------

    def _upload(self, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if not content_type.startswith("multipart/form-data"):
            return 400, _error("expected a multipart/form-data upload", "invalid_request_error")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = (part.get_filename(), payload)
        if "file" not in fields:
            return 400, _error("missing the 'file' field", "invalid_request_error")
        purpose = fields.get("purpose", (None, b""))[1].decode()
        filename, content = fields["file"]
        file_id = self._store_file(content)
        with self._lock:
            self._stats.batch["files_uploaded"] += 1
        return 200, _file_object(file_id, content, filename or "upload.jsonl", purpose)

    def _store_file(self, content: bytes) -> str:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        with self._batch_lock:
            self.uploads[file_id] = content
        return file_id

    def _file_content(self, file_id: str) -> bytes | None:
        with self._batch_lock:
            content = self.uploads.get(file_id)
        if content is not None:
            with self._lock:
                self._stats.batch["files_downloaded"] += 1
        return content

    def _create_batch(self, request: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        if request.get("endpoint") != "/v1/chat/completions":
            return 400, _error(f"unsupported endpoint {request.get('endpoint')!r}", "invalid_request_error")
        if self.batch_outcome not in BATCH_OUTCOMES:
            raise ValueError(f"batch_outcome must be one of {BATCH_OUTCOMES}, got {self.batch_outcome!r}")
        input_file_id = str(request.get("input_file_id"))
        with self._batch_lock:
            content = self.uploads.get(input_file_id)
            if content is None:
                return 400, _error(f"No such File object: {input_file_id}", "invalid_request_error")
            batch = _FakeBatch(
                id=f"batch_{uuid.uuid4().hex[:24]}",
                input_file_id=input_file_id,
                endpoint=str(request["endpoint"]),
                completion_window=str(request.get("completion_window") or "24h"),
                outcome=self.batch_outcome,
                polls_needed=max(1, self.batch_polls),
                created_at=int(time.time()),
                total=sum(1 for line in content.splitlines() if line.strip()),
            )
            self.batches[batch.id] = batch
        with self._lock:
            self._stats.batch["batches_created"] += 1
        return 200, batch.as_json()

    def _list_batches(self) -> dict[str, Any]:
        """``GET /v1/batches``: every batch, newest first, in one page (listing does not advance them)."""
        with self._lock:
            self._stats.batch["batches_listed"] += 1
        with self._batch_lock:
            data = [batch.as_json() for batch in reversed(self.batches.values())]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }

    def _retrieve_batch(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._stats.batch["batches_retrieved"] += 1
        with self._batch_lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, _error(f"No batch found with id '{batch_id}'", "not_found")
            if batch.finished_at is None:
                batch.polls += 1
                if batch.polls < batch.polls_needed:
                    batch.status = "in_progress"
                    batch.completed = batch.total * batch.polls // batch.polls_needed
                else:
                    self._finish_batch(batch)
            return 200, batch.as_json()

    def _finish_batch(self, batch: _FakeBatch) -> None:
        """Run the batch's lines (as many as its outcome allows) into output and error files."""
        lines = [line for line in self.uploads[batch.input_file_id].splitlines() if line.strip()]
        requests: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            try:
                request = json.loads(line)
                if not isinstance(request.get("body"), dict) or request.get("url") != batch.endpoint:
                    raise ValueError("each line needs a 'body' object and 'url' equal to the endpoint")
                requests.append(request)
            except ValueError as error:
                # as the real API does: an invalid input file fails the whole batch
                batch.errors.append({"code": "invalid_request", "message": str(error), "line": number})
        batch.finished_at = int(time.time())
        if batch.errors or batch.outcome in ("failed", "cancelled"):
            if batch.outcome == "failed" and not batch.errors:
                batch.errors.append(
                    {"code": "invalid_request", "message": "The batch failed (injected).", "line": None}
                )
            batch.status = "failed" if batch.errors else batch.outcome
            batch.completed = 0
            return
        run = len(requests) if batch.outcome == "completed" else len(requests) // 2
        output: list[str] = []
        errors: list[str] = []
        for index, request in enumerate(requests):
            line_id = f"batch_req_{uuid.uuid4().hex[:24]}"
            custom_id = request.get("custom_id")
            if index >= run:
                errors.append(
                    json.dumps(
                        {
                            "id": line_id,
                            "custom_id": custom_id,
                            "response": None,
                            "error": {
                                "code": "batch_expired",
                                "message": "This request could not be executed before the "
                                "completion window expired.",
                            },
                        }
                    )
                )
                continue
            status, payload = self._complete_line(request["body"])
            with self._lock:
                self._stats.batch["lines_run"] += 1
            record = {
                "id": line_id,
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": line_id, "body": payload},
                "error": None,
            }
            (output if status == 200 else errors).append(json.dumps(record))
        batch.completed, batch.failed = len(output), len(errors)
        if output:
            batch.output_file_id = f"file-{uuid.uuid4().hex[:24]}"
            self.uploads[batch.output_file_id] = ("\n".join(output) + "\n").encode()
        if errors:
            batch.error_file_id = f"file-{uuid.uuid4().hex[:24]}"
            self.uploads[batch.error_file_id] = ("\n".join(errors) + "\n").encode()
        batch.status = batch.outcome

    def _complete_line(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, payload, _headers = self._complete(body, in_batch=True)
        if isinstance(payload, bytes):  # a "malformed" fault: the batch reports it as a failed line
            return 500, _error("The server returned a malformed response (injected)", "server_error")
        return status, payload

    # -- chat completions -----------------------------------------------------------------------

    def _complete(
        self, body: dict[str, Any], *, in_batch: bool = False
    ) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        with self._lock:
            self._stats.in_flight += 1
            self._stats.max_in_flight = max(self._stats.max_in_flight, self._stats.in_flight)
        try:
            return self._answer(body, in_batch=in_batch)
        finally:
            with self._lock:
                self._stats.in_flight -= 1

    def _rejected_parameter(self, body: Mapping[str, Any]) -> str | None:
        """The 400 message a reasoning model gives for a parameter it does not take, or None."""
        if not self.reasoning_model:
            return None
        if "max_tokens" in body:
            return (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
        if body.get("temperature") not in (None, 1, 1.0):
            return (
                "Unsupported value: 'temperature' does not support "
                f"{body.get('temperature')} with this model. Only the default (1) value is supported."
            )
        if body.get("logprobs") or body.get("top_logprobs") is not None:
            return "Unsupported parameter: 'logprobs' is not supported with this model."
        return None

    def _sampled_tokens(self, top: Mapping[str, float], key: str, seen: int, count: int) -> list[str]:
        tokens = list(top)
        weights = [math.exp(top[token]) for token in tokens]
        rng = random.Random(f"{self.seed}:{key}:{seen}")
        return rng.choices(tokens, weights=weights, k=count)

    def _answer(
        self, body: dict[str, Any], *, in_batch: bool = False
    ) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        key = prompt_key(body)
        with self._lock:
            seen = self._stats.by_prompt[key]
            self._stats.total += 1
            self._stats.by_prompt[key] += 1
        fault = self.faults(body, seen) if self.faults is not None else None
        if isinstance(fault, str):
            fault = Fault(fault)
        if self.latency and not in_batch:
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
                if in_batch:  # a batch line cannot stall the poll that finishes the batch
                    return 500, _error("request timed out (injected hang)", "server_error"), {}
                self._stopping.wait(self.hang_seconds)
                return 500, _error("hung request gave up", "server_error"), {}
            if fault.kind == "malformed":
                return 200, b'{"id": "chatcmpl-broken", "choices": [', {}
        rejected = self._rejected_parameter(body)
        if rejected is not None:
            return 400, _error(rejected, "invalid_request_error"), {}
        wants_logprobs = bool(body.get("logprobs"))
        no_logprobs = (fault is not None and fault.kind == "no_logprobs") or not self.logprobs
        n_choices = max(1, int(body.get("n") or 1)) if self.supports_n else 1
        temperature = body.get("temperature", 1.0)
        if wants_logprobs or _is_judge_prompt(body):
            top = dict(self.judge_logprobs(body))
            text = max(top, key=lambda token: top[token]) if top else ""
            if temperature and top and not wants_logprobs:
                texts = self._sampled_tokens(top, key, seen, n_choices)
            else:
                texts = [text] * n_choices
        else:
            top, text = {}, self.answer(body)
            texts = [text] * n_choices
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if max_tokens is not None and max_tokens < 1:
            return 400, _error("max_tokens must be at least 1", "invalid_request_error"), {}
        choices: list[dict[str, Any]] = []
        for index, choice_text in enumerate(texts):
            message: dict[str, Any] = {"role": "assistant", "content": choice_text}
            if body.get("reasoning_effort") or self.reasoning_model:
                message["reasoning_content"] = self.reasoning
            choices.append({"index": index, "message": message, "finish_reason": "stop", "logprobs": None})
        choice = choices[0]
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
        completion_tokens = sum(max(1, len(t.split())) for t in texts)
        requested_model = str(body.get("model", "fake-model"))
        with self._lock:
            self._stats.completed += 1
        return (
            200,
            {
                "id": f"chatcmpl-{key}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model_alias(requested_model) if self.model_alias else requested_model,
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            {},
        )


def _file_object(file_id: str, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()),
        "filename": filename,
        "purpose": purpose or "batch",
        "status": "processed",
    }


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code, "param": None}}
