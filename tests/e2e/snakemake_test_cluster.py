"""`snakemake` whose SLURM plugin checks its jobs at most CAP seconds apart: for test clusters only.

    python tests/e2e/snakemake_fast_polling.py --profile profiles/slurm ...

snakemake-executor-plugin-slurm (2.8.0) checks its jobs `--slurm-init-seconds-before-status-checks`
after a submission, then 10 s longer after each check at which no job finished: a step fixed in its
code, with no setting. A job that finishes 5 s after its submission is seen at about 12 s, one that
takes 15 s at about 33 s. On a test cluster of one's own an `squeue` a second costs nothing, so this
caps the wait between checks at CAP seconds, and changes nothing else: the plugin's own status
checks decide, as ever, what finished and how. A shared cluster's admins would not thank anyone
for it; profiles/slurm keeps the plugin's own back-off.

Only the Snakemake that submits is patched: jobs run the plugin's own `python -m snakemake`.
"""

import sys

CAP = 1  # seconds

if __name__ == "__main__":
    del sys.path[0]  # this folder: its modules (conftest, slurm) are not Snakemake's

    from snakemake.cli import main
    from snakemake_executor_plugin_slurm import Executor

    check_active_jobs = Executor.check_active_jobs

    async def check_active_jobs_capped(self, active_jobs):
        async for job in check_active_jobs(self, active_jobs):
            yield job
        self.next_seconds_between_status_checks = min(self.next_seconds_between_status_checks, CAP)

    Executor.check_active_jobs = check_active_jobs_capped
    sys.argv[0] = "snakemake"
    sys.exit(main())
