"""《服务改进管理制度》(YNTD-ITSS-0409): the code this procedure needs beyond its data.

The procedure itself is data, in the top-level `bpmn` folder: the diagrams, a form
per user task, the roles (`pack.json`) and the process variables (`variables.json`).
What cannot be declared there is registered here, by name, on `PACK`:

- `services`: the service-task functions the diagrams call (gap analysis, change
  outcomes, RFC numbers);
- `prefills`: prefills that read beyond the task's data (the metric catalogue, the
  latest recorded values);
- `cycles.next_cycle`: 4.8, closing with `next_cycle` starts the next improvement;
- `cycles.scheduled_review`: 2.5.1, what a periodic review schedule starts with;
- `catalogue`, `demo`: what a new installation and a demo start from.

The engine knows nothing else of this procedure.
"""

from __future__ import annotations

from importlib.resources import files

from engine.pack import Pack
from procedure import catalogue, cycles, demo, prefills, services

PACK = Pack(
    name="service_improvement",
    files=files("bpmn"),
    services=services.REGISTRY,
    prefills=prefills.REGISTRY,
    successor=cycles.next_cycle,
    review=cycles.scheduled_review,
    catalogue=catalogue.METRICS,
    demo_users=demo.USERS,
)
