"""Devices: where frames come from and go to. They know no protocol.

``TapDevice`` / ``TunDevice`` attach to the Linux kernel, ``device_pair`` is an in-memory wire,
and ``PcapDevice`` wraps any device to record what passes through it.
"""
