"""One authorization request gets one answer: the consent form posted several times at once (a double
click, a retried submission) issues one code; the other posts find the request no longer active."""
from __future__ import annotations

import re
import threading

import requests

from .conftest import csrf_from


def test_concurrent_consent_posts_issue_one_code(idp, user, rp):
    page = rp.follow(rp.authorize_url(prompt="consent"))
    page = rp.login(page)
    html = page.response.text
    assert '/authorize/consent"' in html
    data = {"rid": re.search(r'name="rid" value="([^"]+)"', html).group(1), "decision": "allow",
            "csrf_token": csrf_from(html)}
    cookies = rp.browser.cookies.get_dict()
    barrier, answers = threading.Barrier(6), []

    def post():
        barrier.wait()
        answers.append(requests.post(f"{idp.url}/authorize/consent", data=data, cookies=cookies,
                                     allow_redirects=False))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = [a for a in answers if a.status_code == 302 and "code=" in a.headers["Location"]]
    assert len(codes) == 1, [(a.status_code, a.headers.get("Location", "")[:60]) for a in answers]
    assert sorted(a.status_code for a in answers) == [302] + [400] * 5
    assert idp.db.auth_codes.count_documents({}) == 1
    # and the request stays answered: a later replay (the Back button) issues nothing either
    again = requests.post(f"{idp.url}/authorize/consent", data=data, cookies=cookies, allow_redirects=False)
    assert again.status_code == 400 and idp.db.auth_codes.count_documents({}) == 1
