"""Personal data: subject references, the access log, and what is held about a person."""
