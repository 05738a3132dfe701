"""Reading a subscriber list the way spreadsheets actually export it.

Excel, LibreOffice and Google Sheets disagree on everything that matters here: the encoding
(UTF-8 with or without a BOM, Windows-1252 from "CSV (Comma delimited)" in older Excel, UTF-16
from "Unicode Text"), the delimiter (Excel uses ``;`` where the decimal separator is a comma —
Spain, Italy, Germany, Poland, Romania, Sweden: every partner country but two), and the header
names. We accept all of that, and report every row we cannot use with its physical line number
(the header is line 1) so that nothing is ever dropped or sent silently.

``iter_csv`` streams a file: its memory stays flat however long the list (``send`` uses it, with
duplicates merged in the database). ``read_csv`` keeps every row in a list (about 600 bytes a
row: 60 MB for 100,000 subscribers), because it merges duplicates into the first row, wherever
the later one is.
"""

from __future__ import annotations

import codecs
import csv
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email

try:  # the library's own dot-atom pattern, so the shortcut in normalise_address agrees with it
    from email_validator.rfc_constants import DOT_ATOM_TEXT as _DOT_ATOM
    from email_validator.rfc_constants import EMAIL_MAX_LENGTH as _MAX_LENGTH
except ImportError:  # pragma: no cover - a future email-validator: the full check still works
    _DOT_ATOM, _MAX_LENGTH = None, 0  # type: ignore[assignment]

from ..errors import SubscriberError
from ..render.fields import FIELD_NAME, STANDARD_FIELDS, field_name
from .db import SUBSCRIBER_STATUSES

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}

# Header names per role, compared after _header_key (case, accents, spaces and punctuation
# ignored: "E-Mail Address", "email_address" and "Email address" are all "emailaddress").
ROLES: dict[str, frozenset[str]] = {
    "email": frozenset({"email", "emailaddress", "mail", "mailaddress"}),
    "name": frozenset({"name", "fullname"}),
    "first_name": frozenset({"firstname", "givenname", "forename"}),
    "last_name": frozenset({"lastname", "surname", "familyname"}),
    "organisation": frozenset({"organisation", "organization", "company"}),
    "country": frozenset({"country"}),
    "language": frozenset({"language", "lang"}),
    # Written by export_csv, so an exported list imports back without losing suppressions.
    "status": frozenset({"status"}),
    "status_reason": frozenset({"statusreason"}),
    "status_changed_at": frozenset({"statuschangedat"}),
}
_ROLE_OF = {alias: role for role, aliases in ROLES.items() for alias in aliases}

# What export_csv prefixes with a quote so a spreadsheet shows text, not a formula (OWASP
# "CSV injection"); read back, the quote is removed again so an export round-trips.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Control characters, including the Unicode line and paragraph separators: none may reach a
# header (RFC 5322 §2.2: header field bodies must not contain CR or LF).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r"\s+")
# The fast path of _clean: a cell without these needs only strip().
_NEEDS_CLEANING = re.compile(
    r"[^\S ]|  |^'|[\x00-\x1f\x7f-\x9f\u200b-\u200d\u2028\u2029\u2060\ufeff]"
)
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ADDRESS_LIKE = re.compile(r"[^\s@,;\"]+@[^\s@,;\"]+\.[^\s@,;\"]+")
_SEP_LINE = re.compile(r"^sep=(.)$", re.IGNORECASE)


