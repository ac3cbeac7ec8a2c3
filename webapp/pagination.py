"""Pages of a result: the numbered pages every list of the app shows.

Flask-free, so services can hand a view its Page; `webapp.web.page_url`
links to another page of the current URL.
"""

import math


class Page:
    """One page of a result: its rows, position and the links around it.

    `capped`: the count stopped at `total`; there are more.
    """

    def __init__(self, number, per_page, total, capped=False):
        self.per_page = per_page
        self.total = total
        self.capped = capped
        self.pages = max(1, math.ceil(total / per_page))
        self.number = min(max(1, number), self.pages)
        self.offset = (self.number - 1) * per_page
        self.first = self.offset + 1 if total else 0
        self.last = min(self.offset + per_page, total)
        self.rows = []

    @property
    def has_prev(self):
        return self.number > 1

    @property
    def has_next(self):
        return self.number < self.pages

    def numbers(self, around=2):
        """Page numbers to link, with None for a gap: 1 … 4 5 [6] 7 8 … 20."""
        wanted = {1, self.pages} | set(range(self.number - around, self.number + around + 1))
        result, previous = [], 0
        for n in sorted(n for n in wanted if 1 <= n <= self.pages):
            if n > previous + 1:
                result.append(None)
            result.append(n)
            previous = n
        return result


def page_of(query, number, per_page):
    """The Page `number` of a peewee query: counted, then its rows read (in the query's order)."""
    page = Page(number, per_page, query.count())
    page.rows = list(query.limit(page.per_page).offset(page.offset))
    return page
