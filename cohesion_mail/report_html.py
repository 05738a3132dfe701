"""The ``report --html`` page: one self-contained file (inline CSS, hand-drawn inline SVG).

No script, no web font, no external file: the page opens from an email attachment or a shared
drive years later and looks the same. Charts carry ``role="img"``, a title and a description,
and each has its figures in a table beneath it for screen readers and for copying.
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from .config import Theme
from .errors import CohesionMailError
from .report import Bucket, CampaignReport, LinkClicks

TOP_LINKS = 10


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _num(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")  # narrow no-break space: 12 345


def _when(iso: str | None, with_time: bool = True) -> str:
    if not iso:
        return "–"
    t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return t.strftime("%-d %b %Y, %H:%M UTC" if with_time else "%-d %b %Y")


def _nice_max(value: int) -> tuple[int, int]:
    """A round axis maximum above ``value`` and its tick step (1, 2 or 5 × 10^k)."""
    if value <= 0:
        return 1, 1
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    return step * math.ceil(value / step), step


def _short_url(url: str, limit: int = 58) -> str:
    parts = urlsplit(url)
    text = (parts.netloc + parts.path).removeprefix("www.").rstrip("/") or url
    if parts.query:
        text += "?" + parts.query
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _timeline_svg(buckets: list[Bucket], bucket: str) -> str:
    width, height = 1040, 300
    left, right, top, bottom = 52, 16, 16, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(max(b.opens, b.clicks) for b in buckets)
    y_max, step = _nice_max(peak)
    n = len(buckets)
    slot = plot_w / n
    bar = max(1.0, min(28.0, slot * 0.7))

    def y(v: float) -> float:
        return top + plot_h - v / y_max * plot_h

    out = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="tl-t tl-d" '
        'class="chart" xmlns="http://www.w3.org/2000/svg">',
        '<title id="tl-t">Opens and clicks over time</title>',
        f'<desc id="tl-d">Per {bucket}: opens as bars (human and machine stacked), clicks as a '
        "line. The table below has the figures.</desc>",
    ]
    for tick in range(0, y_max + 1, step):
        ty = y(tick)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" '
                   'class="grid"/>')
        out.append(f'<text x="{left - 8}" y="{ty + 4:.1f}" class="axis" text-anchor="end">'
                   f"{tick}</text>")
    label_every = max(1, math.ceil(n / 8))
    fmt = "%-d %b %H:%M" if bucket == "hour" else "%-d %b"
    points = []
    for i, b in enumerate(buckets):
        cx = left + slot * i + slot / 2
        x = cx - bar / 2
        human_top, all_top = y(b.human_opens), y(b.opens)
        when = datetime.fromisoformat(b.start.replace("Z", "+00:00"))
        tip = (f"{when.strftime(fmt)}: {b.opens} opens ({b.human_opens} human), "
               f"{b.clicks} clicks ({b.human_clicks} human)")
        out.append(f"<g><title>{escape(tip)}</title>")
        if b.opens > b.human_opens:
            out.append(f'<rect x="{x:.1f}" y="{all_top:.1f}" width="{bar:.1f}" '
                       f'height="{human_top - all_top:.1f}" class="machine"/>')
        if b.human_opens:
            out.append(f'<rect x="{x:.1f}" y="{human_top:.1f}" width="{bar:.1f}" '
                       f'height="{y(0) - human_top:.1f}" class="human"/>')
        out.append("</g>")
        points.append((cx, y(b.clicks)))
        if i % label_every == 0:
            out.append(f'<text x="{cx:.1f}" y="{height - bottom + 20}" class="axis" '
                       f'text-anchor="middle">{escape(when.strftime(fmt))}</text>')
    if len(points) > 1:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        out.append(f'<polyline points="{path}" class="clicks"/>')
    for (px, py), b in zip(points, buckets, strict=True):
        if b.clicks:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" class="dot">'
                       f"<title>{b.clicks} clicks</title></circle>")
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
               'class="base"/>')
    out.append("</svg>")
    return "".join(out)


def _links_svg(links: list[LinkClicks]) -> str:
    row, label_w, width = 34, 420, 1040
    bar_w = width - label_w - 80
    height = row * len(links) + 8
    peak = max(link.unique for link in links) or 1
    out = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="ln-t ln-d" '
        'class="chart" xmlns="http://www.w3.org/2000/svg">',
        '<title id="ln-t">Top links</title>',
        '<desc id="ln-d">Unique clicks per link, human clicks darker. The table below has the '
        "figures.</desc>",
    ]
    for i, link in enumerate(links):
        top = 4 + i * row
        full = link.unique / peak * bar_w
        human = link.human_unique / peak * bar_w
        out.append(f"<g><title>{escape(link.url)}: {link.unique} unique "
                   f"({link.human_unique} human), {link.total} total</title>")
        out.append(f'<text x="{label_w - 12}" y="{top + 21}" class="label" text-anchor="end">'
                   f"{escape(_short_url(link.url))}</text>")
        out.append(f'<rect x="{label_w}" y="{top + 6}" width="{bar_w}" height="20" rx="3" '
                   'class="track"/>')
        if full:
            out.append(f'<rect x="{label_w}" y="{top + 6}" width="{full:.1f}" height="20" rx="3" '
                       'class="machine"/>')
        if human:
            out.append(f'<rect x="{label_w}" y="{top + 6}" width="{human:.1f}" height="20" '
                       'rx="3" class="human"/>')
        out.append(f'<text x="{label_w + full + 8:.1f}" y="{top + 21}" class="value">'
                   f"{link.unique}</text></g>")
    out.append("</svg>")
    return "".join(out)


def _status_bar(report: CampaignReport) -> str:
    parts = [("Sent", report.sent, "s-sent"), ("Failed", report.failed, "s-failed"),
             ("In doubt", report.in_doubt, "s-doubt"), ("Deferred", report.deferred, "s-deferred"),
             ("Pending", report.pending, "s-pending")]
    total = sum(n for _, n, _ in parts)
    if not total:
        return '<p class="empty">No deliveries yet.</p>'
    segs, legend = [], []
    for label, n, cls in parts:
        if n:
            segs.append(f'<span class="{cls}" style="flex:{n}" title="{label}: {n}"></span>')
        legend.append(f'<li><i class="{cls}"></i>{label} <b>{_num(n)}</b></li>')
    return (f'<div class="status" role="img" aria-label="Delivery states: '
            f'{", ".join(f"{label} {n}" for label, n, _ in parts)}">{"".join(segs)}</div>'
            f'<ul class="legend">{"".join(legend)}</ul>')


def _card(label: str, value: str, sub: str = "", accent: bool = False) -> str:
    cls = "card accent" if accent else "card"
    return (f'<div class="{cls}"><div class="k">{escape(label)}</div>'
            f'<div class="v">{escape(value)}</div><div class="sub">{escape(sub)}</div></div>')


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:%(background)s;color:%(text)s;font:15px/1.5 %(font)s}
.wrap{max-width:1120px;margin:0 auto;padding:32px 28px 48px}
header{background:%(primary)s;color:#fff;padding:30px 0 62px}
header .wrap{padding-top:0;padding-bottom:0}
header .eyebrow{margin:0;opacity:.85;font-size:13px;letter-spacing:.08em;text-transform:uppercase}
header h1{margin:6px 0 6px;font:700 28px/1.2 %(heading)s}
header p.meta{margin:0;opacity:.9;font-size:14px}
h2{font:700 18px/1.3 %(heading)s;margin:0 0 14px;color:%(primary)s}
section{background:%(surface)s;border-radius:10px;padding:22px 24px;margin:0 0 22px;
  box-shadow:0 1px 2px rgba(16,24,40,.06),0 1px 3px rgba(16,24,40,.08)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:14px;
  margin:-34px 0 22px}
.card{background:%(surface)s;border-radius:10px;padding:16px 18px;
  box-shadow:0 1px 2px rgba(16,24,40,.06),0 4px 12px rgba(16,24,40,.08);
  border-top:4px solid %(primary)s}
.card.accent{border-top-color:%(accent)s}
.card .k{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:%(muted)s}
.card .v{font-size:30px;font-weight:700;line-height:1.2;margin-top:4px}
.card .sub{font-size:13px;color:%(muted)s;min-height:1.2em}
.status{display:flex;height:18px;border-radius:9px;overflow:hidden;background:#e6e8ec}
.legend{list-style:none;padding:0;margin:12px 0 0;display:flex;flex-wrap:wrap;gap:6px 22px;
  font-size:14px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:7px;
  vertical-align:-1px}
.s-sent{background:%(primary)s}.s-failed{background:#c62828}.s-doubt{background:#ef9a00}
.s-deferred{background:#8e7cc3}.s-pending{background:#b0b7c3}
.chart{width:100%%;height:auto;display:block}
.chart .grid{stroke:#e6e8ec;stroke-width:1}
.chart .base{stroke:#9aa3af;stroke-width:1}
.chart .axis{fill:%(muted)s;font:12px %(font)s}
.chart .label{fill:%(text)s;font:13px %(font)s}
.chart .value{fill:%(text)s;font:700 13px %(font)s}
.chart .human{fill:%(primary)s}
.chart .machine{fill:%(primary)s;opacity:.3}
.chart .track{fill:#f0f2f5}
.chart .clicks{fill:none;stroke:%(accent)s;stroke-width:2.5;stroke-linejoin:round}
.chart .dot{fill:%(accent)s;stroke:#fff;stroke-width:1.5}
.key{display:flex;gap:20px;font-size:13px;color:%(muted)s;margin:4px 0 10px}
.key i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;
  vertical-align:-1px}
.key .kh{background:%(primary)s}.key .km{background:%(primary)s;opacity:.3}
.key .kc{background:%(accent)s;height:3px;vertical-align:3px;width:16px}
table{border-collapse:collapse;width:100%%;font-size:14px}
th,td{padding:7px 10px;border-bottom:1px solid #eceef2;text-align:right}
th:first-child,td:first-child{text-align:left}
th{color:%(muted)s;font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
td.url{max-width:520px;overflow-wrap:anywhere}
details{margin-top:12px;font-size:14px}
summary{cursor:pointer;color:%(primary)s}
.empty{color:%(muted)s;margin:0}
footer{color:%(muted)s;font-size:13px}
"""


