# The same pipeline as dvc.yaml, for Snakemake (and for clusters: see profiles/slurm).
#
# One wiring, written twice and checked: each file reads as its own tool's users expect,
# and tests/test_wiring.py asks DVC for its stages and Snakemake for its jobs and fails on
# any difference in command, params read, outputs or code inputs. Deriving one file from
# the other would hide the pipeline behind a generator; a test is simpler.
#
# Rules run the same `python -m stages.<stage>` commands on the same paths. Every param a
# command reads is pinned with `--set` from the rule's `params:`, so Snakemake reruns a job
# exactly when a value it uses changes (`--config lr=0.01` included), and every source file
# it runs is an input (computed from the imports), so editing code reruns what runs it.
# Every field of a shell command is quoted (`{output:q}`), and the pins are a list of words,
# so no value, path or name from params.yaml, a sweep table or `--config` runs as shell code
# (tests/e2e/test_injection.py).
# No `benchmark:` files: Snakemake counts them as outputs, so ones left by an earlier run
# would make it redo work that `dvc repro` has since done (metrics/timing/ has the times).

import functools
import sys
from pathlib import Path

from snakemake.utils import min_version

from stages.common.code import code_digest, code_files
from stages.common.dvc_state import dvc_reports_up_to_date, hold_dvc_lock
from stages.common.cli import describe
from stages.common.errors import PipelineError
from stages.common.params import as_set_args, snakemake_params
from stages.common.sweeps import load_sweep

min_version("9.0")

# params.yaml, read as DVC reads it (YAML 1.2), with `--config` overrides on top. Not a
# `configfile:`, whose YAML 1.1 reader takes `lr: 5e-05` for a string. A bad value stops
# the workflow before any job, with the stages' own one-line message: for every bad input
# (a PipelineError: a bad value, an oversized file, a FIFO, deep nesting, a non-UTF-8 file)
# and an unreadable one, as a stage's would; anything else is a bug, and shows its traceback.
try:
    PARAMS = snakemake_params("params.yaml", config)
except (PipelineError, OSError) as error:
    sys.exit(f"error: {describe(error)}")
MODELS = list(PARAMS["models"])


# DVC and Snakemake at once in one checkout delete each other's outputs. A real run (not -n,
# not a cluster job's own Snakemake: hooks run in the main process only) holds DVC's lock
# from before its first job to its end, so each tool refuses while the other runs.
onstart:
    try:
        hold_dvc_lock()
    except PipelineError as error:
        sys.exit(f"error: {error}")


TRAIN_PARAMS = ["seed", "lr", "epochs", "batch_size", "optimizer", "momentum", "threads", "train"]
# A training or evaluation job asks for the threads it runs (`threads: 0`: every core).
TF_THREADS = PARAMS["threads"] or workflow.cores
CONDA_ENV = "envs/pipeline.yaml"  # used with --use-conda; a prepared virtualenv needs none


wildcard_constraints:
    model="|".join(MODELS),
    sweep=r"[^/]+",
    point=r"[^/]+",


report: "report/workflow.rst"


def pinned(*keys):
    return as_set_args(PARAMS, keys)


# Content, not times, where DVC has checked it. `dvc repro` rebuilds identical files with
# new times, and a fresh clone's times are its checkout's: Snakemake would take both for
# changes, and retrain every committed sweep point (their models are not in git). So when
# this run changes nothing (no --config, nothing forced) and `dvc status` finds every stage
# up to date, the files DVC tracks (code, data, models, metrics) count as unchanged: they
# are marked ancient(). Otherwise times count, as usual. A sweep point's model keeps its
# time, and its code counts by content too (a digest among its params, which Snakemake
# records). Cluster jobs skip the check (the main process made it). Decided when the DAG
# is built, the first time an input asks: the forcing flags are not known before.
@functools.cache
def dvc_up_to_date():
    settings = workflow.dag_settings
    up_to_date = (workflow.is_main_process and not config
                  and not (settings.forceall or settings.forcerun or settings.forcetargets)
                  and dvc_reports_up_to_date())
    if up_to_date:
        print("DVC finds every stage up to date: the files it tracks count as unchanged, whatever their times.",
              file=sys.stderr)
    return up_to_date


def dvc_checked(files):
    """An input function giving `files` (a path, a pattern or a list), ancient() if DVC found them up to date."""
    paths = [files] if isinstance(files, str) else list(files)

    def checked(wildcards):
        paths_now = [str(path).format(**wildcards) for path in paths]
        return [ancient(path) for path in paths_now] if dvc_up_to_date() else paths_now

    return checked


rule all:
    input:
        # The models are not in git, so asking for them makes a fresh clone (whose
        # committed metrics/ would otherwise look up to date) run the whole pipeline.
        expand("models/{model}.keras", model=MODELS),
        "metrics/results.md",


