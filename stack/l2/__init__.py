"""Link layer: Ethernet II framing, ARP, the neighbour cache, and the link logic that joins them."""
