"""The pipeline: seed output, responsive/inline CSS, placeholder safety, personalisation, errors."""

from __future__ import annotations

import html as htmllib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers_render import (
    MINIMAL,
    PLACEHOLDER_FIXTURE,
    PNG,
    SEED,
    SEED_TEXT,
    make_settings,
    write_campaign,
    write_template,
)

from cohesion_mail.errors import MergeFieldError, TemplateError
from cohesion_mail.render.personalise import CompiledIssue
from cohesion_mail.render.pipeline import build_issue

VALUES = {
    "name": "Alex Example",
    "first_name": "Alex",
    "email": "alex@example.org",
    "unsubscribe_url": "https://news.example.org/u/TOKEN",
    "web_version_url": "https://news.example.org/w/TOKEN",
    "open_pixel_url": "https://news.example.org/o/TOKEN.gif",
}


class Tags(HTMLParser):
    """Every start tag with its attributes, as a browser would decode them."""

    def __init__(self, doc: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(doc)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def all(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def seed_issue() -> CompiledIssue:
    return build_issue(SEED, make_settings(SEED.parent))


@pytest.fixture(scope="module")
def seed_output(seed_issue: CompiledIssue) -> tuple[str, str]:
    return seed_issue.personalise(VALUES)


def test_seed_text_part_has_every_paragraph_of_the_seed_verbatim(
    seed_output: tuple[str, str],
) -> None:
    _, text = seed_output
    flat = words(text)
    seed = SEED_TEXT.read_text(encoding="utf-8")
    paragraphs = [p for p in re.split(r"\n\s*\n", seed) if p.strip()]
    assert len(paragraphs) > 25
    for paragraph in paragraphs:
        plain = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", paragraph)  # [label](url) → label
        # links are followed by their URL in the text part; compare the words around them
        for piece in re.split(r"\[[^\]]+\]\([^)]*\)", paragraph):
            if piece.strip():
                assert words(piece) in flat, piece
        if "](" not in paragraph:
            assert words(plain) in flat, plain


def test_seed_html_has_every_section_and_its_links(seed_output: tuple[str, str]) -> None:
    doc, _ = seed_output
    visible = words(htmllib.unescape(re.sub(r"<[^>]+>", " ", doc)))
    for heading in (
        "Project partners join programme to support business growth",
        "Experts helping to transform the Ruhr",
        "Spotlight on a partner",
        "BEAZ Bizkaia",
        "Exciting programme of visits announced!",
        "Communication Training in Budapest",
        "Date for your diary",
        "Vanguard Initiative Regional Conference",
        "25 March 2020 - Cardiff Castle",
        "26 March - Principality Stadium",
        "ABOUT",
        "interregeurope.eu/cohes3ion",
        "@cohes3ion",
        "Cohes3ion",
        "Book your place here",
    ):
        assert heading in visible, heading
    hrefs = {a.get("href") for a in Tags(doc).all("a")}
    assert "https://twitter.com/cohes3ion" in hrefs
    assert "https://www.linkedin.com/company/cohes3ion" in hrefs
    assert "#" not in hrefs


def test_seed_html_is_responsive_dark_mode_friendly_and_small(
    seed_issue: CompiledIssue, seed_output: tuple[str, str]
) -> None:
    doc, text = seed_output
    assert re.search(r'<html[^>]* lang="en"', doc)
    assert "@media only screen and (min-width:480px)" in doc  # mj-breakpoint: columns stack below
    assert "@media only screen and (max-width: 479px)" in doc  # our mobile rules survive inlining
    assert "prefers-color-scheme: dark" in doc
    assert '<meta name="color-scheme" content="light dark">' in doc
    assert len(seed_issue.html.encode()) < 60 * 1024
    tags = Tags(doc)
    images = tags.all("img")
    assert images and all("alt" in img for img in images)
    pixel = images[-1]
    assert pixel["src"] == VALUES["open_pixel_url"]
    assert (pixel["alt"], pixel["width"], pixel["height"]) == ("", "1", "1")
    assert doc.rfind("<img") > doc.rfind("Unsubscribe")  # the pixel comes last
    # the preheader is hidden in the HTML and absent from the text part
    assert seed_issue.preheader in doc
    assert "display:none" in doc[doc.find("<body") : doc.find(seed_issue.preheader)]
    assert seed_issue.preheader not in text
    assert "\n\n\n" not in text and "TOKEN.gif" not in text


def test_mj_style_inline_rules_are_inlined_not_left_in_head(seed_output: tuple[str, str]) -> None:
    doc, _ = seed_output
    head = doc[: doc.find("<body")]
    assert ".copy p {" not in head
    paragraph = next(
        a for a in Tags(doc).all("p") if "margin" in a.get("style", "")
    )  # from `.copy p { margin: 0 0 16px; }`
    assert "margin: 0 0 16px" in paragraph["style"]
    links = [a for a in Tags(doc).all("a") if a.get("href", "").startswith("https://www.inter")]
    assert any("text-decoration: underline" in a.get("style", "") for a in links)


def test_unsubscribe_and_view_in_browser_links(seed_output: tuple[str, str]) -> None:
    doc, text = seed_output
    hrefs = [a["href"] for a in Tags(doc).all("a")]
    assert VALUES["unsubscribe_url"] in hrefs
    assert hrefs[0] == VALUES["web_version_url"]  # "View in browser" heads the email
    assert f"Unsubscribe <{VALUES['unsubscribe_url']}>" in text
    assert "1 Test Street" in doc and "1 Test Street" in text  # postal address from settings


def test_placeholder_fixture_builds_with_hash_links(tmp_path: Path) -> None:
    issue = build_issue(PLACEHOLDER_FIXTURE, make_settings(tmp_path))
    doc, _ = issue.personalise(VALUES)
    assert sum(1 for a in Tags(doc).all("a") if a.get("href") == "#") >= 8


TRICKY = """\
subject: "Hi *|first_name|*"
preheader: "For *|first_name|*"
issue: {number: 1, date: 2020-02-01}
merge_fields:
  region: "your region"
sections:
  - type: article
    title: "Title for *|first_name|*"
    body: |
      Hello *|first_name|*, literal {{x}} and [[y]] and {% raw %} and <b>bold</b>.

      [Your copy](*|web_version_url|*) · [Region page](https://example.org/r?a=1&b=2)
      in *|region|*.
    image:
      src: https://example.org/pic.png
      alt: "Photo for *|first_name|*"
    link:
      url: https://example.org/story
      label: Read more
  - type: text
    title: Pixel test
    body: "![*|first_name|*](*|open_pixel_url|*)"
"""


@pytest.fixture
def tricky(tmp_path: Path) -> CompiledIssue:
    return build_issue(write_campaign(tmp_path, TRICKY), make_settings(tmp_path))


def test_merge_fields_survive_mjml_and_inlining_in_href_src_and_text(tricky: CompiledIssue) -> None:
    assert {"first_name", "web_version_url", "open_pixel_url", "region"} <= tricky.fields
    assert "*|" not in tricky.html and "*|" not in tricky.text
    name = "Zoë \"<script>&'"
    doc, text = tricky.personalise(VALUES | {"first_name": name})
    tags = Tags(doc)
    # attribute contexts decode back to exactly the value
    assert any(img.get("alt") == f"Photo for {name}" for img in tags.all("img"))
    assert any(img.get("alt") == name for img in tags.all("img"))
    assert any(img.get("src") == VALUES["open_pixel_url"] for img in tags.all("img"))
    assert VALUES["web_version_url"] in [a.get("href") for a in tags.all("a")]
    # text context is escaped, never markup
    assert "<script>" not in doc
    assert "Hello Zoë \"&lt;script&gt;&amp;'," in doc
    assert f"<title>Hi {htmllib.escape(name, quote=False)}</title>" in doc
    # the text part is raw
    assert f"Hello {name}, literal" in text
    assert "in your region." in words(text)  # merge_defaults fill a declared extra field
    assert tricky.personalise_subject(VALUES | {"first_name": "Ann"}) == "Hi Ann"


def test_template_like_editor_text_stays_literal(tricky: CompiledIssue) -> None:
    doc, text = tricky.personalise(VALUES)
    assert "literal {{x}} and [[y]] and {% raw %} and &lt;b&gt;bold&lt;/b&gt;." in doc
    assert "literal {{x}} and [[y]] and {% raw %} and <b>bold</b>." in text


def test_personalise_rewrites_trackable_links_only_in_html(tricky: CompiledIssue) -> None:
    assert tricky.links == ["https://example.org/r?a=1&b=2", "https://example.org/story"]
    seen: list[str] = []

    def click(url: str) -> str:
        seen.append(url)
        return f"https://t.example/c?u={url}&n={len(seen)}"

    doc, text = tricky.personalise(VALUES, click)
    hrefs = [a["href"] for a in Tags(doc).all("a")]
    assert "https://t.example/c?u=https://example.org/r?a=1&b=2&n=1" in hrefs
    assert "https://t.example/c?u=https://example.org/story&n=2" in hrefs
    assert VALUES["web_version_url"] in hrefs and VALUES["unsubscribe_url"] in hrefs
    assert "https://example.org/story" not in hrefs
    assert "<https://example.org/story>" in text  # the text part keeps the real targets
    untracked, _ = tricky.personalise(VALUES)
    assert "https://example.org/story" in [a["href"] for a in Tags(untracked).all("a")]


def test_to_json_round_trip(tricky: CompiledIssue) -> None:
    again = CompiledIssue.from_json(tricky.to_json())
    assert again == tricky
    assert again.links == tricky.links and again.fields == tricky.fields
    assert again.personalise(VALUES) == tricky.personalise(VALUES)


def test_missing_value_is_an_error(tricky: CompiledIssue) -> None:
    values = dict(VALUES)
    del values["first_name"]
    with pytest.raises(MergeFieldError, match="first_name"):
        tricky.personalise(values)


def test_unknown_merge_field_in_content_names_file_line_and_field(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, MINIMAL.replace("Some text.", "Dear *|nickname|*"))
    with pytest.raises(MergeFieldError) as info:
        build_issue(folder, make_settings(tmp_path))
    message = str(info.value)
    assert "test-issue/campaign.yaml:9: sections[0].body: unknown merge field 'nickname'" in message


def test_unknown_merge_field_in_template_names_the_template(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "sections/article.mjml.j2",
        '<mj-section><mj-column><mj-text><a href="{{ merge("nope_url") }}">x</a>'
        "</mj-text></mj-column></mj-section>\n",
    )
    folder = write_campaign(tmp_path, MINIMAL)
    with pytest.raises(MergeFieldError, match=r"templates/sections/article\.mjml\.j2.*'nope_url'"):
        build_issue(folder, make_settings(tmp_path))


def test_malformed_mjml_reports_template_and_position(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "sections/article.mjml.j2",
        "<mj-section>\n  <mj-column>\n    <mj-text>{{ section.title }}<br></mj-text>\n"
        "  </mj-column>\n</mj-section>\n",
    )
    folder = write_campaign(tmp_path, MINIMAL)
    with pytest.raises(TemplateError) as info:
        build_issue(folder, make_settings(tmp_path))
    message = str(info.value)
    assert "templates/sections/article.mjml.j2 (sections[0]): output line 3, col " in message
    assert "mismatched tag" in message and "near: <mj-text>First story<br></mj-text>" in message


def test_unknown_mjml_tag_reports_template_and_position(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "sections/article.mjml.j2",
        "<mj-section>\n  <mj-column>\n    <mj-txt>{{ section.title }}</mj-txt>\n"
        "  </mj-column>\n</mj-section>\n",
    )
    folder = write_campaign(tmp_path, MINIMAL)
    with pytest.raises(TemplateError, match=r"article\.mjml\.j2 \(sections\[0\]\): output line 3, "
                       r"col 5: unknown MJML tag <mj-txt>"):  # fmt: skip
        build_issue(folder, make_settings(tmp_path))


def test_undefined_template_variable_is_an_error_with_line(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "sections/article.mjml.j2",
        "<mj-section>\n<mj-column><mj-text>{{ section.subtitle }}</mj-text></mj-column>\n"
        "</mj-section>\n",
    )
    folder = write_campaign(tmp_path, MINIMAL)
    with pytest.raises(TemplateError, match=r"article\.mjml\.j2:2: .*subtitle"):
        build_issue(folder, make_settings(tmp_path))


def test_theme_override_and_local_image_url(tmp_path: Path) -> None:
    yaml_text = MINIMAL + (
        "    image:\n      src: img/photo one.png\n      alt: A photo\n"
        "theme:\n  primary: '#123456'\n"
    )
    folder = write_campaign(tmp_path, yaml_text, slug="2020-03-x")
    (folder / "img").mkdir()
    (folder / "img" / "photo one.png").write_bytes(PNG)
    issue = build_issue(folder, make_settings(tmp_path))
    doc, _ = issue.personalise(VALUES)
    assert "#123456" in doc
    srcs = [img["src"] for img in Tags(doc).all("img")]
    assert "https://news.example.org/campaigns/2020-03-x/img/photo%20one.png" in srcs


def test_campaign_click_tracking_overrides_settings(tmp_path: Path) -> None:
    on = build_issue(write_campaign(tmp_path, MINIMAL), make_settings(tmp_path))
    off = build_issue(
        write_campaign(tmp_path, MINIMAL + "click_tracking: false\n", slug="off"),
        make_settings(tmp_path),
    )
    assert on.click_tracking is True and off.click_tracking is False
    assert CompiledIssue.from_json(off.to_json()).click_tracking is False
