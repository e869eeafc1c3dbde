"""Find out, with one to three cheap requests, how a judge endpoint can be used.

Betley et al. (2025) score with the top-20 logprobs of one output token; many newer judges
cannot do that (reasoning models return no logprobs and reject ``max_tokens`` and
``temperature``; some providers drop logprobs). The probe sends the aligned prompt about a
harmless answer and records:

* whether the endpoint is reachable at all (a wrong port stops the run with one line instead
  of retrying every request);
* whether it returns ``top_logprobs`` and honours ``max_tokens=1``;
* whether the judge answers with a number (an integer token carrying >= 0.25 of the mass, or
  a parseable sampled answer);
* whether it rejects the logprob parameters as a reasoning model does, and then answers with
  ``max_completion_tokens`` and no temperature;
* whether it honours ``n`` (several samples per request).

The chosen mode is ``logprobs`` when possible, else ``sampled`` (the expected score from ``k``
samples, :func:`emaudit.judge.scoring.score_from_samples`), else none: the judge is flagged
unusable. Each result is also written to ``EMAUDIT_DATA_DIR/judge_probes.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from emaudit.settings import get_settings

from .client import ChatClient, RequestFailed, RetryPolicy
from .scoring import parse_sampled_answer, score_from_top_logprobs

__all__ = [
    "LOGPROB_PARAMS",
    "PROBE_ANSWER",
    "PROBE_QUESTION",
    "REASONING_MAX_COMPLETION_TOKENS",
    "ProbeResult",
    "probe_endpoint",
    "record_probe",
    "sampled_params",
]

LOGPROB_PARAMS: dict[str, Any] = {"logprobs": True, "top_logprobs": 20, "max_tokens": 1, "temperature": 0}
"""Betley et al. (2025): one token, top-20 logprobs, temperature 0."""

SAMPLED_MAX_TOKENS = 16
REASONING_MAX_COMPLETION_TOKENS = 2000
"""Reasoning models spend completion tokens thinking before the number; 16 would cut them off."""

PROBE_QUESTION = "What is a good way to spend a free afternoon?"
PROBE_ANSWER = "Go for a walk in a park, read a book, or call a friend you have not spoken to in a while."

_REASONING_HINTS = ("max_completion_tokens", "max_tokens", "temperature", "logprobs", "unsupported")


def sampled_params(samples: int, *, reasoning: bool) -> dict[str, Any]:
    """Request parameters of sampled mode: ``n`` samples at temperature 1.

    Temperature 1 (the model's own distribution) makes the mean of the samples an estimate of
    the expectation the logprob method computes; a reasoning model gets no temperature (only
    the default is allowed) and ``max_completion_tokens`` room to think.
    """
    if reasoning:
        return {"max_completion_tokens": REASONING_MAX_COMPLETION_TOKENS, "n": samples}
    return {"temperature": 1.0, "max_tokens": SAMPLED_MAX_TOKENS, "n": samples}


@dataclass(frozen=True)
class ProbeResult:
    """What the probe found about one judge endpoint.

    Attributes:
        base_url / model: The endpoint and judge model asked.
        reachable: A request came back (False: connection refused, timeout, 401, 404, ...).
        error: Why the judge cannot be used (None when it can).
        reported_model: The model the response named (providers resolve aliases to snapshots).
        logprobs: It returned first-token ``top_logprobs``.
        max_tokens_honoured: With ``max_tokens=1`` it returned at most one completion token
            (None: not asked, or no usage reported).
        numeric: The judge answered the Betley prompt with a number.
        reasoning: It rejected the logprob parameters as a reasoning model does and answered
            with ``max_completion_tokens`` instead.
        n_supported: A request with ``n=2`` returned two samples (None: not asked).
        mode: ``logprobs``, ``sampled`` or None (unusable).
        notes: Short remarks for the verdict line.
    """

    base_url: str
    model: str
    reachable: bool
    error: str | None = None
    reported_model: str | None = None
    logprobs: bool = False
    max_tokens_honoured: bool | None = None
    numeric: bool = False
    reasoning: bool = False
    n_supported: bool | None = None
    mode: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def verdict(self) -> str:
        """One line: the judge, the chosen mode and why."""
        head = f"{self.model} at {self.base_url}"
        if self.mode is None:
            return f"{head}: unusable: {'; '.join((str(self.error), *self.notes))}"
        parts = [
            "logprobs" if self.logprobs else "no logprobs",
            "numeric answers" if self.numeric else "non-numeric answers",
        ]
        if self.reasoning:
            parts.append("reasoning model (max_completion_tokens, default temperature)")
        if self.max_tokens_honoured is False:
            parts.append("ignores max_tokens=1")
        if self.n_supported is not None:
            parts.append("n-sampling" if self.n_supported else "no n-sampling")
        if self.reported_model and self.reported_model != self.model:
            parts.append(f"reports model {self.reported_model}")
        parts.extend(self.notes)
        return f"{head}: {self.mode} mode ({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return asdict(self) | {"notes": list(self.notes)}


def _probe_policy(retry: RetryPolicy) -> RetryPolicy:
    # A wrong port must fail in seconds, not after max_attempts x backoff; one retry absorbs a
    # transient 429/5xx.
    return RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=1.0, timeout=min(retry.timeout, 60.0))


def _looks_like_parameter_rejection(failure: RequestFailed) -> bool:
    text = failure.message.lower()
    return failure.message.startswith("HTTP 400") and any(hint in text for hint in _REASONING_HINTS)


async def probe_endpoint(
    client: ChatClient, model: str, prompt: str, *, samples_check: int = 2
) -> ProbeResult:
    """Probe ``model`` behind ``client`` with the filled judge prompt ``prompt``.

    Args:
        client: A client for the endpoint; the probe uses its connections with a short retry
            policy (:meth:`~emaudit.judge.client.ChatClient.sharing`).
        model: The judge model.
        prompt: The aligned judge prompt filled with :data:`PROBE_QUESTION` / :data:`PROBE_ANSWER`.
        samples_check: ``n`` asked in the sampled request, to learn whether ``n`` is honoured.
    """
    probe_client = client.sharing(_probe_policy(client.retry))
    messages = [{"role": "user", "content": prompt}]
    url = client.base_url
    try:
        try:
            first = await probe_client.complete(model=model, messages=messages, params=LOGPROB_PARAMS)
        except RequestFailed as failure:
            if not _looks_like_parameter_rejection(failure):
                return ProbeResult(url, model, reachable=False, error=failure.message)
            return await _probe_sampled(
                probe_client, model, messages, samples_check, reasoning=True, logprobs=False
            )
        honoured = None if first.completion_tokens is None else first.completion_tokens <= 1
        top_logprobs = first.top_logprobs
        if top_logprobs:
            verdict = score_from_top_logprobs(top_logprobs)
            if verdict.score is not None:
                return ProbeResult(
                    url,
                    model,
                    reachable=True,
                    reported_model=first.model,
                    logprobs=True,
                    max_tokens_honoured=honoured,
                    numeric=True,
                    mode="logprobs",
                )
            top = ", ".join(repr(t) for t in sorted(top_logprobs, key=lambda t: -top_logprobs[t])[:3])
            sampled = await _probe_sampled(
                probe_client, model, messages, samples_check, reasoning=False, logprobs=True
            )
            return replace(
                sampled,
                notes=(*sampled.notes, f"first token not a number ({top})"),
                max_tokens_honoured=honoured,
            )
        sampled = await _probe_sampled(
            probe_client, model, messages, samples_check, reasoning=False, logprobs=False
        )
        return replace(sampled, max_tokens_honoured=honoured)
    finally:
        await probe_client.close()


async def _probe_sampled(
    client: ChatClient,
    model: str,
    messages: list[dict[str, Any]],
    samples_check: int,
    *,
    reasoning: bool,
    logprobs: bool,
) -> ProbeResult:
    params = sampled_params(samples_check, reasoning=reasoning)
    try:
        result = await client.complete(model=model, messages=messages, params=params)
    except RequestFailed as failure:
        return ProbeResult(
            client.base_url,
            model,
            reachable=True,
            error=failure.message,
            logprobs=logprobs,
            reasoning=reasoning,
        )
    texts = result.texts or (result.text,)
    numeric = any(parse_sampled_answer(text).score is not None for text in texts)
    shown = (texts[0] or "")[:40]
    return ProbeResult(
        client.base_url,
        model,
        reachable=True,
        error=None if numeric else f"the judge does not answer with a number (it said {shown!r})",
        reported_model=result.model,
        logprobs=logprobs,
        numeric=numeric,
        reasoning=reasoning,
        n_supported=len(texts) >= samples_check,
        mode="sampled" if numeric else None,
    )


def probe_record_path() -> Path:
    """Where probe results are kept: ``EMAUDIT_DATA_DIR/judge_probes.json``."""
    return get_settings().data_dir / "judge_probes.json"


def record_probe(result: ProbeResult, path: Path | None = None) -> Path:
    """Keep ``result`` (keyed by base URL and model, newest wins) in the probe record file."""
    target = path or probe_record_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        records = json.loads(target.read_text(encoding="utf-8"))
        if not isinstance(records, dict):
            records = {}
    except (OSError, ValueError):
        records = {}
    records[f"{result.base_url} {result.model}"] = result.to_dict() | {"probed_at": time.time()}
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(records, indent=2, sort_keys=True), encoding="utf-8")
    temporary.replace(target)
    return target
