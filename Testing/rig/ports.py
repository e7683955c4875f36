"""Free TCP ports on the loopback interface, and waiting for a peer to listen."""

from __future__ import annotations

import contextlib
import socket
import time

__all__ = [
    "LOOPBACK",
    "free_port",
    "free_ports",
    "port_accepts",
    "require_loopback",
    "wait_for_port",
]

LOOPBACK = "127.0.0.1"
"""The only address the rig talks to."""

_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def require_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address, else refuse it.

    Parameters
    ----------
    host : str
        Host name or address a rig helper was asked to talk to.

    Returns
    -------
    str
        ``host`` unchanged.

    Raises
    ------
    ValueError
        If ``host`` is not loopback: the rig must never send traffic elsewhere.
    """
    if host not in _LOOPBACK_NAMES and not host.startswith("127."):
        raise ValueError(f"the test rig only talks to loopback, not to {host!r}")
    return host


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Allocate ``count`` distinct free TCP ports on a loopback address.

    The sockets are bound to port 0 at the same time (so the kernel hands out distinct ports)
    and closed before returning. Another process could take a port before the caller binds it;
    callers that start external servers retry with new ports when that happens.

    Parameters
    ----------
    count : int
        How many ports.
    host : str, optional
        Loopback address to bind (default ``127.0.0.1``).

    Returns
    -------
    list of int
        The port numbers.
    """
    require_loopback(host)
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port(host: str = LOOPBACK) -> int:
    """Allocate one free TCP port on a loopback address (see :func:`free_ports`).

    Parameters
    ----------
    host : str, optional
        Loopback address to bind (default ``127.0.0.1``).

    Returns
    -------
    int
        The port number.
    """
    return free_ports(1, host)[0]


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Tell whether a TCP connection to ``host:port`` is accepted right now.

    Parameters
    ----------
    host : str
        Loopback address.
    port : int
        TCP port.
    timeout : float, optional
        Connect timeout in seconds.

    Returns
    -------
    bool
        True if the connection was accepted (it is closed again at once).
    """
    require_loopback(host)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll until ``host:port`` accepts TCP connections.

    Parameters
    ----------
    host : str
        Loopback address.
    port : int
        TCP port.
    timeout : float, optional
        Seconds to wait in total.
    interval : float, optional
        Seconds between attempts.

    Raises
    ------
    TimeoutError
        If the port does not accept a connection within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if port_accepts(host, port, timeout=max(0.05, min(0.5, remaining))):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout} s")
        time.sleep(interval)
