"""`snakemake` as the e2e tests run it on their SLURM test cluster: less waiting, same decisions.

    python tests/e2e/snakemake_test_cluster.py --profile profiles/slurm ...

Two waits that a test cluster of one's own need not pay. For test clusters only: profiles/slurm
keeps both (docs/slurm.md, "Waiting per job", has the figures).

- Polling. snakemake-executor-plugin-slurm (2.8.0) checks its jobs
  `--slurm-init-seconds-before-status-checks` after a submission, then 10 s longer after each
  check at which no job finished: a step fixed in its code, with no setting. A job that finishes
  5 s after its submission is seen at about 12 s, one that takes 15 s at about 33 s. An `squeue` a
  second costs a cluster of one's own nothing, so here the wait between checks is at most CAP
  seconds. The plugin's own status checks still decide what finished and how.
- Exit. Snakemake (9.27) looks at its queue again 1 s after each round that scheduled jobs,
  through a `threading.Timer` that is not a daemon, so a Snakemake whose last job took less than
  1 s stays up to 1 s after its work is done. A cluster job starts Snakemake twice (the batch
  script's, then srun's), and the batch script's always waits the whole second: its round ends
  when its job does. Here that timer is a daemon, and nothing else changes.

Jobs run this file too, in place of the plugins' `python -m snakemake` (the batch script's and
srun's), with the arguments the plugins give.
"""

import shlex
import sys
import threading
from pathlib import Path

CAP = 1  # seconds
THIS_FILE = Path(__file__).resolve()


def poll_at_most_every_cap_seconds(executor) -> None:
    check_active_jobs = executor.check_active_jobs

    async def check_active_jobs_capped(self, active_jobs):
        async for job in check_active_jobs(self, active_jobs):
            yield job
        self.next_seconds_between_status_checks = min(self.next_seconds_between_status_checks, CAP)

    executor.check_active_jobs = check_active_jobs_capped


def exit_when_done(scheduler) -> None:
    def schedule_reevaluation(self, delay):  # Snakemake's own, with daemon=True
        timer = threading.Timer(delay, self._open_jobs.release)
        timer.daemon = True
        timer.start()

    scheduler._schedule_reevalutation = schedule_reevaluation


def jobs_run_this_file(*executors) -> None:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(THIS_FILE))}"
    for executor in executors:
        executor.get_python_executable = lambda self: command


if __name__ == "__main__":
    del sys.path[0]  # this folder: its modules (conftest, slurm) are not Snakemake's

    from snakemake.cli import main
    from snakemake.scheduling.job_scheduler import JobScheduler
    from snakemake_executor_plugin_slurm import Executor as Submitter
    from snakemake_executor_plugin_slurm_jobstep import Executor as JobStep

    poll_at_most_every_cap_seconds(Submitter)
    exit_when_done(JobScheduler)
    jobs_run_this_file(Submitter, JobStep)
    if sys.argv[1:3] == ["-m", "snakemake"]:  # a job: `<python> -m snakemake ...`, this file as <python>
        del sys.argv[1:3]
    sys.argv[0] = "snakemake"
    sys.exit(main())
