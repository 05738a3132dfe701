"""Multilingual issues: translations per field, catalogues, dates, one compile per language."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from pathlib import Path

import pytest
from helpers_render import (
    ROOT,
    SEED,
    copy_seed,
    enter_project,
    make_settings,
    write_campaign,
    write_template,
)
from typer.testing import CliRunner

from cohesion_mail.cli import app
from cohesion_mail.errors import ContentError, MergeFieldError, TemplateError
from cohesion_mail.i18n import language_name, load_catalogue, normalise_language
from cohesion_mail.render.personalise import CompiledIssue
from cohesion_mail.render.pipeline import COMPILES, build_issue
from cohesion_mail.render.templates import template_dirs
from cohesion_mail.render.variants import Variants, build_variants
from cohesion_mail.translations import Translations, untranslated, untranslated_strings

VALUES = {
    "name": "Ana García",
    "first_name": "Ana",
    "email": "ana@example.org",
    "unsubscribe_url": "https://news.example.org/u/TOKEN",
    "web_version_url": "https://news.example.org/w/TOKEN",
    "open_pixel_url": "https://news.example.org/o/TOKEN.gif",
}

MAIN = """\
subject: "News for *|first_name|*"
preheader: "The short line"
language: en
issue: {number: 3, date: 2020-02-01}
merge_fields:
  region: "your region"
sections:
  - type: article
    title: First story
    body: "Hello *|first_name|* in *|region|*."
    link:
      url: https://example.org/story
  - type: article
    title: Second story
    body: Second body.
    link:
      url: https://example.org/second
      label: Go to the second story
  - type: events
    id: diary
    style: diary
    items:
      - title: Conference
        dates:
          - {date: 2020-03-25, place: Castle}
          - {date: 2020-03-26, format: day_month, place: Stadium}
