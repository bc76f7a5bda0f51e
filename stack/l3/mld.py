"""MLDv2 on the host side: reports of the groups we listen to, at start and when asked.

Read first: RFC 3810 5 (messages), 6 (a multicast address listener), 8.2 (MLDv1 queriers),
9 (timers and their defaults); RFC 2710 4 (MLDv1, for the compatibility mode); RFC 2711 (the
Router Alert option).

Why a host reports at all: a snooping bridge forwards a multicast group only to ports where a
report for it was heard, so without reports our solicited-node groups -- and with them the
Neighbor Solicitations for our addresses -- may never reach us. Sans-I/O: the reporter takes
the time and returns ``Outbound`` values; randomness comes in as ``uniform``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from ipaddress import IPv6Address

from stack.errors import ParseError
from stack.l3.icmpv6 import (MLD_HOP_LIMIT, ROUTER_ALERT_OPTION, Icmpv6Message, Icmpv6Type, MldQuery, MldReport,
                             MldV1Message, MulticastAddressRecord, RecordType)
from stack.l3.ipv6 import (ALL_MLDV2_ROUTERS, ALL_NODES, HEADER_LENGTH, MINIMUM_MTU, HeaderChain, Ipv6Option,
                           MulticastScope, NextHeader, OptionsHeader, header_bytes, multicast_scope)
from stack.seam import Outbound
from stack.stats import Stats

log = logging.getLogger(__name__)

#: RFC 3810 9.1: the Robustness Variable: state change reports are sent this many times.
ROBUSTNESS_VARIABLE = 2
#: RFC 3810 9.11: the retransmissions of a state change report are at most this far apart.
UNSOLICITED_REPORT_INTERVAL_S = 1.0
#: RFC 3810 9.2, 9.3: the default Query Interval and Query Response Interval.
QUERY_INTERVAL_S = 125.0
QUERY_RESPONSE_INTERVAL_S = 10.0
#: RFC 3810 9.12: how long an MLDv1 querier keeps us in MLDv1 compatibility mode (260 s). We
#: keep the default Robustness Variable and Query Interval (an MLDv1 query carries neither).
OLDER_VERSION_QUERIER_PRESENT_TIMEOUT_S = ROBUSTNESS_VARIABLE * QUERY_INTERVAL_S + QUERY_RESPONSE_INTERVAL_S
#: RFC 2711 2.1: the Router Alert option's value 0: "the datagram contains a Multicast Listener
#: Discovery message"; RFC 3810 5: every MLDv2 message carries it in a Hop-by-Hop header.
ROUTER_ALERT = OptionsHeader.padded(NextHeader.ICMPV6, [Ipv6Option(ROUTER_ALERT_OPTION, bytes(2))])
ROUTER_ALERT_BYTES = bytes(ROUTER_ALERT)
#: RFC 3810 5.2.15: records that do not fit one report (the link MTU; we use the IPv6 minimum,
#: which every link carries) go in as many reports as needed.
REPORT_ROOM = MINIMUM_MTU - HEADER_LENGTH - len(ROUTER_ALERT_BYTES) - 8


def is_reported(group: IPv6Address) -> bool:
    """RFC 3810 6: no MLD message is ever sent about ff02::1 (link-scope all-nodes) or about a
    group of scope 0 (reserved) or 1 (interface-local)."""
    return group != ALL_NODES and multicast_scope(group) > MulticastScope.INTERFACE_LOCAL


def has_router_alert(chain: HeaderChain) -> bool:
    """RFC 3810 5.1.14 (and RFC 2711): the packet's Hop-by-Hop header has a Router Alert option
    with value 0 (MLD). The host passes this to ``receive_query``."""
    header = chain.hop_by_hop
    return header is not None and any(option.type == ROUTER_ALERT_OPTION and option.data == bytes(2)
                                      for option in header.options)


class MldReporter:
    """The MLD host side for one link: which reports are due, and when."""

    def __init__(self, stats: Stats, groups: list[IPv6Address], multicast_mac: Callable[[bytes], bytes],
                 uniform: Callable[[float, float], float] | None = None, link: bool = True) -> None:
        """``groups``: the groups we listen to (the solicited-node group of each address;
        ff02::1 is never reported, RFC 3810 6). ``multicast_mac`` maps a group to its MAC (the
        link's rule, RFC 2464 7). ``link`` False: a point-to-point TUN link, where no MLD is
        spoken at all (see below)."""
        for group in groups:
            if not group.is_multicast:
                raise ValueError(f"{group} is not a multicast address")
        self.stats = stats
        self.groups = [group for group in dict.fromkeys(groups) if is_reported(group)]
        self.multicast_mac = multicast_mac
        self.uniform = uniform or (lambda low, high: low)
        # A deliberate choice for point-to-point (TUN) links: nothing is sent and queries are
        # dropped. There is no bridge to snoop and, in this stack, no Neighbor Discovery on TUN
        # (issue 14), so the solicited-node groups carry nothing. Linux 6.18 sends no MLD report
        # on a TUN device either (checked in a namespace: tests/root/test_mld_device.py).
        self.link = link
        #: RFC 3810 6.1: the state change report at start, sent [Robustness Variable] times:
        #: how many are left, and when the next is due (None: at the first poll).
        self.unsolicited_left = ROBUSTNESS_VARIABLE if link and self.groups else 0
        self.unsolicited_at: float | None = None
        #: RFC 3810 6.2: the Interface Timer (the pending answer to a General Query) ...
        self.general_at: float | None = None
        #: ... and the Multicast Address Timers, with the sources a query asked about (empty:
        #: the group as a whole).
        self.group_at: dict[IPv6Address, float] = {}
        self.group_sources: dict[IPv6Address, frozenset[IPv6Address]] = {}
        #: RFC 3810 8.2.1: MLDv1 compatibility mode until this time (None: MLDv2 mode), and the
        #: MLDv1 report timers (RFC 2710 4).
        self.v1_until: float | None = None
        self.v1_at: dict[IPv6Address, float] = {}

    # ------------------------------------------------------------------ queries

    def receive_query(self, source: IPv6Address, destination: IPv6Address, hop_limit: int,
                      message: Icmpv6Message, now: float, router_alert: bool | None = None) -> None:
        """A Multicast Listener Query (type 130) to us. ``router_alert``: whether the packet's
        Hop-by-Hop header had the Router Alert option (``has_router_alert``); None when the host
        did not look (then it is not checked). The destination is not checked: RFC 3810 5.1.15
        asks a node to accept a query to any of its addresses, and the host delivers only those."""
        if not self.link:
            self.stats.drop("icmpv6_mld_point_to_point", log, "query from %s", source)
            return
        try:
            query = MldQuery.from_message(message)
        except ParseError as error:
            self.stats.drop(error.drop_reason, log, error)
            return
        # RFC 3810 5.1.14: a query must come from a link-local source, with hop limit 1 and a
        # Router Alert option; otherwise it is dropped.
        if not source.is_link_local:
            self.stats.drop("icmpv6_mld_source_not_link_local", log, "query from %s", source)
            return
        if hop_limit != MLD_HOP_LIMIT:
            self.stats.drop("icmpv6_mld_bad_hop_limit", log, "query with hop limit %d", hop_limit)
            return
        if router_alert is False:
            self.stats.drop("icmpv6_mld_no_router_alert", log, "query from %s", source)
            return
        self._leave_v1_mode_if_due(now)
        if query.version == 1:
            # RFC 3810 8.2.1: an MLDv1 query (24 octets) sets MLDv1 compatibility mode and
            # (re)starts the Older Version Querier Present timer; in that mode the host speaks
            # only MLDv1, so pending MLDv2 answers are dropped.
            self.v1_until = now + OLDER_VERSION_QUERIER_PRESENT_TIMEOUT_S
            self.general_at = None
            self.group_at.clear()
            self.group_sources.clear()
        if not query.is_general and query.multicast_address not in self.groups:
            # RFC 3810 6.2 (and RFC 2710 4): a query about a group we do not listen to is not ours to answer.
            self.stats.drop("icmpv6_mld_query_not_ours", log, "query for %s", query.multicast_address)
            return
        delay = self.uniform(0.0, query.maximum_response_delay_ms / 1000.0)
        self.stats.count("mld_queries_received")
        if self.v1_until is not None:
            self._schedule_v1(query, now + delay)
        else:
            self._schedule_v2(query, now + delay)

    def _schedule_v2(self, query: MldQuery, due: float) -> None:
        # RFC 3810 6.2 rule 1: a pending answer to a General Query sooner than the selected
        # delay already covers this query.
        if self.general_at is not None and self.general_at <= due:
            return
        if query.is_general:
            # Rule 2: the Interface Timer answers a General Query; a pending one is replaced.
            self.general_at = due
            return
        group, sources = query.multicast_address, frozenset(query.sources)
        pending = self.group_at.get(group)
        if pending is None:
            # Rule 3: schedule an answer for the group, recording the sources asked about.
            self.group_at[group], self.group_sources[group] = due, sources
            return
        # Rules 4 and 5: a pending answer: about the whole group if either query was (its source
        # list cleared), else about both queries' sources; sent at the earlier of the two times.
        recorded = self.group_sources[group]
        self.group_sources[group] = frozenset() if not sources or not recorded else recorded | sources
        self.group_at[group] = min(pending, due)

    def _schedule_v1(self, query: MldQuery, due: float) -> None:
        # RFC 2710 4: a timer per group asked about (all of ours for a General Query), set to
        # the random delay; one already running is reset only if the new delay is sooner.
        for group in self.groups if query.is_general else [query.multicast_address]:
            if group not in self.v1_at or due < self.v1_at[group]:
                self.v1_at[group] = due

    def _leave_v1_mode_if_due(self, now: float) -> None:
        # RFC 3810 8.2.1: when the Older Version Querier Present timer expires, back to MLDv2.
        # MLDv1 reports still pending answer a query that asked for them: they go out.
        if self.v1_until is not None and now >= self.v1_until:
            self.v1_until = None

    # ------------------------------------------------------------------ reports

    def poll(self, now: float, source: IPv6Address) -> list[Outbound]:
        """The reports due by ``now``, from ``source``: our link-local address if usable, else
        :: (RFC 3810 5.2.13 allows the unspecified address while none is usable)."""
        self._leave_v1_mode_if_due(now)
        out: list[Outbound] = []
        if self.unsolicited_left and (self.unsolicited_at is None or now >= self.unsolicited_at):
            # RFC 3810 6.1: joining sends a State Change Report (CHANGE_TO_EXCLUDE_MODE, no
            # sources: all sources) and [Robustness Variable] - 1 retransmissions at random
            # intervals in (0, Unsolicited Report Interval). In MLDv1 mode: MLDv1 reports.
            self.unsolicited_left -= 1
            self.unsolicited_at = (now + self.uniform(0.0, UNSOLICITED_REPORT_INTERVAL_S)
                                   if self.unsolicited_left else None)
            if self.v1_until is not None:
                out += [self._v1_report(group, source) for group in self.groups]
            else:
                out += self._reports([MulticastAddressRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, group)
                                      for group in self.groups], source)
        records: list[MulticastAddressRecord] = []
        if self.general_at is not None and now >= self.general_at:
            # RFC 3810 6.3: the answer to a General Query: a Current State Record for every
            # group; ours are all EXCLUDE {} (all sources), so MODE_IS_EXCLUDE with none.
            self.general_at = None
            records += [MulticastAddressRecord(RecordType.MODE_IS_EXCLUDE, group) for group in self.groups]
        for group, due in list(self.group_at.items()):
            if now < due:
                continue
            del self.group_at[group]
            sources = self.group_sources.pop(group)
            if not sources:
                # RFC 3810 6.3: Multicast Address Specific Query: the group's current state.
                records.append(MulticastAddressRecord(RecordType.MODE_IS_EXCLUDE, group))
            else:
                # RFC 3810 6.3: Multicast Address and Source Specific Query, for a group in
                # EXCLUDE {}: IS_IN of the sources asked about (none of them is excluded).
                records.append(MulticastAddressRecord(RecordType.MODE_IS_INCLUDE, group,
                                                      tuple(sorted(sources))))
        out += self._reports(records, source)
        for group, due in list(self.v1_at.items()):
            if now >= due:
                del self.v1_at[group]
                out.append(self._v1_report(group, source))
        if out:
            self.stats.count("mld_reports_sent", len(out))
        return out

    def next_deadline(self, now: float) -> float | None:
        """When ``poll`` has something to send next (``now`` when the start reports are due)."""
        times = [*self.group_at.values(), *self.v1_at.values()]
        if self.unsolicited_left:
            times.append(now if self.unsolicited_at is None else self.unsolicited_at)
        if self.general_at is not None:
            times.append(self.general_at)
        return min(times, default=None)

    def _reports(self, records: list[MulticastAddressRecord], source: IPv6Address) -> list[Outbound]:
        """MLDv2 Reports carrying ``records``, as many as needed (RFC 3810 5.2.15)."""
        out: list[Outbound] = []
        batch: list[MulticastAddressRecord] = []
        used = 0
        for record in records:
            size = len(bytes(record))
            if batch and used + size > REPORT_ROOM:
                out.append(self._datagram(MldReport(tuple(batch)).message(), source, ALL_MLDV2_ROUTERS))
                batch, used = [], 0
            batch.append(record)
            used += size
        if batch:
            out.append(self._datagram(MldReport(tuple(batch)).message(), source, ALL_MLDV2_ROUTERS))
        return out

    def _v1_report(self, group: IPv6Address, source: IPv6Address) -> Outbound:
        # RFC 2710 3, 4: an MLDv1 Report goes to the group it reports.
        return self._datagram(MldV1Message(Icmpv6Type.MLDV1_REPORT, group).message(), source, group)

    def _datagram(self, message: Icmpv6Message, source: IPv6Address, destination: IPv6Address) -> Outbound:
        # RFC 3810 5 (RFC 2710 3): hop limit 1 and a Hop-by-Hop header with the Router Alert option.
        icmp = message.buffers(source, destination)
        header = header_bytes(source, destination, NextHeader.HOP_BY_HOP,
                              len(ROUTER_ALERT_BYTES) + message.length, MLD_HOP_LIMIT)
        return Outbound(destination, [header, ROUTER_ALERT_BYTES, *icmp], source,
                        self.multicast_mac(destination.packed))
