"""`bisonflow`'s command line: the parser, the checks made before any work, and how it ends."""
