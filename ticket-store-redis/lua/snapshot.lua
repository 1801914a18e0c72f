-- Stock counters, seat states and the current plan (nil: the plan as created), read at one
-- instant: {stock hash, seats hash, plan JSON}.
return { redis.call('HGETALL', B .. 'stock'), redis.call('HGETALL', B .. 'seats'),
  redis.call('HGET', B .. 'def', 'plan') }
