"""The exit codes of every ``impasto`` command, in one place.

0: done. 1: a file system failure outside the checks (disk full, permissions), or some jobs of a
batch failed. 2: a problem the user can fix (a file, value or option; ``impasto.errors``).
130: interrupted (Ctrl-C, or a job cancelled), having kept what it could (the shell's 128 + SIGINT).
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# A job that stopped before its end (cancelled or interrupted) ends as an interruption does.
EXIT_CANCELLED = EXIT_INTERRUPTED
