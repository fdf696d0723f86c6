"""``python -m nbdeploy.cli``: the ``nbdeploy`` command."""

from nbdeploy.cli.main import main

raise SystemExit(main())
