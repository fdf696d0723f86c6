"""Starting and supervising the processes of the process-based targets.

- :mod:`.processes` — process identity (PID + start time), terminating, exit status,
  the capped server log and its follower, the private socket folder;
- :mod:`.launch` — the launcher of a plain (not warm-started) server process;
- :mod:`.warm` — the warm-start fork server of a workspace;
- :mod:`.router` — the traffic router of a local endpoint with several versions
  (standard library only, run by path).

Standard library only at import time: the kernel imports these cheaply.
"""
