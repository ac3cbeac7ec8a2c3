"""Pages of a result (webapp.pagination)."""

from webapp.pagination import Page


def test_page_numbers_with_gaps():
    page = Page(number=10, per_page=50, total=50 * 20)
    assert page.numbers() == [1, None, 8, 9, 10, 11, 12, None, 20]
    assert (page.first, page.last, page.has_prev, page.has_next) == (451, 500, True, True)
    assert Page(1, 50, 0).numbers() == [1] and Page(1, 50, 0).first == 0


def test_a_number_out_of_range_is_the_nearest_page():
    assert Page(99, 10, 25).number == 3 and Page(-5, 10, 25).number == 1
    assert (Page(99, 10, 25).offset, Page(99, 10, 25).last) == (20, 25)
