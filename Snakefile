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

from snakemake.utils import min_version

from stages.common.code import code_files
from stages.common.params import as_set_args, snakemake_params

min_version("9.0")

# params.yaml, read as DVC reads it (YAML 1.2), with `--config` overrides on top. Not a
# `configfile:`, whose YAML 1.1 reader takes `lr: 5e-05` for a string.
PARAMS = snakemake_params("params.yaml", config)
MODELS = list(PARAMS["models"])
TRAIN_PARAMS = ["seed", "lr", "epochs", "batch_size", "optimizer", "momentum", "train"]
CONDA_ENV = "envs/pipeline.yaml"  # used with --use-conda; a prepared virtualenv needs none


wildcard_constraints:
    model="|".join(MODELS),


report: "report/workflow.rst"


def pinned(*keys):
    return as_set_args(PARAMS, keys)


rule all:
    input:
        # The models are not in git, so asking for them makes a fresh clone (whose
        # committed metrics/ would otherwise look up to date) run the whole pipeline.
        expand("models/{model}.keras", model=MODELS),
        "metrics/results.md",


rule download:
    input:
        code=code_files("stages.download"),
    output:
        directory("data/raw"),
    params:
        values=pinned("data"),
    log:
        "logs/download.log",
    benchmark:
        "logs/benchmarks/download.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    shell:
        "python -m stages.download --out {output} {params.values} > {log} 2>&1"


rule normalize:
    input:
        code=code_files("stages.normalize"),
        raw=rules.download.output[0],
    output:
        directory("data/interim"),
    params:
        values=pinned("data.files"),
    log:
        "logs/normalize.log",
    benchmark:
        "logs/benchmarks/normalize.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m stages.normalize --raw {input.raw} --out {output} {params.values} > {log} 2>&1"


rule split:
    input:
        code=code_files("stages.split"),
        interim=rules.normalize.output[0],
    output:
        directory("data/processed"),
    params:
        values=pinned("seed", "split"),
    log:
        "logs/split.log",
    benchmark:
        "logs/benchmarks/split.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m stages.split --interim {input.interim} --out {output} {params.values} > {log} 2>&1"


rule train:
    input:
        code=code_files("stages.train"),
        data=rules.split.output[0],
    output:
        model="models/{model}.keras",
        live=directory("metrics/train/{model}"),
    params:
        values=lambda wildcards: pinned(*TRAIN_PARAMS, f"models.{wildcards.model}"),
    log:
        "logs/train/{model}.log",
    benchmark:
        "logs/benchmarks/train_{model}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=0,  # CPU by default; with profiles/slurm, --set-resources train:gpu=1 asks for one
    shell:
        "python -m stages.train --model {wildcards.model} --data {input.data}"
        " --out {output.model} --live {output.live} {params.values} > {log} 2>&1"


rule evaluate:
    input:
        code=code_files("stages.evaluate"),
        model=rules.train.output.model,
        data=rules.split.output[0],
    output:
        metrics=report("metrics/test/{model}.json", category="Metrics", subcategory="{model}"),
        details="metrics/details/{model}.json",
        predictions="metrics/predictions/{model}.csv",
        confusion=report("metrics/figures/{model}/confusion.png", category="Confusion matrices"),
        misclassified=report("metrics/figures/{model}/misclassified.png", category="Misclassified"),
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "logs/benchmarks/evaluate_{model}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=3000,
        runtime=10,
    shell:
        "python -m stages.evaluate --model-file {input.model} --data {input.data}"
        " --metrics {output.metrics} --details {output.details} --predictions {output.predictions}"
        " --figures metrics/figures/{wildcards.model} > {log} 2>&1"


rule report:
    input:
        code=code_files("stages.report"),
        test=expand(rules.evaluate.output.metrics, model=MODELS),
        details=expand(rules.evaluate.output.details, model=MODELS),
        train=expand(rules.train.output.live, model=MODELS),
    output:
        table=report("metrics/results.md", category="Results"),
        figure=report("metrics/figures/validation_curves.png", category="Results"),
    params:
        values=pinned("models"),
    log:
        "logs/report.log",
    benchmark:
        "logs/benchmarks/report.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m stages.report --metrics metrics --out {output.table}"
        " --figure {output.figure} {params.values} > {log} 2>&1"
