from django.core.paginator import Paginator
from django.template.loader import render_to_string
from django.test import RequestFactory


def test_page_links_keep_the_search_and_filters():
    request = RequestFactory().get("/settings/audit/", {"action": "user.invited", "q": "zoë", "page": "2"})
    page = Paginator(range(150), 50).get_page(2)

    html = render_to_string("includes/pagination.html", {"page": page, "newest_first": True}, request=request)

    assert "?action=user.invited&amp;q=zo%C3%AB&amp;page=1" in html and "← Newer" in html
    assert "?action=user.invited&amp;q=zo%C3%AB&amp;page=3" in html and "Older →" in html
    assert "Page 2 of 3" in html
