"""Provider facts and the lessons' tables of them: the one table everything reads.

- :mod:`.table`: presets (``PROVIDERS``), wire traits per family (``FAMILIES``), models
  (``MODELS``), ``traits_for`` / ``model_traits`` / ``price_of``;
- :mod:`.toolquirks` and :mod:`.prices`: two sections of that table, written into it;
- :mod:`.markdown`: the comparison tables the lessons print from it;
- :mod:`.recordings`: each provider's published example stream, the evidence for the table.

The names below are re-exported, so ``from helpers.providers import FAMILIES`` reads the table.
"""

from __future__ import annotations

from .markdown import COLUMNS, comparison_table
from .table import (
                    AUTO_ORDER,
                    CHECKED,
                    FAMILIES,
                    MODELS,
                    OFFLINE_KEY,
                    PRICES,
                    PROVIDERS,
                    TOOL_CALLS,
                    USAGE_IN_CHOICE,
                    USAGE_PLACES,
                    USAGE_TOP_LEVEL,
                    USAGE_TRAILING,
                    Model,
                    Price,
                    Provider,
                    ToolCallQuirks,
                    WireTraits,
                    model_traits,
                    price_of,
                    traits_for,
)

__all__ = [
    "AUTO_ORDER", "CHECKED", "COLUMNS", "FAMILIES", "MODELS", "OFFLINE_KEY", "PRICES", "PROVIDERS",
    "TOOL_CALLS",
    "USAGE_IN_CHOICE", "USAGE_PLACES", "USAGE_TOP_LEVEL", "USAGE_TRAILING", "Model", "Price",
    "Provider", "ToolCallQuirks", "WireTraits", "comparison_table", "model_traits", "price_of",
    "traits_for",
]
