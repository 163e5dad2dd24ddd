"""GitHub Actions workflow commands (`::error title=...::message`), escaped by GitHub's rules.

The message (data) escapes % as %25, CR as %0D and LF as %0A; a property value (title=, file=) also escapes
: as %3A and , as %2C, so nothing in a host name, task name or message can end the command early or start a
new one.
"""

from __future__ import annotations

_DATA = (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"))
_PROPERTY = (*_DATA, (":", "%3A"), (",", "%2C"))


def escape_data(text: str) -> str:
    for raw, escaped in _DATA:  # % first: the other escapes contain one
        text = text.replace(raw, escaped)
    return text


def escape_property(text: str) -> str:
    for raw, escaped in _PROPERTY:
        text = text.replace(raw, escaped)
    return text


def annotation(kind: str, message: str, **properties: str) -> str:
    """One workflow command line: `::<kind> k=v,k=v::<message>` (kind: error, warning, notice)."""
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{kind}{' ' + props if props else ''}::{escape_data(message)}"
