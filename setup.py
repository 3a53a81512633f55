"""VibeMUSE: the real-time communication server of a text game world."""

from setuptools import find_packages, setup

setup(
    name="vibemuse",
    version="0.1.0",
    description="Real-time, federated communication server for MUSE/MUSH-style games",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # vibemuse_client is the client SDK, vibemuse_conformance the conformance suite: packages of
    # their own that import nothing of vibemuse.
    packages=find_packages(include=["vibemuse", "vibemuse.*", "vibemuse_client", "vibemuse_conformance",
                                    "vibemuse_conformance.*"])
    + ["vibemuse.spec", "vibemuse_client.published_spec"],
    # spec/ is the single source of truth for the wire format; the server
    # loads its schemas at start, and the SDK reads them too, so the files ship
    # inside both packages (a source checkout reads the repository's spec/).
    package_dir={"vibemuse.spec": "spec", "vibemuse_client.published_spec": "spec"},
    package_data={
        "vibemuse.spec": ["*.md", "*.json", "v1/*.md", "v1/*.json", "v1/**/*.json"],
        "vibemuse_client.published_spec": ["*.md", "*.json", "v1/*.md", "v1/*.json", "v1/**/*.json"],
        "vibemuse_client": ["README.md"],
        "vibemuse.storage": ["migrations/*.py", "migrations/versions/*.py"],
        "vibemuse.web": ["static/*"],  # the web client served at /
    },
    include_package_data=True,
    install_requires=[
        "tornado>=6.4,<7",
        "sqlalchemy>=2.0,<3",
        "psycopg2-binary>=2.9",
        "cryptography>=42",
        "marshmallow>=3.20",
        "alembic>=1.13",
        "jsonschema>=4.18",
        "prometheus_client>=0.20,<1",  # GET /metrics (vibemuse/metrics.py)
        "redis[hiredis]>=5,<9",  # the bus between the processes of one server (bus_url)
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-tornado>=0.8.1",
            "pytest-xdist>=3.5,<4",  # make test: one worker per core
            "hypothesis>=6.100",
            "signedjson>=1.1.4",
            "canonicaljson>=2.0",
            "schemathesis>=4.30,<5",  # tests/test_openapi_fuzz.py runs its `st` command
            "selenium>=4.20,<5",  # tests/browser: the web client in a real headless Chromium
        ],
        # make mutation: mutation testing of vibemuse/protocol (not part of make test)
        "mutation": ["mutmut>=3.3,<4"],
    },
    entry_points={"console_scripts": ["vibemuse = vibemuse.cli:main",
                                      "vibemuse-conformance = vibemuse_conformance.cli:main"]},
)
