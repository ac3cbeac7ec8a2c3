"""The custom fields admin: list, create (with code suggestion), rename, delete with confirmation, roles."""

import re

from conftest import csrf_from

from webapp.fields import service as cf
from webapp.models import Customer, CustomField, CustomValue


def page(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def post_form(client, url, data):
    """POST with the CSRF token of the form page, as a browser would."""
    token = csrf_from(page(client, url))
    return client.post(url, data={**data, "csrf_token": token})


def error_of(html, field_id):
    match = re.search(r'<span class="error" id="%s-error">([^<]*)</span>' % field_id, html)
    return match and match.group(1)


def test_list_shows_fields_per_entity(auth_client):
    cf.create_field("customer", "", "Favourite destination", "enum", ["Vietnam", "Italy"])
    cf.create_field("deal", "", "Lost reason", "string")
    html = page(auth_client, "/fields/")
    customer = html[html.index('id="entity-customer"') : html.index('id="entity-order"')]
    assert "Favourite destination" in customer and "custom.favourite_destination" in customer
    assert "One of a list" in customer and "Vietnam" in customer and "Italy" in customer
    order = html[html.index('id="entity-order"') : html.index('id="entity-deal"')]
    assert "No fields yet" in order and 'href="/fields/new?entity=order"' in order
    assert "custom.lost_reason" in html[html.index('id="entity-deal"') :]
    assert 'href="/fields/new"' in html  # editors get the buttons


def test_create_field_suggests_the_code_from_the_name(auth_client):
    response = post_form(
        auth_client,
        "/fields/new",
        {
            "entity": "order",
            "name": "Delivery method",
            "code": "",
            "type": "enum",
            "options": "Courier\n\n pickup \ncourier",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/fields/#entity-order")
    field = cf.get_field("order", "delivery_method")
    assert field.name == "Delivery method" and field.type == "enum" and field.options == ["Courier", "pickup"]
    listing = auth_client.get("/fields/").get_data(as_text=True)
    assert "Field “Delivery method” created. Its code is delivery_method." in listing

    response = post_form(
        auth_client, "/fields/new", {"entity": "customer", "name": "Число питомцев", "code": "pets", "type": "integer"}
    )
    assert response.status_code == 302
    assert cf.get_field("customer", "pets").name == "Число питомцев"

    # a name in Cyrillic or Vietnamese gets a transliterated code, not an empty one
    for name, code in (("Любимое направление", "lyubimoe_napravlenie"), ("Điểm đến yêu thích", "diem_den_yeu_thich")):
        response = post_form(
            auth_client, "/fields/new", {"entity": "customer", "name": name, "code": "", "type": "string"}
        )
        assert response.status_code == 302
        assert cf.get_field("customer", code).name == name


def test_live_code_suggestion_follows_the_name_until_the_code_is_edited(auth_client):
    hx = {"HX-Request": "true", "HX-Trigger-Name": "name"}
    html = page(auth_client, "/fields/new")
    assert 'hx-get="/fields/new"' in html and 'hx-target="#code-row"' in html

    fragment = auth_client.get(
        "/fields/new", query_string={"name": "Favourite destination", "code": "", "code_suggested": ""}, headers=hx
    ).get_data(as_text=True)
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="code-row">')
    assert 'value="favourite_destination"' in fragment
    # the user kept the suggestion: it follows the name
    fragment = auth_client.get(
        "/fields/new",
        query_string={
            "name": "Favourite city",
            "code": "favourite_destination",
            "code_suggested": "favourite_destination",
        },
        headers=hx,
    ).get_data(as_text=True)
    assert 'id="code" maxlength="63" name="code" spellcheck="false" type="text" value="favourite_city"' in fragment
    # the user typed their own code: it stays
    fragment = auth_client.get(
        "/fields/new",
        query_string={"name": "Favourite city", "code": "fav", "code_suggested": "favourite_destination"},
        headers=hx,
    ).get_data(as_text=True)
    assert 'value="fav"' in fragment and 'name="code_suggested" type="hidden" value="favourite_city"' in fragment


def test_create_shows_each_error_next_to_its_input(auth_client):
    cf.create_field("customer", "vip", "VIP", "boolean")
    cases = [
        ({"name": "", "code": "x", "type": "string"}, "name", "Enter a name."),
        ({"name": "Lives", "code": "9lives", "type": "string"}, "code", "must start with a letter"),
        ({"name": "Very important", "code": "vip", "type": "boolean"}, "code", "“vip” already exists"),
        ({"name": "★ 最爱 ★", "code": "", "type": "string"}, "code", "This name gives no code"),
        ({"name": "Level", "code": "", "type": "enum", "options": " \n "}, "options", "at least one option"),
        ({"name": "Level", "code": "", "type": "colour"}, "type", "Not a valid choice"),
    ]
    for data, field_id, message in cases:
        response = post_form(auth_client, "/fields/new", {"entity": "customer", **data})
        html = response.get_data(as_text=True)
        assert response.status_code == 200, data
        assert message in (error_of(html, field_id) or ""), (data, html[html.index("<form") :][:2000])
        assert 'aria-invalid="true"' in html
    assert CustomField.select().count() == 1
    # NUL characters (PostgreSQL cannot store them) are dropped, not a server error
    response = post_form(
        auth_client,
        "/fields/new",
        {"entity": "customer", "name": "Lev\x00el", "code": "", "type": "enum", "options": "Gold\x00\nSilver"},
    )
    assert response.status_code == 302
    level = cf.get_field("customer", "level")
    assert level.name == "Level" and level.options == ["Gold", "Silver"]
    level.delete_instance()
    # a bad entity is refused as well
    response = post_form(auth_client, "/fields/new", {"entity": "planet", "name": "X", "type": "string"})
    assert "Not a valid choice" in (error_of(response.get_data(as_text=True), "entity") or "")


def test_rename_and_edit_enum_options(auth_client):
    field = cf.create_field("customer", "", "Level", "enum", ["Gold", "Silver"])
    customer = Customer.create(external_id="c1")
    cf.set_value(field, customer.id, "Gold")
    html = page(auth_client, f"/fields/{field.id}/edit")
    assert 'value="Level"' in html and "Gold\nSilver</textarea>" in html and "custom.level" in html

    # removing an option in use is refused next to the options
    response = post_form(auth_client, f"/fields/{field.id}/edit", {"name": "Level", "options": "Silver"})
    assert "Options in use cannot be removed: Gold." in error_of(response.get_data(as_text=True), "options")
    assert CustomField.get_by_id(field.id).options == ["Gold", "Silver"]

    response = post_form(
        auth_client, f"/fields/{field.id}/edit", {"name": "Loyalty level", "options": "Gold\nSilver\nBronze"}
    )
    assert response.status_code == 302
    saved = CustomField.get_by_id(field.id)
    assert saved.name == "Loyalty level" and saved.options == ["Gold", "Silver", "Bronze"] and saved.code == "level"

    response = post_form(auth_client, f"/fields/{field.id}/edit", {"name": "  ", "options": "Gold"})
    assert error_of(response.get_data(as_text=True), "name") == "Enter a name."


def test_rename_a_plain_field_has_no_options_box(auth_client):
    field = cf.create_field("deal", "", "Lost reason", "string")
    assert "<textarea" not in page(auth_client, f"/fields/{field.id}/edit")
    assert post_form(auth_client, f"/fields/{field.id}/edit", {"name": "Why lost"}).status_code == 302
    assert CustomField.get_by_id(field.id).name == "Why lost"


def test_delete_asks_first_and_says_how_many_values_go(auth_client):
    field = cf.create_field("customer", "", "Shoe size", "integer")
    other = cf.create_field("customer", "", "Pets", "integer")
    for n in range(3):
        customer = Customer.create(external_id=f"c{n}")
        cf.set_value(field, customer.id, 36 + n)
        cf.set_value(other, customer.id, n)
    html = page(auth_client, f"/fields/{field.id}/delete")
    assert "Delete the field “Shoe size”?" in html and "3 stored values of this field will be deleted" in html
    assert CustomField.get_or_none(CustomField.id == field.id) is not None  # asking deletes nothing

    response = post_form(auth_client, f"/fields/{field.id}/delete", {})
    assert response.status_code == 302
    assert CustomField.get_or_none(CustomField.id == field.id) is None
    assert CustomValue.select().where(CustomValue.field == field.id).count() == 0
    assert CustomValue.select().where(CustomValue.field == other.id).count() == 3
    assert "Field “Shoe size” deleted with 3 values." in page(auth_client, "/fields/")


def test_delete_of_an_empty_field(auth_client):
    field = cf.create_field("order", "", "Gift wrap", "boolean")
    assert "No record has a value in this field yet." in page(auth_client, f"/fields/{field.id}/delete")
    post_form(auth_client, f"/fields/{field.id}/delete", {})
    assert "Field “Gift wrap” deleted with 0 values." in page(auth_client, "/fields/")


def test_unknown_field_is_404(auth_client):
    for url in ["/fields/12345/edit", "/fields/12345/delete"]:
        assert auth_client.get(url).status_code == 404


def test_managers_see_the_list_read_only(client, login, make_user):
    make_user()  # an admin exists, so the app is set up
    field = cf.create_field("customer", "", "Level", "enum", ["Gold"])
    login(email="m@example.com", role="manager")
    html = page(client, "/fields/")
    assert "Level" in html and "custom.level" in html
    assert "Only admins and marketers can change fields" in html
    assert 'href="/fields/new' not in html and "/edit" not in html and "/delete" not in html
    token = csrf_from(html)
    for url in ["/fields/new", f"/fields/{field.id}/edit", f"/fields/{field.id}/delete"]:
        assert client.get(url).status_code == 403, url
    assert (
        client.post(
            "/fields/new", data={"entity": "customer", "name": "X", "type": "string", "csrf_token": token}
        ).status_code
        == 403
    )
    assert client.post(f"/fields/{field.id}/edit", data={"name": "Hacked", "csrf_token": token}).status_code == 403
    assert client.post(f"/fields/{field.id}/delete", data={"csrf_token": token}).status_code == 403
    assert [(f.name, f.code) for f in CustomField.select()] == [("Level", "level")]


def test_marketers_may_change_fields(client, login, make_user):
    make_user()
    login(email="mk@example.com", role="marketer")
    response = post_form(
        client,
        "/fields/new",
        {"entity": "deal", "name": "Membership type", "type": "enum", "options": "annual\nmonthly"},
    )
    assert response.status_code == 302 and cf.get_field("deal", "membership_type") is not None


def test_csrf_is_required(auth_client):
    response = auth_client.post("/fields/new", data={"entity": "customer", "name": "X", "type": "string"})
    assert response.status_code == 400 and "Form expired" in response.get_data(as_text=True)
    assert CustomField.select().count() == 0
    field = cf.create_field("customer", "", "Level", "string")
    assert auth_client.post(f"/fields/{field.id}/delete").status_code == 400
    assert auth_client.post(f"/fields/{field.id}/edit", data={"name": "Y"}).status_code == 400
    assert CustomField.get_by_id(field.id).name == "Level"
