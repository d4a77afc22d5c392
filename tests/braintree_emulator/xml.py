"""Braintree's XML wire shape: requests read with the SDK's own parser, answers written as the gateway writes them.

Tags are dasherized; integers, booleans, datetimes and dates carry a `type` attribute; a list is an element with
`type="array"`; None is `nil="true"`; a search page (`advanced_search`) repeats one element inside a
`type="collection"` element. The SDK's parser reads dashes back as underscores.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape

from braintree.util.xml_util import XmlUtil


def parse(body: bytes) -> dict[str, Any]:
    """A request body as the SDK's generator wrote it (empty: {})."""
    if not body.strip():
        return {}
    parsed: dict[str, Any] = XmlUtil.dict_from_xml(body)
    return parsed


def element(tag: str, value: Any) -> str:
    name = tag.replace("_", "-")
    if value is None:
        return f'<{name} nil="true"/>'
    if isinstance(value, bool):
        return f'<{name} type="boolean">{str(value).lower()}</{name}>'
    if isinstance(value, int):
        return f'<{name} type="integer">{value}</{name}>'
    if isinstance(value, datetime):
        return f'<{name} type="datetime">{value.strftime("%Y-%m-%dT%H:%M:%SZ")}</{name}>'
    if isinstance(value, date):
        return f'<{name} type="date">{value.isoformat()}</{name}>'
    if isinstance(value, dict):
        return f"<{name}>{''.join(element(k, v) for k, v in value.items())}</{name}>"
    if isinstance(value, list):
        return f'<{name} type="array">{"".join(element("item", item) for item in value)}</{name}>'
    return f"<{name}>{escape(str(value))}</{name}>"


def document(tag: str, value: Any) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + element(tag, value)


def collection(tag: str, item_tag: str, items: list[dict[str, Any]]) -> str:
    inner = "".join(element(item_tag, item) for item in items)
    pages = element("current_page_number", 1) + element("page_size", 50) + element("total_items", len(items))
    name = tag.replace("_", "-")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{name} type="collection">{pages}{inner}</{name}>'
