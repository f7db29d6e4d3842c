"""Files attached to form fields: what a file is (by its content), where it is kept
(content-addressed by sha256), how a submission's uploads become references in the
completing event, and how the log's references are checked against the files."""
