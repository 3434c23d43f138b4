from cmms.testing.duchy_fixtures import *  # noqa: F403
