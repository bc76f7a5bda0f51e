"""``--pcap-max-bytes`` on a real ``tapstack run``: the capture moves to FILE.1 at its bound, both
files are whole pcap files within it, and together they hold every frame the counters count."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.root.test_cli_device import kernel_ping, replies, start_stack  # noqa: F401 -- a fixture
from tests.root.test_lifecycle_device import HOST, counter, records

pytestmark = pytest.mark.device

BOUND = 100 * 1024  # --pcap-max-bytes 100K


@pytest.mark.tools("ping")
def test_pcap_max_bytes_rotates_once_and_loses_no_frame(netns: str, start_stack, tmp_path: Path) -> None:
    capture = tmp_path / "cap.pcap"
    stack = start_stack(netns, *HOST, "--pcap", str(capture), "--pcap-max-bytes", "100K")
    # 60 requests and 60 replies of 1,042 bytes (1,058 with their records): 127 KB, more than
    # one file of 100 KiB and less than two, so no file is removed and every frame is in one.
    ping = kernel_ping(netns, "-c", "60", "-i", "0.01", "-s", "1000", "-w", "20")
    assert len(replies(ping.stdout)) == 60, ping.stdout
    assert stack.stop() == 0, stack.stderr
    stderr = stack.stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.count("reached 102400 bytes") == 1, stderr
    older = Path(f"{capture}.1")
    assert older.stat().st_size <= BOUND and capture.stat().st_size <= BOUND
    assert older.stat().st_size > BOUND - 1_100  # full: the next frame would not have fitted
    parts = [records(older), records(capture)]  # each a whole pcap file
    assert all(parts)
    total = counter(stderr, "device.rx_frames") + counter(stderr, "device.tx_frames")
    assert sum(len(p) for p in parts) == total
    timestamps = [r.timestamp for part in parts for r in part]
    assert timestamps == sorted(timestamps)  # FILE.1 first, then FILE: nothing between
    echoes = sum(1 for part in parts for r in part if r.data[12:14] == b"\x08\x00" and len(r.data) == 1042)
    assert echoes == 120
