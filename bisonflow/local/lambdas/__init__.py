"""The local Lambda: warm worker processes running the handlers, and on-failure destinations."""
