"""The `esms` commands. Heavy modules are imported inside each command so that `esms --help` starts fast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from states.lifecycle import DEADLINES_BY_KEY, STATE_LABELS
from states.text import plural
from workflow.cli.runtime import Runtime, default_actor, print_json, print_table

if TYPE_CHECKING:
    from workflow.change import Change

app = typer.Typer(
    name="esms",
    help="Moteur de suivi ESMS numérique : projets, échéances, tranches et courriels du programme.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: importing rich would double `esms --help`'s start-up time
)
project_app = typer.Typer(
    help="Enregistrer, lister, consulter et modifier les projets.", no_args_is_help=True, rich_markup_mode=None
)
campaign_app = typer.Typer(
    help="Consulter les campagnes du dossier de configuration.", no_args_is_help=True, rich_markup_mode=None
)
outbox_app = typer.Typer(
    help="Voir et envoyer les courriels en file d'attente.", no_args_is_help=True, rich_markup_mode=None
)
audit_app = typer.Typer(help="Vérifier le journal d'audit infalsifiable.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(audit_app, name="audit")
app.add_typer(project_app, name="project")
app.add_typer(campaign_app, name="campaign")
app.add_typer(outbox_app, name="outbox")

JsonOption = Annotated[bool, typer.Option("--json", help="Écrire un document JSON sur la sortie standard.")]
ActorOption = Annotated[
    str | None,
    typer.Option("--actor", help="Qui agit, pour le journal d'audit (par défaut : l'utilisateur du système)."),
]


@app.callback()
def main_options(
    ctx: typer.Context,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            envvar="ESMS_NOW",
            help="Agir comme s'il était cet instant (ISO-8601 ; sans décalage : heure de Paris). "
            "Le journal garde aussi l'heure réelle.",
        ),
    ] = None,
) -> None:
    """Moteur de suivi ESMS numérique."""
    ctx.obj = Runtime(now_text=now)
    if now is not None:
        ctx.obj.clock  # noqa: B018  (a malformed --now is refused whatever the command)


def _runtime(ctx: typer.Context) -> Runtime:
    runtime = ctx.find_root().obj
    assert isinstance(runtime, Runtime)
    return runtime


# --- database ------------------------------------------------------------------------------------------------


@app.command()
def init(ctx: typer.Context) -> None:
    """Créer ou mettre à jour le schéma de la base de données (sans effet s'il est à jour)."""
    from workflow.db import migrate
    from workflow.sweep import schedule_unscheduled

    runtime = _runtime(ctx)
    before, after = migrate(runtime.initial_engine)
    url = runtime.initial_engine.url.render_as_string(hide_password=True)
    if before == after:
        print(f"base de données {url} à jour (révision {after})")
    else:
        print(f"base de données {url} migrée de {before or 'vide'} à {after}")
        scheduled = schedule_unscheduled(runtime.workflow)
        if scheduled:
            print(f"{plural(scheduled, 'projet', 'projets')} planifié(s) pour le balayage des échéances")


@app.command()
def demo(
    ctx: typer.Context,
    database: Annotated[
        Path | None,
        typer.Option("--database", help="Fichier SQLite à (re)créer (par défaut : <dossier de données>/demo.sqlite3)."),
    ] = None,
) -> None:
    """Démonstration : le démon sur une campagne simulée, dans une base SQLite neuve, avec la chronologie."""
    from workflow.demo import run_demo

    runtime = _runtime(ctx)
    target = database or runtime.settings.data_dir / "demo.sqlite3"
    run_demo(
        target,
        target.parent / "demo-mail",
        runtime.settings.config_dir,
        runtime.campaigns,
        print,
        audit_key=runtime.settings.audit_key,
    )


@app.command()
def diagram() -> None:
    """Écrire le cycle de vie sous forme de diagramme d'états Mermaid."""
    from states.diagram import mermaid

    print(mermaid(), end="")


# --- campaigns -----------------------------------------------------------------------------------------------


@campaign_app.command("list")
def campaign_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Lister les campagnes."""
    from workflow.cli.views import campaign_summary, print_campaigns

    campaigns = [c for _, c in sorted(_runtime(ctx).campaigns.items())]
    if as_json:
        print_json([campaign_summary(c) for c in campaigns])
    else:
        print_campaigns(campaigns)


@campaign_app.command("show")
def campaign_show(
    ctx: typer.Context, campaign_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOption = False
) -> None:
    """Afficher une campagne : calendrier, forfaits, seuils, tranches, rappels et critères d'usage."""
    from workflow.campaigns import get_campaign
    from workflow.cli.views import campaign_detail, print_mapping

    detail = campaign_detail(get_campaign(_runtime(ctx).campaigns, campaign_id))
    if as_json:
        print_json(detail)
    else:
        print_mapping(detail)


# --- projects ------------------------------------------------------------------------------------------------


@project_app.command("add")
def project_add(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(metavar="FILE...")],
    as_json: JsonOption = False,
    actor: ActorOption = None,
) -> None:
    """Enregistrer des projets depuis leurs fichiers TOML, en candidature ; écrit chaque numéro (tous, ou aucun)."""
    from workflow.project_file import load_project_file

    runtime = _runtime(ctx)
    specs = [load_project_file(file) for file in files]
    ids = runtime.workflow.register_many(specs, actor or default_actor())
    if as_json:
        print_json({"id": ids[0]} if len(ids) == 1 else {"ids": ids})
    else:
        for project_id in ids:
            print(project_id)


