"""One loopback rule for the UI's password requirement and the metrics reader."""

from __future__ import annotations

import pytest

from neoc_assistant.errors import InputError
from neoc_assistant.hosts import is_loopback
from neoc_assistant.monitoring.remote import require_loopback


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("10.0.0.1", False),
    ("localhost.example.org", False), ("eoc-server", False), ("", False),
])
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_the_metrics_reader_uses_the_same_rule():
    assert require_loopback("http://127.8.9.10:7860/") == "http://127.8.9.10:7860"
    assert require_loopback("http://[::1]:7860") == "http://[::1]:7860"
    assert require_loopback("http://LOCALHOST:7860") == "http://LOCALHOST:7860"  # host names are case-blind
    with pytest.raises(InputError, match="only loopback"):
        require_loopback("http://192.168.1.5:7860")
