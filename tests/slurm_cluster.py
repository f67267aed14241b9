"""A throw-away single-node SLURM cluster for the cluster tests: munged, slurmctld and slurmd on this machine.

Everything lives in one temporary folder (configuration, munge key and socket, state, logs), the daemons run on
free ports in the foreground as children of the test, and `stop()` ends them by their PIDs: nothing of the
machine's own SLURM or munge setup is read or changed. No accounting database: `sacct` does not work, as on
many small clusters.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo", "srun")
DEBIAN_PACKAGES = ("slurm-wlm", "munge")


def missing_programs() -> list[str]:
    return [name for name in DAEMONS + CLIENTS if _which(name) is None]


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def install_with_apt(timeout_s: float = 600) -> str | None:
    """Install Debian's slurm-wlm and munge where apt and root are available; the reason it cannot, or None."""
    if not missing_programs():
        return None
    if os.environ.get("BRAINMETS_TEST_SLURM") != "1":  # never from a plain pytest (see conftest.py)
        return "installing slurm-wlm was not asked for (BRAINMETS_TEST_SLURM=1)"
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "installing slurm-wlm needs root"
    environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES]
    try:
        done = subprocess.run(install, env=environment, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:  # stale package lists: refresh them once
            subprocess.run(["apt-get", "update", "-qq"], env=environment, capture_output=True, timeout=timeout_s)
            done = subprocess.run(install, env=environment, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"apt-get did not install {' '.join(DEBIAN_PACKAGES)} within {timeout_s:.0f} s"
    if done.returncode != 0 or missing_programs():
        return f"apt-get could not install {' '.join(DEBIAN_PACKAGES)}: {done.stderr.strip()[-500:]}"
    return None


def _die_with_parent() -> None:
    """Run in each daemon before exec: the kernel sends it SIGTERM when the test process dies, so a killed test
    run leaves no daemon behind."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SlurmCluster:
    """One node (this machine, its CPUs and memory), one partition per name in `partitions` (the first is the
    default), `select/cons_tres` with memory as a consumable, `proctrack/linuxproc`, `task/none`."""

    def __init__(self, root: Path, partitions: tuple[str, ...] = ("main",), min_job_age_s: int = 3600):
        self.root = root
        self.partitions = partitions
        self.min_job_age_s = min_job_age_s
        self.node = socket.gethostname().split(".")[0]
        self.processes: dict[str, subprocess.Popen] = {}
        self.conf = root / "slurm.conf"
        self.bin = root / "bin"
        self.env = os.environ | {"SLURM_CONF": str(self.conf), "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, timeout_s: float = 60) -> None:
        for folder in ("state", "spool", "munge", "log", "bin"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._write_srun_wrapper()
        self._start_munge()
        self._write_conf()
        for daemon in ("slurmctld", "slurmd"):
            with open(self.root / "log" / f"{daemon}.out", "w") as log:  # the child keeps its own copy
                self.processes[daemon] = subprocess.Popen(
                    [_which(daemon), "-D", "-f", str(self.conf)],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
        self._wait_until_idle(timeout_s)

    def stop(self) -> None:
        """Cancel every job still queued or running, then end the daemons by their PIDs."""
        if self.processes.get("slurmctld") is not None and self.processes["slurmctld"].poll() is None:
            ids = [job["id"] for job in self.jobs() if job["state"] in ("PENDING", "RUNNING", "CONFIGURING")]
            if ids:
                self.run("scancel", *ids, check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- queries -----------------------------------------------------------------------------------------------
    def run(self, *command: str, check: bool = True) -> str:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller knows (finished ones too, for MinJobAge), as squeue prints them: id, name,
        comment (the plugin's rule name), partition, state, time limit and memory request."""
        fields = {
            "id": "%i",
            "name": "%j",
            "comment": "%k",
            "partition": "%P",
            "state": "%T",
            "time_limit": "%l",
            "memory": "%m",
        }
        out = self.run("squeue", "--states=all", "--noheader", "--format=" + "\t".join(fields.values()))
        return [dict(zip(fields, line.split("\t"))) for line in out.splitlines() if line.strip()]

    def log(self, daemon: str) -> str:
        path = self.root / "log" / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- internals ---------------------------------------------------------------------------------------------
    def _start_munge(self) -> None:
        key = self.root / "munge" / "munge.key"
        subprocess.run([_which("mungekey"), "--create", "--keyfile", str(key)], check=True, capture_output=True)
        key.chmod(0o400)
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.processes["munged"] = subprocess.Popen(
            [_which("munged"), "--foreground", "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
             f"--log-file={self.root / 'log' / 'munged.log'}", f"--pid-file={self.root / 'munge' / 'munged.pid'}",
             f"--seed-file={self.root / 'munge' / 'munged.seed'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not self.munge_socket.exists():
            if self.processes["munged"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"munged did not start: {(self.root / 'log' / 'munged.log').read_text()}")
            time.sleep(0.1)

    def _write_srun_wrapper(self) -> None:
        """The SLURM jobstep plugin drops SLURM_CONF from the environment of the `srun` it starts inside a job
        (real clusters keep their configuration in /etc/slurm, which this cluster must not touch): a `srun`
        first on PATH puts it back."""
        wrapper = self.bin / "srun"
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {_which("srun")} "$@"\n')
        wrapper.chmod(0o755)

    def _node_resources(self) -> str:
        """CPUs and RealMemory as slurmd measures them (`slurmd -C`), so the node registers as idle."""
        out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
        cpus = re.search(r"\bCPUs=(\d+)", out).group(1)
        memory = re.search(r"\bRealMemory=(\d+)", out).group(1)
        return f"CPUs={cpus} RealMemory={memory}"

    def _write_conf(self) -> None:
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
        root = self.root
        lines = [
            "ClusterName=brainmets-test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            f"SlurmUser={user}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'state' / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'spool' / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            f"MinJobAge={self.min_job_age_s}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            f"NodeName={self.node} NodeAddr=127.0.0.1 {self._node_resources()} State=UNKNOWN",
        ]
        for index, partition in enumerate(self.partitions):
            default = "YES" if index == 0 else "NO"
            lines.append(f"PartitionName={partition} Nodes={self.node} Default={default} MaxTime=INFINITE State=UP")
        self.conf.write_text("\n".join(lines) + "\n")

    def _wait_until_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}): {self.log(name)[-2000:]}")
            done = subprocess.run(["sinfo", "--noheader", "--format=%t"], env=self.env, capture_output=True, text=True)
            state = done.stdout.strip()
            if done.returncode == 0 and state.split() and all(s == "idle" for s in state.split()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node did not become idle within {timeout_s} s (state {state!r}): "
                           f"{self.log('slurmctld')[-2000:]} {self.log('slurmd')[-2000:]}")  # fmt: skip