@project_app.command("list")
def project_list(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Seulement cette campagne.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Seulement les projets dans cet état.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Lister les projets : état, groupe, ESMS, montant et prochaine échéance."""
    from workflow.campaigns import get_campaign
    from workflow.cli.views import print_project_rows, project_row
    from workflow.queries import project_rows

    runtime = _runtime(ctx)
    if campaign is not None:
        get_campaign(runtime.campaigns, campaign)
    rows = project_rows(runtime.engine, runtime.campaigns, campaign, state, runtime.clock.now())
    if as_json:
        print_json([project_row(row) for row in rows])
    else:
        print_project_rows(rows, runtime.campaigns)


@project_app.command("show")
def project_show(
    ctx: typer.Context, project_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOption = False
) -> None:
    """Afficher un projet : état, montants, tranches, grappe, documents et prochaine échéance."""
    from workflow.cli.views import parse_project_id, print_project, project_document
    from workflow.queries import project_view

    runtime = _runtime(ctx)
    view = project_view(runtime.engine, runtime.campaigns, parse_project_id(project_id), runtime.clock.now())
    if as_json:
        print_json(project_document(view))
    else:
        print_project(view)


@project_app.command("history")
def project_history(
    ctx: typer.Context, project_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOption = False
) -> None:
    """Afficher l'historique d'un projet : quand, qui, quoi et pourquoi."""
    from workflow.cli.views import history_document, parse_project_id, print_history
    from workflow.queries import history

    rows = history(_runtime(ctx).engine, parse_project_id(project_id))
    if as_json:
        print_json([history_document(row) for row in rows])
    else:
        print_history(rows)


@project_app.command("amend")
def project_amend(
    ctx: typer.Context,
    project_id: Annotated[str, typer.Argument(metavar="ID")],
    file: Annotated[Path, typer.Argument(metavar="FILE")],
    reason: Annotated[str, typer.Option("--reason", help="Pourquoi le projet change (gardé dans le journal d'audit).")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Avenant : remplacer le porteur, les organismes, les ESMS et les socles d'un projet par ceux d'un fichier."""
    from workflow.amendments import amend
    from workflow.cli.views import parse_project_id
    from workflow.project_file import load_project_file

    runtime = _runtime(ctx)
    spec = load_project_file(file)
    change = amend(runtime.workflow, parse_project_id(project_id), spec, reason, actor or default_actor())
    _report(change, as_json)


@app.command()
def deadlines(
    ctx: typer.Context,
    days: Annotated[
        int, typer.Option("--days", min=0, max=3660, help="Échéances des N prochains jours (30 par défaut).")
    ] = 30,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Seulement cette campagne.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Les porteurs à relancer : projets dont la prochaine échéance tombe dans les N jours, la plus proche d'abord."""
    from workflow.campaigns import get_campaign
    from workflow.cli.views import deadline_document, print_deadlines
    from workflow.queries import upcoming_deadlines

    runtime = _runtime(ctx)
    if campaign is not None:
        get_campaign(runtime.campaigns, campaign)
    rows = upcoming_deadlines(runtime.engine, runtime.campaigns, runtime.clock.now(), days, campaign)
    if as_json:
        print_json([deadline_document(row) for row in rows])
    else:
        print_deadlines(rows, runtime.campaigns, days)


# --- events --------------------------------------------------------------------------------------------------


@app.command()
def fire(
    ctx: typer.Context,
    project_id: Annotated[str, typer.Argument(metavar="ID")],
    event: Annotated[str, typer.Argument(metavar="EVENT")],
    args: Annotated[list[str] | None, typer.Argument(metavar="[KEY=VALUE]...")] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Déclencher un événement du programme sur un projet (par exemple `esms fire 3 select group=A`)."""
    from workflow.cli.views import parse_params, parse_project_id

    runtime = _runtime(ctx)
    params = parse_params(args or [])
    change = runtime.workflow.fire(parse_project_id(project_id), event, params, actor or default_actor())
    _report(change, as_json)


@app.command()
def force(
    ctx: typer.Context,
    project_id: Annotated[str, typer.Argument(metavar="ID")],
    state: Annotated[str, typer.Argument(metavar="STATE")],
    reason: Annotated[
        str, typer.Option("--reason", help="Pourquoi les règles sont contournées (gardé dans le journal d'audit).")
    ],
    actor: ActorOption = None,
    share_reason: Annotated[
        bool, typer.Option("--share-reason", help="Donner aussi le motif au porteur (interne par défaut).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Changer l'état d'un projet en contournant les règles ; tracé comme forcé, avec le motif. Ne verse rien."""
    from workflow.cli.views import parse_project_id

    runtime = _runtime(ctx)
    change = runtime.workflow.force(
        parse_project_id(project_id), state, reason, actor or default_actor(), share_reason=share_reason
    )
    _report(change, as_json)


@app.command()
def release(
    ctx: typer.Context,
    project_id: Annotated[str, typer.Argument(metavar="ID")],
    tranche: Annotated[str, typer.Argument(metavar="N", help="Le numéro de la tranche (1, 2 ou 3).")],
    reason: Annotated[str, typer.Option("--reason", help="Pourquoi la tranche est versée hors de son événement.")],
    approved_by: Annotated[
        str, typer.Option("--approved-by", help="La seconde personne qui approuve le versement (pas l'acteur).")
    ],
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verser la tranche N d'un projet qui a atteint son jalon, sur la parole de deux personnes (quatre yeux)."""
    from states.errors import InvalidArgumentError
    from workflow.cli.views import parse_id, parse_project_id

    number = parse_id(tranche)
    if number is None:
        raise InvalidArgumentError(f"release: {tranche!r} is not a tranche number")
    runtime = _runtime(ctx)
    change = runtime.workflow.release(
        parse_project_id(project_id), number, reason, actor or default_actor(), approved_by
    )
    _report(change, as_json)


def _report(change: Change, as_json: bool) -> None:
    from workflow.cli.views import change_document, change_line

    if as_json:
        print_json(change_document(change))
    else:
        print(change_line(change))


# --- money ---------------------------------------------------------------------------------------------------


@app.command()
def funding(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Seulement cette campagne.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Par campagne : enveloppe, engagé, versé par tranche, disponible, à reverser."""
    from workflow.cli.views import funding_document, print_funding
    from workflow.queries import funding_report

    runtime = _runtime(ctx)
    report = funding_report(runtime.engine, runtime.campaigns, campaign)
    if as_json:
        print_json([funding_document(f) for f in report])
    else:
        print_funding(report)


@app.command("export")
def export(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(metavar="KIND", help="projects, tranches, esms, history ou outbox.")],
    file_format: Annotated[str | None, typer.Option("--format", help="xlsx (par défaut), ods ou csv.")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Seulement cette campagne.")] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            help="Le fichier à écrire (par défaut : KIND-<campagne ou toutes>-<AAAA-MM-JJ>.<format> dans le dossier "
            "courant) ; « - » écrit du CSV sur la sortie standard.",
        ),
    ] = None,
) -> None:
    """Exporter les projets, tranches, ESMS, l'historique ou les courriels dans un tableur (XLSX, ODS ou CSV)."""
    import sys

    from states.errors import InvalidArgumentError
    from workflow.exports import (
        Format,
        Source,
        check_writable,
        default_file_name,
        parse_format,
        parse_kind,
        sheet,
        write_file,
        write_stream,
    )

    runtime = _runtime(ctx)
    chosen_kind = parse_kind(kind)
    chosen_format = parse_format(file_format) if file_format is not None else None
    to_stdout = output == "-"
    if to_stdout and chosen_format not in (None, Format.CSV):
        raise InvalidArgumentError("export : --output - n'écrit sur la sortie standard que du CSV (--format csv)")
    final_format = chosen_format or (Format.CSV if to_stdout else Format.XLSX)
    now = runtime.clock.now()
    path = None
    if not to_stdout:
        today = now.astimezone(runtime.settings.timezone).date()
        path = Path(output) if output else Path(default_file_name(chosen_kind, campaign, today, final_format))
        check_writable(path)  # before reading anything
    source = Source(engine=runtime.engine, campaigns=runtime.campaigns, now=now, timezone=runtime.settings.timezone)
    rows = sheet(source, chosen_kind, campaign)
    if path is None:
        sys.stdout.flush()
        count = write_stream(sys.stdout.buffer, final_format, rows)
        sys.stdout.buffer.flush()
        where = "sur la sortie standard"
    else:
        count = write_file(path, final_format, rows)
        where = f"dans {path}"
    written = "ligne écrite" if count < 2 else "lignes écrites"
    print(f"Export « {chosen_kind} » : {count} {written} {where}", file=sys.stderr if path is None else sys.stdout)


# --- time: sweep, daemon, digest -----------------------------------------------------------------------------


@app.command()
def tick(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Un passage maintenant : projets caducs après leur échéance, rappels dus, courriels à envoyer."""
    from notifications.relay import deliver_due
    from workflow.sweep import sweep

    runtime = _runtime(ctx)
    report = sweep(runtime.workflow)
    relay = deliver_due(runtime.engine, runtime.clock, runtime.settings.mail)
    document = {**report.as_dict(), "mail": relay.as_dict()}
    if as_json:
        print_json(document)
        return
    for t in report.transitions:
        print(
            f"projet {t.project} : {STATE_LABELS[t.source]} → {STATE_LABELS[t.dest]} "
            f"({t.event} : {DEADLINES_BY_KEY[t.deadline].label} dépassée)"
        )
    for r in report.reminders:
        print(
            f"projet {r.project} : rappel envoyé ({DEADLINES_BY_KEY[r.deadline].label}, "
            f"{plural(r.days_before, 'jour', 'jours')} avant)"
        )
    for f in report.flagged:
        print(
            f"projet {f.project} : toujours en {STATE_LABELS[f.state]} après la "
            f"{DEADLINES_BY_KEY[f.deadline].label} (signalé dans le point quotidien)"
        )
    for s in report.skipped:
        print(f"projet {s.project} : non traité, repris au prochain passage ({s.error})")
    from workflow.cli.views import mail_summary

    print(f"{report.due} à traiter ; courriels : {mail_summary(relay)}")


@app.command()
def daemon(
    ctx: typer.Context,
    interval: Annotated[
        float | None,
        typer.Option("--interval", help="Secondes entre deux passages (par défaut : ESMS_SWEEP_INTERVAL, 60)."),
    ] = None,
    lease_ttl: Annotated[
        float | None,
        typer.Option("--lease-ttl", help="Secondes qu'un démon en attente laisse à un titulaire muet (3 intervalles)."),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING ou ERROR.")] = "INFO",
    shared: Annotated[
        bool,
        typer.Option("--shared", help="PostgreSQL : chaque démon balaie, le travail se partage par verrous de lignes."),
    ] = False,
) -> None:
    """Lancer le planificateur : échéances et courriels à chaque intervalle, point quotidien le matin.

    SIGTERM l'arrête proprement, à la fin du passage en cours.
    """
    import logging

    from states.errors import InvalidArgumentError
    from workflow.daemon import run_daemon
    from workflow.settings import SWEEP_INTERVAL_MAX, SWEEP_INTERVAL_MIN

    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise InvalidArgumentError(f"--log-level: {log_level!r} is not DEBUG, INFO, WARNING or ERROR")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    runtime = _runtime(ctx)
    every = interval if interval is not None else runtime.settings.sweep_interval
    if not SWEEP_INTERVAL_MIN <= every <= SWEEP_INTERVAL_MAX:
        raise InvalidArgumentError(
            f"--interval: {every} is not between {SWEEP_INTERVAL_MIN:g} and {SWEEP_INTERVAL_MAX:g} seconds"
        )
    raise typer.Exit(run_daemon(runtime.workflow, runtime.settings, interval=every, lease_ttl=lease_ttl, shared=shared))


@app.command()
def digest(ctx: typer.Context) -> None:
    """Mettre en file le point quotidien du jour maintenant (le démon le fait chaque matin)."""
    from states.errors import InvalidArgumentError
    from workflow.messages import queue_todays_digest

    runtime = _runtime(ctx)
    recipients = list(runtime.settings.mail.admin_emails)
    if not recipients and not any(c.admin_emails for c in runtime.campaigns.values()):
        raise InvalidArgumentError("digest: set ESMS_ADMIN_EMAILS (comma-separated) or a campaign's admin_emails first")
    day, queued = queue_todays_digest(
        runtime.engine, runtime.campaigns, recipients, runtime.clock.now(), runtime.settings.timezone
    )
    print(f"point quotidien du {day.strftime('%d/%m/%Y')} {'mis en file' if queued else 'déjà mis en file'}")


# --- outbox --------------------------------------------------------------------------------------------------


@outbox_app.command("list")
def outbox_list(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending (en attente), sent (envoyé), partial (partiel) ou dead (abandonné)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Lister les courriels en file et envoyés, les plus récents d'abord."""
    from notifications.outbox import list_messages

    rows = list_messages(_runtime(ctx).engine, status)
    if as_json:
        print_json(rows)
    else:
        # A fault of the mail server holds every message back: say it once, above the list.
        paused = [r for r in rows if r["status"] == "pending" and (r["last_error"] or "").startswith("delivery paused")]
        if paused:
            reason = paused[0]["last_error"].removeprefix("delivery paused: ")
            print(f"envoi suspendu : {reason} ({len(paused)} courriel(s) en attente du serveur)")
        for row in rows:
            row["to"] = ", ".join(row["recipients"])
        print_table(rows, ["id", "status", "attempts", "template", "project", "to", "next_attempt_at", "last_error"])


@outbox_app.command("send")
def outbox_send(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Envoyer maintenant les courriels dus."""
    from notifications.relay import deliver_due

    runtime = _runtime(ctx)
    relay = deliver_due(runtime.engine, runtime.clock, runtime.settings.mail)
    if as_json:
        print_json(relay.as_dict())
    else:
        from workflow.cli.views import mail_summary

        print(mail_summary(relay))
        for error in relay.errors:
            print(f"  {error}")


@outbox_app.command("retry")
def outbox_retry(
    ctx: typer.Context,
    message_id: Annotated[str | None, typer.Argument(metavar="[ID]")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Renvoyer tous les courriels abandonnés.")] = False,
) -> None:
    """Renvoyer un courriel abandonné (ou tous, avec --dead)."""
    from notifications.outbox import retry
    from states.errors import InvalidArgumentError
    from workflow.cli.views import parse_id

    if message_id is not None and parse_id(message_id) is None:
        raise InvalidArgumentError(f"outbox retry: {message_id!r} is not a message id")
    if message_id is None and not dead:
        raise InvalidArgumentError("outbox retry: give a message ID or --dead")
    runtime = _runtime(ctx)
    count = retry(runtime.engine, runtime.clock.now(), int(message_id) if message_id else None, dead=dead)
    print(f"{plural(count, 'message', 'messages')} à renvoyer")


# --- personal data ---------------------------------------------------------------------------------------------


@app.command()
def purge(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Dire ce qui serait purgé, sans rien changer.")] = False,
    as_json: JsonOption = False,
) -> None:
    """RGPD : pseudonymiser les porteurs et effacer les courriels des projets terminés depuis trop longtemps."""
    from workflow.purge import purge as run_purge

    runtime = _runtime(ctx)
    done = run_purge(runtime.workflow, dry_run=dry_run)
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "projects": [
                    {
                        "id": p.project,
                        "campaign": p.campaign,
                        "state": p.state,
                        "ended_at": p.ended_at.isoformat(),
                        "messages": p.messages,
                    }
                    for p in done
                ],
            }
        )
        return
    for p in done:
        print(
            f"projet {p.project} ({p.campaign}, {STATE_LABELS[p.state]} depuis le {p.ended_at.strftime('%d/%m/%Y')}) : "
            f"{plural(p.messages, 'message', 'messages')}"
        )
    verb = "à purger (simulation)" if dry_run else "purgés"
    print(f"{plural(len(done), 'projet', 'projets')} {verb}")


# --- integrity -----------------------------------------------------------------------------------------------


@app.command()
def check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Vérifier les invariants : historiques, tranches, courriels, enveloppes, audit (code 5 si l'un est rompu)."""
    from states.errors import IntegrityCheckError
    from workflow.check import check as run_check

    runtime = _runtime(ctx)
    report = run_check(runtime.engine, runtime.campaigns, audit_key=runtime.settings.audit_key)
    if as_json:
        print_json(report.as_dict())
    else:
        for violation in report.violations:
            print(violation.line())
        print(
            f"{plural(report.projects, 'projet', 'projets')}, {plural(report.audit_rows, 'ligne', 'lignes')} "
            f"d'audit, {plural(report.messages, 'message', 'messages')} vérifiés : "
            f"{plural(len(report.violations), 'anomalie', 'anomalies')}"
        )
    if report.violations:
        raise IntegrityCheckError(f"{len(report.violations)} invariant(s) broken (see above)")


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", help="Seulement ce projet.")] = None,
    seal: Annotated[
        str | None,
        typer.Option(
            "--seal",
            help="L'empreinte d'un sceau antérieur (esms audit seal, point quotidien) : toujours là ?",
        ),
    ] = None,
    rows: Annotated[str | None, typer.Option("--rows", help="Le nombre de lignes de ce sceau.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Nommer chaque ligne d'audit modifiée ou supprimée et chaque montant changé hors du moteur (code 5)."""
    from states.errors import IntegrityCheckError, InvalidArgumentError
    from workflow.audit import describe, verify
    from workflow.cli.views import parse_id, parse_project_id

    if seal is not None and not _is_hash(seal):
        raise InvalidArgumentError(f"audit verify: --seal {seal[:80]!r} is not a hash (64 hexadecimal digits)")
    if rows is not None and (seal is None or parse_id(rows) is None):
        raise InvalidArgumentError("audit verify: --rows takes a number of rows, with --seal")
    if seal is not None and project:
        raise InvalidArgumentError("audit verify: --seal checks the whole log, not one --project")
    runtime = _runtime(ctx)
    checked, problems = verify(
        runtime.engine,
        parse_project_id(project) if project else None,
        key=runtime.settings.audit_key,
        seal_hash=seal.lower() if seal else None,
        seal_rows=int(rows) if rows is not None else None,
    )
    if as_json:
        print_json({"rows": checked, "ok": not problems, "problems": describe(problems)})
    else:
        for problem in problems:
            print(problem.line())
        print(
            f"{plural(checked, 'ligne', 'lignes')} d'audit vérifiées : {plural(len(problems), 'anomalie', 'anomalies')}"
        )
    if problems:
        raise IntegrityCheckError(f"the audit log was altered: {problems[0].line()}")


@audit_app.command("seal")
def audit_seal(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Écrire le sceau du journal d'audit (lignes, empreinte) : à garder ailleurs, pour montrer une troncature."""
    from workflow.audit import seal as read_seal
    from workflow.db import translate_errors

    runtime = _runtime(ctx)
    with translate_errors(), runtime.engine.connect() as connection:
        head = read_seal(connection)
    if as_json:
        print_json(head.as_dict())
    else:
        at = head.as_dict()["at"] or "-"
        print(f"{plural(head.rows, 'ligne', 'lignes')} d'audit, empreinte {head.hash} (dernière ligne écrite le {at})")


def _is_hash(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)
