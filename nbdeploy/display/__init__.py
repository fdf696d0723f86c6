"""HTML / MIME-bundle renderers for nbdeploy's objects, as pure functions.

:mod:`~nbdeploy.display.cards` draws models and services,
:mod:`~nbdeploy.display.openapi` OpenAPI documents, :mod:`~nbdeploy.display.profile`
the profile report, :mod:`~nbdeploy.display.views` the lists and logs the magics
return; :mod:`~nbdeploy.display.html` is the HTML vocabulary they share. Nothing
here imports IPython or ipywidgets: the notebook front (:mod:`nbdeploy.notebook`)
shows what these functions return.

Importing this package registers the renderers the SDK's ``_repr_mimebundle_``
looks up (:mod:`nbdeploy.sdk.rendering`); ``nbdeploy/__init__.py`` does so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nbdeploy.sdk.rendering import register_renderer

from .cards import model_card, service_card


def _profile_report(result: Any) -> Mapping[str, str]:
    # numpy is imported only when a report is drawn, so `import nbdeploy` stays light.
    from .profile import mimebundle

    return mimebundle(result)


register_renderer("model", model_card)
register_renderer("service", service_card)
register_renderer("profile", _profile_report)
