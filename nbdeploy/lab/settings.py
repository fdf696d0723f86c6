"""Server-side settings of the Deployments panel (a traitlets ``Configurable``).

Kept out of ``nbdeploy/lab/__init__.py`` so that importing the extension entry points
(which ``nbdeploy/__init__.py`` re-exports) does not import traitlets.
"""

from __future__ import annotations

from traitlets import Unicode
from traitlets.config import Configurable

__all__ = ["HOME_SETTING", "NbdeployLab"]

#: The web_app setting that holds the workspace folder (set by the server extension).
HOME_SETTING = "nbdeploy_home"


class NbdeployLab(Configurable):
    """Server-side settings of the Deployments panel.

    Examples
    --------
    ``jupyter lab --NbdeployLab.home=/data/team-workspace``, or in
    ``jupyter_server_config.py``: ``c.NbdeployLab.home = "/data/team-workspace"``.
    """

    home = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Workspace folder the panel shows (default: the nbdeploy 'home' setting: "
        "$NBDEPLOY_HOME, else ~/.nbdeploy).",
    )
