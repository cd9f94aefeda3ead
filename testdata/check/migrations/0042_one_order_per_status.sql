-- Fails on the snapshot's rows: orders i and i + 150 have the same customer (1 + i % 50) and
-- status (i % 3), so 50 (customer_id, status) pairs are held by 2 orders each.
CREATE UNIQUE INDEX orders_customer_status ON orders (customer_id, status);
