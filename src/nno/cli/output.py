"""Human output (rich tables) and script output (`--json`). rich is imported only when a table or
the console is first needed, so JSON output and plain lines stay light."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_console: Console | None = None
PIPE_WIDTH = 200


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        # A pipe gets wide tables (no wrapped ids) unless COLUMNS says otherwise; a terminal its width.
        width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
        _console = Console(highlight=False, soft_wrap=False, width=width)
    return _console


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def info(text: str) -> None:
    console().print(text, markup=False)


def success(text: str) -> None:
    console().print(f"✔ {text}", markup=False)


def when(ms: Any) -> str:
    """Unix ms -> `2026-11-25 08:00:00Z`; anything else as given."""
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return "" if ms is None else str(ms)
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def iso(ms: Any) -> str:
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return "" if ms is None else str(ms)
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


Column = tuple[str, Callable[[dict[str, Any]], Any]]


def field(name: str, fmt: Callable[[Any], str] | None = None) -> Callable[[dict[str, Any]], Any]:
    def get(row: dict[str, Any]) -> Any:
        value = row.get(name)
        return fmt(value) if fmt else value

    return get


def table(columns: Sequence[Column], rows: Iterable[dict[str, Any]], *, title: str | None = None,
          empty: str = "Nothing to show.") -> None:
    rows = list(rows)
    if not rows:
        info(empty)
        return
    if not sys.stdout.isatty():
        plain_table(columns, rows, title=title)
        return
    from rich.table import Table
    t = Table(title=title, title_justify="left", header_style="bold")
    for header, _ in columns:
        t.add_column(header, overflow="fold")
    for row in rows:
        t.add_row(*(cell(get(row)) for _, get in columns))
    console().print(t)


def plain_table(columns: Sequence[Column], rows: Sequence[dict[str, Any]], *, title: str | None = None) -> None:
    """Columns separated by spaces, no box drawing: what `grep`, `awk` and `cut` expect from a pipe."""
    cells = [[cell(get(row)).replace("\n", " ") for _, get in columns] for row in rows]
    headers = [header for header, _ in columns]
    widths = [max(len(headers[i]), *(len(r[i]) for r in cells)) for i in range(len(headers))]
    out = [title] if title else []
    for line in [headers, *cells]:
        out.append("  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip())
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()


def record(pairs: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    """A single object as a two-column key/value table."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for key, value in pairs:
        t.add_row(key, cell(value))
    console().print(t)


def page(result: Any, columns: Sequence[tuple[str, Any]], rows: Sequence[Any], *, as_json: bool, empty: str) -> None:
    """One page of a cursor-paged list: JSON as received, or a table plus how to get the next page."""
    if as_json:
        print_json(result)
        return
    table(columns, rows, empty=empty)
    if isinstance(result, dict):
        more_hint(result.get("pagination"))


def more_hint(pagination: Any) -> None:
    if isinstance(pagination, dict) and pagination.get("hasMore") and pagination.get("nextCursor"):
        info(f"More results: add --cursor {pagination['nextCursor']}")