@dataclass(slots=True)
class SubscriberRow:
    """One usable row of a subscriber file.

    ``email`` is email-validator's normalised form (domain lower-cased, Unicode NFC); compare
    addresses with ``email.lower()``. ``smtputf8`` marks a non-ASCII local part, which can only
    be delivered to a server offering SMTPUTF8 (RFC 6531). ``status`` is set only when the file
    itself says a row is unsubscribed, bounced or complained (an exported list).
    """

    email: str
    name: str = ""
    first_name: str = ""
    last_name: str = ""
    organisation: str = ""
    country: str = ""
    language: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0
    smtputf8: bool = False
    status: str = ""
    status_reason: str = ""

    def merge_values(self) -> dict[str, str]:
        """The values for the merge fields of one message (extra columns first, never over ours)."""
        values = dict(self.fields)
        values.update(
            name=self.name,
            first_name=self.first_name,
            last_name=self.last_name,
            email=self.email,
            organisation=self.organisation,
            country=self.country,
            language=self.language,
        )
        return values


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row that was not imported: its physical line number, why, and its text as read."""

    line: int
    reason: str
    raw: str


@dataclass(slots=True)
class ImportResult:
    """What reading (and, for ``import_csv``, storing) a subscriber file gave.

    ``added``/``updated``/``unchanged``/``kept_suppressed`` are filled by ``import_csv`` only.
    """

    path: Path
    rows: list[SubscriberRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_suppressed: int = 0


def normalise_address(value: str) -> tuple[str, bool]:
    """``(normalised address, smtputf8)``; raises ``EmailNotValidError`` with the reason.

    Syntax only: no DNS, because an import must work offline and a list of 100,000 rows must not
    mean 100,000 lookups. Non-ASCII local parts are allowed (RFC 6531) and flagged.

    email-validator spends most of its time on the domain (IDNA/UTS-46 checks), and a list has
    few distinct domains: an ASCII dot-atom local part (which the library returns unchanged)
    at a domain it has already accepted takes a shortcut that gives the library's exact result.
    """
    local, at, domain = value.rpartition("@")
    if (
        at
        and _DOT_ATOM is not None
        and len(value) <= _MAX_LENGTH
        and value.isascii()
        and _DOT_ATOM.fullmatch(local)
    ):
        normalised_domain = _ascii_domain(domain)
        if normalised_domain is not None:
            return f"{local}@{normalised_domain}", False
    result = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    return result.normalized, bool(result.smtputf8)


@functools.lru_cache(maxsize=8192)
def _ascii_domain(domain: str) -> str | None:
    """The library's normalised form of an ASCII domain, or ``None`` if it rejects it."""
    try:
        result = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return str(result.domain)


# Native names, for lists where someone typed "Deutsch" rather than "de": the EU's official
# languages and the partners' regional ones. English names come from Babel's CLDR data.
_NATIVE_NAMES = {
    "български": "bg", "català": "ca", "čeština": "cs", "cymraeg": "cy", "dansk": "da",
    "deutsch": "de", "ελληνικά": "el", "english": "en", "español": "es", "castellano": "es",
    "eesti": "et", "euskara": "eu", "suomi": "fi", "français": "fr", "gaeilge": "ga",
    "galego": "gl", "hrvatski": "hr", "magyar": "hu", "italiano": "it", "lietuvių": "lt",
    "latviešu": "lv", "malti": "mt", "nederlands": "nl", "norsk": "no", "polski": "pl",
    "português": "pt", "română": "ro", "slovenčina": "sk", "slovenščina": "sl",
    "svenska": "sv", "türkçe": "tr", "українська": "uk",
}  # fmt: skip


@functools.cache
def _languages() -> tuple[frozenset[str], dict[str, str]]:
    """ISO 639-1 codes, and language names → code ("Spanish", "español" → es)."""
    from babel import Locale

    english: dict[str, str] = {str(k): str(v) for k, v in Locale("en").languages.items()}
    codes = frozenset(code for code in english if len(code) == 2 and code.isalpha())
    names = {english[code].casefold(): code for code in sorted(codes)}
    names.update(_NATIVE_NAMES)
    return codes, names


def normalise_language(value: str) -> str | None:
    """A lower-case ISO 639-1 code from what people type: ``es-ES``, ``ES``, ``pt_BR``, ``Spanish``.

    ``""`` for an empty value, ``None`` when the value names no language we know.
    """
    value = value.strip()
    if not value:
        return ""
    codes, names = _languages()
    primary = re.split(r"[-_\s.@]", value, maxsplit=1)[0].lower()
    if primary in codes:
        return primary
    name = value.split("(")[0].strip().casefold()
    return names.get(name)


def _header_key(header: str) -> str:
    decomposed = unicodedata.normalize("NFKD", header.strip(_INVISIBLE + " \t").casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and ch.isascii())


