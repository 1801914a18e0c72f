-- Aggregate queue figures. ARGV[3] now, ARGV[4] actor.
-- Reply: {line length, pre-queue length, active, admissions in the last minute, drawn (0/1)}.
settle(ARGV[3], ARGV[4])
commit()
return { redis.call('ZCARD', B .. 'line'), redis.call('LLEN', B .. 'pq'),
  redis.call('ZCARD', B .. 'act'), redis.call('ZCARD', B .. 'adm'), redis.call('EXISTS', B .. 'draw') }
