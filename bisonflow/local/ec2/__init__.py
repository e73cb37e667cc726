"""The local EC2: task instances as processes, their metadata service, and capacity refusals."""