def _clean(value: str) -> tuple[str, bool]:
    """One cell as a single line of text; ``True`` when a line break or control char was removed."""
    if not _NEEDS_CLEANING.search(value):
        return value.strip(), False
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_START:
        value = value[1:]  # our own formula-injection guard from export_csv
    cleaned, count = _CONTROL.subn(" ", value)
    return _SPACES.sub(" ", cleaned).strip(_INVISIBLE + " "), count > 0


_CHUNK = 1 << 20
_SHARED_MAX = 10_000  # distinct short cell values kept as one shared string each


def _encoding(path: Path) -> tuple[str, str | None]:
    """The encoding to read ``path`` with and, when we had to guess it, a warning naming the file.

    One pass over the file in 1 MB chunks (memory stays flat): a UTF-8 error anywhere means
    the whole file is read as Windows-1252 (or Latin-1, which decodes any byte).
    """
    try:
        with path.open("rb") as fh:
            first = fh.read(4)
            if first.startswith(b"PK\x03\x04"):
                raise SubscriberError(
                    f"{path}: this is a spreadsheet workbook (.xlsx/.ods), not a CSV file",
                    hint="in the spreadsheet use File › Save As… › 'CSV UTF-8 (Comma delimited)'",
                )
            fh.seek(0)
            if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                try:
                    _scan(fh, "utf-16")
                except UnicodeDecodeError as exc:
                    raise SubscriberError(
                        f"{path}: starts like UTF-16 but is not valid UTF-16 ({exc.reason})",
                        hint="save the file again as 'CSV UTF-8'",
                    ) from exc
                return "utf-16", None
            try:
                _scan(fh, "utf-8-sig")
                return "utf-8-sig", None
            except _BadByte as bad:
                line = bad.line
            fh.seek(0)
            try:
                _scan(fh, "cp1252")
                encoding, name = "cp1252", "Windows-1252 (cp1252)"
            except _BadByte:
                encoding, name = "latin-1", "Latin-1"
    except OSError as exc:
        raise SubscriberError(
            f"{path}: cannot read the subscriber file: {exc.strerror or exc}",
            hint="check the path ([send] subscribers in cohesion-mail.toml sets the default)",
        ) from exc
    return encoding, (
        f"{path}: not valid UTF-8 (first bad byte on line {line}); read as {name}. "
        "Check that accented names look right, or save the file as 'CSV UTF-8'."
    )


