"""`python -m cmms.deploy.cli.mill_standby`: the warm standby of mill jobs
(`cmms.duchy.scheduler.standby`).

Loads what `cmms duchy mill` loads, then forks one child per job the scheduler orders on stdin,
each running `cmms duchy mill` with the job's arguments. Started by `cmms duchy mill-scheduler
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
    from cmms.duchy.scheduler.standby import serve_orders

    sys.exit(serve_orders(cmms_main))


if __name__ == "__main__":
    main()
