"""The base template that every page extends."""

from django.contrib.auth.models import AnonymousUser
from django.template import engines


def test_a_page_adds_to_the_head_after_the_apps_stylesheet_and_scripts(rf):
    request = rf.get("/login/")
    request.user = AnonymousUser()
    page = engines["django"].from_string(
        '{% extends "base.html" %}{% block head %}<link rel="stylesheet" href="/static/css/page.css">{% endblock %}'
    )

    head = page.render({}, request).split("</head>", 1)[0]

    assert head.index("css/app.css") < head.index("vendor/htmx.min.js") < head.index("css/page.css")
