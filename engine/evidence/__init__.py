"""The evidence pack of a process record: one deterministic zip an auditor takes away
and checks offline (`verify_pack`), without the server or the database."""
