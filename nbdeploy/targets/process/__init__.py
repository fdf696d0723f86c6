"""Starting and supervising the processes of the process-based targets.

- :mod:`.supervisor` — the one lifecycle of every process: identity (PID + start
  time), the detached start (the launcher), stop, exit status, the capped server log,
  and the restart of a process that exits (a :class:`~.supervisor.Supervisor`
  within a restart budget, a :class:`~.supervisor.Watcher` that notices exits);
- :mod:`.processes` — log following, the private socket folder, peer credentials,
  the code fingerprint;
- :mod:`.warm` — the warm-start fork server of a workspace;
- :mod:`.router` — the traffic router of a local endpoint with several versions
  (standard library only, run by path).

Standard library only at import time: the kernel imports these cheaply.
"""
