"""Nomad's allocation directory layout and task environment.

Owns where a task lives on disk (``<data>/alloc/<id>/alloc/{data,logs,tmp}``,
``<data>/alloc/<id>/<task>/{local,secrets,tmp}``) and the ``NOMAD_*`` variables a task and its
exec sessions see.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from allocsvc.domain.model import Job, Resources, Task


class TaskDirs(msgspec.Struct, frozen=True):
    """The directories of one task in one allocation."""

    alloc_dir: Path
    task_dir: Path
    local_dir: Path
    secrets_dir: Path
    stdout: Path
    stderr: Path


def task_dirs(data_dir: Path, alloc_id: str, task: str) -> TaskDirs:
    """Paths for a task (not created)."""
    root = data_dir / "alloc" / alloc_id
    alloc_dir = root / "alloc"
    task_dir = root / task
    return TaskDirs(
        alloc_dir=alloc_dir,
        task_dir=task_dir,
        local_dir=task_dir / "local",
        secrets_dir=task_dir / "secrets",
        stdout=alloc_dir / "logs" / f"{task}.stdout.0",
        stderr=alloc_dir / "logs" / f"{task}.stderr.0",
    )


def build_task_dirs(dirs: TaskDirs) -> None:
    """Create the layout (idempotent)."""
    for sub in ("data", "logs", "tmp"):
        (dirs.alloc_dir / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("local", "secrets", "tmp"):
        (dirs.task_dir / sub).mkdir(parents=True, exist_ok=True)
    dirs.secrets_dir.chmod(0o700)


def task_env(
    *, job: Job, group: str, task: Task, alloc_id: str, alloc_name: str, dirs: TaskDirs | None
) -> dict[str, str]:
    """The NOMAD_* environment plus the task's own ``Env``."""
    index = alloc_name.rsplit("[", 1)[-1].rstrip("]") if "[" in alloc_name else "0"
    resources = task.resources or Resources()
    env = {
        "NOMAD_ALLOC_ID": alloc_id,
        "NOMAD_SHORT_ALLOC_ID": alloc_id[:8],
        "NOMAD_ALLOC_NAME": alloc_name,
        "NOMAD_ALLOC_INDEX": index,
        "NOMAD_GROUP_NAME": group,
        "NOMAD_TASK_NAME": task.name,
        "NOMAD_JOB_ID": job.id,
        "NOMAD_JOB_NAME": job.name,
        "NOMAD_NAMESPACE": job.namespace,
        "NOMAD_REGION": job.region,
        "NOMAD_DC": (job.datacenters or ["dc1"])[0],
        "NOMAD_CPU_LIMIT": str(resources.cpu),
        "NOMAD_MEMORY_LIMIT": str(resources.memory_mb),
    }
    if dirs is not None:
        env["NOMAD_ALLOC_DIR"] = str(dirs.alloc_dir)
        env["NOMAD_TASK_DIR"] = str(dirs.local_dir)
        env["NOMAD_SECRETS_DIR"] = str(dirs.secrets_dir)
    env.update(task.env or {})
    return env
