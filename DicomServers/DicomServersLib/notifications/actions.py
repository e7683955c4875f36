"""What the UI does with a batch of events: refresh, tell the user, maybe retrieve.

The UI drains the event queue on its main thread and hands the batch to :func:`plan_actions`,
which decides, without touching Qt:

- which servers' study lists to refresh (the browser keeps its selection and scroll position:
  it updates rows, it does not rebuild the table);
- one short, non-modal message per study (not one per image: a CT of 400 images is one
  message), for Slicer's status bar or the standalone window's;
- which new studies to retrieve at once: only complete studies (``study`` events), only for
  servers in the automatic loading mode (``load_mode == "auto"``), and only when the user
  opted in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from DicomServersLib.server import DicomServer

from .events import EVENT_KINDS, NotificationEvent


@dataclass
class ActionPlan:
    """What to do after a batch of events.

    Attributes
    ----------
    refresh_servers : list of str
        Servers whose study list changed, in order of first event.
    messages : list of str
        One message per study, in order of first event.
    retrieve : list of NotificationEvent
        Study events whose study should be retrieved now (auto-retrieve opt-in).
    latest : dict
        The most complete event per ``(server, study_uid)`` (study > series > instance).
    """

    refresh_servers: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    retrieve: list[NotificationEvent] = field(default_factory=list)
    latest: dict[tuple[str, str], NotificationEvent] = field(default_factory=dict)


def plan_actions(
    events: Iterable[NotificationEvent],
    servers: Mapping[str, DicomServer],
    *,
    auto_retrieve: bool = False,
) -> ActionPlan:
    """Turn a batch of events into an :class:`ActionPlan`.

    Parameters
    ----------
    events : iterable of NotificationEvent
        Drained from the queue, oldest first.
    servers : mapping of str to DicomServer
        The list by name; events of servers no longer in it are ignored.
    auto_retrieve : bool, optional
        The user's opt-in to retrieving new studies automatically.

    Returns
    -------
    ActionPlan
        The decisions.
    """
    plan = ActionPlan()
    rank = {kind: index for index, kind in enumerate(EVENT_KINDS)}
    counts: dict[tuple[str, str], int] = {}
    for event in events:
        server = servers.get(event.server)
        if server is None:
            continue
        if event.server not in plan.refresh_servers:
            plan.refresh_servers.append(event.server)
        key = (event.server, event.study_uid)
        counts[key] = counts.get(key, 0) + 1
        known = plan.latest.get(key)
        if known is None or rank[event.kind] >= rank[known.kind]:
            plan.latest[key] = event
        if (
            event.kind == "study"
            and auto_retrieve
            and server.load_mode == "auto"
            and all(
                e.study_uid != event.study_uid or e.server != event.server for e in plan.retrieve
            )
        ):
            plan.retrieve.append(event)
    for key, event in plan.latest.items():
        count = counts[key]
        suffix = f" ({count} notifications)" if count > 1 and event.kind == "instance" else ""
        plan.messages.append(event.describe() + suffix)
    return plan
