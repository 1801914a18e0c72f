\set id random(1, :nrows)
WITH u AS (UPDATE inventory SET remaining = remaining - 1 WHERE id = :id AND remaining >= 1 RETURNING id)
INSERT INTO holds(inventory_id, qty) SELECT id, 1 FROM u RETURNING id;
