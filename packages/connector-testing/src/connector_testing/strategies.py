"""Hypothesis strategies of hostile input, for property tests of configs and parsers.

Needs hypothesis (``pip install 'connector-testing[hypothesis]'``); imported on its own,
not by ``connector_testing``::

    from connector_testing.strategies import hostile_text, hostile_value

    @given(st.dictionaries(st.sampled_from(FIELDS), hostile_value))
    def test_any_fields_give_a_config_or_a_config_error(fields): ...

What a hostile caller, a mistyped environment or a careless upstream hands over: NUL,
newlines, lone surrogates, URL and shell specials, very long text; huge, negative,
non-finite and stringly numbers; booleans where numbers go; nesting. Keep the secret out
of them: put it only where secrets belong (a field shown on purpose, a host name, is
not a leak).
"""

from __future__ import annotations

from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "connector_testing.strategies needs hypothesis: pip install 'connector-testing[hypothesis]'"
    ) from exc

HOSTILE_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "a\nb",
    "a\r\nb: c",
    "\ud800",
    "é" * 3,
    "%00",
    "%zz",
    "${HOME}",
    "$user",
    "../../etc",
    "a,b",
    "x" * 64,
)
"""Strings that break naive code: NUL, CR/LF, a lone surrogate, escapes, specials."""

hostile_text: st.SearchStrategy[str] = st.one_of(
    st.text(max_size=12),
    st.sampled_from(HOSTILE_STRINGS),
    st.text(min_size=300, max_size=3000),
)
"""Short and long arbitrary text, and :data:`HOSTILE_STRINGS`."""

hostile_number: st.SearchStrategy[Any] = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 1e300, -1e300, 2**31, 2**63, 2**63 - 1]),
    st.sampled_from(["1e300", "inf", "nan", " 5 ", "-0", "x"]),
)
"""Integers far out of any range, non-finite floats, and numbers as strings."""

hostile_scalar: st.SearchStrategy[Any] = st.one_of(
    hostile_text, hostile_number, st.booleans(), st.none(), st.binary(max_size=8)
)

hostile_value: st.SearchStrategy[Any] = st.recursive(
    hostile_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(hostile_text, st.just("max_attempts")), inner, max_size=3),
    ),
    max_leaves=6,
)
"""Any of the above, or lists and maps of them (a map where a number goes, ...)."""
