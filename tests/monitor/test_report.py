"""The drift report: one HTML file a person opens anywhere, showing every watched column's
drift over time, the newest window's statistics with drifted columns first, the most drifted
distributions, live quality, and a plain explanation when there is nothing to show yet."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from seaway._util import utcnow
from seaway.errors import InputError, UsageError
from seaway.monitor.report import render_report
from seaway.monitor.windows import store_window
from seaway.project import Project
from tests.serving.conftest import register, save_classifier

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NAMES = ["x0", "x1", "x2", "x3"]
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "source", "wbr"}


# --------------------------------------------------------------------------- parsing


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def all(self, tag: str, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if child.tag == tag and (cls is None or cls in child.attrs.get("class", "").split()):
                found.append(child)
            found += child.all(tag, cls)
        return found

    def one(self, tag: str, cls: str | None = None) -> Node:
        found = self.all(tag, cls)
        assert len(found) == 1, f"{len(found)} <{tag} class={cls}> elements"
        return found[0]

    def by_id(self, ident: str) -> Node:
        for node in self.walk():
            if node.attrs.get("id") == ident:
                return node
        raise AssertionError(f"no element with id {ident!r}")

    def walk(self) -> list[Node]:
        out = [self]
        for child in self.children:
            out += child.walk()
        return out

    def content(self) -> str:
        """The visible text, as a reader sees it (SVG tooltips left out)."""
        if self.tag in {"title", "style"}:
            return ""
        parts = list(self.text)
        for child in self.children:
            parts.append(child.content())
        return " ".join(" ".join(parts).split())


class TreeBuilder(HTMLParser):
    """A strict tree: every element closed, in order (what a browser would not insist on)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


def parse(path: Path) -> tuple[Node, str]:
    text = path.read_text(encoding="utf-8")
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    assert builder.doctype.lower() == "doctype html"
    return builder.root, text


# --------------------------------------------------------------------------- windows


def numeric(psi: float, drifted: bool, shift: int = 0) -> dict[str, Any]:
    return {
        "kind": "numeric",
        "psi": psi,
        "ks": psi / 3,
        "ks_p": 1e-30 if drifted else 0.4,
        "js": psi / 4,
        "chi2": psi * 1000,
        "chi2_p": 0.0 if drifted else 0.3,
        "drifted": drifted,
        "edges": [-1.0, 0.0, 1.0],
        "reference": [100, 400, 400, 100],
        "current": [100 + shift, 400 - shift, 400, 100],
    }


def categorical(psi: float, drifted: bool) -> dict[str, Any]:
    return {
        "kind": "categorical",
        "psi": psi,
        "ks": None,
        "ks_p": None,
        "js": psi / 4,
        "chi2": psi * 500,
        "chi2_p": 1e-9 if drifted else 0.5,
        "drifted": drifted,
        "labels": ["north", "south", "(other)"],
        "reference": [500, 400, 100],
        "current": [300, 400, 300] if drifted else [490, 410, 100],
    }


def figures(features: dict[str, Any], threshold: float = 0.2) -> dict[str, Any]:
    drifted = [n for n, f in features.items() if f["drifted"]]
    return {
        "threshold": threshold,
        "drifted": drifted,
        "requests": 1000,
        "skipped": 0,
        "features": features,
        "predictions": {"predict_proba": numeric(0.03, False, shift=20)},
    }


