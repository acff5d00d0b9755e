"""How a pseudonymization job spreads its calls: never more in flight than the service allows, cores kept busy."""

import pytest

from lakehouse_ops.config.pseudo import ServiceSettings
from lakehouse_ops.pseudo.spark import fan_out


def settings(per, total):
    return ServiceSettings(
        url="http://pseudo", api_key_env=None, max_concurrent_requests=per, max_total_concurrency=total
    )


@pytest.mark.parametrize(
    "partitions, cores, per, total, expected",
    [
        (4, 8, 4, 200, (4, 4)),  # well under the cap: as configured
        (2, 2, 4, 6, (2, 3)),  # a service taking 6 at once, 2 cores: 3 calls from each, not 1 partition of 4
        (200, 2, 4, 6, (2, 3)),
        (200, 16, 4, 200, (50, 4)),  # enough partitions at full concurrency to keep the cores busy
        (3, 4, 2, 4, (3, 1)),
        (10, 10, 1, 3, (3, 1)),
    ],
)
def test_calls_in_flight_never_exceed_the_cap_and_cores_stay_busy(partitions, cores, per, total, expected):
    got = fan_out(partitions, cores, settings(per, total))
    assert got == expected
    assert got[0] * got[1] <= total
