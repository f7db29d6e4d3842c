"""BPMN as the engine runs it: safe XML, validation before deploy, deployed versions,
what a diagram declares beyond execution (model), moving a workflow forward
(stepping, timers, migration), compaction, the safe expression evaluator, the state
serializer and deterministic task ids."""
