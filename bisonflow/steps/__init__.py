"""The library behind the workflow's steps: the Lambda edge, the callback tasks,
locks, publishing.
"""
