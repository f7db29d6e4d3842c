"""The read side: what pages, the API, exports and the CLI read, as plain view objects,
each read behind the access policy (`reader.Queries` is its front door)."""
