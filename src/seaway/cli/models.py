"""`seaway register` and `seaway models …`: thin commands over `seaway.registry`.

`seaway models` alone lists the registered models. Exit codes: 0 done, 1 a file was refused
(unsafe or unreadable model), 2 bad input (unknown model, version or alias; a bad path).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seaway.cli.output import console, line, print_json, table
from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.registry import LineageNode, ModelVersion

app = typer.Typer(invoke_without_command=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def register(root: typer.Typer) -> None:
    root.command("register")(register_cmd)
    root.add_typer(
        app, name="models", help="Registered models: list, show, alias, history, lineage."
    )


def _when(ts: datetime | None) -> str:
    from seaway._util import isoformat

    return (isoformat(ts) or "")[:19].replace("T", " ")


def _metric_map(items: list[str]) -> dict[str, float]:
    from seaway.errors import UsageError

    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise UsageError(
                f"--metric {item!r}: expected KEY=NUMBER", hint="for example --metric auc=0.91"
            ) from None
    return out


def register_cmd(
    name: Annotated[str, typer.Argument(help="The model's name (churn-classifier).")],
    path: Annotated[Path, typer.Argument(help="The model file or folder.")],
    flavor: Annotated[
        str | None,
        typer.Option("--flavor", "-f", help="sklearn, onnx, python; detected when omitted."),
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="The run that produced it (id or number).")
    ] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Accept a pickle/joblib file that passes the scan (it is converted to skops).",
        ),
    ] = False,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="A metric to record: KEY=VALUE.", metavar="K=V"),
    ] = None,
    sample: Annotated[
        Path | None,
        typer.Option("--sample", help="Parquet or CSV rows to infer the input/output schema."),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", "-d", help="What this version is.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a model file or folder as a new, immutable version."""
    from seaway.registry import register_model

    project = STATE.project()
    result = register_model(
        project,
        name,
        path,
        flavor=flavor,
        run_id=run,
        trust_pickle=trust_pickle,
        metrics=_metric_map(metric or []),
        sample=sample,
        description=description,
    )
    v = result.version
    if as_json:
        print_json(result.to_dict())
        return
    if result.created:
        line(f"registered {v.ref} ({v.flavor}, {_size(v.size)}, scan {v.scan_verdict})")
    else:
        line(f"already registered as {v.ref} (same content); nothing new stored")


def _size(n: int) -> str:
    from seaway._util import human_size

    return human_size(n)


@app.callback()
def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List registered models."""
    if ctx.invoked_subcommand is not None:
        return
    from seaway.registry import list_models

    models = list_models(STATE.project())
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    if not models:
        line("no models registered yet; see `seaway register --help`")
        return
    rows = [
        (
            m.name,
            m.latest or "",
            m.versions,
            ", ".join(f"{a}→{n}" for a, n in m.aliases.items()),
            _when(m.updated_at),
        )
        for m in models
    ]
    table(["model", "latest", "versions", "aliases", "updated"], rows)


@app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@N or NAME@ALIAS.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one version: files, schema, metrics, lineage, scan, aliases."""
    from seaway.registry import get_version, list_versions, parse_ref

    project = STATE.project()
    name, selector = parse_ref(ref)
    if selector is None and not as_json:
        versions = list_versions(project, name)
        rows = [
            (
                v.number,
                ", ".join(v.aliases),
                v.flavor,
                _size(v.size),
                v.scan_verdict,
                _metrics_text(v),
                _when(v.created_at),
                v.author,
            )
            for v in versions
        ]
        table(
            ["version", "aliases", "flavor", "size", "scan", "metrics", "registered", "by"],
            rows,
            title=f"{name}: {len(versions)} version(s)",
        )
        return
    version = get_version(project, ref)
    if as_json:
        print_json(version.to_dict())
        return
    _print_version(version)


def _metrics_text(v: ModelVersion) -> str:
    return ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items())[:4])


def _print_version(v: ModelVersion) -> None:
    from rich.markup import escape

    out = console()
    out.print(
        f"[bold]{escape(v.ref)}[/bold]" + (f"  ({', '.join(v.aliases)})" if v.aliases else "")
    )
    rows = [
        ("flavor", v.flavor),
        ("digest", v.digest),
        ("size", f"{_size(v.size)} in {v.n_files} file(s)"),
        ("registered", f"{_when(v.created_at)} by {v.author}"),
        ("scan", v.scan_verdict),
        ("run", v.run_id or "-"),
    ]
    git = v.lineage.get("git") or {}
    if git.get("commit"):
        rows.append(("git", f"{git['commit'][:12]}{' (dirty)' if git.get('dirty') else ''}"))
    datasets = [d.get("ref", "?") for d in v.lineage.get("datasets", []) if isinstance(d, dict)]
    if datasets:
        rows.append(("datasets", ", ".join(datasets)))
    if v.description:
        rows.append(("description", v.description))
    for key, value in rows:
        out.print(f"  {key:<12} {escape(str(value))}")
    if v.metrics:
        out.print("  metrics")
        for name, number in sorted(v.metrics.items()):
            out.print(f"    {escape(name):<20} {number:.6g}")
    schema = v.io_schema or {}
    for side in ("inputs", "outputs"):
        cols = schema.get(side) or []
        if cols:
            text = ", ".join(
                f"{c.get('name')}:{c.get('type')}" + (f"{c['shape']}" if c.get("shape") else "")
                for c in cols
            )
            out.print(f"  {side:<12} {escape(text)}")


