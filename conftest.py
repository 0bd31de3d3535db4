# Root conftest: makes the source tree importable for tests run from a checkout.
