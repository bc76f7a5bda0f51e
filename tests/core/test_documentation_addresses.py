"""One place for the documentation addresses: only addresses that cannot reach a real network,
each named for its role, and the tools (demo, lab, diff, explain) and the strategies take theirs
from it rather than writing them again."""

from __future__ import annotations

import ast
import re
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

import stack.documentation_addresses as where
from stack.l2.ethernet import MacAddress
from stack.node import mac_for
from stack.testing import strategies
from stack.tools import demo, diff, explain, lab

NETWORKS = [IPv4Network(n) for n in where.DOCUMENTATION_NETWORKS]
ADDRESSES = {name: value for name, value in vars(where).items()
             if isinstance(value, (IPv4Address, IPv4Interface))}
MACS = {name: value for name, value in vars(where).items() if name.endswith("_MAC")}


def test_rfc5737_the_documentation_networks_are_the_three_test_nets():
    assert [str(n) for n in NETWORKS] == ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
    assert strategies.DOCUMENTATION_NETWORKS is where.DOCUMENTATION_NETWORKS


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_every_address_is_a_documentation_address(name):
    value = ADDRESSES[name]
    address = value.ip if isinstance(value, IPv4Interface) else value
    assert any(address in network for network in NETWORKS), name


@pytest.mark.parametrize("name", sorted(MACS))
def test_every_mac_is_locally_administered_unicast(name):
    mac = bytes(MacAddress(MACS[name]))
    assert mac[0] & 0b10 and not mac[0] & 0b01, name


def test_the_tools_take_their_addresses_from_the_one_module():
    for tool in (demo, lab):
        assert (tool.HOST, tool.PEER, tool.HOST_MAC, tool.PEER_MAC) == (
            where.HOST, where.PEER, where.HOST_MAC, where.PEER_MAC)
    assert (demo.TAP_DEVICE, demo.TUN_DEVICE) == (lab.TAP_NAME, lab.TUN_NAME) == (diff.DEVICE, diff.TUN_DEVICE)
    assert diff.HOST is where.HOST and diff.TUN_PEER == where.PEER.ip
    assert diff.PEERS == {where.PEER.ip: MacAddress(where.PEER_MAC),
                          where.SECOND_PEER: MacAddress(where.SECOND_PEER_MAC)}
    assert explain.FALLBACK_ADDRESS is where.HOST


def test_diff_keeps_its_own_host_mac_derived_from_the_address():
    assert diff.HOST_MAC == mac_for(where.HOST.ip) == MacAddress("02:00:c0:00:02:02")


TOOLS = sorted((Path(__file__).resolve().parents[2] / "stack" / "tools").glob("*.py"))
LITERAL = re.compile(r"\b(?:192\.0\.2|198\.51\.100|203\.0\.113)\.\d+|\b02(?::00){4}:0\d\b|\bt(?:ap|un)\d\b")


@pytest.mark.parametrize("path", TOOLS, ids=[p.stem for p in TOOLS])
def test_no_tool_writes_a_documentation_address_again(path):
    """In code, that is: docstrings and comments may show an example."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    written = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
               and isinstance(node.value, str) and id(node) not in docstrings and LITERAL.search(node.value)]
    assert not written, f"{path.name}: {written}: use stack.documentation_addresses"
