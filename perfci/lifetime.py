"""Child processes that die with perfci: a SIGKILLed perfci must not leave its service listening.

Teardown code never runs after SIGKILL (a runner's timeout, the OOM killer), so the kernel ends the
children instead: on Linux, PR_SET_PDEATHSIG makes it signal a child when its parent dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

T = TypeVar("T")
# A thread that lives as long as perfci. The parent-death signal follows the thread that started a child,
# not the process: a service started in a boot thread (both arms of an A/B boot at once) was SIGKILLed
# as soon as that thread ended, and its first trial saw "the service exited (exit code -9)".
_STARTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perfci-starter")


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that has the child SIGKILLed when perfci dies; None off Linux.

    The signal is tied to the thread that started the child: start children from a thread that outlives
    them (perfci starts services from the main thread and ends Locust in the thread that started it).
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # perfci died before the signal was armed: nobody would send it
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


def start_in_lasting_thread(start: Callable[[], T]) -> T:
    """`start()` (which starts a child with `die_with_parent`) on a thread that outlives the child: the main
    thread when called from it, else perfci's starter thread."""
    if threading.current_thread() is threading.main_thread():
        return start()
    return _STARTER.submit(start).result()
