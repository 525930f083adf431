"""Markdown tables the lessons print, rendered from the provider table (:mod:`.table`).

Kept apart from the records so the table stays data; :mod:`helpers.providers.table` re-exports
:func:`comparison_table` and :data:`COLUMNS`, and every renderer reads ``FAMILIES`` at call time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .table import FAMILIES, USAGE_IN_CHOICE, USAGE_TOP_LEVEL, USAGE_TRAILING, WireTraits

__all__ = ["COLUMNS", "comparison_table"]

_PLACE_WORDS = {
    USAGE_IN_CHOICE: "inside `choices[0].usage` of the last chunk",
    USAGE_TOP_LEVEL: "top-level `usage` on the last chunk (the one with `finish_reason`)",
    USAGE_TRAILING: "one extra chunk with **empty** `choices` and a top-level `usage`",
}
_ASK = '`stream_options={"include_usage": True}`'


def _usage_cell(t: WireTraits) -> str:
    if t.usage_unasked:
        return f"{_PLACE_WORDS[t.usage_unasked]}, always"
    if t.usage_when_asked:
        return f"only if you ask with {_ASK}: then {_PLACE_WORDS[t.usage_when_asked]}"
    return "never in a stream"


def _asked_cell(t: WireTraits) -> str:
    if t.usage_when_asked is None:
        return "ignored"
    if t.usage_when_asked == t.usage_unasked:
        return "nothing changes"
    return f"adds {_PLACE_WORDS[t.usage_when_asked]}"


#: column name -> the WireTraits field it shows (for the offline-choice mark)
_FIELDS = {"usage": "usage_unasked", "asked": "usage_when_asked", "keep_alive": "keep_alive",
           "reasoning": "reasoning_field"}
_OWN = " ¹"
_OWN_NOTE = ("¹ Here the offline provider makes a choice of its own; the row's `source` in "
             "helpers/providers/table.py says what the real provider does.")

#: column name -> (header, cell renderer)
COLUMNS: dict[str, tuple[str, Callable[[WireTraits], str]]] = {
    "usage": ("where `usage` is in a stream", _usage_cell),
    "asked": (f"with {_ASK}", _asked_cell),
    "keep_alive": ("`: keep-alive` comments", lambda t: "yes" if t.keep_alive else "no"),
    "reasoning": ("reasoning streams in", lambda t: f"`delta.{t.reasoning_field}`"
                  if t.reasoning_field else "-"),
}


def comparison_table(families: Sequence[str] | None = None,
                     columns: Sequence[str] = ("usage",), *, merge: bool = True) -> str:
    """Render the lessons' provider comparison as a Markdown table, from ``FAMILIES``.

    Args:
        families: which families, in row order (default: all).
        columns: names from ``COLUMNS`` ("usage", "asked", "keep_alive", "reasoning").
        merge: join families whose cells are all equal into one row ("OpenAI, Qwen (DashScope)").
    """
    rows: list[tuple[list[str], tuple[str, ...]]] = []
    for name in families or tuple(FAMILIES):  # a label per row, cells per column
        traits = FAMILIES[name]
        cells = tuple(COLUMNS[c][1](traits) + (_OWN if _FIELDS[c] in traits.offline_choice else "")
                      for c in columns)
        same = next((r for r in rows if r[1] == cells), None) if merge else None
        if same is not None:
            same[0].append(traits.label)
        else:
            rows.append(([traits.label], cells))
    head = ["provider", *(COLUMNS[c][0] for c in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([", ".join(labels), *cells]) + " |" for labels, cells in rows]
    if any(cell.endswith(_OWN) for _, cells in rows for cell in cells):
        lines += ["", _OWN_NOTE]
    return "\n".join(lines)