rule download:
    input:
        code=dvc_checked(code_files("stages.download")),
    output:
        directory("data/raw"),
    params:
        values=pinned("data"),
    log:
        "logs/download.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    shell:
        "python -m stages.download --out {output:q} {params.values:q} > {log:q} 2>&1"


rule normalize:
    input:
        code=dvc_checked(code_files("stages.normalize")),
        raw=dvc_checked(rules.download.output[0]),
    output:
        directory("data/interim"),
    params:
        values=pinned("data.files"),
    log:
        "logs/normalize.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m stages.normalize --raw {input.raw:q} --out {output:q} {params.values:q} > {log:q} 2>&1"


rule split:
    input:
        code=dvc_checked(code_files("stages.split")),
        interim=dvc_checked(rules.normalize.output[0]),
    output:
        directory("data/processed"),
    params:
        values=pinned("seed", "split"),
    log:
        "logs/split.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m stages.split --interim {input.interim:q} --out {output:q} {params.values:q} > {log:q} 2>&1"


rule train:
    input:
        code=dvc_checked(code_files("stages.train")),
        data=dvc_checked(rules.split.output[0]),
    output:
        model="models/{model}.keras",
        live=directory("metrics/train/{model}"),
        timing="metrics/timing/{model}.json",
    params:
        values=lambda wildcards: pinned(*TRAIN_PARAMS, f"models.{wildcards.model}"),
    log:
        "logs/train/{model}.log",
    conda:
        CONDA_ENV
    threads: TF_THREADS
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=0,  # CPU by default; with profiles/slurm, --set-resources train:gpu=1 asks for one
    shell:
        "python -m stages.train --model {wildcards.model:q} --data {input.data:q}"
        " --out {output.model:q} --live {output.live:q} --timing {output.timing:q} {params.values:q} > {log:q} 2>&1"


rule evaluate:
    input:
        code=dvc_checked(code_files("stages.evaluate")),
        model=dvc_checked(rules.train.output.model),
        data=dvc_checked(rules.split.output[0]),
    output:
        metrics=report("metrics/test/{model}.json", category="Metrics", subcategory="{model}"),
        details="metrics/details/{model}.json",
        predictions="metrics/predictions/{model}.csv",
        confusion=report("metrics/figures/{model}/confusion.png", category="Confusion matrices"),
        misclassified=report("metrics/figures/{model}/misclassified.png", category="Misclassified"),
    params:
        figures=lambda wildcards, output: Path(output.confusion).parent,
        values=lambda wildcards: pinned("threads", f"models.{wildcards.model}"),
    log:
        "logs/evaluate/{model}.log",
    conda:
        CONDA_ENV
    threads: TF_THREADS
    resources:
        mem_mb=3000,
        runtime=10,
    shell:
        "python -m stages.evaluate --model-file {input.model:q} --data {input.data:q}"
        " --metrics {output.metrics:q} --details {output.details:q} --predictions {output.predictions:q}"
        " --figures {params.figures:q} {params.values:q} > {log:q} 2>&1"


rule report:
    input:
        code=dvc_checked(code_files("stages.report")),
        test=dvc_checked(expand(rules.evaluate.output.metrics, model=MODELS)),
        details=dvc_checked(expand(rules.evaluate.output.details, model=MODELS)),
        train=dvc_checked(expand(rules.train.output.live, model=MODELS)),
    output:
        table=report("metrics/results.md", category="Results"),
        figure=report("metrics/figures/validation_curves.png", category="Results"),
        curves=directory("metrics/curves"),
    params:
        values=pinned("models"),
    log:
        "logs/report.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m stages.report --metrics metrics --out {output.table:q}"
        " --figure {output.figure:q} --curves {output.curves:q} {params.values:q} > {log:q} 2>&1"


# Cross-validation, as cv/dvc.yaml: not part of `all`; `snakemake -c2 cv` runs it. Each
# model trains on k-1 of the training portion's cv.folds folds in turn and is scored on
# the fold held out; the test set is never read.
rule cv:
    input:
        "metrics/cv/results.md",


rule cv_train:
    input:
        code=dvc_checked(code_files("stages.cv_train")),
        data=dvc_checked(rules.split.output[0]),
    output:
        "metrics/cv/{model}.json",
    params:
        values=lambda wildcards: pinned(*TRAIN_PARAMS, "cv", f"models.{wildcards.model}"),
    log:
        "logs/cv/{model}.log",
    conda:
        CONDA_ENV
    threads: TF_THREADS
    resources:
        mem_mb=6000,
        runtime=240,
    shell:
        "python -m stages.cv_train --model {wildcards.model:q} --data {input.data:q}"
        " --out {output:q} {params.values:q} > {log:q} 2>&1"


