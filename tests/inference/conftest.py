"""Fixtures of this test area live in inference_support.py (a uniquely named module, so test files can
import its helpers without clashing with other areas' conftest modules)."""

from inference_support import *  # noqa: F401,F403
