"""inpaint-bench: harness, metrics, records and reports."""
