"""The portal's DR readiness: the cell page's panel (score, each check in words and symbol, a history of changes),
the lag chart (server-rendered SVG with the RPO line and failover markers, and a caption saying the same), and the
home list's badge and sparkline (no query per row), a failing readiness counting as attention."""
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cells.models import ReplicationClaim
from dr import lag, readiness
from dr.models import FailoverRun, ReadinessEvaluation, SandboxTrafficRecord
from dr.endpoints import endpoint_for

from .bulk import create_cell_environments
from .conftest import deliver_everything
from .test_home import rows

pytestmark = pytest.mark.django_db

URL = "/cells/payments/prod/"


@pytest.fixture
def ready(placed, settings):
    deliver_everything(settings)
    ReplicationClaim.objects.filter(cell_env=placed).update(lag_seconds=0.8, lag_measured_at=timezone.now())
    return placed


def section(html: str, ident: str) -> str:
    start = html.index(f'id="{ident}"')
    return html[start:html.index("</section>", start)]


def test_the_cell_page_shows_the_score_and_each_check_in_words_and_symbols(web, dev, ready):
    html = web(dev).get(URL).content.decode()
    assert "Not evaluated yet" in section(html, "readiness")
    SandboxTrafficRecord.objects.update_or_create(host="payments.prod.company.com",
                                                  defaults={"value": endpoint_for(ready, "secondary")})
    evaluation = readiness.evaluate_and_store(ready.pk)
    panel = section(web(dev).get(URL).content.decode(), "readiness")
    assert f'data-testid="readiness-score"><strong>{evaluation.score}</strong>' in panel
    assert '<p><span class="status status-bad"><span aria-hidden="true">✕</span> failing</span></p>' in panel  # the worst
    # check's state: symbol and word, not colour alone
    traffic = re.search(r'<tr data-check="traffic">.*?</tr>', panel, re.S).group(0)
    assert "Traffic record points at the writer" in traffic and "✕</span> failing" in traffic
    assert "the secondary side, not the writer" in traffic
    drill = re.search(r'<tr data-check="drill">.*?</tr>', panel, re.S).group(0)
    assert "◷</span> warning" in drill and "no successful drill yet" in drill
    assert re.search(r'<tr data-check="replication">.*?✓</span> ok', panel, re.S)


def test_the_cell_page_lists_the_readiness_changes_of_the_day(web, dev, ready):
    now = timezone.now()
    for minutes, score, state in ((50, 100, "ok"), (40, 100, "ok"), (30, 75, "failing"), (10, 97, "warning")):
        ReadinessEvaluation.objects.create(cell_env=ready, score=score, state=state, evaluated_at=now - timedelta(minutes=minutes),
                                           checks=[{"name": "replication", "state": state, "detail": ""}])
    history = re.search(r'data-testid="readiness-history">(.*?)</ol>', web(dev).get(URL).content.decode(), re.S).group(1)
    items = re.findall(r"<li>.*?</li>", history, re.S)
    assert len(items) == 3  # the unchanged evaluation at -40 min is not a change
    assert "97 warning" in items[0] and "Replication running, lag within the RPO (warning)" in items[0]
    assert "75 failing" in items[1] and "100 ok" in items[2]


