"""Lab 06, the reference solution (``tapstack lab check 06 --solution`` checks it). Try first!"""

from stack.l3.icmp import IcmpMessage, IcmpType

#: RFC 792: three 32-bit timestamps follow the header: originate, receive, transmit.
TIMESTAMPS_LENGTH = 12


def timestamp_reply(request: IcmpMessage, now: float) -> IcmpMessage | None:
    data = bytes(request.payload)
    if request.code != 0 or len(data) != TIMESTAMPS_LENGTH:
        return None  # RFC 792: code 0, and exactly the three timestamps
    # RFC 792: not milliseconds since midnight UT, so "any time" with the high-order bit set.
    stamp = ((int(now * 1000) & 0x7FFFFFFF) | 0x80000000).to_bytes(4, "big")
    originate = data[:4]
    # RFC 792: the identifier and sequence number are returned; the originate timestamp too,
    # and receive and transmit are ours (the same here: we answer as we receive).
    return IcmpMessage(IcmpType.TIMESTAMP_REPLY, 0, request.rest_of_header, originate + stamp + stamp)