footer:
  web: {prompt: "On the web:", label: example.org, url: https://example.org}
"""

PARTIAL_ES = """\
subject: "Noticias para *|first_name|*"
merge_fields:
  region: "su región"
sections:
  - title: Primera historia
  - {}
  - id: diary
    items:
      - title: Conferencia
        dates:
          - place: Castillo
"""


def words(text: str) -> str:
    return " ".join(text.split())


def visible(doc: str) -> str:
    return words(re.sub(r"<[^>]+>", " ", doc))


def add_translation(folder: Path, language: str, yaml_text: str) -> Path:
    path = folder / f"campaign.{language}.yaml"
    path.write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    return path


@pytest.fixture
def partial(tmp_path: Path) -> Path:
    """A campaign in English with a partial Spanish translation."""
    folder = write_campaign(tmp_path, MAIN)
    add_translation(folder, "es", PARTIAL_ES)
    return folder


@pytest.fixture(scope="module")
def seed_variants() -> Variants:
    return build_variants(SEED, make_settings(SEED.parent))


# -- per-recipient language ----------------------------------------------------------------


def test_normalise_language() -> None:
    assert normalise_language("es-ES") == "es"
    assert normalise_language("ES") == "es"
    assert normalise_language(" pt_BR ") == "pt"
    assert normalise_language("cy") == "cy"
    for value in ("", None, "  ", "xx", "klingon", "zz-ZZ"):
        assert normalise_language(value) is None
    assert language_name("cy") == "Cymraeg"


def test_spanish_reader_gets_spanish_subject_and_body(seed_variants: Variants) -> None:
    assert list(seed_variants) == ["en", "es"] and seed_variants.main == "en"
    issue = seed_variants.for_language("es-ES")
    assert issue.language == "es"
    assert issue.personalise_subject(VALUES).startswith("Noticias de COHES3ION: viajes")
    doc, text = issue.personalise(VALUES)
    assert re.search(r'<html[^>]* lang="es"', doc)
    assert "Expertos que ayudan a transformar el Ruhr" in visible(doc)
    assert "Darse de baja <https://news.example.org/u/TOKEN>" in text  # catalogue string
    assert "Ver en el navegador" in visible(doc)
    assert "Test List · Número 1 · febrero de 2020" in text
    assert "25 de marzo de 2020 - Castillo de Cardiff" in words(text)  # Babel, from an ISO date
    assert "26 de marzo - Estadio Principality" in words(text)
    assert "Experts helping" not in text and "Unsubscribe" not in text


def test_swedish_and_unknown_readers_get_the_main_language(seed_variants: Variants) -> None:
    for code in ("sv", "SV-se", "", None, "xx"):
        issue = seed_variants.for_language(code)
        assert issue is seed_variants.main_issue
        assert issue.language == "en"
        assert seed_variants.language_for(code) == "en"
    doc, text = seed_variants.for_language("sv").personalise(VALUES)
    assert re.search(r'<html[^>]* lang="en"', doc)
    assert "Experts helping to transform the Ruhr" in text
    assert "25 March 2020 - Cardiff Castle" in words(text)
    assert "Unsubscribe <https://news.example.org/u/TOKEN>" in text


def test_a_mixed_list_costs_one_compile_per_language_not_per_recipient() -> None:
    settings = make_settings(SEED.parent)
    before = COMPILES.count
    variants = build_variants(SEED, settings)
    assert COMPILES.count - before == len(variants) == 2
    readers = [f"r{i}@example.org" for i in range(300)]
    languages = ["es", "es-ES", "sv", "", "EN", "cy"]
    subjects: dict[str, str] = {}
    for i, email in enumerate(readers):
        issue = variants.for_language(languages[i % len(languages)])
        issue.personalise(VALUES | {"email": email})
        subjects[languages[i % len(languages)]] = issue.personalise_subject(VALUES)
    assert COMPILES.count - before == 2  # still: personalising never compiles
    assert subjects["es"] == subjects["es-ES"] != subjects["sv"] == subjects[""] == subjects["EN"]

    before = COMPILES.count
    only = build_issue(SEED, settings, language="es")
    assert COMPILES.count - before == 1 and only.language == "es"


def test_variants_survive_json_like_the_send_loop_stores_them(seed_variants: Variants) -> None:
    stored = {lang: issue.to_json() for lang, issue in seed_variants.items()}
    again = Variants([CompiledIssue.from_json(s) for s in stored.values()], main="en")
    assert again.for_language("es").language == "es"
    assert again.for_language("es").personalise(VALUES) == seed_variants["es"].personalise(VALUES)


# -- partial translations ------------------------------------------------------------------


def test_partial_translation_falls_back_per_field(partial: Path) -> None:
    variants = build_variants(partial, make_settings(partial.parent))
    es, en = variants["es"], variants["en"]
    assert es.subject == "Noticias para *|first_name|*"
    assert es.preheader == en.preheader == "The short line"  # not translated → English
    doc, text = es.personalise(VALUES)
    flat = words(text)
    assert "Primera historia" in flat  # translated title …
    assert "Hello Ana in su región." in flat  # … English body; translated merge default
    assert "Second story" in flat and "Go to the second story" in flat  # skipped with {}
    assert "Conferencia" in flat  # matched by id:
    assert "25 de marzo de 2020 - Castillo" in flat  # ISO date in Spanish, translated place
    assert "26 de marzo - Stadium" in flat  # second place not translated
    assert "On the web:" in flat
    # template strings come from the Spanish catalogue
    assert "Leer más <https://example.org/story>" in flat  # a link with no label
    assert "Fecha para la agenda" in flat  # an events section with no title
    assert "Número 3 · febrero de 2020" in flat
    assert "Recibe este correo porque se suscribió a Test List." in flat


def test_untranslated_lists_what_a_translation_leaves_out(partial: Path) -> None:
    gaps = untranslated(partial)
    assert all(lang == "es" for lang, _ in gaps)
    fields = [field for _, field in gaps]
    assert fields == [
        "preheader",
        "sections[0].body",
        "sections[1].title",
        "sections[1].body",
        "sections[1].link.label",
        "sections[2].items[0].dates[1].place",
        "footer.web.prompt",
        "footer.web.label",
    ]
    assert untranslated(SEED) == []  # the seed's Spanish edition is complete


def test_main_language_from_settings_when_campaign_has_none(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN.replace("language: en\n", ""))
    add_translation(folder, "en", "subject: English\n")
    variants = build_variants(folder, make_settings(tmp_path, language="es"))
    assert variants.main == "es" and list(variants) == ["es", "en"]
    main = variants.main_issue
    assert main.language == "es" and "Leer más" in main.personalise(VALUES)[1]
    assert variants.for_language("en").subject == "English"


# -- catalogues ----------------------------------------------------------------------------


def test_catalogue_strings_are_translated_for_every_bundled_language() -> None:
    dirs = template_dirs(ROOT)
    expected = {
        "en": ("View in browser", "Unsubscribe", "Read more", "Issue 2"),
        "es": ("Ver en el navegador", "Darse de baja", "Leer más", "Número 2"),
        "it": ("Visualizza nel browser", "Annulla l'iscrizione", "Leggi di più", "Numero 2"),
        "de": ("Im Browser ansehen", "Abmelden", "Weiterlesen", "Ausgabe 2"),
        "ro": ("Vizualizați în browser", "Dezabonare", "Citiți mai mult", "Numărul 2"),
        "sv": ("Visa i webbläsaren", "Avsluta prenumerationen", "Läs mer", "Nummer 2"),
        "pl": ("Wyświetl w przeglądarce", "Wypisz się", "Czytaj więcej", "Numer 2"),
        "cy": ("Gweld yn y porwr", "Dad-danysgrifio", "Darllen mwy", "Rhifyn 2"),
    }
    for language, words_ in expected.items():
        cat = load_catalogue(language, dirs, fallback="en")
        got = tuple(cat.gettext(k) for k in ("view_in_browser", "unsubscribe", "read_more"))
        assert got + (cat.gettext("issue_number", number=2),) == words_, language
        assert cat.own == load_catalogue("en", dirs).own, f"{language} misses a string"


def test_page_strings_as_html_escape_values_but_keep_markup() -> None:
    """The tracking service's pages take their words from the same catalogues."""
    from markupsafe import Markup

    cat = load_catalogue("es", template_dirs(ROOT), fallback="en")
    html = cat.markup(
        "page_unsubscribe_question", list="A & B", email=Markup("<strong>a•••@x.org</strong>")
    )
    assert html == "¿Dejar de enviar A &amp; B a <strong>a•••@x.org</strong>?"
    assert cat.gettext("page_error_404_title") == "Enlace no encontrado"


def test_dates_are_formatted_per_language_with_babel() -> None:
    dirs = template_dirs(ROOT)
    day, month = dt.date(2020, 3, 25), dt.date(2020, 2, 1)
    expected = {
        "en": ("25 March 2020", "25 March", "February 2020"),
        "es": ("25 de marzo de 2020", "25 de marzo", "febrero de 2020"),
        "de": ("25. März 2020", "25. März", "Februar 2020"),
        "pl": ("25 marca 2020", "25 marca", "luty 2020"),
        "cy": ("25 Mawrth 2020", "25 Mawrth", "Chwefror 2020"),
        "fr": ("25 mars 2020", "25 mars", "février 2020"),  # no catalogue: Babel's own locale
    }
    for language, (full, day_month, month_year) in expected.items():
        cat = load_catalogue(language, dirs, fallback="en")
        assert cat.format_date(day) == full
        assert cat.format_date(day, "day_month") == day_month
        assert cat.format_date(month, "month_year") == month_year
    assert load_catalogue("ar", dirs).direction == "rtl"
    assert load_catalogue("es", dirs).direction == "ltr"


def test_a_new_language_is_a_catalogue_file_plus_a_translation(partial: Path) -> None:
    """No code: templates/i18n/fr.yaml (partial) + campaign.fr.yaml; strings it lacks fall
    back to the main language, string by string."""
    root = partial.parent
    write_template(
        root,
        "i18n/fr.yaml",
        "locale: fr_FR\nmessages:\n  view_in_browser: Voir dans le navigateur\n"
        "  issue_number: 'Numéro {number}'\n",
    )
    add_translation(partial, "fr", "subject: Nouvelles\n")
    variants = build_variants(partial, make_settings(root))
    assert list(variants) == ["en", "es", "fr"]
    doc, text = variants.for_language("fr-CA").personalise(VALUES)
    assert re.search(r'<html[^>]* lang="fr"', doc)
    flat = words(text)
    assert "Voir dans le navigateur" in flat and "Numéro 3 · février 2020" in flat
    assert "Unsubscribe <https://news.example.org/u/TOKEN>" in flat  # from en, the main
    assert "25 mars 2020 - Castle" in flat


def test_catalogue_string_falls_back_to_the_main_language_not_english(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN.replace("language: en", "language: es"))
    add_translation(folder, "eu", "subject: Berriak\n")  # Basque: no catalogue at all
    settings = make_settings(tmp_path)
    variants = build_variants(folder, settings)
    _, text = variants["eu"].personalise(VALUES)
    assert variants["eu"].language == "eu"
    assert "Darse de baja" in text and "Unsubscribe" not in text
    missing = untranslated_strings(folder, settings)
    assert ("eu", "messages.unsubscribe") in missing and ("eu", "messages.read_more") in missing
    assert {lang for lang, _ in missing} == {"eu"}  # es (the main) has every string
    assert untranslated_strings(SEED, make_settings(SEED.parent)) == []


def test_project_catalogue_overrides_one_string(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN)
    write_template(tmp_path, "i18n/en.yaml", "messages:\n  unsubscribe: Stop these emails\n")
    _, text = build_issue(folder, make_settings(tmp_path)).personalise(VALUES)
    assert "Stop these emails <https://news.example.org/u/TOKEN>" in text
    assert "View in browser" in text  # the rest from the built-in catalogue


def test_catalogue_errors_name_file_and_line(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN)
    write_template(tmp_path, "i18n/en.yaml", "messages:\n  issue_number: 'No. {numero}'\n")
    expected = (
        r"templates/i18n/en\.yaml:2: messages\.issue_number: "
        r"unknown placeholder \{numero\} \(this message can use: \{number\}\)"
    )
    with pytest.raises(TemplateError, match=expected):
        build_issue(folder, make_settings(tmp_path))
    write_template(tmp_path, "i18n/en.yaml", "messages:\n  read_more: {\n")
    with pytest.raises(TemplateError, match=r"i18n/en\.yaml:3:\d+: YAML syntax error"):
        build_issue(folder, make_settings(tmp_path))
    write_template(tmp_path, "i18n/en.yaml", "mesages:\n  read_more: More\n")
    with pytest.raises(TemplateError, match=r"i18n/en\.yaml:1: mesages: unknown key"):
        build_issue(folder, make_settings(tmp_path))


# -- translation files: errors name the file and line --------------------------------------


def error_for(folder: Path, yaml_text: str, language: str = "es") -> str:
    add_translation(folder, language, yaml_text)
    with pytest.raises(ContentError) as info:
        build_variants(folder, make_settings(folder.parent))
    return str(info.value)


def test_bad_value_in_a_translation_names_the_translation_file(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN)
    message = error_for(
        folder,
        """\
        subject: Hola
        sections:
          - title: Uno
            link:
              url: www.example.es
          - subtitle: nope
        """,
    )
    assert "test-issue/campaign.es.yaml:5: sections[0].link.url: not a URL" in message
    assert "test-issue/campaign.es.yaml:6: sections[1].subtitle: unknown key 'subtitle'" in message


def test_a_translation_cannot_change_the_issue_or_its_structure(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN)
    message = error_for(
        folder,
        """\
        issue: {number: 4, date: 2020-02-01}
        language: it
        sections:
          - type: text
          - {}
          - {}
          - title: Extra
        merge_fields:
          town: ciudad
        """,
    )
    lines = message.splitlines()
    assert any(line.endswith("campaign.es.yaml:1: issue: is {'number': 3, 'date': "
                             "datetime.date(2020, 2, 1)} in campaign.yaml; a translation "
                             "cannot change it (leave it out)") for line in lines)  # fmt: skip
    assert any("campaign.es.yaml:2: language: says 'it' but the file name says 'es'" in x
               for x in lines)  # fmt: skip
    assert any("campaign.es.yaml:4: sections[0].type: is 'article' in campaign.yaml" in x
               for x in lines)  # fmt: skip
    assert any("campaign.es.yaml:7: sections[3]: campaign.yaml has 3 sections" in x
               for x in lines)  # fmt: skip
    assert any("campaign.es.yaml:9: merge_fields.town: not declared in campaign.yaml" in x
               for x in lines)  # fmt: skip


def test_unknown_section_id_and_a_section_translated_twice(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN)
    message = error_for(
        folder,
        """\
        sections:
          - id: dairy
            title: Agenda
          - title: Uno
          - title: Dos
          - id: diary
          - title: Otra vez
        """,
    )
    assert (
        "campaign.es.yaml:2: sections[0].id: no section has id 'dairy' in campaign.yaml "
        "(ids: diary)" in message
    )
    assert "campaign.es.yaml:7: sections[4]: campaign.yaml has 3 sections" in message
    # a copied, unchanged id: matches; position 2 was also 'diary' → translated twice
    copy = error_for(folder, "sections:\n  - {}\n  - {}\n  - title: A\n  - id: diary\n")
    assert "sections[3]: translates sections[2] again (see sections[2])" in copy


def test_unknown_merge_field_in_a_translation_names_the_translation(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN)
    add_translation(folder, "es", "sections:\n  - {}\n  - body: 'Hola *|nombre|*'\n")
    with pytest.raises(MergeFieldError, match=r"test-issue/campaign\.es\.yaml:3: "
                       r"sections\[1\]\.body: unknown merge field 'nombre'"):  # fmt: skip
        build_variants(folder, make_settings(tmp_path))


def test_main_file_errors_still_name_campaign_yaml(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN.replace("url: https://example.org/story", "url: x"))
    message = error_for(folder, "subject: Hola\n")
    assert "test-issue/campaign.yaml:12: sections[0].link.url: not a URL" in message


def test_errors_in_two_translations_are_reported_together(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN)
    add_translation(folder, "it", "subject: ''\n")
    message = error_for(folder, "preheader: [1, 2]\n")
    assert "campaign.es.yaml:1: preheader: expected text" in message
    assert "campaign.it.yaml:1: subject: must not be empty" in message


def test_translation_file_names_are_checked(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MAIN)
    message = error_for(folder, "subject: Hola\n", language="es-ES")
    assert re.search(r"campaign\.es-ES\.yaml: .*\nHint: rename it to campaign\.es\.yaml", message)
    (folder / "campaign.es-ES.yaml").unlink()
    message = error_for(folder, "subject: Hola\n", language="qq")
    assert "'qq' is not an ISO 639-1 language code" in message
    (folder / "campaign.qq.yaml").unlink()
    message = error_for(folder, "subject: Hello\n", language="en")
    assert "campaign.en.yaml: 'en' is the main language of" in message
    (folder / "campaign.en.yaml").unlink()
    (folder / "campaign.backup.yaml").write_text("not: a translation\n", encoding="utf-8")
    assert Translations(folder).languages == []


# -- the build command ---------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return enter_project(tmp_path, monkeypatch)


def test_build_lang_writes_that_edition(project: Path) -> None:
    seed = copy_seed(project)
    result = runner.invoke(app, ["build", str(seed), "--lang", "es-ES"])
    assert result.exit_code == 0, result.output
    assert "Language:  es" in result.stdout and "Subject:   Noticias de COHES3ION" in result.stdout
    doc = (seed / "build" / "email.es.html").read_text(encoding="utf-8")
    assert re.search(r'<html[^>]* lang="es"', doc) and "Ver en el navegador" in doc
    assert not (seed / "build" / "email.html").exists()

    fallback = runner.invoke(app, ["build", str(seed), "--lang", "sv"])
    assert fallback.exit_code == 0
    assert "no campaign.sv.yaml: sv readers get the main language, en" in fallback.stderr
    assert (seed / "build" / "email.en.html").is_file()

    bad = runner.invoke(app, ["build", str(seed), "--lang", "xx"])
    assert bad.exit_code == 1 and "--lang 'xx': not an ISO 639-1 language code" in bad.stderr


def test_build_all_languages_writes_every_edition(project: Path) -> None:
    seed = copy_seed(project)
    result = runner.invoke(app, ["build", str(seed), "--all-languages"])
    assert result.exit_code == 0, result.output
    out = seed / "build"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "email.en.html", "email.en.txt", "email.es.html", "email.es.txt", "email.html", "email.txt",
    ]  # fmt: skip
    assert 'lang="es"' in (out / "email.es.html").read_text(encoding="utf-8")
    main = (out / "email.txt").read_text(encoding="utf-8")
    assert "Experts helping to transform the Ruhr" in main
    assert "Noticias de COHES3ION" in result.stdout

    both = runner.invoke(app, ["build", str(seed), "--all-languages", "--lang", "es"])
    assert both.exit_code == 1 and "use --lang or --all-languages, not both" in both.stderr


