"""Protocol run and planning step: choose a protocol, run it end to end, read the result."""
