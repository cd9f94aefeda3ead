-- Succeeds, and loses data: the country column (50 values), the legacy coupons (2 rows) and
-- the duplicated boot entries of the audit log (2 rows).
ALTER TABLE customers DROP COLUMN country;
DROP TABLE legacy_coupons;
DELETE FROM audit_log WHERE message = 'boot';
