"""Engine tests: Hypothesis settings for the differential test.

ENGINE_EXAMPLES sets the examples per backend (default 500); in CI
(CI=true) the run is derandomized so a red build reproduces.
"""

import os

from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI", "").lower() == "true"

settings.register_profile(
    "engine-differential",
    max_examples=int(os.environ.get("ENGINE_EXAMPLES", "500")),
    deadline=None,
    derandomize=IN_CI,
    # the examples share the function-scoped `db` fixture; each one runs in a
    # transaction that is rolled back, so nothing leaks between them
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
DIFFERENTIAL = settings.get_profile("engine-differential")
