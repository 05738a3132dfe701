"""``cohesion-mail send`` and ``status``: deliver a campaign, and see where it stands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .. import campaign as core
from ..check import check_or_raise
from ..errors import TransportError
from ..store import Store
from .check import print_report
from .common import (
    CampaignArg,
    ConfigOption,
    JsonOption,
    StateOption,
    console,
    err_console,
    fail,
    handle_errors,
    settings_for,
)

SubscribersOption = Annotated[
    Path | None,
    typer.Option(
        "--subscribers",
        help="Subscriber CSV (default: send.subscribers in cohesion-mail.toml, "
        "relative to the project folder).",
        show_default=False,
    ),
]
TransportOption = Annotated[
    str | None,
    typer.Option(
        "--transport",
        help="Where mail goes: outbox://DIR, smtp://user@host:587, smtps://… (default: "
        "$COHESION_MAIL_TRANSPORT, then send.transport, then outbox://). Keep passwords in "
        "the environment variable.",
        show_default=False,
    ),
]


class _RateColumn(ProgressColumn):
    """Messages per second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} msg/s" if speed else "– msg/s", style="cyan")


def _show_plan(p: core.SendPlan, dry_run: bool) -> None:
    if p.rejected_count:
        table = Table(title=f"Rejected rows in {p.subscribers} (not sent)", title_justify="left")
        table.add_column("Line", justify="right", style="bold")
        table.add_column("Reason")
        for bad in p.rejected:
            table.add_row(str(bad.line), escape(bad.reason))
        console.print(table)
        if p.rejected_count > len(p.rejected):
            console.print(f"… and {p.rejected_count - len(p.rejected)} more rejected rows.")
    for warning in p.warnings[:20]:
        console.print(f"[yellow]Warning:[/] {escape(warning)}", soft_wrap=True)
    if len(p.warnings) > 20:
        console.print(f"[yellow]… and {len(p.warnings) - 20} more warnings.[/]")
    what = "Dry run: would send" if dry_run else "Sending"
    kind = "proof" if p.proof else "campaign"
    console.print(
        f"{what} {kind} [bold]{escape(p.slug)}[/] “{escape(p.issue.subject)}” to "
        f"[bold]{p.recipients:,}[/] recipient{'s' if p.recipients != 1 else ''} "
        f"via {escape(p.transport)}.",
        soft_wrap=True,
    )
    notes = []
    if p.already_sent:
        notes.append(f"{p.already_sent:,} already sent")
    if p.suppressed:
        notes.append(f"{p.suppressed:,} suppressed (unsubscribed, bounced or complained)")
    if p.in_doubt:
        notes.append(f"{p.in_doubt:,} in doubt (use --resend-in-doubt to send them again)")
    if p.failed_before:
        notes.append(f"{p.failed_before:,} failed earlier (use --retry-failed)")
    if notes:
        console.print("Skipped: " + "; ".join(notes) + ".", soft_wrap=True)


def _confirm(p: core.SendPlan) -> None:
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise fail(
            f"not sending {p.recipients:,} messages without confirmation: there is no terminal "
            "to ask on. Pass --yes to send (or --dry-run to only build the messages)."
        )
    if not typer.confirm(
        f"Send to {p.recipients:,} recipient{'s' if p.recipients != 1 else ''} via "
        f"{p.transport}?",
        default=False,
    ):
        raise fail("not sent.")


