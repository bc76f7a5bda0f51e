"""Lab 06: answer ICMP Timestamp requests. Write ``timestamp_reply`` below.

RFC 792 (page 16), Timestamp (type 13) and Timestamp Reply (type 14):

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |      Code     |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Identifier          |        Sequence Number        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Originate Timestamp                                       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Receive Timestamp                                         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Transmit Timestamp                                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The stack has already checked the checksum, that the request is addressed to one of our
unicast addresses, and that we can route back to its source; it builds the IPv4 header of
the reply and computes the reply's checksum. You build the ICMP message.
"""

from stack.l3.icmp import IcmpMessage, IcmpType


def timestamp_reply(request: IcmpMessage, now: float) -> IcmpMessage | None:
    """The Timestamp Reply to ``request`` (an ICMP message of type 13), or None to refuse it.

    ``request.code``, ``request.rest_of_header`` (4 bytes: identifier, sequence number) and
    ``request.payload`` (the bytes after the 8-byte header; ``bytes(request.payload)``) are the
    request's. ``now`` is the host's clock in seconds: it is not the time of day (a sans-I/O
    host has none), so read RFC 792 on what to send when the time is not milliseconds since
    midnight UT.

    Return ``IcmpMessage(type, code, rest_of_header, payload)``, or None when the request is
    malformed: a code other than 0, or data that is not exactly the three timestamps.
    """
    raise NotImplementedError("lab 06: write timestamp_reply in stack/labs/06-icmp-timestamp/timestamp.py")
