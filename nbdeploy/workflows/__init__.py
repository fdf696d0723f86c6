"""The orchestration every front calls: deploy, update, traffic, profile, package.

Each workflow takes a core :class:`~nbdeploy.core.workspace.Workspace`, builds what it
needs (:mod:`~nbdeploy.workflows.build`, :mod:`~nbdeploy.workflows.access`) and hands
it to a target; it returns core records and results, which the SDK
(:mod:`nbdeploy.sdk`) wraps in its objects.
"""
