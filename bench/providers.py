"""Benchmark the API transports: requests per 10,000 recipients and messages per second.

Run from the project root:  python bench/providers.py [--recipients 10000] [--providers postmark]

Each provider's transport sends the seed issue (built by the render pipeline, personalised
per recipient with signed links, as the send loop does) to synthetic recipients through the
local provider emulator (tests/provider_emulator.py, in its own process, on 127.0.0.1), sliced
by ``max_batch`` as the send loop slices. The timed part is ``transport.send`` only: building
the payloads (for SendGrid/Mailgun, proving the shared body), the HTTP round trip, and the
emulator reading the request on the other core. Personalisation is timed by bench/build.py.
Prints figures; asserts nothing (target, issue 6: about 20 batch requests per 10,000 Postmark
recipients).
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from provider_emulator import MAILGUN_DOMAIN, MAILGUN_KEY, POSTMARK_TOKEN, SENDGRID_KEY  # noqa: E402

from cohesion_mail.config import load_settings  # noqa: E402
from cohesion_mail.render.pipeline import build_issue  # noqa: E402
from cohesion_mail.sending.compose import Composer  # noqa: E402
from cohesion_mail.tracking.tokens import Links, Signer  # noqa: E402
from cohesion_mail.transports import open_transport  # noqa: E402
from cohesion_mail.transports.base import Status  # noqa: E402

SEED = ROOT / "campaigns" / "2020-02-cohes3ion"
FIRST = ["Ann", "Bram", "Chiara", "Dóra", "Eoin", "Fatima", "Gosia", "Hugo", "Ines", "Jonas"]
LAST = ["Jansen", "O'Neill", "Rossi", "Kovács", "Murphy", "García", "Nowak", "Müller"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000, help="recipients per provider")
    parser.add_argument(
        "--providers", nargs="*", default=["postmark", "sendgrid", "mailgun"], help="which ones"
    )
    args = parser.parse_args()

    settings = load_settings(start=ROOT)
    issue = build_issue(SEED, settings)
    links = Links(settings.base_url, Signer(b"bench-secret"))
    composer = Composer(issue, settings, links, 1, click_tracking=True, open_tracking=True)

    def message(i: int):  # type: ignore[no-untyped-def]
        first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
        return composer.message(
            i,
            f"reader{i}@example.org",
            f"{first} {last}",
            {"first_name": first, "last_name": last, "organisation": f"Region {i % 50}"},
        )

    sample = message(1)
    print(
        f"seed issue: {len(sample.html) / 1024:.1f} KB HTML, {len(sample.text) / 1024:.1f} KB "
        f"text per recipient, {args.recipients:,} recipients per provider\n"
    )
    print(
        f"{'provider':<10} {'batch':>6} {'requests':>9} {'req/10k':>8} {'sent':>7} "
        f"{'send s':>7} {'msg/s':>8}"
    )
    emulator = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "provider_emulator.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert emulator.stdout is not None and emulator.stdin is not None
    base = emulator.stdout.readline().strip()
    dsns = {
        "postmark": f"postmark://{POSTMARK_TOKEN}@default?base_url={base}",
        "sendgrid": f"sendgrid://{SENDGRID_KEY}@default?base_url={base}",
        "mailgun": f"mailgun://{MAILGUN_KEY}@{MAILGUN_DOMAIN}?base_url={base}",
    }
    try:
        for provider in args.providers:
            transport = open_transport(dsns[provider], campaign_dir=SEED)
            sent = 0
            elapsed = 0.0
            with transport:
                for start in range(1, args.recipients + 1, transport.max_batch):
                    stop = min(start + transport.max_batch, args.recipients + 1)
                    batch = [message(i) for i in range(start, stop)]
                    gc.collect()
                    t0 = time.perf_counter()
                    results = transport.send(batch)
                    elapsed += time.perf_counter() - t0
                    sent += sum(r.status is Status.SENT for r in results)
            requests = transport.requests_made  # type: ignore[attr-defined]
            per_10k = requests * 10_000 / args.recipients
            print(
                f"{provider:<10} {transport.max_batch:>6} {requests:>9} {per_10k:>8.1f} "
                f"{sent:>7} {elapsed:>7.2f} {sent / elapsed:>8.0f}"
            )
    finally:
        emulator.stdin.close()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    main()
