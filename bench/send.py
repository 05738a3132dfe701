"""Benchmark sending: cohesion-mail vs plain smtplib vs mailmerge 2.3.0, into a local SMTP sink.

    python bench/send.py            # N = 2,000 and 100,000 (takes several minutes)
    python bench/send.py --quick    # N = 300 and 3,000
    python bench/send.py --sizes 2000 20000

Everything talks to ``bench/sink.py`` (its own process, 127.0.0.1 only) and sends the seed
issue ``campaigns/2020-02-cohes3ion`` to synthetic subscribers written to a temporary folder.

* cohesion-mail: ``python -m cohesion_mail send … --yes`` in a subprocess, 1 and 4
  connections, a fresh state file each time. Its peak RSS comes from ``os.wait4``.
* smtplib: the same number of prebuilt messages (cohesion-mail's own, built beforehand) with
  ``smtplib.SMTP.sendmail`` over one reused connection: the practical limit of a Python client.
  It runs before and after cohesion-mail and the two are averaged (the machine's speed drifts).
* mailmerge 2.3.0 (installed into a cached venv if missing) with a template of the same size,
  security Never, no rate limit. It opens a connection per message, so it runs on a smaller N
  (at most 2,000) and is compared by rate.

Two rates are printed: *end to end* (recipients / wall time of the whole command, start-up,
CSV import and build included) and *sending* (messages / time between the first and the last
message at the sink). Ratios use the sending rate against smtplib (which has no set-up) and
end to end against mailmerge (whose run is its set-up plus its sending).
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "campaigns" / "2020-02-cohes3ion"
MAILMERGE_VENV = Path.home() / ".cache" / "cohesion-mail-bench" / "mailmerge-venv"
TARGETS = {"1 connection": 0.8, "4 connections": 1.3, "mailmerge": 5.0, "memory": 1.2}


@dataclass
class Run:
    name: str
    n: int
    wall: float
    sending: float  # seconds between the first and the last message at the sink
    received: int
    rss_mb: float = 0.0

    @property
    def end_to_end(self) -> float:
        return self.n / self.wall

    @property
    def send_rate(self) -> float:
        return (self.received - 1) / self.sending if self.sending > 0 else 0.0


class Sink:
    """The sink process and a control connection for its counters."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "sink.py"), "--port", "0"],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "listening", line
        self.port = int(line[1])

    def command(self, verb: str) -> list[str]:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            _, answer = s.docmd(verb)
        return answer.decode().split()

    def reset(self) -> None:
        self.command("XRESET")

    def stats(self) -> tuple[int, float]:
        messages, _, _, first, last = self.command("XSTAT")
        return int(messages), float(last) - float(first)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def write_subscribers(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,organisation,country,language\n")
        for i in range(n):
            out.write(f"reader{i}@example.org,Reader {i},Organisation {i % 97},Spain,es\n")
    return path


def run_cohesion(project: Path, sink: Sink, csv: Path, n: int, connections: int) -> Run:
    state = project / f"state-{n}-{connections}" / "state.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHESION_MAIL_")}
    env.update(COHESION_MAIL_SECRET="bench-secret", PYTHONPATH=str(REPO))
    sink.reset()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cohesion_mail", "send", str(project / "campaigns" / SEED.name),
         "--subscribers", str(csv), "--transport", f"smtp://127.0.0.1:{sink.port}?tls=none",
         "--connections", str(connections), "--state", str(state), "--yes"],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"cohesion-mail send failed ({proc.returncode}): "
                         f"{proc.stderr.read().decode() if proc.stderr else ''}")
    received, sending = sink.stats()
    assert received == n, (received, n)
    return Run(f"cohesion-mail, {connections} conn.", n, wall, sending, received,
               usage.ru_maxrss / 1024)


def prebuilt_messages(project: Path, count: int) -> list[tuple[str, bytes]]:
    """``count`` distinct messages exactly as cohesion-mail would send them."""
    sys.path.insert(0, str(REPO))
    from cohesion_mail.config import load_settings
    from cohesion_mail.message import message_bytes
    from cohesion_mail.render.pipeline import build_issue
    from cohesion_mail.sending.compose import Composer
    from cohesion_mail.tracking.tokens import Links, Signer

    settings = load_settings(project / "cohesion-mail.toml")
    issue = build_issue(project / "campaigns" / SEED.name, settings)
    composer = Composer(issue, settings, Links(settings.base_url, Signer(b"bench")), 1,
                        click_tracking=True, open_tracking=True)
    out = []
    for i in range(count):
        email = f"reader{i}@example.org"
        msg = composer.message(i + 1, email, f"Reader {i}", {"organisation": "Org"})
        out.append((email, message_bytes(msg)))
    return out


def run_smtplib(sink: Sink, messages: list[tuple[str, bytes]], n: int) -> Run:
    sink.reset()
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=30) as smtp:
        for i in range(n):
            email, data = messages[i % len(messages)]
            smtp.sendmail("newsletter@cohes3ion.eu", [email], data)
    wall = time.perf_counter() - start
    received, sending = sink.stats()
    return Run("smtplib, prebuilt, 1 conn.", n, wall, sending, received)


def mailmerge_command() -> list[str]:
    try:
        import mailmerge  # type: ignore[import-not-found]  # noqa: F401

        return [sys.executable, "-m", "mailmerge"]
    except ImportError:
        pass
    exe = MAILMERGE_VENV / "bin" / "mailmerge"
    if not exe.exists():
        print(f"installing mailmerge 2.3.0 into {MAILMERGE_VENV} …", flush=True)
        venv.create(MAILMERGE_VENV, with_pip=True)
        subprocess.run([str(MAILMERGE_VENV / "bin" / "pip"), "install", "-q",
                        "mailmerge==2.3.0"], check=True)
    return [str(exe)]


