"""Sources: where lines come from (files by glob, stdin)."""
