\set id random(1, :nrows)
BEGIN;
SELECT remaining FROM inventory WHERE id = :id FOR UPDATE;
UPDATE inventory SET remaining = remaining - 1 WHERE id = :id;
INSERT INTO holds(inventory_id, qty) VALUES (:id, 1);
COMMIT;