rule cv_report:
    input:
        code=dvc_checked(code_files("stages.cv_report")),
        folds=dvc_checked(expand(rules.cv_train.output[0], model=MODELS)),
    output:
        "metrics/cv/results.md",
    params:
        values=pinned("models"),
    log:
        "logs/cv/report.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m stages.cv_report --cv metrics/cv --out {output:q} {params.values:q} > {log:q} 2>&1"


# Sweeps: each sweeps/<name>.tsv is a table of points, one column per dotted param key
# (stages/common/sweeps.py). `snakemake -c2 sweeps` runs them all; a point's outputs go
# to sweeps/<name>/<point>/, laid out as the main pipeline's, and the data stages are
# shared. Every point runs the same stage commands, pinned with `--set` to its params,
# for the models its `model` column names (all by default). Training records a diverged
# point rather than failing, so the others' results still make a table.
SWEEPS = {}
for table in sorted(Path("sweeps").glob("*.tsv")):
    try:
        SWEEPS[table.stem] = load_sweep(table, PARAMS)
    except (PipelineError, OSError) as error:
        sys.exit(f"error: {describe(error)}")
POINT = "sweeps/{sweep}/{point}"


def point_pins(*keys):
    return lambda wildcards: as_set_args(
        SWEEPS[wildcards.sweep][wildcards.point].params, [key.format(**wildcards) for key in keys])


def point_threads(wildcards):
    return SWEEPS[wildcards.sweep][wildcards.point].params["threads"] or workflow.cores


def sweep_outputs(path):
    """`path` (a pattern of a point's outputs) for every point of the sweep and every model it trains."""
    return lambda wildcards: [file for name, point in SWEEPS[wildcards.sweep].items()
                              for file in expand(path, sweep=wildcards.sweep, point=name, model=point.models)]


rule sweeps:
    input:
        [f"sweeps/{name}/results.md" for name in SWEEPS],


rule sweep_train:
    input:
        code=dvc_checked(code_files("stages.train")),
        data=dvc_checked(rules.split.output[0]),
    output:
        model=f"{POINT}/models/{{model}}.keras",
        live=directory(f"{POINT}/metrics/train/{{model}}"),
        timing=f"{POINT}/metrics/timing/{{model}}.json",
    params:
        values=point_pins(*TRAIN_PARAMS, "models.{model}"),
        code=code_digest("stages.train"),  # an edit reruns the point even where its times cannot tell
    log:
        f"logs/{POINT}/train_{{model}}.log",
    conda:
        CONDA_ENV
    threads: point_threads
    resources:
        mem_mb=6000,
        runtime=60,
    shell:
        "python -m stages.train --model {wildcards.model:q} --data {input.data:q}"
        " --out {output.model:q} --live {output.live:q} --timing {output.timing:q} --record-divergence"
        " {params.values:q} > {log:q} 2>&1"


rule sweep_evaluate:
    input:
        code=dvc_checked(code_files("stages.evaluate")),
        model=rules.sweep_train.output.model,
        data=dvc_checked(rules.split.output[0]),
    output:
        metrics=f"{POINT}/metrics/test/{{model}}.json",
        details=f"{POINT}/metrics/details/{{model}}.json",
        predictions=f"{POINT}/metrics/predictions/{{model}}.csv",
        confusion=f"{POINT}/metrics/figures/{{model}}/confusion.png",
        misclassified=f"{POINT}/metrics/figures/{{model}}/misclassified.png",
    params:
        figures=lambda wildcards, output: Path(output.confusion).parent,
        values=point_pins("threads", "models.{model}"),
        code=code_digest("stages.evaluate"),
    log:
        f"logs/{POINT}/evaluate_{{model}}.log",
    conda:
        CONDA_ENV
    threads: point_threads
    resources:
        mem_mb=3000,
        runtime=10,
    shell:
        "python -m stages.evaluate --model-file {input.model:q} --data {input.data:q}"
        " --metrics {output.metrics:q} --details {output.details:q} --predictions {output.predictions:q}"
        " --figures {params.figures:q} {params.values:q} > {log:q} 2>&1"


rule sweep_report:
    input:
        code=code_files("stages.sweep_report"),
        table="sweeps/{sweep}.tsv",
        metrics=sweep_outputs(rules.sweep_evaluate.output.metrics),
        training=sweep_outputs(rules.sweep_train.output.live),
    output:
        table=report("sweeps/{sweep}/results.md", category="Sweeps"),
        figure=report("sweeps/{sweep}/results.png", category="Sweeps"),
    params:
        models=MODELS,
    log:
        "logs/sweeps/{sweep}/report.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m stages.sweep_report --sweep {input.table:q} --points sweeps/{wildcards.sweep:q}"
        " --models {params.models:q} --out {output.table:q} --figure {output.figure:q} > {log:q} 2>&1"
