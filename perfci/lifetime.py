"""Child processes that die with perfci: a SIGKILLed perfci must not leave its service listening.

Teardown code never runs after SIGKILL (a runner's timeout, the OOM killer), so the kernel ends the
children instead: on Linux, PR_SET_PDEATHSIG makes it signal a child when its parent dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
