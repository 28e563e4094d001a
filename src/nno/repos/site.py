"""From a repository checkout to the console's Pages site.

`build_site` is the one place that turns the repository's configuration into the site's inputs: the
console shell's configuration (`nno.console.build.ShellConfig`, built into the site by
`build_console_site` when the local cloud publishes it). Publishing goes to the Pages project
`{platformId}-{env}-portal`; a build that fails before publishing changes nothing there, so the last
good site keeps serving.
"""

from __future__ import annotations

from typing import Any

from nno.repos.files import RepoConfig, auth_url, console_url, feature_url


def pages_project_name(platform_id: str, environment: str) -> str:
    return f"{platform_id}-{environment}-portal"


def build_site(config: RepoConfig, environment: str, commit_sha: str, icon: str | None = None) -> dict[str, Any]:
    """The console site's inputs for one environment: the shell composed from the repository's
    features whose packages are installed here (one without its package cannot be composed), with
    the platform's icon from the Registry (not kept in the repository)."""
    from nno.console.build import ShellConfig, ShellFeature
    from nno.sdk.discovery import get_feature

    base, pid = config.base_domain, config.platform_id
    features = []
    for f in config.features:
        installed = get_feature(f.id)
        if installed is None or installed.definition is None:
            continue
        url = feature_url(f.id, pid, base, environment)
        features.append(ShellFeature.from_definition(installed.definition, url=url))
    shell = ShellConfig(platformId=pid, name=config.display_name, environment=environment,
                        authWorker=config.auth_worker, authUrl=auth_url(pid, base, environment),
                        consoleUrl=console_url(pid, base, environment), icon=icon, features=features)
    return {
        "platformId": pid,
        "environment": environment,
        "name": config.display_name,
        "authUrl": shell.authUrl,
        "console": shell.model_dump(mode="json"),
        "features": [{"id": f.id, "version": f.version} for f in config.features],
        "commit": commit_sha,
    }
