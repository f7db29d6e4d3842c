"""The write side: one module per use case (start, tasks, timers, migration, deploy,
users, setup), each command one transaction that records its events, projections and
state together (context, progress)."""
