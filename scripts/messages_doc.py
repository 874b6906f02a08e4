"""Write docs/messages.md: every message the engine sends, rendered with sample data.

Run `python scripts/messages_doc.py` after changing a template; a test checks the file is current.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notifications.render import render  # noqa: E402

CAMPAIGN = {
    "id": "hdf-2021",
    "name": "ESMS numérique — amorçage Hauts-de-France",
    "region": "Hauts-de-France",
    "contact": {"name": "Mission ESMS numérique de l'ARS", "email": "esms@ars-hdf.example", "phone": "03 62 72 77 00"},
}
PROJECT = {
    "id": 12,
    "name": "Grappe du Hainaut",
    "campaign_name": CAMPAIGN["name"],
    "kind": "acquisition",
    "esms_count": 8,
    "small_esms_count": 2,
    "total_cents": 23_200_000,
    "state": "needs_statement",
    "state_label": "expression de besoins (RESAH)",
    "owner_name": "Association Les Tilleuls",
}
AGREEMENT = {
    "name": "agreement_deadline",
    "label": "date limite de signature de la convention",
    "date": date(2021, 6, 30),
}
RECOVERY = {"due_cents": 9_280_000, "repaid_cents": 0, "waived_cents": 0, "balance_cents": 9_280_000}


def owner(project: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An owner message's context."""
    return {"project": {**PROJECT, **(project or {})}, "campaign": CAMPAIGN, **extra}


TRANCHE_1 = {"number": 1, "percent": "40", "amount_cents": 9_280_000}
TRANCHE_3 = {"number": 3, "percent": "20", "amount_cents": 4_640_000}
SAMPLES: list[tuple[str, str, dict[str, Any]]] = [
    ("Accusé de réception de la candidature", "submission_received", owner(selection_deadline=date(2021, 5, 31))),
    *(
        (
            f"Résultat de la sélection (groupe {group})",
            "selection_result",
            owner(group=group, agreement_deadline=date(2021, 6, 30), needs_statement_opens=date(2021, 3, 15)),
        )
        for group in "ABCD"
    ),
    ("Projet appelé depuis la liste d'attente", "promoted", owner(agreement_deadline=date(2021, 6, 30))),
    (
        "Tranche débloquée (tranche 1)",
        "tranche_released",
        owner(
            {"state": "configuration", "state_label": "paramétrage"},
            tranche=TRANCHE_1,
            released_total_cents=9_280_000,
            tranches_count=3,
            completed=False,
        ),
    ),
    (
        "Tranche débloquée (dernière tranche, projet terminé)",
        "tranche_released",
        owner(
            {"state": "completed", "state_label": "terminé"},
            tranche=TRANCHE_3,
            released_total_cents=23_200_000,
            tranches_count=3,
            completed=True,
        ),
    ),
    ("Projet caduc", "lapsed", owner({"state": "lapsed", "state_label": "caduc"}, deadline=AGREEMENT)),
    ("Abandon confirmé", "withdrawn", owner({"state": "withdrawn"}, reason="Fusion des organismes gestionnaires.")),
    (
        "Changement d'état forcé (avec motif)",
        "forced",
        owner(previous_state_label="caduc", new_state_label="convention", reason="Convention reçue le 2 juillet."),
    ),
    (
        "Changement d'état forcé (sans motif)",
        "forced",
        owner(previous_state_label="caduc", new_state_label="convention", reason=None),
    ),
    (
        "Rappel d'échéance",
        "reminder",
        owner(
            deadline=AGREEMENT,
            days_left=7,
            todo="contractualiser avec un éditeur de DUI et signer la convention de financement avec l'ARS",
        ),
    ),
    (
        "Échéance prolongée par avenant",
        "deadline_extended",
        owner(
            extension={
                "name": "completion_deadline",
                "label": "date limite d'achèvement du projet",
                "previous_date": date(2023, 6, 29),
                "date": date(2023, 12, 31),
            },
            reason="Retard de livraison de l'éditeur (avenant n° 1).",
        ),
    ),
    (
        "Modification du projet",
        "project_amended",
        owner(
            amendment={
                "old_esms_count": 8,
                "new_esms_count": 7,
                "old_total_cents": 23_200_000,
                "new_total_cents": 20_700_000,
                "released_cents": 9_280_000,
                "owner_changed": False,
                "previous_owner_name": "Association Les Tilleuls",
            },
            previous_owner=False,
        ),
    ),
    ("Reversement des sommes versées", "recovery_due", owner({"state": "recovery"}, recovery=RECOVERY)),
    (
        "Reversement reçu",
        "repayment_recorded",
        owner(
            {"state": "recovery"},
            amount_cents=4_000_000,
            recovery={**RECOVERY, "repaid_cents": 4_000_000, "balance_cents": 5_280_000},
        ),
    ),
    (
        "Remise sur le reversement",
        "recovery_waived",
        owner(
            {"state": "recovered"},
            amount_cents=5_280_000,
            recovery={**RECOVERY, "repaid_cents": 4_000_000, "waived_cents": 5_280_000, "balance_cents": 0},
        ),
    ),
    (
        "Point quotidien (équipe du programme)",
        "digest",
        {
            "day": date(2021, 4, 1),
            "campaigns": [{"id": CAMPAIGN["id"], "name": CAMPAIGN["name"], "region": CAMPAIGN["region"]}],
            "undecided": [
                {"id": 14, "name": "Grappe de l'Artois", "campaign": "hdf-2021", "deadline_date": date(2021, 5, 31)}
            ],
            "near_deadline": [
                {
                    "id": 12,
                    "name": "Grappe du Hainaut",
                    "state_label": "convention",
                    "deadline_label": AGREEMENT["label"],
                    "date": date(2021, 4, 2),
                    "days_left": 1,
                }
            ],
            "released_yesterday": [{"id": 9, "name": "Grappe de l'Oise", "number": 1, "amount_cents": 16_600_000}],
            "released_yesterday_total_cents": 16_600_000,
            "sweep_errors": [],
            "seal": {"at": "2021-04-01T06:00:00Z", "rows": 1234, "hash": "9f2c…e71a"},
        },
    ),
]

HEADER = """# Messages sent by e-mail

Each message is rendered by `notifications.render.render(name, context)` from `notifications/templates/<name>.txt`
(first line: the subject; then a blank line; then the text part, wrapped at 72 columns) and `<name>.html` (the HTML
part, same content). Below is the text part of each message as rendered with sample data: the project « Grappe du
Hainaut » (8 ESMS, 232 000,00 €) of the Hauts-de-France 2021 campaign, whose file has a `[contact]` table. Every
message goes to the project owner, except the daily digest, which goes to the programme team. The reminder carries
the deadline as an `.ics` attachment (one event per deadline, updated by each reminder). This file is written by
`python scripts/messages_doc.py`.
"""


def document() -> str:
    """The whole of docs/messages.md."""
    parts = [HEADER]
    for title, template, context in SAMPLES:
        rendered = render(template, context)
        parts.append(
            f"\n## {title} — `{template}`\n\n**Objet :** {rendered.subject}\n\n```text\n{rendered.text.rstrip()}\n```\n"
        )
    return "".join(parts)


if __name__ == "__main__":
    (ROOT / "docs" / "messages.md").write_text(document(), encoding="utf-8")
