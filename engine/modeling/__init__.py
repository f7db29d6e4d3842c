"""Process owners changing a process: what a draft would do before it is published."""
