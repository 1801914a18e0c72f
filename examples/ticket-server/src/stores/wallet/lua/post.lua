-- Appends one ledger entry (ledger_post.lua is put in front of this).
-- KEYS[1] account hash, KEYS[2] ledger list
-- ARGV[1] idempotency field, ARGV[2] currency, ARGV[3] signed delta,
-- ARGV[4] stored entry (JSON), ARGV[5] balance cap, ARGV[6] user id
return ledger_post(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
