"""Components started together must never be told the same port."""

from __future__ import annotations

import socket

from ops import suite


def test_a_port_is_never_handed_out_twice_even_when_the_kernel_offers_it_again(monkeypatch):
    offered = iter([41001, 41002, 41001, 41002, 41003])

    class Probe:
        def __init__(self, *args):
            self.port = next(offered)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def bind(self, address):
            pass

        def getsockname(self):
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(suite, "_HANDED_OUT", set())
    monkeypatch.setattr(suite.socket, "socket", Probe)
    assert [suite.free_port() for _ in range(3)] == [41001, 41002, 41003]


def test_free_ports_are_distinct_and_bindable():
    ports = [suite.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))
