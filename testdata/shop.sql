-- The built-in example: a small shop. Loaded into the parent database by
-- testdata/demo.sh; the branch is a TEMPLATE copy with testdata/migration.sql applied.
CREATE SCHEMA billing;

CREATE TABLE customers (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    country char(2),
    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);

CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    status text NOT NULL,
    amount numeric(12,4) NOT NULL,
    note text
);

CREATE TABLE billing.invoices (
    id uuid PRIMARY KEY,
    order_id bigint NOT NULL,
    payload jsonb NOT NULL
);

CREATE TABLE audit_log (
    at timestamptz NOT NULL,
    message text NOT NULL
);

CREATE TABLE legacy_coupons (
    code text PRIMARY KEY,
    percent int NOT NULL
);

INSERT INTO customers (id, email, name, country)
SELECT i, 'user' || i || '@example.com', 'User ' || i, (ARRAY['DE','FR','US','JP'])[1 + i % 4]
FROM generate_series(1, 50) i;

INSERT INTO orders
SELECT i, 1 + i % 50, (ARRAY['new','paid','shipped'])[1 + i % 3], (i * 7 % 1000) / 100.0 + 0.0100, NULL
FROM generate_series(1, 200) i;

-- 2.4690 becomes 2.47 under the branch's numeric(12,2): no row change (the cast did it), but a
-- value rounded, which the data-loss section counts.
UPDATE orders SET amount = 2.4690 WHERE id = 7;

INSERT INTO billing.invoices
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, i, jsonb_build_object('total', i * 10, 'currency', 'EUR')
FROM generate_series(1, 20) i;

INSERT INTO audit_log VALUES ('2024-01-01 10:00+00', 'boot'), ('2024-01-01 10:00+00', 'boot'), ('2024-01-02 10:00+00', 'deploy');

INSERT INTO legacy_coupons VALUES ('WELCOME', 10), ('SUMMER', 15);
