"""The customer's time zone (quiet hours, issue 17) from a CSV import and the
API: an IANA name in any letter case, stored as the zone database spells it;
anything else rejected with its line, column and a helpful message."""

from webapp.models import Customer

from .conftest import read_rejected


def test_time_zone_column_is_validated_and_located(run_import, write_file):
    path = write_file("external_id,time_zone\nt1,Europe/Moscow\nt2,asia/ho_chi_minh\nt3,Mars/Olympus\nt4,\nt5,+03:00\n")
    run = run_import("customers", path)
    zones = {c.external_id: c.time_zone for c in Customer.select()}
    assert zones == {"t1": "Europe/Moscow", "t2": "Asia/Ho_Chi_Minh", "t4": None}
    found = {(r["line"], r["column"]) for r in run.report["rejections"]}
    assert found == {(4, "time_zone"), (6, "time_zone")}
    messages = " ".join(r["reason"] for r in run.report["rejections"])
    assert "“Mars/Olympus” is not a time zone name" in messages and "Europe/Moscow" in messages
    _header, rows = read_rejected(run)
    assert [r[0] for r in rows] == ["t3", "t5"]


def test_time_zone_through_the_api(client, make_user):
    from webapp.accounts.service import create_token

    _token, secret = create_token(make_user(email="tz@example.com", role="admin"), "tests")
    headers = {"Authorization": f"Bearer {secret}"}
    response = client.put("/api/v1/customers/z1", json={"time_zone": "europe/berlin"}, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert Customer.get(Customer.external_id == "z1").time_zone == "Europe/Berlin"
    response = client.put("/api/v1/customers/z1", json={"time_zone": "Berlin"}, headers=headers)
    assert response.status_code == 422
    [detail] = response.get_json()["error"]["details"]
    assert detail["field"] == "time_zone" and "is not a time zone name" in detail["message"]
