"""The metric catalogue (度量项目录) and its history: what a metric is (catalogue),
how a period is written and ordered (periods), and reading historical values from a
CSV or xlsx file before they are recorded (importing). No database here: the
commands (engine.commands.metrics) and queries (engine.queries.metrics) use these."""