# -- end to end: a mixed list through the outbox ---------------------------------------------


def test_a_mixed_list_gets_each_reader_their_edition_and_the_report_splits(
    tmp_path: Path,
) -> None:
    import email
    import email.policy

    from cohesion_mail.campaign import send_campaign
    from cohesion_mail.report import campaign_report
    from cohesion_mail.store import Store

    seed = copy_seed(tmp_path)
    settings = make_settings(seed.parent)
    variants = build_variants(SEED, settings)
    readers = {
        "ana@example.org": "es-ES",
        "bo@example.org": "sv",
        "cara@example.org": "",
        "dario@example.org": "ES",
    }
    csv_path = tmp_path / "subscribers.csv"
    csv_path.write_text(
        "email,name,language\n" + "".join(f"{e},{e.split('@')[0]},{lang}\n"
                                          for e, lang in readers.items()),
        encoding="utf-8",
    )
    outbox = tmp_path / "outbox"
    before = COMPILES.count
    with Store(tmp_path / "state.db") as store:
        summary = send_campaign(seed, settings, store=store, subscribers=csv_path,
                                transport=f"outbox://{outbox}")
        assert summary.sent == len(readers)
        assert COMPILES.count - before == len(variants)  # one compile per edition, not per reader
        report = campaign_report(store, seed.name)
        stored = {r["language"] for r in store.query(
            "SELECT language FROM campaign_variants")}
    assert stored == set(variants)

    received = {}
    for path in outbox.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        received[msg["To"].addresses[0].addr_spec.lower()] = msg
    assert set(received) == set(readers)
    for address, lang in readers.items():
        edition = variants.for_language(lang)
        msg = received[address]
        assert msg["Subject"] == edition.subject
        assert msg["Content-Language"] == edition.language
        html = msg.get_body(("html",)).get_content()
        assert f'lang="{edition.language}"' in html
    assert variants.for_language("es").subject != variants.main_issue.subject

    split = {row.language: row.sent for row in report.by_language}
    assert split == {"es": 2, variants.main: 2}
