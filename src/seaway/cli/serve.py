"""`seaway serve`, `seaway deploy`, `seaway undeploy`, `seaway deployments`: thin commands over
`seaway.serving.server` and `seaway.serving.routes`.

`deploy` and `undeploy` edit the routing table in the store (as audit events); running
gateways pick the change up within their poll interval. JSON shapes are documented in
docs/json-output.md ("Serving"). Exit codes: 0 done, 2 bad usage or an unknown
model/version/deployment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from seaway.cli.output import line, print_json, table
from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.serving.routes import RoutingTable

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("deploy")(deploy)
    app.command("undeploy")(undeploy)
    app.command("deployments")(deployments)


def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Worker processes sharing the port.")
    ] = 1,
    poll_interval: Annotated[
        float,
        typer.Option("--poll-interval", help="Seconds between checks of the routing table."),
    ] = 1.0,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            "--idle-timeout",
            help="Unload a version idle this many seconds, unless its deployment says "
            "otherwise (default 900).",
        ),
    ] = None,
    memory_budget: Annotated[
        str | None,
        typer.Option(
            "--memory-budget",
            help="Estimated memory for loaded versions (such as 4GiB); the least recently "
            "used are unloaded beyond it.",
        ),
    ] = None,
    predict_threads: Annotated[
        int | None,
        typer.Option(
            "--predict-threads", help="Predict threads per worker (default: cores - 1, 1 to 4)."
        ),
    ] = None,
    sample_rate: Annotated[
        float | None,
        typer.Option(
            "--sample-rate",
            help="Share of requests logged with inputs and outputs for drift monitoring and "
            "feedback labels (default 0.01).",
        ),
    ] = None,
    sample_cap: Annotated[
        int | None,
        typer.Option(
            "--sample-cap",
            help="Most requests logged per flush window (5 s); beyond it they are counted as "
            "dropped (default: 1000, or 20000 x the sample rate when larger).",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="critical, error, warning, info or debug.")
    ] = "warning",
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (slower).")
    ] = False,
) -> None:
    """Serve the deployed models over Open Inference Protocol v2 and KServe v1."""
    from seaway.serving.server import parse_size
    from seaway.serving.server import serve as run_server

    project = STATE.project()
    budget = parse_size(memory_budget) if memory_budget else None
    line(f"seaway gateway on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})")
    run_server(
        project.root,
        host=host,
        port=port,
        workers=workers,
        poll_interval_s=poll_interval,
        idle_timeout_s=idle_timeout,
        memory_budget_bytes=budget,
        predict_threads=predict_threads,
        sample_rate=sample_rate,
        sample_cap=sample_cap,
        log_level=log_level,
        access_log=access_log,
    )


def deploy(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@ALIAS.")],
    weight: Annotated[
        float | None,
        typer.Option(
            "--weight",
            help="Percent of primary traffic; the other versions are rescaled to the rest. "
            "Without it (and without --shadow) the version takes all traffic.",
        ),
    ] = None,
    shadow: Annotated[
        float | None,
        typer.Option("--shadow", help="Mirror this percent of requests to the version."),
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option("--max-batch", help="Batch up to N rows per predict.")
    ] = None,
    max_wait_us: Annotated[
        int | None,
        typer.Option("--max-wait-us", help="Wait at most this long for a batch to fill."),
    ] = None,
    idle_timeout: Annotated[
        float | None, typer.Option("--idle-timeout", help="Unload after this many idle seconds.")
    ] = None,
    keep_loaded: Annotated[
        bool | None,
        typer.Option("--keep-loaded/--scale-to-zero", help="Keep the version loaded (min 1)."),
    ] = None,
    require_signature: Annotated[
        bool | None,
        typer.Option("--require-signature/--no-require-signature", help="Verify on load."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve a model version (the routing table in the store; gateways follow it live)."""
    from seaway.serving.routes import BatchingSpec, ScaleSpec
    from seaway.serving.routes import deploy as do_deploy

    batching = None
    if max_batch is not None or max_wait_us is not None:
        batching = BatchingSpec(
            max_batch=max_batch if max_batch is not None else 32,
            max_wait_us=max_wait_us if max_wait_us is not None else 500,
        )
    scale = None
    if idle_timeout is not None or keep_loaded is not None:
        scale = ScaleSpec(idle_timeout_s=idle_timeout, min=1 if keep_loaded else 0)
    result = do_deploy(
        STATE.project(),
        ref,
        weight=weight,
        shadow=shadow,
        batching=batching,
        scale=scale,
        require_signature=require_signature,
    )
    _show(result, as_json, model=ref.partition("@")[0])


def undeploy(
    ref: Annotated[str, typer.Argument(help="NAME (every version) or NAME@VERSION.")],
    as_json: JsonOpt = False,
) -> None:
    """Stop serving a model or one version of it."""
    from seaway.errors import UsageError
    from seaway.serving.routes import undeploy as do_undeploy

    name, _, version = ref.partition("@")
    number: int | None = None
    if version:
        try:
            number = int(version)
        except ValueError:
            raise UsageError(
                f"{ref}: undeploy takes a version number, not {version!r}",
                hint="`seaway deployments` lists the deployed versions",
            ) from None
    result = do_undeploy(STATE.project(), name, number)
    _show(result, as_json, model=name)


def deployments(as_json: JsonOpt = False) -> None:
    """List the routing table: which versions serve, with which share of traffic."""
    from seaway.serving.routes import load_table

    _show(load_table(STATE.project()), as_json)


def _show(result: RoutingTable, as_json: bool, model: str | None = None) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    rows = [d for d in result.deployments if model is None or d.model == model]
    if not rows:
        line(
            "nothing deployed" + (f" for {model}" if model else "") + "; see `seaway deploy --help`"
        )
        return
    table(
        ["version", "weight", "shadow", "batching", "scale", "signature", "updated", "by"],
        [
            (
                d.ref,
                f"{d.weight:g}%",
                f"{d.shadow:g}%" if d.shadow else "",
                f"{d.batching.max_batch} / {d.batching.max_wait_us}µs" if d.batching else "",
                _scale(d.scale),
                "required" if d.require_signature else "",
                (d.updated_at or "")[:19].replace("T", " "),
                d.actor or "",
            )
            for d in rows
        ],
        title=f"routing table, revision {result.revision}",
    )


def _scale(scale: object) -> str:
    from seaway.serving.routes import ScaleSpec

    if not isinstance(scale, ScaleSpec):
        return ""
    if scale.min >= 1:
        return "kept loaded"
    return f"idle {scale.idle_timeout_s:g}s" if scale.idle_timeout_s else "to zero"
