"""The modeler's side of the engine: what process owners edit in the browser, checked
and compared before anything of it is deployed.

- `lint`: the rules a diagram and its forms must follow, as findings on the elements
  they concern (deploy refuses a diagram with an error finding, through
  engine.workflow.validation, so the modeler and deploy apply one set of rules);
- `graph`: a process's flow nodes and what follows what, for reachability;
- `variables`: the process variables known before each sequence flow and gateway,
  offered when a modeler writes a condition.
"""