def report_html(report: CampaignReport, theme: Theme, list_name: str = "") -> str:
    """The whole report page as one string."""
    css = _CSS % {
        "background": theme.background, "text": theme.text, "font": theme.font_family,
        "heading": theme.heading_font_family, "primary": theme.primary, "accent": theme.accent,
        "surface": theme.surface, "muted": theme.muted,
    }
    o, c, r = report.opens, report.clicks, report.rates
    cards = "".join([
        _card("Sent", _num(report.sent), f"of {_num(report.recipients)} recipients"),
        _card("Delivered", _num(report.delivered), _pct(r["delivered"]) + " of sent"
              if report.delivered else "no provider reports"),
        _card("Opened", _num(o.human_unique), f"{_pct(o.human_unique_rate)} human · "
              f"{_num(o.unique)} incl. machine", accent=True),
        _card("Clicked", _num(c.human_unique), f"{_pct(c.human_unique_rate)} human · "
              f"{_num(c.total)} clicks", accent=True),
        _card("Unsubscribed", _num(report.unsubscribes), _pct(r["unsubscribe"])),
        _card("Bounced · complaints", f"{_num(report.bounces)} · {_num(report.complaints)}",
              f"{_pct(r['bounce'])} · {_pct(r['complaint'])}"),
    ])
    if report.timeline:
        timeline = (
            '<div class="key" aria-hidden="true"><span><i class="kh"></i>Human opens</span>'
            '<span><i class="km"></i>Machine opens</span><span><i class="kc"></i>Clicks</span>'
            "</div>" + _timeline_svg(report.timeline, report.bucket)
            + "<details><summary>Figures per " + report.bucket + "</summary><table><thead><tr>"
            "<th>Start (UTC)</th><th>Opens</th><th>Human opens</th><th>Clicks</th>"
            "<th>Human clicks</th></tr></thead><tbody>"
            + "".join(f"<tr><td>{escape(b.start)}</td><td>{b.opens}</td><td>{b.human_opens}</td>"
                      f"<td>{b.clicks}</td><td>{b.human_clicks}</td></tr>"
                      for b in report.timeline)
            + "</tbody></table></details>"
        )
    else:
        timeline = '<p class="empty">No opens or clicks recorded yet.</p>'
    top = report.links[:TOP_LINKS]
    links = (
        _links_svg(top) + "<table><thead><tr><th>Link</th><th>Unique</th><th>Human unique</th>"
        "<th>Total</th></tr></thead><tbody>"
        + "".join(f'<tr><td class="url">{escape(link.url)}</td><td>{link.unique}</td>'
                  f"<td>{link.human_unique}</td><td>{link.total}</td></tr>"
                  for link in report.links)
        + "</tbody></table>"
        if top else '<p class="empty">No clicks recorded yet.</p>'
    )
    na = ""  # a count with no rate
    rows: list[tuple[str, int, float | None | str]] = [
        ("Recipients", report.recipients, na), ("Sent", report.sent, na),
        ("Failed", report.failed, na), ("In doubt", report.in_doubt, na),
        ("Deferred", report.deferred, na), ("Pending", report.pending, na),
        ("Delivered (provider reports)", report.delivered, r["delivered"]),
        ("Opens, unique", o.unique, o.unique_rate),
        ("Opens, unique human", o.human_unique, o.human_unique_rate),
        ("Opens, total", o.total, na),
        ("Opens, machine (proxies, scanners)", o.machine_total, na),
        ("Clicks, unique", c.unique, c.unique_rate),
        ("Clicks, unique human", c.human_unique, c.human_unique_rate),
        ("Clicks, total", c.total, na), ("Web version views", report.webviews, na),
        ("Unsubscribes", report.unsubscribes, r["unsubscribe"]),
        ("Re-subscribes", report.resubscribes, na),
        ("Bounces", report.bounces, r["bounce"]), ("Complaints", report.complaints, r["complaint"]),
    ]
    figures = "".join(
        f"<tr><td>{escape(label)}</td><td>{_num(n)}</td>"
        f"<td>{rate if isinstance(rate, str) else _pct(rate)}</td></tr>"
        for label, n, rate in rows
    )
    languages = ""
    if report.by_language and [f.language for f in report.by_language] != [""]:
        languages = (
            '<section aria-labelledby="h-lang"><h2 id="h-lang">By language</h2>'
            "<table><thead><tr><th>Language</th><th>Sent</th><th>Human opens</th>"
            "<th>Rate</th><th>Opens (all)</th><th>Human clicks</th><th>Rate</th>"
            "<th>Clicks (all)</th><th>Unsubscribes</th></tr></thead><tbody>"
            + "".join(
                f"<tr><td>{escape(f.language or '(none)')}</td><td>{_num(f.sent)}</td>"
                f"<td>{_num(f.opens_human_unique)}</td><td>{_pct(f.human_open_rate)}</td>"
                f"<td>{_num(f.opens_unique)}</td><td>{_num(f.clicks_human_unique)}</td>"
                f"<td>{_pct(f.human_click_rate)}</td><td>{_num(f.clicks_unique)}</td>"
                f"<td>{_num(f.unsubscribes)}</td></tr>"
                for f in report.by_language
            )
            + "</tbody></table></section>"
        )
    proofs = (f"{report.proofs} proof deliveries are included."
              if report.include_proofs else
              f"{report.proofs} proof deliveries are left out (report --proofs counts them).")
    title = f"{report.subject or report.slug}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Report · {escape(title)}</title>
