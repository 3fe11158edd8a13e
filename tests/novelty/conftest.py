"""Model files shared with the export tests (defined in tests/support/model_files.py)."""

from tests.support.model_files import (  # noqa: F401 - fixtures are found by name
    _one_torch_thread,
    exports,
)