def run_mailmerge(project: Path, sink: Sink, csv: Path, n: int,
                  sample: tuple[str, bytes]) -> Run:
    import email
    import email.policy

    folder = project / "mailmerge"
    folder.mkdir(exist_ok=True)
    parsed = email.message_from_bytes(sample[1], policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # The same issue, so the same size; {% raw %} keeps Jinja2 away from the HTML.
    (folder / "template.txt").write_text(
        "TO: {{email}}\nSUBJECT: COHES3ION news\nFROM: COHES3ION Project "
        "<newsletter@cohes3ion.eu>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="mmboundary"\n\n'
        "--mmboundary\nContent-Type: text/plain; charset=utf-8\n\n"
        "Dear {{name}},\n{% raw %}" + text + "{% endraw %}\n"
        "--mmboundary\nContent-Type: text/html; charset=utf-8\n\n"
        "{% raw %}" + html + "{% endraw %}\n--mmboundary--\n",
        encoding="utf-8",
    )
    (folder / "server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {sink.port}\nsecurity = Never\nratelimit = 0\n"
    )
    sink.reset()
    start = time.perf_counter()
    subprocess.run(
        [*mailmerge_command(), "--no-dry-run", "--no-limit", "--template",
         str(folder / "template.txt"), "--database", str(csv), "--config",
         str(folder / "server.conf"), "--output-format", "raw"],
        cwd=folder, check=True, stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    received, sending = sink.stats()
    assert received == n, (received, n)
    return Run("mailmerge 2.3.0", n, wall, sending, received)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 300 and 3,000")
    parser.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"),
                        help="the two list sizes (default 2,000 and 100,000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    small, large = (300, 3_000) if args.quick else (2_000, 100_000)
    if args.sizes:
        small, large = sorted(args.sizes)
    merge_n = min(small, 2_000)

    tmp = Path(tempfile.mkdtemp(prefix="cohesion-bench-"))
    project = tmp / "project"
    project.mkdir()
    shutil.copy(REPO / "cohesion-mail.toml", project / "cohesion-mail.toml")
    shutil.copytree(SEED, project / "campaigns" / SEED.name)
    csvs = {n: write_subscribers(tmp / f"subscribers-{n}.csv", n) for n in (small, large)}
    sink = Sink()
    runs: dict[str, Run] = {}
    try:
        messages = prebuilt_messages(project, 50)
        size = sum(len(m) for _, m in messages) / len(messages)
        print(f"seed issue: {size / 1024:.1f} KB per message; sink on 127.0.0.1:{sink.port}",
              flush=True)
        for n in (small, large):
            # smtplib before and after, averaged: this machine's speed drifts between runs.
            before = run_smtplib(sink, messages, n)
            for conns in (1, 4):
                runs[f"ours {n} {conns}"] = run_cohesion(project, sink, csvs[n], n, conns)
            after = run_smtplib(sink, messages, n)
            runs[f"smtplib {n}"] = Run(before.name + " (before/after)", n,
                                       (before.wall + after.wall) / 2,
                                       (before.sending + after.sending) / 2, before.received)
            print(f"  N={n:,} done (smtplib {before.send_rate:,.0f}/s before, "
                  f"{after.send_rate:,.0f}/s after)", flush=True)
        runs["mailmerge"] = run_mailmerge(project, sink, csvs[merge_n], merge_n, messages[0])
    finally:
        sink.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report(runs, small, large)


def report(runs: dict[str, Run], small: int, large: int) -> None:
    print(f"\n{'run':44} {'N':>8} {'end to end':>12} {'sending':>12} {'peak RSS':>10}")
    for run in runs.values():
        rss = f"{run.rss_mb:.0f} MB" if run.rss_mb else ""
        print(f"{run.name:44} {run.n:>8,} {run.end_to_end:>8,.0f}/s {run.send_rate:>8,.0f}/s "
              f"{rss:>10}")

    def line(label: str, value: float, target: float, bigger: bool = True) -> None:
        ok = value >= target if bigger else value <= target
        sign = "≥" if bigger else "≤"
        print(f"  {label:58} {value:6.2f}  (target {sign} {target}) "
              f"{'OK' if ok else 'MISSED'}")

    print("\nratios")
    for n in (small, large):
        base = runs[f"smtplib {n}"].send_rate
        for conns, target in ((1, TARGETS["1 connection"]), (4, TARGETS["4 connections"])):
            ours = runs[f"ours {n} {conns}"]
            line(f"N={n:,}: {conns} conn. sending / smtplib", ours.send_rate / base, target)
            print(f"  {'':58} {ours.end_to_end / base:6.2f}  (end to end / smtplib, for "
                  "information)")
    merge = runs["mailmerge"]
    for n in (small, large):
        ours = runs[f"ours {n} 1"]
        line(f"N={n:,}: 1 conn. end to end / mailmerge (N={merge.n:,})",
             ours.end_to_end / merge.end_to_end, TARGETS["mailmerge"])
    for conns in (1, 4):
        a, b = runs[f"ours {small} {conns}"], runs[f"ours {large} {conns}"]
        line(f"peak RSS {conns} conn.: N={large:,} / N={small:,} ({b.rss_mb:.0f} / "
             f"{a.rss_mb:.0f} MB)", b.rss_mb / a.rss_mb, TARGETS["memory"], bigger=False)


if __name__ == "__main__":
    main()
