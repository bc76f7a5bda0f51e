"""What Linux does with fragment trains and source routes, checked on the running kernel (issue 13): the kernel owns
192.0.2.2 on a TAP device in a private namespace (tests/root/device_scenarios.py
``empty_fragments``); tapstack's reassembler follows it (tests/core/test_fragments_and_errors.py)."""

from __future__ import annotations

import pytest

from tests.root.test_linux import run_scenario

pytestmark = pytest.mark.device


def test_linux_reassembles_around_an_empty_fragment(netns: str) -> None:
    assert run_scenario(netns, "empty_fragments") == {"plain": 1, "empty_at_8": 1, "empty_at_0": 1}


def test_linux_drops_every_source_routed_datagram(netns: str) -> None:
    """With net.ipv4.conf.all.accept_source_route = 0 (the default in a new namespace), Linux 6.18
    drops an unfinished source route (tapstack too: RFC 1122 3.3.5) and a finished one as well
    (tapstack answers that one: RFC 1122 3.2.1.8 (c) says a host MUST be able to be the final
    destination of a source route)."""
    assert run_scenario(netns, "source_routes") == {"accept_source_route_all": "0", "none": 1,
                                                    "unfinished": 0, "finished": 0}
