"""Real-peer test rig: Orthanc, DCMTK and pynetdicom peers on loopback ports, and test studies.

Every peer listens on a free port of 127.0.0.1, keeps its files in a temporary directory and is
stopped when its context manager or pytest fixture ends (and, as a last resort, at interpreter
exit). Nothing here sends traffic to any address but loopback.

Modules
-------
ports
    Free loopback ports and waiting for a port to accept connections.
studies
    Deterministic synthetic CT/MR studies written with pydicom.
worklists
    Modality Worklist items (.wl files) for Orthanc's worklist plugin and wlmscpfs.
processes
    Starting, watching and always stopping peer processes.
orthanc
    A real Orthanc server with authentication, DICOMweb and the worklist plugin.
dcmtk
    DCMTK peers (storescp, wlmscpfs) and timed SCU runs (findscu, getscu, movescu, storescu).
scp
    In-process pynetdicom SCPs: a recording storage SCP, a configurable fake Q/R SCP and a
    silent peer that never answers.
hostile
    Invalid UIDs and values a hostile or broken peer may send.
fixtures
    The pytest fixtures built from all of the above.
"""
