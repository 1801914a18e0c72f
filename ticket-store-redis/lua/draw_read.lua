-- Reads what a draw needs: {recorded draw or false, pre-queue version, pre-queue users}.
return { redis.call('GET', B .. 'draw'), redis.call('GET', B .. 'pqv') or '0',
  redis.call('LRANGE', B .. 'pq', 0, -1) }