<style>{css}</style></head>
<body>
<header><div class="wrap"><p class="eyebrow">{escape(list_name or "Campaign")} · campaign report</p>
<h1>{escape(title)}</h1>
<p class="meta">{escape(report.slug)} · sent {escape(_when(report.first_sent_at))}
{" to " + escape(_when(report.last_sent_at)) if report.last_sent_at != report.first_sent_at
 else ""}</p></div></header>
<main class="wrap">
<div class="cards">{cards}</div>
<section aria-labelledby="h-deliv"><h2 id="h-deliv">Deliveries</h2>{_status_bar(report)}</section>
<section aria-labelledby="h-time"><h2 id="h-time">Opens and clicks over time</h2>
{timeline}</section>
<section aria-labelledby="h-links"><h2 id="h-links">Top links</h2>
{links}</section>
{languages}
<section aria-labelledby="h-fig"><h2 id="h-fig">All figures</h2>
<table><thead><tr><th>Figure</th><th>Count</th><th>Rate of sent</th></tr></thead>
<tbody>{figures}</tbody></table></section>
<footer><p>Unique counts are recipients; totals count every event. Human figures leave out
opens and clicks made by privacy proxies and security scanners (Apple Mail Privacy Protection,
Mimecast, Proofpoint, Safe Links, bots) or within seconds of sending. {escape(proofs)}
Generated {escape(_when(report.generated_at))}.</p></footer>
</main></body></html>
"""


def write_report_html(report: CampaignReport, path: Path, theme: Theme, list_name: str) -> None:
    """Write ``report_html`` to ``path`` (UTF-8)."""
    try:
        Path(path).write_text(report_html(report, theme, list_name), encoding="utf-8")
    except OSError as exc:
        raise CohesionMailError(
            f"{path}: cannot write the HTML report: {exc.strerror or exc}",
            hint="choose a writable path for --html",
        ) from exc
