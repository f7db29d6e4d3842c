"""What commands keep up to date for the read side: the inbox's task rows, the
record's register row, metric readings."""
