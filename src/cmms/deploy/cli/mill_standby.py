"""`python -m cmms.deploy.cli.mill_standby`: a warm standby mill job (`cmms.duchy.scheduler.standby`).

Loads what `cmms duchy mill` loads, then waits on stdin for the claim the scheduler hands it and
runs `cmms duchy mill` with it in this process. Started by `cmms duchy mill-scheduler
--warm-standby`, never by hand.
"""

from __future__ import annotations

import sys


def main() -> None:
    # What the mill command imports on its first call, so that the job starts warm.
    import cmms.common.logging
    import cmms.crypto.errors
    import cmms.duchy.mill.process  # noqa: F401
    from cmms.deploy.cli import main as cmms_main
    from cmms.duchy.scheduler.standby import serve_one_order

    sys.exit(serve_one_order(cmms_main))


if __name__ == "__main__":
    main()
