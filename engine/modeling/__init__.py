"""Changing a procedure: drafts of a process checked, compared and weighed against what runs."""
