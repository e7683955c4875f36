"""TLS peers for the hardening tests: a pynetdicom Q/R SCP over TLS, and an HTTPS front.

- :class:`TlsQRSCP` is the rig's :class:`rig.scp.FakeQRSCP` served over TLS (pynetdicom's
  ``start_server(ssl_context=...)``), optionally requiring a client certificate.
- :class:`TlsFront` terminates HTTPS on a loopback port and relays the plain bytes to a real
  Orthanc: Orthanc 1.10.1's own ``SslEnabled`` crashes (segfault in a civetweb worker) at the
  first handshake with this platform's OpenSSL 3, so the TLS layer is Python's and everything
  behind it is Orthanc's.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from rig.ports import LOOPBACK
from rig.scp import _NOBODY, FakeQRSCP


def server_context(
    cert: Path, key: Path, *, client_ca: Path | None = None, tls13: bool = True
) -> ssl.SSLContext:
    """A server-side TLS context; ``client_ca`` makes a client certificate signed by it required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    if not tls13:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(client_ca))
    return context


class TlsQRSCP(FakeQRSCP):
    """A :class:`rig.scp.FakeQRSCP` that only speaks DICOM over TLS.

    Parameters
    ----------
    context : ssl.SSLContext
        The server context (see :func:`server_context`).
    **kwargs
        As :class:`rig.scp.FakeQRSCP`.
    """

    def __init__(self, context: ssl.SSLContext, ae_title: str = "TLSPACS", **kwargs: Any) -> None:
        super().__init__(ae_title, **kwargs)
        self.context = context

    def start(self) -> TlsQRSCP:
        """Serve on a free loopback port over TLS (as :meth:`PynetdicomSCP.start`)."""
        if self._ae is not None:
            return self
        from pynetdicom import AE

        self._stopping.clear()
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = self.acse_timeout
        ae.dimse_timeout = self.dimse_timeout
        ae.network_timeout = self.network_timeout
        ae.maximum_associations = 20
        ae.require_called_aet = self.check_called_ae_title
        if self.reject_association:
            ae.require_calling_aet = [_NOBODY]
        self.configure(ae)
        server = ae.start_server(
            (LOOPBACK, 0), block=False, evt_handlers=list(self.handlers()), ssl_context=self.context
        )
        assert server is not None
        self.port = int(server.server_address[1])
        self._ae = ae
        return self


class TlsFront:
    """HTTPS on a loopback port, relayed as plain bytes to ``target_port`` (see the module)."""

    def __init__(self, target_port: int, context: ssl.SSLContext) -> None:
        self.target_port = target_port
        self.context = context
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self.listener.getsockname()[1])
        self.handshake_errors: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True, name="TlsFront")
        self._thread.start()

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://{LOOPBACK}:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(10)
        try:
            front = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.handshake_errors.append(str(error))
            client.close()
            return
        try:
            upstream = socket.create_connection((LOOPBACK, self.target_port), timeout=10)
        except OSError:
            front.close()
            return
        front.settimeout(None)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(262144):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, front), daemon=True)
        back.start()
        pump(front, upstream)
        back.join(10)
        front.close()
        upstream.close()

    def stop(self) -> None:
        """Stop accepting connections."""
        self.listener.close()
