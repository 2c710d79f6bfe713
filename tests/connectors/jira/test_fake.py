"""The fake Jira itself: answers shaped like the OpenAPI description, Jira's refusals, 410."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from jira import JIRA

from syncd_sandbox.fakeserver import FakeServer
from syncd_sandbox.jira.fake import FakeJira

from .conftest import EMAIL, TOKEN

API = "/rest/api/3"


class Http:
    def __init__(self, server: FakeServer) -> None:
        self.base = server.url
        self.session = requests.Session()
        self.session.auth = (EMAIL, TOKEN)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=5, **kwargs)


@pytest.fixture
def http(server: FakeServer) -> Http:
    return Http(server)


def _answers_as_documented(
    fake: FakeJira, method: str, template: str, response: requests.Response
) -> None:
    body = response.json() if response.content else None
    assert fake.spec.response_errors(method, template, response.status_code, body) == []


def test_python_jira_with_default_options_starts_against_the_fake(
    server: FakeServer, fake_jira: FakeJira
) -> None:
    client = JIRA(server=server.url, basic_auth=(EMAIL, TOKEN), max_retries=0)
    try:
        assert client.deploymentType == "Cloud"
        assert client._version == (1001, 0, 0)
    finally:
        client.close()
    assert [r.path for r in fake_jira.app.log] == ["/rest/api/2/serverInfo"]


def test_reads_answer_like_the_openapi_description(http: Http, fake_jira: FakeJira) -> None:
    epic = fake_jira.seed_client_epics(1)[0]
    issue = fake_jira.user_create("OPS", "Child", parent=epic.key, assignee="712020:aaaa-1111")
    fake_jira.user_update(issue.key, status="Done")

    checks = [
        ("GET", f"{API}/serverInfo", f"{API}/serverInfo", {}),
        ("GET", f"{API}/myself", f"{API}/myself", {}),
        ("GET", f"{API}/field", f"{API}/field", {}),
        ("GET", f"{API}/project/OPS", f"{API}/project/{{projectIdOrKey}}", {}),
        (
            "GET",
            f"{API}/issue/{issue.key}",
            f"{API}/issue/{{issueIdOrKey}}",
            {"params": {"expand": "changelog"}},
        ),
        (
            "GET",
            f"{API}/issue/{issue.key}/transitions",
            f"{API}/issue/{{issueIdOrKey}}/transitions",
            {},
        ),
        ("GET", f"{API}/issue/{issue.key}/comment", f"{API}/issue/{{issueIdOrKey}}/comment", {}),
        (
            "GET",
            f"{API}/search/jql",
            f"{API}/search/jql",
            {"params": {"jql": "project = OPS", "fields": "*all", "expand": "changelog"}},
        ),
        (
            "POST",
            f"{API}/search/jql",
            f"{API}/search/jql",
            {"json": {"jql": "project = OPS", "fields": ["summary"], "maxResults": 1}},
        ),
    ]
    for method, path, template, kwargs in checks:
        response = http(method, path, **kwargs)
        assert response.status_code == 200, path
        _answers_as_documented(fake_jira, method, template, response)
    issue_json = http("GET", f"{API}/issue/{issue.key}").json()
    assert fake_jira.spec.schema_errors("IssueBean", issue_json) == []
    assert issue_json["fields"]["parent"]["key"] == epic.key


def test_a_create_answers_201_like_the_description(http: Http, fake_jira: FakeJira) -> None:
    body = {
        "fields": {
            "project": {"key": "OPS"},
            "issuetype": {"name": "Task"},
            "summary": "Made by hand",
        }
    }
    response = http("POST", f"{API}/issue", json=body)
    assert response.status_code == 201
    _answers_as_documented(fake_jira, "POST", f"{API}/issue", response)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"issuetype": {"name": "Task"}, "summary": "s"}, "project", "valid project"),
        ({"project": {"key": "OPS"}, "issuetype": {"name": "Task"}}, "summary", "summary"),
        ({"project": {"key": "OPS"}, "summary": "s"}, "issuetype", "issue type"),
        (
            {
                "project": {"key": "OPS"},
                "issuetype": {"name": "Task"},
                "summary": "s",
                "description": "plain text is v2, not v3",
            },
            "description",
            "Atlassian Document",
        ),
        (
            {
                "project": {"key": "OPS"},
                "issuetype": {"name": "Task"},
                "summary": "s",
                "timetracking": {"originalEstimate": "three hours"},
            },
            "timetracking",
            "duration",
        ),
        (
            {
                "project": {"key": "OPS"},
                "issuetype": {"name": "Task"},
                "summary": "s",
                "customfield_99999": "x",
            },
            "customfield_99999",
            "cannot be set",
        ),
    ],
)
def test_jira_rules_refuse_a_create_field_by_field(
    http: Http, fake_jira: FakeJira, fields: dict[str, Any], field: str, message: str
) -> None:
    response = http("POST", f"{API}/issue", json={"fields": fields})

    assert response.status_code == 400
    assert message in response.json()["errors"][field]
    _answers_as_documented(fake_jira, "POST", f"{API}/issue", response)
    assert len(fake_jira.invalid_bodies) == 1
    assert fake_jira.issues == {}


def test_a_body_against_the_schema_is_refused_and_recorded(http: Http, fake_jira: FakeJira) -> None:
    response = http("POST", f"{API}/issue", json={"fields": "not an object"})
    assert response.status_code == 400
    assert "is not of type 'object'" in response.json()["errorMessages"][0]
    assert fake_jira.invalid_bodies[0]["path"] == f"{API}/issue"


def test_the_old_search_is_gone_with_410(http: Http) -> None:
    assert http("GET", f"{API}/search", params={"jql": "project = OPS"}).status_code == 410
    assert http("POST", f"{API}/search", json={"jql": "project = OPS"}).status_code == 410


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("ORDER BY updated ASC", "Unbounded"),
        ("colour = red", "does not exist"),
        ('updated >= "yesterday"', "invalid"),
        ("project = ", "ended unexpectedly"),
    ],
)
def test_jql_errors_are_400_with_jira_messages(http: Http, jql: str, message: str) -> None:
    response = http("GET", f"{API}/search/jql", params={"jql": jql})
    assert response.status_code == 400
    assert message in response.json()["errorMessages"][0]


def test_the_jql_subset(http: Http, fake_jira: FakeJira) -> None:
    a = fake_jira.user_create("OPS", "a", labels=["x", "y"])
    b = fake_jira.user_create("CLI", "b", labels=["y"], issuetype="Epic")
    c = fake_jira.user_create("CLI", "c", status="Done")

    def keys(jql: str) -> list[str]:
        response = http("GET", f"{API}/search/jql", params={"jql": jql, "fields": "key"})
        assert response.status_code == 200, response.text
        return sorted(i["key"] for i in response.json()["issues"])

    assert keys('labels = "x"') == [a.key]
    assert keys("labels in (x, y)") == sorted([a.key, b.key])
    assert keys("issuetype = Epic") == [b.key]
    assert keys("project = CLI AND status != Done") == [b.key]
    assert keys('project = CLI AND status not in ("Done", "In Progress")') == [b.key]
    assert keys("statusCategory != Done") == sorted([a.key, b.key])
    assert keys("project = OPS OR (labels = y AND NOT issuetype = Task)") == sorted([a.key, b.key])
    assert keys("labels is EMPTY") == [c.key]


def test_a_page_token_belongs_to_its_query(http: Http, fake_jira: FakeJira) -> None:
    fake_jira.seed_client_epics(3)
    first = http(
        "GET", f"{API}/search/jql", params={"jql": "labels = client-epic", "maxResults": 1}
    ).json()
    response = http(
        "GET",
        f"{API}/search/jql",
        params={"jql": "project = CLI", "nextPageToken": first["nextPageToken"]},
    )
    assert response.status_code == 400


def test_requests_without_credentials_are_401(server: FakeServer) -> None:
    response = requests.get(f"{server.url}{API}/myself", timeout=5)
    assert response.status_code == 401
    assert requests.get(f"{server.url}{API}/serverInfo", timeout=5).status_code == 200
