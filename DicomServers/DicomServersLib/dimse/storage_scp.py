"""Our storage listener: the C-MOVE destination (a Storage SCP).

A C-MOVE asks the PACS to open its own association to the move destination and C-STORE the
instances there (PS3.4 C.4.2). The destination is us: a listener on ``server.storage_port``
answering as ``server.move_destination_ae_title``. It answers C-ECHO too, so the PACS
administrator can test the route back.

Each incoming association is served in its own thread on a
:class:`~.upper_layer.DirectAssociation` (as acceptor): the PDUs are read and the C-STORE
responses sent from that one thread, without pynetdicom's reactor hand-overs, which cost a
few milliseconds per instance (see :mod:`.upper_layer`).

One listener per (AE title, port) is started on demand by :func:`acquire_listener` and shared
by every retrieve running at the same time (several studies, several series in parallel);
the last :func:`release_listener` stops it. Each retrieve registers a :class:`Route`; every
incoming instance goes to the route that asked for it: first by Move Originator Message ID and
AE title (0000,1031 / 0000,1030, which PACS such as Orthanc set, PS3.7 §9.1.1.1), else by
Study / Series / SOP Instance UID. An instance nobody asked for is refused (status 0xC000)
and never written.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from DicomServersLib.dimse import commands
from DicomServersLib.dimse.association import Timeouts
from DicomServersLib.dimse.contexts import choose_storage_syntax
from DicomServersLib.dimse.instance_store import ReceivedInstance, UnreadableInstanceError
from DicomServersLib.dimse.upper_layer import DirectAssociation, Message, UpperLayerError
from DicomServersLib.server import DicomServer

__all__ = [
    "ALL_INTERFACES",
    "CANNOT_UNDERSTAND",
    "OUT_OF_RESOURCES",
    "Route",
    "StorageListener",
    "acquire_listener",
    "next_move_message_id",
    "release_listener",
]

CANNOT_UNDERSTAND = 0xC000
OUT_OF_RESOURCES = 0xA700
UNRECOGNIZED_OPERATION = 0x0211
ALL_INTERFACES = "0.0.0.0"
_ACCEPT_POLL_S = 0.2

_message_ids = itertools.count(1)
_message_lock = threading.Lock()


def next_move_message_id() -> int:
    """A C-MOVE Message ID unique in this process (1-65535, wrapping), for routing."""
    with _message_lock:
        return (next(_message_ids) - 1) % 0xFFFF + 1


@dataclass(eq=False)
class Route:
    """Where the instances of one C-MOVE go.

    Attributes
    ----------
    study_uid : str
        The study moved.
    series_uids : frozenset of str or None
        The series moved (None: any series of the study).
    sop_uids : frozenset of str or None
        The instances moved (None: any).
    originator_ae_title : str
        Our calling AE title on the C-MOVE association.
    message_id : int
        The C-MOVE's Message ID (from :func:`next_move_message_id`).
    accept : callable
        Called with each :class:`ReceivedInstance`; returns the C-STORE status.
    """

    study_uid: str
    series_uids: frozenset[str] | None
    sop_uids: frozenset[str] | None
    originator_ae_title: str
    message_id: int
    accept: Callable[[ReceivedInstance], int]

    def wants(self, instance: ReceivedInstance) -> bool:
        """True when the instance belongs to what this route asked for."""
        if instance.study_uid != self.study_uid:
            return False
        if self.series_uids is not None and instance.series_uid not in self.series_uids:
            return False
        return self.sop_uids is None or instance.sop_uid in self.sop_uids


class StorageListener:
    """A Storage SCP receiving C-MOVE results and handing them to routes.

    Parameters
    ----------
    ae_title : str
        The AE title it answers as (the move destination). Any called AE title is accepted,
        as DCMTK's ``storescp`` does by default.
    port : int
        TCP port.
    bind_host : str, optional
        Interface to listen on; all of them by default (the PACS must reach us).
    timeouts : Timeouts, optional
        ACSE and idle timeouts of incoming associations.

    Attributes
    ----------
    refused : int
        Instances refused (nobody asked for them, or unreadable).
    """

    def __init__(
        self,
        ae_title: str,
        port: int,
        *,
        bind_host: str = ALL_INTERFACES,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.port = port
        self.bind_host = bind_host
        self.timeouts = timeouts or Timeouts()
        self.refused = 0
        self._routes: list[Route] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._open: set[DirectAssociation] = set()
        self._workers: set[threading.Thread] = set()

    def start(self) -> None:
        """Start listening.

        Raises
        ------
        OSError
            The port is in use or cannot be bound.
        """
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.bind_host, self.port))
            sock.listen(16)
            sock.settimeout(_ACCEPT_POLL_S)
        except OSError:
            sock.close()
            raise
        if self.port == 0:
            self.port = int(sock.getsockname()[1])
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._serve, name=f"DicomServers-listener-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and abort open associations."""
        self._stopping.set()
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes up the accept() below at once
            except OSError:
                pass
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if sock is not None:
            sock.close()
        with self._lock:
            open_associations = list(self._open)
            workers = list(self._workers)
        for assoc in open_associations:
            assoc.abort()
        for worker in workers:
            worker.join(timeout)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._sock is not None

    def add_route(self, route: Route) -> None:
        """Start routing matching instances to ``route``."""
        with self._lock:
            self._routes.append(route)

    def remove_route(self, route: Route) -> None:
        """Stop routing to ``route``."""
        with self._lock:
            if route in self._routes:
                self._routes.remove(route)

    # -- serving -----------------------------------------------------------------------------

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stopping.is_set():
            try:
                connection, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(
                target=self._handle, args=(connection,), name="DicomServers-store", daemon=True
            )
            with self._lock:
                self._workers.add(worker)
            worker.start()

    def _handle(self, connection: socket.socket) -> None:
        try:
            connection.settimeout(None)
            try:
                assoc = DirectAssociation.accept(
                    connection,
                    choose_storage_syntax,
                    acse_timeout=self.timeouts.acse_s,
                    idle_timeout=self.timeouts.idle_s,
                )
            except UpperLayerError:
                return
            with self._lock:
                self._open.add(assoc)
            try:
                self._serve_association(assoc)
            finally:
                with self._lock:
                    self._open.discard(assoc)
                if not assoc.closed:
                    assoc.abort()
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _serve_association(self, assoc: DirectAssociation) -> None:
        while not self._stopping.is_set():
            try:
                message = assoc.receive_message()
            except UpperLayerError:
                return  # released, aborted, idle or lost: nothing more to do
            command = message.command_field
            try:
                if command == commands.C_STORE_RQ:
                    status = self._store(assoc, message)
                    assoc.send_message(message.context_id, commands.store_rsp(message, status))
                elif command == commands.C_ECHO_RQ:
                    assoc.send_message(message.context_id, commands.echo_rsp(message))
                elif (
                    command is not None and not command & 0x8000 and command != commands.C_CANCEL_RQ
                ):
                    rsp = commands.response(message, command | 0x8000, UNRECOGNIZED_OPERATION)
                    assoc.send_message(message.context_id, rsp)
            except UpperLayerError:
                return

    def _store(self, assoc: DirectAssociation, message: Message) -> int:
        context = assoc.accepted.get(message.context_id)
        if context is None:
            self.refused += 1
            return CANNOT_UNDERSTAND
        try:
            instance = ReceivedInstance.from_message(
                message, context.transfer_syntax, assoc.peer_ae_title
            )
        except UnreadableInstanceError:
            self.refused += 1
            return CANNOT_UNDERSTAND
        route = self._route_for(instance)
        if route is None:
            self.refused += 1
            return CANNOT_UNDERSTAND
        return route.accept(instance)

    def _route_for(self, instance: ReceivedInstance) -> Route | None:
        with self._lock:
            routes = list(self._routes)
        if instance.move_originator_message_id is not None:
            for route in routes:
                if (
                    route.message_id == instance.move_originator_message_id
                    and route.originator_ae_title == instance.move_originator_ae_title
                    and route.wants(instance)
                ):
                    return route
        return next((route for route in routes if route.wants(instance)), None)


