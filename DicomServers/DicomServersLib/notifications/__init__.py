"""Notifications of new studies, series and instances on a server.

:mod:`.events` (the event and its wire format), :mod:`.event_queue` (the bounded queue the UI
drains), :mod:`.limits` and :mod:`.listener` (the HTTP listener the PACS-side plugin posts to),
:mod:`.polling` (the fallback when no listener can run), :mod:`.service` (per server: listener
or polling, and why), :mod:`.cache_refresh` (the hook keeping the REST study cache current) and
:mod:`.actions` (what the UI does with a batch of events).
"""
