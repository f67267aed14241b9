"""How result objects show themselves: a one-line ``repr`` and, in notebooks, their tables as HTML."""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


#: The longest ``repr`` of a result object: one line.
REPR_MAX = 200


#: Rows of a table shown by a result's ``_repr_html_`` (notebooks); the rest are elided by pandas.
HTML_MAX_ROWS = 60


def one_line(text: str) -> str:
    """``text`` on one line of at most :data:`REPR_MAX` characters (a longer one is cut, ending ``...>``)."""
    text = " ".join(text.split())
    return text if len(text) <= REPR_MAX else text[: REPR_MAX - 4] + "...>"


def who(subject: Any, session: Any) -> str:
    """``sub-01 ses-02``, ``sub-01`` or empty."""
    return " ".join(f"{prefix}-{label}" for prefix, label in (("sub", subject), ("ses", session)) if label)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 lesion``, ``3 lesions`` (``plural`` when adding an s will not do)."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def amount(value: Any) -> str:
    """A number for a one-line summary: at most two decimals, no trailing zeros (12.4, 0.05, 1234); n/a when
    it is not a number."""
    try:
        return f"{round(float(value), 2):g}"
    except (TypeError, ValueError):
        return "n/a"


def html_tables(title: str, tables: Sequence[tuple[str, pd.DataFrame]]) -> str:
    """A result for notebooks: its one-line summary, then each table (pandas ``to_html``, long ones elided)."""
    parts = [f"<p><code>{html.escape(title)}</code></p>"]
    for caption, frame in tables:
        parts.append(f"<p><b>{html.escape(caption)}</b> ({count(len(frame), 'row')})</p>")
        parts.append(frame.to_html(max_rows=HTML_MAX_ROWS))
    return "\n".join(parts)


class Document(Mapping):
    """A result that is also its document, read-only: ``result["key"]``, ``result.get``, ``in``, ``dict(result)``
    and ``==`` with a dict work as on the document (what :func:`follow_up` and :func:`compare` returned before
    they returned objects); ``.document`` is the dict itself (for ``json.dump``)."""

    __slots__ = ("document",)

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def __getitem__(self, key: str) -> Any:
        return self.document[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.document)

    def __len__(self) -> int:
        return len(self.document)

    def __reduce__(self):
        return type(self), (self.document,)
