"""bench/tcp_bench.py end to end, quickly: tapstack and the kernel's TCP (the yardstick server
over veth) each measured not pinned and pinned in one run; the report has its tables, ratios and
in-process figures, every figure is a positive number (no timing target), the servers sent the
same response bytes, and no namespace is left behind."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURES = ("keepalive_per_s", "new_per_s", "echo_mb_per_s", "keepalive_cpu_us", "new_cpu_us", "echo_cpu_ms_per_mb")

pytestmark = pytest.mark.device


@pytest.mark.tools("taskset")
def test_a_quick_run_measures_both_servers_in_both_modes(require_device: None, tmp_path: Path) -> None:
    path = tmp_path / "tcp.json"
    process = subprocess.Popen([sys.executable, str(REPO / "bench" / "tcp_bench.py"), "--quick", "--json", str(path)],
                               cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.terminate()  # it cleans up on SIGTERM
            process.wait(timeout=30)
    assert process.returncode == 0, out + err
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"tsk-tcpb-{process.pid}-" not in namespaces

    document = json.loads(path.read_text())
    assert set(document["method"]["modes"]) == {"unpinned", "pinned"}
    assert set(document["servers"]) == {"kernel", "tapstack"}
    medians = {}
    for name, server in document["servers"].items():
        assert set(server["modes"]) == {"unpinned", "pinned"}
        for mode, measured in server["modes"].items():
            assert len(measured["rounds"]) == 1 and measured["rounds"][0]["notes"] == [], (name, mode, measured)
            for figure in FIGURES:
                found = measured["figures"][figure]
                assert found["rounds"][0] > 0 and found["median"] == found["rounds"][0], (name, mode, figure, found)
                medians[name, mode, figure] = found["median"]
            responses = measured["rounds"][0]["first_responses"]
            assert responses["http-keepalive"].startswith("HTTP/1.1 200 OK\r\n")
            assert "Connection: close\r\n" in responses["http-new"]
    ratios = {(r["mode"], r["figure"]): r for r in document["ratios"]}
    assert set(ratios) == {(mode, figure) for mode in ("unpinned", "pinned")
                           for figure in ("keepalive_per_s", "new_per_s", "echo_mb_per_s")}
    for (mode, figure), found in ratios.items():
        expected = medians["tapstack", mode, figure] / medians["kernel", mode, figure]
        assert math.isclose(found["ratio"], expected) and found["complete"] is True
    assert len(document["in_process"]) == 3 and all(f["median"] > 0 for f in document["in_process"].values())
    assert document["response_differences"] == [] and document["complete"] is True

    assert out.count("== not pinned") == 1 and out.count("== pinned") == 1 and out.count("== in process") == 1
    assert out.count("tapstack / kernel") == 2
    assert "responses: the same bytes from both servers" in out