_LISTENERS: dict[tuple[str, int], tuple[StorageListener, int]] = {}
_LISTENERS_LOCK = threading.Lock()


def acquire_listener(
    server: DicomServer,
    *,
    bind_host: str = ALL_INTERFACES,
    timeouts: Timeouts | None = None,
) -> StorageListener:
    """Return the running listener for a server's move destination, starting it if needed.

    Parameters
    ----------
    server : DicomServer
        Supplies ``move_destination_ae_title`` and ``storage_port``.
    bind_host : str, optional
        Interface to listen on when it has to be started.
    timeouts : Timeouts, optional
        Its timeouts when it has to be started.

    Returns
    -------
    StorageListener
        Running; give it back with :func:`release_listener`.

    Raises
    ------
    OSError
        The storage port is used by another program.
    """
    key = (server.move_destination_ae_title, int(server.storage_port))
    with _LISTENERS_LOCK:
        found = _LISTENERS.get(key)
        if found is not None:
            listener, users = found
            _LISTENERS[key] = (listener, users + 1)
            return listener
        listener = StorageListener(
            key[0], key[1], bind_host=bind_host, timeouts=timeouts or Timeouts.for_server(server)
        )
        listener.start()
        _LISTENERS[key] = (listener, 1)
        return listener


def release_listener(listener: StorageListener) -> None:
    """Give back a listener; the last user stops it."""
    key = (listener.ae_title, listener.port)
    with _LISTENERS_LOCK:
        found = _LISTENERS.get(key)
        if found is None or found[0] is not listener:
            return
        users = found[1] - 1
        if users > 0:
            _LISTENERS[key] = (listener, users)
            return
        del _LISTENERS[key]
    listener.stop()
