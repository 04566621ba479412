"""Every test collected from this directory is marked `integration`, so
`pytest integration_tests -m integration` selects all of them. The environment and the per-test
Keras state come from the repository's root conftest.py, shared with tests/.
"""

import pathlib

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)
