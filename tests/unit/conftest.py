"""Property tests run without Hypothesis's per-example deadline: a deadline is a timing
assertion, and on CI's two shared cores a slow example is load, not a bug (speed is measured in
bench/, never in tests)."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("orchestrator", deadline=None)
settings.load_profile("orchestrator")
