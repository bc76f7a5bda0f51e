"""Network layer: IPv4 and ICMP codecs, and the host logic that answers them."""
