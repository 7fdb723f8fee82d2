"""The `promptlooper` exit codes. They are an API: 0 ok; 1 the operation ran but failed; 2 bad
input (never a traceback); 130 interrupted before the command could stop cleanly."""

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130
