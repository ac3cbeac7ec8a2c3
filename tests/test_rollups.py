import datetime

from webapp.models import Customer, CustomerOrderStats, Order, OrderItem, Product
from webapp.rollups import rebuild_order_stats, refresh_order_stats


def _customer(ext):
    return Customer.create(external_id=ext)


def test_refresh_and_rebuild_agree_with_orders(db):
    a, b, c = _customer("a"), _customer("b"), _customer("c")
    product = Product.create(sku="X1", sku_ci="x1", name="X")
    o1 = Order.create(external_id="o1", customer=a, ordered_at=datetime.datetime(2025, 1, 5), total_cents=10050)
    Order.create(external_id="o2", customer=a, ordered_at=datetime.datetime(2025, 3, 1), total_cents=2000)
    Order.create(external_id="o3", customer=b, ordered_at=datetime.datetime(2024, 7, 1), total_cents=1)
    OrderItem.create(order=o1, product=product, quantity=3, price_cents=3350)
    refresh_order_stats([a.id, b.id, c.id])
    stats = {s.customer_id: s for s in CustomerOrderStats.select()}
    assert set(stats) == {a.id, b.id}  # no orders, no row
    assert (stats[a.id].orders_count, stats[a.id].total_cents, stats[a.id].quantity) == (2, 12050, 3)
    assert stats[a.id].first_at == datetime.datetime(2025, 1, 5)
    assert stats[a.id].last_at == datetime.datetime(2025, 3, 1)
    before = [
        (s.customer_id, s.orders_count, s.total_cents, s.quantity, s.first_at, s.last_at)
        for s in CustomerOrderStats.select().order_by(CustomerOrderStats.customer)
    ]
    rebuild_order_stats()
    after = [
        (s.customer_id, s.orders_count, s.total_cents, s.quantity, s.first_at, s.last_at)
        for s in CustomerOrderStats.select().order_by(CustomerOrderStats.customer)
    ]
    assert before == after
    Order.delete().where(Order.customer == b).execute()
    refresh_order_stats([b.id])
    assert not CustomerOrderStats.select().where(CustomerOrderStats.customer == b).exists()
