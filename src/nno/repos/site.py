"""From a repository checkout to the console's Pages site.

`build_site` is the one place that turns the repository's configuration into the site's inputs;
the console shell's generator replaces its body when it lands. Publishing goes to the local cloud's
Pages project `{platformId}-{env}-portal`; a build that fails before publishing changes nothing
there, so the last good site keeps serving.
"""

from __future__ import annotations

from typing import Any

from nno.repos.files import RepoConfig, auth_url, feature_url


def pages_project_name(platform_id: str, environment: str) -> str:
    return f"{platform_id}-{environment}-portal"


def build_site(config: RepoConfig, environment: str, commit_sha: str) -> dict[str, Any]:
    """The console site's inputs (what `nno.edge.pages` renders) for one environment."""
    base, pid = config.base_domain, config.platform_id
    return {
        "platformId": pid,
        "environment": environment,
        "name": config.display_name,
        "authUrl": auth_url(pid, base, environment),
        "services": [{"name": f"{f.id} {f.version}", "url": feature_url(f.id, pid, base, environment)}
                     for f in config.features],
        "features": [{"id": f.id, "version": f.version} for f in config.features],
        "commit": commit_sha,
    }