class _BadByte(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def _scan(fh: Any, encoding: str) -> None:
    """Decode the whole of ``fh`` chunk by chunk; ``_BadByte`` (UTF-16: ``UnicodeDecodeError``)
    at the first undecodable byte. A NUL character means it is not a text file at all."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 0
    while True:
        chunk = fh.read(_CHUNK)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            if encoding == "utf-16":
                raise
            raise _BadByte(lines + chunk.count(b"\n", 0, exc.start) + 1) from None
        if "\x00" in text:
            raise SubscriberError(
                f"{fh.name}: contains NUL bytes, so it is not a text CSV file "
                "(UTF-16 without a BOM?)",
                hint="save the file again as 'CSV UTF-8'",
            )
        if not chunk:
            return
        lines += chunk.count(b"\n")


def _parse_header(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def _email_column(header: list[str]) -> int | None:
    for index, name in enumerate(header):
        if _ROLE_OF.get(_header_key(name)) == "email":
            return index
    return None


def _choose_delimiter(path: Path, text: str, header_line: str, header_no: int) -> str:
    """The delimiter under which the header has an email column.

    ``csv.Sniffer`` gets the first say (it looks at several rows), then the candidates by how
    often they occur in the header line; the header decides, because the sniffer is easily
    fooled by commas inside organisation names.
    """
    order: list[str] = []
    try:
        sniffed = csv.Sniffer().sniff(text[:16384], delimiters="".join(DELIMITERS)).delimiter
        order.append(sniffed)
    except csv.Error:
        pass
    for candidate in sorted(DELIMITERS, key=header_line.count, reverse=True):
        if candidate not in order:
            order.append(candidate)
    for candidate in order:
        if _email_column(_parse_header(header_line, candidate)) is not None:
            return candidate
    best = max((_parse_header(header_line, d) for d in order), key=len)
    found = ", ".join(repr(h) for h in best) or "(none)"
    if any("@" in h for h in best):
        hint = "the first line looks like data: add a header line such as 'email,name,country'"
    elif len(best) == 1 and re.search(r"[,;\t|:]", best[0]):
        hint = (
            "the whole header was read as one column — wrong delimiter? Separate the columns "
            "with commas, semicolons or tabs (in a spreadsheet: Save As › CSV)"
        )
    else:
        hint = "name the address column 'email' (also accepted: e-mail, email address, mail)"
    raise SubscriberError(
        f"{path}: line {header_no}: no email column in the header; columns found: {found}",
        hint=hint,
    )


@dataclass(slots=True)
class _Columns:
    """Which column holds what, decided once from the header."""

    roles: dict[str, int]
    extras: list[tuple[int, str, str]]  # (index, header, merge field name)
    ignored: dict[int, str]  # index → header, for columns whose values we cannot use


def _map_header(header: list[str], warnings: list[str], header_no: int) -> _Columns:
    roles: dict[str, int] = {}
    extras: list[tuple[int, str, str]] = []
    ignored: dict[int, str] = {}
    taken: dict[str, str] = {}
    where = f"line {header_no}"
    for index, raw in enumerate(header):
        header_text = raw.strip(_INVISIBLE + " \t")
        role = _ROLE_OF.get(_header_key(header_text))
        if role is not None:
            if role in roles:
                warnings.append(
                    f"{where}: column {index + 1} {header_text!r} repeats the {role} column "
                    f"(column {roles[role] + 1}); its values are ignored"
                )
                ignored[index] = header_text
            else:
                roles[role] = index
            continue
        if not header_text:
            ignored[index] = ""
            continue
        name = field_name(header_text)
        problem = ""
        if not FIELD_NAME.match(name):
            problem = f"cannot be a merge field (it must start with a letter: {name!r})"
        elif name in STANDARD_FIELDS:
            problem = f"is the merge field {name!r} that cohesion-mail fills itself"
        elif name in taken:
            problem = f"gives the same merge field {name!r} as column {taken[name]!r}"
        if problem:
            warnings.append(f"{where}: column {header_text!r} {problem}; its values are ignored")
            ignored[index] = header_text
            continue
        taken[name] = header_text
        extras.append((index, header_text, name))
    return _Columns(roles, extras, ignored)


def _swallowed_lines(record: list[str], delimiter: str, width: int) -> bool:
    """An unbalanced ``"`` makes the reader glue the following rows into one field.

    Told apart from a name with a line break in it (which we keep, as one line) by what follows
    the break: a line with an address and about as many delimiters as a row has.
    """
    for value in record:
        for part in _LINE_BREAK.split(value)[1:]:
            gaps = part.count(delimiter)
            if gaps and 2 * (gaps + 1) >= width and _ADDRESS_LIKE.search(part):
                return True
    return False


def iter_csv(path: Path, result: ImportResult | None = None) -> Iterator[SubscriberRow]:
    """Stream a subscriber file's usable rows in file order; memory stays flat.

    The same reading as ``read_csv`` (encodings, delimiters, headers, every rejected row with its
    line) except that duplicates are *not* merged: every row is yielded and the caller decides
    (the send loop lets the database keep the first). Rejected rows and warnings are appended
    to ``result`` as the reading goes. ``SubscriberError`` when the file cannot be used at all.
    """
    path = Path(path)
    result = result if result is not None else ImportResult(path=path)
    encoding, warning = _encoding(path)
    if warning:
        result.warnings.append(warning)
    with path.open(encoding=encoding, newline="") as fh:
        head = _strip_bom(fh.read(16384))  # what csv.Sniffer looks at
        fh.seek(0)
        # The first non-blank physical lines (numbered as csv.reader counts them).
        lines = (
            (number, line.rstrip("\r\n"))
            for number, line in enumerate(_lines(fh), start=1)
            if line.strip(_INVISIBLE + " \t\r\n,;")
        )
        header_no, header_line = next(lines, (0, ""))
        if not header_no:
            raise SubscriberError(
                f"{path}: the file is empty",
                hint="the first line must be a header with an 'email' column",
            )
        sep = _SEP_LINE.match(header_line)
        if sep:  # Excel's "sep=;" first line names the delimiter
            header_no, header_line = next(lines, (header_no + 1, ""))
            delimiter = sep.group(1)
            if _email_column(_parse_header(header_line, delimiter)) is None:
                delimiter = _choose_delimiter(path, head, header_line, header_no)
        else:
            delimiter = _choose_delimiter(path, head, header_line, header_no)
        fh.seek(0)
        yield from _Parser(result, delimiter).run(_lines(fh), header_no)


def _strip_bom(text: str) -> str:
    """Drop a UTF-8 byte order mark a fallback encoding read as characters."""
    return text.removeprefix("\ufeff").removeprefix("\u00ef\u00bb\u00bf")


def _lines(fh: Any) -> Iterator[str]:
    """Physical lines with their endings (``\\n``, ``\\r\\n`` or a lone ``\\r``, as
    ``newline=""`` keeps them), lazily, without a leading byte order mark."""
    first = True
    for line in fh:
        yield _strip_bom(line) if first else line
        first = False


def read_csv(path: Path) -> ImportResult:
    """Read a subscriber file: usable rows, rejected rows with reasons, and warnings.

    Raises ``SubscriberError`` only when the file cannot be used at all (unreadable, no email
    column). Everything else is reported per line: empty or invalid addresses are rejected,
    duplicates are merged (first row wins, later rows fill its blanks), line breaks in names
    are replaced by spaces so a name can never inject a header.
    """
    result = ImportResult(path=Path(path))
    seen: dict[str, SubscriberRow] = {}
    for row in iter_csv(path, result):
        key = row.email.lower()
        first = seen.get(key)
        if first is not None:
            _merge_duplicate(first, row)
            result.warnings.append(
                f"line {row.line}: {row.email} duplicates line {first.line}; merged "
                "(the first row wins, this one only fills its blank cells)"
            )
            continue
        seen[key] = row
        result.rows.append(row)
    return result


class _Parser:
    """One pass over the records: map the header, then turn each record into a row or a reject."""

    def __init__(self, result: ImportResult, delimiter: str) -> None:
        self.result = result
        self.delimiter = delimiter
        self.columns = _Columns({}, [], {})
        self.width = 0
        self.warned_blank_header = False
        # Countries, languages and merge-field values repeat down a list: keep one copy each.
        self.shared: dict[str, str] = {}

    def run(self, lines: Iterable[str], header_no: int) -> Iterator[SubscriberRow]:
        reader = csv.reader(lines, delimiter=self.delimiter)
        end = 0
        try:
            for record in reader:
                start, end = end + 1, reader.line_num
                if start < header_no:
                    continue
                if start == header_no:
                    self.columns = _map_header(record, self.result.warnings, header_no)
                    self.width = len(record)
                    continue
                if any(value.strip(_INVISIBLE + " \t") for value in record):
                    row = self.record(record, start, end)
                    if row is not None:
                        yield row
                # else: an empty line, or a spreadsheet's ",,,,": skipped
        except csv.Error as exc:
            raise SubscriberError(
                f"{self.result.path}: line {reader.line_num}: cannot parse the CSV: {exc}",
                hint='look for an unbalanced double quote (") on or before this line',
            ) from exc

    def reject(self, line: int, record: list[str], reason: str) -> None:
        raw = self.delimiter.join(record)
        raw = raw if len(raw) <= 300 else raw[:297] + "..."
        self.result.rejected.append(Rejected(line, reason, raw))

    def record(self, record: list[str], start: int, end: int) -> SubscriberRow | None:
        width = self.width
        if end > start and _swallowed_lines(record, self.delimiter, width):
            self.reject(
                start,
                record,
                f"unbalanced double quote: lines {start}–{end} were read as one row; "
                'close or remove the stray " and import again',
            )
            return None
        if len(record) > width and any(v.strip() for v in record[width:]):
            self.reject(
                start,
                record,
                f"{len(record)} values but the header has {width} columns — an unquoted "
                f"{DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))} inside a value? "
                "Put that value in double quotes",
            )
            return None
        if len(record) < width:
            record = record + [""] * (width - len(record))
        if self.columns.ignored and not self.warned_blank_header:
            for index, header in self.columns.ignored.items():
                if header == "" and record[index].strip():
                    self.result.warnings.append(
                        f"line {start}: column {index + 1} has no header; its values are "
                        "ignored (give it a header to use it as a merge field)"
                    )
                    self.warned_blank_header = True
                    break
        return _make_row(
            record,
            self.columns,
            start,
            lambda reason: self.reject(start, record, reason),
            self.result.warnings,
            self.shared,
        )


def _make_row(
    record: list[str],
    columns: _Columns,
    line: int,
    reject: Callable[[str], None],
    warnings: list[str],
    shared: dict[str, str],
) -> SubscriberRow | None:
    roles = columns.roles

    def share(value: str) -> str:
        # Bounded, so a streamed list keeps flat memory even with a column of unique values.
        kept = shared.get(value)
        if kept is not None:
            return kept
        if len(value) <= 40 and len(shared) < _SHARED_MAX:
            shared[value] = value
        return value

    def cell(role: str) -> str:
        index = roles.get(role)
        if index is None:
            return ""
        value, had_control = _clean(record[index])
        if had_control:
            warnings.append(
                f"line {line}: the {role.replace('_', ' ')} contained a line break or control "
                "character; replaced by a space"
            )
        return value

    raw_email = record[roles["email"]]
    email = raw_email.strip(_INVISIBLE + " \t\u00a0")
    if len(email) > 1 and email[0] == "'" and email[1] in FORMULA_START:
        email = email[1:]
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:") :]
    if not email:
        reject("empty email")
        return None
    if _LINE_BREAK.search(email):
        reject(f"the email cell contains a line break: {email!r}")
        return None
    try:
        address, smtputf8 = normalise_address(email)
    except EmailNotValidError as exc:
        reject(f"invalid address {email!r}: {exc}")
        return None

    first, last = cell("first_name"), cell("last_name")
    name = cell("name") or " ".join(part for part in (first, last) if part)
    language_text = cell("language")
    language = normalise_language(language_text)
    if language is None:
        warnings.append(
            f"line {line}: language {language_text!r} is not an ISO 639-1 code (such as 'es'); "
            "left empty, so the default language is used"
        )
        language = ""
    status = cell("status").lower()
    if status not in ("", *SUBSCRIBER_STATUSES):
        warnings.append(
            f"line {line}: status {status!r} is not one of {', '.join(SUBSCRIBER_STATUSES)}; "
            "ignored"
        )
        status = ""
    fields: dict[str, str] = {}
    for index, header, name_ in columns.extras:
        value, had_control = _clean(record[index])
        if had_control:
            warnings.append(
                f"line {line}: column {header!r} contained a line break or control character; "
                "replaced by a space"
            )
        fields[name_] = share(value)
    return SubscriberRow(
        email=address,
        name=name,
        first_name=first,
        last_name=last,
        organisation=cell("organisation"),
        country=share(cell("country")),
        language=language,
        fields=fields,
        line=line,
        smtputf8=smtputf8,
        status="" if status == "subscribed" else status,
        status_reason=cell("status_reason"),
    )


def _merge_duplicate(first: SubscriberRow, later: SubscriberRow) -> None:
    """Fill the first row's blank values from a later row with the same address."""
    for attr in ("name", "first_name", "last_name", "organisation", "country", "language"):
        if not getattr(first, attr) and getattr(later, attr):
            setattr(first, attr, getattr(later, attr))
    for key, value in later.fields.items():
        if value and not first.fields.get(key):
            first.fields[key] = value
    # A suppression anywhere in the file wins: never send to someone a row says has left.
    if later.status and later.status != "subscribed" and not first.status:
        first.status, first.status_reason = later.status, later.status_reason
