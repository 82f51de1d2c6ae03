"""A bench worker as its parent sees it: a subprocess that answers JSON lines (the recipes'
nets and the ConvMixer bench both drive their workers through it)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time

from recipes.perf.bench.config import WORKER_TIMEOUT


class WorkerProcess:
    """One worker subprocess: JSON lines on stdin/stdout; its stderr goes to a temporary file
    (read back only to report a failure), so a chatty worker can never block on a full pipe."""

    def __init__(self, impl, argv, env):
        import tempfile

        self.impl = impl
        self.stderr_file = tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     text=True, env=env, bufsize=1)
        self.alive = True

    def request(self, op, timeout=WORKER_TIMEOUT, **args):
        self.send(op, **args)
        return self.receive(op, timeout)

    def send(self, op, **args):
        if not self.alive:
            raise RuntimeError(f"worker {self.impl} is not running")
        try:
            self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
            self.proc.stdin.flush()
        except OSError as error:
            self.alive = False
            raise RuntimeError(f"worker {self.impl} died: {error}\n{self.stderr_tail()}") from error

    def receive(self, op, timeout=WORKER_TIMEOUT):
        deadline = time.monotonic() + timeout
        out_fd = self.proc.stdout.fileno()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.abort()
                raise RuntimeError(f"worker {self.impl}: no answer to {op!r} within {timeout} s; where it was:\n"
                                   f"{self.stderr_tail()}")
            ready, _, _ = select.select([out_fd], [], [], min(remaining, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    self.alive = False
                    raise RuntimeError(f"worker {self.impl} died (exit {self.proc.returncode}):\n{self.stderr_tail()}")
                continue
            line = self.proc.stdout.readline()
            if not line:
                self.alive = False
                self.proc.wait()
                raise RuntimeError(f"worker {self.impl} died (exit {self.proc.returncode}):\n{self.stderr_tail()}")
            answer = json.loads(line)
            if not answer["ok"]:
                raise RuntimeError(f"worker {self.impl}, {op}: {answer['error']}")
            return answer["result"]

    def stderr_tail(self, chars=3000):
        try:
            self.stderr_file.seek(0, os.SEEK_END)
            size = self.stderr_file.tell()
            self.stderr_file.seek(max(0, size - chars))
            return self.stderr_file.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def close(self):
        if self.alive and self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.alive = False
        self.stderr_file.close()

    def abort(self):
        """Stop a stuck worker with SIGABRT first: its faulthandler writes every thread's stack to stderr."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.alive = False
