"""Issue 20.2 through the API, on SQLite and PostgreSQL: an email address or
phone number that cannot be one answers 422 naming the field; a phone whose
country is known is stored in E.164."""

from webapp.models import Customer


def test_api_answers_422_naming_the_field(api):
    status, data = api.put("/customers/c-1", {"email": "broken@@x"})
    assert status == 422
    assert data["error"]["details"] == [
        {"field": "email", "message": "“broken@@x” is not an email address (expected name@example.com)"}
    ]
    status, data = api.put("/customers/c-1", {"phone": "not a phone"})
    assert status == 422 and data["error"]["details"][0]["field"] == "phone"
    status, data = api.put("/customers/c-1", {"phone": "8 912 00", "country": "RU"})
    assert status == 422 and data["error"]["details"][0]["field"] == "phone"
    assert not Customer.select().exists()
    status, data = api.put(
        "/customers/c-1", {"email": " ok@example.com ", "phone": "8 (912) 000-00-01", "country": "RU"}
    )
    assert status == 201, data
    assert (data["email"], data["phone"]) == ("ok@example.com", "+79120000001")
