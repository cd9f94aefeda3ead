-- What the branch did: a migration and a backfill.
ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12,2);   -- rounds 4 → 2 decimals
ALTER TABLE customers RENAME COLUMN name TO full_name;
ALTER TABLE customers DROP COLUMN country;
DROP TABLE legacy_coupons;
UPDATE orders SET status = 'cancelled' WHERE id IN (3, 4);
UPDATE orders SET note = repeat('lorem ipsum ', 20) || 'final' WHERE id = 10;
DELETE FROM orders WHERE id = 200;
INSERT INTO orders VALUES (201, 1, 'new', 9.99, 'added on the branch');
UPDATE customers SET email = 'alice@example.org' WHERE id = 1;
UPDATE billing.invoices SET payload = payload || '{"paid": true}' WHERE order_id = 5;
DELETE FROM audit_log WHERE message = 'boot' AND ctid = (SELECT min(ctid) FROM audit_log WHERE message = 'boot');
CREATE TABLE shipments (id bigint PRIMARY KEY, order_id bigint NOT NULL);
