"""The configuration every config model shares, in a module of its own so that the config modules beside
models.py (serving.py, which models.py imports) use the same rules without importing models.py."""

from __future__ import annotations

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

# unknown keys rejected, camelCase aliases, immutable
STRICT = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)