def _show_summary(s: core.SendSummary) -> None:
    table = Table(title=f"{s.slug}: {'dry run' if s.dry_run else 'send summary'}",
                  title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    if s.dry_run:
        table.add_row("Messages built", f"{s.planned:,}")
        if s.planned:
            table.add_row("Average size", f"{s.bytes_total / s.planned / 1024:,.1f} KB")
            table.add_row("Largest", f"{s.bytes_max / 1024:,.1f} KB")
        table.add_row("Built per second", f"{s.rate:,.0f}")
    else:
        table.add_row("Sent", f"[green]{s.sent:,}[/]")
        table.add_row("Failed", f"[red]{s.failed:,}[/]" if s.failed else "0")
        table.add_row("Deferred (retried next run)", f"{s.deferred:,}")
        table.add_row("Still queued", f"{s.remaining:,}")
        table.add_row("In doubt", f"[yellow]{s.in_doubt:,}[/]" if s.in_doubt else "0")
        table.add_row("Messages per second", f"{s.rate:,.0f}")
    if not s.proof:
        table.add_row("Skipped: suppressed", f"{s.skipped_suppressed:,}")
        table.add_row("Skipped: already sent", f"{s.skipped_already_sent:,}")
        if s.skipped_failed_before:
            table.add_row("Skipped: failed earlier", f"{s.skipped_failed_before:,}")
        if s.rejected_count:
            table.add_row("Rejected CSV rows", f"{s.rejected_count:,}")
    console.print(table)
    if s.failures:
        failed = Table(title="Failed recipients", title_justify="left")
        failed.add_column("Recipient")
        failed.add_column("Reason", overflow="fold")
        for email, reason in s.failures:
            failed.add_row(escape(email), escape(reason))
        console.print(failed)
        if s.failed > len(s.failures):
            console.print(f"… and {s.failed - len(s.failures)} more: see `cohesion-mail status`.")
    if s.recovered_in_doubt:
        console.print(
            f"[yellow]{s.recovered_in_doubt:,} recipients were in flight when an earlier run "
            "stopped; they are marked in doubt and were not sent again.[/] `cohesion-mail "
            "status` lists them; --resend-in-doubt sends them.",
            soft_wrap=True,
        )
    if s.interrupted:
        console.print("[yellow]Interrupted.[/] Run the same command again to resume.")
    elif s.remaining and not s.dry_run:
        console.print(f"{s.remaining:,} recipients are still queued: run the command again "
                      "to continue.")


def register(app: typer.Typer) -> None:
    """Add ``send`` and ``status`` to the root app."""

    @app.command("send", no_args_is_help=True)
    @handle_errors
    def send(
        campaign: CampaignArg,
        subscribers: SubscribersOption = None,
        transport: TransportOption = None,
        to: Annotated[
            list[str] | None,
            typer.Option(
                "--to",
                help="Send a proof to this address only (repeatable). Proofs are marked "
                "[PROOF], always sent, and never count as campaign deliveries.",
                show_default=False,
            ),
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option("--dry-run", help="Build every message and report sizes; send nothing."),
        ] = False,
        limit: Annotated[
            int | None,
            typer.Option("--limit", min=0, help="Send at most N messages in this run.",
                         show_default=False),
        ] = None,
        connections: Annotated[
            int | None,
            typer.Option("--connections", min=1, max=64,
                         help="Parallel connections (default: send.connections, 1).",
                         show_default=False),
        ] = None,
        rate: Annotated[
            float | None,
            typer.Option("--rate", min=0.0,
                         help="At most N messages per second, all connections together "
                         "(default: send.rate; 0 = no limit).", show_default=False),
        ] = None,
        resend_in_doubt: Annotated[
            bool,
            typer.Option("--resend-in-doubt",
                         help="Also send to recipients left in doubt by a killed run "
                         "(they may get the issue twice)."),
        ] = False,
        retry_failed: Annotated[
            bool,
            typer.Option("--retry-failed",
                         help="Also retry recipients that failed permanently in earlier runs."),
        ] = False,
        yes: Annotated[
            bool, typer.Option("--yes", "-y", help="Send without asking for confirmation.")
        ] = False,
        force: Annotated[
            bool,
            typer.Option("--force", help="Send even when the preflight check finds errors."),
        ] = False,
        state: StateOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Send a campaign to its subscribers (or proofs with --to); resumable at any point.

        The audience is the valid rows of the subscriber CSV minus every unsubscribed, bounced
        or complained address. Each recipient gets exactly one message: running the command
        again after a crash, Ctrl-C or a server outage continues where it stopped. Exits 1
        when any recipient failed.
        """
        settings = settings_for(config)
        # The same preflight as `cohesion-mail check`: a campaign send refuses on errors unless
        # --force; proofs and dry runs only show the findings (reviewing them is their point).
        report = check_or_raise(campaign, settings, force=force or dry_run or bool(to))
        if report.findings:
            print_report(report)
            if report.errors:
                err_console.print(
                    "[yellow]Note:[/] continuing despite the errors above "
                    + ("(--force)" if force else "(a proof or dry run)")
                )
        with Store(settings.state_path(state)) as store:
            p = core.plan(campaign, settings, store=store, subscribers=subscribers,
                          transport=transport, to=to, limit=limit,
                          resend_in_doubt=resend_in_doubt, retry_failed=retry_failed)
            _show_plan(p, dry_run)
            if not dry_run and not yes and p.recipients:
                _confirm(p)
            progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
                disable=dry_run or not p.recipients,
            )
            task = progress.add_task("Sending", total=p.recipients)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=max(total, done))

            try:
                with progress:
                    summary = core.send_campaign(
                        campaign, settings, store=store, subscribers=subscribers,
                        transport=transport, to=to, dry_run=dry_run, limit=limit,
                        connections=connections or settings.send.connections,
                        rate=settings.send.rate if rate is None else rate,
                        resend_in_doubt=resend_in_doubt, retry_failed=retry_failed,
                        progress=update, prepared=p,
                    )
            except TransportError as exc:
                stopped = getattr(exc, "summary", None)
                if stopped is not None:
                    _show_summary(stopped)
                raise
        for notice in summary.notices:
            err_console.print(f"[yellow]Note:[/] {escape(notice)}", soft_wrap=True)
        _show_summary(summary)
        if summary.interrupted:
            raise typer.Exit(130)
        if summary.failed:
            raise typer.Exit(1)

    @app.command("status", no_args_is_help=True)
    @handle_errors
    def status(
        campaign: CampaignArg,
        json_: JsonOption = False,
        state: StateOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Show a campaign's deliveries per state, and every failed or in-doubt recipient."""
        settings = settings_for(config)
        with Store(settings.state_path(state)) as store:
            st = core.campaign_status(campaign, store)
        if json_:
            console.print_json(json.dumps(st.to_dict()))
            return
        if st.campaign_id is None:
            console.print(f"Campaign [bold]{escape(st.slug)}[/] has not been sent yet.")
            return
        table = Table(title=f"{st.slug}: deliveries", title_justify="left")
        table.add_column("State")
        table.add_column("Recipients", justify="right")
        table.add_column("Proofs", justify="right")
        for name, n in st.counts.items():
            table.add_row(name.replace("_", " "), f"{n:,}", f"{st.proofs.get(name, 0):,}")
        table.add_row("[bold]total[/]", f"[bold]{sum(st.counts.values()):,}[/]",
                      f"{sum(st.proofs.values()):,}")
        console.print(table)
        if st.running:
            console.print(f"A send of this campaign is running now ({escape(st.running)}).")
        if st.problems:
            problems = Table(title="Failed and in-doubt recipients", title_justify="left")
            problems.add_column("Recipient")
            problems.add_column("State")
            problems.add_column("Attempts", justify="right")
            problems.add_column("Reason", overflow="fold")
            for pr in st.problems:
                who = escape(pr.email) + (" (proof)" if pr.is_proof else "")
                problems.add_row(who, pr.state.replace("_", " "), str(pr.attempts),
                                 escape(pr.detail))
            console.print(problems)
            if st.counts.get("in_doubt"):
                console.print(
                    "In doubt: the send stopped between handing these to the server and "
                    "recording its answer. Check the server's log; `cohesion-mail send "
                    f"{escape(str(campaign))} --resend-in-doubt` sends them again.",
                    soft_wrap=True,
                )
