"""Questions tests ask of a compiled package's documents."""

from __future__ import annotations

from typing import List


def platform_configs(docs: List[dict]) -> List[dict]:
    platform = next(doc for doc in docs[1:] if "platforms" in doc)
    return list(platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values())


def has_security_context(docs: List[dict]) -> bool:
    return any("securityContext" in config for config in platform_configs(docs))


def has_optional_secrets(docs: List[dict]) -> bool:
    return any(
        "optional" in secret
        for config in platform_configs(docs)
        for secret in config.get("secretAsEnv", [])
    )
