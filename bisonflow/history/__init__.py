"""Views of executions: finding and following them, their states, cost,
the terminal and report.html.
"""
