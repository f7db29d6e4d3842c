"""CSI Workflow engine: BPMN specs, runtime commands, persistence and history.

Nothing in this package imports Flask; the web app and the CLI both call it.
"""
