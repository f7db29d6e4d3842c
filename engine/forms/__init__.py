"""Task forms: one JSON file per user task, everything the form page and the server
need declared in it.

A form file (`forms/<task_id>.json` in a pack) holds:

- `title`, `description`: by locale (`zh-CN`, `en`);
- `context`: the instance variables shown read-only beside the form;
- `notice` (optional): `{"when": <expression>, "text": {locale: …}, "show": <variable>}`,
  an alert shown above the form when the expression holds (a rejected plan's comment);
- `schema`: JSON Schema (draft 2020-12) of the submitted data, with these keywords
  on its properties:
  - `x-title-en`, `x-description-en`, `x-enum-titles`, `x-widget`: labels and widgets;
  - `x-carry-over: true`: the field starts from the instance's current value (a
    revised plan starts from the last one); other fields start empty or at their
    default, so a second review never comes up with the first one's decision;
  - `x-prefill`: where the field starts from: an expression over the instance's
    data (engine.workflow.expressions), or `{"function": <name>}` naming a prefill
    the pack registers;
  - `x-options`: a run-time option list (engine.forms.options), turned into a plain
    `enum` before the schema is shown or used, so the browser and the server check
    against the very same list;
- and at the schema's root `x-checks`: checks across rows and against the instance
  that JSON Schema cannot express (engine.forms.checks).
"""
