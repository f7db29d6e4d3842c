"""The procedure as data: 《服务改进管理制度》 (YNTD-ITSS-0409) as the engine runs it.

Nothing here is code. The folder ships in the wheel as package data and is read
through `importlib.resources`:

- `*.bpmn`: the diagrams (process ids, lanes = roles, user tasks, gateways, timers;
  product extensions such as `due_in`, `assignee`, `record_status`, `name_en` as
  `spiffworkflow:property` elements on each element);
- `forms/<task_id>.json`: the form of each user task (JSON Schema 2020-12 with zh-CN
  and English labels, and declared prefill, carry-over, option lists and checks);
- `pack.json`: the roles the lanes name, and what the pack is called;
- `variables.json`: the process variables no form defines, and how pages show them.

The few functions this procedure needs that cannot be declared live in the
`procedure` package, which names this folder as its data.
"""
