"""The NNO Portal: NNO's own web console, served by the core at `/` on the gateway's host.

Server-rendered (Jinja2 + htmx, vendored static files). Every action calls the same gateway routes
the CLI uses, in-process, with the browser's session token, so auth, rate limits and audit apply."""
