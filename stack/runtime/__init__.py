"""The runtime: the event loop (the only place that waits and reads the clock), traces, the live
status line, ping sessions, and the kernel side (namespaces, addresses) set up over netlink."""
