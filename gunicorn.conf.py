"""gunicorn settings shared by every web component (`gunicorn -c gunicorn.conf.py ...`).

gthread workers: a worker waiting on its database or on another service keeps serving other
requests on its other threads. WEB_CONCURRENCY and WEB_THREADS tune it per deployment. Ours
(shared.gunicorn_worker) answers what gunicorn refuses itself (414, 431, 400...) as problem+json.
"""

import ctypes
import ctypes.util
import os
import signal
import sys

worker_class = "shared.gunicorn_worker.ProblemThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
bind = os.environ.get("BIND", "0.0.0.0:8000")
timeout = 60
graceful_timeout = 20
keepalive = 5
# Our own JSON lines carry each request (shared.web); gunicorn's access log would repeat them.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn's control socket sits at one path per user: several of our components on one
# machine would fight over it, and nothing of ours uses it.
control_socket_disable = True


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_the_master(worker) -> None:
    """A worker whose master dies (SIGKILL, the OOM killer) is killed by the kernel at once.

    Left to itself an orphaned worker keeps the listening socket and its kept-alive
    connections, notices its master's death only at its next loop turn, then waits up to
    graceful_timeout for requests in flight: the service is down, yet its port is taken, so a
    new master cannot bind it. Linux only (elsewhere gunicorn's own parent check remains).
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        worker.log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
        return
    if os.getppid() != worker.ppid:
        # The master died between the fork and the prctl: nobody would signal us any more.
        os._exit(1)


def post_fork(server, worker):
    from shared import logs

    die_with_the_master(worker)

    # The gateway's bulkhead: one service may hold at most half of a worker's threads (upstream.py).
    if not os.environ.get("UPSTREAM_MAX_IN_FLIGHT"):
        os.environ["UPSTREAM_MAX_IN_FLIGHT"] = str(max(1, server.cfg.threads // 2))

    logs.configure(server.cfg.proc_name, os.environ.get("LOG_LEVEL", "INFO").upper())
