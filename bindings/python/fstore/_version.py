"""The package's version: always the version of the libfstore it bundles
(Cargo.toml's), checked by the build and by the tests."""

__version__ = "0.1.0"
