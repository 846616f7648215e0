"""wercker.yml → typed :class:`~scratchd.pipeline.buildplan.BuildPlan`; lint.

The compiler never starts a process and backends never see YAML: the
runner imports ``buildplan`` and ``registrysteps`` (and the ``Box`` of
``plan``) and nothing else from here, which import-linter checks. Modules::

    compile      compile_build: the one compile step, used by daemon and CLI
    buildplan    the frozen BuildPlan the runner executes (the contract)
    registrysteps  plan types of the registry steps run natively (npm-install ...)
    selection    which pipelines a run starts (one answer for lint and daemon)
    workflows    wercker.yml workflows (types; workflowparse reads them)
    localstep    local / vendored step directories and their step.yml
    environment  the pipeline's WERCKER_* environment, step property names
    plan         the parsed wercker.yml (what lint and compile read)
    parse        load_plan / parse_plan / compile_plan: top level and pipelines
    boxes        box and services entries
    stepparse    one step item in any of wercker's three shapes
    steps        step ids, kinds, the options of the built-in steps
    yamlnodes    YAML nodes with positions; wercker's (yaml.v2) reading of scalars
    yamlhints    the likely cause of a YAML syntax error, at its line
    diagnostics  errors and warnings at a line and column
    lint         every finding of a file, for ``scratchd lint``
    env          $VAR / ${VAR} expansion (Go's os.Expand; lives in scratchd.expand)
    secrets      --secrets-file KEY=value lines → Secret values
"""
