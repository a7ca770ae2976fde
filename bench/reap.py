"""Run a command, then wait for every process it leaves behind: `python -m bench.reap CMD ...`.

`ssm-detect replay --jobs N` reads through a fork server (replay/reader.py), which outlives the
main process by a moment and is never waited for by it, so GNU time around the command alone
would miss the server's and its readers' CPU time. This wrapper makes itself the subreaper of
what the command starts (Linux `PR_SET_CHILD_SUBREAPER`): orphans are re-parented to it and
waited for, so their CPU time and peak RSS reach GNU time's figures (`wait4` of this process
includes its waited-for descendants). Its own start (about 20 ms) is counted against the command.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    code = subprocess.call(argv)
    while True:  # orphans were re-parented to us when their parent exited
        try:
            os.wait()
        except ChildProcessError:
            return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
