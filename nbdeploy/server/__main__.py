"""``python -m nbdeploy.server BUNDLE [--host H] [--port N] [--log-level L]``."""

from __future__ import annotations

from nbdeploy.server.launcher import main

if __name__ == "__main__":
    raise SystemExit(main())
