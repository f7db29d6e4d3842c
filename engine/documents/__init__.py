"""Documents the engine renders without a web server: a process record as a printable
page and as a workbook, the same bytes for the same history."""
