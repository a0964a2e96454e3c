"""What every error answer of the REST API is: application/problem+json (RFC 9457), checked the same way by every
test that expects one."""

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(response, status: int, slug: str) -> dict:
    """The body of an error answer, checked: the status, the content type, the problem type and its fields, and
    `instance` the path asked (cut short: a megabyte path is not repeated)."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert (body["type"], body["status"]) == (f"urn:campaigns:problem:{slug}", status)
    assert body["title"] and body["detail"]
    assert len(body["instance"]) <= 201 and response.wsgi_request.path.startswith(body["instance"].removesuffix("…"))
    return body
