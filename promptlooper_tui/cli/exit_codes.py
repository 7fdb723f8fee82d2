"""The `promptlooper` exit codes. They are an API: 0 ok; 1 the operation ran but failed; 2 bad
input (never a traceback); 130 interrupted before the command could stop cleanly; 141 the
reader of the output went away (as the shell reports a program ended by SIGPIPE)."""

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
