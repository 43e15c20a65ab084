# The same pipeline as dvc.yaml, for Snakemake (and for clusters: see profiles/slurm).
# Rules run the same commands on the same paths. Every param a command reads is pinned
# with `--set` from the rule's `params:`, so Snakemake reruns a job exactly when a value
# it uses changes, including `--config lr=0.01` overrides.

from stages.common.params import as_set_args, validate

configfile: "params.yaml"


validate(config, source="Snakemake config (params.yaml and --config)")

MODELS = list(config["models"])
TRAIN_PARAMS = ["seed", "lr", "epochs", "batch_size", "optimizer", "momentum", "train"]

wildcard_constraints:
    model="|".join(MODELS),

report: "report/workflow.rst"

CONDA_ENV = "envs/pipeline.yaml"  # used with --use-conda; a prepared virtualenv needs none


def pinned(*keys):
    return as_set_args(config, keys)


rule all:
    input:
        # The models are not in git, so asking for them makes a fresh clone (whose
        # committed metrics/ would otherwise look up to date) run the whole pipeline.
        expand("models/{model}.keras", model=MODELS),
        expand("metrics/{model}.json", model=MODELS),
        "metrics/results.md",


rule download:
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
        "data/raw",
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
        "python -m stages.normalize --raw {input} --out {output} {params.values} > {log} 2>&1"


rule split:
    input:
        "data/interim",
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
        "python -m stages.split --interim {input} --out {output} {params.values} > {log} 2>&1"


rule train:
    input:
        "data/processed",
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
        gpu=0,  # CPU by default; profiles/slurm asks for one GPU per training job
    shell:
        "python -m stages.train --model {wildcards.model} --data {input}"
        " --out {output.model} --live {output.live} {params.values} > {log} 2>&1"


rule evaluate:
    input:
        model="models/{model}.keras",
        data="data/processed",
    output:
        metrics=report("metrics/{model}.json", category="Metrics", subcategory="{model}"),
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
        " --metrics {output.metrics} --predictions {output.predictions}"
        " --figures metrics/figures/{wildcards.model} > {log} 2>&1"


rule report:
    input:
        expand("metrics/{model}.json", model=MODELS),
        expand("metrics/train/{model}", model=MODELS),
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
