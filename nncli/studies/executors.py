"""Where sweep trials run, behind one small interface: `workers`, `submit(fn, *args)` -> future, `wait(future)`,
`result(future)` (raises WorkerLost when the process running it died), `close()`.

LocalExecutor runs a fresh process per call on this machine; DaskExecutor runs tasks on a distributed cluster.
"""

import os
from collections import deque
from concurrent.futures import Future

from nncli.errors import RunError, require


class WorkerLost(Exception):
    """The process (or Dask worker) running a trial died before returning its result."""


class SchedulerError(RunError):
    """A Dask scheduler that cannot be used: `address` as given and the `problem` with it, so that a front end can
    name the address by its own option."""

    def __init__(self, address, problem):
        self.address, self.problem = address, problem
        super().__init__(f"scheduler {address}: {problem}")


def _child(send, fn, args, parent):
    """Body of a local worker process: die with the coordinator (Linux), run fn, send back ('ok'|'error', value)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the coordinator died before the death signal was armed
        os._exit(1)
    try:
        send.send(("ok", fn(*args)))
    except BaseException as e:
        send.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        send.close()


class LocalExecutor:
    """Runs each submitted call in a fresh process on this machine, at most `workers` at a time.

    One process per trial: a trial that crashes the interpreter (or is killed) takes nothing else with it, and
    which trial was lost is known exactly.
    """

    def __init__(self, workers):
        import multiprocessing as mp

        self.workers = workers
        self.mp = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.queue, self.running = deque(), {}

    def submit(self, fn, *args):
        future = Future()
        self.queue.append((future, fn, args))
        self._start()
        return future

    def _start(self):
        while self.queue and len(self.running) < self.workers:
            future, fn, args = self.queue.popleft()
            recv, send = self.mp.Pipe(duplex=False)
            process = self.mp.Process(target=_child, args=(send, fn, args, os.getpid()), daemon=True)
            process.start()
            send.close()
            self.running[recv] = (process, future)

    def wait(self, future):
        """Block until `future` is done, settling every other call that finishes meanwhile.

        Waits on each process's sentinel as well as its pipe: a dead process is noticed even when a copy of its
        pipe's sending end lives on in another process, so its end-of-file never comes.
        """
        from multiprocessing.connection import wait

        while not future.done():
            ready = set(wait([*self.running, *(process.sentinel for process, _ in self.running.values())]))
            for recv, (process, finished) in list(self.running.items()):
                if recv not in ready and process.sentinel not in ready:
                    continue
                try:
                    kind, value = recv.recv() if recv.poll() else ("lost", None)
                except (EOFError, OSError):
                    kind, value = "lost", None
                del self.running[recv]
                recv.close()
                process.join()
                if kind == "ok":
                    finished.set_result(value)
                elif kind == "error":
                    finished.set_exception(RuntimeError(value))
                else:
                    finished.set_exception(WorkerLost(f"worker process died (exit code {process.exitcode})"))
            self._start()

    def result(self, future):
        return future.result()

    def close(self):
        """Stop every running trial (SIGTERM: the trainer checkpoints and stops), then make sure they are gone."""
        self.queue.clear()
        for process, _ in self.running.values():
            process.terminate()
        for recv, (process, _) in self.running.items():
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
            recv.close()
        self.running.clear()


class DaskExecutor:
    """Runs each call as a task on a Dask distributed cluster; the workers need nncli and the same file paths."""

    def __init__(self, address):
        distributed = require("distributed", "dask", "running trials on a Dask cluster")
        try:
            self.client = distributed.Client(address, timeout="10s")
        except (OSError, TimeoutError) as e:
            raise SchedulerError(address, f"cannot connect ({e})") from None
        except ValueError as e:  # an address Dask cannot parse
            raise SchedulerError(address, f"not an address ({e}); expected one such as tcp://10.0.0.5:8786") from None
        self.distributed = distributed
        self.workers = max(1, sum(self.client.nthreads().values()))

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    def wait(self, future):
        self.distributed.wait([future])

    def result(self, future):
        try:
            return future.result()
        except self.distributed.KilledWorker as e:
            raise WorkerLost(f"Dask worker lost ({e})") from None

    def close(self):
        self.client.close()
