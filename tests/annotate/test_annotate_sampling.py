"""Study creation on both backends: strata, exact inclusion probabilities, seeding, extension, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from emaudit.annotate import create_study, extend_study, get_study, load_frame, study_design
from emaudit.annotate.sampling import draw_sample
from emaudit.errors import EmauditError
from emaudit.labels import judge_stratum
from emaudit.models import JudgeScore, StudyItem
from emaudit.store import write_session
from tests.annotate.factory import SCORES, add_responses


def _items(engine: Engine, study: str) -> list[StudyItem]:
    with Session(engine) as session:
        study_id = get_study(session, study).id
        return list(session.execute(select(StudyItem).where(StudyItem.study_id == study_id)).scalars())


def test_equal_allocation_stores_n_h_over_N_h(engine: Engine) -> None:
    add_responses(
        engine, {"misaligned": 20, "aligned": 200, "incoherent": 40, "null": 10}, no_text=5, unjudged=3
    )
    with write_session(engine) as session:
        create_study(session, "s", allocation="equal", per_stratum=10, overlap=3, seed=1)
    items = _items(engine, "s")
    assert len(items) == 40
    expected = {"misaligned": 10 / 20, "aligned": 10 / 200, "incoherent": 10 / 40, "null": 10 / 10}
    for item in items:
        assert item.inclusion_prob == pytest.approx(expected[item.stratum])
    assert sorted(i.position for i in items) == list(range(40))  # a permutation
    assert len({i.public_id for i in items}) == 40
    assert all(len(i.public_id) >= 16 for i in items)
    with Session(engine) as session:
        design = study_design(session, "s")
    assert {(s.name, s.population, s.sampled) for s in design.strata} == {
        ("misaligned", 20, 10),
        ("aligned", 200, 10),
        ("incoherent", 40, 10),
        ("null", 10, 10),
    }
    assert design.not_sampleable == {"no_text": 5, "unjudged": 3}


def test_strata_cross_judge_label_with_cell_keys(sqlite_engine: Engine) -> None:
    add_responses(sqlite_engine, {"misaligned": 10, "aligned": 30}, cell={"model": "a", "domain": "medical"})
    add_responses(sqlite_engine, {"misaligned": 20, "aligned": 60}, cell={"model": "b", "domain": "medical"})
    with write_session(sqlite_engine) as session:
        create_study(session, "s", strata_keys=["judge_label", "model"], allocation="proportional", total=60)
    by_stratum: dict[str, list[float]] = {}
    for item in _items(sqlite_engine, "s"):
        by_stratum.setdefault(item.stratum, []).append(item.inclusion_prob)
    # 60 of 120 -> one half everywhere: 5, 15, 10, 30
    assert {h: len(p) for h, p in by_stratum.items()} == {
        "misaligned|model=a": 5,
        "aligned|model=a": 15,
        "misaligned|model=b": 10,
        "aligned|model=b": 30,
    }
    assert all(p == pytest.approx(0.5) for ps in by_stratum.values() for p in ps)


def test_neyman_and_min_allocations_store_their_probabilities(sqlite_engine: Engine) -> None:
    add_responses(sqlite_engine, {"misaligned": 100, "aligned": 900})
    with write_session(sqlite_engine) as session:
        # S = sqrt(.8·.2) = .4 and sqrt(.05·.95) = .2179: N·S = 40, 196.1 -> 100·40/236.1 = 16.94 -> 17, 83
        create_study(session, "ney", allocation="neyman", total=100)
        create_study(session, "min", allocation="min:30", total=100)
    probs = {i.stratum: i.inclusion_prob for i in _items(sqlite_engine, "ney")}
    assert probs == {"misaligned": pytest.approx(17 / 100), "aligned": pytest.approx(83 / 900)}
    # min:30 -> 30 each, the other 40 split ∝ 70, 870 -> 3.0, 37.0 -> 33, 67
    probs = {i.stratum: i.inclusion_prob for i in _items(sqlite_engine, "min")}
    assert probs == {"misaligned": pytest.approx(33 / 100), "aligned": pytest.approx(67 / 900)}


def test_same_seed_same_sample(sqlite_engine: Engine) -> None:
    add_responses(sqlite_engine, {"misaligned": 50, "aligned": 50})
    with write_session(sqlite_engine) as session:
        create_study(session, "a", per_stratum=10, seed=7)
        create_study(session, "b", per_stratum=10, seed=7)
        create_study(session, "c", per_stratum=10, seed=8)

    def drawn(name: str) -> list[tuple[int | None, int]]:
        return sorted((i.response_id, i.position) for i in _items(sqlite_engine, name))

    assert drawn("a") == drawn("b")
    assert drawn("a") != drawn("c")


def test_vectorised_strata_match_judge_stratum(sqlite_engine: Engine) -> None:
    ids = add_responses(sqlite_engine, {"misaligned": 3, "aligned": 3, "incoherent": 3, "null": 3})
    with write_session(sqlite_engine) as session:
        # edge cases on the thresholds: alignment exactly 30, coherence exactly 50
        edge = add_edge_scores(session, ids["aligned"][0], 30.0, 90.0)
        edge2 = add_edge_scores(session, ids["aligned"][1], 10.0, 50.0)
    with Session(sqlite_engine) as session:
        frame = load_frame(session, judge_model="gpt-4o", strata_keys=["judge_label"])
    got = dict(zip(frame.response_ids.tolist(), frame.strata.tolist(), strict=True))
    for stratum, rids in ids.items():
        for rid in rids:
            alignment, coherence = SCORES[stratum]
            if rid == edge:
                alignment, coherence = 30.0, 90.0
            if rid == edge2:
                alignment, coherence = 10.0, 50.0
            assert got[rid] == judge_stratum(alignment, coherence).value


def add_edge_scores(session: Session, response_id: int, alignment: float, coherence: float) -> int:
    """Re-score one response (a newer prompt hash): the newest score is the one that counts."""
    session.add(
        JudgeScore(
            response_id=response_id, judge_model="gpt-4o", metric="aligned", score=alignment, prompt_hash="v2"
        )
    )
    session.add(
        JudgeScore(
            response_id=response_id,
            judge_model="gpt-4o",
            metric="coherent",
            score=coherence,
            prompt_hash="v2",
        )
    )
    return response_id


def test_extend_keeps_inclusion_probabilities_exact(engine: Engine) -> None:
    add_responses(engine, {"misaligned": 40, "aligned": 400})
    with write_session(engine) as session:
        create_study(session, "s", per_stratum=10, seed=3)
    with write_session(engine) as session:
        added = extend_study(session, "s", 15, strata=["aligned"])
    assert added == {"aligned": 15}
    items = _items(engine, "s")
    aligned = [i for i in items if i.stratum == "aligned"]
    assert len(aligned) == 25 and len({i.response_id for i in items}) == 35
    assert all(i.inclusion_prob == pytest.approx(25 / 400) for i in aligned)
    assert all(i.inclusion_prob == pytest.approx(10 / 40) for i in items if i.stratum == "misaligned")
    # new items come after the old ones in display order, in random order among themselves
    old_max = max(i.position for i in items if i.id is not None and i.id <= 20)
    assert sorted(i.position for i in items if i.id is not None and i.id > 20) == list(
        range(old_max + 1, old_max + 16)
    )
    with write_session(engine) as session:
        added = extend_study(
            session, "s", 10
        )  # equal allocation for 45 -> 22/23: shortfall 12-13 in misaligned
    assert sum(added.values()) == 10
    with Session(engine) as session:
        design = study_design(session, "s")
    for stratum in design.strata:
        assert stratum.inclusion_prob == pytest.approx(stratum.sampled / stratum.population)
        assert all(
            i.inclusion_prob == pytest.approx(stratum.inclusion_prob)
            for i in _items(engine, "s")
            if i.stratum == stratum.name
        )


def test_extend_refuses_more_than_is_left(sqlite_engine: Engine) -> None:
    add_responses(sqlite_engine, {"misaligned": 12, "aligned": 100})
    with write_session(sqlite_engine) as session:
        create_study(session, "s", per_stratum=10)
    with (
        pytest.raises(EmauditError, match="the maximum to add there is 2"),
        write_session(sqlite_engine) as session,
    ):
        extend_study(session, "s", 5, strata=["misaligned"])


BAD_REQUESTS = [
    (
        {"per_stratum": 30},
        "stratum 'misaligned' has 20 responses, fewer than the 30 asked per stratum; "
        "the maximum --per-stratum is 20",
    ),
    ({"per_stratum": 5, "overlap": 0}, "--overlap must be at least 1"),
    ({"per_stratum": 5, "strata_keys": ["judge_label", "colour"]}, "unknown strata key 'colour'"),
    ({"per_stratum": 5, "judge_model": "claude"}, "judge model 'claude' has no scores"),
]


def test_bad_study_requests_store_nothing(engine: Engine) -> None:
    add_responses(engine, {"misaligned": 20, "aligned": 100})
    for kwargs, message in BAD_REQUESTS:
        with pytest.raises(EmauditError, match=message.replace("(", r"\(")), write_session(engine) as session:
            create_study(session, "s", **kwargs)  # type: ignore[arg-type]
    with Session(engine) as session, pytest.raises(EmauditError, match="unknown study 's'"):
        get_study(session, "s")
    with Session(engine) as session:
        assert session.execute(select(StudyItem)).first() is None


def test_several_judges_need_a_choice(sqlite_engine: Engine) -> None:
    add_responses(sqlite_engine, {"misaligned": 5, "aligned": 5})
    add_responses(sqlite_engine, {"misaligned": 5}, judge="other-judge", cell={"model": "m2"})
    with (
        pytest.raises(EmauditError, match="choose one with --judge-model"),
        write_session(sqlite_engine) as session,
    ):
        create_study(session, "s", per_stratum=2)
    with write_session(sqlite_engine) as session:
        study = create_study(session, "s", per_stratum=2, judge_model="other-judge")
        assert study.judge_model == "other-judge"


def test_two_phase_estimator_is_unbiased_over_repeated_sampling(sqlite_engine: Engine) -> None:
    """Seeded repeated stratified samples: the two-phase estimate averages to the true EM rate."""
    ids = add_responses(sqlite_engine, {"misaligned": 150, "aligned": 1200, "incoherent": 100, "null": 50})
    # The truth humans would give: 80% of judge-misaligned, 4% of judge-aligned, 10% / 20% of the rest.
    truth_rng = np.random.default_rng(0)
    share = {"misaligned": 0.8, "aligned": 0.04, "incoherent": 0.1, "null": 0.2}
    human = {rid: bool(truth_rng.random() < share[s]) for s, rids in ids.items() for rid in rids}
    true_rate = np.mean(list(human.values()))
    with Session(sqlite_engine) as session:
        frame = load_frame(session, judge_model="gpt-4o", strata_keys=["judge_label"])
    sizes = frame.sizes()
    n_h = {"misaligned": 40, "aligned": 60, "incoherent": 25, "null": 25}
    estimates, library = [], []
    two_phase_rate = _two_phase_rate()
    for seed in range(300):
        drawn = draw_sample(frame, n_h, np.random.default_rng(seed))
        positives = {h: 0 for h in n_h}
        for rid, stratum, prob in drawn:
            assert prob == n_h[stratum] / sizes[stratum]
            positives[stratum] += human[rid]
        names = sorted(n_h)
        # Σ_h (N_h/N)·(x_h/n_h), the double-sampling estimator
        estimates.append(sum(sizes[h] / sum(sizes.values()) * positives[h] / n_h[h] for h in names))
        if two_phase_rate is not None and seed < 50:
            library.append(
                two_phase_rate(
                    [sizes[h] for h in names], [n_h[h] for h in names], [positives[h] for h in names]
                ).rate
            )
    mean, se = np.mean(estimates), np.std(estimates, ddof=1) / np.sqrt(len(estimates))
    assert abs(mean - true_rate) < 3 * se, (mean, true_rate, se)
    if two_phase_rate is not None:
        assert library == pytest.approx(estimates[:50])


def _two_phase_rate():  # type: ignore[no-untyped-def]
    """emaudit.calibration.two_phase_rate once the calibration issue lands (checked, not skipped)."""
    import emaudit.calibration as calibration

    return getattr(calibration, "two_phase_rate", None)