@app.command("alias")
def alias_cmd(
    ref: Annotated[str, typer.Argument(help="The version: NAME@N (or NAME@OTHER-ALIAS).")],
    alias: Annotated[str, typer.Argument(help="The alias to point at it (champion).")],
    remove: Annotated[
        bool, typer.Option("--remove", help="Remove the alias from the model instead.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Move an alias to a version (or remove it with --remove)."""
    from seaway.registry import parse_ref, remove_alias, set_alias

    project = STATE.project()
    if remove:
        name, _ = parse_ref(ref)
        move = remove_alias(project, name, alias)
    else:
        move = set_alias(project, ref, alias)
    if as_json:
        print_json(move.to_dict())
        return
    if move.number is None:
        line(f"{move.model}@{alias} removed (it pointed at version {move.previous})")
    elif move.previous is None:
        line(f"{move.model}@{alias} → version {move.number}")
    elif move.previous == move.number:
        line(f"{move.model}@{alias} already pointed at version {move.number}")
    else:
        line(f"{move.model}@{alias} → version {move.number} (was {move.previous})")


def _parse_time(text: str) -> datetime:
    from seaway._util import as_utc
    from seaway.errors import UsageError

    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--at {text!r} is not a time", hint="write ISO 8601: 2026-11-22T14:05:00Z"
        ) from None
    return as_utc(ts)  # a time without a zone on the command line is UTC


@app.command("history")
def history_cmd(
    ref: Annotated[str, typer.Argument(help="NAME@ALIAS.")],
    at: Annotated[
        str | None, typer.Option("--at", help="Which version held the alias at this time.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every move of an alias, or the version it pointed at a given time."""
    from seaway.registry import alias_history

    when = _parse_time(at) if at else None
    moves = alias_history(STATE.project(), ref, at=when)
    if as_json:
        print_json([m.to_dict() for m in moves])
        return
    if when is not None:
        if not moves:
            line(f"{ref} pointed at no version at {_when(when)}")
        else:
            m = moves[0]
            line(
                f"{ref} pointed at version {m.number} at {_when(when)} "
                f"(since {_when(m.at)}, by {m.actor})"
            )
        return
    if not moves:
        line(f"{ref} has never been set")
        return
    rows = [
        (_when(m.at), "removed" if m.number is None else m.number, m.previous or "", m.actor)
        for m in moves
    ]
    table(["at", "version", "previous", "by"], rows, title=ref)


@app.command("lineage")
def lineage_cmd(
    ref: Annotated[str, typer.Argument(help="NAME@N or NAME@ALIAS.")],
    as_json: JsonOpt = False,
) -> None:
    """The chain from dataset versions through the run's steps to the version, as a tree."""
    from seaway.registry import get_version, lineage_tree

    project = STATE.project()
    node = lineage_tree(project, get_version(project, ref))
    if as_json:
        print_json(node.to_dict())
        return
    from rich.tree import Tree

    tree = Tree(_node_text(node))
    _grow(tree, node)
    console().print(tree)


def _node_text(node: LineageNode) -> str:
    from rich.markup import escape

    styles = {"version": "bold", "run": "cyan", "step": "green", "dataset": "magenta"}
    detail = node.detail
    extras = []
    for key in ("as", "status", "flavor", "size", "pipeline", "version"):
        if detail.get(key) is not None and not (key == "version" and node.kind == "dataset"):
            extras.append(f"{key} {detail[key]}")
    if detail.get("git_commit"):
        extras.append(
            f"git {str(detail['git_commit'])[:12]}{' dirty' if detail.get('git_dirty') else ''}"
        )
    for key in ("cache_key", "tree_hash", "digest"):
        if detail.get(key):
            extras.append(f"{key.replace('_', ' ')} {str(detail[key])[:12]}")
    style = styles.get(node.kind, "")
    label = f"[{style}]{escape(node.label)}[/{style}]" if style else escape(node.label)
    return label + (f"  [dim]{escape(', '.join(extras))}[/dim]" if extras else "")


def _grow(tree: object, node: LineageNode) -> None:
    from rich.tree import Tree

    assert isinstance(tree, Tree)
    for child in node.children:
        _grow(tree.add(_node_text(child)), child)
