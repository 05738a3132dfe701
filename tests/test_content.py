"""The campaign model: the seed loads; every kind of mistake names file, line and field."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from helpers_render import MINIMAL, PLACEHOLDER_FIXTURE, PNG, SEED, write_campaign

from cohesion_mail.content import (
    ArticleSection,
    EventsSection,
    SpotlightSection,
    TextSection,
    load_campaign,
)
from cohesion_mail.errors import ContentError


def error_for(tmp_path: Path, yaml_text: str) -> str:
    folder = write_campaign(tmp_path, yaml_text)
    with pytest.raises(ContentError) as info:
        load_campaign(folder)
    return str(info.value)


def test_seed_campaign_loads_with_every_section_in_order() -> None:
    campaign = load_campaign(SEED)
    kinds = [type(s) for s in campaign.sections]
    assert kinds == [
        ArticleSection, ArticleSection, SpotlightSection, ArticleSection, ArticleSection,
        EventsSection, TextSection,
    ]  # fmt: skip
    spotlight = campaign.sections[2]
    assert isinstance(spotlight, SpotlightSection)
    assert spotlight.links[0].label == "Read more about BEAZ Bizkaia here"
    for name in ("BIC Bizkaia", "Bizkaia Orekan", "ORKESTRA"):
        assert f"[{name}](https://www.interregeurope.eu/cohes3ion)" in spotlight.body
    diary = campaign.sections[5]
    assert isinstance(diary, EventsSection) and diary.style == "diary"
    when = [(d.date, d.format, d.place) for d in diary.items[0].when]
    assert when == [
        (dt.date(2020, 3, 25), "date", "Cardiff Castle"),
        (dt.date(2020, 3, 26), "day_month", "Principality Stadium"),
    ]
    assert campaign.issue.date == dt.date(2020, 2, 1)
    assert [s.label for s in campaign.footer.social] == ["@cohes3ion", "Cohes3ion"]
    assert campaign.footer.web is not None
    assert campaign.footer.web.label == "interregeurope.eu/cohes3ion"


def test_seed_leaves_no_placeholder_links_but_the_fixture_keeps_them() -> None:
    assert "(#)" not in (SEED / "campaign.yaml").read_text(encoding="utf-8")
    fixture = load_campaign(PLACEHOLDER_FIXTURE)
    first = fixture.sections[0]
    assert isinstance(first, ArticleSection) and first.link is not None
    assert first.link.url == "#"


def test_bad_url_names_file_line_and_field_path(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        MINIMAL
        + """\
  - type: article
    title: Second
    link:
      url: www.example.org
      label: Go
""",
    )
    assert re.search(r"test-issue/campaign\.yaml:13: sections\[1\]\.link\.url: not a URL", message)


def test_unknown_section_type_and_missing_type(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        MINIMAL
        + """\
  - type: gallery
    title: Pictures
  - title: No type here
""",
    )
    assert ":10: sections[1].type: unknown section type 'gallery'" in message
    assert "article, spotlight, events, text" in message
    assert ":12: sections[2]: missing type:" in message


def test_unknown_key_names_the_key_and_the_known_ones(tmp_path: Path) -> None:
    message = error_for(tmp_path, MINIMAL + "    subtitle: oops\n")
    assert ":10: sections[0].subtitle: unknown key 'subtitle'" in message
    assert "known: type, id, title, body, image, link" in message


def test_unknown_theme_key_is_an_error(tmp_path: Path) -> None:
    message = error_for(tmp_path, MINIMAL + "theme:\n  primary: '#000000'\n  colour: red\n")
    assert ":12: theme.colour: unknown theme key 'colour'" in message
    assert "accent" in message


def test_missing_subject_and_wrong_types_are_listed_together(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        """\
        issue:
          date: someday
        sections:
          - type: text
            title: 2020
            body: Text
        """,
    )
    lines = message.splitlines()
    assert any(line.endswith("subject: missing (required)") for line in lines)
    assert any(":2: issue.date: expected a date like 2020-02-01" in line for line in lines)
    assert any(":5: sections[0].title: expected text, got 2020" in line for line in lines)


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    message = error_for(tmp_path, "subject: Hi\nissue: {number: 1\nsections: []\n")
    assert re.search(r"campaign\.yaml:3:\d+: YAML syntax error: ", message)


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    message = error_for(tmp_path, MINIMAL + "subject: again\n")
    assert ":10: subject: duplicate key" in message


def test_event_needs_a_date(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        MINIMAL
        + """\
  - type: events
    title: Coming up
    items:
      - title: Undated
""",
    )
    assert ":13: sections[1].items[0]: needs a date:" in message


def test_local_image_must_exist_inside_the_folder(tmp_path: Path) -> None:
    image = """\
    image:
      src: {src}
      alt: A photo
"""
    folder = write_campaign(tmp_path, MINIMAL + image.format(src="photo.png"))
    with pytest.raises(ContentError, match=r":11: sections\[0\]\.image\.src: no such file"):
        load_campaign(folder)
    (folder / "photo.png").write_bytes(PNG)
    assert load_campaign(folder).sections[0].image is not None  # type: ignore[union-attr]

    outside = write_campaign(tmp_path, MINIMAL + image.format(src="../photo.png"), slug="other")
    with pytest.raises(ContentError, match="a path inside the campaign folder"):
        load_campaign(outside)


def test_image_needs_alt_text(tmp_path: Path) -> None:
    message = error_for(tmp_path, MINIMAL + "    image:\n      src: https://example.org/a.png\n")
    assert "sections[0].image.alt: missing (required)" in message


def test_merge_field_declarations_are_checked(tmp_path: Path) -> None:
    message = error_for(tmp_path, MINIMAL + "merge_fields:\n  Region: x\n  email: y\n")
    assert "merge_fields: merge field 'Region': use lower-case letters" in message


def test_missing_folder_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="no such campaign folder"):
        load_campaign(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ContentError, match=r"campaign\.yaml: missing"):
        load_campaign(tmp_path / "empty")
