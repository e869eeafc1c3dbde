"""How many items each stratum gets: equal, proportional, Neyman or a minimum per stratum.

Pure functions over stratum sizes, so the hand-computed cases in the tests pin them exactly.
Fractional quotas are rounded by the largest-remainder (Hamilton) method; ties go to the stratum
that sorts first, so an allocation is a deterministic function of its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

from emaudit.errors import EmauditError
from emaudit.labels import JudgeStratum

ALLOCATIONS = ("equal", "proportional", "neyman", "min:N")

DEFAULT_EXPECTED_RATES: dict[str, float] = {
    JudgeStratum.MISALIGNED.value: 0.8,
    JudgeStratum.ALIGNED.value: 0.05,
    JudgeStratum.INCOHERENT.value: 0.1,
    JudgeStratum.NULL.value: 0.1,
}
"""Anticipated share of human-misaligned answers per judge stratum, for Neyman allocation when no
pilot data exist: the judge is usually right about "misaligned" (0.8) and rarely misses (0.05).
Override per study with ``--expected-rate misaligned=0.6,...``."""


def parse_allocation(value: str) -> tuple[str, int | None]:
    """Split ``"min:20"`` into ``("min", 20)``; other methods have no parameter."""
    if value in ("equal", "proportional", "neyman"):
        return value, None
    if value.startswith("min:"):
        try:
            minimum = int(value[4:])
        except ValueError:
            minimum = -1
        if minimum < 1:
            raise EmauditError(f"allocation {value!r}: write min:N with a whole number N >= 1, e.g. min:20")
        return "min", minimum
    raise EmauditError(f"unknown allocation {value!r}; use one of {', '.join(ALLOCATIONS)}")


def bernoulli_sd(rate: float) -> float:
    """The per-unit standard deviation sqrt(p(1-p)) of a 0/1 label with positive rate ``rate``."""
    if not 0 <= rate <= 1:
        raise EmauditError(f"expected rate {rate:g} is not a proportion between 0 and 1")
    return math.sqrt(rate * (1 - rate))


def allocate(
    sizes: Mapping[str, int],
    method: str,
    *,
    total: int | None = None,
    per_stratum: int | None = None,
    sd: Mapping[str, float] | None = None,
) -> dict[str, int]:
    """Sample size n_h per stratum.

    Args:
        sizes: Population size N_h per stratum name (strata with N_h = 0 are dropped).
        method: ``equal``, ``proportional``, ``neyman`` or ``min:N``.
        total: Total sample size n (required except for ``equal`` with ``per_stratum``).
        per_stratum: For ``equal`` only: n_h for every stratum.
        sd: For ``neyman``: anticipated per-unit standard deviation S_h per stratum.

    Returns:
        n_h per stratum, in the order of ``sizes``; sums to ``total`` (or H·``per_stratum``).

    Rules:
        * equal: n_h = n // H; the remainder goes one each to the largest strata.
        * proportional: n_h = n·N_h/N (Cochran 1977, §5.3).
        * neyman: n_h ∝ N_h·S_h (Neyman 1934; Cochran 1977, §5.5); a stratum whose share exceeds
          N_h is taken whole and the rest re-allocated among the others (Cochran 1977, §5.9).
        * min:N: every stratum gets N first; the remaining n - H·N is shared in proportion to
          N_h - N, which can never exceed what a stratum has left.

    Raises:
        EmauditError: when a stratum has fewer responses than asked (the message gives the
            largest feasible value) or the arguments do not fit the method.
    """
    sizes = {name: int(n) for name, n in sizes.items() if n > 0}
    if not sizes:
        raise EmauditError("no responses to sample from")
    kind, minimum = parse_allocation(method)
    if per_stratum is not None and kind != "equal":
        raise EmauditError("--per-stratum goes with --allocation equal; give --total for other allocations")
    if per_stratum is None and total is None:
        raise EmauditError("give the sample size: --total N (or --per-stratum N with equal allocation)")
    if total is not None and per_stratum is not None:
        raise EmauditError("give either --total or --per-stratum, not both")
    if (total is not None and total < 1) or (per_stratum is not None and per_stratum < 1):
        raise EmauditError("the sample size must be at least 1")
    population = sum(sizes.values())
    if total is not None and total > population:
        raise EmauditError(
            f"asked for {total} items but only {population} responses can be sampled; "
            f"the maximum --total is {population}"
        )
    if kind == "equal":
        return _equal(sizes, total, per_stratum)
    assert total is not None
    if kind == "proportional":
        return largest_remainder({h: Fraction(total * n, population) for h, n in sizes.items()}, total)
    if kind == "min":
        assert minimum is not None
        return _minimum(sizes, total, minimum)
    return _neyman(sizes, total, sd or {})


def _equal(sizes: dict[str, int], total: int | None, per_stratum: int | None) -> dict[str, int]:
    smallest = min(sizes, key=lambda h: (sizes[h], h))
    count = len(sizes)
    if per_stratum is not None:
        if per_stratum > sizes[smallest]:
            raise EmauditError(
                f"stratum {smallest!r} has {sizes[smallest]} responses, fewer than the {per_stratum} asked "
                f"per stratum; the maximum --per-stratum is {sizes[smallest]}"
            )
        return dict.fromkeys(sizes, per_stratum)
    assert total is not None
    base, extra = divmod(total, count)
    largest_first = sorted(sizes, key=lambda h: (-sizes[h], h))
    n = {h: base + (1 if h in largest_first[:extra] else 0) for h in sizes}
    for h in sorted(sizes):
        if n[h] > sizes[h]:
            raise EmauditError(
                f"stratum {h!r} has {sizes[h]} responses, fewer than the {n[h]} an equal split of {total} "
                f"gives it; the maximum equal sample is --total {count * sizes[smallest]} "
                f"(or --per-stratum {sizes[smallest]}), or use --allocation proportional or min:N"
            )
    return n


def _minimum(sizes: dict[str, int], total: int, minimum: int) -> dict[str, int]:
    smallest = min(sizes, key=lambda h: (sizes[h], h))
    if sizes[smallest] < minimum:
        raise EmauditError(
            f"stratum {smallest!r} has {sizes[smallest]} responses, fewer than the minimum {minimum} asked; "
            f"the maximum is min:{sizes[smallest]}"
        )
    floor = minimum * len(sizes)
    if total < floor:
        raise EmauditError(
            f"--total {total} is below min:{minimum} × {len(sizes)} strata = {floor}; "
            f"raise --total to at least {floor}"
        )
    left = {h: n - minimum for h, n in sizes.items()}
    rest = total - floor
    room = sum(left.values())
    shares = {h: Fraction(rest * k, room) if room else Fraction(0) for h, k in left.items()}
    return {h: minimum + k for h, k in largest_remainder(shares, rest).items()}


def _neyman(sizes: dict[str, int], total: int, sd: Mapping[str, float]) -> dict[str, int]:
    missing = [h for h in sizes if h not in sd]
    if missing:
        raise EmauditError(f"Neyman allocation needs an anticipated SD for stratum {missing[0]!r}")
    weights = {h: sizes[h] * float(sd[h]) for h in sizes}
    if not any(weights.values()):
        weights = {h: float(n) for h, n in sizes.items()}  # all SDs zero: proportional is as good
    census: set[str] = set()
    while True:
        # Cochran §5.9: strata whose optimum share exceeds N_h are enumerated in full, then the
        # optimum is recomputed over the rest with the sample that is left.
        open_ = [h for h in sizes if h not in census]
        left = total - sum(sizes[h] for h in census)
        weight = sum(weights[h] for h in open_)
        quotas = {h: (left * weights[h] / weight if weight else 0.0) for h in open_}
        over = {h for h in open_ if quotas[h] > sizes[h]}
        if not over:
            break
        census |= over
    exact = {h: float(sizes[h]) for h in census} | quotas
    return largest_remainder(exact, total, caps=sizes)


def largest_remainder(
    quotas: Mapping[str, Fraction | float], total: int, caps: Mapping[str, int] | None = None
) -> dict[str, int]:
    base = {h: math.floor(q + 1e-9) if isinstance(q, float) else math.floor(q) for h, q in quotas.items()}
    remainder = total - sum(base.values())
    order = sorted(quotas, key=lambda h: (-(float(quotas[h]) - base[h]), h))
    for h in order:
        if remainder <= 0:
            break
        if caps is None or base[h] < caps[h]:
            base[h] += 1
            remainder -= 1
    return {h: base[h] for h in quotas}
