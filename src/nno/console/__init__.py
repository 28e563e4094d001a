"""The console shell: the web app a platform's users see, composed from its active features.

`build.build_console_site(config, features) -> files` produces the platform's Pages site (its
static assets and `_shell/config.json`); `app.create_console_app` is the site's function (the
Pages Functions analogue) serving sign-in, tenants, composition and the shell's own pages.
See docs/console-shell.md.
"""
