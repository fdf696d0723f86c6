"""The Azure ML SDK v1 object model over the workflows: :class:`Workspace`,
:class:`Model`, :class:`Environment`, the ``Webservice`` classes, the profile report
and the HTTP client a service is called with.

Objects here render in a notebook through :mod:`nbdeploy.sdk.rendering`; they never
import the display layer above them.
"""
