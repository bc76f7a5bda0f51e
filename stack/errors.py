"""The one exception type that parsing bytes from the wire may raise.

Read first: style guide (c) 2 -- a codec either returns a value or raises ParseError;
any other exception escaping ``parse()`` or ``receive()`` is a bug in tapstack.
"""

from __future__ import annotations


class ParseError(Exception):
    """Bytes from the wire that cannot be read as the protocol says.

    ``layer`` names the protocol ("Ethernet", "ARP", "IPv4", "ICMP"), ``reason`` is a short
    snake_case code that becomes the drop counter (``ipv4_bad_checksum``), ``detail`` is the
    human sentence with the offending value.
    """

    def __init__(self, layer: str, reason: str, detail: str, *args: object) -> None:
        """``detail`` is the sentence, or with ``args`` a %-format string for it: the words are
        made only when read (``detail``, ``str(error)``), as most errors are only counted."""
        self.args = (layer, reason)  # (what BaseException.__init__ would set, without the call)
        self.layer = layer
        self.reason = reason
        self._detail = detail
        self._args = args

    @property
    def detail(self) -> str:
        """The human sentence with the offending value."""
        return self._detail % self._args if self._args else self._detail

    def __str__(self) -> str:
        return f"[{self.layer}] {self.detail}"

    @property
    def drop_reason(self) -> str:
        """The counter name for this error, e.g. ``ipv4_bad_checksum``."""
        name = _DROP_REASONS.get((self.layer, self.reason))
        if name is None:
            name = _DROP_REASONS[self.layer, self.reason] = f"{self.layer.lower()}_{self.reason}"
        return name


#: Drop reasons by (layer, reason), made once: a flood of one kind of garbage names the same one.
_DROP_REASONS: dict[tuple[str, str], str] = {}
