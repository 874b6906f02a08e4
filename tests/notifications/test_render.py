"""E-mail rendering: French formatting filters, the calendar file of reminders, and every message template."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.formatting import MONTHS_FR, date_fr, euros, percent
from notifications.ics import deadline_event, escape_text, fold_line
from notifications.render import TEMPLATES, TEMPLATES_DIR, Rendered, one_line, render

REPO = Path(__file__).resolve().parents[2]
NNBSP = "\u202f"
NBSP = "\u00a0"
AMOUNT = f"232{NNBSP}000,00{NBSP}€"
SIGNATURE = "L'équipe du programme ESMS numérique — Hauts-de-France"
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
INJECTION = "Grappe du Hainaut\r\nBcc: evil@example.com"


# --- sample data --------------------------------------------------------------------------------------------


def project(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 12,
        "name": "Grappe du Hainaut",
        "campaign_name": "ESMS numérique — amorçage Hauts-de-France",
        "kind": "acquisition",
        "esms_count": 8,
        "small_esms_count": 2,
        "total_cents": 23_200_000,
        "state": "selection",
        "state_label": "instruction",
        "owner_name": "Association Les Tilleuls",
    }
    return {**base, **changes}


CAMPAIGN = {"id": "hdf-2021", "name": "ESMS numérique — amorçage Hauts-de-France", "region": "Hauts-de-France"}
AGREEMENT_DEADLINE = {
    "name": "agreement_deadline",
    "label": "date limite de signature de la convention",
    "date": date(2021, 6, 30),
}


RECOVERY = {"due_cents": 23_200_000, "repaid_cents": 0, "waived_cents": 0, "balance_cents": 23_200_000}


def owner_context(template: str, name: str = "Grappe du Hainaut", **changes: Any) -> dict[str, Any]:
    """A complete context for an owner message, every branch's keys given."""
    extra: dict[str, dict[str, Any]] = {
        "submission_received": {"selection_deadline": date(2021, 5, 31)},
        "selection_result": {
            "group": "A",
            "agreement_deadline": date(2021, 6, 30),
            "needs_statement_opens": date(2021, 3, 15),
        },
        "promoted": {"agreement_deadline": date(2021, 6, 30)},
        "tranche_released": {
            "tranche": {"number": 1, "percent": "40", "amount_cents": 9_280_000},
            "released_total_cents": 9_280_000,
            "tranches_count": 3,
            "completed": False,
        },
        "lapsed": {"deadline": AGREEMENT_DEADLINE},
        "withdrawn": {"reason": "Deux organismes gestionnaires ont quitté la grappe."},
        "forced": {
            "previous_state_label": "caduc",
            "new_state_label": "convention",
            "reason": "Convention reçue par courrier le 2 juillet.",
        },
        "reminder": {
            "deadline": AGREEMENT_DEADLINE,
            "days_left": 7,
            "todo": "Signer la convention de financement avec l'ARS.",
        },
        "recovery_due": {"recovery": RECOVERY},
        "deadline_extended": {
            "extension": {
                "name": "completion_deadline",
                "label": "date limite d'achèvement du projet",
                "previous_date": date(2023, 6, 29),
                "date": date(2023, 12, 31),
            },
            "reason": "Retard de livraison de l'éditeur, avenant n° 1.",
        },
        "repayment_recorded": {"amount_cents": 10_000_000, "recovery": {**RECOVERY, "repaid_cents": 10_000_000}},
        "recovery_waived": {"amount_cents": 2_000_000, "recovery": {**RECOVERY, "waived_cents": 2_000_000}},
        "project_amended": {
            "amendment": {
                "old_esms_count": 10,
                "new_esms_count": 8,
                "old_total_cents": 29_000_000,
                "new_total_cents": 23_200_000,
                "released_cents": 11_600_000,
                "owner_changed": True,
                "previous_owner_name": "Association Les Chênes",
            },
            "previous_owner": True,
        },
    }
    return {"project": project(name=name), "campaign": CAMPAIGN, **extra[template], **changes}


