"""The monitor's loop: score new windows, finish and fire triggers, send alerts.

`monitor_tick(project)` does one pass for every model under `monitoring:` in seaway.yaml:

1. score the gateway's newly logged requests into drift windows (`seaway.monitor.drift`);
2. score newly posted feedback labels into quality windows (`seaway.monitor.quality`);
3. finish triggers whose rollout ended (`update_triggers`);
4. fire a trigger whose windows breached (`check_triggers`), which may run a pipeline.

`run_monitor(project)` repeats the tick every `interval_s` (`seaway monitor run`) with an
`AlertWorker` sending webhook alerts beside it. One model's failure is logged and the loop
goes on with the others: a broken monitor must never take serving down, and the next tick
retries. Each step keeps its own cursor in the store, so a restarted monitor resumes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seaway.monitor.triggers import Trigger, check_triggers, update_triggers
from seaway.monitor.windows import MonitorWindow

if TYPE_CHECKING:
    from seaway.project import Project

log = logging.getLogger("seaway.monitor.loop")

__all__ = ["TickResult", "can_send_alerts", "monitor_tick", "run_monitor"]


@dataclass
class TickResult:
    drift: list[MonitorWindow] = field(default_factory=list)
    quality: list[MonitorWindow] = field(default_factory=list)
    fired: list[Trigger] = field(default_factory=list)
    finished: list[Trigger] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drift": [w.to_dict() for w in self.drift],
            "quality": [w.to_dict() for w in self.quality],
            "fired": [t.to_dict() for t in self.fired],
            "finished": [t.to_dict() for t in self.finished],
            "errors": self.errors,
        }


def monitor_tick(
    project: Project,
    *,
    models: Iterable[str] | None = None,
    now: datetime | None = None,
    fire: bool = True,
    on_hop: Callable[[str, dict[str, Any]], None] | None = None,
) -> TickResult:
    """One pass of the monitor over `models` (default: every model under `monitoring:`)."""
    from seaway.monitor.drift import score_drift
    from seaway.monitor.quality import score_quality

    result = TickResult()
    names = list(models) if models is not None else sorted(project.spec.monitoring)
    for model in names:
        try:
            result.drift += score_drift(project, model, now=now)
            result.quality += score_quality(project, model, now=now)
            result.finished += update_triggers(project, model)
            if fire:
                fired = check_triggers(project, model, now=now, on_hop=on_hop)
                if fired is not None:
                    result.fired.append(fired)
        except Exception as exc:  # one model's trouble must not stop the others
            log.exception("monitor: %s", model)
            result.errors.append(f"{model}: {type(exc).__name__}: {exc}")
    return result


def run_monitor(
    project: Project,
    *,
    interval_s: float = 10.0,
    once: bool = False,
    alerts: bool = True,
    fire: bool = True,
    stop: threading.Event | None = None,
    on_tick: Callable[[TickResult], None] | None = None,
) -> None:
    """Tick every `interval_s` until `stop` is set (or once). With `once`, the alerts the
    pass produced are sent before returning (a first attempt each; retries are left to the
    next run)."""
    stop = stop or threading.Event()
    worker = None
    if alerts and not can_send_alerts(project):
        alerts = False
    if alerts:
        from seaway.monitor.alerts import AlertWorker

        worker = AlertWorker(project)
        if not once:
            worker.start()
    try:
        while True:
            result = monitor_tick(project, fire=fire)
            if on_tick is not None:
                on_tick(result)
            if once or stop.wait(interval_s):
                break
        if worker is not None and once:
            worker.tick()
    finally:
        if worker is not None:
            worker.stop()


def can_send_alerts(project: Project) -> bool:
    """Whether webhook alerts can go out: without httpx a project that configures alerts is
    told once how to get them, instead of a failed delivery pass every second."""
    import importlib.util

    if importlib.util.find_spec("httpx") is not None:
        return True
    if any(m.alerts for m in project.spec.monitoring.values()):
        log.warning("alerts are configured but httpx is missing: pip install 'seaway[monitor]'")
    return False
