"""Cloud Spanner plumbing shared by the Kingdom and the duchies (google-cloud-spanner, optional).

`spanner://projects/P/instances/I/databases/D` names a database; with `SPANNER_EMULATOR_HOST` set
the client talks to the emulator anonymously. The SDK is imported lazily by `connection`, so code
that only parses URLs never needs the `gcp` extra.
"""

from __future__ import annotations

from cmms.common.spanner.url import SPANNER_URL_SCHEME, SpannerUrl, is_spanner_url

__all__ = ["SPANNER_URL_SCHEME", "SpannerUrl", "is_spanner_url"]
