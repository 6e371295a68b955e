"""Do implicit signals agree with what people say explicitly? Over the answers that carry both
an implicit signal and an explicit judgement, per implicit kind.

    report = implicit_agreement(session)                  # consenting users, live chats only
    report.to_dict()["kinds"]["regenerate"]["thumbs"]["p_down_given_signal"]
    print(render_text(report))                            # `tandem eval implicit-agreement`

Thumbs: over every answer with a current thumbs, a 2×2 table of "carries the signal" against
"thumbs-down": P(down | signal) next to P(down | no signal) and the base rate P(down), the
lift P(down | signal) / P(down), Cohen's kappa and the Matthews correlation (phi), each with a
percentile bootstrap 95% interval (answers resampled with replacement, seeded). For the
negative kinds (regenerate, stop, edit_resend, corrective_followup) agreement is a positive
correlation with thumbs-down; a copy is expected to go the other way (a negative one).

Votes: over decisive blind votes (a or b), how often the voted-against answer carries the
signal next to the chosen one, and among the pairs where exactly one of the two carries it,
the share where that one lost (Wilson 95% interval; 0.5 is no agreement). `both_bad` votes
count both answers as voted against.

The pure part (`agreement_from`) takes plain tuples, so it is tested on a synthetic case with
a known answer; `implicit_agreement` reads them from the store under the dataset rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from tandem.core.signals import IMPLICIT_KINDS, IMPLICIT_NEGATIVE_KINDS
from tandem.evals.online import wilson_interval
from tandem.store.datasets import DatasetRepo
from tandem.store.implicit import ImplicitSignalRepo

BOOTSTRAP_SAMPLES = 2000
# Any of the negative kinds, as one more row: "some implicit sign of dissatisfaction".
ANY_NEGATIVE = "any_negative"


@dataclass(frozen=True)
class ThumbsAgreement:
    answers: int  # answers with a current thumbs
    with_signal: int
    down_with_signal: int
    down_without_signal: int
    base_rate_down: float | None
    p_down_given_signal: float | None
    p_down_given_no_signal: float | None
    lift: float | None
    kappa: float | None
    kappa_ci95: tuple[float, float] | None
    mcc: float | None
    mcc_ci95: tuple[float, float] | None


@dataclass(frozen=True)
class VoteAgreement:
    pairs: int  # decisive votes (a or b)
    signal_on_loser: int
    signal_on_winner: int
    # Pairs where exactly one answer carries the signal, and how many of those it lost.
    discordant: int
    discordant_loser: int
    loser_share: float | None
    loser_share_ci95: tuple[float, float] | None
    both_bad_answers: int  # answers of both_bad votes
    both_bad_with_signal: int


@dataclass(frozen=True)
class KindAgreement:
    kind: str
    expected: str  # "negative": agrees with thumbs-down; "positive": with thumbs-up
    signals: int  # answers carrying it (any explicit judgement or none)
    thumbs: ThumbsAgreement
    votes: VoteAgreement


@dataclass(frozen=True)
class AgreementReport:
    rated_answers: int
    voted_pairs: int
    answers_with_implicit: int
    kinds: list[KindAgreement] = field(default_factory=list)
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kinds"] = {k["kind"]: k for k in out["kinds"]}
        return out


def _kappa_mcc(tp: float, fp: float, fn: float, tn: float) -> tuple[float | None, float | None]:
    """Cohen's kappa and Matthews' correlation of two binary labellings from their 2×2 table
    (tp: both positive; fp: signal without thumbs-down; fn: thumbs-down without signal)."""
    n = tp + fp + fn + tn
    if n == 0:
        return None, None
    observed = (tp + tn) / n
    expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    kappa = None if expected == 1 else (observed - expected) / (1 - expected)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = None if denominator == 0 else (tp * tn - fp * fn) / denominator
    return kappa, mcc


def _bootstrap(
    signal: np.ndarray, down: np.ndarray, rng: np.random.Generator, samples: int
) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Percentile 95% intervals of kappa and MCC over `samples` resamples of the answers."""
    n = len(signal)
    if n < 2:
        return None, None
    kappas: list[np.ndarray] = []
    mccs: list[np.ndarray] = []
    chunk = max(1, min(samples, 2_000_000 // n))  # bounds the memory of one batch of draws
    for start in range(0, samples, chunk):
        draws = rng.integers(0, n, size=(min(chunk, samples - start), n))
        s, d = signal[draws], down[draws]
        tp = (s & d).sum(axis=1).astype(float)
        fp = (s & ~d).sum(axis=1).astype(float)
        fn = (~s & d).sum(axis=1).astype(float)
        tn = (~s & ~d).sum(axis=1).astype(float)
        observed = (tp + tn) / n
        expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        # A resample with no variation in one labelling has no correlation: it counts as 0.
        with np.errstate(divide="ignore", invalid="ignore"):
            kappas.append(np.where(expected < 1, (observed - expected) / (1 - expected), 0.0))
            mccs.append(np.where(denominator > 0, (tp * tn - fp * fn) / denominator, 0.0))

    def interval(values: list[np.ndarray]) -> tuple[float, float]:
        low, high = np.percentile(np.concatenate(values), [2.5, 97.5])
        return float(low), float(high)

    return interval(kappas), interval(mccs)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _thumbs(
    rated: Sequence[tuple[str, bool]],
    has: Mapping[str, bool],
    rng: np.random.Generator,
    samples: int,
) -> ThumbsAgreement:
    signal = np.array([has.get(g, False) for g, _ in rated], dtype=bool)
    down = np.array([d for _, d in rated], dtype=bool)
    tp = int((signal & down).sum())
    fp = int((signal & ~down).sum())
    fn = int((~signal & down).sum())
    tn = int((~signal & ~down).sum())
    kappa, mcc = _kappa_mcc(tp, fp, fn, tn)
    kappa_ci, mcc_ci = _bootstrap(signal, down, rng, samples) if signal.any() else (None, None)
    base = _ratio(tp + fn, len(rated))
    p_signal = _ratio(tp, tp + fp)
    return ThumbsAgreement(
        answers=len(rated),
        with_signal=tp + fp,
        down_with_signal=tp,
        down_without_signal=fn,
        base_rate_down=base,
        p_down_given_signal=p_signal,
        p_down_given_no_signal=_ratio(fn, fn + tn),
        lift=None if p_signal is None or not base else p_signal / base,
        kappa=kappa,
        kappa_ci95=kappa_ci,
        mcc=mcc,
        mcc_ci95=mcc_ci,
    )


def _votes(voted: Sequence[tuple[str, str, str]], has: Mapping[str, bool]) -> VoteAgreement:
    pairs = loser = winner = discordant = discordant_loser = both_bad = both_bad_signal = 0
    for verdict, a, b in voted:
        if verdict == "both_bad":
            both_bad += 2
            both_bad_signal += has.get(a, False) + has.get(b, False)
            continue
        if verdict not in ("a", "b"):
            continue
        win, lose = (a, b) if verdict == "a" else (b, a)
        pairs += 1
        on_win, on_lose = has.get(win, False), has.get(lose, False)
        loser += on_lose
        winner += on_win
        if on_win != on_lose:
            discordant += 1
            discordant_loser += on_lose
    share = _ratio(discordant_loser, discordant)
    return VoteAgreement(
        pairs=pairs,
        signal_on_loser=loser,
        signal_on_winner=winner,
        discordant=discordant,
        discordant_loser=discordant_loser,
        loser_share=share,
        loser_share_ci95=wilson_interval(discordant_loser, discordant) if discordant else None,
        both_bad_answers=both_bad,
        both_bad_with_signal=both_bad_signal,
    )


def agreement_from(
    rated: Sequence[tuple[str, bool]],
    voted: Sequence[tuple[str, str, str]],
    implicit: Mapping[str, Iterable[str]],
    *,
    seed: int = 0,
    samples: int = BOOTSTRAP_SAMPLES,
) -> AgreementReport:
    """`rated`: (generation id, is thumbs-down) per answer with a current thumbs; `voted`:
    (verdict, generation a, generation b) per cast vote; `implicit`: generation id → the kinds
    it carries."""
    rng = np.random.default_rng(seed)
    kinds_of = {g: set(k) for g, k in implicit.items()}
    rows = []
    for kind in (*IMPLICIT_KINDS, ANY_NEGATIVE):
        wanted = set(IMPLICIT_NEGATIVE_KINDS) if kind == ANY_NEGATIVE else {kind}
        has = {g: bool(k & wanted) for g, k in kinds_of.items()}
        rows.append(
            KindAgreement(
                kind=kind,
                expected="positive"
                if kind not in (*IMPLICIT_NEGATIVE_KINDS, ANY_NEGATIVE)
                else "negative",
                signals=sum(has.values()),
                thumbs=_thumbs(rated, has, rng, samples),
                votes=_votes(voted, has),
            )
        )
    return AgreementReport(
        rated_answers=len(rated),
        voted_pairs=sum(1 for v, _, _ in voted if v in ("a", "b")),
        answers_with_implicit=len(kinds_of),
        kinds=rows,
        method=(
            "Thumbs: 2x2 of signal vs thumbs-down over answers with a current thumbs; kappa "
            f"and MCC with percentile bootstrap 95% intervals ({samples} resamples, seed "
            f"{seed}). Votes: among decisive votes where exactly one answer carries the signal, "
            "the share where it lost, with a Wilson 95% interval. Consenting users only."
        ),
    )


def implicit_agreement(
    session: Session, *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES
) -> AgreementReport:
    """The agreement over what the store holds now (consenting users, live conversations)."""
    datasets = DatasetRepo(session)
    rated = [(r.answer.generation_id, r.rating == "down") for r in datasets.rated_answers()]
    voted = [(v.verdict, v.a.generation_id, v.b.generation_id) for v in datasets.voted_pairs()]
    implicit = ImplicitSignalRepo(session).kinds_by_generation()
    return agreement_from(rated, voted, implicit, seed=seed, samples=samples)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f" [{interval[0]:.2f}, {interval[1]:.2f}]"


def render_text(report: AgreementReport) -> str:
    """The report as a table a terminal shows."""
    lines = [
        f"{report.rated_answers} answers with a thumbs, {report.voted_pairs} decisive votes, "
        f"{report.answers_with_implicit} answers with implicit signals",
        "",
        f"{'kind':<22}{'n sig':>6}{'P(down|sig)':>12}{'P(down|no)':>11}{'base':>6}"
        f"{'lift':>6}  {'MCC [95% CI]':<22}{'loser share (votes)':<22}",
    ]
    for row in report.kinds:
        t, v = row.thumbs, row.votes
        share = (
            "–"
            if v.loser_share is None
            else f"{v.loser_share:.2f}{_ci(v.loser_share_ci95)} n={v.discordant}"
        )
        lines.append(
            f"{row.kind:<22}{t.with_signal:>6}{_fmt(t.p_down_given_signal):>12}"
            f"{_fmt(t.p_down_given_no_signal):>11}{_fmt(t.base_rate_down):>6}{_fmt(t.lift):>6}  "
            f"{(_fmt(t.mcc) + _ci(t.mcc_ci95)):<22}{share:<22}"
        )
    return "\n".join(lines)
