"""The private-destination guard on every spelling an attacker may try (connectors/http.py)."""

from __future__ import annotations

import pytest

from connectors.http import PrivateDestinationError, check_destination

REFUSED = [
    "127.0.0.1",
    "[::1]",
    "[::127.0.0.1]",  # IPv4-compatible
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:169.254.169.254]",
    "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[64:ff9b:1::a00:1]",  # local-use NAT64 of 10.0.0.1
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[2002:a9fe:a9fe::1]",  # 6to4 of 169.254.169.254
    "[2002:c0a8:101::]",  # 6to4 of 192.168.1.1
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "[ff02::1]",
    "[ff0e::1]",  # global-scope multicast
    "[::]",
    "0.0.0.0",
    "localhost",
]
ALLOWED = [
    "8.8.8.8",
    "[2606:4700:4700::1111]",
    "[::ffff:8.8.8.8]",
    "[2002:808:808::]",
    "[64:ff9b::808:808]",
]


@pytest.mark.parametrize("host", REFUSED)
def test_non_public_destinations_are_refused(host: str) -> None:
    with pytest.raises(PrivateDestinationError):
        check_destination(f"https://{host}/hook", allow_private=False)
    check_destination(f"https://{host}/hook", allow_private=True)


@pytest.mark.parametrize("host", ALLOWED)
def test_public_destinations_pass(host: str) -> None:
    check_destination(f"https://{host}/hook", allow_private=False)
