-- Stock counters and seat states, read at one instant: {stock hash, seats hash}.
return { redis.call('HGETALL', B .. 'stock'), redis.call('HGETALL', B .. 'seats') }
