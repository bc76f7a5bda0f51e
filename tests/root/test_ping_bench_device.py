"""bench/ping_bench.py end to end, quickly: the yardstick and tapstack on TAP, each measured not
pinned and pinned in one run, every figure kept per round in the JSON with its median, the ratios
computed from those medians, the in-process figures beside them, and no namespace left behind."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURES = ("median_rtt_us", "p99_rtt_us", "answers_per_s", "cpu_us_per_answer")

pytestmark = pytest.mark.device


@pytest.mark.tools("ping")
def test_a_quick_run_reports_both_modes_every_round_and_the_ratios(require_device: None, tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    process = subprocess.Popen([sys.executable, str(REPO / "bench" / "ping_bench.py"), "--quick",
                                "--only", "yardstick-tap,tapstack", "--no-check", "--json", str(path)],
                               cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.terminate()  # it cleans up on SIGTERM
            process.wait(timeout=30)
    assert process.returncode == 0, out + err
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"tsk-bench-{process.pid}-" not in namespaces

    document = json.loads(path.read_text())
    assert set(document["method"]["modes"]) == {"unpinned", "pinned"}
    assert len(document["method"]["modes"]["pinned"]["cpus"]) == 1
    assert {"kernel", "python", "cpus", "cpu_model", "load_average_start", "load_average_end"} \
        <= set(document["environment"])
    assert set(document["responders"]) == {"yardstick-tap", "tapstack"}
    medians = {}
    for name, responder in document["responders"].items():
        assert set(responder["modes"]) == {"unpinned", "pinned"}
        for mode, measured in responder["modes"].items():
            assert len(measured["rounds"]) == 1  # --quick: one round
            assert measured["rounds"][0]["latency_loss"] == 0.0, (name, mode, measured["rounds"])
            for figure in FIGURES:
                found = measured["figures"][figure]
                assert len(found["rounds"]) == 1 and found["rounds"][0] > 0, (name, mode, figure, found)
                assert found["median"] == found["rounds"][0] == found["low"] == found["high"]
                medians[name, mode, figure] = found["median"]
    ratios = {(r["mode"], r["figure"]): r for r in document["ratios"]}
    assert set(ratios) == {(mode, figure) for mode in ("unpinned", "pinned")
                           for figure in ("median_rtt_us", "answers_per_s", "cpu_us_per_answer")}
    for (mode, figure), found in ratios.items():
        assert found["responder"] == "tapstack" and found["versus"] == "yardstick-tap"
        expected = medians["tapstack", mode, figure] / medians["yardstick-tap", mode, figure]
        assert math.isclose(found["ratio"], expected) and found["complete"] is True
        assert found["passed"] in (True, False)  # checked, though --no-check keeps the exit status 0
    assert {"TapHost.receive", "TunHost.receive"} <= set(document["in_process"]["echo_cost.py"])
    # issue 12's five drop-cost targets and issue 14's two IPv6/IPv4 echo ratios
    assert len(document["in_process_checks"]) == 7

    assert out.count("== not pinned") == 1 and out.count("== pinned") == 1
    assert "tapstack / yardstick-tap" in out and "targets met (not checked: --no-check)" in out
