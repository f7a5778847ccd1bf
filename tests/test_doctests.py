"""Every module's worked examples (the course's examples as doctests) run as part of the suite."""
import doctest
import importlib
import pkgutil

import pytest

import minigan

MODULES = sorted(m.name for m in pkgutil.walk_packages(minigan.__path__, "minigan.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