def digest_context(name: str = "Grappe de l'Artois", **changes: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "day": date(2021, 4, 1),
        "undecided": [{"id": 14, "name": name, "campaign": "hdf-2021", "deadline_date": date(2021, 5, 31)}],
        "near_deadline": [
            {
                "id": 12,
                "name": "Grappe du Hainaut",
                "state_label": "convention",
                "deadline_label": "date limite de signature de la convention",
                "date": date(2021, 4, 2),
                "days_left": 1,
            }
        ],
        "released_yesterday": [{"id": 9, "name": "Grappe de l'Oise", "number": 2, "amount_cents": 23_200_000}],
        "released_yesterday_total_cents": 23_200_000,
        "sweep_errors": [
            {"id": 3, "name": "Grappe des Flandres", "campaign": "hdf-2021", "error": "KeyError", "at": None}
        ],
    }
    return {**context, **changes}


OWNER_TEMPLATES = [name for name in TEMPLATES if name != "digest"]


def context_for(template: str, name: str | None = None) -> dict[str, Any]:
    if template == "digest":
        return digest_context() if name is None else digest_context(name=name)
    return owner_context(template) if name is None else owner_context(template, name=name)


def assert_well_formed(rendered: Rendered) -> None:
    assert rendered.subject
    assert rendered.text.strip()
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert '<html lang="fr">' in rendered.html
    assert rendered.html.rstrip().endswith("</html>")


# --- formatting ---------------------------------------------------------------------------------------------


def test_date_fr_writes_the_first_of_the_month_as_an_ordinal() -> None:
    assert date_fr(date(2021, 4, 1)) == "1er avril 2021"
    assert date_fr(date(2021, 3, 31)) == "31 mars 2021"
    assert date_fr(date(2021, 4, 2)) == "2 avril 2021"


@pytest.mark.parametrize(
    ("month", "name"),
    list(
        enumerate(
            [
                "janvier",
                "février",
                "mars",
                "avril",
                "mai",
                "juin",
                "juillet",
                "août",
                "septembre",
                "octobre",
                "novembre",
                "décembre",
            ],
            start=1,
        )
    ),
)
def test_date_fr_names_every_month_in_french_lowercase(month: int, name: str) -> None:
    assert date_fr(date(2022, month, 15)) == f"15 {name} 2022"
    assert MONTHS_FR[month - 1] == name


def test_euros_uses_french_separators() -> None:
    assert euros(23_200_000) == AMOUNT
    assert euros(0) == f"0,00{NBSP}€"
    assert euros(5) == f"0,05{NBSP}€"
    assert euros(123_456_789_01) == f"123{NNBSP}456{NNBSP}789,01{NBSP}€"


@pytest.mark.parametrize("value", [1.5, True, Decimal("1.00"), "100"])
def test_euros_refuses_anything_but_integer_cents(value: Any) -> None:
    with pytest.raises(TypeError):
        euros(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (40, f"40{NBSP}%"),
        ("40", f"40{NBSP}%"),
        ("40.00", f"40{NBSP}%"),
        (Decimal(20), f"20{NBSP}%"),
        ("33.33", f"33,33{NBSP}%"),
        (Decimal("12.50"), f"12,5{NBSP}%"),
        ("0.01", f"0,01{NBSP}%"),
        (Decimal("1E+2"), f"100{NBSP}%"),
    ],
)
def test_percent_uses_a_decimal_comma_and_a_no_break_space(value: str | Decimal | int, expected: str) -> None:
    assert percent(value) == expected


