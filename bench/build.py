"""Benchmark the build of the seed issue: cold process, warm build, personalisation, size.

Run from the project root:  python bench/build.py [--runs 50] [--recipients 10000]

Targets (issue 2): warm build <= 30 ms, personalisation <= 0.05 ms per recipient,
HTML <= 60 KB (Gmail clips at 102 KB). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cohesion_mail.config import load_settings  # noqa: E402
from cohesion_mail.render.pipeline import build_issue  # noqa: E402
from cohesion_mail.render.sample import sample_values  # noqa: E402
from cohesion_mail.tracking.tokens import Links, Signer  # noqa: E402

SEED = ROOT / "campaigns" / "2020-02-cohes3ion"
COLD = (
    "import time; t = time.perf_counter(); "
    "from pathlib import Path; "
    "from cohesion_mail.config import load_settings; "
    "from cohesion_mail.render.pipeline import build_issue; "
    "build_issue(Path({seed!r}), load_settings(start=Path({root!r}))); "
    "print(time.perf_counter() - t)"
)


def row(name: str, value: float, target: float, unit: str) -> str:
    ratio = value / target
    verdict = "ok" if value <= target else "OVER"
    return (
        f"{name:<34} {value:>10.4f} {unit:<3} target <= {target:g} {unit:<3} "
        f"ratio {ratio:5.2f}  {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="warm builds to time")
    parser.add_argument("--recipients", type=int, default=10_000, help="personalisations to time")
    parser.add_argument("--cold", type=int, default=3, help="cold processes to start")
    args = parser.parse_args()

    settings = load_settings(start=ROOT)

    cold_import_build = []
    cold_wall = []
    for _ in range(args.cold):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", COLD.format(seed=str(SEED), root=str(ROOT))],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        cold_wall.append(time.perf_counter() - start)
        cold_import_build.append(float(out.stdout.strip()))

    build_issue(SEED, settings)  # warm the caches (templates, parsers)
    warm = []
    for _ in range(args.runs):
        start = time.perf_counter()
        issue = build_issue(SEED, settings)
        warm.append(time.perf_counter() - start)

    values = sample_values(issue, settings)
    per_recipient = []
    for i in range(args.recipients):
        v = dict(values, email=f"r{i}@example.org")
        start = time.perf_counter()
        issue.personalise(v)
        per_recipient.append(time.perf_counter() - start)

    links = Links(settings.base_url, Signer(b"bench-secret"))
    with_clicks = []
    for i in range(min(args.recipients, 2000)):
        v = dict(values, email=f"r{i}@example.org")
        start = time.perf_counter()
        issue.personalise(v, click=lambda url, i=i: links.click(1, i, url))
        with_clicks.append(time.perf_counter() - start)

    html_kb = len(issue.html.encode("utf-8")) / 1024
    personalised_kb = len(issue.personalise(values)[0].encode("utf-8")) / 1024
    print(
        f"seed issue: {SEED.relative_to(ROOT)}  ({len(issue.links)} trackable links, "
        f"fields: {', '.join(sorted(issue.fields))})"
    )
    cold_ms = statistics.median(cold_wall) * 1000
    inside_ms = statistics.median(cold_import_build) * 1000
    print(
        f"{'cold process (import + build), wall':<34} {cold_ms:>10.1f} ms"
        f"   (import + build inside: {inside_ms:.1f} ms)"
    )
    print(row(f"warm build, median of {args.runs}", statistics.median(warm) * 1000, 30, "ms"))
    print(
        row(
            f"personalise, median of {args.recipients}",
            statistics.median(per_recipient) * 1000,
            0.05,
            "ms",
        )
    )
    clicks_ms = statistics.median(with_clicks) * 1000
    print(
        f"{'personalise + signed click links':<34} {clicks_ms:>10.4f} ms"
        "   (one HMAC per distinct link; informational)"
    )
    print(row("HTML size (compiled)", html_kb, 60, "KB"))
    print(
        f"{'HTML size (personalised sample)':<34} {personalised_kb:>10.1f} KB"
        "   (Gmail clips at 102 KB)"
    )


if __name__ == "__main__":
    main()
