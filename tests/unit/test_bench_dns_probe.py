"""bench.dns_probe: the query it sends and how it reads an answer (a message built here by hand,
with a compressed name as resolvers send)."""

from __future__ import annotations

import struct

import pytest

from bench.dns_probe import first_a, query


def answer(qid: int, name: str, rcode: int = 0, records: list[tuple[int, bytes]] | None = None) -> bytes:
    q = query(name, qid)[12:]
    recs = records if records is not None else [(1, bytes([10, 5, 0, 2]))]
    head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(recs), 0, 0)
    body = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", t, 1, 600, len(d)) + d for t, d in recs)
    return head + q + body


def test_query_is_one_a_question_with_recursion_desired() -> None:
    msg = query("web.app", 0x1234)
    assert msg[:12] == struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    assert msg[12:] == b"\x03web\x03app\x00" + struct.pack("!HH", 1, 1)


def test_the_first_a_record_is_read_past_other_records() -> None:
    assert first_a(answer(7, "web"), 7) == "10.5.0.2"
    cname = (5, b"\x03www\x00")
    assert first_a(answer(7, "web", records=[cname, (1, bytes([10, 5, 0, 9]))]), 7) == "10.5.0.9"


@pytest.mark.parametrize(("msg", "why"), [
    (answer(7, "web"), "not the answer to query 8"),
    (answer(8, "web", rcode=3), "rcode 3"),
    (answer(8, "web", records=[]), "no A record"),
    (b"\x00\x08", "short dns message"),
])
def test_what_is_not_an_answer_is_an_error(msg: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        first_a(msg, 8)
