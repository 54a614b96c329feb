"""`seaway data …`: thin commands over `seaway.data`.

JSON output (`--json`) of each command is documented in docs/json-output.md; the shapes
come from the `to_dict()` of the library's result objects, so the CLI and Python callers
see the same fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seaway.cli.output import console, line, print_json, progress, table
from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.data.checks import CheckReport

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def _short(digest: str) -> str:
    return digest[:10]


def _when(ts: Any) -> str:
    from seaway._util import isoformat

    return (isoformat(ts) or "")[:19].replace("T", " ")


@app.command("add")
def add_cmd(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files and folders (default: the path declared in seaway.yaml)."),
    ] = None,
    message: Annotated[str | None, typer.Option("-m", "--message", help="A note.")] = None,
    link: Annotated[
        str | None,
        typer.Option(
            help="How blobs are stored: auto (reflink, else copy), copy, reflink, hardlink."
        ),
    ] = None,
    no_checks: Annotated[bool, typer.Option("--no-checks", help="Skip the data checks.")] = False,
    jobs: Annotated[int | None, typer.Option("-j", "--jobs", help="Hashing threads.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Snapshot files as a new dataset version (identical content returns the existing one)."""
    from seaway.data.datasets import add
    from seaway.errors import UsageError
    from seaway.store.blobs import LINK_MODES

    if link is not None and link not in LINK_MODES:
        raise UsageError(f"unknown link mode {link!r}", hint="use one of: " + ", ".join(LINK_MODES))
    project = STATE.project()
    with progress(f"adding {name}") as bar:
        result = add(
            project,
            name,
            paths or None,
            message=message,
            link=link,
            checks=not no_checks,
            workers=jobs,
            on_total=bar.set_total,
            advance=bar.advance,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        from seaway._util import human_size

        v = result.version
        what = f"{v.ref} ({_short(v.tree_hash)}): {v.n_files} files, {human_size(v.size)}"
        if result.created:
            line(
                f"added {what}; hashed {result.hashed} files, stored {result.stored} new "
                f"blobs in {result.duration_s:.2f}s"
            )
        else:
            line(f"unchanged: the content is already {what}")
        if result.check_report is not None:
            _print_report(result.check_report)
    if v_failed(result.version.check_status):
        raise typer.Exit(1)


def v_failed(check_status: str) -> bool:
    return check_status in ("failed", "error")


def _print_report(report: CheckReport) -> None:
    rows = [(r.status.upper(), r.name, r.message) for r in report.results]
    table(["status", "check", "result"], rows, title=f"data checks: {report.status}")


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List datasets with their latest version."""
    from seaway._util import human_size
    from seaway.data.datasets import list_datasets

    summaries = list_datasets(STATE.project())
    if as_json:
        print_json({"datasets": [s.to_dict() for s in summaries]})
        return
    if not summaries:
        console().print("no datasets yet; add one with `seaway data add NAME PATH`")
        return
    rows = []
    for s in summaries:
        v = s.latest
        rows.append(
            (
                s.name,
                s.versions,
                v.ref if v else "",
                v.n_files if v else "",
                human_size(v.size) if v else "",
                v.check_status if v else "",
                _when(v.created_at) if v else "",
            )
        )
    table(["dataset", "versions", "latest", "files", "size", "checks", "created"], rows)


@app.command("log")
def log_cmd(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    limit: Annotated[int | None, typer.Option("-n", "--limit", help="Show at most N.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset's versions, newest first."""
    from seaway._util import human_size
    from seaway.data.datasets import log

    versions = log(STATE.project(), name, limit=limit)
    if as_json:
        print_json({"dataset": name, "versions": [v.to_dict() for v in versions]})
        return
    rows = [
        (
            v.ref,
            _short(v.tree_hash),
            v.n_files,
            human_size(v.size),
            v.check_status,
            v.author,
            _when(v.created_at),
            v.message or "",
        )
        for v in versions
    ]
    table(["version", "hash", "files", "size", "checks", "author", "created", "message"], rows)


def _change_rows(changes: list[Any]) -> list[tuple[str, str, str]]:
    from seaway._util import human_size

    marks = {"added": "+", "removed": "-", "modified": "~"}
    rows = []
    for c in changes:
        if c.change == "modified":
            size = f"{human_size(c.old_size)} → {human_size(c.new_size)}"
        else:
            size = human_size(c.new_size if c.new_size is not None else c.old_size)
        rows.append((marks[c.change], c.path, size))
    return rows


@app.command("status")
def status_cmd(
    name: Annotated[
        str | None, typer.Argument(help="Dataset (default: all in this workspace).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """What changed in the workspace since the last added version (writes nothing)."""
    from seaway.data.datasets import status

    results = status(STATE.project(), name)
    if as_json:
        print_json({"datasets": [r.to_dict() for r in results]})
        return
    if not results:
        line("no datasets added in this workspace yet")
        return
    for r in results:
        if r.state == "unchanged":
            line(f"{r.dataset}: unchanged since {r.dataset}@{r.version}")
            continue
        s = r.to_dict()["summary"]
        line(
            f"{r.dataset}: {r.state} since {r.dataset}@{r.version} "
            f"({s['added']} added, {s['removed']} removed, {s['modified']} modified)"
        )
        for missing in r.missing_sources:
            line(f"  missing: {missing}")
        for mark, path, size in _change_rows(r.changes[:50]):
            line(f"  {mark} {path}  {size}")
        if len(r.changes) > 50:
            line(f"  … and {len(r.changes) - 50} more (use --json for all)")


@app.command("diff")
def diff_cmd(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    v1: Annotated[
        str | None, typer.Argument(help="From version (default: the one before V2).")
    ] = None,
    v2: Annotated[str | None, typer.Argument(help="To version (default: latest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Files added, removed and modified between two versions."""
    from seaway._util import human_size
    from seaway.data.datasets import diff

    result = diff(STATE.project(), name, v1, v2)
    if as_json:
        print_json(result.to_dict())
        return
    c = result.counts()
    delta = result.new.size - result.old.size
    sign = "+" if delta >= 0 else "-"
    console().print(
        f"{result.old.ref} → {result.new.ref}: {c['added']} added, {c['removed']} removed, "
        f"{c['modified']} modified ({sign}{human_size(abs(delta))})"
    )
    if result.changes:
        table(["", "path", "size"], _change_rows(result.changes))


@app.command("checkout")
def checkout_cmd(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (NAME alone: latest).")],
    dest: Annotated[Path, typer.Argument(help="Folder to write the files into.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that differ.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a dataset version's files into a folder (verified, atomic per file)."""
    from seaway.data.checkout import checkout

    with progress(f"checking out {ref}") as bar:
        result = checkout(
            STATE.project(), ref, dest, force=force, on_total=bar.set_total, advance=bar.advance
        )
    if as_json:
        print_json(result.to_dict())
        return
    console().print(
        f"checked out {result.ref} into {result.dest}: {result.written} written, "
        f"{result.unchanged} already up to date"
    )


@app.command("check")
def check_cmd(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (default: latest).")],
    as_json: JsonOpt = False,
) -> None:
    """Run the dataset's declared checks on a version; exit 1 if one fails."""
    from seaway.data.quality import check_version

    version, report = check_version(STATE.project(), ref)
    if as_json:
        print_json({"ref": version.ref, **report.to_dict()})
    else:
        console().print(f"{version.ref}: {report.rows} rows")
        _print_report(report)
    if v_failed(report.status):
        raise typer.Exit(1)


@app.command("verify")
def verify_cmd(as_json: JsonOpt = False) -> None:
    """Re-hash every blob that a version references; exit 1 if any is corrupt or missing."""
    from seaway.data.maintenance import verify

    with progress("verifying") as bar:
        report = verify(STATE.project(), on_total=bar.set_total, advance=bar.advance)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console().print(f"all {report.checked} blobs intact")
    else:
        table(
            ["state", "blob", "used by"],
            [(p.state, p.digest, ", ".join(p.used_by[:3])) for p in report.problems],
            title=f"{len(report.problems)} of {report.checked} blobs damaged",
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command("gc")
def gc_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would go.")] = False,
    min_age: Annotated[
        float,
        typer.Option(help="Spare unreferenced blobs younger than this many seconds."),
    ] = 3600.0,
    as_json: JsonOpt = False,
) -> None:
    """Remove blobs that no dataset version references."""
    from seaway._util import human_size
    from seaway.data.maintenance import gc

    report = gc(STATE.project(), dry_run=dry_run, grace_seconds=min_age)
    if as_json:
        print_json(report.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    console().print(
        f"{verb} {report.removed} blobs ({human_size(report.removed_bytes)}); kept {report.kept}"
        + (f"; spared {report.spared_recent} recent" if report.spared_recent else "")
    )
