"""Server-rendered SVG charts (no JavaScript, no CDN): the cell page's replication lag chart and the home list's
sparklines. Pure geometry over values already loaded; templates/partials/lag-chart.html draws the chart, the
`sparkline` template tag the sparkline. Every chart has a text alternative that says what it shows."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .health import duration

CHART_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Marker:
    x: float
    label: str  # "switchover #12 at 14:05 UTC"
    run_id: int


@dataclass
class LagChart:
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    paths: list[str] = field(default_factory=list)  # SVG path data, one per run of samples without a gap
    rpo_y: float | None = None
    rpo_label: str = ""
    markers: list[Marker] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    caption: str = ""
    empty: bool = True

    @property
    def bottom(self) -> int:
        return self.top + self.plot_height

    @property
    def right(self) -> int:
        return self.left + self.plot_width

    @property
    def center_x(self) -> int:
        return self.left + self.plot_width // 2

    @property
    def center_y(self) -> int:
        return self.top + self.plot_height // 2


def _buckets(samples, start: datetime, seconds: float, count: int) -> list[float | None]:
    """The max lag of each of `count` buckets of `seconds` from `start` (None: no sample)."""
    out: list[float | None] = [None] * count
    for s in samples:
        i = int((s.at - start).total_seconds() // seconds)
        if 0 <= i < count:
            out[i] = s.lag_seconds if out[i] is None else max(out[i], s.lag_seconds)
    return out


def nice_ticks(top: float, most: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 x 10^n seconds) up to `top`, at most `most` + 1 of them."""
    raw = top / most
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(top // step) + 1)]


def lag_chart(samples, rpo_seconds: int | None, runs, now: datetime, window: timedelta = CHART_WINDOW,
              width: int = 720, height: int = 200) -> LagChart:
    """The lag over `window` up to `now` (max per bucket of about 3 px), the RPO as a line, and a marker for each
    run that moved traffic or tried to (`runs`: FailoverRuns with traffic_switched_at / requested_at)."""
    left, top, right_pad, bottom_pad = 48, 12, 12, 24
    chart = LagChart(width, height, left, top, width - left - right_pad, height - top - bottom_pad)
    start = now - window
    count = max(1, chart.plot_width // 3)
    step = window.total_seconds() / count
    values = _buckets(samples, start, step, count)
    seen = [v for v in values if v is not None]
    peak = max(seen, default=0.0)
    top_value = max(peak, rpo_seconds or 0, 1.0) * 1.15
    x = lambda at: left + (at - start).total_seconds() / window.total_seconds() * chart.plot_width  # noqa: E731
    y = lambda v: top + chart.plot_height * (1 - v / top_value)  # noqa: E731

    path: list[str] = []
    for i, v in enumerate(values):
        if v is None:
            if path:
                chart.paths.append(" ".join(path))
            path = []
            continue
        px = left + (i + 0.5) * chart.plot_width / count
        path.append(f"{'M' if not path else 'L'}{px:.1f},{y(v):.1f}")
    if path:
        chart.paths.append(" ".join(path))
    chart.empty = not seen
    if rpo_seconds is not None:
        chart.rpo_y = round(y(rpo_seconds), 1)
        chart.rpo_label = f"RPO {duration(rpo_seconds)}"
    chart.y_ticks = [(round(y(v), 1), duration(v)) for v in nice_ticks(top_value)]
    hours = int(window.total_seconds() // 3600)
    every = max(1, hours // 6)
    first_hour = (start + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    chart.x_ticks = [(round(x(first_hour + timedelta(hours=h)), 1), f"{(first_hour + timedelta(hours=h)):%H:%M}")
                     for h in range(0, hours, every) if first_hour + timedelta(hours=h) <= now]

    for run in runs:
        at = run.traffic_switched_at or run.requested_at
        if at is None or not (start <= at <= now):
            continue
        what = "traffic switched" if run.traffic_switched_at else "requested"
        chart.markers.append(Marker(round(x(at), 1), f"{run.type} #{run.pk} ({what} at {at:%H:%M} UTC)", run.pk))

    chart.caption = lag_caption(samples, values, rpo_seconds, chart.markers, window, step)
    return chart


def lag_caption(samples, values, rpo_seconds, markers, window: timedelta, step: float) -> str:
    """The chart in words: max and last lag against the RPO, time above it, the failovers."""
    span = f"the last {duration(window.total_seconds())}"
    seen = [v for v in values if v is not None]
    rpo = f"RPO {duration(rpo_seconds)}" if rpo_seconds is not None else "RPO unknown"
    if not seen:
        text = f"Replication lag over {span}: no samples ({rpo})."
    else:
        last = max(samples, key=lambda s: s.at).lag_seconds
        text = f"Replication lag over {span}: max {duration(max(seen))}, last {duration(last)}; {rpo}"
        if rpo_seconds is not None:
            above = sum(1 for v in seen if v > rpo_seconds)
            text += (f", above it in {above} of {len(seen)} intervals of {duration(step)}" if above else ", never above it")
        text += "."
    if markers:
        text += " Failovers: " + "; ".join(m.label for m in markers) + "."
    return text


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    path: str
    rpo_y: float | None
    label: str
    above: bool


def sparkline(points: list[float | None] | None, rpo_seconds: int | None, width: int = 80, height: int = 16) -> Sparkline | None:
    """A tiny line of `points` (oldest first, None: no sample), scaled so that the top is the RPO (or the peak if
    higher): a flat line at the bottom is a lag far below the RPO."""
    seen = [p for p in points or [] if p is not None]
    if not seen:
        return None
    peak = max(seen)
    top = max(peak, rpo_seconds or 0, 0.001)
    n = len(points)
    pad = 1.5
    y = lambda v: pad + (height - 2 * pad) * (1 - v / top)  # noqa: E731
    parts, pen_up = [], True
    for i, v in enumerate(points):
        if v is None:
            pen_up = True
            continue
        px = pad + (width - 2 * pad) * (i / max(1, n - 1))
        parts.append(f"{'M' if pen_up else 'L'}{px:.1f},{y(v):.1f}")
        pen_up = False
    if len(seen) == 1:  # a single sample: a short dash
        parts.append("h2")
    above = rpo_seconds is not None and peak > rpo_seconds
    label = (f"lag, last hour: max {duration(peak)}" + (f" of RPO {duration(rpo_seconds)}" if rpo_seconds else "")
             + (" (above the RPO)" if above else ""))
    return Sparkline(width, height, " ".join(parts), round(y(rpo_seconds), 1) if rpo_seconds is not None else None,
                     label, above)
