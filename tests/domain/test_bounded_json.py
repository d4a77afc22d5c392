"""`loads_bounded`: JSON nested up to its bound is decoded, one level more is refused; brackets
inside strings never count."""

from __future__ import annotations

import pytest

from domain.bounded_json import MalformedJson, loads_bounded, nested_deeper_than


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_up_to_the_bound_is_decoded_and_one_level_more_is_refused() -> None:
    assert loads_bounded(nested(64), max_depth=64) is not None
    with pytest.raises(MalformedJson, match="nested more than 64"):
        loads_bounded(nested(65), max_depth=64)
    assert not nested_deeper_than(b'{"a": {"b": [1, 2]}}', 3)
    assert nested_deeper_than(b'{"a": {"b": [1, 2]}}', 2)


def test_brackets_inside_strings_do_not_count_however_many_there_are() -> None:
    body = b'{"note": "' + b"[{" * 100 + b'", "list": [[1]]}'
    assert not nested_deeper_than(body, 3)
    assert nested_deeper_than(body, 2)
    assert loads_bounded(body, max_depth=3) == {"note": "[{" * 100, "list": [[1]]}
