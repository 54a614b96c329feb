"""Live figures merged from the windows of several gateways, and prediction PSI."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import numpy as np
import pytest

from seaway._util import utcnow
from seaway.project import Project
from seaway.serving.live import live_figures, prediction_psi
from seaway.serving.telemetry import Telemetry


def _traffic(
    t: Telemetry,
    number: int,
    latencies: np.ndarray,
    probs: np.ndarray,
    route: str = "primary",
    errors_every: int = 0,
) -> None:
    for i, (lat, p) in enumerate(zip(latencies, probs, strict=True)):
        status = 503 if errors_every and i % errors_every == 0 else 200
        t.request(
            "churn",
            number,
            route,
            status=status,
            latency_s=float(lat),
            request_id=f"{number}-{route}-{i}-{lat}",
            outputs=np.array([[1 - p, p]]),
        )


def test_live_figures_merge_windows_and_gateways(project: Project) -> None:
    rng = np.random.default_rng(1)
    a = Telemetry(project, gateway_id="a", sample_rate=0.0)
    b = Telemetry(project, gateway_id="b", sample_rate=0.0)
    before = utcnow()
    lat1 = rng.lognormal(np.log(0.001), 0.5, 1500)
    lat2 = rng.lognormal(np.log(0.004), 0.5, 1000)
    lat3 = rng.lognormal(np.log(0.002), 0.5, 500)
    _traffic(a, 7, lat1, rng.beta(2, 5, 1500), errors_every=50)
    a.flush()
    _traffic(a, 7, lat2, rng.beta(2, 5, 1000))
    _traffic(b, 7, lat3, rng.beta(2, 5, 500), errors_every=100)
    _traffic(b, 8, lat3[:200], rng.beta(2, 5, 200), route="shadow")
    for agreed in (True, True, True, False):
        b.shadow_compare("churn", 7, 8, agreed=agreed)
    a.flush()
    b.flush()

    figures = live_figures(project, "churn", 7, since=before)
    assert (figures.windows, figures.requests, figures.errors) == (3, 3000, 30 + 5)
    assert figures.error_rate == pytest.approx(35 / 3000)
    assert figures.codes == {200: 2965, 503: 35}
    every = np.concatenate([lat1, lat2, lat3])
    assert figures.p50 == pytest.approx(float(np.percentile(every, 50)), rel=0.06)
    assert figures.p99 == pytest.approx(float(np.percentile(every, 99)), rel=0.06)
    assert figures.outputs["output"].total == 2965  # answers with errors are not sketched
    assert figures.to_dict()["requests"] == 3000

    shadow = live_figures(project, "churn", 8, since=before, route="shadow")
    assert shadow.requests == 200
    assert shadow.shadow[7].agreed == 3 and shadow.shadow_agreement.rate == 0.75
    assert live_figures(project, "churn", 8, since=before, route="primary").requests == 0

    # Windows that ended before `since` are left out.
    time.sleep(0.01)
    later = utcnow()
    _traffic(a, 7, lat3[:10], rng.beta(2, 5, 10))
    a.flush()
    recent = live_figures(project, "churn", 7, since=later)
    assert (recent.windows, recent.requests) == (1, 10)
    nothing = live_figures(project, "churn", 7, since=utcnow() + timedelta(hours=1))
    assert nothing.requests == 0 and math.isnan(nothing.error_rate) and nothing.p99 is None


def test_prediction_psi_tells_similar_from_shifted_outputs(project: Project) -> None:
    rng = np.random.default_rng(2)
    t = Telemetry(project, gateway_id="g", sample_rate=0.0)
    lat = np.full(3000, 0.001)
    _traffic(t, 1, lat, rng.beta(2, 5, 3000))
    _traffic(t, 2, lat, rng.beta(2, 5, 3000))
    _traffic(t, 3, lat, rng.beta(5, 2, 3000))
    t.flush()
    since = utcnow() - timedelta(minutes=1)
    one, two, three = (live_figures(project, "churn", n, since=since) for n in (1, 2, 3))
    assert prediction_psi(one, two) < 0.05
    assert prediction_psi(one, three) > 1.0
    assert math.isnan(prediction_psi(one, live_figures(project, "churn", 9, since=since)))


def test_labels_and_regrouped_numbers_compare_too(project: Project) -> None:
    t = Telemetry(project, gateway_id="g", sample_rate=0.0)
    for i in range(400):
        t.request(
            "m",
            1,
            "primary",
            status=200,
            latency_s=0.001,
            request_id=str(i),
            outputs=np.array(["yes" if i % 4 else "no"]),
        )
        t.request(
            "m",
            2,
            "primary",
            status=200,
            latency_s=0.001,
            request_id=str(i),
            outputs=np.array(["yes" if i % 2 else "no"]),
        )
        # A regression output with edges seeded from its first values.
        t.request(
            "r",
            1,
            "primary",
            status=200,
            latency_s=0.001,
            request_id=str(i),
            outputs=np.array([10.0 + (i % 50)]),
        )
    t.flush()
    since = utcnow() - timedelta(minutes=1)
    one, two = (
        live_figures(project, "m", 1, since=since),
        live_figures(project, "m", 2, since=since),
    )
    assert one.outputs["output"].labels == {"yes": 300, "no": 100}
    assert prediction_psi(one, two) > 0.1
    reg = live_figures(project, "r", 1, since=since).outputs["output"]
    assert reg.kind == "numeric" and reg.total == 400 and reg.edges[0] >= 10.0


def test_prediction_psi_is_not_fooled_by_a_small_sample() -> None:
    import numpy as np

    from seaway.stats.measures import small_sample_psi

    rng = np.random.default_rng(0)
    edges = np.linspace(0, 1, 21)

    def hist(a: float, b: float, n: int) -> list[float]:
        return [float(v) for v in np.histogram(rng.beta(a, b, n), edges)[0]]

    # Two samples of one distribution: 45 canary requests against 100 stable ones read
    # as no shift (plain PSI reads about 0.5 to 2 here), a real shift reads as one.
    same = [small_sample_psi(hist(2, 2, 100), hist(2, 2, 45)) for _ in range(50)]
    assert float(np.percentile(same, 90)) < 0.2
    assert small_sample_psi(hist(2, 2, 100), hist(8, 1, 45)) > 1.0
    assert math.isnan(small_sample_psi([0, 0], [1, 2]))
