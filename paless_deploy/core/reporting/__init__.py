"""Reporting: what a run tells people and pipelines.

The JSON result, an earlier report read back, CI report formats, the deployment URL and
the progress interface image jobs report to.
"""
