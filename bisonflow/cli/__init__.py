"""`bisonflow`'s command line: main (how a command runs and ends), parser (the commands,
registered by the modules under commands/), options (the common target options and the one
client factory), checks (arguments and paths checked before any work), endpoint (a loopback
endpoint's region and dummy keys), errors (one line, exit codes, signals), outcome (the exit
code of a followed execution), output (where lines go)."""
