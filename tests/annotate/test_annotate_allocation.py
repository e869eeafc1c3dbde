"""Allocation: hand-computed sample sizes for every method, and errors that give the maximum."""

from __future__ import annotations

import math

import pytest

from emaudit.annotate import allocate
from emaudit.annotate.allocation import bernoulli_sd
from emaudit.errors import EmauditError

SIZES = {"a": 100, "b": 300, "c": 600}  # N = 1000


def test_equal_per_stratum() -> None:
    assert allocate(SIZES, "equal", per_stratum=50) == {"a": 50, "b": 50, "c": 50}


def test_equal_total_gives_the_remainder_to_the_largest_strata() -> None:
    # 100 // 3 = 33 each, remainder 1 goes to the largest stratum c.
    assert allocate(SIZES, "equal", total=100) == {"a": 33, "b": 33, "c": 34}
    assert allocate(SIZES, "equal", total=101) == {"a": 33, "b": 34, "c": 34}


def test_proportional() -> None:
    # n·N_h/N = 0.1·N_h exactly.
    assert allocate(SIZES, "proportional", total=100) == {"a": 10, "b": 30, "c": 60}
    # 7·(0.1, 0.3, 0.6) = 0.7, 2.1, 4.2 -> floors 0, 2, 4 (6); the largest remainder (a: .7) gets one.
    assert allocate(SIZES, "proportional", total=7) == {"a": 1, "b": 2, "c": 4}


def test_neyman_is_proportional_to_size_times_sd() -> None:
    sd = {"a": 0.4, "b": 0.2, "c": 0.1}  # N_h·S_h = 40, 60, 60: shares 0.25, 0.375, 0.375
    assert allocate(SIZES, "neyman", total=80, sd=sd) == {"a": 20, "b": 30, "c": 30}


def test_neyman_takes_an_overallocated_stratum_whole() -> None:
    # N_h·S_h = 10·0.5 = 5, 1000·0.01 = 10: the optimum for a, 100·5/15 = 33.3, exceeds N_a = 10,
    # so a is enumerated (10) and b gets the remaining 90 (Cochran §5.9).
    assert allocate({"a": 10, "b": 1000}, "neyman", total=100, sd={"a": 0.5, "b": 0.01}) == {"a": 10, "b": 90}


def test_min_n_then_proportional_to_what_is_left() -> None:
    # Each gets 20 (60); the other 140 are split ∝ N_h - 20 = 80, 280, 580 (sum 940):
    # 11.91, 41.70, 86.38 -> floors 11, 41, 86 (138); the two largest remainders, a (.91) and b (.70),
    # get one more each.
    assert allocate(SIZES, "min:20", total=200) == {"a": 32, "b": 62, "c": 106}


def test_min_n_above_a_stratum_takes_that_stratum_whole() -> None:
    # Issue 10: min:150 on N = 100, 300, 600 floors at min(150, N_h) = 100, 150, 150 (400); the other 200
    # go ∝ N_h - floor = 0, 150, 450 (sum 600): 0, 50, 150.
    assert allocate(SIZES, "min:150", total=600) == {"a": 100, "b": 200, "c": 300}


def test_neyman_with_a_floor_keeps_every_stratum_sampled() -> None:
    # Plain Neyman: N_h·S_h = 5·0.01 = 0.05, 1000·0.3 = 300 -> a's share of 50 is 0.008, rounds to 0.
    sizes, sd = {"a": 5, "b": 1000}, {"a": 0.01, "b": 0.3}
    assert allocate(sizes, "neyman", total=50, sd=sd) == {"a": 0, "b": 50}
    # neyman+min:10: a's floor is min(10, 5) = 5 (taken whole), b gets the other 45.
    assert allocate(sizes, "neyman+min:10", total=50, sd=sd) == {"a": 5, "b": 45}
    # Three strata, floor 20: a (0.05·100 = 5 of 5 + 60 + 60 = 125 -> 3.2 of 80) is pinned at 20; the
    # other 60 go 30/30 by N_h·S_h = 60, 60.
    three = allocate(SIZES, "neyman+min:20", total=80, sd={"a": 0.05, "b": 0.2, "c": 0.1})
    assert three == {"a": 20, "b": 30, "c": 30}


def test_bernoulli_sd() -> None:
    assert bernoulli_sd(0.5) == 0.5
    assert math.isclose(bernoulli_sd(0.8), 0.4)


@pytest.mark.parametrize(
    ("method", "kwargs", "message"),
    [
        ("equal", {"per_stratum": 101}, "the maximum --per-stratum is 100"),
        ("equal", {"total": 400}, "the maximum equal sample is --total 300"),
        ("min:20", {"total": 50}, "raise --total to at least 60"),
        ("neyman+min:20", {"total": 50}, "raise --total to at least 60"),
        ("proportional", {"total": 1001}, "the maximum --total is 1000"),
        ("proportional", {"per_stratum": 5}, "--per-stratum goes with --allocation equal"),
        ("bogus", {"total": 5}, "unknown allocation"),
        ("min:x", {"total": 5}, "min:N"),
        ("equal", {}, "--total N"),
    ],
)
def test_bad_requests_say_what_to_change(method: str, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(EmauditError, match=message.replace("(", r"\(")):
        allocate(SIZES, method, **kwargs)  # type: ignore[arg-type]
