"""Preflight: the seed's placeholder links fail by name, the fixed seed passes, every rule bites."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_render import PLACEHOLDER_FIXTURE, PNG, ROOT, SEED, write_campaign
from typer.testing import CliRunner

from cohesion_mail.check import CheckReport, check_or_raise, error_findings, run_checks
from cohesion_mail.checks.content import shouting
from cohesion_mail.checks.css import AtRule, Declaration, parse_css, support_data
from cohesion_mail.checks.urls import judge_url
from cohesion_mail.cli import app
from cohesion_mail.config import ListInfo, Sender, Settings, Theme, load_settings
from cohesion_mail.errors import CheckFailed, TemplateError

runner = CliRunner()

ISSUE = """\
subject: "Spring news from the partners"
preheader: "Learning journeys, a new partner and the conference dates."
issue:
  number: 2
  date: 2020-03-01
sections:
  - type: article
    title: First story
    body: Read [the report](https://www.interregeurope.eu/cohes3ion).
    link:
      url: https://www.interregeurope.eu/cohes3ion
      label: Read more
"""


def settings_for(root: Path, **overrides: Any) -> Settings:
    """A project with a sender, a list with a postal address, and the built-in templates."""
    kwargs: dict[str, Any] = {
        "root": root,
        "base_url": "https://news.example.org",
        "sender": Sender("Cohesion News", "news@cohesion.example.org"),
        "list": ListInfo(
            name="Cohesion Newsletter", id="n.example.org", postal_address="1 Rue X, Lille"
        ),
    }
    kwargs.update(overrides)
    return Settings(**kwargs)


def check(tmp_path: Path, yaml_text: str, **overrides: Any) -> CheckReport:
    folder = write_campaign(tmp_path, yaml_text)
    return run_checks(folder, settings_for(tmp_path, **overrides))


def rules(report: CheckReport, level: str | None = None) -> list[str]:
    return [f.rule for f in report.findings if level is None or f.level == level]


def only(report: CheckReport, rule: str) -> list[Any]:
    return [f for f in report.findings if f.rule == rule]


# -- the seed ------------------------------------------------------------------------------------


def _hash_links(node: Any) -> int:
    """Links to ``#`` in parsed YAML: ``url: "#"`` fields and Markdown ``[text](#)``."""
    if isinstance(node, dict):
        return sum(
            (1 if key == "url" and value == "#" else 0) + _hash_links(value)
            for key, value in node.items()
        )
    if isinstance(node, list):
        return sum(_hash_links(item) for item in node)
    if isinstance(node, str):
        return len(re.findall(r"\]\(#\)", node))
    return 0


def test_placeholder_fixture_fails_naming_every_hash_link() -> None:
    text = (PLACEHOLDER_FIXTURE / "campaign.yaml").read_text(encoding="utf-8")
    expected = _hash_links(yaml.safe_load(text))
    assert expected >= 9  # the seed's six buttons and its four inline "here" links

    report = run_checks(PLACEHOLDER_FIXTURE, load_settings(ROOT / "cohesion-mail.toml"))

    placeholders = only(report, "link-placeholder")
    assert not report.ok
    assert len(placeholders) == expected
    assert all(f.level == "error" and "'#'" in f.message for f in placeholders)
    lines = text.splitlines()
    for f in placeholders:  # each names the file, a line holding a "#" link, and the field
        assert f.file.endswith("placeholder-links/campaign.yaml")
        assert "#" in lines[f.line - 1], (f.line, lines[f.line - 1])
        assert f.where.startswith("sections[")
    assert len({f.line for f in placeholders}) == expected
    labels = " ".join(f.message for f in placeholders)
    for label in (
        "Read more here",
        "BIC Bizkaia",
        "Bizkaia Orekan",
        "ORKESTRA",
        "Book your place here",
    ):
        assert f'"{label}"' in labels


def test_seed_passes_with_no_errors() -> None:
    report = run_checks(SEED, load_settings(ROOT / "cohesion-mail.toml"))
    assert report.errors == [], [f.message for f in report.errors]
    assert report.built and report.html_bytes and report.html_bytes < 80 * 1024
    # The template's own rounded corners, media queries and dark mode are graceful: no warnings.
    assert "css-support" not in rules(report)


def test_cli_check_exits_1_and_lists_the_placeholder_links() -> None:
    result = runner.invoke(app, ["check", str(PLACEHOLDER_FIXTURE)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "campaign.yaml:18" in result.output and "sections[0].link.url" in result.output
    assert "9 errors" in result.output


def test_cli_check_passes_the_seed() -> None:
    result = runner.invoke(app, ["check", str(SEED), "--config", str(ROOT / "cohesion-mail.toml")])
    assert result.exit_code == 0, result.output
    assert "ready to send" in result.output


def test_cli_check_json_is_stable() -> None:
    result = runner.invoke(app, ["check", str(PLACEHOLDER_FIXTURE), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert set(data) == {"campaign", "ok", "errors", "warnings", "built", "html_bytes", "findings"}
    assert data["ok"] is False and data["errors"] == len(
        [f for f in data["findings"] if f["level"] == "error"]
    )
    first = data["findings"][0]
    assert set(first) == {"level", "rule", "where", "message", "fix", "file", "line"}
    assert first == {
        **first,
        "level": "error",
        "rule": "link-placeholder",
        "where": "sections[0].link.url",
        "line": 18,
    }


def test_cli_check_of_a_missing_folder_is_one_error_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no such campaign folder" in result.output and "Traceback" not in result.output


def test_check_or_raise_refuses_with_the_errors_unless_forced() -> None:
    settings = load_settings(ROOT / "cohesion-mail.toml")
    with pytest.raises(CheckFailed) as info:
        check_or_raise(PLACEHOLDER_FIXTURE, settings, force=False)
    message = str(info.value)
    assert "9 errors" in message and "campaign.yaml:18 sections[0].link.url" in message
    assert "--force" in message
    report = check_or_raise(PLACEHOLDER_FIXTURE, settings, force=True)
    assert len(report.errors) == 9
    assert check_or_raise(SEED, settings, force=False).ok


# -- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("#", "link-placeholder"),
        ("", "link-placeholder"),
        ("  ", "link-placeholder"),
        ("javascript:void(0)", "link-placeholder"),
        ("https://example.com/page", "link-placeholder"),
        ("https://www.example.org", "link-placeholder"),
        ("http://news.example.net/x", "link-placeholder"),
        ("https://site.test/", "link-placeholder"),
        ("http://localhost:8000/x", "link-placeholder"),
        ("http://127.0.0.1/x", "link-placeholder"),
        ("http://192.168.1.20/intranet", "link-placeholder"),
        ("www.interregeurope.eu", "link-malformed"),
        ("interregeurope.eu/cohes3ion", "link-malformed"),
        ("https://", "link-malformed"),
        ("https://interregeurope/", "link-malformed"),
        ("https://www.inter regeurope.eu", "link-malformed"),
        ("https://bad_host!.eu/", "link-malformed"),
        ("https://www.x.eu:port/", "link-malformed"),
        ("ftp://files.cohes3ion.eu/report.pdf", "link-malformed"),
        ("mailto:info", "link-malformed"),
        ("http://www.interregeurope.eu", "link-insecure"),
        ("#contact", "link-anchor"),
        ("https://www.interregeurope.eu/cohes3ion", None),
        ("https://news.cohes3ion.eu:8443/a?b=c#d", None),
        ("mailto:info@cohes3ion.eu", None),
        ("tel:+441234567890", None),
        ("*|web_version_url|*", None),
    ],
)
def test_judge_url(url: str, rule: str | None) -> None:
    verdict = judge_url(url)
    assert (verdict.rule if verdict else None) == rule
    if verdict:
        assert verdict.fix and verdict.message


def test_link_problems_name_field_line_and_level(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        ISSUE
        + """\
  - type: text
    body: |
      An [old page](http://www.interregeurope.eu/old) and a [draft](https://example.com/draft)
      and a [script](javascript:alert(1)).
footer:
  social:
    - label: Twitter
      url: twitter.com/cohes3ion
""",
    )
    found = {(f.rule, f.line, f.where) for f in report.findings if f.rule.startswith("link")}
    assert found == {
        ("link-insecure", 15, "sections[1].body"),
        ("link-placeholder", 15, "sections[1].body"),
        ("link-placeholder", 16, "sections[1].body"),
        ("link-malformed", 20, "footer.social[0].url"),
    }
    assert [f.level for f in only(report, "link-insecure")] == ["warning"]


# -- images ------------------------------------------------------------------------------------


def test_images_alt_width_and_missing_files(tmp_path: Path) -> None:
    folder = write_campaign(
        tmp_path,
        ISSUE
        + """\
  - type: article
    title: With a picture
    image:
      src: photo.png
      alt: ""
  - type: spotlight
    title: Spotlight
    name: Partner
    body: "![](logo.png) and ![Map of the regions](https://www.interregeurope.eu/map.png)"
    logo:
      src: missing.png
      alt: Partner logo
      width: 120
""",
    )
    (folder / "photo.png").write_bytes(PNG)
    report = run_checks(folder, settings_for(tmp_path))
    got = sorted(
        (f.level, f.rule, f.where, f.line) for f in report.findings if f.rule.startswith("image")
    )
    assert got == [
        ("error", "image-alt", "sections[1].image.alt", 17),
        ("error", "image-alt", "sections[2].body", 21),
        ("error", "image-missing", "sections[2].body", 21),
        ("error", "image-missing", "sections[2].logo.src", 23),
        ("warning", "image-width", "sections[1].image.width", 15),
        ("warning", "image-width", "sections[2].body", 21),
    ]
    # load_campaign's own "no such file" is not reported a second time.
    assert len([f for f in report.errors if "missing.png" in f.message]) == 1


# -- subject and preheader ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "shouts"),
    [
        ("COHES3ION news: learning journeys and a date for your diary", False),
        ("News from the EU and the UK", False),
        ("Spring news!", False),
        ("BIG NEWS FROM BILBAO", True),
        ("Read this: FREE PLACES LEFT at the conference", True),
        ("Places left!!", True),
        ("Book now!!!", True),
        ("Book now! Places left!", True),
    ],
)
def test_shouting(subject: str, shouts: bool) -> None:
    assert (shouting(subject) is not None) is shouts


def test_subject_and_preheader_rules(tmp_path: Path) -> None:
    long = "A subject line that goes on and on about learning journeys, partners and the diary"
    text = ISSUE.replace("Spring news from the partners", long + "!!")
    text = re.sub(r"preheader: .*", 'preheader: ""', text)
    report = check(tmp_path, text)
    assert sorted(rules(report, "warning")) == [
        "preheader-empty",
        "subject-long",
        "subject-shouting",
    ]
    assert report.ok
    report = check(tmp_path, ISSUE.replace("Learning journeys,", "x" * 130))
    assert rules(report) == ["preheader-long"]


def test_empty_subject_is_one_error_with_its_line(tmp_path: Path) -> None:
    report = check(tmp_path, ISSUE.replace('"Spring news from the partners"', '""'))
    subject = [f for f in report.errors if f.where == "subject"]
    assert [(f.rule, f.line) for f in subject] == [("subject-empty", 1)]


# -- merge fields, footer ----------------------------------------------------------------------


def test_unknown_merge_fields_are_errors_with_lines_not_a_crash(tmp_path: Path) -> None:
    report = check(tmp_path, ISSUE.replace("First story", "Hello *|first_nme|*").replace(
        "Read [the report]", "Dear {{ first_name }}, read [the report]"))  # fmt: skip
    unknown = only(report, "merge-field-unknown")
    assert [(f.where, f.line) for f in unknown] == [("sections[0].title", 8)]
    assert "*|first_nme|*" in unknown[0].message and "first_name" in unknown[0].message
    assert [(f.rule, f.line) for f in report.warnings] == [("merge-field-syntax", 9)]
    assert not report.built  # the build stopped at the merge field; reported once, by us
    assert len(report.errors) == 1


def test_declared_merge_fields_are_known(tmp_path: Path) -> None:
    report = check(tmp_path, ISSUE.replace("First story", "News for *|region|*")
                   + "merge_fields:\n  region: your region\n")  # fmt: skip
    assert report.findings == []


def test_postal_address_must_be_configured(tmp_path: Path) -> None:
    config = tmp_path / "cohesion-mail.toml"
    config.write_text("[list]\nname = 'X'\n", encoding="utf-8")
    report = check(tmp_path, ISSUE, list=ListInfo(), source=config)
    (finding,) = only(report, "postal-address")
    assert finding.level == "error" and finding.where == "list.postal_address"
    assert Path(finding.file).resolve() == config.resolve()
    assert "[list]" in finding.fix
    report = check(tmp_path, ISSUE + "footer:\n  postal_address: ''\n")
    assert [(f.where, f.line) for f in only(report, "postal-address")] == [
        ("footer.postal_address", 14)
    ]


# -- the compiled email and its templates ------------------------------------------------------


def _template(root: Path, name: str, edit: Any) -> None:
    source = (ROOT / "templates" / name).read_text(encoding="utf-8")
    target = root / "templates" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(edit(source), encoding="utf-8")


def test_template_links_images_and_css_are_found_in_the_template(tmp_path: Path) -> None:
    _template(tmp_path, "sections/text.mjml.j2", lambda s: s.replace(
        '<mj-text css-class="copy">',
        '<mj-text css-class="copy"><div style="display: flex; box-shadow: 0 0 4px #000">'
        '<a href="#">More</a><img src="https://www.interregeurope.eu/x.png" /></div>'))  # fmt: skip
    report = check(tmp_path, ISSUE + "  - type: text\n    body: About us.\n")
    template = (tmp_path / "templates/sections/text.mjml.j2").resolve()
    found = {
        (f.rule, f.line) for f in report.findings if f.file and Path(f.file).resolve() == template
    }
    assert found == {
        ("link-placeholder", 7),
        ("image-alt", 7),
        ("image-width", 7),
        ("css-support", 7),
    }
    css = " ".join(f.message for f in only(report, "css-support"))
    assert "display:flex" in css and "Outlook (Windows" in css and "box-shadow" in css
    assert "caniemail.com/features/css-display-flex" in " ".join(
        f.fix for f in only(report, "css-support")
    )


def test_missing_unsubscribe_link_is_an_error(tmp_path: Path) -> None:
    unsubscribe = "<a href=\"{{ merge('unsubscribe_url') }}\""
    other = "<a href=\"{{ merge('web_version_url') }}\""
    _template(tmp_path, "base.mjml.j2", lambda s: s.replace(unsubscribe, other))
    report = check(tmp_path, ISSUE)
    (finding,) = only(report, "unsubscribe-missing")
    assert finding.level == "error" and finding.file.endswith("base.mjml.j2")


def test_postal_address_not_shown_by_the_template_is_an_error(tmp_path: Path) -> None:
    _template(tmp_path, "base.mjml.j2", lambda s: s.replace("{{ footer.postal_address }}", ""))
    report = check(tmp_path, ISSUE)
    assert [f.message for f in only(report, "postal-address")] == [
        "the postal address is set but the email does not show it"
    ]


def _long_issue(paragraphs: int) -> str:
    body = "\n\n".join(
        f"Paragraph {i}: partners from eight regions met in Essen to compare how their "
        "smart specialisation strategies support business growth and new jobs."
        for i in range(paragraphs)
    )
    return ISSUE + "  - type: text\n    body: |\n" + textwrap.indent(body, "      ") + "\n"


def test_gmail_clipping_size(tmp_path: Path) -> None:
    report = check(tmp_path / "big", _long_issue(800))
    (finding,) = only(report, "html-size")
    assert finding.level == "error" and "102 KB" in finding.message
    assert report.html_bytes and report.html_bytes > 102 * 1024
    report = check(tmp_path / "near", _long_issue(380))
    assert [(f.level, f.rule) for f in only(report, "html-size")] == [("warning", "html-size")]


# -- content and template errors become findings -----------------------------------------------


def test_content_error_is_a_finding_with_file_and_line(tmp_path: Path) -> None:
    report = check(
        tmp_path, ISSUE.replace("    title: First story", "    title: First story\n    colour: red")
    )
    (finding,) = report.errors
    assert (finding.rule, finding.where, finding.line) == ("content", "sections[0].colour", 9)
    assert "unknown key" in finding.message and finding.file.endswith("campaign.yaml")
    assert not report.built


def test_yaml_syntax_error_is_a_finding(tmp_path: Path) -> None:
    report = check(tmp_path, ISSUE.replace("label: Read more", "label: [Read more"))
    (finding,) = report.errors
    assert finding.rule == "content" and finding.line and "YAML syntax error" in finding.message


def test_template_error_is_a_finding_with_the_template_line(tmp_path: Path) -> None:
    _template(
        tmp_path,
        "sections/article.mjml.j2",
        lambda s: s.replace("{{ section.title }}", "{{ section.titel }}"),
    )
    report = check(tmp_path, ISSUE)
    (finding,) = report.errors
    assert finding.rule == "template" and finding.file.endswith("article.mjml.j2") and finding.line


def test_error_findings_split_a_multi_problem_message() -> None:
    exc = TemplateError(
        "templates/sections/text.mjml.j2 (sections[1]): output line 3, col 5: malformed MJML\n"
        "  near: <mj-text>"
    )
    (finding,) = error_findings(exc)
    assert (finding.where, finding.file) == ("sections[1]", "templates/sections/text.mjml.j2")
    assert finding.message.endswith("near: <mj-text>")


# -- CSS and its data --------------------------------------------------------------------------


def test_css_tokenizer_reads_nested_rules_and_ignores_comments_and_strings() -> None:
    sheet = """
      /* display: grid; */
      .a { color: red; background: url("x{y}.png") }
      @media only screen and (max-width: 479px) { .b { float: left !important; } }
      @font-face { font-family: X; src: url(x.woff2); }
      @import url(other.css);
      @keyframes spin { from { transform: rotate(0) } }
    """
    items = list(parse_css(sheet))
    assert Declaration("float", "left") in items
    assert Declaration("color", "red") in items
    assert AtRule("media", "only screen and (max-width: 479px)") in items
    assert AtRule("import", "url(other.css)") in items
    assert {i.name for i in items if isinstance(i, AtRule)} == {
        "media",
        "font-face",
        "import",
        "keyframes",
    }
    assert not any(isinstance(i, Declaration) and i.prop in ("display", "transform") for i in items)
    assert list(parse_css("display:flex; margin: -4px 0")) == [
        Declaration("display", "flex"),
        Declaration("margin", "-4px 0"),
    ]


def test_caniemail_data_has_its_source_and_every_client() -> None:
    data = support_data()
    assert "caniemail.com" in data.source["url"] and data.source["curated"]
    assert set(data.clients) == {"gmail", "outlook", "apple-mail"}
    for feature in data.features:
        assert set(feature.support) == set(data.clients), feature.slug
        for platforms in feature.support.values():
            assert set(platforms.values()) <= {"y", "a", "n"}
            assert set(platforms) <= set(data.platforms)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", feature.last_test_date)
        assert feature.graceful or feature.fix, feature.slug


def test_a_theme_logo_at_an_example_address_is_an_error(tmp_path: Path) -> None:
    theme = Theme(logo_url="https://example.com/logo.png", logo_alt="COHES3ION")
    report = check(tmp_path, ISSUE, theme=theme)
    (finding,) = report.errors
    assert finding.rule == "link-placeholder" and "image in the template" in finding.message


# -- translations (issue 7) --------------------------------------------------------------------


def test_untranslated_fields_and_strings_are_one_warning_per_language(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, ISSUE)
    (folder / "campaign.es.yaml").write_text('subject: "Noticias de primavera"\n', encoding="utf-8")
    (folder / "campaign.fr.yaml").write_text(
        "subject: Nouvelles du printemps\npreheader: Voyages d'études\nsections:\n"
        "  - title: Premier\n    body: Lisez le rapport.\n    link: {label: Lire la suite}\n",
        encoding="utf-8",
    )
    # French has no built-in catalogue: the project's fr.yaml translates one string.
    (tmp_path / "templates" / "i18n").mkdir(parents=True)
    (tmp_path / "templates" / "i18n" / "fr.yaml").write_text(
        "messages:\n  unsubscribe: Se désabonner\n", encoding="utf-8"
    )
    report = run_checks(folder, settings_for(tmp_path))
    assert report.errors == [], [f.message for f in report.errors]
    found = only(report, "untranslated")
    assert all(f.level == "warning" for f in found)
    by_where = {f.where: f for f in found}
    es = by_where["campaign.es.yaml"]
    assert es.file and es.file.endswith("campaign.es.yaml")
    assert "'es'" in es.message and "preheader" in es.message and "sections[0].body" in es.message
    assert "subject," not in es.message and "campaign.es.yaml" in es.fix
    assert "campaign.fr.yaml" not in by_where  # fr translates every field
    assert "templates/i18n/es.yaml" not in by_where  # the built-in es catalogue is complete
    fr = by_where["templates/i18n/fr.yaml"]  # one finding listing the strings, not one each
    assert "messages.view_in_browser" in fr.message and "more" in fr.message
    assert "messages.unsubscribe," not in fr.message and "fr.yaml" in fr.fix
    assert sum(f.where.endswith("fr.yaml") for f in found) == 1


def test_a_bad_translation_is_an_error_with_its_file_and_line(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, ISSUE)
    (folder / "campaign.it.yaml").write_text(
        'subject: "Notizie"\nissue:\n  number: 9\n', encoding="utf-8"
    )
    report = run_checks(folder, settings_for(tmp_path))
    bad = [f for f in report.errors if f.file and f.file.endswith("campaign.it.yaml")]
    assert bad and bad[0].line == 2 and bad[0].where == "issue"
    assert "cannot change" in bad[0].message


def test_the_seed_translation_is_complete() -> None:
    report = run_checks(SEED, load_settings(ROOT / "cohesion-mail.toml"))
    assert "untranslated" not in rules(report)
