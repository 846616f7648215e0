"""wercker.yml → typed :class:`~scratchd.pipeline.plan.Plan`; lint; env expansion.

The parser never starts a process and backends never see YAML.
"""
