"""Launcher of the plain (not warm-started) local server process.

``python -m nbdeploy.targets.process.launch --log FILE --exit-file FILE -- BUNDLE [server args]``

It forks once and exits, printing ``{"pid": ..., "start_time": ...}`` of the child,
so the kernel that ran it reaps it at once and never holds the server as a zombie
(the server is adopted by init and lives in its own session). The child sends its
output to the service log (:class:`~nbdeploy.targets.process.processes.RotatingLog`, capped),
then runs ``python -m nbdeploy.server`` in-process with the given arguments — the
server's command line, unchanged — and records its exit code in ``--exit-file``.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import sys
import traceback
from pathlib import Path

from .processes import ProcessId, RotatingLog, write_exit_status


def main(argv: list[str] | None = None) -> int:
    """Fork the server process; the parent prints its PID and returns 0."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        split = args.index("--")
    except ValueError:
        print("usage: launch --log FILE --exit-dir DIR -- BUNDLE [args]", file=sys.stderr)
        return 2
    options = dict(zip(args[:split:2], args[1:split:2], strict=False))
    server_args = args[split + 1 :]
    log_file, exit_dir = options["--log"], options["--exit-dir"]

    pid = os.fork()
    if pid > 0:
        print(json.dumps(ProcessId.of(pid).to_dict()), flush=True)
        return 0

    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.stdout = sys.stderr = RotatingLog(log_file)
        sys.argv = ["nbdeploy.server", *server_args]
        try:
            runpy.run_module("nbdeploy.server", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            me = os.getpid()
            write_exit_status(Path(exit_dir) / f"exit-{me}.json", me, (code & 0xFF) << 8)
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
