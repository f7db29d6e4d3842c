"""Proof for auditors: the hash-chained event log, anchors kept outside the database,
replay of an instance from its pinned definition with every step compared, exports."""
