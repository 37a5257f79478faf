"""Small presentation helpers: status labels (text + tone), durations, YAML highlighting."""
from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import YamlLexer

from portal import charts, health
from portal.topology import CLOUD_NAMES

register = template.Library()

_FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True)


@register.simple_tag
def status(h: health.Health, extra: str = ""):
    """A status label: a symbol and a word, coloured by tone (colour never says anything alone)."""
    if h is None:
        return ""
    return format_html('<span class="status status-{}{}"><span aria-hidden="true">{}</span> {}</span>',
                       h.tone, f" {extra}" if extra else "", h.symbol, h.label)


@register.simple_tag
def sparkline(points, rpo_seconds=None):
    """A tiny server-rendered SVG of the last hour's lag (portal/charts.py); its label says it in words."""
    line = charts.sparkline(points, rpo_seconds)
    if line is None:
        return ""
    rpo = format_html('<line class="sparkline-rpo" x1="0" y1="{}" x2="{}" y2="{}"/>', line.rpo_y, line.width, line.rpo_y) \
        if line.rpo_y is not None else ""
    return format_html('<svg class="sparkline{}" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">'
                       '<title>{}</title>{}<path class="sparkline-lag" d="{}"/></svg>',
                       " sparkline-above" if line.above else "", line.width, line.height, line.width, line.height,
                       line.label, line.label, rpo, line.path)


@register.filter
def claim_status(value: str):
    """A raw claim status (pending, ready…) as a Health, for the status tag."""
    return health.claims_health([_Status(value)]) if value else health.NONE


class _Status:
    def __init__(self, status):
        self.status = status


DELIVERY_TONES = {"done": ("ok", "✓"), "failed": ("bad", "✕"), "pending": ("warn", "◷"), "delivering": ("warn", "◷")}


@register.simple_tag
def delivery_state(state: str):
    tone, symbol = DELIVERY_TONES.get(state, ("idle", "–"))
    return format_html('<span class="status status-{}"><span aria-hidden="true">{}</span> {}</span>', tone, symbol, state)


@register.filter
def duration(seconds):
    return health.duration(seconds)


@register.filter
def cloud_name(cloud: str) -> str:
    return CLOUD_NAMES.get(cloud, cloud)


@register.filter
def highlight_yaml(text: str):
    """Read-only YAML with syntax colours (Pygments, served from our own CSS)."""
    return mark_safe(highlight(text or "", YamlLexer(), _FORMATTER))  # noqa: S308 - Pygments escapes its input


@register.filter
def pct(value) -> str:
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return "—"


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "") if hasattr(mapping, "get") else ""


@register.filter
def evacuation_state(state: str) -> health.Health:
    return health.evacuation_health(state)


@register.filter
def evacuation_item_state(state: str) -> health.Health:
    return health.evacuation_item_health(state)
