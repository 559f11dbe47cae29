"""DNS answers from a name table (pure: no sockets). Wire format through dnslib."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from dnslib import QTYPE, RCODE, RR, A, DNSError, DNSRecord

TTL = 600  # docker's embedded resolver answers with 600 s


def lookup(tables: Iterable[Mapping[str, Sequence[str]]], name: str) -> list[str] | None:
    """Addresses of `name` in any of the tables; None when no table knows it (forward it)."""
    key = name.rstrip(".").lower()
    found: list[str] = []
    known = False
    for table in tables:
        if key in table:
            known = True
            found += [ip for ip in table[key] if ip not in found]
    return found if known else None


def answer(query: bytes, tables: Iterable[Mapping[str, Sequence[str]]]) -> bytes | None:
    """The reply to `query` when the tables know its name; None to forward it upstream.

    A known name gets its A records (and an empty NOERROR for other types, so that an AAAA
    lookup of a container does not leak to the host's resolvers); a malformed query gets
    FORMERR."""
    try:
        req = DNSRecord.parse(query)
    except (DNSError, ValueError, IndexError):
        return _formerr(query)
    if not req.questions:
        return _formerr(query)
    q = req.q
    ips = lookup(tables, str(q.qname))
    if ips is None:
        return None
    reply = req.reply()  # id, question, QR, AA and RD copied
    if q.qtype in (QTYPE.A, QTYPE.ANY):
        for ip in ips:
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
    return bytes(reply.pack())


def _formerr(query: bytes) -> bytes | None:
    if len(query) < 12:
        return None  # not even a header: nothing to answer to
    flags = 0x8000 | (query[2] & 0x01) << 8 | int(RCODE.FORMERR)  # QR, RD copied, FORMERR
    return bytes(query[:2] + flags.to_bytes(2, "big") + b"\0" * 8)


def servfail(query: bytes) -> bytes | None:
    """No upstream answered: SERVFAIL, so the client's resolver stops waiting."""
    try:
        req = DNSRecord.parse(query)
    except (DNSError, ValueError, IndexError):
        return None
    reply = req.reply()
    reply.header.rcode = RCODE.SERVFAIL
    return bytes(reply.pack())
