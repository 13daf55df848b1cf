"""``bot.net.http1.ResponseParser``: HTTP/1.1 answers in every framing, in any split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.net.http1 import ConnectionLost, HttpProtocolError, ResponseParser


def parse_whole(data: bytes) -> ResponseParser:
    parser = ResponseParser()
    assert parser.feed(data) is True
    return parser


def test_content_length_body() -> None:
    parser = parse_whole(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
        b'{"error":[]} '
    )
    assert parser.response == (200, b'{"error":[]} ')
    assert parser.keep_alive is True


def test_empty_body_and_no_body_statuses() -> None:
    assert parse_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").response == (200, b"")
    assert parse_whole(b"HTTP/1.1 204 No Content\r\n\r\n").response == (204, b"")


def test_chunked_body_with_extensions_and_trailers() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b"7\r\n, world\r\n"
        b"0\r\nX-Trailer: yes\r\n\r\n"
    )
    parser = parse_whole(data)
    assert parser.response == (200, b"hello, world")
    assert parser.keep_alive is True


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_any_split_of_the_bytes_gives_the_same_answer(cuts: list[int]) -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: gzip, chunked\r\n"
        b"Connection: keep-alive\r\n\r\n"
        b"a\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    parser, i, done = ResponseParser(), 0, False
    for cut in cuts:
        if i >= len(data):
            break
        assert not done
        done = parser.feed(data[i : i + cut])
        i += cut
    if i < len(data):
        done = parser.feed(data[i:])
    assert done
    assert parser.response == (503, b"0123456789abc")


def test_content_length_in_pieces() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Len") is False
    assert parser.feed(b"gth: 4\r\n\r\nab") is False
    assert parser.done is False
    with pytest.raises(HttpProtocolError):
        _ = parser.response
    assert parser.feed(b"cd") is True
    assert parser.response == (200, b"abcd")


def test_connection_close_and_http_1_0() -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    assert parse_whole(close).keep_alive is False
    both = b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n"
    assert parse_whole(both).keep_alive is False
    old = parse_whole(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert old.keep_alive is False
    kept = parse_whole(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    assert kept.keep_alive is True


def test_a_body_until_close() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\n\r\npart one, ") is False
    assert parser.feed(b"part two") is False
    assert parser.feed_eof() is True
    assert parser.response == (200, b"part one, part two")
    assert parser.keep_alive is False


def test_eof_before_the_end_is_a_lost_connection() -> None:
    for partial in (
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc",
    ):
        parser = ResponseParser()
        parser.feed(partial)
        with pytest.raises(ConnectionLost):
            parser.feed_eof()


def test_eof_after_a_complete_answer_only_ends_keep_alive() -> None:
    parser = parse_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert parser.feed_eof() is True
    assert parser.keep_alive is False
    assert parser.response == (200, b"ok")


@pytest.mark.parametrize(
    "data",
    [
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n Folded: header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab",  # a byte past the answer
    ],
)
def test_malformed_answers_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(HttpProtocolError):
        ResponseParser().feed(data)


def test_an_endless_head_is_refused() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(HttpProtocolError, match="size limit"):
        for _ in range(70):
            parser.feed(b"X-Padding: " + b"x" * 1000 + b"\r\n")


def test_bytes_after_a_complete_answer_are_refused() -> None:
    parser = parse_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(HttpProtocolError):
        parser.feed(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
