"""Compensation for a CloudFormation that cannot create every resource (moto's).

The real deploy (bisonflow.deploy) does not use it: it reads on its own.
"""
