"""wercker.yml → typed :class:`~scratchd.pipeline.plan.Plan`; lint; env expansion.

The parser never starts a process and backends never see YAML. Modules::

    plan         the frozen Plan the runner executes (the contract)
    parse        load_plan / parse_plan / compile_plan: top level and pipelines
    boxes        box and services entries
    stepparse    one step item in any of wercker's three shapes
    steps        step ids, kinds, the options of the built-in steps
    yamlnodes    YAML nodes with positions; wercker's (yaml.v2) reading of scalars
    diagnostics  errors and warnings at a line and column
    lint         every finding of a file, for ``scratchd lint``
    env          $VAR / ${VAR} expansion (Go's os.Expand)
    secrets      --secrets-file KEY=value lines → Secret values
"""
