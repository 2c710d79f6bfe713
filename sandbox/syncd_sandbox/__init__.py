"""syncd's sandbox: the test world, kept apart from the product (which never imports it).

- `hubspot`, `github`, `jira`, `airtable`, `email`: a local fake of each system, over real
  HTTP (`fakeserver`) or SMTP, validating requests against the API descriptions copied in.
- `localdb`: a test connector over a local SQLite "remote" (the engine's test bench).
- `world`: the demo's accounts, story, expected effects and runtime; `demo`: `syncd demo`.
- `pytest_plugin`: the fakes as pytest fixtures.
"""