def test_the_lag_chart_has_the_rpo_line_a_failover_marker_and_a_caption(web, dev, ops, ready):
    now = timezone.now()
    for minutes, value in ((300, 2.0), (200, 80.0), (100, 5.0), (5, 1.0)):
        lag.record(ready.pk, value, now - timedelta(minutes=minutes))
    run = FailoverRun.objects.create(cell_env=ready, type="switchover", state="succeeded", from_side="primary",
                                     to_side="secondary", rpo_target_seconds=60, rto_target_seconds=300)
    FailoverRun.objects.filter(pk=run.pk).update(traffic_switched_at=now - timedelta(minutes=150))
    drill = FailoverRun.objects.create(cell_env=ready, type="drill", simulates="failover", state="succeeded",
                                       from_side="secondary", to_side="primary", rpo_target_seconds=60, rto_target_seconds=300)
    html = web(dev).get(URL).content.decode()
    chart = section(html, "lag")
    svg = re.search(r"<svg class=\"chart\".*?</svg>", chart, re.S).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="lag-chart-title lag-chart-caption"' in svg
    assert 'data-testid="rpo-line"' in svg and ">RPO 60 s</text>" in svg
    assert len(re.findall(r'<path class="lag" d="M', svg)) >= 1
    assert f'<g class="marker" data-run="{run.pk}"><title>switchover #{run.pk} (traffic switched at' in svg
    assert f'data-run="{drill.pk}"' not in svg  # a drill moves nothing: no marker
    caption = re.search(r'<figcaption id="lag-chart-caption"[^>]*>(.*?)</figcaption>', chart, re.S).group(1)
    assert re.search(r"max 80 s, last 1 s; RPO 60 s, above it in 1 of 4 intervals of \d+ min\.", caption)
    assert f"Failovers: switchover #{run.pk} (traffic switched at" in caption
    assert "<script" not in chart and "cdn" not in chart.lower()


def test_the_lag_chart_says_when_there_are_no_samples(web, dev, ready):
    chart = section(web(dev).get(URL).content.decode(), "lag")
    assert "no samples yet" in chart and "Replication lag over the last 24 h: no samples (RPO 60 s)." in chart


def test_the_home_list_shows_the_readiness_and_a_sparkline_in_existing_columns(web, dev, ready):
    lag.record(ready.pk, 2.0, timezone.now() - timedelta(minutes=20))
    lag.record(ready.pk, 4.0, timezone.now())
    readiness.evaluate_and_store(ready.pk)
    html = web(dev).get("/").content.decode()
    assert html.count("<th scope=\"col\">") == 8  # no new column: the 1024 px budget
    cell = re.search(r'<td data-label="Cell">.*?</td>', html, re.S).group(0)
    latest = ReadinessEvaluation.objects.get()
    assert 'data-testid="readiness"' in cell and f"{latest.score} {latest.state}" in cell
    lag_cell = re.search(r'<td data-label="Lag vs RPO">.*?</td>', html, re.S).group(0)
    spark = re.search(r'<svg class="sparkline[^"]*" width="80" height="16"[^>]*role="img" aria-label="([^"]+)"', lag_cell)
    assert spark and spark.group(1) == "lag, last hour: max 4 s of RPO 60 s"


def test_a_failing_readiness_needs_attention_and_comes_first(web, ops, ready, catalog):
    assert rows(web(ops).get("/").content.decode()) == ["catalog/prod", "payments/prod"]
    ReadinessEvaluation.objects.create(cell_env=ready, score=40, state="failing", checks=[], evaluated_at=timezone.now())
    html = web(ops).get("/").content.decode()
    assert rows(html) == ["payments/prod", "catalog/prod"] and "1 needs attention" in html
    assert rows(web(ops).get("/?show=attention").content.decode()) == ["payments/prod"]
    ReadinessEvaluation.objects.create(cell_env=ready, score=100, state="ok", checks=[], evaluated_at=timezone.now())
    assert rows(web(ops).get("/?show=attention").content.decode()) == []  # only the latest counts


def test_sparklines_and_readiness_cost_no_query_per_row(web, ops, test_policy):
    envs = create_cell_environments(300)
    client = web(ops)
    client.get("/")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/").status_code == 200
        return len(ctx.captured_queries)

    before = count()
    now = timezone.now()
    for ce in envs:
        for minutes in (50, 30, 10):
            lag.record(ce.pk, 1.0 + minutes, now - timedelta(minutes=minutes))
        ReadinessEvaluation.objects.create(cell_env=ce, score=90, state="warning", checks=[], evaluated_at=now)
    html = client.get("/").content.decode()
    assert html.count('<svg class="sparkline') == 100 and html.count('data-testid="readiness"') == 100
    assert count() == before
