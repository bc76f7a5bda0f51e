"""Network layer: IPv4 and ICMP codecs, and the host logic composed of small parts (host.py)."""