def test_percent_refuses_floats_and_non_numbers() -> None:
    with pytest.raises(TypeError):
        percent(40.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a decimal number"):
        percent("quarante")
    with pytest.raises(ValueError, match="not a finite number"):
        percent("NaN")


# --- calendar file ------------------------------------------------------------------------------------------

STAMP = datetime(2021, 6, 23, 9, 30, 5, tzinfo=ZoneInfo("Europe/Paris"))


def make_event(**changes: Any) -> str:
    arguments: dict[str, Any] = {
        "uid": "p12:reminder:agreement_deadline:7@esms-numerique",
        "day": date(2021, 6, 30),
        "summary": "ESMS numérique — date limite de signature de la convention",
        "description": "Signer la convention de financement avec l'ARS.",
        "stamp": STAMP,
    }
    return deadline_event(**{**arguments, **changes})


def unfold(ics: str) -> list[str]:
    return ics.replace("\r\n ", "").split("\r\n")[:-1]


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def properties(ics: str, name: str) -> list[str]:
    return [line.split(":", 1)[1] for line in unfold(ics) if line.split(":", 1)[0].split(";")[0] == name]


def test_calendar_lines_end_with_crlf_only() -> None:
    ics = make_event(description="ligne 1\nligne 2\r\nligne 3")
    assert ics.endswith("\r\n")
    assert "\n" not in ics.replace("\r\n", "")
    assert "\r" not in ics.replace("\r\n", "")


def test_calendar_is_an_all_day_event_with_an_alarm_the_day_before() -> None:
    lines = unfold(make_event())
    assert lines[:5] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//ESMS numerique//workflow//FR",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    assert "DTSTART;VALUE=DATE:20210630" in lines
    assert "DTEND;VALUE=DATE:20210701" in lines
    assert "UID:p12:reminder:agreement_deadline:7@esms-numerique" in lines
    alarm = lines[lines.index("BEGIN:VALARM") : lines.index("END:VALARM") + 1]
    assert "ACTION:DISPLAY" in alarm
    assert "TRIGGER:-P1D" in alarm
    assert any(line.startswith("DESCRIPTION:") for line in alarm)


def test_calendar_event_ending_on_new_years_day() -> None:
    lines = unfold(make_event(day=date(2021, 12, 31)))
    assert "DTSTART;VALUE=DATE:20211231" in lines
    assert "DTEND;VALUE=DATE:20220101" in lines


def test_calendar_stamp_is_written_in_utc() -> None:
    assert properties(make_event(), "DTSTAMP") == ["20210623T073005Z"]


def test_calendar_refuses_a_naive_stamp_and_a_datetime_day() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_event(stamp=datetime(2021, 6, 23, 9, 30))  # noqa: DTZ001
    with pytest.raises(TypeError, match="whole day"):
        make_event(day=datetime(2021, 6, 30, tzinfo=ZoneInfo("Europe/Paris")))


def test_calendar_text_is_escaped() -> None:
    summary = r"Convention; signature, avant le 30\06"
    description = "Étape 1 : signer;\nÉtape 2, renvoyer\r\nFin"
    ics = make_event(summary=summary, description=description)
    assert properties(ics, "SUMMARY") == [r"Convention\; signature\, avant le 30\\06"]
    event_description = properties(ics, "DESCRIPTION")[0]
    assert event_description == r"Étape 1 : signer\;\nÉtape 2\, renvoyer\nFin"
    assert unescape(event_description) == description.replace("\r\n", "\n")


def test_escape_text_replaces_other_control_characters() -> None:
    assert escape_text("a\x00b\x7fc\td") == "a b c\td"


def test_calendar_folds_long_lines_without_splitting_a_character() -> None:
    description = "Échéance — convention à signer avant la date limite 🗓️ ; " * 8
    ics = make_event(description=description)
    physical = ics.encode("utf-8").split(b"\r\n")[:-1]
    assert len(physical) > len(unfold(ics))  # something was folded
    for line in physical:
        assert len(line) <= 75
        line.decode("utf-8")  # strict: a split inside a character would fail here
    assert unescape(properties(ics, "DESCRIPTION")[0]) == description


def test_calendar_structure_is_balanced() -> None:
    stack: list[str] = []
    seen: list[str] = []
    for line in unfold(make_event(description="x" * 500)):
        name, _, value = line.partition(":")
        assert _ == ":", line
        if name == "BEGIN":
            stack.append(value)
            seen.append(value)
        elif name == "END":
            assert stack.pop() == value
    assert stack == []
    assert seen == ["VCALENDAR", "VEVENT", "VALARM"]


@given(st.text(max_size=400))
def test_folding_keeps_lines_short_and_unfolds_to_the_original(text: str) -> None:
    line = "DESCRIPTION:" + escape_text(text)
    folded = fold_line(line)
    for physical in folded.split("\r\n"):
        assert len(physical.encode("utf-8")) <= 75
    assert folded.replace("\r\n ", "") == line


# --- rendering ----------------------------------------------------------------------------------------------


def test_every_message_has_a_text_and_an_html_template() -> None:
    files = {path.name for path in Path(TEMPLATES_DIR).iterdir() if not path.name.startswith("_")}
    assert files == {f"{name}.{extension}" for name in TEMPLATES for extension in ("txt", "html")}


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_message_renders_a_subject_a_text_and_an_html_document(template: str) -> None:
    rendered = render(template, context_for(template))
    assert_well_formed(rendered)
    assert rendered.subject.startswith("ESMS numérique — ")
    assert "\n" not in rendered.subject
    assert not rendered.text.startswith("\n")
    if template != "digest":
        assert rendered.subject.endswith("Grappe du Hainaut")
        assert SIGNATURE in rendered.text
        assert SIGNATURE in rendered.html


@pytest.mark.parametrize("template", TEMPLATES)
def test_text_lines_stay_readable_in_a_mail_client(template: str) -> None:
    rendered = render(template, context_for(template))
    # 72 columns; only a line that is one unbreakable word (a URL, a hash) may be longer.
    assert [line for line in rendered.text.splitlines() if len(line) > 72 and " " in line.strip()] == []


def test_text_is_wrapped_at_72_columns_without_breaking_words_or_urls() -> None:
    from notifications.render import wrap_text

    url = "https://demarches.example/" + "x" * 80
    text = wrap_text("- " + "mot " * 30 + url + " fin")
    lines = text.splitlines()
    assert all(len(line) <= 72 for line in lines if line.strip() != url)
    assert "  " + url in lines and all(line.startswith("  ") for line in lines[1:])
    assert " ".join(text.split()) == " ".join(("- " + "mot " * 30 + url + " fin").split())


def test_submission_received_summarises_the_project() -> None:
    rendered = render("submission_received", owner_context("submission_received"))
    assert rendered.subject == "ESMS numérique — candidature reçue : Grappe du Hainaut"
    for part in (rendered.text, rendered.html):
        assert AMOUNT in part
        assert "31 mai 2021" in part
        assert "8, dont 2 de petite taille" in part
    assert "acquisition d'un DUI" in rendered.text
    assert "acquisition d&#39;un DUI" in rendered.html  # the HTML part is escaped, the text part is not
    assert "La sélection sera arrêtée au plus tard le 31 mai 2021" in rendered.text


def test_submission_received_without_selection_deadline_and_for_compliance() -> None:
    context = owner_context("submission_received", selection_deadline=None)
    context["project"] = project(kind="compliance", small_esms_count=0)
    rendered = render("submission_received", context)
    assert "mise en conformité d'un DUI" in rendered.text
    assert "arrêtée au plus tard" not in rendered.text
    assert "petite taille" not in rendered.text
    assert "arrêtée au plus tard" not in rendered.html


@pytest.mark.parametrize(
    ("group", "wording"),
    [
        ("A", ["groupe A", "proposé pour un financement", "expression de besoins", "RESAH", AMOUNT]),
        ("B", ["groupe B", "recevable", "liste", "d'attente", "si une place se libère d'ici le 30 juin 2021"]),
        ("C", ["groupe C", "à retravailler", "prochaine campagne"]),
        ("D", ["groupe D", "n'est pas recevable"]),
    ],
)
def test_selection_result_says_what_each_group_means(group: str, wording: list[str]) -> None:
    rendered = render("selection_result", owner_context("selection_result", group=group))
    assert rendered.subject == "ESMS numérique — résultat de la sélection : Grappe du Hainaut"
    assert_well_formed(rendered)
    for words in wording:
        assert words in rendered.text
    others = {"A", "B", "C", "D"} - {group}
    assert all(f"groupe {other}" not in rendered.text for other in others)
    assert all(f"groupe {other}" not in rendered.html for other in others)


def test_selection_result_group_a_gives_the_dates_when_known() -> None:
    rendered = render("selection_result", owner_context("selection_result"))
    assert "ouverte à partir du 15 mars 2021" in rendered.text
    assert "au plus tard\n   le 30 juin 2021" in rendered.text
    assert "30 juin 2021" in rendered.html
    undated = render(
        "selection_result",
        owner_context("selection_result", agreement_deadline=None, needs_statement_opens=None),
    )
    assert "2021" not in undated.text
    assert "plateforme d'achat du\n   RESAH." in undated.text


def test_selection_result_refuses_an_unknown_group() -> None:
    with pytest.raises(ValueError, match="group must be A, B, C or D"):
        render("selection_result", owner_context("selection_result", group="E"))


def test_promoted_points_to_the_needs_statement() -> None:
    rendered = render("promoted", owner_context("promoted"))
    assert rendered.subject == "ESMS numérique — votre projet est proposé au financement : Grappe du Hainaut"
    assert "liste d'attente" in rendered.text
    assert "expression de besoins" in rendered.text
    assert "30 juin 2021" in rendered.text
    assert AMOUNT in rendered.text
    assert "30 juin" not in render("promoted", owner_context("promoted", agreement_deadline=None)).text


def test_tranche_released_gives_the_amounts() -> None:
    rendered = render("tranche_released", owner_context("tranche_released"))
    assert rendered.subject == "ESMS numérique — tranche 1 débloquée : Grappe du Hainaut"
    for part in (rendered.text, rendered.html):
        assert f"92{NNBSP}800,00{NBSP}€ (40{NBSP}% du financement)" in part
        assert AMOUNT in part
        assert f"139{NNBSP}200,00{NBSP}€" in part  # still to release
    assert "la tranche 1 sur 3" in rendered.text
    assert "remercions" not in rendered.text


def test_tranche_released_thanks_the_owner_when_the_project_is_completed() -> None:
    context = owner_context(
        "tranche_released",
        tranche={"number": 3, "percent": "20", "amount_cents": 4_640_000},
        released_total_cents=23_200_000,
        completed=True,
    )
    rendered = render("tranche_released", context)
    assert "terminé" in rendered.text
    assert "remercions" in rendered.text
    assert "remercions" in rendered.html
    assert "reste à débloquer" not in rendered.text.lower()


def test_lapsed_names_the_deadline_that_passed() -> None:
    rendered = render("lapsed", owner_context("lapsed"))
    assert rendered.subject == "ESMS numérique — projet caduc : Grappe du Hainaut"
    for part in (rendered.text, rendered.html):
        assert "date limite de signature de la convention" in part
        assert "30 juin 2021" in part
        assert "est perdue" in part
        assert "ARS" in part


def test_withdrawn_confirms_with_the_reason() -> None:
    rendered = render("withdrawn", owner_context("withdrawn"))
    assert rendered.subject == "ESMS numérique — abandon du projet confirmé : Grappe du Hainaut"
    assert "Deux organismes gestionnaires ont quitté la grappe." in rendered.text
    assert "Deux organismes gestionnaires ont quitté la grappe." in rendered.html
    assert "Motif" not in render("withdrawn", owner_context("withdrawn", reason="")).text


def test_forced_shows_the_reason_only_when_given() -> None:
    shared = render("forced", owner_context("forced"))
    assert shared.subject == "ESMS numérique — changement d'état du projet : Grappe du Hainaut"
    for part in (shared.text, shared.html):
        assert "caduc" in part
        assert "convention" in part
        assert "Convention reçue par courrier le 2 juillet." in part
    private = render("forced", owner_context("forced", reason=None))
    assert "Motif" not in private.text
    assert "Motif" not in private.html
    assert "None" not in private.text


@pytest.mark.parametrize(("days_left", "when"), [(0, "aujourd'hui"), (1, "demain"), (7, "dans 7 jours")])
def test_reminder_says_when_the_deadline_falls(days_left: int, when: str) -> None:
    rendered = render("reminder", owner_context("reminder", days_left=days_left))
    assert rendered.subject == "ESMS numérique — rappel d'échéance du 30 juin 2021 : Grappe du Hainaut"
    assert f"tombe\n{when} :" in rendered.text
    assert f"<strong>{when}</strong>" in rendered.html
    for part in (rendered.text, rendered.html):
        assert ".ics" in part
        assert "date limite de signature de la convention" in part
        assert "Signer la convention de financement avec l" in part


def test_reminder_refuses_a_negative_days_left() -> None:
    with pytest.raises(ValueError, match="days_left"):
        render("reminder", owner_context("reminder", days_left=-1))


def test_digest_lists_the_three_sections() -> None:
    rendered = render("digest", digest_context())
    assert rendered.subject == "ESMS numérique — point du 1er avril 2021"
    for part in (rendered.text, rendered.html):
        assert "31 mai 2021" in part
        assert "2 avril 2021" in part
        assert "demain" in part
        assert AMOUNT in part
        assert "Aucun." not in part
    assert "Grappe de l'Artois" in rendered.text


def test_digest_says_none_for_empty_sections() -> None:
    rendered = render("digest", digest_context(undecided=[], near_deadline=[], released_yesterday=[]))
    assert rendered.text.count("Aucun.") == 3
    assert rendered.html.count("Aucun.") == 3


@pytest.mark.parametrize("template", TEMPLATES)
def test_html_part_escapes_names_and_text_part_keeps_them(template: str) -> None:
    rendered = render(template, context_for(template, name=XSS))
    assert XSS_ESCAPED in rendered.html
    assert "<script" not in rendered.html
    assert XSS in rendered.text


@pytest.mark.parametrize("template", OWNER_TEMPLATES)
def test_a_line_break_in_a_name_cannot_inject_a_header(template: str) -> None:
    context = owner_context(template, name=INJECTION)
    context["project"]["owner_name"] = "Les Tilleuls\nTo: someone@example.com"
    rendered = render(template, context)
    assert "\r" not in rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.subject.endswith("Grappe du Hainaut Bcc: evil@example.com")
    assert rendered.text.startswith(("Madame, Monsieur,", "Bonjour,"))


def test_the_digest_subject_stays_on_one_line() -> None:
    rendered = render("digest", digest_context(name=INJECTION))
    assert rendered.subject == "ESMS numérique — point du 1er avril 2021"


def test_one_line_collapses_every_kind_of_line_break_and_keeps_no_break_spaces() -> None:
    assert one_line("  a\r\n\tb \x0b\x0c c\x85d\u2028e\u2029f\x00g  ") == "a b c d e f g"
    assert one_line(f"total {AMOUNT}") == f"total {AMOUNT}"


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_missing_context_key_fails_loudly(template: str) -> None:
    context = context_for(template)
    for key in context:
        partial = {k: v for k, v in context.items() if k != key}
        with pytest.raises(jinja2.UndefinedError):
            render(template, partial)


@pytest.mark.parametrize(
    ("part", "key"), [("project", "owner_name"), ("project", "total_cents"), ("campaign", "region")]
)
def test_a_missing_nested_key_fails_loudly(part: str, key: str) -> None:
    context = owner_context("submission_received")
    context[part] = {k: v for k, v in context[part].items() if k != key}
    with pytest.raises(jinja2.UndefinedError):
        render("submission_received", context)


@pytest.mark.parametrize("name", ["nope", "_layout", "_signature", "digest.txt", ""])
def test_unknown_template_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=f"unknown template {re.escape(name)}"):
        render(name, {})


def test_the_subject_key_is_reserved() -> None:
    with pytest.raises(ValueError, match="reserved"):
        render("digest", {**digest_context(), "subject": "x"})


def test_docs_messages_shows_every_message_as_rendered_now() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("messages_doc", REPO / "scripts" / "messages_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert {template for _, template, _ in module.SAMPLES} == set(TEMPLATES)
    written = (REPO / "docs" / "messages.md").read_text(encoding="utf-8")
    assert written == module.document(), "run: python scripts/messages_doc.py"
