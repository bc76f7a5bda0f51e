"""The runtime: the event loop (the only place that waits and reads the clock), traces, the live
status line, ping sessions, a host run until it is quiet without a device (``settle``), and the
kernel side (namespaces, addresses, MACs, neighbours, sysctls) set up over netlink and /proc/sys."""