def add_window(
    project: Project,
    model: str,
    start: datetime,
    feats: dict[str, Any],
    *,
    number: int = 1,
    kind: str = "drift",
    score: float | None = None,
    breached: bool | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    figs = figures(feats) if kind == "drift" else dict(extra or {})
    if score is None:
        score = max((f["psi"] for f in feats.values()), default=0.0)
    if breached is None:
        breached = bool(figs.get("drifted"))

    def write(conn: Any) -> None:
        store_window(
            conn,
            model=model,
            number=number,
            kind=kind,
            window_start=start,
            window_end=start + timedelta(minutes=50),
            first_id=1,
            last_id=1000,
            rows=1000,
            score=score,
            breached=breached,
            figures=figs,
        )

    project.metadata.run_write(write)


def history(project: Project, model: str = "churn") -> None:
    """Three hours: calm, then income drifts, then income and region drift."""
    calm = {
        "income": numeric(0.02, False),
        "age": numeric(0.01, False),
        "region": categorical(0.005, False),
    }
    add_window(project, model, T0, calm)
    add_window(
        project,
        model,
        T0 + timedelta(hours=1),
        {**calm, "income": numeric(0.35, True, shift=150)},
    )
    add_window(
        project,
        model,
        T0 + timedelta(hours=2),
        {
            "age": numeric(0.04, False),
            "income": numeric(0.45, True, shift=200),
            "region": categorical(0.3, True),
        },
    )


@pytest.fixture
def churn(project: Project, tmp_path: Path) -> Project:
    register(project, "churn", save_classifier(tmp_path / "m1" / "model.skops"))
    return project


# --------------------------------------------------------------------------- tests


def test_every_column_has_a_chart_and_drifted_columns_come_first(
    churn: Project, tmp_path: Path
) -> None:
    history(churn)
    out = render_report(churn, "churn", tmp_path / "reports" / "churn.html", top=2)
    assert out == tmp_path / "reports" / "churn.html"
    doc, _ = parse(out)

    header = doc.one("header").content()
    assert "Drift report: churn" in header
    assert "Versions covered 1" in header
    assert "3 drift windows, 0 quality windows" in header
    assert "Breached 2 of 3" in header
    assert "2026-11-20" in header

    # Drift over time: the overview, then one chart per feature and prediction output,
    # in the newest window's order (drifted first), each with the threshold line.
    section = doc.by_id("drift-over-time")
    overview = section.one("figure", "overview")
    assert len(overview.all("circle", "mark")) == 2  # the two breached windows
    charts = section.all("figure", "column-chart")
    names = [c.attrs["data-column"] for c in charts]
    assert names == ["income", "region", "age", "predict_proba"]
    for chart in charts:
        svg = chart.one("svg")
        assert svg.all("path", "series"), "a line per column"
        assert svg.all("line", "threshold"), "the threshold line"
        assert len(svg.all("circle", "dot")) + len(svg.all("circle", "mark")) == 3
    captions = [c.one("figcaption").content() for c in charts]
    assert captions[0] == "income drifted in the newest window"
    assert captions[3] == "prediction: predict_proba"
    by_name = dict(zip(names, charts, strict=True))
    assert len(by_name["income"].all("circle", "mark")) == 2
    assert len(by_name["region"].all("circle", "mark")) == 1
    assert by_name["age"].all("circle", "mark") == []

    # The newest window's statistics: drifted columns first, with their figures.
    table = doc.by_id("newest-window").one("table", "statistics")
    rows = [[td.content() for td in tr.all("td")] for tr in table.all("tr")[1:]]
    assert [r[0] for r in rows] == ["income", "region", "age", "prediction: predict_proba"]
    assert [r[-1] for r in rows] == ["yes", "yes", "no", "no"]
    assert rows[0][1:4] == ["numeric", "0.45", "0.15"]
    assert rows[0][4] == "<1e-16"
    assert rows[1][3] == "\u2013"  # no KS for a category: a dash
    assert "breached: income, region" in doc.by_id("newest-window").content()

    # The two most drifted features' distributions, reference beside current.
    dist = doc.by_id("distributions")
    figures_ = dist.all("figure", "distribution")
    assert [f.attrs["data-column"] for f in figures_] == ["income", "region", "predict_proba"]
    income = figures_[0]
    assert "reference" in income.one("div", "legend").content()
    assert "current window" in income.one("div", "legend").content()
    assert len(income.all("rect", "reference")) == 4 == len(income.all("rect", "current"))
    labels = [t.content() for t in income.one("svg").all("text")]
    assert "< -1" in labels and "≥ 1" in labels
    region_labels = [t.content() for t in figures_[1].one("svg").all("text")]
    assert {"north", "south", "(other)"} <= set(region_labels)

    # No quality windows: no quality section; the window list names the drifted columns.
    with pytest.raises(AssertionError):
        doc.by_id("quality")
    listed = doc.by_id("windows").one("table").all("tr")[1:]
    assert listed[0].all("td")[-1].content() == "income, region"


def test_the_file_stands_alone(churn: Project, tmp_path: Path) -> None:
    history(churn)
    out = render_report(churn, "churn", tmp_path)
    assert out == tmp_path / "churn-drift-report.html"
    doc, text = parse(out)
    tags = {n.tag for n in doc.walk()}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    for node in doc.walk():
        for name in ("src", "href", "xlink:href", "action"):
            value = node.attrs.get(name)
            assert value is None or value.startswith("#"), f"<{node.tag} {name}={value}>"
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", text)
    assert doc.all("meta")[0].attrs.get("charset") == "utf-8"
    # Each chart is well-formed SVG on its own, as a browser's SVG parser needs.
    svgs = re.findall(r"<svg\b.*?</svg>", text, flags=re.S)
    assert len(svgs) >= 5
    for svg in svgs:
        ET.fromstring(svg)


def test_names_are_escaped(churn: Project, tmp_path: Path) -> None:
    evil = '<script>alert("x")</script> & co'
    add_window(churn, "churn", T0, {evil: numeric(0.5, True, shift=100)})
    doc, text = parse(render_report(churn, "churn", tmp_path / "r.html"))
    assert "<script>" not in text
    assert not doc.all("script")
    chart = doc.by_id("drift-over-time").all("figure", "column-chart")[0]
    assert chart.attrs["data-column"] == evil
    assert chart.one("figcaption").content().startswith(evil)


def test_live_quality_over_time(churn: Project, tmp_path: Path) -> None:
    history(churn)
    for i, (accuracy, breached) in enumerate([(0.91, False), (0.88, False), (0.71, True)]):
        add_window(
            churn,
            "churn",
            T0 + timedelta(hours=i),
            {},
            kind="quality",
            score=accuracy,
            breached=breached,
            extra={"metric": "accuracy", "accuracy": accuracy, "auc": 0.8, "labels": 250},
        )
    doc, _ = parse(render_report(churn, "churn", tmp_path / "r.html"))
    section = doc.by_id("quality")
    assert "Live quality over time" in section.content()
    chart = section.one("figure", "quality")
    assert len(chart.all("circle", "mark")) == 1
    assert len(chart.all("circle", "dot")) == 2
    cells = [td.content() for td in section.one("table", "quality").all("td")]
    assert "0.71" in cells and "250" in cells and "0.8" in cells
    header = doc.one("header").content()
    assert "3 drift windows, 3 quality windows" in header
    assert "Breached 3 of 6: 2 of 3 drift, 1 of 3 quality" in header


def test_one_version_and_a_period(churn: Project, tmp_path: Path) -> None:
    register(churn, "churn", save_classifier(tmp_path / "m2" / "model.skops", C=0.5))
    history(churn)
    add_window(churn, "churn", T0 + timedelta(hours=3), {"income": numeric(0.6, True)}, number=2)
    everything = parse(render_report(churn, "churn", tmp_path / "all.html"))[0]
    assert "Versions covered 1, 2" in everything.one("header").content()
    two, _ = parse(render_report(churn, "churn", tmp_path / "two.html", number=2))
    assert "Versions covered 2 (chosen)" in two.one("header").content()
    assert "1 drift window," in two.one("header").content()
    late, _ = parse(
        render_report(churn, "churn", tmp_path / "late.html", since=T0 + timedelta(minutes=140))
    )
    assert "2 drift windows" in late.one("header").content()
    newest, _ = parse(render_report(churn, "churn", tmp_path / "cap.html", max_windows=2))
    assert "the newest 2 of 4" in newest.one("header").content()


def test_no_window_yet_says_why(churn: Project, tmp_path: Path) -> None:
    doc, _ = parse(render_report(churn, "churn", tmp_path / "r.html"))
    assert "Breached 0 of 0" in doc.one("header").content()
    empty = doc.by_id("drift-over-time").one("div", "empty").content()
    assert "No drift window to show yet." in empty
    assert "no reference profile is stored for churn" in empty
    assert "seaway monitor reference churn@N --data FILE" in empty
    assert "the gateway has logged no request of churn" in empty
    assert not doc.all("svg")

    # Windows exist, but none in the period asked for.
    history(churn)
    late, _ = parse(
        render_report(churn, "churn", tmp_path / "late.html", since=T0 + timedelta(days=1))
    )
    said = late.by_id("drift-over-time").content()
    assert "no drift window of churn ended after" in said
    assert "3 older ones exist" in said


def test_unknown_model_or_version_is_refused(churn: Project, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no model named 'nope'") as info:
        render_report(churn, "nope", tmp_path / "r.html")
    assert "churn" in (info.value.hint or "")
    with pytest.raises(InputError, match="has no version 9"):
        render_report(churn, "churn", tmp_path / "r.html", number=9)
    with pytest.raises(UsageError):
        render_report(churn, "churn", tmp_path / "r.html", top=-1)
    assert not (tmp_path / "r.html").exists()


def test_a_long_history_stays_small(churn: Project, tmp_path: Path) -> None:
    feats = {f"f{i:02d}": numeric(0.01 * (i % 5), i == 3) for i in range(20)}

    def write(conn: Any) -> None:
        for k in range(400):
            start = T0 + timedelta(minutes=5 * k)
            store_window(
                conn,
                model="churn",
                number=1,
                kind="drift",
                window_start=start,
                window_end=start + timedelta(minutes=5),
                first_id=k * 100 + 1,
                last_id=(k + 1) * 100,
                rows=100,
                score=0.04,
                breached=True,
                figures=figures(feats),
            )

    churn.metadata.run_write(write)
    out = render_report(churn, "churn", tmp_path / "r.html")
    doc, _ = parse(out)
    charts = doc.by_id("drift-over-time").all("figure", "column-chart")
    assert len(charts) == 21
    assert charts[0].attrs["data-column"] == "f03"
    # Past a few hundred windows only the marked ones are drawn as points.
    assert not charts[1].all("circle", "dot")
    assert len(charts[0].all("circle", "mark")) == 400
    assert out.stat().st_size < 3_000_000


def test_a_report_of_real_traffic(churn: Project, tmp_path: Path) -> None:
    """Requests through a real gateway, scored by the monitor, drawn by the report."""
    import httpx
    import numpy as np
    import pyarrow as pa

    from seaway.monitor.drift import score_drift
    from seaway.monitor.reference import build_reference
    from seaway.serving.routes import deploy
    from tests.serving.conftest import running_server, training_data

    root = churn.root
    # The gateway runs without this process' environment: the store goes into seaway.yaml.
    (root / "seaway.yaml").write_text(
        f"name: demo\nstore: {{metadata: '{churn.metadata_url}'}}\n"
        "monitoring:\n  live:\n    window: {rows: 300}\n"
    )
    project = Project(root)
    try:
        number = register(project, "live", save_classifier(tmp_path / "live.skops", named=True))
        X, _ = training_data()
        # Rows sent without names are read as x0, x1, ... (the version declares no inputs).
        table = pa.table({n: X[:, i] for i, n in enumerate(NAMES)})
        build_reference(project, f"live@{number}", table)
        deploy(project, f"live@{number}")
        rng = np.random.default_rng(0)
        calm = X[rng.integers(0, len(X), 300)]
        moved = X[rng.integers(0, len(X), 300)].copy()
        moved[:, 1] += 2 * X[:, 1].std()  # x1 moves by two standard deviations
        with running_server(root, "--sample-rate", "1") as url:
            for rows in (calm, moved):
                for part in np.array_split(rows, 6):
                    answer = httpx.post(
                        f"{url}/v1/models/live:predict",
                        json={"instances": part.tolist()},
                        timeout=30,
                    )
                    assert answer.status_code == 200, answer.text
        # Stopping the gateway flushed its request log; a minute later it has settled.
        windows = score_drift(project, "live", now=utcnow() + timedelta(minutes=1))
        assert [w.breached for w in windows] == [False, True]
        doc, _ = parse(render_report(project, "live", tmp_path / "live.html", top=1))
    finally:
        project.close()
    assert "Breached 1 of 2" in doc.one("header").content()
    charts = doc.by_id("drift-over-time").all("figure", "column-chart")
    drifted = set(windows[-1].drifted)
    assert drifted == {"x1"}
    order = [c.attrs["data-column"] for c in charts]
    assert set(order[: len(drifted)]) == drifted
    assert set(order) == set(NAMES)
    # top=1: the most drifted feature's distribution.
    dists = doc.by_id("distributions").all("figure", "distribution")
    assert [d.attrs["data-column"] for d in dists] == ["x1"]
    assert len(dists[0].all("rect", "current")) == len(dists[0].all("rect", "reference")) > 5
