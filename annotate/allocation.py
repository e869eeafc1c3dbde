"""How many items each stratum gets: equal, proportional, Neyman, half-width or a minimum per stratum.

Pure functions over stratum sizes, so the hand-computed cases in the tests pin them exactly.
Fractional quotas are rounded by the largest-remainder (Hamilton) method; ties go to the stratum
that sorts first, so an allocation is a deterministic function of its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

from emaudit.errors import EmauditError
from emaudit.labels import DEFAULT_BAND_RATES, DEFAULT_EXPECTED_RATES, expected_rate

ALLOCATIONS = ("equal", "proportional", "neyman", "neyman+min:N", "halfwidth", "halfwidth+min:N", "min:N")

HALFWIDTH_FLOOR = 2
"""Labels every non-empty stratum gets first under ``halfwidth`` (``halfwidth+min:N`` sets it)."""

__all__ = [  # the expected rates live in emaudit.labels (calibration plans with them too)
    "ALLOCATIONS",
    "DEFAULT_BAND_RATES",
    "DEFAULT_EXPECTED_RATES",
    "HALFWIDTH_FLOOR",
    "allocate",
    "bernoulli_sd",
    "expected_rate",
    "largest_remainder",
    "parse_allocation",
]


def parse_allocation(value: str) -> tuple[str, int | None]:
    """Split ``"min:20"`` into ``("min", 20)`` and ``"neyman+min:5"`` into ``("neyman", 5)``."""
    if value in ("equal", "proportional", "neyman"):
        return value, None
    if value == "halfwidth":
        return "halfwidth", None
    for kind in ("neyman", "halfwidth"):
        if value.startswith(f"{kind}+min:"):
            _, floor = parse_allocation(value[len(kind) + 1 :])
            return kind, floor
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
    rates: Mapping[str, float] | None = None,
    cells: Mapping[str, str] | None = None,
    interval: str = "mover_wilson",
) -> dict[str, int]:
    """Sample size n_h per stratum.

    Args:
        sizes: Population size N_h per stratum name (strata with N_h = 0 are dropped).
        method: ``equal``, ``proportional``, ``neyman`` or ``min:N``.
        total: Total sample size n (required except for ``equal`` with ``per_stratum``).
        per_stratum: For ``equal`` only: n_h for every stratum.
        sd: For ``neyman``: anticipated per-unit standard deviation S_h per stratum.
        rates: For ``halfwidth``: anticipated human-positive rate p_h per stratum.
        cells: For ``halfwidth``: the cell of each stratum (strata of one cell share an interval).
        interval: For ``halfwidth``: the interval whose half-width is minimised.

    Returns:
        n_h per stratum, in the order of ``sizes``; sums to ``total`` (or H·``per_stratum``).

    Rules:
        * equal: n_h = n // H; the remainder goes one each to the largest strata.
        * proportional: n_h = n·N_h/N (Cochran 1977, §5.3).
        * neyman: n_h ∝ N_h·S_h (Neyman 1934; Cochran 1977, §5.5); a stratum whose share exceeds
          N_h is taken whole and the rest re-allocated among the others (Cochran 1977, §5.9).
        * neyman+min:N: Neyman, but every stratum gets at least min(N, N_h) (a stratum left at 0 leaves
          its cell without an estimate); the floored strata are fixed and the rest re-allocated.
        * halfwidth (issue 10): every stratum gets min(2, N_h), then labels go one step at a time to
          the stratum that most shrinks the predicted MOVER half-width of the widest cell's interval
          (:func:`emaudit.calibration.halfwidth.halfwidth_allocation`); halfwidth+min:N
          sets the floor to min(N, N_h).
        * min:N: every stratum gets min(N, N_h) first (a smaller stratum is taken whole); the
          remaining n - sum of those is shared in proportion to N_h - min(N, N_h), which can never
          exceed what a stratum has left.

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
    if kind == "halfwidth":
        return _halfwidth(sizes, total, rates or {}, cells or {}, minimum or HALFWIDTH_FLOOR, interval)
    return _neyman(sizes, total, sd or {}, minimum or 0)


def _halfwidth(
    sizes: dict[str, int],
    total: int,
    rates: Mapping[str, float],
    cells: Mapping[str, str],
    floor: int,
    interval: str,
) -> dict[str, int]:
    # The statistics live in emaudit.calibration (plain arrays); loaded only for this allocation.
    from emaudit.calibration.errors import CalibrationInputError
    from emaudit.calibration.halfwidth import halfwidth_allocation

    names = sorted(sizes)
    missing = [h for h in names if h not in rates]
    if missing:
        raise EmauditError(f"half-width allocation needs an anticipated rate for stratum {missing[0]!r}")
    _floors(sizes, total, floor, f"halfwidth+min:{floor}")
    try:
        plan = halfwidth_allocation(
            [sizes[h] for h in names],
            [rates[h] for h in names],
            total=total,
            cells=[cells.get(h, "all") for h in names],
            min_per_stratum=floor,
            interval=interval,
        )
    except CalibrationInputError as exc:
        raise EmauditError(str(exc)) from exc
    by_name = dict(zip(names, (int(k) for k in plan.n), strict=True))
    return {h: by_name[h] for h in sizes}


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


def _floors(sizes: dict[str, int], total: int, minimum: int, method: str) -> dict[str, int]:
    floors = {h: min(minimum, n) for h, n in sizes.items()}
    need = sum(floors.values())
    if total < need:
        raise EmauditError(
            f"--total {total} is below {method}'s floor of min({minimum}, N_h) over {len(sizes)} strata = "
            f"{need}; raise --total to at least {need}"
        )
    return floors


def _minimum(sizes: dict[str, int], total: int, minimum: int) -> dict[str, int]:
    floors = _floors(sizes, total, minimum, f"min:{minimum}")
    left = {h: n - floors[h] for h, n in sizes.items()}
    rest = total - sum(floors.values())
    room = sum(left.values())
    shares = {h: Fraction(rest * k, room) if room else Fraction(0) for h, k in left.items()}
    return {h: floors[h] + k for h, k in largest_remainder(shares, rest).items()}


def _neyman(sizes: dict[str, int], total: int, sd: Mapping[str, float], minimum: int = 0) -> dict[str, int]:
    floors = _floors(sizes, total, minimum, f"neyman+min:{minimum}") if minimum else dict.fromkeys(sizes, 0)
    missing = [h for h in sizes if h not in sd]
    if missing:
        raise EmauditError(f"Neyman allocation needs an anticipated SD for stratum {missing[0]!r}")
    weights = {h: sizes[h] * float(sd[h]) for h in sizes}
    if not any(weights.values()):
        weights = {h: float(n) for h, n in sizes.items()}  # all SDs zero: proportional is as good
    pinned: dict[str, int] = {}
    while True:
        # Cochran §5.9: strata whose optimum share exceeds N_h are enumerated in full, strata below
        # their floor get the floor, then the optimum is recomputed over the rest with what is left.
        open_ = [h for h in sizes if h not in pinned]
        left = total - sum(pinned.values())
        weight = sum(weights[h] for h in open_)
        quotas = {h: (left * weights[h] / weight if weight else 0.0) for h in open_}
        over = {h: sizes[h] for h in open_ if quotas[h] > sizes[h]}
        under = {h: floors[h] for h in open_ if quotas[h] < floors[h]}
        if not over and not under:
            break
        pinned |= over if over else under
    exact = {h: float(n) for h, n in pinned.items()} | quotas
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
