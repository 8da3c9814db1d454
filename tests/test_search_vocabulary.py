"""The magic's default search type is the sidebar's (src/rucio/model.ts effectiveSearchType)."""

import pytest

from af_lab.kernel.magics import default_search_type


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("user.jdoe:*", "collection"),
        ("user.jdoe:Run*", "collection"),
        ("user.jdoe:", "collection"),
        ("user.jdoe:hist.root", "all"),
        (" user.jdoe:results_v2 ", "all"),
    ],
)
def test_default_type_widens_for_an_exact_name(pattern, expected):
    assert default_search_type(pattern) == expected
